"""GMMImageSegmenter: features, collapsing of identical colours, outputs."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_sample_image
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skseg import GMMImageSegmenter
from skseg._validation import float_to_image_dtype
from skseg.color import convert_from_rgb
from skseg.mixture._kmeans import weighted_kmeans_plusplus
from skseg.mixture.segmenter import _COLOR_INDEX_MIN_K
from skseg.preprocessing import IntensityScaler

# Tests that stop EM after a few iterations on purpose.
stops_before_convergence = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


@pytest.fixture(scope="module")
def china():
    return load_sample_image("china.jpg")[::8, ::8]  # 54 x 80, real colours


@pytest.fixture(scope="module")
def flower():
    return load_sample_image("flower.jpg")[::8, ::8]


def _sklearn_twin(mixture):
    """A scikit-learn GaussianMixture holding the same fitted parameters, in
    float64 so that its answer does not depend on the BLAS kernel."""
    twin = SklearnGaussianMixture(
        n_components=mixture.n_components, covariance_type=mixture.covariance_type
    )
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        setattr(twin, name, getattr(mixture, name).astype(np.float64))
    return twin


@pytest.mark.parametrize("color_space", ["rgb", "lab", "hsv", "grey"])
def test_labels_match_sklearn_on_every_pixel(china, color_space):
    seg = GMMImageSegmenter(k=5, color_space=color_space, random_state=0).fit(china)
    labels = seg.predict(china)
    assert labels.shape == china.shape[:2]
    features = convert_from_rgb(china.reshape(-1, 3) / np.float32(255), color_space)
    proba = _sklearn_twin(seg.mixture_).predict_proba(features.astype(np.float64))
    with np.errstate(divide="ignore"):
        log_prob = np.log(proba)
    expected = log_prob.argmax(axis=1).reshape(labels.shape)
    # float32 log-densities are within about 1e-5 of float64 ones here: labels
    # must agree on every pixel whose best two components differ by more.
    top_two = np.sort(log_prob, axis=1)[:, -2:]
    clear = (top_two[:, 1] - top_two[:, 0] > 1e-3).reshape(labels.shape)
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(labels[clear], expected[clear])
    proba = seg.predict_proba(china)
    assert proba.shape == (*china.shape[:2], 5)
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=-1), labels)


def test_collapsed_colours_score_like_all_pixels(china):
    seg = GMMImageSegmenter(k=4, covariance_type="diag", random_state=0).fit(china)
    all_pixels = china.reshape(-1, 3) / np.float32(255)
    assert seg.mixture_.n_features_in_ == 3
    np.testing.assert_allclose(
        seg.score(china), seg.mixture_.score(all_pixels), rtol=1e-5
    )


def test_recolor_paints_palette_in_input_dtype(china):
    seg = GMMImageSegmenter(k=6, random_state=0).fit(china)
    out = seg.recolor(china)
    assert out.dtype == np.uint8 and out.shape == china.shape
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 6
    palette_u8 = np.clip(np.rint(seg.palette_ * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, palette_u8[seg.predict(china)])
    np.testing.assert_allclose(seg.palette_, seg.mixture_.means_, rtol=1e-6)


def test_recolor_of_grey_float_image_stays_grey_float():
    rng = np.random.default_rng(0)
    grey = np.where(rng.random((30, 20)) < 0.5, 0.2, 0.8) + rng.normal(
        0, 0.01, (30, 20)
    )
    seg = GMMImageSegmenter(k=2, random_state=0).fit(grey)
    out = seg.recolor(grey)
    assert out.shape == grey.shape and out.dtype == np.float64
    np.testing.assert_allclose(np.unique(out), [0.2, 0.8], atol=0.01)


def test_lab_palette_is_mean_colour_back_in_rgb(china):
    seg = GMMImageSegmenter(k=3, color_space="lab", random_state=0).fit(china)
    lab_of_palette = convert_from_rgb(seg.palette_, "lab")
    np.testing.assert_allclose(lab_of_palette, seg.mixture_.means_, atol=1e-6)


def test_batch_fits_one_model_and_returns_the_input_layout(china, flower):
    h, w = min(china.shape[0], flower.shape[0]), min(china.shape[1], flower.shape[1])
    batch = np.stack([china[:h, :w], flower[:h, :w]])
    seg = GMMImageSegmenter(k=4, random_state=0).fit(batch)
    labels = seg.predict(batch)
    assert labels.shape == (2, h, w)
    as_list = seg.predict([china, flower])
    assert isinstance(as_list, list)
    assert [m.shape for m in as_list] == [china.shape[:2], flower.shape[:2]]
    np.testing.assert_array_equal(as_list[0][:h, :w], labels[0])


def test_spatial_weight_adds_position_features(china):
    plain = GMMImageSegmenter(k=4, random_state=0).fit(china)
    spatial = GMMImageSegmenter(k=4, spatial_weight=2.0, random_state=0).fit(china)
    assert (plain.n_features_, spatial.n_features_) == (3, 5)
    labels = spatial.predict(china)
    assert labels.shape == china.shape[:2]
    assert not np.array_equal(labels, plain.predict(china))
    # Far apart in the image, component means must be far apart in position.
    positions = spatial.mixture_.means_[:, 3:] / 2.0
    assert np.ptp(positions[:, 0]) > 0.1 or np.ptp(positions[:, 1]) > 0.1


def test_random_state_reproducible_and_clone_pickle(china):
    a = GMMImageSegmenter(k=5, random_state=3).fit_predict(china)
    seg = GMMImageSegmenter(k=5, random_state=3).fit(china)
    np.testing.assert_array_equal(a, seg.predict(china))
    restored = pickle.loads(pickle.dumps(seg))
    np.testing.assert_array_equal(restored.predict(china), a)
    cloned = clone(seg)
    assert cloned.get_params() == seg.get_params()
    assert not hasattr(cloned, "mixture_")


def test_k_larger_than_distinct_colours():
    two_colours = np.zeros((10, 10, 3), np.uint8)
    two_colours[5:] = 200
    with pytest.raises(ValueError, match=r"k=3 is larger than the number of distinct"):
        GMMImageSegmenter(k=3).fit(two_colours)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k": 0}, "k must be >= 1"),
        ({"k": 2.5}, "k must be an integer"),
        ({"color_space": "xyz"}, "color_space"),
        ({"spatial_weight": -1}, "spatial_weight"),
        ({"spatial_weight": np.nan}, "spatial_weight"),
    ],
)
def test_bad_parameters(china, params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GMMImageSegmenter(**params).fit(china)


def test_bad_images(china):
    with pytest.raises(ValueError, match="NaN"):
        GMMImageSegmenter(k=2).fit(np.full((4, 4, 3), np.nan))
    with pytest.raises(ValueError, match="empty"):
        GMMImageSegmenter(k=2).fit(np.zeros((0, 4, 3)))
    with pytest.raises(ValueError, match="needs RGB images"):
        GMMImageSegmenter(k=2, color_space="lab").fit(np.zeros((4, 4)))
    seg = GMMImageSegmenter(k=2, random_state=0).fit(china)
    with pytest.raises(
        ValueError, match="1 channels but the segmenter was fitted on 3"
    ):
        seg.predict(np.zeros((4, 4)))
    with pytest.raises(Exception, match="not fitted"):
        GMMImageSegmenter().predict(china)


def test_in_pipeline_and_grid_search(china, flower):
    metrics = pytest.importorskip("skseg.metrics")
    # Ground truth that a 2-component colour model can find: bright vs dark.
    images = [china[:40, :60], flower[:40, :60], china[10:50, 10:70]]
    masks = [(im.mean(axis=-1) > 100).astype(int) for im in images]
    pipe = make_pipeline(IntensityScaler("minmax"), GMMImageSegmenter(random_state=0))
    search = GridSearchCV(
        pipe,
        {"gmmimagesegmenter__k": [2, 6]},
        scoring=metrics.matched_iou_scorer,
        cv=3,
    )
    search.fit(images, masks)
    assert search.best_params_ == {"gmmimagesegmenter__k": 2}
    assert search.best_score_ > 0.5


def _black_white(dtype):
    """A 10 x 10 image, top half black, bottom half white, in dtype's scale."""
    white = np.iinfo(dtype).max if np.dtype(dtype).kind == "u" else 1.0
    image = np.zeros((10, 10, 3), dtype)
    image[5:] = white
    return image


