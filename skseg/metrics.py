"""Segmentation metrics and scikit-learn scorers.

Inputs
------
Every function takes ``y_true`` and ``y_pred`` as one ``(H, W)`` label map, an
``(N, H, W)`` array of maps, or a list (or tuple) of ``(H, W)`` maps whose sizes
may differ. Both sides must hold the same number of maps, map ``i`` of
``y_pred`` must have the shape of map ``i`` of ``y_true``, and labels are
integers >= 0 (booleans and whole-number floats are accepted, see
:func:`skseg._validation.check_mask`). ``ignore_index`` marks unlabelled pixels
of ``y_true``: they are removed from both sides before anything is counted, so
what a segmenter predicts there never matters.

Scores
------
For a class ``c``, with ``TP``, ``FP`` and ``FN`` its true-positive,
false-positive and false-negative pixel counts:

* Dice (F1) ``= 2 TP / (2 TP + FP + FN)``, as :func:`sklearn.metrics.f1_score`;
* IoU (Jaccard) ``= TP / (TP + FP + FN)``, as
  :func:`sklearn.metrics.jaccard_score`.

``labels`` and ``average`` follow scikit-learn. ``labels=None`` means the
sorted union of the labels present in ``y_true`` and ``y_pred`` (after removing
``ignore_index`` pixels); ``average=None`` returns one score per class in the
order of ``labels``; ``'micro'`` pools the counts of the classes;
``'macro'`` is the unweighted mean over classes; ``'weighted'`` weights each
class by its number of true pixels; ``'binary'`` scores ``pos_label`` alone and
needs at most two distinct labels. On flattened arrays with the
``ignore_index`` pixels removed, the results are exactly those of
scikit-learn.

Empty masks (0/0)
-----------------
A class that is absent from both ``y_true`` and ``y_pred`` has ``TP + FP + FN =
0``, and its score is 0/0. skseg resolves it this way:

* With ``labels=None`` the class set is *the classes present*, so such a class
  is simply not a class of that image: it is left out of the average (this
  only happens per image, with ``aggregate='per_image'``: pooled counts always
  contain every class of the union).
* Otherwise (``average='binary'``, or a class listed in ``labels``) the score
  is ``zero_division``, as in scikit-learn. The default is ``1.0``: an empty
  prediction of an empty mask is perfect, the usual convention for Dice in
  segmentation (scikit-learn's default, ``'warn'``, gives 0.0 and a warning).
  ``zero_division=np.nan`` marks the class undefined instead, and undefined
  scores are left out of every average (``nan`` when nothing is left).

Aggregation
-----------
``aggregate='pooled'`` (the default) adds the pixel counts of all images and
scores once, so large images weigh more. ``aggregate='per_image'`` scores each
image on its own, with every rule above applied to that image alone, and
returns the mean of the image scores (per class for ``average=None``, over the
images where the class is defined). Images with no pixel left after removing
``ignore_index`` are skipped; an input with no pixel left at all is an error.

Matched scores
--------------
Unsupervised segmenters number their segments arbitrarily. The ``matched_*``
functions first map predicted segment ids to true classes with
:func:`match_labels` (a one-to-one Hungarian assignment on the overlap
matrix), then score as above over the true classes.

Scorers
-------
``dice_scorer``, ``iou_scorer``, ``matched_dice_scorer``, ``matched_iou_scorer``,
``pixel_accuracy_scorer`` and ``matched_pixel_accuracy_scorer`` are
:func:`sklearn.metrics.make_scorer` objects for ``GridSearchCV``,
``cross_val_score`` and pipelines whose ``predict`` returns label maps. Dice
and IoU scorers use ``average='macro'`` over the classes present, which suits
binary and multiclass masks alike. For other settings build your own, for
example ``make_scorer(dice_score, average='binary', pos_label=255)`` or
``make_scorer(iou_score, average='macro', ignore_index=11)``.
"""

import numbers
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import make_scorer

from ._validation import check_mask, labels_to_int64

__all__ = [
    "confusion_matrix",
    "dice_score",
    "dice_scorer",
    "iou_score",
    "iou_scorer",
    "match_labels",
    "matched_dice_score",
    "matched_dice_scorer",
    "matched_iou_score",
    "matched_iou_scorer",
    "matched_pixel_accuracy",
    "matched_pixel_accuracy_scorer",
    "pixel_accuracy",
    "pixel_accuracy_scorer",
]

_AVERAGES = ("binary", "micro", "macro", "weighted", None)
_AGGREGATES = ("pooled", "per_image")
_MATCHINGS = ("pooled", "per_image")
# Below this label value, look-up tables and bincount beat sorting.
_DENSE_LABEL_LIMIT = 1 << 16


