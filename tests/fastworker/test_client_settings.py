"""ClientSettings, and the shape of the client modules.

``open_client`` (trio and asyncio) and ``connect`` take their options as keywords or as
one ``ClientSettings`` record, never both; the trio client never imports the flavours
built on it. Against a real control plane on loopback, as in test_reach_clients.py.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from sample_tasks import add

import fastworker
from fastworker import ClientSettings, ConfigurationError, ControlPlaneNode

PACKAGE = Path(fastworker.__file__).resolve().parent
TASKS = ["sample_tasks"]
SMALL = 100_000  # a max_payload no default has, to see the settings arrive
BIG = "x" * 200_000  # an argument over SMALL, under the default max_payload


@asynccontextmanager
async def control_plane() -> AsyncIterator[ControlPlaneNode]:
    """An embedded control plane on a free loopback port, running tasks itself."""
    async with fastworker.open_control_plane(
        tasks=TASKS, port=0, discovery=False, local_concurrency=4
    ) as cp:
        yield cp


def in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking code in a worker thread (bounded by the caller's trio timeout)."""
    return trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


def _options(fn: Any, *skip: str) -> dict[str, Any]:
    """``fn``'s parameters (but ``skip``) with their defaults."""
    parameters = inspect.signature(fn).parameters
    return {name: p.default for name, p in parameters.items() if name not in skip}


# -- the record and the signatures --------------------------------------------------------


def test_client_settings_mirror_open_client_and_connect() -> None:
    """ClientSettings has exactly open_client's options (url included, settings not),
    with the same defaults; connect takes the same ones plus ``lazy``: the ways to
    configure a client cannot drift apart."""
    defaults = attrs.asdict(ClientSettings(), recurse=False)
    assert _options(fastworker.open_client, "settings") == defaults
    assert _options(fastworker.connect, "settings", "lazy") == defaults
    assert _options(fastworker.connect)["lazy"] is False


def test_client_options_are_keyword_only_but_url() -> None:
    """Only ``url`` may be passed positionally to open_client and connect: every other
    option (``settings`` and ``lazy`` included) is keyword-only."""
    for fn in (fastworker.open_client, fastworker.connect):
        parameters = list(inspect.signature(fn).parameters.values())
        assert parameters[0].name == "url"
        assert parameters[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        rest = parameters[1:]
        assert len(rest) >= 9 and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest)


def test_client_settings_is_a_frozen_record() -> None:
    """A ClientSettings cannot be changed in place (attrs.evolve makes a new one), and
    takes its fields by keyword only."""
    settings = ClientSettings(url="ws://127.0.0.1:1", cluster="a")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.cluster = "b"  # type: ignore[misc]
    assert attrs.evolve(settings, cluster="b").cluster == "b" and settings.cluster == "a"
    with pytest.raises(TypeError):
        ClientSettings("ws://127.0.0.1:1")  # type: ignore[misc]


