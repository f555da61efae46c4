"""Billing tasks: charging customers, and a periodic sync with the accounting system."""

from __future__ import annotations

import trio

from fastworker import Priority, task


class PaymentProviderDown(ConnectionError):
    """The payment provider did not answer: worth retrying later."""


@task(
    name="billing.charge",
    priority=Priority.HIGH,
    retries=3,
    retry_backoff=5.0,
    retry_on=PaymentProviderDown,
    timeout=30.0,
)
async def charge(customer_id: str, cents: int) -> dict[str, object]:
    """Charge a customer.

    HIGH priority: charges go before reports. A ``PaymentProviderDown`` is retried up
    to 3 times with backoff starting at 5 s; a ``ValueError`` (bad input) is not.
    """
    if cents <= 0:
        raise ValueError(f"cannot charge {cents} cents")
    await trio.sleep(0.01)  # stands in for the call to the payment provider
    return {"customer": customer_id, "cents": cents, "receipt": f"r-{customer_id}-{cents}"}


@task(name="billing.sync_invoices", repeat_interval=300)
def sync_invoices() -> int:
    """Every 5 minutes: pull new invoices from the accounting system.

    Periodic tasks take no arguments. A run never overlaps the previous one: a tick
    that comes while the last run is still going is skipped.
    """
    return 0  # the number of invoices synced; a real app would do the work here
