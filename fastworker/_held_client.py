"""Holder: one trio client kept open in the process's trio thread.

Shared by the asyncio client (``_asyncio``) and the blocking client (``_blocking``):
both open the trio client of ``_client`` in the portal's thread (``_portal``) and keep
it there until closed.
"""

from __future__ import annotations

import trio

from ._client import Client, open_trio_client
from ._client_settings import ClientSettings
from ._portal import Portal


class Holder:
    """Keeps one trio client open in the portal until ``close`` (shared with the
    blocking client)."""

    def __init__(self, portal: Portal, settings: ClientSettings) -> None:
        self.portal = portal
        self.settings = settings
        self.client: Client | None = None
        self._stop: trio.Event | None = None
        self._finished: trio.Event | None = None

    async def open(self) -> Client:
        """Open the client in the trio thread (to be run there); returns it once connected."""
        assert self.portal._nursery is not None
        client: Client = await self.portal._nursery.start(self._hold)
        self.client = client
        return client

    async def _hold(self, *, task_status: trio.TaskStatus[Client]) -> None:
        self._stop = trio.Event()
        self._finished = trio.Event()
        try:
            async with open_trio_client(settings=self.settings) as client:
                task_status.started(client)
                await self._stop.wait()
        finally:
            self._finished.set()

    async def close(self) -> None:
        """Close the client and wait until it is closed (to be run in the trio thread)."""
        if self._stop is not None and self._finished is not None:
            self._stop.set()
            await self._finished.wait()
