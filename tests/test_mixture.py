"""skseg.mixture.GaussianMixture against scikit-learn's GaussianMixture."""

import pickle
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_sample_image
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

import skseg
from skseg import _core
from skseg.mixture import GaussianMixture

COV_TYPES = ["full", "tied", "diag", "spherical"]
# Tolerance of the agreement with scikit-learn, which is always run in float64
# (on float32 data: on the same values, upcast). scikit-learn's own float32
# answer is no reference: it depends on the BLAS kernel (OpenBLAS' SkylakeX
# kernels move it by 3e-3 from its float64 answer on the pixels, 5e-4 on
# Haswell ones), while skseg uses no BLAS. skseg's float32 kernels evaluate the
# densities and responsibilities in float32 (unit roundoff 6e-8) and sum in
# double; 30 EM iterations amplify that to 1e-5 at most (measured: 4e-6 with
# the AVX2 kernels, 1e-5 with the baseline ones), so 1e-4 leaves a margin.
RTOL = {np.float64: 1e-6, np.float32: 1e-4}


def _pixels():
    """RGB pixels of a downsampled china.jpg, values 0..255 (3.4k rows)."""
    img = load_sample_image("china.jpg")[::8, ::10]
    return img.reshape(-1, 3).astype(np.float64)


def _blobs(n=2000, seed=0):
    """Four anisotropic Gaussian blobs in 4-D."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(4, 4))
    parts = [
        c + rng.normal(size=(n // 4, 4)) @ rng.normal(size=(4, 4)) * 0.7
        for c in centres
    ]
    return np.concatenate(parts)


DATASETS = {"pixels": _pixels, "blobs": _blobs}

# For tests that stop EM early on purpose (tol=0 or few iterations).
stops_before_convergence = pytest.mark.filterwarnings(
    "ignore:Best performing initialization did not converge"
    ":sklearn.exceptions.ConvergenceWarning"
)


def _initial_parameters(X, n_components, covariance_type):
    """weights/means/precisions after one scikit-learn iteration (normalised)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = SklearnGaussianMixture(
            n_components,
            covariance_type=covariance_type,
            max_iter=1,
            random_state=0,
        ).fit(X.astype(np.float64))
    return {
        "weights_init": gm.weights_,
        "means_init": gm.means_,
        "precisions_init": gm.precisions_,
    }


def _assert_close(actual, desired, rtol):
    """allclose with an absolute floor relative to the largest entry."""
    desired = np.asarray(desired, dtype=np.float64)
    atol = rtol * np.max(np.abs(desired))
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol)


def _fit_both(X, n_components, covariance_type, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(
            n_components, covariance_type=covariance_type, **params
        ).fit(X)
        ref = SklearnGaussianMixture(
            n_components, covariance_type=covariance_type, **params
        ).fit(X)
    return ours, ref


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_matches_sklearn_from_same_initial_parameters(dataset, dtype, covariance_type):
    X = DATASETS[dataset]().astype(dtype)
    # The same start for both, exactly: initial parameters rounded to the
    # data's dtype, then given to each in its own precision.
    init = {
        name: value.astype(dtype).astype(np.float64)
        for name, value in _initial_parameters(X, 6, covariance_type).items()
    }
    init["weights_init"] /= init["weights_init"].sum()
    params = dict(covariance_type=covariance_type, max_iter=30, tol=0.0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(6, **params).fit(X)
        ref = SklearnGaussianMixture(6, **params).fit(X.astype(np.float64))
    rtol = RTOL[dtype]
    assert ours.means_.dtype == dtype
    _assert_close(ours.weights_, ref.weights_, rtol)
    _assert_close(ours.means_, ref.means_, rtol)
    _assert_close(ours.covariances_, ref.covariances_, rtol)
    _assert_close(ours.precisions_cholesky_, ref.precisions_cholesky_, rtol)
    _assert_close(ours.precisions_, ref.precisions_, rtol)
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=rtol)
    np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=rtol)
    assert ours.n_iter_ == ref.n_iter_ == 30
    assert not ours.converged_ and not ref.converged_


