"""Moved to ``fastworker._control_plane._flows`` (kept so old imports keep working)."""

from ._control_plane._flows import FlowTable
from ._protocol import AcceptFlow, JournaledFlow, RestoreFlows

__all__ = ["AcceptFlow", "FlowTable", "JournaledFlow", "RestoreFlows"]
