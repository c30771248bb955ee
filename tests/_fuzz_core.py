"""Hypothesis fuzzing of the C++ core (``skseg._core``) and ``GaussianMixture``.

Run by ``tests/test_fuzz_core.py``, one batch per process, so that a crash of
the core ends this process and fails that test, not the test run::

    python tests/_fuzz_core.py --examples 100 --seed 0 --report out.json

Every example draws an entry point and hostile arguments: shapes with zero or
mismatched sizes, dtypes the core does not take, C, Fortran, strided,
reversed, read-only and big-endian layouts, values with NaN, infinities,
denormals and 1e300, zero, negative and huge weights, and thread counts from
-5 to 2**40. The property: the call returns well-formed, finite results or
raises ValueError or TypeError. Anything else (another exception, a crash, a
hang) is a bug. Before each call the example is written to ``--last`` so that
the parent can say what crashed the process. ``SKSEG_FUZZ_VERBOSE=1`` prints
every refusal's message, to see which checks the examples reach.
"""

import argparse
import json
import os
import sys
import warnings
from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from skseg import _core
from skseg.mixture import GaussianMixture

COV_TYPES = ["full", "tied", "diag", "spherical"]
SPECIAL = [
    np.nan,
    np.inf,
    -np.inf,
    0.0,
    -0.0,
    5e-324,  # smallest float64 denormal
    1e-40,  # float32 denormal
    1e-300,
    1e20,
    -1e20,
    3e38,
    1e300,
    -1e300,
]
THREADS = [-5, -1, 0, 1, 2, 3, 64, 100000, 2**31 - 1]
ACCEPTED = (ValueError, TypeError)

OUTCOMES = Counter()
LAST = None
IN_CALL = False
COIN = np.random.default_rng(0)


def _record(description):
    """Write the example about to run, for the parent to report a crash;
    from here on, exceptions come from skseg, not from drawing the example."""
    global IN_CALL
    with open(LAST, "w") as f:
        f.write(description)
    IN_CALL = True


# ------------------------------------------------------------- strategies


def pick(draw, valid, hostile=()):
    """One of ``valid``, or one of ``hostile`` one time in 16, so that most
    examples are hostile in a few ways rather than refused at once. The coin
    is uniform (Hypothesis favours the edges of what it draws)."""
    if hostile and COIN.random() < 1 / 16:
        return draw(st.sampled_from(list(hostile)))
    return draw(st.sampled_from(list(valid)))


