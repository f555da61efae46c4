"""A task module that fails to import (for the CLI's error reporting test)."""

raise RuntimeError("this tasks module is deliberately broken")
