"""Moved to ``fastworker._registration`` (the registration actor); kept for old imports."""

from ._registration import GATEWAY, REGISTRATION
from ._registration import Registration as Gateway

__all__ = ["GATEWAY", "REGISTRATION", "Gateway"]