@pytest.mark.parametrize(
    "init_params", ["kmeans", "k-means++", "random", "random_from_data"]
)
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_initialisations_match_sklearn(init_params, covariance_type):
    X = _blobs(600)
    ours, ref = _fit_both(
        X, 4, covariance_type, init_params=init_params, random_state=0, tol=1e-4
    )
    assert ours.n_iter_ == ref.n_iter_
    assert ours.converged_ == ref.converged_
    _assert_close(ours.means_, ref.means_, 1e-6)
    _assert_close(ours.covariances_, ref.covariances_, 1e-6)
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-8)


def test_n_init_and_warm_start_match_sklearn():
    X = _blobs(800, seed=3)
    ours, ref = _fit_both(X, 5, "diag", n_init=3, random_state=1, max_iter=15)
    _assert_close(ours.means_, ref.means_, 1e-6)
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-8)

    kwargs = dict(warm_start=True, max_iter=3, tol=0.0, random_state=0)
    ours = GaussianMixture(4, **kwargs)
    ref = SklearnGaussianMixture(4, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            ours.fit(X)
            ref.fit(X)
            _assert_close(ours.means_, ref.means_, 1e-6)
            np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_unique_rows_with_counts_equal_all_rows(dtype, covariance_type):
    # Quantised pixels repeat a lot: 3.4k rows, far fewer distinct colours.
    X = (_pixels() // 32 * 32).astype(dtype)
    unique, counts = np.unique(X, axis=0, return_counts=True)
    assert len(unique) < len(X) / 5
    init = _initial_parameters(X, 4, covariance_type)
    params = dict(covariance_type=covariance_type, max_iter=20, tol=0.0, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = GaussianMixture(4, **params).fit(X)
        weighted = GaussianMixture(4, **params).fit(
            unique, sample_weight=counts.astype(dtype)
        )
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    _assert_close(weighted.means_, full.means_, rtol)
    _assert_close(weighted.covariances_, full.covariances_, rtol)
    _assert_close(weighted.weights_, full.weights_, rtol)
    np.testing.assert_allclose(weighted.lower_bound_, full.lower_bound_, rtol=rtol)
    # The weighted score is the all-rows score.
    np.testing.assert_allclose(
        full.score(unique, sample_weight=counts), full.score(X), rtol=rtol
    )


@stops_before_convergence
@pytest.mark.parametrize(
    "init_params", ["kmeans", "k-means++", "random", "random_from_data"]
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_results_do_not_depend_on_thread_count(dtype, covariance_type, init_params):
    # 'kmeans' runs scikit-learn's KMeans, whose labels change with its
    # thread count; the mixture runs it on one thread whatever n_jobs is.
    # Enough rows for several chunks of work.
    X = np.tile(_pixels(), (6, 1)).astype(dtype)
    X += np.random.default_rng(0).normal(size=X.shape).astype(dtype)
    fits = [
        GaussianMixture(
            8,
            covariance_type=covariance_type,
            max_iter=10,
            tol=0.0,
            random_state=0,
            n_jobs=n_jobs,
            init_params=init_params,
        ).fit(X)
        for n_jobs in (1, 2)
    ]
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    assert fits[0].lower_bound_ == fits[1].lower_bound_
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))


def test_build_info_reports_simd(monkeypatch):
    info = skseg.build_info()
    assert "baseline" in info["simd_compiled"]
    assert info["simd_runtime"] in info["simd_compiled"]
    monkeypatch.setenv("SKSEG_SIMD", "baseline")
    assert skseg.build_info()["simd_runtime"] == "baseline"
    monkeypatch.setenv("SKSEG_SIMD", "sse9")
    with pytest.raises(ValueError, match="unknown SIMD level"):
        skseg.build_info()


@pytest.mark.skipif(
    "avx2" not in skseg.build_info()["simd_runtime"], reason="CPU without AVX2"
)
@stops_before_convergence
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_baseline_and_avx2_kernels_agree(monkeypatch, dtype, covariance_type):
    X = _pixels().astype(dtype)
    init = _initial_parameters(X, 6, covariance_type)
    results = {}
    for level in ("baseline", "avx2"):
        monkeypatch.setenv("SKSEG_SIMD", level)
        gm = GaussianMixture(
            6, covariance_type=covariance_type, max_iter=20, tol=0.0, **init
        ).fit(X)
        results[level] = (gm, gm.predict_proba(X), gm.score_samples(X))
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    base, avx = results["baseline"], results["avx2"]
    _assert_close(avx[0].means_, base[0].means_, rtol)
    _assert_close(avx[0].covariances_, base[0].covariances_, rtol)
    np.testing.assert_allclose(avx[0].lower_bound_, base[0].lower_bound_, rtol=rtol)
    np.testing.assert_allclose(avx[1], base[1], atol=10 * rtol)
    np.testing.assert_allclose(avx[2], base[2], rtol=rtol)


def _as_sklearn(ours):
    """A scikit-learn GaussianMixture holding our fitted parameters (in float64,
    so that its predictions do not depend on the BLAS kernel)."""
    ref = SklearnGaussianMixture(
        ours.n_components, covariance_type=ours.covariance_type
    )
    for name in (
        "weights_",
        "means_",
        "covariances_",
        "precisions_",
        "precisions_cholesky_",
        "converged_",
        "n_iter_",
        "lower_bound_",
        "n_features_in_",
    ):
        value = getattr(ours, name)
        if isinstance(value, np.ndarray):
            value = value.astype(np.float64)
        setattr(ref, name, value)
    return ref


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_prediction_methods_match_sklearn(dtype, covariance_type):
    X = _blobs(1000).astype(dtype)
    ours = GaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(X)
    ref = _as_sklearn(ours)
    X_new = _blobs(600, seed=5).astype(dtype)
    # The reference sees the same values in float64. float32 log-densities
    # carry relative errors of a few float32 roundoffs (6e-8), measured below
    # 3e-7; the probabilities, absolute errors of that times |log p| (5e-6).
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    proba_atol = 1e-10 if dtype == np.float64 else 1e-4
    X_ref = X_new.astype(np.float64)
    proba = ours.predict_proba(X_new)
    assert proba.dtype == dtype and proba.shape == (600, 4)
    np.testing.assert_allclose(proba, ref.predict_proba(X_ref), atol=proba_atol)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=rtol)
    np.testing.assert_allclose(
        ours.score_samples(X_new), ref.score_samples(X_ref), rtol=rtol
    )
    np.testing.assert_allclose(ours.score(X_new), ref.score(X_ref), rtol=rtol)
    np.testing.assert_allclose(ours.bic(X_new), ref.bic(X_ref), rtol=rtol)
    np.testing.assert_allclose(ours.aic(X_new), ref.aic(X_ref), rtol=rtol)
    # Labels may only differ where two components are (numerically) tied.
    labels, ref_labels = ours.predict(X_new), ref.predict(X_ref)
    assert labels.dtype == np.int64
    assert np.mean(labels == ref_labels) > 0.999
    np.testing.assert_array_equal(ours.fit_predict(X), ours.predict(X))


def test_sample_matches_sklearn():
    X = _blobs(400)
    for covariance_type in COV_TYPES:
        ours = GaussianMixture(3, covariance_type=covariance_type, random_state=2).fit(
            X
        )
        ref = _as_sklearn(ours)
        ref.random_state = 2
        Xs, ys = ours.sample(50)
        Xr, yr = ref.sample(50)
        np.testing.assert_allclose(Xs, Xr)
        np.testing.assert_array_equal(ys, yr)


@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), "infinity"),
        (np.empty((0, 3)), "0 sample"),
        (np.ones(10), "2D array"),
        (np.ones((4, 3, 2)), "dim"),
        (np.ones((5, 0)), "0 feature"),
        (np.array([["a", "b"], ["c", "d"]], dtype=object), "could not convert"),
    ],
)
def test_bad_X_is_rejected(X, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(X)


def test_too_many_components():
    X = _blobs(40)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(41).fit(X)
    # Weighted rows: only rows of positive weight count as samples.
    weights = np.zeros(40)
    weights[:3] = 1.0
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(4).fit(X, sample_weight=weights)


def test_more_components_than_distinct_points_like_sklearn():
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 9.0]]), 20, axis=0)
    X += np.random.default_rng(0).normal(scale=1e-3, size=X.shape)
    outcomes = []
    for cls in (GaussianMixture, SklearnGaussianMixture):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                gm = cls(5, random_state=0, reg_covar=0.0, max_iter=20).fit(X)
                outcomes.append(("fit", gm.lower_bound_))
            except ValueError as exc:
                outcomes.append(("error", str(exc)[:60]))
    assert outcomes[0][0] == outcomes[1][0]
    if outcomes[0][0] == "fit":
        np.testing.assert_allclose(outcomes[0][1], outcomes[1][1], rtol=1e-6)


