"""The compiled core's distinct-colour counting and weighted k-means."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_sample_image

from skseg import _core
from skseg.io import read_image

SHARED_DATA = Path(__file__).parents[1] / ".." / "shared" / "data"


def _random_pixels(dtype, n_channels, high, n=50_000, seed=0):
    """Random pixels with repeated colours (values in [0, high))."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, high, size=(n, n_channels))
    if np.dtype(dtype).kind == "f":
        return (values / high).astype(dtype)
    return values.astype(dtype)


def _real_pixels():
    china = load_sample_image("china.jpg")[::2, ::2].reshape(-1, 3)
    flower = load_sample_image("flower.jpg")[::2, ::2].reshape(-1, 3)
    return {
        "china uint8": china,
        "flower uint8": flower,
        "china uint16": china.astype(np.uint16) * 257,
        "flower uint16 + noise": (flower.astype(np.uint16) * 257)
        ^ np.random.default_rng(0).integers(0, 64, flower.shape, dtype=np.uint16),
        "china float32": china.astype(np.float32) / 255,
        "flower float64": flower / 255.0,
    }


CASES = {
    # packed keys up to 26 bits: bitmap and rank
    "uint8 rgb": lambda: _random_pixels(np.uint8, 3, 256),
    "uint8 grey": lambda: _random_pixels(np.uint8, 1, 256),
    "uint16 narrow": lambda: _random_pixels(np.uint16, 3, 300),
    "uint8 one colour": lambda: np.full((50, 3), 7, dtype=np.uint8),
    # wider packed keys: hash table and radix sort
    "uint8 rgba": lambda: _random_pixels(np.uint8, 4, 256),
    "uint16 rgb": lambda: _random_pixels(np.uint16, 3, 65536),
    # rows: more than 64 bits, or floats
    "uint16 5 channels": lambda: _random_pixels(np.uint16, 5, 65536) | 0x8001,
    "float32": lambda: _random_pixels(np.float32, 3, 7),
    "float64": lambda: _random_pixels(np.float64, 2, 50),
}


def _assert_like_np_unique(pixels):
    expected, inverse, counts = np.unique(
        pixels, axis=0, return_inverse=True, return_counts=True
    )
    runs = [_core.count_colors(pixels, True, n_threads) for n_threads in (1, 2, 3)]
    colors, got_counts, index = runs[0]
    assert colors.dtype == pixels.dtype
    np.testing.assert_array_equal(colors, expected)
    np.testing.assert_array_equal(got_counts, counts)
    np.testing.assert_array_equal(index, inverse.ravel())
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    no_index = _core.count_colors(pixels, False, 2)
    assert no_index[2] is None
    np.testing.assert_array_equal(no_index[1], counts)


@pytest.mark.parametrize("case", sorted(CASES))
def test_count_colors_equals_np_unique_on_random_pixels(case):
    _assert_like_np_unique(np.ascontiguousarray(CASES[case]()))


@pytest.mark.parametrize("simd", ["auto", "baseline"])
@pytest.mark.parametrize("name", sorted(_real_pixels()))
def test_count_colors_equals_np_unique_on_real_images(monkeypatch, name, simd):
    # "baseline" keeps the bitmap path off the POPCNT instruction.
    monkeypatch.setenv("SKSEG_SIMD", simd)
    _assert_like_np_unique(np.ascontiguousarray(_real_pixels()[name]))


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64]
)
@pytest.mark.parametrize("shape", [(7,), (7, 3)])
def test_take_rows_equals_np_take(dtype, shape):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 100, size=shape).astype(dtype)
    for index_dtype in (np.int32, np.int64):
        index = rng.integers(0, 7, size=40_000).astype(index_dtype)
        for n_threads in (1, 2):
            got = _core.take_rows(values, index, n_threads)
            assert got.dtype == values.dtype
            np.testing.assert_array_equal(got, np.take(values, index, axis=0))


