"""The entry point: parse the flags, set up logging, run the command, map errors to exit
codes (``_exits``) printed as one readable line (``--debug`` shows the traceback)."""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import trio

from ._exits import EXIT_INTERRUPTED, exit_code
from ._parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    # Task modules named on the command line live in the current directory, as with
    # ``python -m``; the console script would not otherwise find them.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        parser.error(f"unknown --log-level {args.log_level!r}: use debug, info, warning, error")
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    func = args.func
    try:
        if not _is_async(func):
            code = func(args)
        else:
            code = trio.run(func, args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException as exc:  # one readable line, never a bare traceback
        if isinstance(exc, SystemExit):
            raise
        code, text = exit_code(exc)
        if args.debug:
            logging.getLogger("fastworker").exception("details")
        print(f"fastworker: {text}", file=sys.stderr)
        return code
    return int(code or 0)


def _is_async(func: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(func)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