@pytest.mark.parametrize("other", [np.uint16, np.float32, np.float64])
def test_mixed_dtype_batch_is_scaled_per_image(other):
    images = [_black_white(np.uint8), _black_white(other)]
    seg = GMMImageSegmenter(k=2, random_state=0).fit(images)
    # Black and white in every image, whatever its dtype.
    palette = seg.palette_[np.argsort(seg.palette_[:, 0])]
    np.testing.assert_allclose(palette, [[0, 0, 0], [1, 1, 1]], atol=1e-5)
    # fit and predict see the same features: each image's own white is white.
    for labels in seg.predict(images):
        assert len(np.unique(labels[:5])) == len(np.unique(labels[5:])) == 1
        assert labels[0, 0] != labels[9, 9]
    # score of the batch is the pixel average of the per-image scores.
    np.testing.assert_allclose(
        seg.score(images), np.mean([seg.score(im) for im in images]), rtol=1e-6
    )


@pytest.mark.parametrize("shape", [(50, 50, 3), (1, 1, 3), (1, 1)])
@pytest.mark.parametrize("spatial_weight", [0.0, 1.0])
def test_one_colour_image_fits_one_component(shape, spatial_weight):
    image = np.full(shape, 7, np.uint8)
    seg = GMMImageSegmenter(k=1, spatial_weight=spatial_weight).fit(image)
    np.testing.assert_allclose(seg.palette_, 7 / 255, rtol=1e-5)
    assert (seg.predict(image) == 0).all()
    if spatial_weight == 0.0:
        with pytest.raises(ValueError, match=r"k=2 .* distinct colours in X \(1\)"):
            GMMImageSegmenter(k=2).fit(image)