@pytest.mark.parametrize(
    "values, index, error, message",
    [
        (np.zeros(3), np.array([0, 3], dtype=np.int32), ValueError, "out of range"),
        (np.zeros(3), np.array([-1], dtype=np.int64), ValueError, "out of range"),
        (np.zeros(3), np.array([0.0]), TypeError, "int32 or int64"),
        (np.array(["a", "b"]), np.array([0]), TypeError, "dtype"),
        (np.zeros(3, dtype=np.complex64), np.array([0]), TypeError, "dtype"),
        (np.zeros((3, 2, 2)), np.array([0]), ValueError, "1-D or 2-D"),
        (np.zeros((3, 4))[:, ::2], np.array([0]), ValueError, "contiguous"),
        ([0.0, 1.0], np.array([0]), TypeError, "numpy.ndarray"),
    ],
)
def test_take_rows_rejects_bad_input(values, index, error, message):
    with pytest.raises(error, match=message):
        _core.take_rows(values, index, 1)


def test_count_colors_on_dataset_images():
    folder = SHARED_DATA / "camvid_train_subset" / "images"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    for path in sorted(folder.glob("*.png"))[:2]:
        image = read_image(path)
        _assert_like_np_unique(image.reshape(-1, image.shape[-1]))


def test_count_colors_treats_signed_zero_as_one_colour():
    pixels = np.array([[0.0, 1.0], [-0.0, 1.0], [0.5, -0.0]], dtype=np.float32)
    colors, counts, index = _core.count_colors(pixels, True, 1)
    assert colors.shape == (2, 2)
    np.testing.assert_array_equal(counts, [2, 1])
    np.testing.assert_array_equal(index, [0, 0, 1])


@pytest.mark.parametrize(
    "pixels, error, message",
    [
        (np.zeros((4, 3), dtype=np.int32), TypeError, "dtype"),
        (np.zeros(4, dtype=np.uint8), ValueError, "2-D"),
        (np.zeros((0, 3), dtype=np.uint8), ValueError, "no pixels"),
        (np.zeros((4, 0), dtype=np.uint8), ValueError, "no channels"),
        (np.full((4, 3), np.nan, dtype=np.float32), ValueError, "NaN"),
        (np.zeros((4, 3), dtype=np.uint8)[:, ::2], ValueError, "contiguous"),
    ],
)
def test_count_colors_rejects_bad_input(pixels, error, message):
    with pytest.raises(error, match=message):
        _core.count_colors(pixels, True, 1)


# -- k-means -------------------------------------------------------------------


def _blobs(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(6, 3))
    X = centres[rng.integers(0, 6, n)] + rng.normal(size=(n, 3))
    weights = rng.integers(1, 6, n).astype(np.float64)
    return X, weights, centres