# ---------------------------------------------------------------- validation
def _split_maps(maps, name):
    """Return ``(list_of_raw_maps, is_batch)`` for one map, an array or a list."""
    if isinstance(maps, (list, tuple)):
        if len(maps) == 0:
            raise ValueError(f"{name} is an empty list of label maps")
        first = maps[0]
        # A nested list of numbers is one map written as lists, not a batch.
        if np.isscalar(first) or (
            isinstance(first, (list, tuple)) and len(first) and np.isscalar(first[0])
        ):
            return [maps], False
        return list(maps), True
    if maps is None:
        raise TypeError(f"{name} is None; expected label maps")
    try:
        arr = np.asarray(maps)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} cannot be read as an array: {exc}") from None
    if arr.ndim == 2:
        return [arr], False
    if arr.ndim == 3:
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is an empty batch: shape {arr.shape}")
        return list(arr), True
    raise ValueError(
        f"{name} has {arr.ndim} dimensions with shape {arr.shape}; expected one "
        "(H, W) label map, an (N, H, W) array of maps or a list of (H, W) maps"
    )


def _check_ignore_index(ignore_index):
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(
            f"ignore_index must be an integer or None, got {ignore_index!r}"
        )
    return int(ignore_index)


def _check_label_maps(y_true, y_pred, ignore_index):
    """Validate both sides and return the full maps and the kept pixels.

    Returns ``(true_maps, pred_maps, keeps, pred_is_batch, pred_like)`` where
    ``keeps[i]`` is a boolean ``(H, W)`` array of the pixels not ignored (or
    None when nothing is ignored).
    """
    ignore_index = _check_ignore_index(ignore_index)
    true_raw, true_batch = _split_maps(y_true, "y_true")
    pred_raw, pred_batch = _split_maps(y_pred, "y_pred")
    if len(true_raw) != len(pred_raw):
        raise ValueError(
            f"y_true has {len(true_raw)} label maps but y_pred has {len(pred_raw)}"
        )
    true_maps, pred_maps, keeps = [], [], []
    for i, (t, p) in enumerate(zip(true_raw, pred_raw, strict=True)):
        t_name = f"y_true[{i}]" if true_batch else "y_true"
        p_name = f"y_pred[{i}]" if pred_batch else "y_pred"
        t = check_mask(t, ignore_index=ignore_index, name=t_name)
        p = check_mask(p, ignore_index=ignore_index, name=p_name)
        if t.shape != p.shape:
            raise ValueError(f"{p_name} has shape {p.shape} but {t_name} has {t.shape}")
        keep = None if ignore_index is None else t != ignore_index
        true_maps.append(t)
        pred_maps.append(p)
        keeps.append(keep)
    return true_maps, pred_maps, keeps, pred_batch, y_pred


def _kept_pixels(true_maps, pred_maps, keeps):
    """Flattened ``(true, pred)`` pairs of kept pixels, one per image."""
    pairs = []
    for t, p, keep in zip(true_maps, pred_maps, keeps, strict=True):
        if keep is None:
            pairs.append((t.ravel(), p.ravel()))
        else:
            pairs.append((t[keep], p[keep]))
    if not any(t.size for t, _ in pairs):
        raise ValueError(
            "no pixel is left to score: every pixel of y_true equals ignore_index"
        )
    return pairs


def _check_labels(labels):
    if labels is None:
        return None
    arr = np.asarray(labels)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"labels must be a non-empty 1-D list of integers, got {labels!r}"
        )
    if arr.dtype.kind == "f" and np.array_equal(arr, np.round(arr)):
        arr = labels_to_int64(arr, "labels")
    if arr.dtype.kind not in "iub":
        raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
    arr = labels_to_int64(arr, "labels")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"labels has repeated values: {arr.tolist()}")
    return arr


def _check_options(average, aggregate, zero_division):
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    if aggregate not in _AGGREGATES:
        raise ValueError(f"aggregate must be one of {_AGGREGATES}, got {aggregate!r}")
    if isinstance(zero_division, str):
        if zero_division != "warn":
            raise ValueError(
                "zero_division must be 0.0, 1.0, np.nan or 'warn', got "
                f"{zero_division!r}"
            )
        return 0.0
    if (
        isinstance(zero_division, numbers.Real)
        and not isinstance(zero_division, bool)
        and (np.isnan(zero_division) or zero_division in (0, 1))
    ):
        return float(zero_division)
    raise ValueError(
        f"zero_division must be 0.0, 1.0, np.nan or 'warn', got {zero_division!r}"
    )


def _check_pos_label(pos_label, average):
    if average == "binary":
        if isinstance(pos_label, bool) or not isinstance(pos_label, numbers.Integral):
            raise TypeError(
                f"pos_label must be an integer label with average='binary', got "
                f"{pos_label!r}"
            )
    elif pos_label not in (None, 1):
        # The same warning as scikit-learn: pos_label alone does nothing here.
        warnings.warn(
            f"pos_label={pos_label!r} is ignored when average != 'binary' (got "
            f"{average!r}); use labels=[{pos_label!r}] to score that class alone",
            UserWarning,
            stacklevel=4,
        )


# ------------------------------------------------------------------ counting
def _present(values_list):
    """Sorted distinct values of a list of 1-D integer arrays."""
    chunks = []
    for v in values_list:
        if v.size == 0:
            continue
        lo, hi = int(v.min()), int(v.max())
        if lo >= 0 and hi < _DENSE_LABEL_LIMIT:
            chunks.append(np.flatnonzero(np.bincount(v)))
        else:
            chunks.append(np.unique(v))
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(chunks)).astype(np.int64)


