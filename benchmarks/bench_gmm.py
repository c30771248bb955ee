"""skseg.GaussianMixture against scikit-learn's GaussianMixture.

Both fit the pixels of scikit-learn's sample images (china.jpg, flower.jpg)
with k=32 components for exactly 30 EM iterations (tol=0) from the same
initial parameters (one k-means run, turned into weights, means and
precisions for each covariance type), so they do the same work and must
reach the same lower bound. A third column fits skseg on the distinct
colours weighted by their counts, as GMMImageSegmenter does: the same mixture
and lower bound (EM only sums over points) from fewer points; its time
includes finding the distinct colours. Then skseg alone fits an upscaled copy of
china.jpg of about 12 megapixels, in a fresh process, reporting time and
peak memory.

Usage::

    python benchmarks/bench_gmm.py            # full run (minutes of sklearn time)
    python benchmarks/bench_gmm.py --quick    # smoke test in seconds
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_sample_image
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from threadpoolctl import threadpool_limits

import skseg
from skseg import _core
from skseg.mixture import GaussianMixture
from skseg.mixture.segmenter import _distinct_colors

N_COMPONENTS = 32
MAX_ITER = 30


def image_pixels(name, step=1):
    """(n_pixels, 3) uint8 RGB values of a sample image."""
    return load_sample_image(name)[::step, ::step].reshape(-1, 3)


def initial_parameters(X, labels, covariance_type):
    """weights/means/precisions of a hard assignment, as scikit-learn's init."""
    params = _core.gmm_params_from_labels(
        np.ascontiguousarray(X), None, labels, N_COMPONENTS, covariance_type, 1e-6, 1
    )
    weights = params["nk"] / params["nk"].sum()
    chol = params["precisions_cholesky"]
    if covariance_type == "full":
        precisions = chol @ np.transpose(chol, (0, 2, 1))
    elif covariance_type == "tied":
        precisions = chol @ chol.T
    else:
        precisions = chol**2
    return {
        "weights_init": weights,
        "means_init": params["means"],
        "precisions_init": precisions,
    }


