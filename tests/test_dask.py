"""The mixture estimators over Dask collections, and searches on a Dask
cluster: distributed EM against the in-memory fit, lazy prediction, files, and
scikit-learn searches under joblib's Dask backend."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from threadpoolctl import threadpool_limits

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

from skseg import GaussianMixture, GMMImageSegmenter  # noqa: E402
from skseg.io import load_sample_image, read_image, read_mask, write_image  # noqa: E402
from skseg.metrics import matched_pixel_accuracy_scorer  # noqa: E402
from skseg.mixture import _dask, aligned_row_chunks, predict_files  # noqa: E402
from skseg.mixture.gaussian_mixture import _resolve_n_threads  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # Threads, not processes: starts in milliseconds and behaves the same
    # here (tasks are pickled to the workers either way by the searches).
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, 0.0], [0.0, 5.0, 3.0]])
    X = np.concatenate([rng.normal(c, 1.0, size=(7_000, 3)) for c in centres])
    return X[rng.permutation(len(X))]


@pytest.fixture(scope="module")
def small_images():
    china = load_sample_image("china")[::6, ::6]
    flower = load_sample_image("flower")[::6, ::6]
    return np.stack([china, flower, china[::-1], flower[:, ::-1]])


def fitted_params(gm):
    return [gm.weights_, gm.means_, gm.covariances_, gm.lower_bounds_]


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_distributed_em_is_the_in_memory_fit(client, blobs, covariance_type):
    params = dict(
        n_components=3, covariance_type=covariance_type, tol=1e-6, random_state=0
    )
    # Counts as weights: their normalisation is exact, whatever the order of
    # the sums (in memory, and over chunks).
    weights = np.random.default_rng(1).integers(0, 4, len(blobs)).astype(float)
    reference = GaussianMixture(**params).fit(blobs, sample_weight=weights)
    assert _dask.INIT_SAMPLE_ROWS >= len(blobs)  # the start is the in-memory one
    # Chunks of the core's partition, of two sizes: the same bits.
    for rows in (5_000, 10_000):
        chunks = aligned_row_chunks(len(blobs), rows)
        X = da.from_array(blobs, chunks=(chunks, 3))
        w = da.from_array(weights, chunks=(chunks,))
        gm = GaussianMixture(**params).fit(X, sample_weight=w)
        assert gm.n_iter_ == reference.n_iter_ > 2
        for got, want in zip(fitted_params(gm), fitted_params(reference), strict=True):
            np.testing.assert_array_equal(got, want)
    # Any other layout: equal up to rounding.
    gm = GaussianMixture(**params).fit(
        da.from_array(blobs, chunks=(3_001, 2)), sample_weight=weights
    )
    assert gm.n_iter_ == reference.n_iter_
    for got, want in zip(fitted_params(gm), fitted_params(reference), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_distributed_em_from_a_sample(client, blobs, monkeypatch):
    reference = GaussianMixture(3, random_state=0).fit(blobs)
    monkeypatch.setattr(_dask, "INIT_SAMPLE_ROWS", 2_000)
    X = da.from_array(blobs, chunks=(5_000, 3))
    gm = GaussianMixture(3, random_state=0).fit(X)
    # Another start, the same optimum of these well-separated blobs.
    order = np.argsort(gm.means_[:, 0] + gm.means_[:, 1])
    ref_order = np.argsort(reference.means_[:, 0] + reference.means_[:, 1])
    np.testing.assert_allclose(gm.means_[order], reference.means_[ref_order], atol=1e-2)
    # A user-given start is the same start: the same fit.
    start = dict(
        weights_init=reference.weights_,
        means_init=reference.means_ + 0.3,
        precisions_init=reference.precisions_,
    )
    want = GaussianMixture(3, tol=1e-8, **start).fit(blobs)
    chunks = aligned_row_chunks(len(blobs), 8_000)
    got = GaussianMixture(3, tol=1e-8, **start).fit(
        da.from_array(blobs, chunks=(chunks, 3))
    )
    for a, b in zip(fitted_params(got), fitted_params(want), strict=True):
        np.testing.assert_array_equal(a, b)


def test_lazy_mixture_predictions(client, blobs):
    gm = GaussianMixture(3, random_state=0).fit(blobs[:5000])
    X = da.from_array(blobs, chunks=(4_000, 3))
    labels = gm.predict(X)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), gm.predict(blobs))
    np.testing.assert_allclose(gm.predict_proba(X).compute(), gm.predict_proba(blobs))
    np.testing.assert_allclose(gm.score_samples(X).compute(), gm.score_samples(blobs))
    np.testing.assert_array_equal(
        GaussianMixture(3, random_state=0).fit_predict(X[:5000]).compute(),
        gm.predict(blobs[:5000]),
    )


def test_distributed_em_bad_input(client, blobs):
    X = da.from_array(blobs, chunks=(5_000, 3))
    with pytest.raises(ValueError, match="2-D"):
        GaussianMixture(2).fit(X[:, 0])
    with pytest.raises(ValueError, match="shape"):
        GaussianMixture(2).fit(X, sample_weight=np.ones(10))
    bad = X.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2, init_params="random_from_data").fit(bad)
    with pytest.raises(ValueError, match="all zero"):
        GaussianMixture(2).fit(X, sample_weight=da.zeros(len(blobs), chunks=5_000))


def test_segmenter_on_dask_array_and_paths(client, small_images, tmp_path):
    reference = GMMImageSegmenter(4, random_state=0).fit(small_images)
    lazy = da.from_array(small_images, chunks=(1, -1, -1, -1))
    from_array = GMMImageSegmenter(4, random_state=0).fit(lazy)
    paths = []
    for i, image in enumerate(small_images):
        paths.append(tmp_path / f"im{i}.png")
        write_image(paths[-1], image)
    from_paths = GMMImageSegmenter(4, random_state=0).fit(paths)
    for seg in (from_array, from_paths):
        np.testing.assert_array_equal(seg.mixture_.means_, reference.mixture_.means_)
        np.testing.assert_array_equal(seg.palette_, reference.palette_)

    labels = from_array.predict(lazy)
    assert isinstance(labels, da.Array) and labels.shape == small_images.shape[:3]
    np.testing.assert_array_equal(labels.compute(), reference.predict(small_images))
    recoloured = from_array.recolor(lazy)
    assert recoloured.dtype == np.uint8
    np.testing.assert_array_equal(recoloured.compute(), reference.recolor(small_images))
    with pytest.raises(ValueError, match="4-D"):
        from_array.predict(lazy[0])


def test_spatial_segmenter_by_distributed_em(client, small_images):
    params = dict(k=3, spatial_weight=0.5, random_state=0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = GMMImageSegmenter(**params).fit(small_images[:2])
        seg = GMMImageSegmenter(**params).fit(
            da.from_array(small_images[:2], chunks=(1, -1, -1, -1))
        )
    np.testing.assert_array_equal(seg.mixture_.means_, reference.mixture_.means_)


def test_k_search_on_dask_array_equals_in_memory(client, small_images):
    lazy = da.from_array(small_images, chunks=(1, -1, -1, -1))
    reference = GMMImageSegmenter(k=(2, 4), random_state=0).fit(small_images)
    seg = GMMImageSegmenter(k=(2, 4), random_state=0).fit(lazy)
    assert seg.k_ == reference.k_
    np.testing.assert_array_equal(seg.criterion_values_, reference.criterion_values_)
    np.testing.assert_array_equal(seg.mixture_.means_, reference.mixture_.means_)
    # With positions every candidate would be a distributed fit: one k only.
    with pytest.raises(ValueError, match="one k"):
        GMMImageSegmenter(k=(2, 4), spatial_weight=0.5).fit(lazy)


def test_predict_files_lazily(client, small_images, tmp_path, capsys):
    seg = GMMImageSegmenter(4, random_state=0).fit(small_images[:1])
    folder = tmp_path / "in"
    folder.mkdir()
    for i, image in enumerate(small_images):
        write_image(folder / f"im{i}.png", image)
    written = predict_files(seg, folder)
    assert written == [str(folder / f"im{i}_labels.png") for i in range(4)]
    for i, path in enumerate(written):
        np.testing.assert_array_equal(read_mask(path), seg.predict(small_images[i]))
    # Results of an earlier run are not taken as input.
    out = tmp_path / "out"
    written = predict_files(seg, folder, output_dir=out, method="recolor")
    assert len(written) == 4 and all(p.startswith(str(out)) for p in written)
    np.testing.assert_array_equal(read_image(written[1]), seg.recolor(small_images[1]))
    with pytest.raises(ValueError, match="no such image file"):
        predict_files(seg, [folder / "missing.png"])
    with pytest.raises(ValueError, match="method"):
        predict_files(seg, folder, method="transform")


def test_predict_files_progress_without_client(small_images, tmp_path, capsys):
    seg = GMMImageSegmenter(3, random_state=0).fit(small_images[:1])
    write_image(tmp_path / "a.png", small_images[0])
    predict_files(seg, tmp_path / "a.png")
    assert "100% Completed" in capsys.readouterr().out


def test_fit_threads_follow_the_worker(client):
    # A worker of one thread runs the core on one thread, not on every core.
    assert client.submit(_resolve_n_threads, None, pure=False).result() == 1
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _resolve_n_threads(None) == 1
    assert _resolve_n_threads(2) == 2


def _search_cases():
    """(estimator, X, y, param_grid, scoring) for every skseg estimator."""
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(c, 1.0, size=(300, 2)) for c in (0, 5)])
    images = np.stack([load_sample_image("china")[::16, ::16]] * 4)
    images[1::2] = images[1::2, ::-1]
    cases = {
        "GaussianMixture": (
            GaussianMixture(random_state=0),
            blobs,
            None,
            {"n_components": [1, 2]},
            None,
        ),
        "GMMImageSegmenter": (
            GMMImageSegmenter(random_state=0),
            images,
            None,
            {"k": [2, 3]},
            None,
        ),
    }
    try:
        import torch  # noqa: F401
    except ImportError:
        return cases
    from skseg import UNetSegmenter, UnsupervisedCNNSegmenter

    masks = (images.mean(axis=3) > 100).astype(np.int64)
    cases["UNetSegmenter"] = (
        UNetSegmenter(
            # The classic network: the default residual one, this tiny and
            # trained one epoch, gives predictions that float rounding (torch
            # ops of two in-process workers share OpenMP threads) can change,
            # so worker and in-process scores would not be comparable exactly.
            architecture="classic",
            depth=1,
            init_features=2,
            max_epochs=1,
            patch_size=None,
            device="cpu",
            random_state=0,
        ),
        images,
        masks,
        {"lr": [1e-3, 1e-2]},
        matched_pixel_accuracy_scorer,
    )
    cases["UnsupervisedCNNSegmenter"] = (
        UnsupervisedCNNSegmenter(
            superpixels="felzenszwalb",
            n_channels=8,
            max_iter=3,
            device="cpu",
            random_state=0,
        ),
        images,
        masks,
        {"n_channels": [4, 8]},
        matched_pixel_accuracy_scorer,
    )
    return cases


@pytest.mark.parametrize("name", list(_search_cases()))
def test_searches_under_the_dask_backend(client, name):
    estimator, X, y, grid, scoring = _search_cases()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = GridSearchCV(estimator, grid, cv=2, scoring=scoring).fit(X, y)
        with joblib.parallel_backend("dask"):
            search = GridSearchCV(estimator, grid, cv=2, scoring=scoring, n_jobs=-1)
            search.fit(X, y)
            scores = cross_val_score(
                search.best_estimator_, X, y, cv=2, scoring=scoring, n_jobs=-1
            )
    # The fits ran on the workers and gave the in-process results.
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert np.isfinite(scores).all() and scores.shape == (2,)
    # The fitted estimator pickles without torch tensors (device-free).
    assert b"torch" not in pickle.dumps(search.best_estimator_)


def test_install_hint_without_dask(monkeypatch, tmp_path):
    # A missing dask is named with the extra to install, and plain inputs
    # never import it.
    for name in ("dask", "dask.array"):
        monkeypatch.setitem(__import__("sys").modules, name, None)
    with pytest.raises(ImportError, match=r"skseg\[dask\]"):
        GMMImageSegmenter(2).fit([tmp_path / "a.png"])
    X = np.random.default_rng(0).normal(size=(50, 2))
    assert GaussianMixture(2, random_state=0).fit(X).predict(X).shape == (50,)


def test_estep_slots_binding_checks_its_input():
    from skseg import _core

    X = np.random.default_rng(0).normal(size=(600, 2))
    params = (np.array([0.5, 0.5]), np.array([[0.0, 0.0], [1.0, 1.0]]), np.ones((2, 2)))
    slots = _core.gmm_estep_slots(X, None, "diag", *params, 0, 256, 1)
    # Pieces of 256, 256 and 88 rows; the last two columns are sum log p, sum w.
    np.testing.assert_array_equal(slots[:, -1], [256, 256, 88])
    # Starting at row 200 of a larger array: pieces of 56, 256, 256, 32 rows.
    slots = _core.gmm_estep_slots(X, None, "diag", *params, 200, 256, 1)
    np.testing.assert_array_equal(slots[:, -1], [56, 256, 256, 32])
    with pytest.raises(ValueError, match="chunk_rows"):
        _core.gmm_estep_slots(X, None, "diag", *params, 0, 0, 1)
    for offset in (-1, 2**63 - 600):
        with pytest.raises(ValueError, match="row_offset"):
            _core.gmm_estep_slots(X, None, "diag", *params, offset, 256, 1)
    with pytest.raises(ValueError, match="features"):
        _core.gmm_estep_slots(X[:, :1].copy(), None, "diag", *params, 0, 256, 1)
    with pytest.raises(ValueError, match="non-negative"):
        _core.gmm_estep_slots(X, -np.ones(600), "diag", *params, 0, 256, 1)
    bad = X.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        _core.gmm_estep_slots(bad, None, "diag", *params, 0, 256, 1)
    # A part whose weights are all zero is valid: the total is checked later.
    zero = _core.gmm_estep_slots(X, np.zeros(600), "diag", *params, 0, 256, 1)
    assert not zero.any()