def _encode(values, labels):
    """Index of each value in ``labels`` (any order), ``len(labels)`` if absent."""
    k = labels.size
    if values.size == 0:
        return np.zeros(0, dtype=np.intp)
    lo, hi = int(values.min()), int(values.max())
    if lo >= 0 and hi < _DENSE_LABEL_LIMIT:
        lut = np.full(hi + 1, k, dtype=np.intp)
        inside = (labels >= 0) & (labels <= hi)
        lut[labels[inside]] = np.flatnonzero(inside)
        return lut[values]
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    pos = np.clip(np.searchsorted(sorted_labels, values), 0, max(k - 1, 0))
    found = sorted_labels[pos] == values if k else np.zeros(values.shape, bool)
    return np.where(found, order[pos], k)


def _class_counts(pairs, labels):
    """Per-image ``tp``, ``pred_sum`` and ``true_sum`` of shape ``(N, K)``.

    Pixels whose labels are not in ``labels`` fall in an extra bin that is
    dropped: they still count as false negatives (or positives) of the listed
    class on the other side, as in scikit-learn.
    """
    k = labels.size
    n = len(pairs)
    tp = np.zeros((n, k), dtype=np.int64)
    pred_sum = np.zeros((n, k), dtype=np.int64)
    true_sum = np.zeros((n, k), dtype=np.int64)
    for i, (t, p) in enumerate(pairs):
        ti, pi = _encode(t, labels), _encode(p, labels)
        tp[i] = np.bincount(ti[ti == pi], minlength=k + 1)[:k]
        true_sum[i] = np.bincount(ti, minlength=k + 1)[:k]
        pred_sum[i] = np.bincount(pi, minlength=k + 1)[:k]
    return tp, pred_sum, true_sum


# ------------------------------------------------------------------- scoring
def _nanaverage(scores, weights=None):
    """Mean of the defined (non-NaN) scores, as scikit-learn averages them."""
    if scores.size == 0 or np.isnan(scores).all():
        return np.nan
    if weights is None:
        return float(np.nanmean(scores))
    defined = ~np.isnan(scores)
    try:
        return float(np.average(scores[defined], weights=weights[defined]))
    except ZeroDivisionError:  # no true pixel in any class: plain mean
        return float(np.average(scores[defined]))


def _score_counts(kind, tp, pred_sum, true_sum, average, zero_value, skip):
    """Score one set of counts over K classes.

    ``skip`` marks classes that are not classes of this input (absent from
    both sides with ``labels=None``); they are left out of averages. Returns
    ``(score, undefined)`` with ``undefined`` telling whether a 0/0 was
    replaced by ``zero_value``.
    """
    if average == "micro":
        tp, pred_sum, true_sum = (
            np.array([tp.sum()]),
            np.array([pred_sum.sum()]),
            np.array([true_sum.sum()]),
        )
        skip = np.zeros(1, dtype=bool)
    # Same operations as scikit-learn, so that results agree to the last bit.
    if kind == "dice":
        numerator = 2.0 * tp.astype(np.float64)
        denominator = 1.0 * true_sum.astype(np.float64) + pred_sum.astype(np.float64)
    else:
        numerator = tp
        denominator = true_sum + pred_sum - tp
    zero = denominator == 0
    scores = np.asarray(numerator, dtype=np.float64) / np.where(zero, 1, denominator)
    scores[zero] = zero_value
    undefined = bool((zero & ~skip).any())
    scores[skip] = np.nan
    if average is None:
        return scores, undefined
    if average == "weighted":
        return _nanaverage(scores, weights=true_sum), undefined
    return _nanaverage(scores), undefined


