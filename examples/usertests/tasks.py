"""A shop's tasks: the code under test in this example."""

from __future__ import annotations

from fastworker import task


class GatewayDown(ConnectionError):
    """The payment gateway did not answer: worth retrying later."""


class PaymentGateway:
    """Stands in for a payment provider's client library (tests replace ``charge``)."""

    def charge(self, order_id: str, cents: int) -> str:
        """Charge and return a receipt id."""
        return f"rcpt-{order_id}-{cents}"


gateway = PaymentGateway()


@task(name="shop.charge", retries=4, retry_backoff=30.0, retry_on=GatewayDown)
def charge(order_id: str, cents: int) -> dict[str, object]:
    """Charge an order; a ``GatewayDown`` is retried up to 4 times, backoff from 30 s."""
    if cents <= 0:
        raise ValueError(f"order {order_id}: cannot charge {cents} cents")
    receipt = gateway.charge(order_id, cents)
    return {"order": order_id, "receipt": receipt}


@task(name="shop.weekday_digest", cron="0 9 * * 1-5")
def weekday_digest() -> str:
    """At 09:00 UTC, Monday to Friday."""
    return "digest sent"
