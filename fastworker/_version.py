"""The package version, read once from the installed distribution's metadata.

``pyproject.toml`` is the only place the number is written; ``fastworker.__version__``
and the CLI's ``--version`` both come from here.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION: str = version("fastworker")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0+unknown"