def _overlap_score(
    kind,
    pairs,
    *,
    labels,
    default_labels,
    average,
    pos_label,
    zero_division,
    aggregate,
):
    """Dice or IoU of validated pixel pairs.

    ``default_labels`` is the class set used when ``labels`` is None: the
    labels present, or the true classes for matched scores.
    """
    zero_value = _check_options(average, aggregate, zero_division)
    _check_pos_label(pos_label, average)
    labels = _check_labels(labels)
    if average == "binary":
        if labels is not None:
            raise ValueError(
                "labels is not used with average='binary', which scores "
                "pos_label alone; pass labels with average='macro' (or None) "
                "instead"
            )
        if default_labels.size > 2:
            raise ValueError(
                f"y_true and y_pred hold {default_labels.size} labels "
                f"{default_labels.tolist()[:10]} but average='binary' needs at most "
                "two; choose average='macro', 'micro', 'weighted' or None"
            )
        if default_labels.size == 2 and pos_label not in default_labels:
            raise ValueError(
                f"pos_label={pos_label} is not a valid label: it should be one of "
                f"{default_labels.tolist()}"
            )
        eval_labels, skip_absent = np.array([pos_label], dtype=np.int64), False
    elif labels is None:
        eval_labels, skip_absent = default_labels, True
    else:
        eval_labels, skip_absent = labels, False

    tp, pred_sum, true_sum = _class_counts(pairs, eval_labels)
    if aggregate == "pooled":
        tp, pred_sum, true_sum = tp.sum(0), pred_sum.sum(0), true_sum.sum(0)
        skip = (
            (tp + pred_sum + true_sum == 0) if skip_absent else np.zeros_like(tp, bool)
        )
        result, undefined = _score_counts(
            kind, tp, pred_sum, true_sum, average, zero_value, skip
        )
    else:
        image_scores, undefined = [], False
        for i, (t, _) in enumerate(pairs):
            if t.size == 0:  # every pixel ignored: nothing to score
                continue
            absent = pred_sum[i] + true_sum[i] == 0
            skip = absent if skip_absent else np.zeros_like(absent)
            score, undef = _score_counts(
                kind, tp[i], pred_sum[i], true_sum[i], average, zero_value, skip
            )
            image_scores.append(score)
            undefined |= undef
        image_scores = np.array(image_scores, dtype=np.float64)
        with warnings.catch_warnings():
            # A class undefined in every image is NaN, by the rule above.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = np.nanmean(image_scores, axis=0)
        if average is not None:
            result = float(result)
    if undefined and isinstance(zero_division, str):
        name = "Dice" if kind == "dice" else "IoU"
        warnings.warn(
            f"{name} is ill-defined and being set to 0.0 for classes with no true "
            "nor predicted pixels. Use the zero_division parameter to control "
            "this behaviour.",
            UndefinedMetricWarning,
            stacklevel=3,
        )
    return result


_COMMON_PARAMS = """
    Parameters
    ----------
    y_true : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Ground-truth class maps.
    y_pred : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Predicted class maps, one per map of ``y_true`` with the same shape.
    labels : array-like of int, default=None
        Classes to score, in the order of the output for ``average=None``.
        ``None`` means the sorted union of the labels present in ``y_true``
        and ``y_pred``. Pixels of other labels still count as errors for the
        listed classes. Must be None with ``average='binary'``.
    average : {'binary', 'micro', 'macro', 'weighted'} or None, default='binary'
        ``'binary'`` scores ``pos_label`` (at most two labels may be
        present); ``'micro'`` pools the counts of the classes; ``'macro'``
        averages the class scores; ``'weighted'`` weights them by their
        number of true pixels; ``None`` returns the class scores.
    pos_label : int, default=1
        The class scored with ``average='binary'``.
    ignore_index : int, default=None
        Label of unlabelled pixels in ``y_true``; those pixels are left out.
    zero_division : {1.0, 0.0, np.nan, 'warn'}, default=1.0
        Score of a class absent from both ``y_true`` and ``y_pred`` when it
        is scored (``average='binary'`` or listed in ``labels``). ``'warn'``
        means 0.0 with an ``UndefinedMetricWarning``; NaN scores are left out
        of averages. With ``labels=None`` such classes are not scored at all.
    aggregate : {'pooled', 'per_image'}, default='pooled'
        ``'pooled'`` adds the pixel counts of all images before scoring;
        ``'per_image'`` scores each image alone and averages the scores.
"""


def dice_score(
    y_true,
    y_pred,
    *,
    labels=None,
    average="binary",
    pos_label=1,
    ignore_index=None,
    zero_division=1.0,
    aggregate="pooled",
):
    """Dice coefficient (F1 score) of segmentation label maps.

    For each class, ``2 TP / (2 TP + FP + FN)`` over pixels, equal to
    :func:`sklearn.metrics.f1_score` on the flattened maps with the
    ``ignore_index`` pixels removed. See the module docstring for the
    empty-mask rule and the aggregation over images.
    {params}
    Returns
    -------
    score : float or ndarray of shape (n_labels,)
        The averaged score, or one score per class for ``average=None``.

    See Also
    --------
    iou_score, matched_dice_score, dice_scorer

    Notes
    -----
    Empty masks: a class absent from both ``y_true`` and ``y_pred`` scores
    ``zero_division`` (default 1.0, a perfect empty prediction) when it is
    scored, that is with ``average='binary'`` or when listed in ``labels``;
    with ``labels=None`` it is not a class of that input and is left out of
    the averages (this matters per image, with ``aggregate='per_image'``).

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.metrics import dice_score
    >>> y_true = np.array([[0, 1], [1, 1]])
    >>> y_pred = np.array([[0, 1], [0, 1]])
    >>> round(dice_score(y_true, y_pred), 4)
    0.8
    >>> dice_score(y_true, y_pred, average=None).round(4)
    array([0.6667, 0.8   ])
    """
    true_maps, pred_maps, keeps, _, _ = _check_label_maps(y_true, y_pred, ignore_index)
    pairs = _kept_pixels(true_maps, pred_maps, keeps)
    return _overlap_score(
        "dice",
        pairs,
        labels=labels,
        default_labels=_present([v for pair in pairs for v in pair]),
        average=average,
        pos_label=pos_label,
        zero_division=zero_division,
        aggregate=aggregate,
    )


