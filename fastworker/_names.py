"""Actor names and node roles, defined once.

The names marked *wire* are how other nodes address an actor over a link (or how a
node announces itself in its hello): they are part of the protocol and never change.
The others name actors only inside the control plane's process.
"""

from __future__ import annotations

# -- actors of a control-plane node ---------------------------------------------------
REGISTRATION = "control-plane"
"""*wire*: the registration actor (``_registration``); clients and subworkers register
here and are answered the name of their own connection actor. The name predates it
being told apart from the control plane proper (below)."""

CONTROL_PLANE = "control-plane-core"
"""The ControlPlane actor (``_control_plane``): the task table, queues and dispatch."""

RESULT_CACHE = "result-cache"
"""The ResultCache actor: terminal outcomes and the clients waiting for them."""

SCHEDULER = "scheduler"
"""The Scheduler actor: ETAs, retry backoff, periodic ticks."""

JOURNAL = "journal"
"""The Journal actor (only with ``journal=``): the durable record of tasks."""

DASHBOARD = "dashboard"
"""The dashboard's hub (only with ``dashboard=``)."""

# -- actors on every worker node --------------------------------------------------------
EXECUTOR = "executor"
"""*wire*: a node's executor (the control plane's own, and each subworker's, which the
control plane sends runs to directly)."""

LOCAL_WORKER = "local"
"""The worker id of the control plane's own executor (in statistics and outcomes)."""


def client_connection(node_id: str, seq: int) -> str:
    """*wire*: the name of a registered client's connection actor."""
    return f"client/{node_id[:12]}/{seq}"


def worker_connection(worker_id: str) -> str:
    """*wire*: the name of a registered subworker's connection actor."""
    return f"worker/{worker_id}"


# -- node roles (announced in each hello; *wire*) ----------------------------------------
ROLE_CONTROL_PLANE = "control-plane"
ROLE_SUBWORKER = "subworker"
ROLE_CLIENT = "client"
