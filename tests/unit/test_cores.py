"""A server worker's native thread pools are its share of the cores, faiss's OpenMP included."""

from __future__ import annotations

import os
import subprocess
import sys

WORKER = """
import os
import shoprec
from shoprec.serving.cores import share_cores
share_cores({workers})
import faiss
import tensorflow as tf
from threadpoolctl import threadpool_info
print(faiss.omp_get_max_threads(), tf.config.threading.get_intra_op_parallelism_threads(),
      sorted({{pool["num_threads"] for pool in threadpool_info()}}))
"""


def test_each_worker_gets_its_share_of_the_cores_in_every_pool():
    cores = os.cpu_count() or 1
    for workers, share in ((cores, 1), (1, cores)):  # a fresh process each: the limits are process-wide
        out = subprocess.run([sys.executable, "-c", WORKER.format(workers=workers)], capture_output=True, text=True,
                             check=True, timeout=120).stdout.strip().split(maxsplit=2)
        assert out[:2] == [str(share), str(share)]  # faiss's OpenMP (HNSW searches) and TensorFlow's
        assert out[2] == f"[{share}]"  # every pool threadpoolctl sees: OpenBLAS, OpenMP