def test_collapsed_component_raises_like_sklearn():
    X = np.ones((20, 2))
    X[10:] = 2.0
    for cls in (GaussianMixture, SklearnGaussianMixture):
        with pytest.raises(ValueError, match="ill-defined empirical covariance"):
            cls(2, reg_covar=0.0, random_state=0).fit(X)


@pytest.mark.parametrize(
    "weights, error, message",
    [
        (-np.ones(48), ValueError, "Negative values"),
        (np.full(48, np.nan), ValueError, "NaN"),
        (np.ones(47), ValueError, r"shape"),
        (np.zeros(48), ValueError, "non-zero"),
    ],
)
def test_bad_sample_weight_is_rejected(weights, error, message):
    with pytest.raises(error, match=message):
        GaussianMixture(2).fit(_blobs(48), sample_weight=weights)


def test_bad_initial_parameters_are_rejected():
    X = _blobs(100)
    with pytest.raises(ValueError, match="normalized"):
        GaussianMixture(2, weights_init=[0.2, 0.2]).fit(X)
    with pytest.raises(ValueError, match="shape"):
        GaussianMixture(2, means_init=np.zeros((3, 4))).fit(X)
    with pytest.raises(ValueError, match="positive-definite"):
        GaussianMixture(2, precisions_init=-np.stack([np.eye(4)] * 2)).fit(X)
    with pytest.raises(ValueError, match="n_jobs"):
        GaussianMixture(2, n_jobs=0).fit(X)


