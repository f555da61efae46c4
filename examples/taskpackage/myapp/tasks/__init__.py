"""Every task of myapp. Importing this package imports (and so registers) each module.

Point FastWorker at the package, not at the modules::

    fastworker run-actor-system --tasks myapp.tasks
"""

from . import billing, reports

__all__ = ["billing", "reports"]
