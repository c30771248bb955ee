"""Segment images, or reduce their colours, with a Gaussian mixture over pixels."""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

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
from .gaussian_mixture import GaussianMixture


class GMMImageSegmenter(BaseEstimator):
    """Image segmentation by a Gaussian mixture over pixel colours.

    Every pixel is a point in colour space (optionally with its position); a
    ``k``-component Gaussian mixture is fitted by EM in the compiled core
    (:class:`skseg.GaussianMixture`) and each pixel takes its most likely
    component. Fitting on a batch learns one colour model for all its pixels.

    Identical pixels are collapsed into one point weighted by its count before
    fitting and predicting. The result is the same mixture as over all pixels
    (EM only ever sums over points), at the cost of the distinct colours
    instead of the pixels: ``china.jpg`` has 273k pixels but 96k colours. This
    does not apply with ``spatial_weight > 0``, where every pixel differs.

    Parameters
    ----------
    k : int, default=8
        Number of mixture components (segments, or palette colours).
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
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, for reproducible results.
    n_jobs : int, default=None
        Threads of the compiled core; None as in :class:`skseg.GaussianMixture`
        (the available cores, within the OpenMP limit and a Dask worker's
        threads). Results do not depend on it.
    verbose : int, default=0
        Verbosity of the EM iterations.

    Attributes
    ----------
    mixture_ : skseg.GaussianMixture
        The fitted mixture over the pixel features.
    palette_ : ndarray of shape (k, n_channels)
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
    """

    def __init__(
        self,
        k=8,
        *,
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
        self._check_params()
        if _dask.is_dask_collection(X) or _dask.is_path_list(X):
            return _dask.fit_segmenter(self, X)
        images, _ = check_images(X)
        n_channels = images[0].shape[2]
        self._check_color_space(n_channels)
        dtype = _feature_dtype(images)
        features, weights = self._fit_features(images, dtype)
        self._check_k(features.shape[0])
        mixture = GaussianMixture(**self._mixture_params())
        mixture.fit(features, sample_weight=weights)
        return self._set_fitted(mixture, n_channels)

    def predict(self, X):
        """Label each pixel with its most likely component.

        Parameters
        ----------
        X : array-like, list of array-like or Dask array
            One image or a batch, with the channel count seen in ``fit``. An
            ``(N, H, W, C)`` Dask array gives a lazy ``(N, H, W)`` Dask array,
            computed chunk by chunk where the chunks live.

        Returns
        -------
        labels : ndarray of shape (H, W), or (N, H, W) array or list of them
            Component indices in ``0..k-1``; a batch gives an array when ``X``
            was an array of equal-size images, else a list.
        """
        if _dask.is_dask_collection(X):
            check_is_fitted(self, "mixture_")
            return _dask.map_images(self, X, "predict")
        return self._per_image(X, "predict")

    def predict_proba(self, X):
        """Posterior probability of each component for each pixel.

        Parameters
        ----------
        X : array-like or list of array-like
            One image or a batch.

        Returns
        -------
        proba : ndarray of shape (H, W, k), or a batch of them
        """
        return self._per_image(X, "predict_proba")

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
            every pixel one of the ``k`` colours of ``palette_``.
        """
        check_is_fitted(self, "mixture_")
        if _dask.is_dask_collection(X):
            return _dask.map_images(self, X, "recolor")
        images, is_batch = check_images(X)
        labels = self.predict(images)
        # Convert the k palette colours, not every pixel, to the image dtype.
        out = [
            float_to_image_dtype(self.palette_, im.dtype)[lab]
            for im, lab in zip(images, labels, strict=True)
        ]
        return format_images(out, is_batch, like=X)

    # -- helpers ---------------------------------------------------------------

    def _check_params(self):
        check_positive_int(self.k, "k")
        if self.color_space not in COLOR_SPACES:
            raise ValueError(
                f"color_space must be one of {COLOR_SPACES}, got {self.color_space!r}"
            )
        # Positions far outweighing colours (or overflowing float32) have no use.
        check_real(self.spatial_weight, "spatial_weight", low=0.0, high=1e6)

    def _check_color_space(self, n_channels):
        if self.color_space != "rgb" and n_channels != 3:
            raise ValueError(
                f"color_space={self.color_space!r} needs RGB images (3 channels), "
                f"got {n_channels}; use color_space='rgb'"
            )

    def _check_k(self, n_rows):
        if n_rows < self.k:
            what = "pixels" if self._n_spatial() else "distinct colours"
            raise ValueError(
                f"k={self.k} is larger than the number of {what} in X "
                f"({n_rows}); use k <= {n_rows}"
            )

    def _mixture_params(self):
        """Parameters of the GaussianMixture that ``fit`` trains."""
        return dict(
            n_components=self.k,
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

    def _set_fitted(self, mixture, n_channels):
        """Store the fitted ``mixture`` and what follows from it; returns self."""
        self.mixture_ = mixture
        self.n_channels_ = n_channels
        self.n_features_ = mixture.n_features_in_
        color_means = mixture.means_[:, : self.n_features_ - self._n_spatial()]
        self.palette_ = convert_to_rgb(color_means, self.color_space)
        return self

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
            feats = np.concatenate([self._features(im, dtype)[0] for im in images])
            return feats, None
        pixels = [im.reshape(-1, im.shape[2]) for im in images]
        if len({im.dtype for im in images}) > 1:
            # Each image's own scale (uint8 / 255, uint16 / 65535) before they
            # share an array, as predict scales them.
            pixels = [image_to_float(p, dtype) for p in pixels]
        pixels = np.concatenate(pixels)
        unique, _, counts = _unique_rows(pixels)
        return self._color_features(unique, dtype), counts.astype(dtype)

    def _features(self, image, dtype):
        """Features of one image's pixels: ``(features, inverse)`` where
        ``features[inverse]`` gives every pixel's row (``inverse`` is None when
        the rows are the pixels themselves)."""
        pixels = image.reshape(-1, image.shape[2])
        if not self._n_spatial():
            unique, inverse, _ = _unique_rows(pixels)
            return self._color_features(unique, dtype), inverse
        height, width = image.shape[:2]
        rows, cols = np.indices((height, width), dtype=dtype).reshape(2, -1)
        scale = dtype.type(self.spatial_weight / max(height, width))
        coords = np.column_stack([rows, cols]) * scale
        return np.hstack([self._color_features(pixels, dtype), coords]), None

    def _color_features(self, pixels, dtype):
        return convert_from_rgb(image_to_float(pixels, dtype), self.color_space)

    def _per_image(self, X, method):
        """Apply the mixture's ``method`` to each image's features and give
        every pixel its row of the result, shaped to the image's height and
        width."""
        check_is_fitted(self, "mixture_")
        compute = getattr(self.mixture_, method)
        images, is_batch = check_images(X)
        self._check_channels(images)
        dtype = _feature_dtype(images)
        out = []
        for im in images:
            features, inverse = self._features(im, dtype)
            values = compute(features)
            if inverse is not None:
                values = values[inverse]
            out.append(values.reshape(*im.shape[:2], *values.shape[1:]))
        return format_label_maps(out, is_batch, like=X)


def _feature_dtype(images):
    """float64 when any image is float64, else float32 (uint8, uint16, float32
    have at most 16 significant bits)."""
    wide = any(im.dtype == np.float64 for im in images)
    return np.dtype(np.float64 if wide else np.float32)


def _unique_rows(pixels):
    """Distinct rows of an ``(n, c)`` array with the inverse map and counts.

    Integer pixels are packed into one 64-bit key per row, which sorts several
    times faster than comparing rows; floats are compared by their bytes.
    """
    n, c = pixels.shape
    bits = pixels.dtype.itemsize * 8
    if pixels.dtype.kind == "u" and bits * c <= 64:
        keys = np.zeros(n, dtype=np.uint64)
        for j in range(c):
            keys |= pixels[:, j].astype(np.uint64) << np.uint64(bits * j)
        _, first, inverse, counts = np.unique(
            keys, return_index=True, return_inverse=True, return_counts=True
        )
        return pixels[first], inverse, counts
    rows = np.ascontiguousarray(pixels)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * c))).ravel()
    _, first, inverse, counts = np.unique(
        keys, return_index=True, return_inverse=True, return_counts=True
    )
    return rows[first], inverse, counts