def iou_score(
    y_true,
    y_pred,
    *,
    labels=None,
    average="binary",
    pos_label=1,
    ignore_index=None,
    zero_division=1.0,
    aggregate="pooled",
):
    """Intersection over union (Jaccard index) of segmentation label maps.

    For each class, ``TP / (TP + FP + FN)`` over pixels, equal to
    :func:`sklearn.metrics.jaccard_score` on the flattened maps with the
    ``ignore_index`` pixels removed; ``average='macro'`` is the usual mIoU.
    See the module docstring for the empty-mask rule and the aggregation
    over images.
    {params}
    Returns
    -------
    score : float or ndarray of shape (n_labels,)
        The averaged score, or one score per class for ``average=None``.

    See Also
    --------
    dice_score, matched_iou_score, iou_scorer

    Notes
    -----
    Empty masks: a class absent from both ``y_true`` and ``y_pred`` scores
    ``zero_division`` (default 1.0, a perfect empty prediction) when it is
    scored, that is with ``average='binary'`` or when listed in ``labels``;
    with ``labels=None`` it is not a class of that input and is left out of
    the averages (this matters per image, with ``aggregate='per_image'``).

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.metrics import iou_score
    >>> y_true = np.array([[0, 1], [1, 1]])
    >>> y_pred = np.array([[0, 1], [0, 1]])
    >>> round(iou_score(y_true, y_pred), 4)
    0.6667
    >>> iou_score(y_true, y_pred, average="macro")
    0.5833333333333333
    """
    true_maps, pred_maps, keeps, _, _ = _check_label_maps(y_true, y_pred, ignore_index)
    pairs = _kept_pixels(true_maps, pred_maps, keeps)
    return _overlap_score(
        "iou",
        pairs,
        labels=labels,
        default_labels=_present([v for pair in pairs for v in pair]),
        average=average,
        pos_label=pos_label,
        zero_division=zero_division,
        aggregate=aggregate,
    )


dice_score.__doc__ = dice_score.__doc__.replace("{params}", _COMMON_PARAMS)
iou_score.__doc__ = iou_score.__doc__.replace("{params}", _COMMON_PARAMS)


def _accuracy(pairs, aggregate):
    if aggregate not in _AGGREGATES:
        raise ValueError(f"aggregate must be one of {_AGGREGATES}, got {aggregate!r}")
    correct = np.array([np.count_nonzero(t == p) for t, p in pairs], dtype=np.int64)
    total = np.array([t.size for t, _ in pairs], dtype=np.int64)
    if aggregate == "pooled":
        return float(correct.sum() / total.sum())
    kept = total > 0
    return float(np.mean(correct[kept] / total[kept]))


def pixel_accuracy(y_true, y_pred, *, ignore_index=None, aggregate="pooled"):
    """Fraction of pixels whose predicted label equals the true label.

    Equal to :func:`sklearn.metrics.accuracy_score` on the flattened maps with
    the ``ignore_index`` pixels removed.

    Parameters
    ----------
    y_true : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Ground-truth class maps.
    y_pred : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Predicted class maps, one per map of ``y_true`` with the same shape.
    ignore_index : int, default=None
        Label of unlabelled pixels in ``y_true``; those pixels are left out.
    aggregate : {'pooled', 'per_image'}, default='pooled'
        ``'pooled'`` counts over all pixels of all images; ``'per_image'``
        averages the accuracies of the images.

    Returns
    -------
    accuracy : float
        In ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.metrics import pixel_accuracy
    >>> pixel_accuracy(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]))
    0.75
    """
    true_maps, pred_maps, keeps, _, _ = _check_label_maps(y_true, y_pred, ignore_index)
    return _accuracy(_kept_pixels(true_maps, pred_maps, keeps), aggregate)


def confusion_matrix(y_true, y_pred, *, labels=None, ignore_index=None):
    """Pixel confusion matrix of label maps, pooled over all images.

    Entry ``[i, j]`` counts the pixels of true class ``labels[i]`` predicted as
    ``labels[j]``, as :func:`sklearn.metrics.confusion_matrix` on the flattened
    maps with the ``ignore_index`` pixels removed. Pixels whose true or
    predicted label is not in ``labels`` are not counted. (Unlike
    scikit-learn, ``labels`` absent from ``y_true`` are allowed: their rows are
    zero.)

    Parameters
    ----------
    y_true : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Ground-truth class maps.
    y_pred : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Predicted class maps, one per map of ``y_true`` with the same shape.
    labels : array-like of int, default=None
        Row and column order. ``None`` means the sorted union of the labels
        present in ``y_true`` and ``y_pred``.
    ignore_index : int, default=None
        Label of unlabelled pixels in ``y_true``; those pixels are left out.

    Returns
    -------
    matrix : ndarray of shape (n_labels, n_labels), dtype int64
        Rows are true classes, columns predicted classes.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.metrics import confusion_matrix
    >>> confusion_matrix(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 1]]))
    array([[1, 0],
           [1, 2]])
    """
    true_maps, pred_maps, keeps, _, _ = _check_label_maps(y_true, y_pred, ignore_index)
    pairs = _kept_pixels(true_maps, pred_maps, keeps)
    labels = _check_labels(labels)
    if labels is None:
        labels = _present([v for pair in pairs for v in pair])
    k = labels.size
    matrix = np.zeros((k + 1) * (k + 1), dtype=np.int64)
    for t, p in pairs:
        flat = _encode(t, labels) * (k + 1) + _encode(p, labels)
        matrix += np.bincount(flat, minlength=(k + 1) * (k + 1))
    return matrix.reshape(k + 1, k + 1)[:k, :k]


