"""The public contract's shape: layering of the client side, the version, keyword-only options."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "fastworker"
SERVER_SIDE = {
    "_gateway",
    "_registration",
    "_journal",
    "_control_plane",
    "_control_plane_node",
    "_control_plane_handle",
    "_control_plane_startup",
    "_cli",
}


def _internal_imports(module: str) -> set[str]:
    """The fastworker modules ``module`` imports at run time (outside TYPE_CHECKING);
    a module inside a subpackage is named by its path (``_client/_open``)."""
    path = PACKAGE / f"{module}.py"
    package = module.split("/")[:-1]
    if not path.exists():
        path = PACKAGE / module / "__init__.py"
        package = module.split("/")
    if not path.exists():
        return set()
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.ImportFrom) and node.level >= 1 and node.module:
                base = package[: len(package) - (node.level - 1)]
                found.add("/".join([*base, node.module.split(".")[0]]))
            elif isinstance(node, ast.ImportFrom) and node.module and (
                node.module.startswith("fastworker.")
            ):
                found.add(node.module.split(".")[1])
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(tree.body)
    return found


def _closure(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(_internal_imports(current) - seen)
    return seen - {module}


def test_client_does_not_import_the_server_side() -> None:
    """_client (and what it imports) never imports the gateway, the control plane or
    the journal (and so sqlite3): a client process loads only what a client needs."""
    reached = _closure("_client")
    assert "_serialization" in reached  # the walk does follow imports
    assert not reached & SERVER_SIDE, sorted(reached & SERVER_SIDE)


def test_subworker_does_not_reach_into_the_client() -> None:
    """_subworker_node imports no private helper from _client; the TLS check is shared
    from a low module."""
    source = (PACKAGE / "_subworker_node.py").read_text()
    assert "from ._client import" not in source
    assert "_gateway" not in _internal_imports("_subworker_node")


def test_version_comes_from_package_metadata() -> None:
    """fastworker.__version__ is the installed distribution's version (pyproject.toml),
    not a second copy of the number."""
    from importlib.metadata import version

    import fastworker

    assert fastworker.__version__ == version("fastworker")


def test_open_control_plane_options_are_keyword_only() -> None:
    """Only ``tasks`` may be passed positionally to open_control_plane: every option
    after it is keyword-only, so a call cannot silently bind a value to the wrong one."""
    import inspect

    import fastworker

    parameters = list(inspect.signature(fastworker.open_control_plane).parameters.values())
    assert parameters[0].name == "tasks"
    assert parameters[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert len(parameters) > 20
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:])


def test_control_plane_settings_mirror_the_keyword_options() -> None:
    """ControlPlaneSettings has exactly open_control_plane's options (all but tasks and
    settings), with the same defaults: the two ways to configure cannot drift apart."""
    import inspect

    import attrs

    import fastworker

    parameters = inspect.signature(fastworker.open_control_plane).parameters
    skip = ("tasks", "settings")
    options = {name: p.default for name, p in parameters.items() if name not in skip}
    defaults = attrs.asdict(fastworker.ControlPlaneSettings(), recurse=False)
    assert defaults == options


async def test_open_control_plane_takes_a_settings_object() -> None:
    """open_control_plane(settings=...) runs a control plane with those settings (here
    the in-memory URL and the queue limit), and refuses settings mixed with keywords,
    naming the keywords."""
    import uuid

    import attrs
    import pytest
    import trio

    import fastworker

    url = f"memory://contract-{uuid.uuid4().hex[:8]}"
    settings = fastworker.ControlPlaneSettings(
        url=url, discovery=False, max_queue=7, local_concurrency=0
    )
    with trio.fail_after(30):
        async with fastworker.open_control_plane(settings=settings) as node:
            assert node.url == url
            assert node.control_plane.config.max_queue == 7
        with pytest.raises(fastworker.ConfigurationError, match="max_queue, port"):
            async with fastworker.open_control_plane(
                settings=attrs.evolve(settings, url=url + "-2"), port=1, max_queue=3
            ):
                pass  # pragma: no cover


def test_the_docstring_check_passes_and_can_fail(tmp_path: Path) -> None:
    """.ci/docstrings (ruff DOC501 + D417 on the public modules) passes on the tree, and
    the same check rejects a function that raises an error its docstring does not name."""
    import subprocess
    import sys

    script = PACKAGE.parent / ".ci" / "docstrings"
    env_bin = str(Path(sys.executable).parent)
    env = {"PATH": env_bin + ":/usr/bin:/bin"}
    done = subprocess.run([str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    bad = tmp_path / "bad.py"
    bad.write_text(
        'def f(x: int) -> None:\n    """Do f.\n\n    Args:\n        x: a number.\n    """\n'
        "    raise ValueError(x)\n"
    )
    done = subprocess.run([str(script), str(bad)], capture_output=True, text=True, env=env)
    assert done.returncode != 0
    assert "ValueError" in done.stdout


def test_cli_version_is_the_package_version() -> None:
    """``fastworker --version`` prints the installed distribution's version, the same as
    ``fastworker.__version__``: one number, written once in pyproject.toml."""
    import subprocess
    import sys

    import fastworker

    done = subprocess.run(
        [sys.executable, "-m", "fastworker", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"fastworker {fastworker.__version__}"
