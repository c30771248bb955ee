"""Distributed EM on Dask: skseg.GaussianMixture over an image collection
that never exists in one piece, on 1 and 2 worker processes.

The collection is generated from scikit-learn's sample images: chunk ``i`` is
china.jpg or flower.jpg, flipped by the bits of ``i``, upscaled 2x (1.09
megapixels, RGB scaled to [0, 1] as float32 rows). Each task generates its
chunk where it runs, as a task reading an image file would, so a worker only
ever holds the chunks it is working on. Every run fits the same mixture
(k=8, full covariances, exactly MAX_ITER iterations from one fixed start), so
all runs do the same work and must reach bit-identical parameters.

Reported per run: wall time of the fit, speed-up over 1 worker, lower bound,
and each worker process's peak resident memory, before the fit (imports and
warm-up) and at the end, for two collection sizes: the peak must follow the
chunk size, not the collection size. Then what an iteration costs: the
E-step compute of one chunk, the generation of one chunk, and the bytes that
travel to the client per iteration.

Usage::

    python benchmarks/bench_scale.py            # 26 and 52 megapixels
    python benchmarks/bench_scale.py --quick    # smoke test
"""

import argparse
import resource
import time
import warnings

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import load_sample_image
from sklearn.exceptions import ConvergenceWarning

from skseg import _core
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


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
        before = client.run(peak_rss_mb)
        X = collection(n_chunks, step)
        gm = GaussianMixture(K, max_iter=MAX_ITER, tol=0.0, **fixed_start(step))
        start = time.perf_counter()
        gm.fit(X)
        wall = time.perf_counter() - start
        after = client.run(peak_rss_mb)
    return dict(
        wall=wall,
        lower_bound=gm.lower_bound_,
        means=gm.means_,
        before=list(before.values()),
        after=list(after.values()),
        rows=X.shape[0],
    )


def chunk_costs(step):
    """Seconds to generate one chunk and to run its E-step on one thread."""
    start = time.perf_counter()
    X = make_chunk(0, step)
    generate = time.perf_counter() - start
    gm = GaussianMixture(K, max_iter=1, tol=0.0, n_jobs=1, **fixed_start(step))
    params = gm._initial_parameters(X, None, None, gm._check_initial_parameters(X))
    start = time.perf_counter()
    slots = _core.gmm_estep_slots(
        X,
        None,
        "full",
        params["weights"],
        params["means"],
        params["precisions_cholesky"],
        0,
        _core.gmm_chunk_rows(len(X)),
        1,
    )
    estep = time.perf_counter() - start
    return generate, estep, slots.shape[1] * 8


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
        f"{'lower bound':>14} {'worker RSS MB before -> peak':>30}"
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
    generate, estep, slot_bytes = chunk_costs(step)
    n_chunks = sizes[-1]
    wall_1 = results[n_chunks, 1]["wall"] / MAX_ITER
    print(
        f"Per chunk, one thread in this process: generate {generate:.3f} s, "
        f"E-step {estep:.3f} s; to the client {slot_bytes * 2} bytes or less "
        f"(statistics of at most 2 partition pieces) vs {chunk_mp * 12e6:.0f} "
        "bytes of data"
    )
    print(
        f"Per iteration over {n_chunks} chunks on 1 worker: {wall_1:.2f} s wall, "
        f"{n_chunks * (generate + estep):.2f} s of chunk work; the rest "
        f"({wall_1 - n_chunks * (generate + estep):.2f} s) is scheduling, "
        "transfer and the client's sums and M-step"
    )


if __name__ == "__main__":
    main()