# ------------------------------------------------------------------ matching
def _assign(t, p, classes):
    """Hungarian one-to-one assignment of predicted segments to ``classes``.

    Returns ``(segments, targets)``: the sorted segment ids present in ``p``
    and the class of each, or -1 when unassigned.
    """
    segments = _present([p])
    k, s = classes.size, segments.size
    if s == 0 or k == 0:
        return segments, np.full(s, -1, dtype=np.int64)
    flat = _encode(p, segments) * (k + 1) + _encode(t, classes)
    overlap = np.bincount(flat, minlength=s * (k + 1)).reshape(s, k + 1)
    # Order the rows by their content (size, then overlaps), not by their ids,
    # so that ties are broken the same way whatever the ids: the result is
    # invariant under relabelling of y_pred. Equal rows are interchangeable.
    keys = [overlap[:, j] for j in range(k, -1, -1)] + [overlap.sum(1)]
    order = np.lexsort(keys)
    rows, cols = linear_sum_assignment(overlap[order, :k], maximize=True)
    targets = np.full(s, -1, dtype=np.int64)
    # A pair sharing no pixel would only add false positives: leave it out.
    useful = overlap[order[rows], cols] > 0
    targets[order[rows[useful]]] = classes[cols[useful]]
    return segments, targets


def _relabel(p, segments, targets, fill_value):
    idx = _encode(p, segments)
    lookup = np.append(targets, -1)
    out = lookup[idx]
    out[out < 0] = fill_value
    return out


def _match(true_maps, pred_maps, keeps, *, labels, ignore_index, matching, fill_value):
    """Shared part of :func:`match_labels` and the matched scores.

    Returns the relabelled full maps, the mappings, the classes and the fill
    value.
    """
    if matching not in _MATCHINGS:
        raise ValueError(f"matching must be one of {_MATCHINGS}, got {matching!r}")
    pairs = _kept_pixels(true_maps, pred_maps, keeps)
    true_present = _present([t for t, _ in pairs])
    labels = _check_labels(labels)
    classes = true_present if labels is None else labels
    if fill_value is None:
        # One past every label of y_true (and ignore_index), so that it can
        # never be taken for a class.
        candidates = [int(true_present.max()), int(classes.max())]
        if ignore_index is not None:
            candidates.append(int(ignore_index))
        fill_value = max(candidates) + 1
    else:
        if isinstance(fill_value, bool) or not isinstance(fill_value, numbers.Integral):
            raise TypeError(f"fill_value must be an integer, got {fill_value!r}")
        if fill_value < 0 or fill_value in classes or fill_value in true_present:
            raise ValueError(
                f"fill_value={fill_value} must be >= 0 and differ from every class "
                f"label ({classes.tolist()[:10]}) and every label of y_true"
            )
        fill_value = int(fill_value)
    if matching == "pooled":
        segments, targets = _assign(
            np.concatenate([t for t, _ in pairs]),
            np.concatenate([p for _, p in pairs]),
            classes,
        )
        mappings = [(segments, targets)] * len(pairs)
    else:
        mappings = [_assign(t, p, classes) for t, p in pairs]
    matched = [
        _relabel(p, seg, tgt, fill_value)
        for p, (seg, tgt) in zip(pred_maps, mappings, strict=True)
    ]
    return matched, mappings, classes, fill_value


