"""A background thread that voids expired holds on time, even when no one writes.

The ledger voids expired pending transfers at the start of every write, which is exact for
the writes themselves: no transfer can post an expired hold. Between writes, though, an expired
hold would still show as reserved in balance reads. A server process therefore runs this sweeper,
which asks the ledger to expire due holds once per interval; each sweep is one short write
transaction, and a sweep with nothing due writes nothing.
"""

from __future__ import annotations

import logging
import threading

from tianping.ledger.service import Ledger

logger = logging.getLogger(__name__)


class ExpirySweeper:
    """Calls `Ledger.expire_pending()` every `interval_ms` milliseconds until stopped."""

    def __init__(self, ledger: Ledger, interval_ms: int = 1000) -> None:
        self.ledger = ledger
        self.interval_ms = interval_ms
        self.expired = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-expiry-sweeper", daemon=True)

    def start(self) -> ExpirySweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_ms / 1000):
            try:
                self.expired += self.ledger.expire_pending()
            except Exception:
                # A failed sweep (the database briefly unreachable, say) is retried at the next
                # interval; the next write expires due holds in any case.
                logger.exception("expiring pending transfers failed; retrying next interval")
