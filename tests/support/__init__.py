"""Helpers shared by the test folders (not tests themselves): ``import support``.

tests/conftest.py puts the tests/ directory on ``sys.path``, so every test module, in
whatever folder, imports these as ``support`` (or ``from support import free_tcp_port``).
Folder-level helper modules (``examples_support``, ``drill_support``,
``security_support``) re-export what they used to define here under their old names.

- ``support.net``: free TCP/UDP ports on loopback, the host and port of a URL;
- ``support.link``: a hand-driven link client speaking the actors protocol frame by frame;
- ``support.cli``: ``python -m fastworker ...`` run to completion;
- ``support.process``: child processes found and ended by PID through /proc;
- ``support.fuzz``: example counts under the Hypothesis profiles (default, slow);
- ``support.wait``: ``wait_until(condition, timeout=..., what=...)``, a poll for a
  condition that fails saying what was awaited and the last value seen.
"""

from __future__ import annotations

from .cli import run_cli
from .fuzz import HYPOTHESIS_PROFILES, examples
from .net import free_tcp_port, free_udp_port, host_port
from .wait import WaitTimeout, wait_until

__all__ = [
    "HYPOTHESIS_PROFILES",
    "WaitTimeout",
    "examples",
    "free_tcp_port",
    "free_udp_port",
    "host_port",
    "run_cli",
    "wait_until",
]