def match_labels(
    y_true,
    y_pred,
    *,
    labels=None,
    ignore_index=None,
    matching="pooled",
    fill_value=None,
    return_mapping=False,
):
    """Map predicted segment ids to true classes by Hungarian assignment.

    Unsupervised segmenters number their segments arbitrarily. This function
    builds the overlap matrix (pixels of segment ``s`` with true class ``c``,
    ignoring ``ignore_index`` pixels) and finds the one-to-one assignment of
    segments to classes that maximises the total overlap, that is the pixel
    accuracy, with :func:`scipy.optimize.linear_sum_assignment`. This is the
    standard protocol for scoring unsupervised segmentation (Hungarian
    matching of clusters to classes, as in IIC, PiCIE and STEGO).

    Segments left unassigned, because there are more segments than classes
    or because a segment shares no pixel with the class it would get, are
    mapped to ``fill_value``, a label that is no class: their pixels count as
    misses (false negatives) of their true classes and as false positives of
    no class. So over-segmentation is penalised, as one-to-one matching
    intends; mapping extra segments to their majority class instead would let
    a segmenter with one segment per pixel score perfectly. A class that gets
    no segment scores 0 (when present in ``y_true``). Ties between equally
    good assignments are broken by segment content, not by id, so relabelling
    ``y_pred`` never changes the result.

    Parameters
    ----------
    y_true : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Ground-truth class maps.
    y_pred : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Predicted segment maps, one per map of ``y_true`` with the same shape.
    labels : array-like of int, default=None
        The classes segments may be assigned to; ``None`` means the classes
        present in ``y_true``.
    ignore_index : int, default=None
        Label of unlabelled pixels in ``y_true``, left out of the overlaps.
    matching : {'pooled', 'per_image'}, default='pooled'
        ``'pooled'`` finds one assignment for the whole batch, from the summed
        overlaps: a segment id means the same thing in every image, the usual
        convention for a segmenter fitted once. ``'per_image'`` matches each
        image on its own, for segmenters fitted per image whose ids mean
        nothing across images.
    fill_value : int, default=None
        Label of unassigned segments; ``None`` means one more than the largest
        label of ``y_true``, ``labels`` and ``ignore_index``.
    return_mapping : bool, default=False
        Also return the assignments.

    Returns
    -------
    y_matched : ndarray or list of ndarray
        ``y_pred`` relabelled (int64), in the layout of ``y_pred``.
    mapping : dict or list of dict
        Only with ``return_mapping=True``: ``{segment_id: label}`` for every
        segment id present (unassigned ones map to ``fill_value``), one dict
        for ``matching='pooled'``, one per image for ``'per_image'``.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.metrics import match_labels
    >>> y_true = np.array([[0, 0, 1, 1]])
    >>> y_pred = np.array([[7, 7, 3, 5]])
    >>> match_labels(y_true, y_pred, return_mapping=True)
    (array([[0, 0, 1, 2]]), {3: 1, 5: 2, 7: 0})
    """
    true_maps, pred_maps, keeps, pred_batch, pred_like = _check_label_maps(
        y_true, y_pred, ignore_index
    )
    matched, mappings, _, fill_value = _match(
        true_maps,
        pred_maps,
        keeps,
        labels=labels,
        ignore_index=_check_ignore_index(ignore_index),
        matching=matching,
        fill_value=fill_value,
    )
    if not pred_batch:
        result = matched[0]
    elif isinstance(pred_like, (list, tuple)):
        result = matched
    else:
        result = np.stack(matched)
    if not return_mapping:
        return result

    def as_dict(segments, targets, maps):
        # Ids seen only on ignored pixels were not matched: they map to fill.
        mapping = dict.fromkeys(
            _present([m.ravel() for m in maps]).tolist(), fill_value
        )
        for s, c in zip(segments.tolist(), targets.tolist(), strict=True):
            mapping[s] = c if c >= 0 else fill_value
        return mapping

    if matching == "pooled":
        mapping = as_dict(*mappings[0], pred_maps)
    else:
        mapping = [as_dict(*m, [p]) for m, p in zip(mappings, pred_maps, strict=True)]
    return result, mapping


def _matched_overlap_score(
    kind,
    y_true,
    y_pred,
    *,
    labels,
    average,
    pos_label,
    ignore_index,
    zero_division,
    aggregate,
    matching,
):
    true_maps, pred_maps, keeps, _, _ = _check_label_maps(y_true, y_pred, ignore_index)
    matched, _, classes, _ = _match(
        true_maps,
        pred_maps,
        keeps,
        labels=labels,
        ignore_index=_check_ignore_index(ignore_index),
        matching=matching,
        fill_value=None,
    )
    pairs = _kept_pixels(true_maps, matched, keeps)
    # Scored over the true classes (labels=None means those of y_true): the
    # fill label of unassigned segments is never a class.
    return _overlap_score(
        kind,
        pairs,
        labels=labels,
        default_labels=classes,
        average=average,
        pos_label=pos_label,
        zero_division=zero_division,
        aggregate=aggregate,
    )


_MATCHED_PARAMS = """
    Parameters
    ----------
    y_true : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Ground-truth class maps.
    y_pred : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Predicted segment maps with arbitrary ids, one per map of ``y_true``.
    labels : array-like of int, default=None
        The classes to match and score; ``None`` means the classes present in
        ``y_true`` (the fill label of unassigned segments is never a class).
    average : {'macro', 'micro', 'weighted', 'binary'} or None, default='macro'
        How class scores are averaged, as in :func:`dice_score`. With
        ``'binary'``, ``y_true`` may hold at most two classes.
    pos_label : int, default=1
        The true class scored with ``average='binary'``.
    ignore_index : int, default=None
        Label of unlabelled pixels in ``y_true``; left out of matching and
        scoring.
    zero_division : {1.0, 0.0, np.nan, 'warn'}, default=1.0
        Score of a class absent from both sides when it is scored, as in
        :func:`dice_score`.
    aggregate : {'pooled', 'per_image'}, default='pooled'
        Pooled counts or the mean of image scores, as in :func:`dice_score`.
    matching : {'pooled', 'per_image'}, default='pooled'
        One assignment for the whole batch (segment ids mean the same in
        every image) or one per image; see :func:`match_labels`.
"""


