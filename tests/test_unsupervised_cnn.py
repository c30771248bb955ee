"""Tests of UnsupervisedCNNSegmenter (Kanezaki 2018; Kim, Kanezaki and Tanaka
2020) on small real images, with few channels and iterations for speed."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

torch = pytest.importorskip("torch")
pytest.importorskip("skimage")

from skimage import data, transform  # noqa: E402

from skseg.unsupervised_cnn import UnsupervisedCNNSegmenter  # noqa: E402
from skseg.unsupervised_cnn.refinement import (  # noqa: E402
    argmax_channels,
    consecutive_labels,
    refine_by_superpixels,
    superpixel_offsets,
)

FAST = {
    "superpixels": "felzenszwalb",
    "superpixel_params": {"scale": 32, "sigma": 0.5, "min_size": 16},
    "n_channels": 24,
    "max_iter": 15,
    "random_state": 0,
}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _crop(image, rows, cols, size=64):
    part = image[rows[0] : rows[1], cols[0] : cols[1]]
    out = transform.resize(part, (size, size), anti_aliasing=True)
    return (out * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def coffee64():
    return _crop(data.coffee(), (50, 350), (100, 400))


@pytest.fixture(scope="module")
def astronaut48():
    return _crop(data.astronaut(), (0, 300), (100, 400), size=48)


# -- refinement ----------------------------------------------------------------


def _refine_reference(labels, segments):
    """Kanezaki's loop: per superpixel, the most frequent of its sorted unique
    labels (np.argmax keeps the first, i.e. smallest, on ties)."""
    out = labels.copy()
    for s in np.unique(segments):
        where = np.where(segments == s)[0]
        values = labels[where]
        unique = np.unique(values)
        hist = np.array([np.sum(values == u) for u in unique])
        out[where] = unique[np.argmax(hist)]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_refinement_equals_per_superpixel_loop(seed):
    rng = np.random.default_rng(seed)
    n_pixels = int(rng.integers(50, 400))
    n_segments = int(rng.integers(1, 40))
    # Few classes and tiny superpixels make ties frequent.
    n_classes = int(rng.integers(2, 6))
    segments = rng.integers(0, n_segments, n_pixels)
    segments = np.unique(segments, return_inverse=True)[1]
    labels = rng.integers(0, n_classes, n_pixels)
    seg_t = torch.from_numpy(segments)
    refined = refine_by_superpixels(
        torch,
        torch.from_numpy(labels),
        seg_t,
        superpixel_offsets(seg_t, n_classes),
        int(segments.max()) + 1,
        n_classes,
    )
    np.testing.assert_array_equal(refined.numpy(), _refine_reference(labels, segments))


def test_refinement_ties_go_to_smallest_label():
    segments = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    labels = torch.tensor([3, 1, 3, 1, 2, 0, 4])
    refined = refine_by_superpixels(
        torch, labels, segments, superpixel_offsets(segments, 5), 2, 5
    )
    assert refined.tolist() == [1, 1, 1, 1, 0, 0, 0]


def test_argmax_channels_takes_first_maximum():
    rng = np.random.default_rng(0)
    # Values from a small set: many ties between channels.
    response = rng.integers(0, 3, (2, 5, 7, 9)).astype(np.float32)
    expected = np.argmax(response, axis=1)
    np.testing.assert_array_equal(
        argmax_channels(torch.from_numpy(response)).numpy(), expected
    )


def test_consecutive_labels_keep_channel_order():
    labels = torch.tensor([7, 2, 7, 9, 2])
    assert consecutive_labels(torch, labels, 10).tolist() == [1, 0, 1, 2, 0]


# -- training behaviour --------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"method": "superpixel", **FAST, "max_iter": 50},
        {"method": "continuity", "n_channels": 24, "max_iter": 50, "random_state": 0},
    ],
    ids=["superpixel", "continuity"],
)
def test_label_count_decreases(coffee64, params):
    seg = UnsupervisedCNNSegmenter(**params).fit(coffee64)
    counts = seg.history_["n_labels"]
    losses = seg.history_["loss"]
    assert len(counts) == len(losses) == seg.n_iter_ == 50
    assert counts[0] == 24  # a random network uses every channel
    assert counts[-1] <= 0.6 * counts[0]
    # The trend, not just the end points.
    thirds = np.array_split(counts, 3)
    assert thirds[0].mean() > thirds[1].mean() >= thirds[2].mean()
    assert counts.max() == counts[0]
    assert seg.n_labels_ == len(np.unique(seg.predict(coffee64)))


def test_stops_at_min_labels(coffee64):
    seg = UnsupervisedCNNSegmenter(
        **{**FAST, "max_iter": 200, "n_channels": 16, "min_labels": 12}
    ).fit(coffee64)
    counts = seg.history_["n_labels"]
    assert counts[-1] <= 12 < counts[-2]
    assert seg.n_iter_ == len(counts) < 200


def test_same_random_state_same_result(coffee64):
    for method in ("superpixel", "continuity"):
        params = {**FAST, "method": method}
        a = UnsupervisedCNNSegmenter(**params).fit(coffee64)
        b = UnsupervisedCNNSegmenter(**params).fit(coffee64)
        np.testing.assert_array_equal(a.history_["loss"], b.history_["loss"])
        np.testing.assert_array_equal(a.predict(coffee64), b.predict(coffee64))
        c = UnsupervisedCNNSegmenter(**{**params, "random_state": 1}).fit(coffee64)
        assert c.history_["loss"][0] != a.history_["loss"][0]


def test_scribbled_pixels_keep_their_class(coffee64):
    y = np.full((64, 64), 255)
    y[15:18, 30:48] = 0  # coffee surface
    y[50:53, 5:22] = 1  # saucer
    scribbled = y != 255
    params = {"method": "continuity", "n_channels": 24, "max_iter": 40}
    seg = UnsupervisedCNNSegmenter(**params, random_state=0)
    labels = seg.fit_predict(coffee64, y)
    np.testing.assert_array_equal(labels[scribbled], y[scribbled])
    # Without scribbles (or with use_scribbles=False) the classes are arbitrary.
    free = UnsupervisedCNNSegmenter(**params, random_state=0, use_scribbles=False)
    free_labels = free.fit_predict(coffee64, y)
    assert not np.array_equal(free_labels[scribbled], y[scribbled])


def test_predict_unseen_images_and_batches(coffee64, astronaut48):
    seg = UnsupervisedCNNSegmenter(**FAST).fit([coffee64, coffee64[::-1]])
    labels = seg.predict(astronaut48)
    assert labels.shape == (48, 48)
    assert labels.dtype.kind == "i"
    np.testing.assert_array_equal(np.unique(labels), np.arange(labels.max() + 1))
    # A list gives a list, an (N, H, W, C) array a stacked array.
    as_list = seg.predict([astronaut48, coffee64])
    assert isinstance(as_list, list) and [m.shape for m in as_list] == [
        (48, 48),
        (64, 64),
    ]
    np.testing.assert_array_equal(as_list[0], labels)
    stacked = seg.predict(np.stack([coffee64, coffee64[:, ::-1]]))
    assert stacked.shape == (2, 64, 64)
    np.testing.assert_array_equal(stacked[0], seg.predict(coffee64))


def test_grey_and_float_images(coffee64):
    grey = coffee64.mean(axis=2) / 255.0
    seg = UnsupervisedCNNSegmenter(**FAST).fit(grey)
    assert seg.n_input_channels_ == 1
    labels = seg.predict(grey.astype(np.float32))
    assert labels.shape == (64, 64)
    with pytest.raises(
        ValueError, match="3 channels but the segmenter was fitted on 1"
    ):
        seg.predict(coffee64)


def test_mean_color_image(coffee64):
    seg = UnsupervisedCNNSegmenter(**FAST).fit(coffee64)
    labels, painted = seg.predict(coffee64, return_mean_color=True)
    np.testing.assert_array_equal(labels, seg.predict(coffee64))
    assert painted.shape == coffee64.shape and painted.dtype == np.uint8
    for label in np.unique(labels):
        where = labels == label
        expected = np.rint(coffee64[where].astype(np.float64).mean(axis=0))
        np.testing.assert_array_equal(
            painted[where], np.broadcast_to(expected, (where.sum(), 3))
        )
    grey = coffee64[..., 0]
    seg_grey = UnsupervisedCNNSegmenter(**FAST).fit(grey)
    _, painted_grey = seg_grey.predict(grey, return_mean_color=True)
    assert painted_grey.shape == grey.shape


def test_large_images_use_the_pixel_budget(coffee64):
    # 4096 pixels over a budget of 256: trained at 16x16, predicted through a
    # 32x32 copy (4x the budget) and enlarged by nearest neighbour.
    seg = UnsupervisedCNNSegmenter(**FAST, max_pixels=256).fit(coffee64)
    tiny = transform.resize(
        coffee64.astype(np.float32) / 255, (16, 16, 3), order=1, anti_aliasing=True
    )
    trained_small = UnsupervisedCNNSegmenter(**FAST).fit(tiny)
    np.testing.assert_array_equal(seg.history_["loss"], trained_small.history_["loss"])
    labels = seg.predict(coffee64)
    assert labels.shape == (64, 64)
    blocks = labels.reshape(32, 2, 32, 2)
    assert (blocks == blocks[:, :1, :, :1]).all()
    # The same downscaling as predict's, done here.
    small = transform.resize(
        coffee64.astype(np.float32) / 255, (32, 32, 3), order=1, anti_aliasing=True
    )
    np.testing.assert_array_equal(labels[::2, ::2], seg.predict(small))


def test_pickle_round_trip(coffee64, astronaut48):
    seg = UnsupervisedCNNSegmenter(**FAST, method="continuity").fit(coffee64)
    state = seg.__getstate__()
    assert "net_" not in state
    assert all(isinstance(v, np.ndarray) for v in state["_net_weights"].values())
    restored = pickle.loads(pickle.dumps(seg))
    for image in (coffee64, astronaut48):
        np.testing.assert_array_equal(restored.predict(image), seg.predict(image))
    assert restored.n_labels_ == seg.n_labels_
    np.testing.assert_array_equal(restored.history_["loss"], seg.history_["loss"])


def test_clone_is_unfitted_with_same_params(coffee64):
    seg = UnsupervisedCNNSegmenter(**FAST).fit(coffee64)
    copy = clone(seg)
    assert copy.get_params() == seg.get_params()
    assert not hasattr(copy, "net_")
    np.testing.assert_array_equal(
        copy.fit(coffee64).predict(coffee64), seg.predict(coffee64)
    )


def test_verbose_progress_bar(coffee64, capsys):
    UnsupervisedCNNSegmenter(**{**FAST, "max_iter": 3}, verbose=True).fit(coffee64)
    err = capsys.readouterr().err
    assert "UnsupervisedCNNSegmenter" in err and "3/1000" not in err and "3/3" in err


def test_mixed_precision_path_stays_close_to_float32(coffee64):
    # The estimator enables bfloat16 autocast only on CUDA; the same code path
    # runs under CPU autocast here, to check its dtypes and its labels.
    from skseg.unsupervised_cnn.network import build_net
    from skseg.unsupervised_cnn.training import ImageProblem, forward, train

    image = coffee64.astype(np.float32) / 255
    problem = ImageProblem(torch, image, torch.device("cpu"), False, 24)
    net = build_net(torch, 3, 24, 2, seed=0)
    with torch.no_grad():
        exact = forward(torch, net, problem, amp=False)
        mixed = forward(torch, net, problem, amp=True)
    assert mixed.dtype == torch.float32
    agree = (argmax_channels(exact) == argmax_channels(mixed)).float().mean()
    assert agree > 0.95
    losses, counts = train(
        torch,
        net,
        [problem],
        n_classes=24,
        lr=0.1,
        momentum=0.9,
        max_iter=10,
        stop_at=3,
        continuity_weight=1.0,
        scribble_weight=0.5,
        amp=True,
    )
    assert np.isfinite(losses).all() and counts[-1] < counts[0]


# -- scikit-learn integration --------------------------------------------------


def _two_texture_images():
    """Three 32x32 images, each half one real photograph and half another,
    with the halves as ground truth."""
    coffee = _crop(data.coffee(), (0, 400), (0, 400), size=32)
    rocket = _crop(data.rocket(), (0, 400), (0, 400), size=32)
    images, masks = [], []
    for cut in (12, 16, 20):
        image = coffee.copy()
        image[:, cut:] = rocket[:, cut:]
        mask = np.zeros((32, 32), dtype=np.int64)
        mask[:, cut:] = 1
        images.append(image)
        masks.append(mask)
    return images, masks


def test_grid_search_with_matched_scorer():
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline

    from skseg.metrics import matched_iou_score, matched_iou_scorer
    from skseg.preprocessing import IntensityScaler

    images, masks = _two_texture_images()
    pipe = make_pipeline(
        IntensityScaler(), UnsupervisedCNNSegmenter(**{**FAST, "max_iter": 8})
    )
    grid = GridSearchCV(
        pipe,
        {"unsupervisedcnnsegmenter__method": ["superpixel", "continuity"]},
        scoring=matched_iou_scorer,
        cv=KFold(3),
        error_score="raise",
    ).fit(images, masks)
    scores = grid.cv_results_["split0_test_score"]
    assert np.all((scores >= 0) & (scores <= 1))
    # The first fold's score is the score of fitting on images 1-2 and
    # predicting image 0.
    fold = clone(pipe).set_params(unsupervisedcnnsegmenter__method="superpixel")
    expected = matched_iou_score(masks[0], fold.fit(images[1:]).predict(images[0]))
    assert scores[0] == pytest.approx(expected)
    assert grid.best_estimator_.predict(images[0]).shape == (32, 32)


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"method": "kmeans"}, ValueError, "method must be one of"),
        ({"superpixels": "quickshift"}, ValueError, "superpixels must be one of"),
        ({"superpixel_params": 5}, TypeError, "superpixel_params must be a dict"),
        ({"superpixel_params": {"bogus": 1}}, ValueError, "not accepted by"),
        ({"lr": 0}, ValueError, "lr must be a finite number > 0"),
        ({"lr": -0.1}, ValueError, "lr must be"),
        ({"lr": float("nan")}, ValueError, "lr must be"),
        ({"lr": "fast"}, TypeError, "lr must be a real number"),
        ({"momentum": 1.0}, ValueError, "momentum must be"),
        ({"n_channels": 1}, ValueError, "n_channels must be >= 2"),
        ({"n_conv": 0}, ValueError, "n_conv must be >= 1"),
        ({"max_iter": 2.5}, TypeError, "max_iter must be an integer"),
        ({"min_labels": 30}, ValueError, "min_labels=30 must be smaller than"),
        ({"continuity_weight": -1}, ValueError, "continuity_weight must be"),
        ({"scribble_weight": 0}, ValueError, "scribble_weight must be"),
        ({"max_pixels": 1}, ValueError, "max_pixels must be >= 2"),
        ({"device": "cuda:99"}, ValueError, "device="),
        ({"device": "tpu-ish"}, ValueError, "not a valid torch device"),
        ({"ignore_index": 2.5}, TypeError, "ignore_index must be an integer"),
    ],
)
def test_bad_params(coffee64, params, error, match):
    seg = UnsupervisedCNNSegmenter(**{**FAST, **params})
    with pytest.raises(error, match=match):
        seg.fit(coffee64)


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.full((8, 8, 3), np.nan), ValueError, "NaN"),
        (np.zeros((2, 3, 8, 8, 3)), ValueError, "dimensions"),
        (np.zeros((0, 8, 3)), ValueError, "empty"),
        ([], ValueError, "empty list"),
        (np.zeros((8, 8, 3), dtype=np.int32), TypeError, "dtype int32"),
        (np.zeros((1, 1, 3)), ValueError, "single pixel"),
        ([np.zeros((8, 8, 3)), np.zeros((8, 8))], ValueError, "channel counts"),
    ],
)
def test_bad_images(image, error, match):
    with pytest.raises(error, match=match):
        UnsupervisedCNNSegmenter(**FAST).fit(image)


def test_bad_scribbles(coffee64):
    seg = UnsupervisedCNNSegmenter(method="continuity", n_channels=8, max_iter=2)
    with pytest.raises(ValueError, match=r"shape \(32, 64\) but its image is"):
        seg.fit(coffee64, np.zeros((32, 64), dtype=int))
    with pytest.raises(ValueError, match="scribble label 8, but labels must be below"):
        seg.fit(coffee64, np.full((64, 64), 8))
    with pytest.raises(ValueError, match="no scribbled pixels"):
        seg.fit(coffee64, np.full((64, 64), 255))
    with pytest.raises(ValueError, match="negative labels"):
        seg.fit(coffee64, np.full((64, 64), -3))
    with pytest.raises(ValueError, match="2 masks for 1 images"):
        seg.fit(coffee64, [np.zeros((64, 64), int)] * 2)


def test_predict_before_fit_and_bad_predict_input(coffee64):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        UnsupervisedCNNSegmenter().predict(coffee64)
    seg = UnsupervisedCNNSegmenter(**FAST).fit(coffee64)
    with pytest.raises(ValueError, match="NaN"):
        seg.predict(np.full((8, 8, 3), np.nan))
    with pytest.raises(ValueError, match="single-pixel"):
        seg.predict(np.zeros((1, 1, 3)))


# -- optional dependencies -----------------------------------------------------


@pytest.mark.parametrize("module", ["torch", "skimage.segmentation"])
def test_missing_dependency_says_how_to_install(coffee64, monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'skseg\[torch\]'"):
        UnsupervisedCNNSegmenter(**FAST).fit(coffee64)


def test_import_does_not_load_torch(tmp_path):
    code = (
        "import sys, skseg.unsupervised_cnn, skseg.unsupervised_cnn.training; "
        "assert 'torch' not in sys.modules and 'skimage' not in sys.modules"
    )
    # Run outside the checkout, whose source tree would shadow the installed package.
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_mixed_dtype_list_is_scaled_per_image(coffee64):
    # uint16 x 257 is the same picture as uint8: it must train and predict alike.
    as_uint16 = coffee64.astype(np.uint16) * 257
    same = UnsupervisedCNNSegmenter(**FAST).fit([coffee64, coffee64[::-1]])
    mixed = UnsupervisedCNNSegmenter(**FAST).fit([coffee64, as_uint16[::-1]])
    np.testing.assert_array_equal(mixed.history_["loss"], same.history_["loss"])
    labels = mixed.predict([coffee64, as_uint16, as_uint16 / 65535.0])
    np.testing.assert_array_equal(labels[1], labels[0])
    np.testing.assert_array_equal(labels[2], labels[0])
