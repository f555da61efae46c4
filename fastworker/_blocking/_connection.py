"""The blocking client's link to the trio thread: who owns the portal and the held
trio client, the lock shared by every thread, and a fresh start after ``fork``."""

from __future__ import annotations

import os
import threading
import weakref
from types import TracebackType
from typing import Any, Self

from .._client import Client, ClientStatistics
from .._client_settings import ClientSettings
from .._errors import ConnectionFailed
from .._held_client import Holder
from .._portal import Portal, get_portal

_clients: weakref.WeakSet[BlockingBase] = weakref.WeakSet()


class BlockingBase:
    """Connecting, closing and the calls every part runs through (``_run``).

    Safe to share between threads: the first call (or ``connect``) opens the trio
    client in the process's trio thread; a forked child or a stopped thread starts
    afresh on its next call.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._pid = -1
        self._portal: Portal | None = None
        self._holder: Holder | None = None
        self._client: Client | None = None
        self._closed = False
        _clients.add(self)

    def _connected(self) -> tuple[Portal, Client]:
        portal, client = self._portal, self._client
        if portal is not None and client is not None and portal.alive:
            return portal, client  # alive: made in this process, its thread running
        with self._lock:
            if self._closed:
                raise ConnectionFailed("this client was closed: make a new one with connect()")
            if self._portal is not None and not self._portal.alive:
                # A forked child (the parent's trio thread does not exist here), or the
                # thread stopped: start afresh.
                self._portal = self._holder = self._client = None
            if self._client is None:
                portal = get_portal()
                holder = Holder(portal, self._settings)
                self._client = portal.run(holder.open)
                self._portal, self._holder, self._pid = portal, holder, os.getpid()
            assert self._portal is not None and self._client is not None
            return self._portal, self._client

    def connect(self) -> None:
        """Connect now (the first call does otherwise).

        Raises:
            ConnectionFailed: the control plane is unreachable within
                ``connect_timeout``, or this client was closed.
            AuthenticationFailed: the control plane refused the secret.
            ConfigurationError: a bad URL or secret, or a TLS context for a ws:// URL.
        """
        self._connected()

    def close(self) -> None:
        """Close the connection; calls waiting in other threads raise ConnectionFailed."""
        with self._lock:
            self._closed = True
            holder, portal = self._holder, self._portal
            same_process = self._pid == os.getpid()
            self._portal = self._holder = self._client = None
        if holder is not None and portal is not None and same_process and portal.alive:
            portal.run(holder.close)

    def __enter__(self) -> Self:
        self._connected()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The control plane's URL (connects first if needed)."""
        return self._connected()[1].url

    @property
    def connected(self) -> bool:
        """True while linked and registered (without connecting)."""
        client, portal = self._client, self._portal
        return client is not None and portal is not None and portal.alive and client.connected

    def statistics(self) -> ClientStatistics:
        """The client's own bookkeeping (see Client.statistics).

        Raises:
            ConnectionFailed: the control plane is unreachable (within
                ``connect_timeout`` at first use, ``reconnect_timeout`` later), or this
                client was closed.
        """
        return self._connected()[1].statistics()

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        portal, client = self._connected()
        return portal.run(getattr(client, method), *args, **kwargs)


def seconds(timeout: float | None) -> float:
    """A ``timeout=`` argument as seconds for ``trio.move_on_after`` (None: forever)."""
    return float("inf") if timeout is None else float(timeout)


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
