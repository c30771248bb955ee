"""Tests of skseg.metrics: scikit-learn equality, properties, scorers in search."""

import itertools
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

from skseg._validation import (
    check_images,
    check_masks,
    format_label_maps,
    image_to_float,
)
from skseg.metrics import (
    confusion_matrix,
    dice_score,
    dice_scorer,
    iou_score,
    iou_scorer,
    match_labels,
    matched_dice_score,
    matched_dice_scorer,
    matched_iou_score,
    matched_iou_scorer,
    matched_pixel_accuracy,
    matched_pixel_accuracy_scorer,
    pixel_accuracy,
    pixel_accuracy_scorer,
)

SCORES = {"dice": (dice_score, skm.f1_score), "iou": (iou_score, skm.jaccard_score)}
AVERAGES = ["micro", "macro", "weighted", None]


def _flat(maps, ignore_index=None):
    """Concatenate maps (array or list) and drop ignored pixels, sklearn side."""
    t = np.concatenate([np.ravel(m) for m in maps[0]])
    p = np.concatenate([np.ravel(m) for m in maps[1]])
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    return t, p


def _multiclass_batch(seed=0, n=3, shape=(9, 11), n_true=4, n_pred=5):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_true, (n, *shape)), rng.integers(0, n_pred, (n, *shape))


# ----------------------------------------------------------- sklearn equality
@pytest.mark.parametrize("kind", SCORES)
@pytest.mark.parametrize("aggregate_input", ["array", "list", "single"])
def test_binary_equals_sklearn(kind, aggregate_input):
    ours, theirs = SCORES[kind]
    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 2, (3, 8, 7)), rng.integers(0, 2, (3, 8, 7))
    if aggregate_input == "list":
        t, p = list(t), list(p)
    elif aggregate_input == "single":
        t, p = t[0], p[0]
    ft, fp = _flat((t, p) if aggregate_input != "single" else ([t], [p]))
    assert ours(t, p) == theirs(ft, fp)
    assert ours(t, p, pos_label=0) == theirs(ft, fp, pos_label=0)


@pytest.mark.parametrize("kind", SCORES)
def test_binary_with_other_labels_equals_sklearn(kind):
    # ISBI-style masks {0, 255}, and booleans.
    ours, theirs = SCORES[kind]
    rng = np.random.default_rng(2)
    t = rng.integers(0, 2, (2, 6, 6)) * 255
    p = rng.integers(0, 2, (2, 6, 6)) * 255
    assert ours(t, p, pos_label=255) == theirs(t.ravel(), p.ravel(), pos_label=255)
    assert ours(t.astype(bool), p.astype(bool)) == theirs(t.ravel() > 0, p.ravel() > 0)


@pytest.mark.parametrize("kind", SCORES)
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("labels", [None, [3, 1, 7], [0, 1, 2, 3, 4]])
@pytest.mark.parametrize("zero_division", [0.0, 1.0])
def test_multiclass_equals_sklearn(kind, average, labels, zero_division):
    ours, theirs = SCORES[kind]
    t, p = _multiclass_batch()
    ft, fp = _flat((t, p))
    got = ours(t, p, average=average, labels=labels, zero_division=zero_division)
    want = theirs(ft, fp, average=average, labels=labels, zero_division=zero_division)
    np.testing.assert_array_equal(got, want)
    if average is not None:
        assert isinstance(got, float)


