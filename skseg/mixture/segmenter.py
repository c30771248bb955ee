"""Segment images, or reduce their colours, with a Gaussian mixture over pixels."""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .. import _core
from .._validation import (
    check_images,
    check_positive_int,
    check_real,
    float_to_image_dtype,
    format_images,
    format_label_maps,
    image_to_float,
)
from ..color import COLOR_SPACES, convert_from_rgb, convert_to_rgb
from . import _dask
from ._kmeans import ColorMixture
from .gaussian_mixture import _normalised_sample_weight, _resolve_n_threads

# The candidate numbers of components of k="auto".
_AUTO_K = range(2, 17)
_CRITERIA = ("bic", "aic")


class GMMImageSegmenter(BaseEstimator):
    """Image segmentation by a Gaussian mixture over pixel colours.

    Every pixel is a point in colour space (optionally with its position); a
    ``k``-component Gaussian mixture is fitted by EM in the compiled core
    (:class:`skseg.GaussianMixture`) and each pixel takes its most likely
    component. Fitting on a batch learns one colour model for all its pixels.

    Identical pixels are collapsed into one point weighted by its count before
    fitting. The result is the same mixture as over all pixels (EM only ever
    sums over points), at the cost of the distinct colours instead of the
    pixels: ``china.jpg`` has 273k pixels but 96k colours. The compiled core
    counts the colours without sorting the pixels and initialises the mixture
    by weighted k-means on them. Prediction evaluates a mixture of fewer than
    48 components at every pixel, which costs less than counting colours; a
    larger one scores each distinct colour once and hands it to its pixels.
    None of this applies with ``spatial_weight > 0``, where every pixel
    differs.

    The number of components can be chosen from the data: with ``k="auto"``,
    a ``(low, high)`` range or a list of candidates, one mixture is fitted per
    candidate and the one with the lowest ``criterion`` (BIC or AIC, over all
    pixels) is kept; ``k_values_`` and ``criterion_values_`` hold the curve.

    Parameters
    ----------
    k : int, "auto", tuple (low, high) or list of int, default=8
        Number of mixture components (segments, or palette colours). "auto"
        tries 2 to 16, a tuple every value from ``low`` to ``high``
        inclusive, a list its values; the chosen number is ``k_``.
    criterion : {"bic", "aic"}, default="bic"
        How a number of components is chosen when ``k`` is not an int: the
        Bayesian or Akaike information criterion of the fitted mixture over
        all pixels (lower is better).
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Covariance structure of the components, as in scikit-learn.
    color_space : {"rgb", "lab", "hsv", "grey"}, default="rgb"
        Feature space of the colours, scaled as :mod:`skseg.color` describes.
        Spaces other than ``"rgb"`` need 3-channel images; ``"rgb"`` takes any
        channel count (grey, RGB, RGBA or multispectral).
    spatial_weight : float, default=0.0
        When positive, each pixel's row and column, divided by the image's
        longer side and multiplied by this weight, are added as two features,
        which favours spatially compact segments. At most 1e6.
    max_iter : int, default=100
        Maximum EM iterations per initialisation.
    tol : float, default=1e-3
        Convergence threshold on the change of the per-pixel lower bound.
    reg_covar : float, default=1e-6
        Added to the covariance diagonals, as in scikit-learn.
    n_init : int, default=1
        Number of initialisations; the best lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, \
            default="kmeans"
        How the mixture is initialised (see :class:`skseg.GaussianMixture`).
        "kmeans" and "k-means++" run in the compiled core over the distinct
        colours; "k-means++" (the seeds alone) fits faster and reaches a
        better, the same or a worse optimum depending on the image
        (benchmarks/README.md).
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, for reproducible results.
    n_jobs : int, default=None
        Threads of the compiled core; None as in :class:`skseg.GaussianMixture`
        (the available cores, within the OpenMP limit and a Dask worker's
        threads). Results are bit-identical for any value.
    verbose : int, default=0
        Verbosity of the EM iterations.

    Attributes
    ----------
    mixture_ : skseg.GaussianMixture
        The fitted mixture over the pixel features (the chosen one when ``k``
        is not an int).
    k_ : int
        Number of components of ``mixture_``.
    k_values_ : ndarray of shape (n_candidates,)
        The numbers of components fitted (``[k]`` for an int ``k``).
    criterion_values_ : ndarray of shape (n_candidates,)
        ``criterion`` of the mixture fitted for each of ``k_values_`` (NaN
        after a Dask fit with ``spatial_weight > 0``, which takes one ``k``
        and skips the extra pass over the data that the criterion needs).
    palette_ : ndarray of shape (k_, n_channels)
        Each component's mean colour, in the scale of the input images (floats;
        ``[0, 1]`` for integer images): what :meth:`recolor` paints.
    n_channels_ : int
        Channels of the images seen in ``fit``.
    n_features_ : int
        Features per pixel given to the mixture.

    Examples
    --------
    >>> from skseg import GMMImageSegmenter
    >>> from skseg.io import load_sample_image
    >>> img = load_sample_image("china")
    >>> seg = GMMImageSegmenter(k=8, random_state=0).fit(img)
    >>> seg.predict(img).shape
    (427, 640)
    >>> GMMImageSegmenter(k=(2, 6), random_state=0).fit(img).k_values_
    array([2, 3, 4, 5, 6])
    """

    def __init__(
        self,
        k=8,
        *,
        criterion="bic",
        covariance_type="full",
        color_space="rgb",
        spatial_weight=0.0,
        max_iter=100,
        tol=1e-3,
        reg_covar=1e-6,
        n_init=1,
        init_params="kmeans",
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.k = k
        self.criterion = criterion
        self.covariance_type = covariance_type
        self.color_space = color_space
        self.spatial_weight = spatial_weight
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(self, X, y=None):
        """Fit one colour model to the pixels of one image or a batch.

        Parameters
        ----------
        X : array-like, list of array-like, Dask array or list of paths
            One image ``(H, W[, C])``, an ``(N, H, W, C)`` batch or a list of
            images (sizes may differ). An ``(N, H, W, C)`` Dask array, or a
            list of image file paths (read on the workers), is fitted on the
            current Dask scheduler (needs ``skseg[dask]``): the distinct
            colours are counted chunk by chunk and merged, which gives the
            in-memory fit exactly; with ``spatial_weight > 0`` the mixture is
            fitted by distributed EM (see :class:`skseg.GaussianMixture`).
        y : ignored
            Present for pipeline compatibility.

        Returns
        -------
        self : GMMImageSegmenter
            The fitted segmenter.
        """
        k_values = self._check_params()
        if _dask.is_dask_collection(X) or _dask.is_path_list(X):
            return _dask.fit_segmenter(self, X, k_values)
        images, _ = check_images(X)
        n_channels = images[0].shape[2]
        self._check_color_space(n_channels)
        dtype = _feature_dtype(images)
        features, weights = self._fit_features(images, dtype)
        return self._fit_mixtures(features, weights, k_values, n_channels)

    def _fit_mixtures(self, features, weights, k_values, n_channels):
        """Fit one mixture per candidate k to in-memory features and keep the
        one with the lowest criterion; returns self."""
        n_rows = features.shape[0]
        if isinstance(self.k, str):  # "auto": only the candidates that fit
            k_values = [k for k in k_values if k <= n_rows] or [n_rows]
        self._check_k_fits(max(k_values), n_rows)
        n_pixels = n_rows if weights is None else weights.sum(dtype=np.float64)
        if weights is not None:
            # Once for all fits (see ColorMixture), in place: the weights are
            # this fit's own colour counts, maybe millions of them.
            weights = weights.astype(features.dtype, copy=False)
            _normalised_sample_weight(weights, out=weights)
        criteria, best = [], None
        for k in k_values:
            mixture = self._mixture(k).fit(features, sample_weight=weights)
            criteria.append(
                _criterion(mixture, features, weights, n_pixels, self.criterion)
            )
            if best is None or criteria[-1] < min(criteria[:-1]):
                best = mixture  # ties keep the fewer components
        return self._set_fitted(best, n_channels, k_values, criteria)

    def _check_k_fits(self, k, n_rows):
        """A mixture of k components needs at least k distinct feature rows."""
        if k > n_rows:
            what = "pixels" if self._n_spatial() else "distinct colours"
            raise ValueError(
                f"k={k} is larger than the number of {what} in X ({n_rows}); "
                f"use k <= {n_rows}"
            )

    def _set_fitted(self, mixture, n_channels, k_values, criteria):
        """Store the chosen mixture and what follows from it; returns self."""
        self.mixture_ = mixture
        self.k_ = mixture.n_components
        self.k_values_ = np.asarray(k_values)
        self.criterion_values_ = np.asarray(criteria, dtype=np.float64)
        self.n_channels_ = n_channels
        self.n_features_ = mixture.n_features_in_
        color_means = mixture.means_[:, : self.n_features_ - self._n_spatial()]
        self.palette_ = convert_to_rgb(color_means, self.color_space)
        return self

    def predict(self, X):
        """Label each pixel with its most likely component.

        Parameters
        ----------
        X : array-like, list of array-like or Dask array
            One image or a batch, with the channel count seen in ``fit``; an
            ``(N, H, W, C)`` Dask array gives a lazy Dask array of labels.

        Returns
        -------
        labels : ndarray of shape (H, W), or (N, H, W) array or list of them
            Component indices in ``0..k_-1``; a batch gives an array when
            ``X`` was an array of equal-size images, else a list.
        """
        if _dask.is_dask_collection(X):
            check_is_fitted(self, "mixture_")
            return _dask.map_images(self, X, "predict")
        return self._apply(X, "predict")

    def predict_proba(self, X):
        """Posterior probability of each component for each pixel.

        Parameters
        ----------
        X : array-like or list of array-like
            One image or a batch.

        Returns
        -------
        proba : ndarray of shape (H, W, k_), or a batch of them
        """
        return self._apply(X, "predict_proba")

    def score_samples(self, X):
        """Log-likelihood of each pixel under the fitted mixture.

        Parameters
        ----------
        X : array-like or list of array-like
            One image or a batch.

        Returns
        -------
        log_likelihood : ndarray of shape (H, W), or a batch of them
        """
        return self._apply(X, "score_samples")

    def fit_predict(self, X, y=None):
        """Fit on ``X`` and return its label maps (see :meth:`predict`)."""
        return self.fit(X).predict(X)

    def score(self, X, y=None):
        """Mean log-likelihood per pixel of ``X`` under the fitted mixture.

        Parameters
        ----------
        X : array-like or list of array-like
            One image or a batch.
        y : ignored

        Returns
        -------
        log_likelihood : float
        """
        check_is_fitted(self, "mixture_")
        images, _ = check_images(X)
        self._check_channels(images)
        features, weights = self._fit_features(images, _feature_dtype(images))
        return self.mixture_.score(features, sample_weight=weights)

    def recolor(self, X):
        """Paint each pixel with its component's mean colour.

        Parameters
        ----------
        X : array-like, list of array-like or Dask array
            One image or a batch; an ``(N, H, W, C)`` Dask array gives a lazy
            Dask array of the same shape.

        Returns
        -------
        images : ndarray or list of ndarray
            Images of the input's shape and dtype (``uint8`` stays ``uint8``),
            every pixel one of the ``k_`` colours of ``palette_``.
        """
        check_is_fitted(self, "mixture_")
        if _dask.is_dask_collection(X):
            return _dask.map_images(self, X, "recolor")
        images, is_batch = check_images(X)

        def paint(features, image_dtype):
            # The k palette colours, not every pixel, in the image dtype.
            palette = float_to_image_dtype(self.palette_, image_dtype)
            return palette[self._evaluate(features, "predict")]

        return format_images(self._per_image(images, paint), is_batch, like=X)

    # -- helpers ---------------------------------------------------------------

    def _check_params(self):
        """Validate the parameters; return the candidate numbers of components."""
        if self.color_space not in COLOR_SPACES:
            raise ValueError(
                f"color_space must be one of {COLOR_SPACES}, got {self.color_space!r}"
            )
        if self.criterion not in _CRITERIA:
            raise ValueError(
                f"criterion must be one of {_CRITERIA}, got {self.criterion!r}"
            )
        # Positions far outweighing colours (or overflowing float32) have no use.
        check_real(self.spatial_weight, "spatial_weight", low=0.0, high=1e6)
        return _k_values(self.k)

    def _mixture(self, k):
        return ColorMixture(
            n_components=k,
            covariance_type=self.covariance_type,
            tol=self.tol,
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            n_init=self.n_init,
            init_params=self.init_params,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )

    def _apply(self, X, name):
        """``mixture_.name`` of every pixel, as label maps like ``X``."""
        check_is_fitted(self, "mixture_")
        images, is_batch = check_images(X)
        out = self._per_image(images, lambda feats, _: self._evaluate(feats, name))
        return format_label_maps(out, is_batch, like=X)

    def _evaluate(self, features, name):
        """``mixture_.name(features)`` for name in predict, predict_proba and
        score_samples, without validating the features again: they are the
        segmenter's own, finite (check_images) and as wide as in fit."""
        dtype = np.result_type(features.dtype, self.mixture_.means_.dtype)
        features = np.ascontiguousarray(features, dtype=dtype)
        which = _EVALUATE_OUTPUTS.index(name)
        flags = {key: key == _EVALUATE_FLAGS[which] for key in _EVALUATE_FLAGS}
        return self.mixture_._evaluate(features, **flags)[which]

    def _check_color_space(self, n_channels):
        if self.color_space != "rgb" and n_channels != 3:
            raise ValueError(
                f"color_space={self.color_space!r} needs RGB images (3 channels), "
                f"got {n_channels}; use color_space='rgb'"
            )

    def _check_channels(self, images):
        if images[0].shape[2] != self.n_channels_:
            raise ValueError(
                f"X has {images[0].shape[2]} channels but the segmenter was "
                f"fitted on {self.n_channels_}"
            )

    def _n_spatial(self):
        return 2 if self.spatial_weight > 0 else 0

    def _fit_features(self, images, dtype):
        """Features of all pixels of all images, collapsed to distinct rows
        with counts as weights when there are no spatial features."""
        if self._n_spatial():
            feats = [self._pixel_features(im, dtype) for im in images]
            return np.concatenate(feats) if len(feats) > 1 else feats[0], None
        pixels = [im.reshape(-1, im.shape[2]) for im in images]
        if len({im.dtype for im in images}) > 1:
            # Each image's own scale (uint8 / 255, uint16 / 65535) before they
            # share an array, as predict scales them.
            pixels = [image_to_float(p, dtype) for p in pixels]
        pixels = np.concatenate(pixels) if len(pixels) > 1 else pixels[0]
        colors, counts, _ = _distinct_colors(pixels, self.n_jobs)
        features = self._color_features(colors, dtype)
        del colors  # memory: a random-colour image has millions of colours
        return features, counts.astype(dtype)

    def _pixel_features(self, image, dtype):
        """Features of every pixel of one image: its colour, and its position
        when spatial_weight > 0."""
        colors = self._color_features(image.reshape(-1, image.shape[2]), dtype)
        if not self._n_spatial():
            return colors
        height, width = image.shape[:2]
        rows, cols = np.indices((height, width), dtype=dtype).reshape(2, -1)
        scale = dtype.type(self.spatial_weight / max(height, width))
        coords = np.column_stack([rows, cols]) * scale
        return np.hstack([colors, coords])

    def _color_features(self, pixels, dtype):
        return convert_from_rgb(image_to_float(pixels, dtype), self.color_space)

    def _per_image(self, images, compute):
        """``compute(features, image_dtype)`` for every pixel of every image,
        shaped to the image's height and width.

        For mixtures of at least ``_COLOR_INDEX_MIN_K`` components without
        spatial features it runs once per distinct colour of the image and
        each pixel takes its colour's row through the colour index; smaller
        mixtures cost less to evaluate at every pixel than counting colours.
        """
        self._check_channels(images)
        dtype = _feature_dtype(images)
        through_index = not self._n_spatial() and self.k_ >= _COLOR_INDEX_MIN_K
        out = []
        for im in images:
            if not through_index:
                values = compute(self._pixel_features(im, dtype), im.dtype)
            else:
                pixels = im.reshape(-1, im.shape[2])
                colors, _, index = _distinct_colors(
                    pixels, self.n_jobs, return_index=True
                )
                values = compute(self._color_features(colors, dtype), im.dtype)
                values = _core.take_rows(
                    np.ascontiguousarray(values), index, _resolve_n_threads(self.n_jobs)
                )
            out.append(values.reshape(*im.shape[:2], *values.shape[1:]))
        return out


# From this many components on, prediction evaluates each distinct colour once
# and gathers by the colour index; below it, evaluating every pixel costs less
# than counting the colours. Measured on china.jpg (2 threads, full
# covariances, median of 21 calls), every pixel against through the index:
# predict at k=32 1.9 against 2.9 ms, at k=48 2.3 against 3.1 ms;
# predict_proba, which writes k values a pixel, at k=32 10.2 against 10.1 ms,
# at k=64 32 against 25 ms.
_COLOR_INDEX_MIN_K = 48

# What GaussianMixture._evaluate returns, in order, and the flag of each.
_EVALUATE_OUTPUTS = ("predict_proba", "score_samples", "predict")
_EVALUATE_FLAGS = ("resp", "log_norm", "labels")


def _k_values(k):
    """The candidate numbers of components that ``k`` stands for."""
    if isinstance(k, str):
        if k != "auto":
            raise ValueError(f"k must be an int, 'auto', a tuple or a list, got {k!r}")
        return list(_AUTO_K)
    if isinstance(k, tuple):
        if len(k) != 2:
            raise ValueError(f"a tuple k must be (low, high), got {k!r}")
        low, high = (check_positive_int(v, "k") for v in k)
        if low > high:
            raise ValueError(f"k=(low, high) needs low <= high, got {k!r}")
        return list(range(low, high + 1))
    if isinstance(k, (list, range, np.ndarray)):
        values = sorted({check_positive_int(v, "k") for v in k})
        if not values:
            raise ValueError("k is an empty list")
        return values
    return [check_positive_int(k, "k")]


def _criterion(mixture, features, weights, n_pixels, criterion):
    """BIC or AIC of a mixture fitted on features weighted by (any multiple
    of) their pixel counts, as ``mixture.bic(pixels)`` or
    ``mixture.aic(pixels)`` over all ``n_pixels`` pixels."""
    log_likelihood = mixture.score(features, sample_weight=weights) * n_pixels
    penalty = np.log(n_pixels) if criterion == "bic" else 2.0
    return -2.0 * log_likelihood + penalty * mixture._n_parameters()


def _feature_dtype(images):
    """float64 when any image is float64, else float32 (uint8, uint16, float32
    have at most 16 significant bits)."""
    wide = any(im.dtype == np.float64 for im in images)
    return np.dtype(np.float64 if wide else np.float32)


def _distinct_colors(pixels, n_jobs, *, return_index=False):
    """``np.unique(pixels, axis=0, return_counts=True)`` from the core.

    Returns the distinct rows of an ``(n, c)`` array in lexicographic order,
    their counts and, with ``return_index``, each pixel's row (the inverse;
    int32 when it fits), else None. uint8 and uint16 pixels are counted
    without sorting (see cpp/include/skseg/color_count.hpp).
    """
    pixels = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("="))
    return _core.count_colors(pixels, return_index, _resolve_n_threads(n_jobs))
