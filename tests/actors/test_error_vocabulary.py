"""One error vocabulary: a failed connection has one name in both packages."""

from __future__ import annotations

import actors
import fastworker


def test_connection_failed_is_one_name_in_both_packages() -> None:
    """actors.ConnectionFailed is the runtime's connection error under fastworker's name;
    the old actors.ConnectFailed is the same class, and both layers' errors are builtin
    ConnectionErrors, so one ``except ConnectionError`` catches either."""
    assert actors.ConnectFailed is actors.ConnectionFailed
    assert issubclass(actors.ConnectionFailed, actors.LinkError)
    assert issubclass(actors.ConnectionFailed, ConnectionError)
    assert issubclass(fastworker.ConnectionFailed, ConnectionError)
    assert actors.ConnectionFailed.__name__ == fastworker.ConnectionFailed.__name__


async def test_memory_connect_failure_is_caught_by_either_name() -> None:
    """A connect to nothing on the memory transport raises an error that both the old and
    the new name (and the builtin ConnectionError) catch."""
    network = actors.memory_network()
    for catch in (actors.ConnectFailed, actors.ConnectionFailed, ConnectionError):
        try:
            async with network.connect("memory://nowhere"):
                raise AssertionError("connected to nothing")
        except catch as exc:
            assert "memory://nowhere" in str(exc)


def test_authentication_failed_is_one_name_in_both_packages() -> None:
    """actors.AuthenticationFailed is the runtime's refused-secret error under
    fastworker's name; the old actors.AuthenticationError is the same class, still a
    HandshakeError with close code 4001."""
    assert actors.AuthenticationError is actors.AuthenticationFailed
    assert issubclass(actors.AuthenticationFailed, actors.HandshakeError)
    assert actors.AuthenticationFailed("no").code == 4001
    assert actors.AuthenticationFailed.__name__ == fastworker.AuthenticationFailed.__name__
