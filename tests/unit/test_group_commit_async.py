"""`Batcher.submit_async`: coroutines share commits as threads do, with the same semantics."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from tianping.ledger.errors import BatchTooLarge
from tianping.ledger.group_commit import Batcher, split_by_request


class Doubler:
    """A commit function that doubles every event, refuses negative ones as a whole group (as
    a failed transaction would), and can be held mid-commit by a test."""

    def __init__(self) -> None:
        self.groups: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, batches: list[Sequence[int]]) -> list[list[int]]:
        self.release.wait()
        events = [event for batch in batches for event in batch]
        if any(event < 0 for event in events):
            raise ValueError("a negative event poisons its transaction")
        self.groups.append(len(batches))
        return split_by_request(batches, [event * 2 for event in events])


def test_coroutines_get_their_own_results_and_share_commits() -> None:
    commit = Doubler()
    batcher: Batcher[int, int] = Batcher(commit, "test-async", events_per_commit_max=100)

    async def main() -> list[list[int]]:
        # Hold the writer in its first commit so that the others queue up behind it.
        commit.release.clear()
        first = asyncio.ensure_future(batcher.submit_async([0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit_async([n, n + 1000])) for n in range(1, 50)]
        await asyncio.sleep(0.05)
        commit.release.set()
        return [await first, *[await task for task in rest]]

    try:
        answers = asyncio.run(main())
    finally:
        batcher.close()
    assert answers == [[0]] + [[2 * n, 2 * (n + 1000)] for n in range(1, 50)]
    # 50 requests in fewer commits than requests: the queued ones shared a transaction.
    assert sum(commit.groups) == 50
    assert len(commit.groups) < 50


def test_a_poisoned_request_fails_alone() -> None:
    commit = Doubler()
    batcher: Batcher[int, int] = Batcher(commit, "test-async", events_per_commit_max=100)

    async def main() -> tuple[list[int], BaseException | list[int], list[int]]:
        commit.release.clear()
        blocker = asyncio.ensure_future(batcher.submit_async([1]))
        await asyncio.sleep(0.05)
        good = asyncio.ensure_future(batcher.submit_async([2]))
        bad = asyncio.ensure_future(batcher.submit_async([-3]))
        also_good = asyncio.ensure_future(batcher.submit_async([4]))
        await asyncio.sleep(0.05)
        commit.release.set()
        await blocker
        outcome: BaseException | list[int]
        try:
            outcome = await bad
        except ValueError as error:
            outcome = error
        return await good, outcome, await also_good

    try:
        good, bad, also_good = asyncio.run(main())
    finally:
        batcher.close()
    assert good == [4]
    assert also_good == [8]
    assert isinstance(bad, ValueError)


def test_a_timeout_leaves_the_writer_running() -> None:
    commit = Doubler()
    batcher: Batcher[int, int] = Batcher(commit, "test-async", events_per_commit_max=100)
    try:
        commit.release.clear()
        with pytest.raises(TimeoutError, match="did not answer within 1 s"):
            asyncio.run(batcher.submit_async([5], timeout_s=1))
        # The timed-out request still commits once released; the loop that waited for it is
        # closed by now, and waking it must not stop the writer thread.
        commit.release.set()
        assert asyncio.run(batcher.submit_async([6])) == [12]
        assert batcher.submit([7]) == [14]
    finally:
        batcher.close()


def test_limits_and_a_closed_batcher_are_refused_as_by_submit() -> None:
    batcher: Batcher[int, int] = Batcher(Doubler(), "test-async", events_per_commit_max=3)
    with pytest.raises(BatchTooLarge):
        asyncio.run(batcher.submit_async([1, 2, 3, 4]))
    assert asyncio.run(batcher.submit_async([])) == []
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(batcher.submit_async([1]))
