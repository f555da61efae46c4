"""The shape of the CLI package: its entry points, its public names, no import cycle."""

import ast
from importlib.metadata import entry_points
from pathlib import Path

import fastworker
import fastworker._cli as cli


def test_the_console_script_and_the_public_names_resolve() -> None:
    """`fastworker = "fastworker._cli:run"` and the names callers import still exist."""
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "fastworker"]
    assert script.value == "fastworker._cli:run"
    assert script.load() is cli.run
    for name in ("main", "run", "build_parser", "UsageError", "CrashLoop", "read_secret"):
        assert name in cli.__all__ and callable(getattr(cli, name)), name
    assert cli.build_parser().prog == "fastworker"


def test_nothing_below_the_cli_imports_it() -> None:
    """No fastworker module imports the CLI, even inside a function (bench did: a cycle);
    only ``python -m fastworker`` (``__main__``) and the package itself do."""
    package = Path(fastworker.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "__main__.py" or "_cli" in path.relative_to(package).parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(alias.name for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(name.split(".")[-1] == "_cli" for name in names):
                offenders.append(f"{path.relative_to(package)}:{node.lineno}")
    assert offenders == []


def test_bench_flag_errors_are_the_cli_usage_error() -> None:
    """A bad bench flag raises the same UsageError the CLI maps to exit code 2."""
    from fastworker import bench
    from fastworker._cli._exits import EXIT_USAGE, exit_code

    assert bench.UsageError is cli.UsageError
    assert exit_code(cli.UsageError("bad flag")) == (EXIT_USAGE, "bad flag")
