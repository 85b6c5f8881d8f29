"""Adaptive batching for the server: concurrent callers share one call of a costly function.

Some work costs about as much for many inputs as for one, because fixed costs dominate:
MiniLM encoding a short query (graph dispatch, six layers of small matrix products: on
2 cores with one thread per server process ~3.2 ms of CPU for one query, ~1.1 ms per
query in a batch of 16), or validating feedback events with Great Expectations (~65 ms
per validation, almost all of it per call, not per row) and committing them durably
(one fsync per transaction).

:class:`Coalescer` batches without a timer. A caller that finds it idle becomes the
*leader* and runs the batch function on the calls queued at that moment (its own first);
callers that arrive while a batch runs queue up and wait. When a batch is done its
callers get their results, and the first caller still queued becomes the next leader,
who runs everything that queued up meanwhile. Alone, a call is a batch of one with no
added wait; under load the batch grows with the queue, which is when batching pays.
Its callers are threads (BentoML runs plain endpoint functions, /feedback, in a thread
pool); :class:`BackgroundBatcher` does the same for coroutines on an event loop, in a thread
of its own (/search's query encoding: TensorFlow Lite leaves the GIL for the whole batch),
and :class:`LoopBatcher` on the event loop itself (real-time /recommend's scoring: many short
NumPy calls, which a thread beside a busy event loop would pay for in GIL waits).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Call(Generic[T, R]):
    item: T
    units: int = 1
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: R | None = None
    error: BaseException | None = None


class Coalescer(Generic[T, R]):
    """``call(item) -> result`` for many threads at once, through ``run(items) -> results``.

    ``run`` gets the queued items in arrival order and returns one result per item; a
    batch holds at most ``max_batch`` units as counted by ``size`` (1 per item by default),
    except that a single item larger than that still runs, alone.
    """

    def __init__(self, run: Callable[[list[T]], list[R]], max_batch: int,
                 size: Callable[[T], int] = lambda item: 1) -> None:
        self.run, self.max_batch, self.size = run, max_batch, size
        self._lock = threading.Lock()
        self._queue: list[_Call[T, R]] = []
        self._busy = False

    def __call__(self, item: T) -> R:
        call = _Call(item, self.size(item))  # sized before it is shared: a failing size() fails only this call
        with self._lock:
            self._queue.append(call)
            call.lead, self._busy = not self._busy, True
        if not call.lead:
            call.ready.wait()  # woken with a result, or as the next leader
        if call.lead:
            self._run_batch()
        if call.error is not None:
            raise call.error
        return call.result

    def _run_batch(self) -> None:
        """Run the head of the queue (which starts with the leader's own call), then hand over."""
        with self._lock:
            batch = [self._queue.pop(0)]
            units = batch[0].units
            while self._queue and units + self._queue[0].units <= self.max_batch:
                batch.append(self._queue.pop(0))
                units += batch[-1].units
        try:
            results = self.run([c.item for c in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} calls")
            for c, result in zip(batch, results):
                c.result = result
        except BaseException as exc:  # every caller of the batch sees the failure, none waits forever
            for c in batch:
                c.error = _for_callers(exc)
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is not None:
                    successor.lead = True
                else:
                    self._busy = False
            for c in batch[1:]:
                c.ready.set()
            if successor is not None:
                successor.ready.set()


class BackgroundBatcher(Generic[T, R]):
    """``await batcher(item) -> result`` from an event loop, through ``run(items) -> results``
    in one background thread.

    The asynchronous twin of :class:`Coalescer`, for handlers that run on the event
    loop: the thread takes everything queued (up to ``max_batch`` items), runs it as one
    batch and hands each result back to the loop that asked. While ``run`` is in native
    code (TensorFlow releases the GIL) the loop keeps serving other requests, and one
    thread instead of a pool means no threads queueing for the GIL.
    """

    def __init__(self, run: Callable[[list[T]], list[R]], max_batch: int, name: str = "batcher") -> None:
        self.run, self.max_batch = run, max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((item, future, loop))
        return await future

    def _serve(self) -> None:
        """Forever: take what is queued, run it, hand each result back. Nothing a batch or a
        caller does may end this thread (every later caller would wait forever)."""
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [entry for entry in batch if not entry[1].cancelled()]  # timed out or disconnected
            if not batch:
                continue
            results, error = _outcome(self.run, [item for item, _, _ in batch])
            for (_, future, loop), result in zip(batch, results):
                try:
                    loop.call_soon_threadsafe(_settle, future, result, error)
                except RuntimeError:  # the caller's event loop has closed: nobody to answer
                    pass


class LoopBatcher(Generic[T, R]):
    """``await batcher(item) -> result`` through ``run(items) -> results`` run on the caller's event loop.

    The first caller schedules a pass for the loop's next turn; every caller that arrives before it runs
    (the requests the loop read meanwhile) joins it, up to ``max_batch`` items, and the rest wait for the
    next pass. A pass holds the loop, so every other request of the process waits for it: ``max_batch``
    bounds that wait. For work made of many short NumPy calls, where a thread (:class:`BackgroundBatcher`)
    would retake the GIL from the busy loop after each call that releases it, waiting up to Python's switch
    interval (5 ms) each time: a list that costs a millisecond of CPU took tens of milliseconds that way.
    """

    def __init__(self, run: Callable[[list[T]], list[R]], max_batch: int) -> None:
        self.run, self.max_batch = run, max_batch
        self._waiting: list[tuple[T, asyncio.Future]] = []

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._pass, loop)
        self._waiting.append((item, future))
        return await future

    def __len__(self) -> int:
        """Items waiting for a pass whose callers still wait (a timed-out caller's item leaves at once)."""
        return sum(not future.cancelled() for _, future in self._waiting)

    def _pass(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
        if self._waiting:  # more than a pass holds: the rest after the requests that came in meanwhile
            loop.call_soon(self._pass, loop)
        batch = [entry for entry in batch if not entry[1].cancelled()]  # timed out or disconnected
        if batch:
            results, error = _outcome(self.run, [item for item, _ in batch])
            for (_, future), result in zip(batch, results):
                _settle(future, result, error)


def _outcome(run: Callable[[list[T]], list[R]], items: list[T]) -> tuple[list, Exception | None]:
    """``run(items)``'s results, or placeholders and the error every caller of the batch raises."""
    try:
        results = run(items)
        if len(results) != len(items):
            raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
        return results, None
    except BaseException as exc:
        return [None] * len(items), _for_callers(exc)


def _for_callers(exc: BaseException) -> Exception:
    """What a batch's callers raise: the batch's error, or a plain error standing for an
    interrupt (a KeyboardInterrupt set on a future would escape the caller's event loop)."""
    return exc if isinstance(exc, Exception) else RuntimeError(f"batch interrupted: {exc!r}")


def _settle(future: asyncio.Future, result, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
