"""The serving commands: run-actor-system, control-plane and subworker.

Each serves until Ctrl-C / SIGTERM (``_signals``), then drains: running tasks get
``--shutdown-timeout`` seconds to finish, and what is left ends with a reason its
clients hear. ``run-actor-system`` also starts and supervises subworker processes
(``_supervisor``).
"""

from __future__ import annotations

import argparse
import errno
import inspect
import logging
import os
import shlex
import ssl
from functools import partial
from typing import Any

import trio

from .._control_plane_node import open_control_plane
from .._errors import ConnectionFailed
from .._registry import default_registry
from .._settings import ControlPlaneSettings, SubworkerSettings
from .._subworker_node import run_subworker
from .._usage import UsageError
from ._exits import EXIT_INTERRUPTED, EXIT_OK
from ._security import children_ca, client_tls, read_secret, read_token, server_tls
from ._signals import Shutdown
from ._supervisor import ChildSupervisor

log = logging.getLogger("fastworker.cli")


def control_plane_settings(args: argparse.Namespace) -> ControlPlaneSettings:
    """The options of ``control-plane`` / ``run-actor-system`` (all but ``--tasks``) as
    a ControlPlaneSettings.

    Raises:
        UsageError: the secret or token file cannot be read or is empty, or both
            ``--dashboard`` and ``--no-dashboard`` were given.
    """
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "cluster": args.cluster,
        "secret": read_secret(args.secret_file),
        "result_cache_size": args.result_cache_size,
        "result_ttl": args.result_ttl,
        "result_cache_bytes": args.result_cache_bytes,
        "max_payload": args.max_payload,
        "aging": args.aging or None,
        "cancel_timeout": args.cancel_timeout,
        "max_queue": args.max_queue,
        "local_concurrency": _local_concurrency(args),
        "max_worker_losses": args.max_worker_losses,
        "journal": args.journal,
        "discovery": not args.no_discovery,
        "discovery_port": args.discovery_port,
        "broadcast_address": args.broadcast_address,
        "allow_unauthenticated_remote": args.insecure_allow_unauthenticated,
        "ssl_context": server_tls(args),
        **_dashboard_options(args),
    }
    return ControlPlaneSettings(**options)


def _dashboard_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.no_dashboard:
        if args.dashboard:
            raise UsageError("give --dashboard or --no-dashboard, not both")
        return {"dashboard": None}
    token = read_token(args.dashboard_token_file)
    return {"dashboard": args.dashboard or True, "dashboard_token": token}


def _local_concurrency(args: argparse.Namespace) -> int:
    """--local-concurrency, defaulting to 0 when the system has subworker processes."""
    if args.local_concurrency is not None:
        return int(args.local_concurrency)
    return 0 if getattr(args, "subworkers", 0) else ControlPlaneSettings().local_concurrency


async def _serve(args: argparse.Namespace, subworkers: int, concurrency: int) -> int:
    shutdown = Shutdown()
    supervisor = ChildSupervisor(args, concurrency) if subworkers else None
    crashed: list[BaseException] = []
    try:
        await _serve_until_stopped(args, subworkers, concurrency, shutdown, supervisor, crashed)
    except BaseException as exc:
        if _address_in_use(exc):
            raise UsageError(
                f"port {args.port} on {args.host} is already in use (another FastWorker "
                "system?): pick another with --port PORT (0: any free port)"
            ) from None
        raise
    finally:
        if supervisor is not None:
            # A second signal (or an error) cancels the graceful stop_all: the children
            # live in their own sessions and would outlive us, reconnecting forever.
            await supervisor.kill_all()
    if crashed:
        raise crashed[0]
    return EXIT_OK if not shutdown.forced else EXIT_INTERRUPTED


async def _serve_until_stopped(
    args: argparse.Namespace,
    subworkers: int,
    concurrency: int,
    shutdown: Shutdown,
    supervisor: ChildSupervisor | None,
    crashed: list[BaseException],
) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(shutdown.watch, nursery.cancel_scope.cancel)
        async with open_control_plane(args.tasks, settings=control_plane_settings(args)) as node:
            names = ", ".join(default_registry.names()) or (
                "none of its own: it runs what subworkers announce"
            )
            secret_flag = f" --secret-file {args.secret_file}" if args.secret_file else ""
            if args.cluster != "default":
                secret_flag += f" --cluster {args.cluster}"
            if args.tls_cert:
                secret_flag += f" --tls-ca {children_ca(args)}"
            example = _example_submission(default_registry)
            workers = (
                [f"{subworkers} subworker process(es) x {concurrency} slots"] if subworkers else []
            )
            local = _local_concurrency(args)
            if local:
                workers.append(f"{local} local slots while no subworker is joined")
            url = node.url
            where = ""
            if args.host in ("0.0.0.0", "::"):
                url = node.url.replace(args.host, "<this host's address>", 1)
                where = " (all interfaces)"
            print(
                f"FastWorker control plane at {node.url}{where} (cluster {args.cluster!r})\n"
                f"  tasks: {names}\n"
                f"  workers: {'; '.join(workers) or 'none yet: start a subworker'}\n"
                f"  submit one: fastworker submit {example} --wait --url {url}"
                + secret_flag
                + (f"\n  dashboard: {node.dashboard_url}/" if node.dashboard_url else "")
                + "\n  stop: Ctrl-C (drains running tasks first)",
                flush=True,
            )
            async with trio.open_nursery() as inner:
                if supervisor is not None:
                    for index in range(subworkers):
                        inner.start_soon(supervisor.supervise, index, node.url, crashed, shutdown)
                await shutdown.requested.wait()
                with trio.move_on_after(args.shutdown_timeout) as drain_scope:
                    await node.drain()
                reason = "shutdown"
                if drain_scope.cancelled_caught:
                    reason = (
                        f"the drain took longer than --shutdown-timeout {args.shutdown_timeout:g}s"
                    )
                    log.warning("%s; stopping anyway", reason)
                # Whatever did not finish ends now, with a reason its waiting clients hear.
                with trio.move_on_after(5.0):
                    await node.abandon(reason)
                if supervisor is not None:
                    await supervisor.stop_all()
                inner.cancel_scope.cancel()
        nursery.cancel_scope.cancel()


