"""The runtime's module layout keeps the names its importers use.

``actors/_link.py`` was split into ``_link_protocol``, ``_handshake``, ``_link`` and
``_peer``, and the ``ActorRef``/``Reply`` interfaces moved below the mailbox
(``_ref_base``). These tests pin what code written against the old layout relies on.
"""

from __future__ import annotations

import subprocess
import sys

import actors
import actors._link
import actors._ref


def test_reply_is_public_and_still_importable_from_ref() -> None:
    """``actors.Reply`` is exported, and ``actors._ref`` still hands out the same classes."""
    assert "Reply" in actors.__all__
    assert actors._ref.Reply is actors.Reply
    assert actors._ref.Future is actors.Future
    assert actors._ref.ActorRef is actors.ActorRef
    assert issubclass(actors.Future, actors.Reply)


def test_link_module_still_offers_the_protocol_names() -> None:
    """Tests and tools that import the handshake and control messages from ``_link`` work."""
    for name in ("Hello", "Proof", "Ping", "Notice", "LinkConfig", "PROTOCOL_VERSION"):
        assert getattr(actors._link, name) is getattr(actors._link_protocol, name), name
    assert actors._link.handshake is actors._handshake.handshake
    assert actors._link.Link is actors.Link


def test_public_names_come_from_their_new_homes() -> None:
    """Peer, RemoteRef and the link events are the classes the runtime uses itself."""
    assert actors.Peer is actors._peer.Peer
    assert actors.RemoteRef is actors._peer.RemoteRef
    assert actors.LinkUp is actors._peer.LinkUp
    assert actors.LinkDown is actors._peer.LinkDown
    for name in actors.__all__:
        assert hasattr(actors, name), name


def test_importing_actors_does_not_load_the_websocket_stack() -> None:
    """trio_websocket is imported only when a ws:// URL is used (a fresh interpreter)."""
    code = "import sys, actors; print('trio_websocket' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


def test_context_and_system_config_are_one_class_each_at_run_time() -> None:
    """``actors.Context`` is the runtime's Context class itself (``Context[ActorSystem]``
    exists for type checkers only), and SystemConfig moved below the system but is the
    same class under its old address."""
    import actors._node
    import actors._system

    assert actors.Context is actors._actor.Context
    assert actors._system.Context is actors._actor.Context
    assert actors.SystemConfig is actors._system.SystemConfig is actors._node.SystemConfig


async def test_the_parts_of_a_node_get_the_system_they_run_in() -> None:
    """The supervisor, a Context, a peer and its link all hold the very ActorSystem they
    run in (they only type it through the protocols of their own layer)."""
    seen: list[object] = []

    class Probe(actors.Actor):
        async def receive(self, ctx: actors.Context, message: object) -> object:
            seen.append(ctx.system)
            return message

    async with actors.open_actor_system() as a, actors.open_actor_system() as b:
        await b.spawn("probe", Probe)
        peer = await a.connect(await b.listen("memory://layout-system-probe"))
        assert await peer.ref("probe").ask("hi") == "hi"
        assert seen == [b]
        assert a.root.system is a and peer.system is a
        assert peer.link is not None and peer.link.system is a


def test_the_pure_discovery_modules_import_neither_trio_nor_sockets() -> None:
    """The beacon wire format and the peer bookkeeping stay trio-free (and socket-free),
    so they can be tested and reused without an event loop."""
    import ast
    import pathlib

    for name in ("_discovery_beacon", "_discovery_peers"):
        path = pathlib.Path(actors.__file__).with_name(f"{name}.py")
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
        assert imported, name
        assert not imported & {"trio", "socket", "trio_websocket"}, (name, imported)