def timed_fit(estimator, X, **fit_params):
    """(seconds, lower bound) of one fit, or (seconds, error text)."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X, **fit_params)
    except ValueError as exc:
        return time.perf_counter() - start, f"error: {str(exc)[:40]}"
    return time.perf_counter() - start, estimator.lower_bound_


def _fmt(value):
    """A lower bound, or the error text in its place."""
    return f"{value:20.10f}" if isinstance(value, float) else f"{value:>20}"


def compare(images, cov_types, dtypes, n_jobs):
    header = (
        f"{'image':<11}{'n_pixels':>9} {'cov':<10}{'dtype':<8}"
        f"{'sklearn s':>10}{'skseg s':>9}{'ratio':>8}{'distinct s':>11}{'ratio':>8}  "
        f"{'sklearn lower bound':>20}{'skseg lower bound':>20}{'distinct lb':>20}"
    )
    print(header)
    print("-" * len(header))
    for name, step in images:
        pixels = image_pixels(name, step)
        start = time.perf_counter()
        distinct, counts, _ = _distinct_colors(pixels, n_jobs)
        t_unique = time.perf_counter() - start
        X = pixels.astype(np.float64)
        labels = KMeans(N_COMPONENTS, n_init=1, random_state=0).fit(X).labels_
        for covariance_type in cov_types:
            init = initial_parameters(X, labels.astype(np.int64), covariance_type)
            for dtype in dtypes:
                Xd = X.astype(dtype)
                init_d = {key: value.astype(dtype) for key, value in init.items()}
                init_d["weights_init"] /= init_d["weights_init"].sum()
                common = dict(
                    covariance_type=covariance_type,
                    max_iter=MAX_ITER,
                    tol=0.0,
                    **init_d,
                )
                # scikit-learn's BLAS at n_jobs threads, like skseg's.
                with threadpool_limits(limits=n_jobs):
                    t_ref, lb_ref = timed_fit(
                        SklearnGaussianMixture(N_COMPONENTS, **common), Xd
                    )
                t_ours, lb_ours = timed_fit(
                    GaussianMixture(N_COMPONENTS, n_jobs=n_jobs, **common), Xd
                )
                t_distinct, lb_distinct = timed_fit(
                    GaussianMixture(N_COMPONENTS, n_jobs=n_jobs, **common),
                    distinct.astype(dtype),
                    sample_weight=counts.astype(dtype),
                )
                t_distinct += t_unique
                print(
                    f"{name:<11}{len(X):>9} {covariance_type:<10}"
                    f"{np.dtype(dtype).name:<8}{t_ref:>10.2f}{t_ours:>9.3f}"
                    f"{t_ref / t_ours:>7.0f}x{t_distinct:>11.3f}"
                    f"{t_ref / t_distinct:>7.0f}x  "
                    f"{_fmt(lb_ref)}{_fmt(lb_ours)}{_fmt(lb_distinct)}",
                    flush=True,
                )


def large_image_run(scale_rows, scale_cols, n_jobs, dtype):
    """Fit an upscaled china.jpg with skseg alone; returns a dict of figures."""
    img = load_sample_image("china.jpg")
    big = np.repeat(np.repeat(img, scale_rows, axis=0), scale_cols, axis=1)
    X = big.reshape(-1, 3).astype(dtype)
    del big
    labels = np.arange(len(X), dtype=np.int64) % N_COMPONENTS
    init = initial_parameters(X[::97].astype(np.float64), labels[::97], "full")
    init["weights_init"] = np.full(N_COMPONENTS, 1.0 / N_COMPONENTS)
    gm = GaussianMixture(
        N_COMPONENTS, max_iter=MAX_ITER, tol=0.0, n_jobs=n_jobs, **init
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "shape": [img.shape[0] * scale_rows, img.shape[1] * scale_cols],
        "n_pixels": len(X),
        "dtype": np.dtype(dtype).name,
        "input_mib": X.nbytes / 2**20,
        "seconds": seconds,
        "ms_per_iter": 1000 * seconds / MAX_ITER,
        "peak_rss_growth_mib": (rss_after - rss_before) / 1024,
        "python_peak_mib": traced_peak / 2**20,
        "lower_bound": gm.lower_bound_,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke test")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument(
        "--dtypes", default="float32,float64", help="comma-separated data types"
    )
    parser.add_argument("--large-only", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.large_only:  # child process: a clean peak-memory measurement
        rows, cols, dtype = args.large_only.split(",")
        print(json.dumps(large_image_run(int(rows), int(cols), args.n_jobs, dtype)))
        return

    info = skseg.build_info()
    print(
        f"skseg core: {info['compiler']}, OpenMP {info['openmp']}, "
        f"SIMD {info['simd_runtime']} (compiled {info['simd_compiled']}), "
        f"n_jobs={args.n_jobs}; k={N_COMPONENTS}, {MAX_ITER} iterations, tol=0\n"
    )
    dtypes = [np.dtype(d).type for d in args.dtypes.split(",")]
    if args.quick:
        compare([("china.jpg", 4)], ["full", "diag"], dtypes[:1], args.n_jobs)
        scale = (2, 2)
    else:
        compare(
            [("china.jpg", 1), ("flower.jpg", 1)],
            ["full", "tied", "diag", "spherical"],
            dtypes,
            args.n_jobs,
        )
        scale = (6, 7)

    print("\nLarge image, skseg alone (fresh process, full covariances):")
    for dtype in dtypes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--n-jobs",
                str(args.n_jobs),
                "--large-only",
                f"{scale[0]},{scale[1]},{np.dtype(dtype).name}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"  {r['shape'][0]}x{r['shape'][1]} = {r['n_pixels'] / 1e6:.1f} MP "
            f"{r['dtype']}: {r['seconds']:.2f} s ({r['ms_per_iter']:.1f} ms/iter), "
            f"input {r['input_mib']:.0f} MiB, peak RSS growth during fit "
            f"{r['peak_rss_growth_mib']:.1f} MiB, Python-side peak "
            f"{r['python_peak_mib']:.2f} MiB, lower bound {r['lower_bound']:.6f}"
        )


if __name__ == "__main__":
    main()