def _example_submission(registry: Any) -> str:
    """``TASK ARGS...`` for the banner, runnable as pasted: the first task that is not
    periodic, with a sample value for each required parameter (by its annotation)."""
    specs = [spec for spec in registry.specs() if not spec.periodic] or registry.specs()
    if not specs:
        return "TASK"
    spec = specs[0]
    samples = {int: "1", float: "1.5", str: "hello", bool: "true", list: "[]", dict: "{}"}
    words = [spec.name]
    try:
        signature = inspect.signature(spec.func, eval_str=True)
    except (TypeError, ValueError, NameError):
        return shlex.join(words)
    for param in signature.parameters.values():
        if param.default is not inspect.Parameter.empty or param.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        ):
            continue
        words.append(samples.get(param.annotation, "1"))
    return shlex.join(words)


def _address_in_use(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return any(_address_in_use(inner) for inner in exc.exceptions)
    return isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE


async def cmd_run_actor_system(args: argparse.Namespace) -> int:
    """fastworker run-actor-system"""
    return await _serve(args, args.subworkers, args.concurrency)


async def cmd_control_plane(args: argparse.Namespace) -> int:
    """fastworker control-plane"""
    return await _serve(args, 0, 0)


def subworker_settings(
    args: argparse.Namespace, ssl_context: ssl.SSLContext | None
) -> SubworkerSettings:
    """The options of ``fastworker subworker`` (all but ``--tasks``) as a SubworkerSettings.

    Raises:
        UsageError: the secret file cannot be read or is empty.
    """
    return SubworkerSettings(
        url=args.join,
        queues=args.queues,
        concurrency=args.concurrency,
        prefetch=args.prefetch,
        cluster=args.cluster,
        secret=read_secret(args.secret_file),
        discovery_port=args.discovery_port,
        ssl_context=ssl_context,
    )


async def cmd_subworker(args: argparse.Namespace) -> int:
    """fastworker subworker"""
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    ssl_context = client_tls(args.tls_ca)
    shutdown = Shutdown()
    async with trio.open_nursery() as nursery:
        await nursery.start(shutdown.watch, nursery.cancel_scope.cancel)
        node = None
        with trio.move_on_after(args.connect_timeout):
            settings = subworker_settings(args, ssl_context)
            node = await nursery.start(partial(run_subworker, tasks=args.tasks, settings=settings))
        if node is None:
            raise ConnectionFailed(
                f"no control plane found within {args.connect_timeout}s "
                + (f"at {args.join}" if args.join else f"for cluster {args.cluster!r}")
            )
        log.info(
            "subworker %s joined %s with %d slots", node.node_id[:8], node.url, args.concurrency
        )
        if args.ready_fd is not None:
            # Tell the supervisor we joined: a later death is a crash at run time (a task's
            # doing), not a subworker that cannot start.
            try:
                os.write(args.ready_fd, b"1")
                os.close(args.ready_fd)
            except OSError as exc:
                log.debug("could not signal readiness: %s", exc)
        if args.parent_pid is not None:
            nursery.start_soon(_exit_with_parent, args.parent_pid, shutdown)
        await shutdown.requested.wait()
        with trio.move_on_after(args.shutdown_timeout):
            await node.drain()
        nursery.cancel_scope.cancel()
    return EXIT_OK if not shutdown.forced else EXIT_INTERRUPTED


async def _exit_with_parent(parent_pid: int, shutdown: Shutdown) -> None:
    """A supervised subworker drains and exits when its supervisor dies (even by SIGKILL)."""
    while os.getppid() == parent_pid:  # noqa: ASYNC110 (no event exists for a parent's death)
        await trio.sleep(1.0)
    log.warning("the supervising process %d is gone: draining and exiting", parent_pid)
    shutdown.requested.set()