@pytest.mark.parametrize("kind", SCORES)
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("ignore_index", [255, -1])
def test_ignore_index_equals_sklearn_on_masked_pixels(kind, average, ignore_index):
    ours, theirs = SCORES[kind]
    rng = np.random.default_rng(3)
    # A list of maps of different sizes, with unlabelled pixels in y_true.
    shapes = [(5, 7), (9, 4), (6, 6)]
    t = [rng.integers(0, 3, s) for s in shapes]
    p = [rng.integers(0, 4, s) for s in shapes]
    for m in t:
        m[rng.random(m.shape) < 0.3] = ignore_index
    # What is predicted at ignored pixels must not matter.
    p_noisy = [np.where(tm == ignore_index, 3, pm) for tm, pm in zip(t, p, strict=True)]
    ft, fp = _flat((t, p), ignore_index)
    want = theirs(ft, fp, average=average)
    np.testing.assert_array_equal(
        ours(t, p, average=average, ignore_index=ignore_index), want
    )
    np.testing.assert_array_equal(
        ours(t, p_noisy, average=average, ignore_index=ignore_index), want
    )


def test_zero_division_nan_and_warn_equal_sklearn():
    t, p = _multiclass_batch(seed=4)
    ft, fp = _flat((t, p))
    labels = [0, 2, 9]  # 9 is absent from both sides
    for average in AVERAGES:
        np.testing.assert_array_equal(
            dice_score(t, p, labels=labels, average=average, zero_division=np.nan),
            skm.f1_score(ft, fp, labels=labels, average=average, zero_division=np.nan),
        )
    zeros = np.zeros((2, 3, 3), dtype=int)
    with pytest.warns(UndefinedMetricWarning):
        got = dice_score(zeros, zeros, zero_division="warn")
    with pytest.warns(UndefinedMetricWarning):
        want = skm.f1_score(zeros.ravel(), zeros.ravel(), zero_division="warn")
    assert got == want == 0.0
    assert np.isnan(dice_score(zeros, zeros, zero_division=np.nan))


def test_confusion_matrix_equals_sklearn():
    t, p = _multiclass_batch(seed=5)
    ft, fp = _flat((t, p))
    np.testing.assert_array_equal(confusion_matrix(t, p), skm.confusion_matrix(ft, fp))
    for labels in ([3, 0, 2], [4, 1]):
        np.testing.assert_array_equal(
            confusion_matrix(t, p, labels=labels),
            skm.confusion_matrix(ft, fp, labels=labels),
        )
    t[:, 0, :] = 255
    ft, fp = _flat((t, p), 255)
    got = confusion_matrix(list(t), list(p), ignore_index=255)
    np.testing.assert_array_equal(got, skm.confusion_matrix(ft, fp))
    assert got.dtype == np.int64


def test_confusion_matrix_large_label_ids():
    # Label values far beyond the dense look-up range go through sorting.
    t, p = _multiclass_batch(seed=6)
    t, p = t * 100_000, p * 100_000
    ft, fp = _flat((t, p))
    np.testing.assert_array_equal(confusion_matrix(t, p), skm.confusion_matrix(ft, fp))
    assert dice_score(t, p, average="macro") == skm.f1_score(ft, fp, average="macro")


@pytest.mark.parametrize("ignore_index", [None, 2])
def test_pixel_accuracy_equals_sklearn(ignore_index):
    t, p = _multiclass_batch(seed=7, n_true=3, n_pred=3)
    ft, fp = _flat((t, p), ignore_index)
    assert pixel_accuracy(t, p, ignore_index=ignore_index) == skm.accuracy_score(ft, fp)


@pytest.mark.parametrize("kind", SCORES)
@pytest.mark.parametrize("average", ["binary", "micro", "macro", "weighted"])
def test_per_image_is_mean_of_sklearn_image_scores(kind, average):
    ours, theirs = SCORES[kind]
    rng = np.random.default_rng(8)
    n_labels = 2 if average == "binary" else 4
    shapes = [(6, 5), (4, 8), (7, 7), (5, 5)]
    t = [rng.integers(0, n_labels, s) for s in shapes]
    p = [rng.integers(0, n_labels, s) for s in shapes]
    # Image 3 lacks classes 1.. on both sides: with labels=None they are not
    # classes of that image, exactly as sklearn sees that image alone.
    t[3][:] = 0
    p[3][:] = 0
    want = np.mean(
        [
            theirs(a.ravel(), b.ravel(), average=average, zero_division=1.0)
            for a, b in zip(t, p, strict=True)
        ]
    )
    got = ours(t, p, average=average, aggregate="per_image")
    assert got == pytest.approx(want, rel=1e-12)
    # pixel accuracy per image too
    want_acc = np.mean(
        [skm.accuracy_score(a.ravel(), b.ravel()) for a, b in zip(t, p, strict=True)]
    )
    assert pixel_accuracy(t, p, aggregate="per_image") == pytest.approx(want_acc)


