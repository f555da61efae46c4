"""One trio thread per process, shared by every asyncio and blocking client.

Clients made under asyncio or from plain threads live here: their trio side (actor
system, link, inbox) runs in this thread's ``trio.run``; a call from another thread or
loop starts one trio task here and gets its outcome back. A child process made by
``fork`` has no such thread: the first use there starts a fresh one.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from ._errors import ConnectionFailed

T = TypeVar("T")

_CANCELLED = object()


class Portal:
    """A trio loop in a daemon thread; ``get_portal()`` gives the process's one."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._error: BaseException | None = None
        # Calls not finished yet: the thread ending finishes them (as cancelled), so no
        # caller ever waits for a callback that a stopping trio run dropped.
        self._pending: set[Callable[[Any], None]] = set()
        self._pending_lock = threading.Lock()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="fastworker-trio", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to the thread that made the portal
            self._error = exc
            self._ready.set()
        finally:
            with self._pending_lock:
                self._finished = True
                pending, self._pending = self._pending, set()
            for finish in pending:
                finish(_CANCELLED)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await trio.sleep_forever()

    @property
    def alive(self) -> bool:
        """True in the process that made it, while its thread runs."""
        return self.pid == os.getpid() and self._thread.is_alive()

    def _start(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        done: Callable[[Any], None],
    ) -> trio.CancelScope:
        """Run ``fn(*args, **kwargs)`` in the trio thread; ``done`` gets ("ok", v), ("err", e) or
        _CANCELLED there. The returned scope cancels it (through ``cancel``)."""
        if self.pid != os.getpid():
            # A forked child: the thread is the parent's, and nothing here would ever
            # run the call (it would wait forever).
            raise ConnectionFailed(
                "this client's trio thread belongs to the process this one was forked "
                "from: open the client again in this process"
            )
        scope = trio.CancelScope()
        assert self._token is not None and self._nursery is not None
        nursery = self._nursery

        def finish(result: Any) -> None:
            with self._pending_lock:
                if finish not in self._pending:
                    return  # finished already (by the call, or by the thread ending)
                self._pending.discard(finish)
            done(result)

        async def guarded() -> None:
            result: Any = _CANCELLED
            try:
                with scope:
                    try:
                        result = ("ok", await fn(*args, **kwargs))
                    except Exception as exc:
                        result = ("err", exc)
            finally:
                finish(result)

        def spawn() -> None:
            try:
                nursery.start_soon(guarded)
            except RuntimeError:  # the nursery is closing: the portal is stopping
                finish(_CANCELLED)

        with self._pending_lock:
            stopped = self._finished
            if not stopped:
                self._pending.add(finish)
        if not stopped:
            try:
                self._token.run_sync_soon(spawn)
                return scope
            except trio.RunFinishedError:
                finish(_CANCELLED)
        raise ConnectionFailed("the client's trio thread has stopped")

    def cancel(self, scope: trio.CancelScope) -> None:
        """Cancel a call started by this portal (from any thread)."""
        assert self._token is not None
        try:
            self._token.run_sync_soon(scope.cancel)
        except trio.RunFinishedError:
            pass

    def run(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in the trio thread and block this thread until it ends.

        KeyboardInterrupt (or any exception) while waiting cancels the trio side.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("a blocking client call from inside its own trio thread")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        scope = self._start(fn, args, kwargs, future.set_result)
        try:
            result = future.result()
        except BaseException:
            self.cancel(scope)
            raise
        return _unwrap(result)

    async def run_async(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> T:
        """Await ``fn(*args, **kwargs)`` run in the trio thread from an asyncio task.

        Cancelling the awaiting asyncio task cancels the trio side; a trio side that is
        cancelled there (the thread stopping) cancels the awaiting task.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any) -> None:
            if not future.done():
                future.set_result(result)

        def done(result: Any) -> None:
            try:
                loop.call_soon_threadsafe(settle, result)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

        scope = self._start(fn, args, kwargs, done)
        try:
            result = await future
        except asyncio.CancelledError:
            self.cancel(scope)
            raise
        if result is _CANCELLED:
            raise asyncio.CancelledError("the call was cancelled in the client's trio thread")
        return _unwrap(result)

    def stop(self, timeout: float = 2.0) -> None:
        """Cancel everything in the trio thread (clients close their links) and wait
        for it to end, at most ``timeout`` seconds. Later calls raise ConnectionFailed."""
        if not self.alive or self._token is None or self._nursery is None:
            return
        try:
            self._token.run_sync_soon(self._nursery.cancel_scope.cancel)
        except trio.RunFinishedError:
            return
        self._thread.join(timeout)

    def start_nowait(self, fn: Callable[..., Awaitable[Any]], /, *args: Any) -> trio.CancelScope:
        """Start ``fn(*args)`` in the trio thread without waiting; errors are dropped."""
        return self._start(fn, args, {}, lambda result: None)


def _unwrap(result: Any) -> Any:
    if result is _CANCELLED:
        raise ConnectionFailed("the client's trio thread stopped while the call was running")
    kind, value = result
    if kind == "err":
        raise value
    return value


_lock = threading.Lock()
_portal: Portal | None = None


def get_portal() -> Portal:
    """This process's trio thread, started on first use (again in a forked child)."""
    global _portal
    portal = _portal
    if portal is not None and portal.alive:
        return portal
    with _lock:
        if _portal is None or not _portal.alive:
            _portal = Portal()
        return _portal


@atexit.register
def _stop_at_exit() -> None:
    # Clients still open say goodbye to their control planes instead of vanishing.
    portal = _portal
    if portal is not None:
        portal.stop()


def _after_fork_in_child() -> None:
    global _lock, _portal
    _lock = threading.Lock()
    _portal = None


os.register_at_fork(after_in_child=_after_fork_in_child)