def test_predict_checks_features():
    gm = GaussianMixture(2, random_state=0).fit(_blobs(100))
    with pytest.raises(ValueError, match="features"):
        gm.predict(np.ones((3, 2)))


def test_non_contiguous_and_read_only_input():
    X = _blobs(800)
    reference = GaussianMixture(3, random_state=0).fit(X)
    fortran = np.asfortranarray(X)
    strided = np.repeat(X, 2, axis=1)[:, ::2]
    read_only = X.copy()
    read_only.setflags(write=False)
    for variant in (fortran, strided, read_only):
        gm = GaussianMixture(3, random_state=0).fit(variant)
        np.testing.assert_array_equal(gm.means_, reference.means_)
        np.testing.assert_array_equal(
            gm.predict_proba(variant), reference.predict_proba(X)
        )
    big_endian = X.astype(">f8")
    gm = GaussianMixture(3, random_state=0).fit(big_endian)
    np.testing.assert_array_equal(gm.means_, reference.means_)


def test_core_validates_its_arguments():
    X = np.ascontiguousarray(_blobs(100))
    gm = GaussianMixture(2, random_state=0).fit(X)
    args = ("full", gm.weights_, gm.means_, gm.precisions_cholesky_)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.gmm_evaluate(np.asfortranarray(X), *args, False, True, False, 1)
    with pytest.raises(TypeError, match="dtype"):
        _core.gmm_evaluate(X.astype(np.int32), *args, False, True, False, 1)
    with pytest.raises(ValueError, match="2-D"):
        _core.gmm_evaluate(X[0], *args, False, True, False, 1)
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _core.gmm_evaluate(bad, *args, False, True, False, 1)
    with pytest.raises(ValueError, match="do not match"):
        _core.gmm_evaluate(X, "diag", *args[1:], False, True, False, 1)
    with pytest.raises(ValueError, match="covariance_type"):
        _core.gmm_evaluate(X, "round", *args[1:], False, True, False, 1)
    with pytest.raises(ValueError, match="features"):
        _core.gmm_evaluate(X[:, :3].copy(), *args, False, True, False, 1)
    with pytest.raises(ValueError, match="sample_weight"):
        _core.gmm_fit(X, -np.ones(100), *args, 0.0, 2, 1e-6, -np.inf, 1)