def test_open_client_refuses_settings_with_other_options() -> None:
    """open_client(settings=..., other options) raises ConfigurationError at the call,
    naming the options passed (``url`` too, positionally or not) and what to do."""
    settings = ClientSettings(url="ws://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match=r"settings= and cluster, max_payload: put"):
        fastworker.open_client(settings=settings, cluster="b", max_payload=SMALL)
    with pytest.raises(ConfigurationError, match=r"settings= and url: .*attrs\.evolve"):
        fastworker.open_client("ws://127.0.0.1:2", settings=settings)
    # An option left at its default is not "another option": this one is accepted.
    fastworker.open_client(settings=settings, cluster="default")


def test_connect_refuses_settings_with_other_options() -> None:
    """connect(settings=..., other options) raises ConfigurationError before connecting,
    naming them; ``lazy`` is not a connection option and may go beside settings."""
    settings = ClientSettings(url="ws://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match=r"connect got settings= and secret"):
        fastworker.connect(settings=settings, secret="s3cret", lazy=True)
    with pytest.raises(ConfigurationError, match=r"settings= and url"):
        fastworker.connect("ws://127.0.0.1:1", settings=settings, lazy=True)
    client = fastworker.connect(settings=settings, lazy=True)
    assert client.connected is False
    client.close()


def test_settings_must_be_a_client_settings() -> None:
    """Another record (a ControlPlaneSettings, a dict) as ``settings`` is refused with a
    message naming the type it takes."""
    for wrong in (fastworker.ControlPlaneSettings(), {"url": "ws://127.0.0.1:1"}):
        with pytest.raises(ConfigurationError, match=r"takes a fastworker\.ClientSettings"):
            fastworker.open_client(settings=wrong)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match=r"takes a fastworker\.ClientSettings"):
            fastworker.connect(settings=wrong, lazy=True)  # type: ignore[arg-type]


# -- each flavour connects with the settings -----------------------------------------------


async def test_open_client_takes_a_settings_object_under_trio() -> None:
    """Under trio, open_client(settings=...) connects to the settings' URL with their
    options (here max_payload) and runs tasks."""
    async with control_plane() as cp:
        settings = ClientSettings(url=cp.url, max_payload=SMALL, connect_timeout=30.0)
        with trio.fail_after(60):
            async with fastworker.open_client(settings=settings) as client:
                assert client.url == cp.url and client.max_payload == SMALL
                assert await client.call(add, 1, 2) == 3


async def test_open_client_takes_a_settings_object_under_asyncio() -> None:
    """Under asyncio, open_client(settings=...) gives the asyncio client with those
    settings, and mixing settings with options raises ConfigurationError there too."""

    async def app(settings: ClientSettings) -> tuple[int, int]:
        with pytest.raises(ConfigurationError, match="settings= and reconnect_timeout"):
            fastworker.open_client(settings=settings, reconnect_timeout=1.0)
        async with fastworker.open_client(settings=settings) as client:
            return client.max_payload, await client.call(add, 2, 3)

    async with control_plane() as cp:
        settings = ClientSettings(url=cp.url, max_payload=SMALL, connect_timeout=30.0)
        with trio.fail_after(60):
            max_payload, value = await in_thread(asyncio.run, app(settings))
    assert (max_payload, value) == (SMALL, 5)


async def test_connect_takes_a_settings_object() -> None:
    """connect(settings=...) gives a blocking client with those settings, lazy or not:
    it reaches the settings' URL, and their max_payload refuses a bigger argument."""

    def sync_code(settings: ClientSettings) -> tuple[str, int, int]:
        with fastworker.connect(settings=settings) as client:
            first = client.call(add, 3, 4, timeout=30.0)
        lazy = fastworker.connect(settings=settings, lazy=True)
        try:
            second = lazy.call(add, 4, 5, timeout=30.0)
            with pytest.raises(fastworker.PayloadTooLarge):
                lazy.delay(add, BIG, 1)
            return lazy.url, first, second
        finally:
            lazy.close()

    async with control_plane() as cp:
        settings = ClientSettings(url=cp.url, max_payload=SMALL, connect_timeout=30.0)
        with trio.fail_after(60):
            url, first, second = await in_thread(sync_code, settings)
    assert (url, first, second) == (cp.url, 7, 9)


# -- the modules ---------------------------------------------------------------------------


def _imported_modules(path: Path) -> set[str]:
    """Every ``fastworker`` module a source file imports, anywhere in it (functions and
    TYPE_CHECKING blocks included), as a name relative to the package."""
    package = path.parent.relative_to(PACKAGE).parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = package[: len(package) - (node.level - 1)]
            names = [node.module] if node.module else [alias.name for alias in node.names]
            found.update(".".join([*base, name]).split(".")[0] for name in names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fastworker."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
    return found


def test_the_trio_client_never_imports_the_flavours_built_on_it() -> None:
    """No module of ``_client`` imports the asyncio or blocking clients, the portal, or
    open_client's flavour picker, not even lazily or for types: imports point one way."""
    above = {"_asyncio", "_blocking", "_open_client", "_held_client", "_portal"}
    files = sorted((PACKAGE / "_client").glob("*.py"))
    assert len(files) >= 8
    reached = {name for path in files for name in _imported_modules(path)}
    assert "_errors" in reached  # the walk does see the package's own imports
    assert not reached & above, sorted(reached & above)
    asyncio_side = _imported_modules(PACKAGE / "_asyncio.py")
    assert "_client" in asyncio_side and not asyncio_side & {"_blocking", "_open_client"}


def test_the_client_modules_stay_small_and_keep_their_import_paths() -> None:
    """Every module of the clients is under 400 lines, and the names code imports from
    the old places still resolve to the public ones."""
    import fastworker._blocking as blocking
    import fastworker._client as trio_client

    paths = [
        *(PACKAGE / "_blocking").glob("*.py"),
        *(PACKAGE / "_client").glob("*.py"),
        *(PACKAGE / name for name in ("_asyncio.py", "_portal.py", "_open_client.py")),
    ]
    sizes = {p.name: len(p.read_text().splitlines()) for p in paths}
    assert max(sizes.values()) < 400, sizes
    assert blocking.connect is fastworker.connect
    assert blocking.BlockingClient is fastworker.BlockingClient
    assert trio_client.Client is fastworker.Client