@pytest.mark.parametrize("far_centre", [False, True])
def test_kmeans_matches_sklearn_lloyd_from_the_same_centres(far_centre):
    X, weights, _ = _blobs()
    init = X[:6].copy()
    if far_centre:  # an empty cluster, which both relocate
        init[5] = 1000.0
    centres, labels, inertia, n_iter = _core.kmeans(X, weights, 6, init, 0, 300, 0.0, 2)
    ref = KMeans(6, init=init, n_init=1, tol=0.0, algorithm="lloyd").fit(
        X, sample_weight=weights
    )
    np.testing.assert_allclose(centres, ref.cluster_centers_, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(labels, ref.labels_)
    np.testing.assert_allclose(inertia, ref.inertia_, rtol=1e-9)
    assert n_iter == ref.n_iter_


def test_kmeans_plusplus_finds_separated_clusters_for_any_thread_count():
    X, weights, true_centres = _blobs(n=40_000)
    runs = [
        _core.kmeans(
            X.astype(np.float32), weights.astype(np.float32), 6, None, 7, 300, 1e-4, nt
        )
        for nt in (1, 2, 3)
    ]
    for centres, labels, inertia, n_iter in runs[1:]:
        np.testing.assert_array_equal(centres, runs[0][0])
        np.testing.assert_array_equal(labels, runs[0][1])
        assert inertia == runs[0][2] and n_iter == runs[0][3]
    centres = runs[0][0]
    nearest = np.linalg.norm(centres[:, None] - true_centres[None], axis=2).min(axis=0)
    assert np.all(nearest < 0.1)
    # Another seed gives another start.
    other = _core.kmeans(X, weights, 6, None, 8, 1, 1e-4, 1)[0]
    first = _core.kmeans(X, weights, 6, None, 7, 1, 1e-4, 1)[0]
    assert not np.array_equal(other, first)


def test_kmeans_plusplus_returns_the_seeds_kmeans_starts_from():
    X, weights, true_centres = _blobs(n=40_000)
    X = X.astype(np.float32)
    weights[::7] = 0  # points of no weight are never drawn
    weights = weights.astype(np.float32)
    runs = [_core.kmeans_plusplus(X, weights, 6, 7, nt) for nt in (1, 2, 3)]
    for indices in runs[1:]:
        np.testing.assert_array_equal(indices, runs[0])
    indices = runs[0]
    assert indices.dtype == np.int64 and len(set(indices)) == 6
    assert np.all(weights[indices] > 0)
    # One seed in each of the six separated clusters.
    nearest = np.linalg.norm(X[indices, None] - true_centres[None], axis=2)
    assert sorted(nearest.argmin(axis=1)) == list(range(6))
    from_seed = _core.kmeans(X, weights, 6, None, 7, 300, 1e-4, 2)
    from_indices = _core.kmeans(X, weights, 6, X[indices], 0, 300, 1e-4, 2)
    for got, expected in zip(from_indices, from_seed, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(_core.kmeans_plusplus(X, weights, 6, 8, 1), indices)


@pytest.mark.parametrize("tol", [0.0, 1e-2])
def test_kmeans_weights_count_as_repeated_points(tol):
    # Also in the tolerance, which scales with the variance of the repeated
    # points (the pixels, for colours weighted by their counts): one cloud,
    # where Lloyd stops at tol=1e-2 well before its labels settle.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    weights = rng.integers(1, 6, 500).astype(np.float64)
    repeated = np.repeat(X, weights.astype(int), axis=0)
    init = X[:6].copy()
    weighted = _core.kmeans(X, weights, 6, init, 0, 300, tol, 1)
    plain = _core.kmeans(repeated, None, 6, init, 0, 300, tol, 1)
    np.testing.assert_allclose(weighted[0], plain[0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(weighted[2], plain[2], rtol=1e-9)
    assert weighted[3] == plain[3]
    if tol:
        assert weighted[3] < _core.kmeans(X, weights, 6, init, 0, 300, 0.0, 1)[3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": 11}, "n_clusters"),
        ({"X": np.full((10, 2), np.nan)}, "NaN"),
        ({"init": np.zeros((3, 2))}, "init"),
        ({"max_iter": 0}, "max_iter"),
        # Finite, but the weighted sums overflow double.
        (
            {
                "X": np.arange(20.0).reshape(10, 2) * 1e19,
                "sample_weight": np.full(10, 1e300),
            },
            "overflows",
        ),
    ],
)
def test_kmeans_rejects_bad_input(kwargs, message):
    args = {"X": np.arange(20.0).reshape(10, 2), "sample_weight": None}
    args.update({"n_clusters": 2, "init": None, "seed": 0, "max_iter": 10})
    args.update({"tol": 0.0, "n_threads": 1, **kwargs})
    with pytest.raises(ValueError, match=message):
        _core.kmeans(**args)
    if "init" not in kwargs and "max_iter" not in kwargs:
        for name in ("init", "max_iter", "tol"):
            del args[name]
        with pytest.raises(ValueError, match=message):
            _core.kmeans_plusplus(**args)