@stops_before_convergence
def test_concurrent_calls_from_python_threads():
    X = np.tile(_pixels(), (3, 1))
    expected = GaussianMixture(6, random_state=0, max_iter=10, tol=0).fit(X)

    def fit(_):
        gm = GaussianMixture(6, random_state=0, max_iter=10, tol=0).fit(X)
        return gm.means_, gm.score_samples(X)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(fit, range(4)))
    for means, scores in results:
        np.testing.assert_array_equal(means, expected.means_)
        np.testing.assert_array_equal(scores, expected.score_samples(X))


def test_clone_and_pickle_round_trip():
    X = _blobs(300)
    gm = GaussianMixture(3, covariance_type="tied", random_state=0, n_jobs=1)
    assert clone(gm).get_params() == gm.get_params()
    gm.fit(X)
    restored = pickle.loads(pickle.dumps(gm))
    np.testing.assert_array_equal(restored.predict_proba(X), gm.predict_proba(X))
    assert restored.lower_bound_ == gm.lower_bound_


def test_max_iter_zero_keeps_initial_parameters():
    X = _blobs(200)
    init = _initial_parameters(X, 3, "full")
    gm = GaussianMixture(3, max_iter=0, **init).fit(X)
    np.testing.assert_allclose(gm.means_, init["means_init"])
    np.testing.assert_allclose(gm.precisions_, init["precisions_init"], rtol=1e-10)
    assert gm.n_iter_ == 0 and gm.lower_bound_ == -np.inf


@parametrize_with_checks([GaussianMixture(), GaussianMixture(covariance_type="diag")])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ------------------------------------------------ hostile input (issue 8)