def test_per_image_per_class_uses_images_where_class_is_defined():
    t = np.array([[[0, 0], [1, 1]], [[0, 0], [0, 0]]])
    p = np.array([[[0, 1], [1, 1]], [[0, 0], [0, 0]]])
    got = dice_score(t, p, average=None, aggregate="per_image")
    # class 0: image scores 2/3 and 1; class 1: defined in image 0 only (0.8)
    np.testing.assert_allclose(got, [(2 / 3 + 1) / 2, 0.8])
    # with labels listed, image 1 scores class 1 as zero_division
    got = dice_score(t, p, labels=[0, 1], average=None, aggregate="per_image")
    np.testing.assert_allclose(got, [(2 / 3 + 1) / 2, (0.8 + 1.0) / 2])
    got = dice_score(
        t, p, labels=[0, 1], average=None, aggregate="per_image", zero_division=0
    )
    np.testing.assert_allclose(got, [(2 / 3 + 1) / 2, 0.4])


def test_per_image_skips_fully_ignored_images():
    t = np.array([[[0, 1]], [[9, 9]]])
    p = np.array([[[0, 1]], [[1, 1]]])
    assert dice_score(t, p, ignore_index=9, aggregate="per_image") == 1.0
    assert pixel_accuracy(t, p, ignore_index=9, aggregate="per_image") == 1.0


# -------------------------------------------------------------- empty masks
def test_empty_mask_rule_binary():
    empty = np.zeros((4, 4), dtype=np.uint8)
    full = np.ones((4, 4), dtype=np.uint8)
    for score in (dice_score, iou_score):
        assert score(empty, empty) == 1.0  # default: empty predicted as empty
        assert score(empty, empty, zero_division=0) == 0.0
        assert np.isnan(score(empty, empty, zero_division=np.nan))
        assert score(empty, full) == 0.0  # defined: FP only
        # per image: an empty image predicted empty scores 1, one missed 0
        batch_t, batch_p = np.stack([empty, full]), np.stack([empty, empty])
        assert score(batch_t, batch_p, aggregate="per_image") == 0.5
        # ...and with NaN it is left out of the mean of images
        assert (
            score(batch_t, batch_t, aggregate="per_image", zero_division=np.nan) == 1.0
        )


# ------------------------------------------------------------------ property
@st.composite
def label_batches(draw, max_label=3):
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    size = n * h * w
    values = st.integers(0, max_label)
    t = np.array(draw(st.lists(values, min_size=size, max_size=size))).reshape(n, h, w)
    p = np.array(draw(st.lists(values, min_size=size, max_size=size))).reshape(n, h, w)
    return t, p


PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(label_batches(), st.sampled_from(["macro", "micro", None]))
def test_symmetry(batch, average):
    t, p = batch
    for score in (dice_score, iou_score):
        for aggregate in ("pooled", "per_image"):
            np.testing.assert_array_equal(
                score(t, p, average=average, aggregate=aggregate),
                score(p, t, average=average, aggregate=aggregate),
            )


@PROPERTY
@given(label_batches(), st.sampled_from(AVERAGES))
def test_bounds(batch, average):
    t, p = batch
    for score in (dice_score, iou_score, matched_dice_score, matched_iou_score):
        for aggregate in ("pooled", "per_image"):
            s = np.asarray(score(t, p, average=average, aggregate=aggregate))
            assert np.all((s >= 0) & (s <= 1))