def test_too_large_spatial_weight_is_named():
    with pytest.raises(ValueError, match="spatial_weight must be .* <= 1000000"):
        GMMImageSegmenter(k=2, spatial_weight=1e300).fit(np.zeros((4, 4, 3)))


# -- determinism, prediction through the colour index, n_init, warm start -------


@stops_before_convergence
@pytest.mark.parametrize(
    "init_params", ["kmeans", "k-means++", "random", "random_from_data"]
)
def test_labels_bit_identical_for_any_n_jobs(init_params):
    # Enough distinct colours for several chunks of the core's work.
    img = load_sample_image("china.jpg")[::2, ::2]
    fits = [
        GMMImageSegmenter(
            k=12, init_params=init_params, max_iter=20, random_state=3, n_jobs=n_jobs
        ).fit(img)
        for n_jobs in (1, 2, 3)
    ]
    labels = [seg.predict(img) for seg in fits]
    for seg, lab in zip(fits[1:], labels[1:], strict=True):
        np.testing.assert_array_equal(seg.mixture_.means_, fits[0].mixture_.means_)
        np.testing.assert_array_equal(lab, labels[0])


def _image_of_dtype(china, dtype):
    if dtype == np.uint16:
        return china.astype(np.uint16) * 257
    if dtype == np.uint8:
        return china
    return (china / 255.0).astype(dtype)


# Small mixtures are evaluated at every pixel, large ones once per distinct
# colour and gathered through the colour index: both give the mixture's answer.
@pytest.mark.parametrize("k", [5, _COLOR_INDEX_MIN_K])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_prediction_equals_the_mixtures_per_pixel(china, dtype, k):
    img = _image_of_dtype(china, dtype)
    seg = GMMImageSegmenter(k=k, covariance_type="diag", random_state=0).fit(img)
    features = img.reshape(-1, 3)
    if dtype in (np.uint8, np.uint16):
        features = features / np.float32(np.iinfo(dtype).max)
    features = features.astype(seg.mixture_.means_.dtype)
    shape = img.shape[:2]
    mixture = seg.mixture_
    np.testing.assert_array_equal(
        seg.predict(img), mixture.predict(features).reshape(shape)
    )
    np.testing.assert_array_equal(
        seg.predict_proba(img), mixture.predict_proba(features).reshape(*shape, k)
    )
    np.testing.assert_array_equal(
        seg.score_samples(img), mixture.score_samples(features).reshape(shape)
    )
    painted = float_to_image_dtype(seg.palette_, img.dtype)[mixture.predict(features)]
    np.testing.assert_array_equal(seg.recolor(img), painted.reshape(img.shape))


@stops_before_convergence
def test_n_init_keeps_the_best_of_its_kmeans_starts(china):
    img = _image_of_dtype(china, np.float64)
    best = GMMImageSegmenter(k=6, n_init=3, max_iter=5, random_state=0).fit(img)
    singles = []
    for i in range(3):
        # The state the i-th start of n_init=3 draws its k-means seed from.
        state = np.random.RandomState(0)
        for _ in range(i):
            state.randint(np.iinfo(np.int32).max)
        seg = GMMImageSegmenter(k=6, max_iter=5, random_state=state).fit(img)
        singles.append(seg.mixture_)
    bounds = [m.lower_bound_ for m in singles]
    assert len(set(bounds)) == 3  # three different starts
    chosen = singles[int(np.argmax(bounds))]
    assert best.mixture_.lower_bound_ == max(bounds)
    np.testing.assert_array_equal(best.mixture_.means_, chosen.means_)