def _run_isolated(code):
    """Run ``code`` in a fresh interpreter, so that a crash fails the test
    rather than ending the run; returns its standard output. It runs in the
    tests folder, where no source tree shadows the installed package."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parent,
    )
    assert result.returncode == 0, (
        f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def test_core_rejects_empty_dimensions_without_crashing():
    out = _run_isolated(
        """
        import numpy as np
        from skseg import _core

        X = np.ones((5, 2))
        calls = {
            "stats D=0": lambda t: _core.gmm_params_from_stats(
                np.ones((1, 1)), np.zeros((1, 0)), t, 0.0, False),
            "stats K=0": lambda t: _core.gmm_params_from_stats(
                np.ones((0, 1)), np.zeros((0, 3)), t, 0.0, False),
            "resp K=0": lambda t: _core.gmm_resp_stats(
                X, None, np.ones((5, 0)), np.zeros((0, 2)), t, 1),
            "labels K=0": lambda t: _core.gmm_params_from_labels(
                X, None, np.zeros(5, np.int64), 0, t, 0.0, 1),
            "labels K>n": lambda t: _core.gmm_params_from_labels(
                X, None, np.zeros(5, np.int64), 6, t, 0.0, 1),
            "fit K=0": lambda t: _core.gmm_fit(
                X, None, t, np.ones(0), np.zeros((0, 2)), np.ones(0), 0.0, 1,
                0.0, -np.inf, 1),
            "evaluate D=0": lambda t: _core.gmm_evaluate(
                np.ones((5, 0)), t, np.ones(1), np.zeros((1, 0)), np.ones(1),
                True, True, True, 1),
        }
        for name, call in calls.items():
            for cov in ("full", "tied", "diag", "spherical"):
                try:
                    call(cov)
                    print(name, cov, "returned")
                except ValueError as exc:
                    print(name, cov, "ValueError", exc)
        """
    )
    lines = out.splitlines()
    assert len(lines) == 28
    assert all("ValueError" in line for line in lines), out
    assert sum("n_features must be >= 1" in line for line in lines) == 8
    assert sum("n_components must be >= 1" in line for line in lines) == 16
    assert sum("must not exceed n_samples" in line for line in lines) == 4


def test_thread_requests_beyond_the_cores_are_capped():
    # 100000 threads for 300 rows once crashed libgomp (check_data had no cap).
    out = _run_isolated(
        """
        import numpy as np
        from skseg import _core, GaussianMixture

        X = np.random.default_rng(0).normal(size=(300, 2))
        ref = GaussianMixture(2, random_state=0, n_jobs=1).fit(X)
        for n_jobs in (100000, 2**40, -2**40):
            gm = GaussianMixture(2, random_state=0, n_jobs=n_jobs).fit(X)
            assert np.array_equal(gm.means_, ref.means_), n_jobs
            assert np.array_equal(gm.predict(X), ref.predict(X)), n_jobs
        args = ("full", ref.weights_, ref.means_, ref.precisions_cholesky_)
        out = _core.gmm_fit(X, None, *args, 0.0, 3, 1e-6, -np.inf, 2**31 - 1)
        assert np.isfinite(out["means"]).all()
        _core.gmm_evaluate(X, *args, True, True, True, 2**31 - 1)
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_integer_parameters_beyond_the_core_are_rejected_clearly():
    X = _blobs(100)
    with pytest.raises(ValueError, match="'max_iter' parameter .* range"):
        GaussianMixture(2, max_iter=2**40).fit(X)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e-9, 1e-30, 1e30])
def test_fit_does_not_depend_on_the_scale_of_sample_weight(dtype, scale):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(5, 1, (100, 2)), rng.normal(10, 1, (100, 2))])
    X = X.astype(dtype)
    weights = rng.uniform(0.5, 2.0, size=200)
    params = dict(covariance_type="diag", random_state=0)
    ref = GaussianMixture(2, **params).fit(X, sample_weight=weights)
    gm = GaussianMixture(2, **params).fit(X, sample_weight=weights * scale)
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    _assert_close(gm.means_, ref.means_, rtol)
    _assert_close(gm.covariances_, ref.covariances_, rtol)
    _assert_close(gm.weights_, ref.weights_, rtol)
    np.testing.assert_allclose(
        gm.score(X, sample_weight=weights * scale),
        ref.score(X, sample_weight=weights),
        rtol=rtol,
    )


