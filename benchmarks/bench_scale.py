"""Distributed EM on Dask: skseg.GaussianMixture over an image collection
that never exists in one piece, on 1 and 2 worker processes.

The collection is generated from scikit-learn's sample images: chunk ``i`` is
china.jpg or flower.jpg, flipped by the bits of ``i``, upscaled 2x (1.09
megapixels, RGB scaled to [0, 1] as float32 rows). Each task generates its
chunk where it runs (decoding the JPEG and upscaling), as a task reading an
image file would, so a worker only ever holds the chunks it is working on.
Every run fits the same mixture (k=8, full covariances, exactly MAX_ITER
iterations from one fixed start), so all runs do the same work and must reach
bit-identical parameters.

Reported per run: wall time of the fit, speed-up over 1 worker, lower bound,
and each worker process's resident memory before the fit (after imports and
warm-up) and its peak during the fit, for two collection sizes: the peak must
follow the chunk size, not the collection size. Then what an iteration costs,
from the workers' task stream: seconds generating chunks, seconds in the
E-step, and the worker-seconds spent idle (scheduling, transfers, the
client's sums and M-step), with the bytes that travel per chunk.

Usage::

    python benchmarks/bench_scale.py            # 26 and 52 megapixels
    python benchmarks/bench_scale.py --quick    # smoke test
"""

import argparse
import time
import warnings
from collections import defaultdict

import dask
import dask.array as da
import numpy as np
from dask.utils import key_split
from distributed import Client, LocalCluster, get_task_stream
from sklearn.datasets import load_sample_image
from sklearn.exceptions import ConvergenceWarning

from skseg.mixture import GaussianMixture

# tol=0 runs exactly MAX_ITER iterations, which "did not converge".
warnings.filterwarnings("ignore", category=ConvergenceWarning)

K = 8
MAX_ITER = 8


def make_chunk(i, step=1):
    """Chunk ``i`` of the collection: (n_pixels, 3) float32 rows."""
    image = load_sample_image("china.jpg" if i % 2 == 0 else "flower.jpg")
    image = image[::step, ::step]
    if i & 2:
        image = image[:, ::-1]
    if i & 4:
        image = image[::-1]
    image = image.repeat(2, axis=0).repeat(2, axis=1)
    return (image.reshape(-1, 3) / np.float32(255)).astype(np.float32)


def collection(n_chunks, step):
    rows = make_chunk(0, step).shape[0]
    make = dask.delayed(make_chunk, pure=True)
    blocks = [
        da.from_delayed(make(i, step), shape=(rows, 3), dtype=np.float32)
        for i in range(n_chunks)
    ]
    return da.concatenate(blocks)


def fixed_start(step):
    """Means spread over one chunk's colours, unit weights, broad precisions."""
    rows = make_chunk(0, step)
    means = rows[np.linspace(0, len(rows) - 1, K).astype(int)].astype(np.float64)
    means += np.linspace(0, 0.01, K)[:, None]  # distinct even for flat regions
    return dict(
        weights_init=np.full(K, 1.0 / K),
        means_init=means,
        precisions_init=np.tile(np.eye(3) * 50.0, (K, 1, 1)),
    )


def worker_memory_mb(reset_peak=False):
    """(resident MB now, peak resident MB) of this process, from /proc (Linux).

    ``reset_peak`` starts a new peak from now (``clear_refs``), so that the
    peak is the fit's, not inherited from the process start.
    """
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    rss, peak = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    if reset_peak:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    return rss, peak


def run(n_workers, n_chunks, step):
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=0,
        ) as cluster,
        Client(cluster) as client,
    ):
        # Warm-up: import skseg and numpy on the workers.
        client.run(lambda: __import__("skseg.mixture") and None)
        before = client.run(worker_memory_mb, True)
        X = collection(n_chunks, step)
        gm = GaussianMixture(K, max_iter=MAX_ITER, tol=0.0, **fixed_start(step))
        with get_task_stream(client) as stream:
            start = time.perf_counter()
            gm.fit(X)
            wall = time.perf_counter() - start
        busy = defaultdict(float)  # compute seconds on the workers, by task
        for task in stream.data:
            for part in task["startstops"]:
                if part["action"] == "compute":
                    busy[key_split(task["key"])] += part["stop"] - part["start"]
        after = client.run(worker_memory_mb)
    return dict(
        wall=wall,
        lower_bound=gm.lower_bound_,
        means=gm.means_,
        before=[rss for rss, _ in before.values()],
        after=[peak for _, peak in after.values()],
        rows=X.shape[0],
        busy=dict(busy),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    step = 4 if args.quick else 1
    sizes = (4, 8) if args.quick else (24, 48)
    chunk_mp = make_chunk(0, step).shape[0] / 1e6
    print(
        f"GaussianMixture(k={K}, full, float32), {MAX_ITER} EM iterations; "
        f"chunks of {chunk_mp:.2f} Mpx (RGB rows); LocalCluster processes, "
        "1 thread per worker"
    )
    print(
        f"{'Mpx':>6} {'workers':>7} {'fit s':>7} {'speed-up':>8} "
        f"{'lower bound':>14} {'worker MB: before -> fit peak':>30}"
    )
    results = {}
    for n_chunks in sizes:
        for n_workers in (1, 2):
            r = run(n_workers, n_chunks, step)
            results[n_chunks, n_workers] = r
            speedup = results[n_chunks, 1]["wall"] / r["wall"]
            pairs = zip(r["before"], r["after"], strict=True)
            rss = ", ".join(f"{b:.0f} -> {a:.0f}" for b, a in pairs)
            print(
                f"{r['rows'] / 1e6:6.1f} {n_workers:7d} {r['wall']:7.1f} "
                f"{speedup:8.2f} {r['lower_bound']:14.8f} {rss:>30}"
            )
        same = np.array_equal(
            results[n_chunks, 1]["means"], results[n_chunks, 2]["means"]
        )
        print(f"       1 and 2 workers give bit-identical means: {same}")
    # Per piece: K x (sum r, 3 sums r d, 6 sums r d d^T), sum log p, sum w.
    slot_bytes = (K * (1 + 3 + 6) + 2) * 8
    print(
        f"To the client per chunk and iteration: {slot_bytes * 2} bytes or less "
        f"(statistics of at most 2 partition pieces) vs {chunk_mp * 12e6:.0f} "
        "bytes of data in the chunk"
    )
    print("Per iteration, from the workers' task stream:")
    for (_, n_workers), r in results.items():
        per_iter = r["wall"] / MAX_ITER
        generate = r["busy"].get("from-value", 0.0) / MAX_ITER
        estep = r["busy"].get("block_slots", 0.0) / MAX_ITER
        idle = per_iter * n_workers - generate - estep
        print(
            f"  {r['rows'] / 1e6:5.1f} Mpx, {n_workers} worker(s): {per_iter:5.2f} s "
            f"wall; worker compute {generate:5.2f} s generating + {estep:5.2f} s "
            f"E-step; {idle:5.2f} worker-s idle (scheduling, transfer, client)"
        )


if __name__ == "__main__":
    main()
