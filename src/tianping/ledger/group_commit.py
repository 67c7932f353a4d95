"""Group commit: many concurrent small writes share one durable commit.

With `synchronous=FULL` every commit waits for the disk, so a ledger that commits each request on
its own is bounded by the disk's flush rate, not by the CPU. Like a database's own group commit
(and TigerBeetle's client-side batching), this module queues requests from many threads, lets
one writer thread take every request that is waiting, decides them together in one write
transaction and wakes each caller with its own results once the commit is durable.

Semantics are exactly those of separate requests: each request's linked chains are closed at its
own end (`request_ends`), results are sliced back per request, and no caller is answered before
the transaction holding its events has committed. If a merged transaction fails as a whole (a
lost database connection, say), each of its requests is retried alone, so one poisoned request
cannot fail the others.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tianping.ledger.errors import BatchTooLarge
from tianping.ledger.limits import TRANSFERS_PER_BATCH_MAX
from tianping.ledger.model import NewTransfer
from tianping.ledger.results import CreateTransferResult
from tianping.ledger.service import Ledger


@dataclass(slots=True)
class _Request:
    events: Sequence[NewTransfer]
    done: threading.Event = field(default_factory=threading.Event)
    results: list[CreateTransferResult] | None = None
    error: BaseException | None = None


class GroupCommitter:
    """Submit transfer batches from any thread; one writer thread commits them in groups."""

    def __init__(
        self,
        ledger: Ledger,
        events_per_commit_max: int = TRANSFERS_PER_BATCH_MAX,
        queue_size_max: int = 65_536,
        linger_us: int = 500,
    ) -> None:
        self.ledger = ledger
        self.events_per_commit_max = events_per_commit_max
        # When the previous commit served several callers, they are likely to be back within a
        # moment; waiting up to `linger_us` for them to queue lets one commit serve them all.
        # A lone caller never waits: lingering starts only once concurrency has been seen.
        self._linger_ns = linger_us * 1_000
        self._last_group_size = 1
        self._queue: queue.Queue[_Request | None] = queue.Queue(maxsize=queue_size_max)
        self._carry: _Request | None = None
        self._stopped = False
        self.commits = 0
        self.requests = 0
        self._thread = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
        self._thread.start()

    def create_transfers(
        self, events: Sequence[NewTransfer], timeout_s: int = 60
    ) -> list[CreateTransferResult]:
        """Create transfers as `Ledger.create_transfers` does; returns after the commit."""
        if len(events) > self.events_per_commit_max:
            raise BatchTooLarge(
                f"a batch holds at most {self.events_per_commit_max} transfers, not {len(events)}"
            )
        if self._stopped:
            raise RuntimeError("the group committer is closed")
        if not events:
            return []
        request = _Request(events)
        try:
            self._queue.put(request, timeout=timeout_s)
        except queue.Full:
            raise TimeoutError(f"the ledger's write queue stayed full for {timeout_s} s") from None
        if not request.done.wait(timeout_s):
            # The request may still commit later; the caller must retry with the same ids,
            # which the ledger answers with `exists` if it did.
            raise TimeoutError(f"the ledger did not answer within {timeout_s} s")
        if request.error is not None:
            raise request.error
        assert request.results is not None
        return request.results

    def close(self) -> None:
        """Finish every queued request, then stop the writer thread."""
        if self._stopped:
            return
        self._stopped = True
        self._queue.put(None)
        self._thread.join()

    def _take_group(self) -> list[_Request] | None:
        first = self._carry if self._carry is not None else self._queue.get()
        self._carry = None
        if first is None:
            return None
        group = [first]
        count = len(first.events)
        deadline_ns = time.monotonic_ns() + self._linger_ns if self._last_group_size > 1 else 0
        while count < self.events_per_commit_max:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                remaining_ns = deadline_ns - time.monotonic_ns()
                if remaining_ns <= 0 or len(group) >= self._last_group_size:
                    break
                try:
                    request = self._queue.get(timeout=remaining_ns / 1_000_000_000)
                except queue.Empty:
                    break
            if request is None:
                self._queue.put(None)  # keep the stop signal for the next round
                break
            if count + len(request.events) > self.events_per_commit_max:
                self._carry = request
                break
            group.append(request)
            count += len(request.events)
        self._last_group_size = len(group)
        return group

    def _run(self) -> None:
        while True:
            group = self._take_group()
            if group is None:
                return
            try:
                self._commit(group)
            except Exception:
                for request in group:
                    self._commit_alone(request)
            self.commits += 1
            self.requests += len(group)

    def _commit(self, group: list[_Request]) -> None:
        events: list[NewTransfer] = []
        ends: list[int] = []
        for request in group:
            events.extend(request.events)
            ends.append(len(events) - 1)
        with self.ledger.write() as uow:
            results = uow.create_transfers(events, request_ends=ends)
        start = 0
        for request in group:
            stop = start + len(request.events)
            request.results = results[start:stop]
            start = stop
            request.done.set()

    def _commit_alone(self, request: _Request) -> None:
        if request.done.is_set():
            return
        try:
            with self.ledger.write() as uow:
                request.results = uow.create_transfers(request.events)
        except Exception as error:
            request.error = error
        request.done.set()