@st.composite
def values(draw, shape, dtype):
    """An array of ``shape``: scaled normal noise with special values mixed in."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = pick(draw, [1.0, 1e-3, 1e3], [1e-40, 1e20, 1e160])
    offset = pick(draw, [0.0, 1.0], [1e20, -1e300])
    with np.errstate(all="ignore"):
        a = np.asarray(rng.normal(size=shape) * scale + offset)  # 0-d for ()
        if a.size and COIN.random() < 0.15:
            n_special = draw(st.integers(1, max(1, a.size // 4)))
            where = rng.integers(0, a.size, size=n_special)
            a.flat[where] = rng.choice(SPECIAL, size=n_special)
        if a.ndim and COIN.random() < 0.1:  # a few repeated rows
            a[len(a) // 2 :] = a[:1]
        return a.astype(dtype)


@st.composite
def layouts(draw, a, core):
    """The same values in another memory layout (the core takes C order and
    native byte order only)."""
    others = ["fortran", "strided", "reversed"]
    others += ["bigendian"] if a.dtype.kind == "f" else []
    kind = pick(draw, ["c", "readonly"], others) if core else pick(draw, others)
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        wide = np.repeat(a, 2, axis=-1) if a.ndim else a
        return wide[..., ::2] if a.ndim else wide
    if kind == "reversed":
        return a[::-1] if a.ndim else a
    if kind == "readonly":
        a = a.copy()
        a.setflags(write=False)
        return a
    if kind == "bigendian":
        return a.astype(a.dtype.newbyteorder(">"))
    return a


@st.composite
def data_arrays(draw, core=True):
    """X: mostly 2-D float32/float64, sometimes another dtype or shape."""
    n_rows = pick(draw, [1, 2, 3, 7, 40, 300, 5000], [0])
    n_features = pick(draw, [1, 2, 3, 5, 8, 9, 12], [0])
    dtype = pick(draw, [np.float64, np.float32], [np.float16, np.int32, bool])
    shape = pick(draw, [(n_rows, n_features)], [(n_rows,), (n_rows, n_features, 2)])
    return draw(layouts(draw(values(shape, dtype)), core))


@st.composite
def sample_weights(draw, n_rows, dtype):
    kind = pick(draw, ["none", "uniform", "scaled"], ["hostile"])
    if kind == "none":
        return None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.uniform(0.1, 3.0, size=n_rows)
    if kind == "scaled":
        w *= draw(st.sampled_from([1e-300, 1e-40, 1e-9, 1e9, 1e38, 1e300]))
    elif kind == "hostile":
        w = draw(values((pick(draw, [n_rows], [n_rows + 1]),), np.float64))
    with np.errstate(all="ignore"):
        return w.astype(pick(draw, [dtype], [np.float64, np.int64]))


def _param_shape(cov, k, d):
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[cov]


@st.composite
def mixture_params(draw, n_features):
    """weights, means, precisions_cholesky: mostly valid, sometimes not."""
    cov = pick(draw, COV_TYPES, ["round"])
    k = pick(draw, [1, 2, 3, 6], [0])
    d = pick(draw, [n_features], [0, 1, 4])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = rng.dirichlet(np.ones(max(k, 1)))[:k]
    means = rng.normal(size=(k, d))
    shape = _param_shape(cov if cov in COV_TYPES else "diag", k, d)
    prec = rng.uniform(0.2, 2.0, size=shape)
    if cov in ("full", "tied"):
        prec = np.triu(prec)
    if COIN.random() < 0.1:  # break one of them
        target = draw(st.sampled_from(["weights", "means", "prec", "shape"]))
        if target == "shape":
            prec = prec.reshape(-1)
        else:
            arr = {"weights": weights, "means": means, "prec": prec}[target]
            if arr.size:
                arr.flat[draw(st.integers(0, arr.size - 1))] = draw(
                    st.sampled_from([-1.0, 0.0, np.nan, np.inf, 1e300])
                )
    return cov, weights, means, prec


# ------------------------------------------------------------ the calls


def _check_params_out(out, k=None):
    for name in ("weights", "means", "precisions_cholesky"):
        assert np.isfinite(out[name]).all(), name
    assert (out["weights"] >= 0).all()
    if k is not None:
        assert out["means"].shape[0] == k


def call_fit(draw):
    X = draw(data_arrays())
    d = X.shape[-1] if X.ndim == 2 else 1
    cov, weights, means, prec = draw(mixture_params(d))
    w = draw(sample_weights(X.shape[0] if X.ndim else 0, X.dtype))
    tol = pick(draw, [0.0, 1e-3], [-1.0, np.nan])
    max_iter = pick(draw, [0, 1, 2, 5], [-1, 2**40])
    reg = pick(draw, [0.0, 1e-6, 1.0], [-1.0, np.nan, np.inf, 1e300])
    prev = pick(draw, [-np.inf, 0.0], [np.nan])
    threads = pick(draw, THREADS, [2**40])
    simd = pick(draw, ["auto", "baseline", "avx2"], ["sse9"])
    _record(f"gmm_fit X{X.shape}{X.dtype} {cov} K={len(weights)} threads={threads}")
    out = _core.gmm_fit(
        X, w, cov, weights, means, prec, tol, max_iter, reg, prev, threads, simd
    )
    _check_params_out(out, len(weights))
    assert np.isfinite(out["lower_bounds"]).all()
    assert len(out["lower_bounds"]) == out["n_iter"] <= max_iter


def call_evaluate(draw):
    X = draw(data_arrays())
    d = X.shape[-1] if X.ndim == 2 else 1
    cov, weights, means, prec = draw(mixture_params(d))
    want = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    threads = pick(draw, THREADS, [2**40])
    _record(f"gmm_evaluate X{X.shape}{X.dtype} {cov} K={len(weights)} {want}")
    resp, log_norm, labels = _core.gmm_evaluate(
        X, cov, weights, means, prec, *want, threads
    )
    n, k = X.shape[0], len(weights)
    if labels is not None:
        assert labels.shape == (n,) and ((labels >= 0) & (labels < k)).all()
    if resp is not None:
        assert resp.shape == (n, k)
    if resp is not None and log_norm is not None:
        # Rows whose density underflows everywhere (far outliers) have
        # log_norm -inf or NaN, as in scikit-learn; every other row is a
        # distribution.
        ok = np.isfinite(log_norm)
        r = resp[ok].astype(np.float64)
        assert np.isfinite(r).all() and (r >= 0).all()
        np.testing.assert_allclose(r.sum(axis=1), 1.0, rtol=1e-4)


def call_estep_slots(draw):
    X = draw(data_arrays())
    n = X.shape[0] if X.ndim else 0
    d = X.shape[-1] if X.ndim == 2 else 1
    cov, weights, means, prec = draw(mixture_params(d))
    w = draw(sample_weights(n, X.dtype))
    row_offset = pick(draw, [0, 5, 2**40], [-1, 2**63 - 1])
    chunk_rows = pick(draw, [1, 7, 256, 2**40], [0, -1])
    threads = pick(draw, THREADS, [2**40])
    _record(f"gmm_estep_slots X{X.shape}{X.dtype} {cov} K={len(weights)}")
    slots = _core.gmm_estep_slots(
        X, w, cov, weights, means, prec, row_offset, chunk_rows, threads
    )
    # One row per piece; the last column holds the pieces' weights (float32
    # ones summed in float32 within a block).
    expected = n if w is None else np.sum(w, dtype=np.float64)
    rtol = 1e-5 if X.dtype == np.float32 else 1e-9
    np.testing.assert_allclose(slots[:, -1].sum(), expected, rtol=rtol)
    assert len(slots) <= n


def call_from_labels(draw):
    X = draw(data_arrays())
    k = pick(draw, [1, 2, 5], [-1, 0, 10**6, 2**30])
    n = X.shape[0] if X.ndim else 0
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = rng.integers(-2, max(k, 1) + 1, size=n)
    if COIN.random() < 0.9:  # mostly in range
        labels = np.clip(labels, -1, max(k - 1, -1))
    if COIN.random() < 0.5:  # the core reads int32 labels as they are
        labels = labels.astype(np.int32)
    w = draw(sample_weights(n, X.dtype))
    cov = draw(st.sampled_from(COV_TYPES))
    reg = pick(draw, [0.0, 1e-6], [np.nan])
    threads = pick(draw, THREADS, [2**40])
    _record(f"gmm_params_from_labels X{X.shape}{X.dtype} K={k} {cov}")
    out = _core.gmm_params_from_labels(X, w, labels, k, cov, reg, threads)
    _check_params_out(out, k)


def call_resp_stats(draw):
    X = draw(data_arrays())
    n = X.shape[0] if X.ndim else 0
    d = X.shape[-1] if X.ndim == 2 else 1
    k = pick(draw, [1, 3], [0])
    resp = np.abs(draw(values((pick(draw, [n], [n + 1]), k), np.float64)))
    centres = draw(values((k, pick(draw, [d], [d + 1])), np.float64))
    cov = draw(st.sampled_from(COV_TYPES))
    w = draw(sample_weights(n, X.dtype))
    _record(f"gmm_resp_stats X{X.shape}{X.dtype} K={k} {cov}")
    threads = pick(draw, THREADS, [2**40])
    out = _core.gmm_resp_stats(X, w, resp, centres, cov, threads)
    assert out.shape[0] == k


def call_from_stats(draw):
    cov = draw(st.sampled_from(COV_TYPES))
    k = pick(draw, [1, 3], [0])
    d = pick(draw, [1, 3, 9], [0])
    width = 1 + d + (d * (d + 1) // 2 if cov in ("full", "tied") else d)
    width = pick(draw, [width], [width + 1, 0])
    stats = np.abs(draw(values((k, width), np.float64)))
    if COIN.random() < 0.1:
        stats = -stats
    centres = draw(values((pick(draw, [k], [k + 1]), d), np.float64))
    reg = pick(draw, [0.0, 1e-6, 1.0], [np.nan])
    _record(f"gmm_params_from_stats K={k} D={d} width={width} {cov}")
    out = _core.gmm_params_from_stats(stats, centres, cov, reg, draw(st.booleans()))
    _check_params_out(out, k)


def call_gaussian_mixture(draw):
    X = draw(data_arrays(core=False))
    n = X.shape[0] if X.ndim else 0
    gm = GaussianMixture(
        n_components=draw(st.sampled_from([1, 1, 2, 3, 8])),
        covariance_type=draw(st.sampled_from(COV_TYPES)),
        init_params=draw(
            st.sampled_from(["kmeans", "k-means++", "random", "random_from_data"])
        ),
        max_iter=pick(draw, [0, 1, 5], [2**40]),
        n_init=draw(st.sampled_from([1, 2])),
        reg_covar=pick(draw, [1e-6, 0.0, 1.0], [1e300]),
        tol=draw(st.sampled_from([1e-3, 0.0])),
        n_jobs=pick(draw, [None, *THREADS], [2**40, 0]),
        random_state=0,
    )
    w = draw(sample_weights(n, X.dtype))
    _record(f"GaussianMixture X{X.shape}{X.dtype} {gm.get_params()} w={w is not None}")
    gm.fit(X, sample_weight=w)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.isfinite(getattr(gm, name)).all(), name
    labels = gm.predict(X)
    assert ((labels >= 0) & (labels < gm.n_components)).all()
    log_norm = gm.score_samples(X)
    proba = gm.predict_proba(X)[np.isfinite(log_norm)].astype(np.float64)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)


def call_kmeans(draw):
    X = draw(data_arrays())
    n = X.shape[0] if X.ndim else 0
    k = pick(draw, [1, 2, 5], [-1, 0, n + 1, 2**30])
    w = draw(sample_weights(n, X.dtype))
    seed_value = draw(st.integers(0, 2**64 - 1))
    threads = pick(draw, THREADS, [2**40])
    if draw(st.booleans()):
        _record(f"kmeans_plusplus X{X.shape}{X.dtype} k={k} w={w is not None}")
        indices = _core.kmeans_plusplus(X, w, k, seed_value, threads)
        # Points may repeat where fewer than k points differ, as in scikit-learn.
        assert indices.shape == (k,) and ((indices >= 0) & (indices < n)).all()
        return
    max_iter = pick(draw, [1, 5, 300], [0, -1])
    tol = pick(draw, [0.0, 1e-4], [-1.0, np.nan])
    _record(f"kmeans X{X.shape}{X.dtype} k={k} w={w is not None} iter={max_iter}")
    centres, labels, inertia, _ = _core.kmeans(
        X, w, k, None, seed_value, max_iter, tol, threads
    )
    assert centres.shape == (k, X.shape[1]) and np.isfinite(centres).all()
    assert ((labels >= 0) & (labels < k)).all()
    assert np.isfinite(inertia)


def call_count_colors(draw):
    n_rows = pick(draw, [1, 7, 300, 5000, 70_000], [0])
    n_channels = pick(draw, [1, 3, 4, 5], [0])
    dtype = pick(draw, [np.uint8, np.uint16, np.float32, np.float64], [np.int32, bool])
    shape = pick(draw, [(n_rows, n_channels)], [(n_rows,), (n_rows, n_channels, 1)])
    if np.dtype(dtype).kind == "f":
        pixels = draw(values(shape, dtype))
    else:  # few or many distinct colours, the core's packed-key paths
        high = draw(st.sampled_from([2, 7, 256, 300, 65536]))
        pixels = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(
            0, high, size=shape
        )
        with np.errstate(all="ignore"):
            pixels = pixels.astype(dtype)
    pixels = draw(layouts(pixels, True))
    return_index = draw(st.booleans())
    threads = pick(draw, THREADS, [2**40])
    _record(f"count_colors {pixels.shape}{pixels.dtype} index={return_index}")
    colors, counts, index = _core.count_colors(pixels, return_index, threads)
    expected, inverse, expected_counts = np.unique(
        pixels, axis=0, return_inverse=True, return_counts=True
    )
    np.testing.assert_array_equal(colors, expected)
    np.testing.assert_array_equal(counts, expected_counts)
    if return_index:
        np.testing.assert_array_equal(index, inverse.ravel())


def call_take_rows(draw):
    n_values = pick(draw, [1, 7, 300], [0])
    dtype = pick(
        draw, [np.uint8, np.int64, np.float32, np.float64], [np.complex64, object]
    )
    shape = pick(draw, [(n_values,), (n_values, 3)], [(n_values, 2, 2), ()])
    table = draw(layouts(draw(values(shape, np.float64)).astype(dtype), True))
    high = pick(draw, [n_values], [n_values + 1, 2**40])
    low = pick(draw, [0], [-1, -(2**40)])
    index_dtype = pick(draw, [np.int32, np.int64], [np.uint64, np.float64])
    with np.errstate(all="ignore"):
        index = (
            np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
            .integers(low, max(high, low + 1), size=pick(draw, [0, 5, 40_000]))
            .astype(index_dtype)
        )
    threads = pick(draw, THREADS, [2**40, 0])
    _record(f"take_rows {table.shape}{table.dtype} index {index.shape}{index.dtype}")
    out = _core.take_rows(table, index, threads)
    np.testing.assert_array_equal(out, np.take(table, index, axis=0))


TARGETS = {
    "count_colors": call_count_colors,
    "gmm_fit": call_fit,
    "gmm_estep_slots": call_estep_slots,
    "gmm_evaluate": call_evaluate,
    "gmm_params_from_labels": call_from_labels,
    "gmm_resp_stats": call_resp_stats,
    "gmm_params_from_stats": call_from_stats,
    "GaussianMixture": call_gaussian_mixture,
    "kmeans": call_kmeans,
    "take_rows": call_take_rows,
}


def run(n_examples, batch_seed):
    @seed(batch_seed)
    @settings(
        max_examples=n_examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def fuzz(data):
        global IN_CALL, COIN
        IN_CALL = False
        COIN = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        target = data.draw(st.sampled_from(sorted(TARGETS)))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                TARGETS[target](data.draw)
                OUTCOMES[f"{target}: ok"] += 1
            except ACCEPTED as exc:
                if not IN_CALL:
                    raise
                if os.environ.get("SKSEG_FUZZ_VERBOSE"):
                    print(target, type(exc).__name__, str(exc)[:90], file=sys.stderr)
                OUTCOMES[f"{target}: {type(exc).__name__}"] += 1

    fuzz()


def main():
    global LAST
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--last", required=True)
    args = parser.parse_args()
    LAST = args.last
    try:
        run(args.examples, args.seed)
    finally:
        with open(args.report, "w") as f:
            json.dump(dict(OUTCOMES), f)


if __name__ == "__main__":
    sys.exit(main())