def matched_dice_score(
    y_true,
    y_pred,
    *,
    labels=None,
    average="macro",
    pos_label=1,
    ignore_index=None,
    zero_division=1.0,
    aggregate="pooled",
    matching="pooled",
):
    """Dice score after matching predicted segments to classes.

    The segments of ``y_pred`` are mapped to true classes by
    :func:`match_labels` (Hungarian one-to-one assignment; unassigned
    segments count as wrong), then :func:`dice_score` is computed over the
    true classes. When the ids of ``y_pred`` already are the right classes,
    the result equals :func:`dice_score` with ``labels`` the classes of
    ``y_true``.
    {params}
    Returns
    -------
    score : float or ndarray of shape (n_classes,)
        The averaged score, or one score per class for ``average=None``.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.metrics import matched_dice_score
    >>> y_true = np.array([[0, 0, 1, 1]])
    >>> matched_dice_score(y_true, np.array([[4, 4, 2, 2]]))
    1.0
    """
    return _matched_overlap_score(
        "dice",
        y_true,
        y_pred,
        labels=labels,
        average=average,
        pos_label=pos_label,
        ignore_index=ignore_index,
        zero_division=zero_division,
        aggregate=aggregate,
        matching=matching,
    )


def matched_iou_score(
    y_true,
    y_pred,
    *,
    labels=None,
    average="macro",
    pos_label=1,
    ignore_index=None,
    zero_division=1.0,
    aggregate="pooled",
    matching="pooled",
):
    """IoU (Jaccard) after matching predicted segments to classes.

    The segments of ``y_pred`` are mapped to true classes by
    :func:`match_labels` (Hungarian one-to-one assignment; unassigned
    segments count as wrong), then :func:`iou_score` is computed over the
    true classes. ``average='macro'`` is the matched mIoU reported for
    unsupervised segmentation.
    {params}
    Returns
    -------
    score : float or ndarray of shape (n_classes,)
        The averaged score, or one score per class for ``average=None``.

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.metrics import matched_iou_score
    >>> y_true = np.array([[0, 0, 1, 1]])
    >>> matched_iou_score(y_true, np.array([[4, 4, 2, 3]]))
    0.75
    """
    return _matched_overlap_score(
        "iou",
        y_true,
        y_pred,
        labels=labels,
        average=average,
        pos_label=pos_label,
        ignore_index=ignore_index,
        zero_division=zero_division,
        aggregate=aggregate,
        matching=matching,
    )


matched_dice_score.__doc__ = matched_dice_score.__doc__.replace(
    "{params}", _MATCHED_PARAMS
)
matched_iou_score.__doc__ = matched_iou_score.__doc__.replace(
    "{params}", _MATCHED_PARAMS
)


def matched_pixel_accuracy(
    y_true,
    y_pred,
    *,
    labels=None,
    ignore_index=None,
    aggregate="pooled",
    matching="pooled",
):
    """Pixel accuracy after matching predicted segments to classes.

    The Hungarian assignment of :func:`match_labels` maximises exactly this
    quantity, so it is the best accuracy any one-to-one relabelling of
    ``y_pred`` can reach (the "unsupervised accuracy" of clustering papers).

    Parameters
    ----------
    y_true : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Ground-truth class maps.
    y_pred : array-like of shape (H, W) or (N, H, W), or list of (H, W) arrays
        Predicted segment maps with arbitrary ids, one per map of ``y_true``.
    labels : array-like of int, default=None
        Classes segments may be assigned to; ``None`` means those of
        ``y_true``.
    ignore_index : int, default=None
        Label of unlabelled pixels in ``y_true``; left out.
    aggregate : {'pooled', 'per_image'}, default='pooled'
        Accuracy over all pixels, or the mean of image accuracies.
    matching : {'pooled', 'per_image'}, default='pooled'
        One assignment for the batch or one per image; see
        :func:`match_labels`.

    Returns
    -------
    accuracy : float
        In ``[0, 1]``.
    """
    true_maps, pred_maps, keeps, _, _ = _check_label_maps(y_true, y_pred, ignore_index)
    matched, _, _, _ = _match(
        true_maps,
        pred_maps,
        keeps,
        labels=labels,
        ignore_index=_check_ignore_index(ignore_index),
        matching=matching,
        fill_value=None,
    )
    return _accuracy(_kept_pixels(true_maps, matched, keeps), aggregate)


# ------------------------------------------------------------------- scorers
# pos_label=None keeps scikit-learn from checking pos_label against the
# classes_ of classifier-like segmenters (whose labels may be {0, 255}); with
# average='macro' the functions do not use it.
dice_scorer = make_scorer(dice_score, average="macro", pos_label=None)
iou_scorer = make_scorer(iou_score, average="macro", pos_label=None)
matched_dice_scorer = make_scorer(matched_dice_score, average="macro", pos_label=None)
matched_iou_scorer = make_scorer(matched_iou_score, average="macro", pos_label=None)
pixel_accuracy_scorer = make_scorer(pixel_accuracy)
matched_pixel_accuracy_scorer = make_scorer(matched_pixel_accuracy)