@stops_before_convergence
def test_kmeans_plusplus_init_starts_from_the_cores_seeds(china, monkeypatch):
    # The segmenter's "k-means++" starts from the colours the core's seeding
    # picks, weighted by their counts: scikit-learn's mixture on the pixels,
    # started from pixels of those colours, takes the same first EM step.
    img = _image_of_dtype(china[::2, ::2], np.float64)
    pixels = img.reshape(-1, 3)
    seg = GMMImageSegmenter(k=8, init_params="k-means++", max_iter=1, random_state=0)
    seg.fit(img)
    colors, counts = np.unique(pixels, axis=0, return_counts=True)
    weights = counts / counts.mean()
    seeds = weighted_kmeans_plusplus(colors, weights, 8, np.random.RandomState(0))
    first_pixel = [np.flatnonzero((pixels == colors[i]).all(axis=1))[0] for i in seeds]
    monkeypatch.setattr(
        "sklearn.mixture._base.kmeans_plusplus",
        lambda X, k, **kwargs: (X[first_pixel], np.array(first_pixel)),
    )
    ref = SklearnGaussianMixture(8, init_params="k-means++", max_iter=1).fit(pixels)
    # One-point components (covariance reg_covar) give log-densities of order
    # 1e5, whose rounding moves the first means by about 1e-7.
    np.testing.assert_allclose(seg.mixture_.means_, ref.means_, rtol=1e-5)
    np.testing.assert_allclose(seg.mixture_.weights_, ref.weights_, rtol=1e-5)


@stops_before_convergence
def test_warm_start_continues_the_colour_mixture(china):
    img = _image_of_dtype(china, np.float64)
    seg = GMMImageSegmenter(k=4, max_iter=4, tol=0.0, random_state=0).fit(img)
    once = GMMImageSegmenter(k=4, max_iter=8, tol=0.0, random_state=0).fit(img)
    colors = np.unique(img.reshape(-1, 3), axis=0, return_counts=True)
    mixture = seg.mixture_.set_params(warm_start=True)
    mixture.fit(colors[0], sample_weight=colors[1].astype(np.float64))
    np.testing.assert_allclose(mixture.means_, once.mixture_.means_, rtol=1e-12)
    assert mixture.n_iter_ == 4


# -- the number of components from the data ------------------------------------


def _clustered_image(n_colors, dtype, seed=0, shape=(60, 80)):
    """Pixels of n_colors colours plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    palette = rng.uniform(0.15, 0.85, size=(n_colors, 3))
    img = palette[rng.integers(0, n_colors, size=shape)]
    img = img + rng.normal(0, 0.03, size=img.shape)
    if dtype == np.uint8:
        return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return img.astype(dtype)


@pytest.mark.parametrize(
    ("n_colors", "dtype", "criterion"),
    [(3, np.uint8, "bic"), (5, np.float32, "bic"), (4, np.uint8, "aic")],
)
def test_k_auto_finds_the_number_of_colour_clusters(n_colors, dtype, criterion):
    img = _clustered_image(n_colors, dtype)
    seg = GMMImageSegmenter(k="auto", criterion=criterion, random_state=0).fit(img)
    assert seg.k_ == n_colors == seg.mixture_.n_components
    np.testing.assert_array_equal(seg.k_values_, np.arange(2, 17))
    assert seg.criterion_values_.argmin() == n_colors - 2
    assert seg.predict(img).max() < n_colors


def test_k_range_and_list_keep_the_criterion_curve():
    img = _clustered_image(4, np.float64)
    seg = GMMImageSegmenter(k=(2, 6), random_state=0).fit(img)
    np.testing.assert_array_equal(seg.k_values_, [2, 3, 4, 5, 6])
    assert seg.k_ == 4
    # The criterion over the distinct colours is the BIC over all pixels.
    pixels = img.reshape(-1, 3)
    np.testing.assert_allclose(
        seg.criterion_values_[2], seg.mixture_.bic(pixels), rtol=1e-9
    )
    listed = GMMImageSegmenter(k=[6, 4, 3], criterion="aic", random_state=0).fit(img)
    np.testing.assert_array_equal(listed.k_values_, [3, 4, 6])
    np.testing.assert_allclose(
        listed.criterion_values_[1], listed.mixture_.aic(pixels), rtol=1e-9
    )
    fixed = GMMImageSegmenter(k=4, random_state=0).fit(img)
    assert fixed.k_ == 4 and fixed.k_values_.tolist() == [4]
    np.testing.assert_array_equal(fixed.mixture_.means_, seg.mixture_.means_)


@pytest.mark.parametrize(
    ("k", "match"),
    [
        ("many", "k must be an int, 'auto'"),
        ((2, 3, 4), r"\(low, high\)"),
        ((5, 2), "low <= high"),
        ([], "empty"),
        ([2, 0], "k must be >= 1"),
    ],
)
def test_bad_k(china, k, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GMMImageSegmenter(k=k).fit(china)
    with pytest.raises(ValueError, match="criterion"):
        GMMImageSegmenter(k="auto", criterion="mdl").fit(china)


def test_k_search_larger_than_distinct_colours():
    two_colours = np.zeros((10, 10, 3), np.uint8)
    two_colours[5:] = 200
    seg = GMMImageSegmenter(k="auto", random_state=0).fit(two_colours)
    assert seg.k_values_.tolist() == [2]
    with pytest.raises(ValueError, match=r"k=4 is larger"):
        GMMImageSegmenter(k=(2, 4)).fit(two_colours)
