"""Serving the dashboard: the address rules and hypercorn's trio worker in the node's nursery."""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

import attrs
import trio

from .. import _names as names
from .._errors import ConfigurationError
from .._node import is_loopback
from ._host import ControlPlaneHost
from ._hub import HUB, Hub
from ._ring import DEFAULT_KEEP_ARGUMENTS, DEFAULT_RECENT_BYTES, DEFAULT_RECENT_TASKS, RecentTasks

log = logging.getLogger("fastworker.dashboard")

DEFAULT_DASHBOARD_HOST = "127.0.0.1"
DEFAULT_DASHBOARD_PORT = 8766
DEFAULT_DASHBOARD = f"{DEFAULT_DASHBOARD_HOST}:{DEFAULT_DASHBOARD_PORT}"


@attrs.frozen
class DashboardConfig:
    """Where and how the dashboard serves.

    ``explicit`` False (the default address) means: if the address is taken, run
    without a dashboard and say so; True: a taken address is an error. ``token``
    (required off loopback) is what ``Authorization: Bearer`` must carry.
    """

    host: str = DEFAULT_DASHBOARD_HOST
    port: int = DEFAULT_DASHBOARD_PORT
    token: str | None = None
    explicit: bool = True
    recent_tasks: int = DEFAULT_RECENT_TASKS
    recent_bytes: int = DEFAULT_RECENT_BYTES
    keep_arguments: int = DEFAULT_KEEP_ARGUMENTS



def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8766`` for IPv6) as (host, port).

    Raises:
        ConfigurationError: not HOST:PORT, or the port is not 0-65535.
    """
    host, sep, port_text = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigurationError(
            f"--dashboard takes HOST:PORT (e.g. {DEFAULT_DASHBOARD}), got {text!r}"
        )
    return host, int(port_text)


def dashboard_config(
    dashboard: str | bool | DashboardConfig | None, token: str | None = None
) -> DashboardConfig | None:
    """What ``open_control_plane(dashboard=...)`` takes, as a DashboardConfig or None (off).

    ``True``: the default address (skipped with a warning if taken); ``"HOST:PORT"``:
    that address (it must be free); ``None``/``False``: no dashboard.

    Raises:
        ConfigurationError: a bad address, or a non-loopback one without a token.
    """
    if dashboard is None or dashboard is False:
        return None
    if dashboard is True:
        config = DashboardConfig(token=token, explicit=False)
    elif isinstance(dashboard, str):
        host, port = parse_address(dashboard)
        config = DashboardConfig(host, port, token=token, explicit=True)
    elif isinstance(dashboard, DashboardConfig):
        config = dashboard if token is None else attrs.evolve(dashboard, token=token)
    else:
        raise ConfigurationError(f"dashboard must be True, 'HOST:PORT' or None, got {dashboard!r}")
    if config.token is not None and not config.token.strip():
        raise ConfigurationError("the dashboard token is empty: put a long random secret in it")
    if not is_loopback(config.host) and config.token is None:
        raise ConfigurationError(
            f"refusing to serve the dashboard on {config.host} without a token: anyone who "
            "can reach it could submit and cancel tasks. Give --dashboard-token-file FILE "
            "(dashboard_token=...), or bind it to 127.0.0.1"
        )
    return config


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve_dashboard(
    node: ControlPlaneHost,
    config: DashboardConfig,
    cluster: str,
    max_payload: int,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``node``'s dashboard until cancelled; reports its URL, or None if skipped.

    ``node`` is the control plane node, known here only by what the dashboard uses of
    it (``ControlPlaneHost``): the Hub becomes its control plane's observer.

    Raises:
        ConfigurationError: an explicit address that is taken or cannot be bound.
    """
    try:
        sock = _bind(config.host, config.port)
    except OSError as exc:
        where = f"{config.host}:{config.port}"
        if not config.explicit and exc.errno == errno.EADDRINUSE:
            log.warning(
                "dashboard address %s is taken (another FastWorker system on this host?): "
                "starting without the dashboard; choose one with --dashboard HOST:PORT",
                where,
            )
            task_status.started(None)
            return
        raise ConfigurationError(
            f"cannot serve the dashboard at {where}: {exc.strerror or exc}; choose a free "
            "address with --dashboard HOST:PORT, or turn it off with --no-dashboard"
        ) from None
    # Imported here: a control plane without a dashboard does not pay for them.
    from hypercorn.config import Config, Sockets
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import wrap_app

    from ._app import DashboardApp

    with sock:
        ring = RecentTasks(config.recent_tasks, config.recent_bytes, config.keep_arguments)
        core_ref = node.system.ref(names.CONTROL_PLANE)
        hub = Hub(core_ref, ring, node.clock.now)
        await node.system.spawn(HUB, hub, capacity=10_000, overflow="drop_oldest")
        node.control_plane.observer = hub.observe
        if node.journal is not None:
            node.journal.on_commit = hub.journal_commit
        allowed = None
        if config.token is None:
            allowed = frozenset({"127.0.0.1", "localhost", "::1", config.host})
        app = DashboardApp(
            node,
            hub,
            token=config.token,
            allowed_hosts=allowed,
            cluster=cluster,
            max_payload=max_payload,
        )
        hconfig = Config()
        hconfig.accesslog = None
        http_log = logging.getLogger("fastworker.dashboard.http")
        if http_log.level == logging.NOTSET:
            http_log.setLevel(logging.WARNING)  # hypercorn's own "Running on" line
        hconfig.errorlog = http_log
        hconfig.include_server_header = False
        hconfig.graceful_timeout = 1.0
        url = _url(sock)
        log.info("dashboard at %s/", url)
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: worker_serve(
                    wrap_app(app.asgi, hconfig.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
                    hconfig,
                    sockets=Sockets([], [sock], []),
                    task_status=task_status,
                )
            )
            task_status.started(url)
