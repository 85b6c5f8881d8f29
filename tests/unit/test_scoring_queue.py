"""The real-time scoring queue's admission (a list that cannot be ready by its deadline is not queued) and
the worker's cache of lists (reused only while their key holds and the clock has moved at most its bound)."""

from __future__ import annotations

import asyncio

import pandas as pd

from shoprec.serving.list_cache import ListCache
from shoprec.serving.realtime import MAX_SCORING_BATCH, ScoringQueue


def test_admission_follows_the_queue_and_the_cost_of_one_list():
    async def scenario():
        queue = ScoringQueue()
        assert queue.admits(0.001)  # nothing measured yet: try
        assert await queue(lambda items: [sum(range(200_000)) for _ in items], None) > 0
        one = queue.cost
        assert one > 0 and queue.queued == 0
        assert queue.admits(one * 0.5)  # an empty queue always tries: one slow list cannot shut scoring off
        passes: list[int] = []

        def compute_many(items: list[int]) -> list[int]:
            passes.append(len(items))
            return items

        waiting = [asyncio.create_task(queue(compute_many, i)) for i in range(3)]
        await asyncio.sleep(0)  # all three queued in this turn of the loop; their pass runs in the next
        assert queue.queued == 3 and not passes
        assert queue.admits(one * 4.01) and not queue.admits(one * 3.99)  # a fourth list: ready after ~4
        waiting[1].cancel()  # a request gone past its deadline leaves the queue, and its pass skips it
        assert await waiting[0] == 0 and await waiting[2] == 2 and waiting[1].cancelled()
        assert passes == [2] and queue.queued == 0

    asyncio.run(scenario())


def test_the_lists_waiting_together_are_computed_in_one_pass_and_a_failing_one_fails_alone():
    passes: list[list[int]] = []

    def compute_many(items: list[int]) -> list[int]:
        passes.append(list(items))
        if 13 in items:
            raise ValueError("unlucky")
        return [10 * i for i in items]

    async def scenario():
        queue = ScoringQueue()
        return await asyncio.gather(*(queue(compute_many, i) for i in (1, 2, 13, 4)))

    rest = asyncio.run(scenario())
    assert passes[0] == [1, 2, 13, 4]  # one pass for everything that waited ...
    assert passes[1:] == [[1], [2], [13], [4]]  # ... which failed, so each is computed alone
    assert rest[:2] == [10, 20] and rest[3] == 40
    assert isinstance(rest[2], ValueError) and str(rest[2]) == "unlucky"  # only the failing list fails


def test_a_pass_holds_at_most_its_bound_and_requests_in_between_come_first():
    order: list[str] = []

    def compute_many(items: list[int]) -> list[int]:
        order.append(f"pass of {len(items)}")
        return items

    async def other_request():
        order.append("other request")

    async def scenario():
        queue = ScoringQueue()
        lists = [asyncio.create_task(queue(compute_many, i)) for i in range(MAX_SCORING_BATCH + 2)]
        await asyncio.sleep(0)  # queued; the first pass is due on the next turn
        other = asyncio.create_task(other_request())  # arrives while the first pass runs
        assert await asyncio.gather(*lists) == list(range(MAX_SCORING_BATCH + 2))
        await other

    asyncio.run(scenario())
    # the loop answers what came in during a pass before it takes the lists left over
    assert order == [f"pass of {MAX_SCORING_BATCH}", "other request", "pass of 2"]


def test_a_cached_list_is_reused_only_within_its_age_and_for_its_own_key(tmp_path):
    cache = ListCache(tmp_path / "lists.db", pd.Timedelta(seconds=60), size=2)
    t = pd.Timestamp("2024-06-01", tz="UTC")
    key = ("u1", 10, False, 0.0, ("e1",))
    answer = [True, [{"item_id": "I1", "score": 0.123456789}]]
    cache.put(key, t, answer)
    assert cache.get(key, t + pd.Timedelta(seconds=60)) == answer  # as computed, to the last digit
    assert cache.get(key, t + pd.Timedelta(seconds=61)) is None  # the clock moved past the bound
    assert cache.get(key, t - pd.Timedelta(seconds=1)) is None  # a list from the future of the request
    assert cache.get(("u1", 10, False, 0.0, ("e1", "e2")), t) is None  # a new stored event: another key
    cache.close()
    assert not (tmp_path / "lists.db").exists()


def test_the_workers_of_a_server_share_the_cache_and_drop_old_entries(tmp_path, monkeypatch):
    monkeypatch.setattr("shoprec.serving.list_cache.PRUNE_EVERY", 3)
    t = pd.Timestamp("2024-06-01", tz="UTC")
    first, second = (ListCache(tmp_path / "lists.db", pd.Timedelta(seconds=60), size=2) for _ in range(2))
    first.put(("u1",), t, "one")
    assert second.get(("u1",), t) == "one"  # another worker's connection sees it
    second.put(("u2",), t + pd.Timedelta(seconds=1), "two")
    second.put(("u3",), t + pd.Timedelta(seconds=2), "three")
    second.put(("u4",), t + pd.Timedelta(seconds=3), "four")  # the third put of this worker prunes to 2
    assert len(second) == 2 and first.get(("u1",), t) is None and first.get(("u4",), t + pd.Timedelta(seconds=3))
    first.close()
    second.close()
    (tmp_path / "broken.db").write_bytes(b"not a database" * 100)
    broken = ListCache(tmp_path / "broken.db", pd.Timedelta(seconds=60))
    broken.put(("u1",), t, "one")  # a file that is not SQLite: a miss, never a failed request
    assert broken.get(("u1",), t) is None
