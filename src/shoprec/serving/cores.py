"""A server worker's share of the machine's cores, in every native thread pool it runs."""

from __future__ import annotations

import os


def share_cores(workers: int) -> None:
    """Give each worker process its share of the cores in every native thread pool.

    OpenBLAS (NumPy) and TensorFlow size their pools to the whole machine in every
    process, so ``workers`` processes run ``workers x cores`` busy threads on ``cores``
    cores; OpenBLAS's idle threads also spin (a /search cost about three times the CPU
    that way: docs/serving.md). TensorFlow takes the setting only before
    its runtime starts: this runs before the model (and TensorFlow) loads. faiss's
    OpenMP runtime is loaded first so that the limit reaches it too: its HNSW searches
    of several queries at once (real-time lists computed in one pass) otherwise fork a
    team per call whose spinning threads cost more than the searches.
    """
    import faiss  # noqa: F401  (loads the OpenMP runtime that threadpool_limits then limits)
    import tensorflow as tf
    from threadpoolctl import threadpool_limits

    threads = max(1, (os.cpu_count() or 1) // workers)
    threadpool_limits(threads)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
