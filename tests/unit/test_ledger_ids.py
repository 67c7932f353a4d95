"""Time-ordered ids: ordered by millisecond, distinct within one, and distinct across a fork."""

from __future__ import annotations

import multiprocessing
import os
import sys

import pytest

from tianping.ledger import ids
from tianping.ledger.limits import ID_MAX, ID_MIN

NOW_NS = 1_800_000_000_123_456_789


def test_ids_of_one_millisecond_are_distinct_across_entropy_blocks() -> None:
    # More ids than one block of entropy serves, so the refill is exercised too.
    count = 3 * ids._EntropyBlocks.BLOCK_BYTES // 10
    made = [ids.time_ordered_id(NOW_NS) for _ in range(count)]
    assert len(set(made)) == count
    assert all(ID_MIN <= value <= ID_MAX for value in made)
    assert {value >> 80 for value in made} == {NOW_NS // 1_000_000}


def test_ids_sort_by_their_millisecond() -> None:
    earlier = ids.time_ordered_id(NOW_NS)
    later = ids.time_ordered_id(NOW_NS + 1_000_000)
    assert earlier < later


def test_given_entropy_makes_the_id_deterministic() -> None:
    entropy = bytes(range(10))
    assert ids.time_ordered_id(NOW_NS, entropy) == ids.time_ordered_id(NOW_NS, entropy)


def _child_id(queue: multiprocessing.Queue[int]) -> None:
    queue.put(ids.time_ordered_id(NOW_NS))


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    # The parent holds a partly used block; a child that kept it would make the very id the
    # parent makes next.
    ids.time_ordered_id(NOW_NS)
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[int] = context.Queue()
    child = context.Process(target=_child_id, args=(queue,))
    child.start()
    from_child = queue.get(timeout=30)
    child.join(timeout=30)
    assert from_child != ids.time_ordered_id(NOW_NS)
