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

Callers on an asyncio event loop (the HTTP API) use `submit_async`, which parks the coroutine
instead of a thread: the writer wakes the loop with the results, so a request does not need a
worker thread of its own just to wait for its commit.

The machinery (queue, writer thread, lingering, the fallback to one request per transaction) is
`Batcher`, generic over what a request carries and what it gets back, so that other contexts'
writes (payments, say) share durable commits the same way; `GroupCommitter` is the ledger's own
use of it, for transfer batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from tianping.ledger.errors import BatchTooLarge
from tianping.ledger.limits import TRANSFERS_PER_BATCH_MAX
from tianping.ledger.model import NewTransfer
from tianping.ledger.results import CreateTransferResult
from tianping.ledger.service import Ledger

E = TypeVar("E")
R = TypeVar("R")


def split_by_request(batches: Sequence[Sequence[E]], results: Sequence[R]) -> list[list[R]]:
    """The results of the requests' events, committed together in order, back per request."""
    answers: list[list[R]] = []
    start = 0
    for batch in batches:
        answers.append(list(results[start : start + len(batch)]))
        start += len(batch)
    return answers


class _Request(Generic[E, R]):
    """One caller's batch, and how the writer tells the caller that its commit is durable.

    A thread caller sleeps on `done`: a plain lock, acquired at creation and released by the
    writer, is the cheapest way in CPython to park one thread until another says so (an `Event`
    adds a condition variable). An event-loop caller passes `on_done` instead, which the writer
    calls (on its own thread) in place of releasing the lock.
    """

    __slots__ = ("done", "error", "events", "on_done", "results")

    def __init__(self, events: Sequence[E], on_done: Callable[[], None] | None = None) -> None:
        self.events = events
        self.on_done = on_done
        self.done = threading.Lock()
        if on_done is None:
            self.done.acquire()
        self.results: list[R] | None = None
        self.error: BaseException | None = None

    def finish(self) -> None:
        if self.on_done is None:
            self.done.release()
        else:
            self.on_done()

    def outcome(self) -> list[R]:
        """The results once finished, or the error that failed the request."""
        if self.error is not None:
            raise self.error
        # A finished request carries its results or its error.
        assert self.results is not None
        return self.results


# Commits the events of several requests in one durable transaction: given each request's
# events, returns each request's results, in the same order.
CommitGroup = Callable[[list[Sequence[E]]], list[list[R]]]


