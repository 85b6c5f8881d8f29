"""The real-time scoring queue's admission: a list that cannot be ready by its deadline is not queued."""

from __future__ import annotations

import threading

from shoprec.serving.realtime import ScoringQueue


def test_admission_follows_the_queue_and_the_cost_of_one_list():
    queue = ScoringQueue()
    try:
        assert queue.admits(0.001)  # nothing measured yet: try
        assert queue.submit(lambda: sum(range(200_000))).result() > 0
        one = queue.cost
        assert one > 0 and queue.queued == 0
        assert queue.admits(one * 1.01) and not queue.admits(one * 0.99)
        release = threading.Event()
        running = queue.submit(release.wait)  # occupies the thread
        waiting = queue.submit(lambda: None)
        assert queue.queued == 2 and not queue.admits(one * 2.5)  # a third would be ready after ~3 lists
        assert waiting.cancel() and queue.queued == 1  # a request gone past its deadline leaves the queue
        release.set()
        running.result()
        assert queue.queued == 0
    finally:
        queue.shutdown()
