"""The port through which another context tells AML about money it moves in and out of wallets.

The AML large-value reports (regulation.md A1, A2) must cover every movement of a customer's
money on a business day, and some of it is moved by other contexts on the same ledger: lending
pays loans into wallets and takes repayments out of them. Payments does not know how lending
records these (and must not import it: lending depends on payments, not the reverse), so
lending implements `WalletMovementSource` (`LendingService.wallet_movements`) and the
composition root attaches it to the payments service, as it does the credit-line port.
"""

from __future__ import annotations

from typing import Protocol

from tianping.payments.store import MovementRow

__all__ = ["WalletMovementSource"]


class WalletMovementSource(Protocol):
    """Movements of customers' money that another context executed in a span of time."""

    def wallet_movements(self, start_ns: int, end_ns: int, limit: int) -> list[MovementRow]:
        """The movements executed from `start_ns` up to, not including, `end_ns` (ns since the
        epoch), at most `limit` of them, in no particular order.

        Each row has one customer side: `flow` names it (lower case and `_`, as the AML exports
        show it), `movement_id` names its record (so `<flow>:<movement_id>` is a stable
        transaction id), `party_id` is the customer, `other_id` the pseudonymous counterparty,
        `kind` the customer's kind (`person` or `entity`). The flow decides the direction (see
        `tianping.payments.aml_service`)."""
        ...
