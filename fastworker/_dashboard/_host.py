"""What the dashboard needs of the node it runs in (an interface, not the node).

The control plane node (what ``open_control_plane`` yields) imports the dashboard and
hands itself to ``serve_dashboard``; the dashboard knows it only as a
``ControlPlaneHost``, so it never imports the node (imports point down; mypy checks
where the node hands itself over that it is one). Every member here is one the
dashboard uses: change the node's and this file's together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import actors

    from .._clock import WallClock
    from .._control_plane import Observer
    from .._records import ClusterStats
    from .._registry import Registry


class ObservedControlPlane(Protocol):
    """The control plane actor's one observer slot (the dashboard's Hub takes it)."""

    observer: Observer | None


class CommitTimed(Protocol):
    """The journal's commit hook (the Hub times commits for ``/metrics``)."""

    on_commit: Callable[[float], None] | None


class ControlPlaneHost(Protocol):
    """The running control plane node, as the dashboard sees it.

    ``system`` spawns the Hub and reaches the actors by name (the control plane and the
    result cache); ``control_plane`` and ``journal`` (None without one) are where the
    Hub hooks in; ``statistics`` and ``next_fire_times`` feed the page, the API and
    ``/metrics``; ``registry`` lists the periodic tasks; ``url`` is shown on the page;
    ``clock`` stamps the ring's times.
    """

    @property
    def url(self) -> str:
        """Where subworkers and clients connect."""
        ...

    @property
    def system(self) -> actors.ActorSystem:
        """The node's actor system."""
        ...

    @property
    def control_plane(self) -> ObservedControlPlane:
        """The control plane actor."""
        ...

    @property
    def journal(self) -> CommitTimed | None:
        """The journal actor, or None without one."""
        ...

    @property
    def registry(self) -> Registry:
        """The tasks this node knows."""
        ...

    @property
    def clock(self) -> WallClock:
        """The node's wall clock."""
        ...

    async def statistics(self) -> ClusterStats:
        """A snapshot of queues, workers and counters."""
        ...

    async def next_fire_times(self) -> dict[str, float]:
        """Next wall-clock fire time of each periodic task."""
        ...