class Batcher(Generic[E, R]):
    """Submit batches of events from any thread; one writer thread commits them in groups.

    `commit_group` commits the events of several requests in one transaction and returns each
    request's results; when it fails as a whole, each request is retried alone through the same
    function, so one poisoned request cannot fail the others.
    """

    def __init__(
        self,
        commit_group: CommitGroup[E, R],
        name: str,
        events_per_commit_max: int,
        queue_size_max: int = 65_536,
        linger_us: int = 500,
    ) -> None:
        self._commit_group = commit_group
        self.name = name
        self.events_per_commit_max = events_per_commit_max
        self.queue_size_max = queue_size_max
        # When the previous commit served several callers, they are likely to be back within a
        # moment; pausing once for up to `linger_us` lets one commit serve them all. A lone
        # caller never waits: lingering starts only once concurrency has been seen.
        self._linger_s = linger_us / 1_000_000
        self._last_group_size = 1
        # Callers append to the deque and the writer pops from it; both are atomic in CPython,
        # so a submission takes no lock and wakes the writer only when it is asleep.
        self._pending: deque[_Request[E, R]] = deque()
        self._writer_asleep = False
        self._wakeup = threading.Event()
        self._stopped = False
        self.commits = 0
        self.requests = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, events: Sequence[E], timeout_s: int = 60) -> list[R]:
        """Commit `events` with whatever else is waiting; returns their results after the commit."""
        if not events:
            self._check_submission(events)
            return []
        request: _Request[E, R] = _Request(events)
        self._enqueue(request)
        if not request.done.acquire(timeout=timeout_s):
            # The request may still commit later; the caller must retry with the same ids,
            # which the ledger answers with `exists` if it did.
            raise TimeoutError(f"the {self.name} writer did not answer within {timeout_s} s")
        return request.outcome()

    async def submit_async(self, events: Sequence[E], timeout_s: int = 60) -> list[R]:
        """`submit` for a coroutine: the same semantics, but the event loop keeps running.

        The writer thread wakes the loop through `call_soon_threadsafe` once the commit is
        durable; no thread is parked for the caller meanwhile.
        """
        if not events:
            self._check_submission(events)
            return []
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            # Runs on the loop; the caller may have stopped waiting (its timeout passed).
            if not finished.done():
                finished.set_result(None)

        def wake_loop() -> None:
            # Runs on the writer thread, which must survive a loop that has since closed.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(resolve)

        request: _Request[E, R] = _Request(events, wake_loop)
        self._enqueue(request)
        try:
            await asyncio.wait_for(finished, timeout_s)
        except TimeoutError:
            # As in `submit`: the request may still commit later, and a retry with the same
            # ids is answered with `exists` if it did.
            raise TimeoutError(
                f"the {self.name} writer did not answer within {timeout_s} s"
            ) from None
        return request.outcome()

    def _check_submission(self, events: Sequence[E]) -> None:
        if len(events) > self.events_per_commit_max:
            raise BatchTooLarge(
                f"a batch holds at most {self.events_per_commit_max} events, not {len(events)}"
            )
        if self._stopped:
            raise RuntimeError(f"the {self.name} batcher is closed")

    def _enqueue(self, request: _Request[E, R]) -> None:
        self._check_submission(request.events)
        if len(self._pending) >= self.queue_size_max:
            # Shed load at once rather than queue work that would wait longer than any client.
            raise TimeoutError(f"the {self.name} queue is full ({self.queue_size_max} requests)")
        self._pending.append(request)
        if self._writer_asleep:
            self._wakeup.set()

    def close(self) -> None:
        """Finish every queued request, then stop the writer thread."""
        if self._stopped:
            return
        self._stopped = True
        self._wakeup.set()
        self._thread.join()

    def _wait_for_work(self) -> bool:
        """Sleep until a request is pending; False once closed with nothing left to do."""
        while not self._pending:
            if self._stopped:
                return False
            self._writer_asleep = True
            # Check again after announcing sleep: a caller that appended before seeing the flag
            # did not set the event, and its request must not wait for the next one.
            if not self._pending and not self._stopped:
                self._wakeup.wait()
            self._wakeup.clear()
            self._writer_asleep = False
        return True

    def _take_group(self) -> list[_Request[E, R]]:
        if self._last_group_size > 1 and len(self._pending) < self._last_group_size:
            time.sleep(self._linger_s)
        group: list[_Request[E, R]] = []
        count = 0
        pending = self._pending
        while pending:
            request = pending[0]
            if group and count + len(request.events) > self.events_per_commit_max:
                break
            pending.popleft()
            group.append(request)
            count += len(request.events)
        self._last_group_size = len(group)
        return group

    def _run(self) -> None:
        while self._wait_for_work():
            group = self._take_group()
            try:
                self._commit(group)
            except Exception:
                for request in group:
                    self._commit_alone(request)
            self.commits += 1
            self.requests += len(group)

    def _commit(self, group: list[_Request[E, R]]) -> None:
        results = self._commit_group([request.events for request in group])
        for request, answer in zip(group, results, strict=True):
            request.results = answer
        for request in group:
            request.finish()

    def _commit_alone(self, request: _Request[E, R]) -> None:
        if request.results is not None:
            # Its group committed before the failure; it only needs waking.
            request.finish()
            return
        try:
            (request.results,) = self._commit_group([request.events])
        except Exception as error:
            request.error = error
        request.finish()


class GroupCommitter(Batcher[NewTransfer, CreateTransferResult]):
    """Submit transfer batches from any thread; one writer thread commits them in groups."""

    def __init__(
        self,
        ledger: Ledger,
        events_per_commit_max: int = TRANSFERS_PER_BATCH_MAX,
        queue_size_max: int = 65_536,
        linger_us: int = 500,
    ) -> None:
        self.ledger = ledger
        super().__init__(
            self._commit_transfers,
            "ledger-group-commit",
            events_per_commit_max,
            queue_size_max,
            linger_us,
        )

    def create_transfers(
        self, events: Sequence[NewTransfer], timeout_s: int = 60
    ) -> list[CreateTransferResult]:
        """Create transfers as `Ledger.create_transfers` does; returns after the commit."""
        return self.submit(events, timeout_s)

    def _commit_transfers(
        self, batches: list[Sequence[NewTransfer]]
    ) -> list[list[CreateTransferResult]]:
        events: list[NewTransfer] = []
        ends: list[int] = []
        for batch in batches:
            events.extend(batch)
            ends.append(len(events) - 1)
        with self.ledger.write() as uow:
            results = uow.create_transfers(events, request_ends=ends)
        return split_by_request(batches, results)
