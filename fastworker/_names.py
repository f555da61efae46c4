"""Names every node agrees on, in a module with no dependencies.

The client and the subworker only need the registration actor's *name* to reach it;
importing it from here (not from ``_gateway``) keeps them free of the server side
(the control plane, the journal and sqlite3).
"""

from __future__ import annotations

GATEWAY = "control-plane"
"""The registration actor's name on a control plane node: clients and subworkers ask it
for their own connection actor. (The name predates the split; it is on the wire, so it
stays.)"""