@PROPERTY
@given(label_batches())
def test_dice_is_function_of_iou_per_class(batch):
    t, p = batch
    labels = [0, 1, 2, 3, 4]  # 4 never occurs: both scores take zero_division
    dice = dice_score(t, p, labels=labels, average=None)
    iou = iou_score(t, p, labels=labels, average=None)
    np.testing.assert_allclose(dice, 2 * iou / (1 + iou), rtol=1e-12)
    assert dice[-1] == iou[-1] == 1.0


@PROPERTY
@given(label_batches(), st.sampled_from([0.0, 1.0, np.nan]))
def test_empty_class_rule(batch, zero_division):
    t, p = batch
    present = np.union1d(t, p).tolist()
    absent = max(present) + 1
    for score in (dice_score, iou_score):
        per_class = score(
            t, p, labels=[*present, absent], average=None, zero_division=zero_division
        )
        np.testing.assert_array_equal(per_class[-1], zero_division)
        # The present classes are unaffected by the extra label.
        np.testing.assert_array_equal(
            per_class[:-1], score(t, p, average=None, zero_division=zero_division)
        )
        # NaN classes are left out of the macro mean: as if not listed.
        macro = score(
            t,
            p,
            labels=[*present, absent],
            average="macro",
            zero_division=zero_division,
        )
        if np.isnan(zero_division):
            assert macro == score(t, p, average="macro")
        else:  # a defined empty class counts like any other
            assert macro == pytest.approx(np.mean(per_class), rel=1e-12)


@PROPERTY
@given(label_batches(max_label=3), st.randoms(use_true_random=False))
def test_matched_scores_invariant_under_relabelling(batch, random):
    t, p = batch
    # A random injective relabelling of the predicted ids into 0..19.
    new_ids = np.array(random.sample(range(20), 4))
    q = new_ids[p]
    for matching in ("pooled", "per_image"):
        for score in (matched_dice_score, matched_iou_score):
            for average in ("macro", "micro", "weighted", None):
                np.testing.assert_array_equal(
                    score(t, p, average=average, matching=matching),
                    score(t, q, average=average, matching=matching),
                )
        assert matched_pixel_accuracy(t, p, matching=matching) == (
            matched_pixel_accuracy(t, q, matching=matching)
        )


@PROPERTY
@given(label_batches(max_label=3))
def test_matched_accuracy_is_best_one_to_one_relabelling(batch):
    t, p = batch
    classes = np.unique(t)
    segments = np.unique(p)
    fill = classes.max() + 1
    best = 0.0
    # Every injective map of segments into classes, where a segment may also
    # stay unassigned (fill).
    slots = [*classes.tolist(), *([fill] * len(segments))]
    for choice in itertools.permutations(slots, len(segments)):
        lut = dict(zip(segments.tolist(), choice, strict=True))
        relabelled = np.vectorize(lut.get)(p)
        best = max(best, float(np.mean(relabelled == t)))
    assert matched_pixel_accuracy(t, p) == pytest.approx(best, abs=1e-12)
    assert matched_pixel_accuracy(t, p) >= pixel_accuracy(t, p) - 1e-12


def test_matched_equals_unmatched_when_ids_are_classes():
    rng = np.random.default_rng(9)
    t = np.repeat(np.repeat(rng.integers(0, 4, (3, 4, 4)), 4, axis=1), 4, axis=2)
    t[0, :4, :4], t[1, :4, :4], t[2, :4, :4], t[2, -4:, -4:] = 0, 1, 2, 3
    p = t.copy()
    noise = rng.random(p.shape) < 0.1
    p[noise] = rng.integers(0, 4, noise.sum())
    for average in ("macro", "micro", "weighted", None):
        for aggregate in ("pooled", "per_image"):
            np.testing.assert_array_equal(
                matched_dice_score(t, p, average=average, aggregate=aggregate),
                dice_score(t, p, average=average, aggregate=aggregate),
            )
            np.testing.assert_array_equal(
                matched_iou_score(t, p, average=average, aggregate=aggregate),
                iou_score(t, p, average=average, aggregate=aggregate),
            )
    assert matched_pixel_accuracy(t, p) == pixel_accuracy(t, p)
    np.testing.assert_array_equal(match_labels(t, p), p)


