"""Serving-time speed-ups of query encoding: adaptive batching (shoprec.serving.batching) and the LRU cache."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import shoprec  # noqa: F401
import tensorflow as tf

from shoprec.serving.batching import BackgroundBatcher, Coalescer
from shoprec.text import MiniLMEncoder
from shoprec.text.cache import EncodingCache


class CountingEncode:
    """A real (if simple) encoder: one row per text, the text's length and first letter, with a
    wait that stands in for MiniLM's per-call cost; it records every batch it got."""

    def __init__(self, seconds: float = 0.02, fail_on: str | None = None) -> None:
        self.seconds, self.fail_on, self.batches = seconds, fail_on, []
        self._lock = threading.Lock()

    def __call__(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self.batches.append(list(texts))
        time.sleep(self.seconds)
        if self.fail_on in texts:
            raise ValueError(f"cannot encode {self.fail_on!r}")
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float64)


def rows_per_call(encode, max_batch: int = 64) -> Coalescer:
    """Callers' texts encoded together; each caller gets its own rows back."""

    def run(calls: list[list[str]]) -> list[np.ndarray]:
        vectors = encode([text for texts in calls for text in texts])
        bounds = np.cumsum([0] + [len(texts) for texts in calls])
        return [vectors[start:end] for start, end in zip(bounds[:-1], bounds[1:])]

    return Coalescer(run, max_batch, size=len)


def _run_concurrently(encoder, texts: list[list[str]]) -> list:
    start = threading.Barrier(len(texts))

    def one(batch):
        start.wait()
        try:
            return encoder(batch)
        except ValueError as exc:
            return exc

    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(one, texts))


def test_each_caller_gets_its_own_rows_and_concurrent_calls_share_batches():
    encode = CountingEncode()
    calls = [[f"{chr(97 + i % 26)}query {'x' * i}"] if i % 3 else [f"{chr(97 + i % 26)}a", f"{chr(98 + i % 20)}bb"]
             for i in range(24)]
    results = _run_concurrently(rows_per_call(encode, max_batch=8), calls)
    for texts, rows in zip(calls, results):
        assert rows.tolist() == [[len(t), ord(t[0])] for t in texts]
    assert sum(len(b) for b in encode.batches) == sum(len(c) for c in calls)  # every text encoded exactly once
    assert len(encode.batches) < len(calls)  # callers were batched together
    assert max(len(b) for b in encode.batches) <= 8


def test_a_single_caller_is_a_batch_of_one():
    encode = CountingEncode(seconds=0.0)
    encoder = rows_per_call(encode)
    for text in ("red mug", "blue lamp", "candle"):
        assert encoder([text]).shape == (1, 2)
    assert encode.batches == [["red mug"], ["blue lamp"], ["candle"]]


def test_a_failing_batch_fails_its_callers_and_the_encoder_keeps_working():
    encode = CountingEncode(fail_on="boom")
    encoder = rows_per_call(encode)
    results = _run_concurrently(encoder, [["boom"]] + [[f"ok {i}"] for i in range(7)])
    failed = [r for r in results if isinstance(r, ValueError)]
    assert failed and "cannot encode 'boom'" in str(failed[0])
    # only callers that shared the failing call fail; everyone else got rows
    shared = next(b for b in encode.batches if "boom" in b)
    assert len(failed) == len(shared)
    assert encoder(["after"]).tolist() == [[5, ord("a")]]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEncoder:
    return MiniLMEncoder(max_length=32)


def test_batched_minilm_vectors_equal_one_at_a_time(minilm):
    encode = lambda texts: minilm.embed(tf.constant(texts)).numpy()  # noqa: E731
    queries = ["red ceramic mug", "candel holdr", "lunch bag under 20", "christmas decoration", "cake stand",
               "blue linen cushion cover", "mug", "vintage heart wall clock"]
    alone = np.vstack([encode([q]) for q in queries])
    batcher = BackgroundBatcher(lambda texts: list(encode(texts)), max_batch=64)  # as the server's encoder thread

    async def all_at_once():
        return await asyncio.gather(*(batcher(q) for q in queries))

    batched = np.vstack(asyncio.run(all_at_once()))
    np.testing.assert_allclose(batched, alone, atol=1e-5)


def test_batches_respect_the_size_limit_and_an_oversized_call_runs_alone():
    seen = []

    def run(items: list[list[int]]) -> list[int]:
        seen.append([len(i) for i in items])
        time.sleep(0.02)
        return [sum(i) for i in items]

    coalescer = Coalescer(run, max_batch=10, size=len)
    calls = [list(range(n)) for n in (12, 3, 4, 5, 2, 6, 1)]
    assert _run_concurrently(coalescer, calls) == [sum(c) for c in calls]
    assert all(sum(batch) <= 10 or batch == [12] for batch in seen)


def test_the_cache_encodes_each_text_once_and_forgets_the_least_recently_used():
    encode = CountingEncode(seconds=0.0)
    cache = EncodingCache(encode, size=2)
    assert cache(["mug", "lamp", "mug"]).tolist() == [[3, 109], [4, 108], [3, 109]]
    assert encode.batches == [["mug", "lamp"]]
    cache(["mug"])  # now "lamp" is the least recently used
    cache(["rug"])  # evicts "lamp"
    cache(["mug", "lamp"])
    assert encode.batches == [["mug", "lamp"], ["rug"], ["lamp"]]
    assert (cache.hits, cache.misses) == (3, 4)
    mine = cache(["mug"])
    mine[:] = 0  # a caller changing its rows does not change what the next caller gets
    assert cache(["mug"]).tolist() == [[3, 109]]


def test_background_batcher_answers_each_awaiting_caller_and_batches_the_queue():
    encode = CountingEncode(seconds=0.02, fail_on="boom")
    batcher = BackgroundBatcher(lambda texts: list(encode(texts)), max_batch=8)

    async def main():
        texts = [f"{chr(97 + i)}{'x' * i}" for i in range(20)]
        rows = await asyncio.gather(*(batcher(t) for t in texts))
        failed = await asyncio.gather(batcher("boom"), return_exceptions=True)
        return texts, rows, failed

    texts, rows, failed = asyncio.run(main())
    assert [r.tolist() for r in rows] == [[len(t), ord(t[0])] for t in texts]
    assert len(encode.batches) < 20 and max(len(b) for b in encode.batches) <= 8
    assert isinstance(failed[0], ValueError) and "boom" in str(failed[0])


def test_background_batcher_outlives_a_closed_caller_loop_and_a_short_batch():
    encode = CountingEncode(seconds=0.05)
    short = {"on": False}
    batcher = BackgroundBatcher(lambda texts: list(encode(texts))[: len(texts) - short["on"]], max_batch=8)

    async def abandon():  # the caller gives up and its loop closes before the batch is done
        await asyncio.wait_for(batcher("gone"), 0.001)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(abandon())
    time.sleep(0.1)
    assert asyncio.run(batcher("next")).tolist() == [4, ord("n")]  # the thread still serves
    short["on"] = True
    with pytest.raises(RuntimeError, match="results for 1 items"):
        asyncio.run(batcher("lost"))  # a short answer is an error, not a caller waiting forever