def test_unit_weights_are_no_weights_and_huge_weights_do_not_overflow():
    X = _blobs(200)
    ref = GaussianMixture(3, random_state=0).fit(X)
    unit = GaussianMixture(3, random_state=0).fit(X, sample_weight=np.ones(200))
    np.testing.assert_array_equal(unit.means_, ref.means_)
    # 200 x 1e308 overflows a plain sum.
    huge = GaussianMixture(3, random_state=0).fit(X, sample_weight=np.full(200, 1e308))
    _assert_close(huge.means_, ref.means_, 1e-10)
    # The core itself refuses weights it cannot sum.
    args = ("full", ref.weights_, ref.means_, ref.precisions_cholesky_)
    with pytest.raises(ValueError, match="sample_weight sums to infinity"):
        _core.gmm_fit(X, np.full(200, 1e308), *args, 0.0, 2, 1e-6, -np.inf, 1)
    # Weights it can sum, times log-densities of -1e10, it cannot.
    far = X + 1e5
    with pytest.raises(ValueError, match="log-likelihood of X overflows"):
        _core.gmm_fit(far, np.full(200, 1e300), *args, 0.0, 2, 1e-6, -np.inf, 1)


def test_weights_are_normalised_and_averaged_slice_by_slice(monkeypatch):
    # Weights are rescaled and averaged over slices of rows (no float64 copy
    # of millions of weights); slices of 7 rows here, as np.average gives.
    from skseg.mixture import gaussian_mixture as gm_module

    monkeypatch.setattr(gm_module, "_SLICE_ROWS", 7)
    rng = np.random.default_rng(0)
    values = rng.normal(size=50).astype(np.float32)
    for weights in (rng.uniform(0, 3, 50), np.full(50, 1e308), np.arange(50.0)):
        weights = weights.astype(np.float64)
        expected = weights / weights.max()
        expected *= weights.size / expected.sum()
        got = gm_module._normalised_sample_weight(weights)
        np.testing.assert_allclose(got, expected, rtol=1e-14)
        in_place = weights.copy()
        gm_module._normalised_sample_weight(in_place, out=in_place)
        np.testing.assert_array_equal(in_place, got)
        np.testing.assert_allclose(
            gm_module._weighted_mean(values, weights),
            np.average(values, weights=weights / weights.max()),
            rtol=1e-12,
        )
    ones = np.ones(50, dtype=np.float32)
    np.testing.assert_array_equal(gm_module._normalised_sample_weight(ones), ones)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_params_from_labels_read_int32_and_int64_alike(covariance_type):
    X = _blobs(300)
    labels = np.random.default_rng(0).integers(-1, 3, size=300)
    args = (3, covariance_type, 1e-6, 2)
    wide = _core.gmm_params_from_labels(X, None, labels, *args)
    narrow = _core.gmm_params_from_labels(X, None, labels.astype(np.int32), *args)
    for name in wide:
        np.testing.assert_array_equal(narrow[name], wide[name])
    with pytest.raises(TypeError, match="array of integers"):
        _core.gmm_params_from_labels(X, None, None, *args)


def test_one_weighted_sample_fits_one_component():
    gm = GaussianMixture(1).fit(np.array([[0.2, 0.4, 0.6]]), sample_weight=[50.0])
    np.testing.assert_allclose(gm.means_, [[0.2, 0.4, 0.6]])
    np.testing.assert_allclose(np.diagonal(gm.covariances_[0]), 1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(2).fit(np.ones((1, 3)))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_values_too_large_for_float32_are_an_error_at_fit(covariance_type):
    X = (_blobs(200) * 1e20).astype(np.float32)
    with pytest.raises(ValueError, match="too large for float32.*float64"):
        GaussianMixture(2, covariance_type=covariance_type).fit(X)
    # The same data in float64 fit.
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0)
    assert np.isfinite(gm.fit(X.astype(np.float64)).covariances_).all()
    # The core, given float32 statistics that overflow, says so too.
    gm.fit(X[:, :1].astype(np.float64) / 1e20)
    params = (gm.weights_, gm.means_, gm.precisions_cholesky_ / 1e19)
    with pytest.raises(ValueError, match="statistics overflow.*float32"):
        _core.gmm_fit(
            np.ascontiguousarray(X[:, :1]) / np.float32(10),
            None,
            covariance_type,
            *params,
            0.0,
            3,
            0.0,
            -np.inf,
            1,
        )