# ------------------------------------------------------------------ matching
def test_match_labels_mapping_and_layouts():
    y_true = np.array([[0, 0, 1, 1]])
    y_pred = np.array([[7, 7, 3, 5]])
    matched, mapping = match_labels(y_true, y_pred, return_mapping=True)
    np.testing.assert_array_equal(matched, [[0, 0, 1, 2]])  # 5 unassigned -> 2
    assert mapping == {3: 1, 5: 2, 7: 0}
    assert matched_iou_score(y_true, y_pred, average=None).tolist() == [1.0, 0.5]

    batch_t, batch_p = np.stack([y_true, y_true]), np.stack([y_pred, y_pred])
    out = match_labels(batch_t, batch_p)
    assert isinstance(out, np.ndarray) and out.shape == (2, 1, 4)
    out = match_labels(list(batch_t), list(batch_p), fill_value=9)
    assert isinstance(out, list) and out[1].tolist() == [[0, 0, 1, 9]]


def test_match_labels_fewer_segments_than_classes():
    y_true = np.array([[0, 0, 1, 1, 2, 2]])
    y_pred = np.array([[4, 4, 4, 4, 8, 8]])
    matched = match_labels(y_true, y_pred)
    np.testing.assert_array_equal(matched, [[0, 0, 0, 0, 2, 2]])
    # class 1 got no segment: its Dice is 0
    np.testing.assert_allclose(
        matched_dice_score(y_true, y_pred, average=None), [2 * 2 / 6, 0.0, 1.0]
    )


def test_match_labels_ignored_pixels_and_labels():
    y_true = np.array([[0, 0, 1, 1, 255, 255]])
    y_pred = np.array([[2, 2, 1, 1, 6, 6]])
    matched, mapping = match_labels(
        y_true, y_pred, ignore_index=255, return_mapping=True
    )
    # segment 6 lies only on ignored pixels: no class, fill beyond 255
    assert mapping == {1: 1, 2: 0, 6: 256}
    assert matched_iou_score(y_true, y_pred, ignore_index=255) == 1.0
    # restricting the classes: segment 1 may not take class 1
    _, mapping = match_labels(y_true, y_pred, labels=[0], return_mapping=True)
    assert mapping[2] == 0 and mapping[1] != 1


def test_segment_without_overlap_stays_unassigned():
    # Segment 6 covers only class 2, which is not scored: giving it class 1
    # would only add false positives to class 1.
    y_true = np.array([[0, 0, 2, 2]])
    y_pred = np.array([[5, 5, 6, 6]])
    _, mapping = match_labels(y_true, y_pred, labels=[0, 1], return_mapping=True)
    assert mapping == {5: 0, 6: 3}
    scores = matched_dice_score(y_true, y_pred, labels=[0, 1], average=None)
    np.testing.assert_array_equal(scores, [1.0, 1.0])  # class 1: empty rule


def test_per_image_matching():
    t = np.array([[[0, 0, 1, 1]], [[0, 0, 1, 1]]])
    p = np.array([[[5, 5, 6, 6]], [[6, 6, 5, 5]]])  # ids swapped in image 1
    assert matched_pixel_accuracy(t, p) == 0.5
    assert matched_pixel_accuracy(t, p, matching="per_image") == 1.0
    assert matched_dice_score(t, p, matching="per_image") == 1.0
    _, mapping = match_labels(t, p, matching="per_image", return_mapping=True)
    assert mapping == [{5: 0, 6: 1}, {5: 1, 6: 0}]


