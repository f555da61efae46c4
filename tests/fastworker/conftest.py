"""Shared set-up for the fastworker tests: make ``sample_tasks`` importable by module name."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
