"""The billing service: tasks no other service has.

Started with ``fastworker subworker --tasks examples.services.billing``.
"""

from __future__ import annotations

import time

import trio

from fastworker import task

charges: list[str] = []


@task(name="billing.charge", retries=2)
async def charge(customer: str, cents: int) -> dict[str, object]:
    """Charge a customer (simulated). Submit it with ``unique_key=`` so a retried web
    request cannot charge twice."""
    await trio.sleep(0.05)
    return {"customer": customer, "cents": cents, "charged_at": time.time()}


@task(name="billing.invoice")
def invoice(customer: str) -> str:
    """Render an invoice (a sync task, run in a worker thread)."""
    return f"invoice for {customer}"