# ------------------------------------------------------------------- scorers
class ThresholdSegmenter(BaseEstimator):
    """Foreground where the mean intensity exceeds ``threshold``."""

    def __init__(self, threshold=0.5, segment_ids=(0, 1)):
        self.threshold = threshold
        self.segment_ids = segment_ids

    def fit(self, X, y=None):
        images, _ = check_images(X)
        if y is not None:
            check_masks(y, images)
        self.n_channels_ = images[0].shape[2]
        return self

    def predict(self, X):
        check_is_fitted(self)
        images, is_batch = check_images(X)
        ids = np.asarray(self.segment_ids)
        maps = [
            ids[(image_to_float(im).mean(axis=2) > self.threshold).astype(int)]
            for im in images
        ]
        return format_label_maps(maps, is_batch, like=X)


class ThresholdClassifier(ClassifierMixin, ThresholdSegmenter):
    """The same, as a classifier-like segmenter with ``classes_``."""

    def fit(self, X, y=None):
        super().fit(X, y)
        self.classes_ = np.asarray(sorted(self.segment_ids))
        return self


def _synthetic(n=12, sizes=None, seed=0):
    """Grey images with a bright rectangle (class 1) on a dark background."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        h, w = sizes[i % len(sizes)] if sizes else (16, 16)
        mask = np.zeros((h, w), dtype=np.int64)
        r, c = rng.integers(0, h // 2), rng.integers(0, w // 2)
        mask[r : r + h // 2, c : c + w // 2] = 1
        image = np.where(mask == 1, 0.7, 0.3) + rng.normal(0, 0.05, (h, w))
        images.append(np.clip(image, 0, 1)[:, :, None])
        masks.append(mask)
    return images, masks


ALL_SCORERS = {
    "dice": (dice_scorer, dice_score, {"average": "macro"}),
    "iou": (iou_scorer, iou_score, {"average": "macro"}),
    "matched_dice": (matched_dice_scorer, matched_dice_score, {}),
    "matched_iou": (matched_iou_scorer, matched_iou_score, {}),
    "pixel_accuracy": (pixel_accuracy_scorer, pixel_accuracy, {}),
    "matched_pixel_accuracy": (
        matched_pixel_accuracy_scorer,
        matched_pixel_accuracy,
        {},
    ),
}


def _take(data, indices):
    """Index an array or a list the way cross-validation does."""
    if isinstance(data, list):
        return [data[i] for i in indices]
    return data[indices]


@pytest.mark.parametrize("name", ALL_SCORERS)
@pytest.mark.parametrize("layout", ["array", "list"])
def test_cross_val_score_equals_manual_folds(name, layout):
    scorer, func, kwargs = ALL_SCORERS[name]
    if layout == "array":
        images, masks = _synthetic()
        X, y = np.stack(images), np.stack(masks)  # (N, H, W, 1) and (N, H, W)
    else:
        X, y = _synthetic(sizes=[(16, 16), (12, 20), (18, 10)])
    est = ThresholdSegmenter(threshold=0.45)
    cv = KFold(3)
    got = cross_val_score(est, X, y, cv=cv, scoring=scorer, error_score="raise")
    want = []
    for train, test in cv.split(np.arange(len(y))):
        fitted = ThresholdSegmenter(threshold=0.45).fit(
            _take(X, train), _take(y, train)
        )
        want.append(func(_take(y, test), fitted.predict(_take(X, test)), **kwargs))
    np.testing.assert_array_equal(got, want)
    assert np.all(got > 0.9)  # the threshold separates the synthetic classes


@pytest.mark.parametrize("layout", ["array", "list"])
def test_grid_search_finds_threshold(layout):
    images, masks = _synthetic(sizes=[(16, 16), (12, 20)] if layout == "list" else None)
    X, y = (np.stack(images), np.stack(masks)) if layout == "array" else (images, masks)
    scoring = {name: scorer for name, (scorer, _, _) in ALL_SCORERS.items()}
    search = GridSearchCV(
        ThresholdSegmenter(),
        {"threshold": [0.1, 0.5, 0.9]},
        scoring=scoring,
        refit="iou",
        cv=3,
        error_score="raise",
    )
    search.fit(X, y)
    assert search.best_params_ == {"threshold": 0.5}
    for name in scoring:
        scores = search.cv_results_[f"mean_test_{name}"]
        assert np.argmax(scores) == 1, name
    assert search.score(X, y) == iou_score(y, search.predict(X), average="macro")


def test_matched_scorers_ignore_arbitrary_segment_ids():
    images, masks = _synthetic()
    X, y = np.stack(images), np.stack(masks)
    swapped = ThresholdSegmenter(threshold=0.5, segment_ids=(7, 3))
    plain = ThresholdSegmenter(threshold=0.5)
    for matched, unmatched in [
        (matched_dice_scorer, dice_scorer),
        (matched_iou_scorer, iou_scorer),
    ]:
        got = cross_val_score(swapped, X, y, cv=3, scoring=matched)
        np.testing.assert_array_equal(
            got, cross_val_score(plain, X, y, cv=3, scoring=unmatched)
        )
        assert np.all(cross_val_score(swapped, X, y, cv=3, scoring=unmatched) == 0)
    search = GridSearchCV(
        swapped, {"threshold": [0.1, 0.5, 0.9]}, scoring=matched_iou_scorer, cv=3
    )
    assert search.fit(X, y).best_params_ == {"threshold": 0.5}


def _halve(X):
    return X * 0.5


def test_pipeline_grid_search():
    images, masks = _synthetic()
    X, y = np.stack(images), np.stack(masks)
    pipe = Pipeline(
        [("scale", FunctionTransformer(_halve)), ("segment", ThresholdSegmenter())]
    )
    search = GridSearchCV(
        pipe,
        {"segment__threshold": [0.05, 0.25, 0.45]},
        scoring=dice_scorer,
        cv=3,
        error_score="raise",
    )
    search.fit(X, y)
    assert search.best_params_ == {"segment__threshold": 0.25}


def test_scorers_with_classifier_like_segmenter():
    # classes_ {0, 255}: the scorers must not check pos_label=1 against them.
    images, masks = _synthetic(n=4)
    X, y = np.stack(images), np.stack(masks) * 255
    est = ThresholdClassifier(threshold=0.5, segment_ids=(0, 255)).fit(X, y)
    pred = est.predict(X)
    assert dice_scorer(est, X, y) == dice_score(y, pred, average="macro")
    assert iou_scorer(est, X, y) == iou_score(y, pred, average="macro")
    assert matched_iou_scorer(est, X, y) == matched_iou_score(y, pred)


def test_scorers_pickle():
    for scorer, _, _ in ALL_SCORERS.values():
        clone = pickle.loads(pickle.dumps(scorer))
        assert clone._score_func is scorer._score_func


# --------------------------------------------------------------- bad inputs
GOOD = np.zeros((2, 4, 4), dtype=int)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "kwargs", "error", "match"),
    [
        (GOOD, np.zeros((2, 4, 5), int), {}, ValueError, r"y_pred\[0\] has shape"),
        (
            GOOD,
            np.zeros((3, 4, 4), int),
            {},
            ValueError,
            "2 label maps but y_pred has 3",
        ),
        (GOOD, GOOD + 0.5, {}, ValueError, "non-integer"),
        (GOOD, np.full((2, 4, 4), np.nan), {}, ValueError, "non-integer"),
        (GOOD, np.full((2, 4, 4), "a"), {}, TypeError, "dtype"),
        (np.zeros((1, 2, 4, 4), int), GOOD[:1], {}, ValueError, "4 dimensions"),
        (np.zeros(5, int), np.zeros(5, int), {}, ValueError, "1 dimensions"),
        ([], [], {}, ValueError, "empty list"),
        (GOOD[:0], GOOD[:0], {}, ValueError, "empty batch"),
        (GOOD - 1, GOOD, {}, ValueError, "negative labels"),
        (None, GOOD, {}, TypeError, "y_true is None"),
        (
            [np.zeros((2, 2)), np.zeros((3, 3))],
            [np.zeros((2, 2))] * 2,
            {},
            ValueError,
            r"y_pred\[1\] has shape",
        ),
        (GOOD, GOOD, {"average": "samples"}, ValueError, "average must be"),
        (GOOD, GOOD, {"aggregate": "mean"}, ValueError, "aggregate must be"),
        (GOOD, GOOD, {"zero_division": 0.5}, ValueError, "zero_division"),
        (GOOD, GOOD, {"zero_division": "nan"}, ValueError, "zero_division"),
        (GOOD, GOOD, {"labels": []}, ValueError, "non-empty"),
        (GOOD, GOOD, {"labels": [0, 0]}, ValueError, "repeated"),
        (GOOD, GOOD, {"labels": [0.5]}, TypeError, "integers"),
        (GOOD, GOOD, {"labels": [0, 1]}, ValueError, "labels is not used"),
        (GOOD + 9, GOOD, {"ignore_index": 9}, ValueError, "no pixel is left"),
        (GOOD, GOOD, {"ignore_index": 1.5}, TypeError, "ignore_index"),
        (np.arange(16).reshape(1, 4, 4) % 3, GOOD[:1], {}, ValueError, "at most two"),
        (GOOD + 2, GOOD, {}, ValueError, "pos_label=1 is not a valid label"),
        (GOOD, GOOD, {"pos_label": "a"}, TypeError, "pos_label"),
    ],
)
def test_bad_inputs(y_true, y_pred, kwargs, error, match):
    for score in (dice_score, iou_score):
        with pytest.raises(error, match=match):
            score(y_true, y_pred, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"matching": "global"}, ValueError, "matching must be"),
        ({"fill_value": 1}, ValueError, "fill_value=1"),
        ({"fill_value": -3}, ValueError, "fill_value=-3"),
        ({"fill_value": 2.5}, TypeError, "fill_value"),
    ],
)
def test_bad_matching_inputs(kwargs, error, match):
    t = np.array([[0, 1, 1]])
    with pytest.raises(error, match=match):
        match_labels(t, t, **kwargs)


def test_bad_inputs_other_functions():
    with pytest.raises(ValueError, match=r"y_pred has shape"):
        pixel_accuracy(np.zeros((3, 3), int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="aggregate must be"):
        pixel_accuracy(GOOD, GOOD, aggregate="x")
    with pytest.raises(ValueError, match="repeated"):
        confusion_matrix(GOOD, GOOD, labels=[1, 1])
    with pytest.raises(ValueError, match="at most two"):
        matched_dice_score(
            np.array([[0, 1, 2]]), np.array([[0, 1, 2]]), average="binary"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="pos_label=3 is ignored"):
            dice_score(GOOD, GOOD, average="macro", pos_label=3)


def test_uint64_labels_beyond_int64_are_rejected_not_negative():
    t = np.zeros((3, 3), np.uint64)
    t[0, 0] = 2**63 + 5
    with pytest.raises(ValueError, match="beyond the int64 range"):
        confusion_matrix(t, np.zeros((3, 3), np.int64))
    with pytest.raises(ValueError, match="beyond the int64 range"):
        iou_score(np.zeros((3, 3), int), np.full((3, 3), 1e19))
    with pytest.raises(ValueError, match="beyond the int64 range"):
        dice_score(np.zeros((3, 3), int), np.zeros((3, 3), int), labels=[2**63])
    # Large labels inside the range are labels like any other.
    t[0, 0] = 2**63 - 1
    matrix = confusion_matrix(t, t.astype(np.int64))
    np.testing.assert_array_equal(matrix, [[8, 0], [0, 1]])
