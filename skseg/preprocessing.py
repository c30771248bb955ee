"""Per-image transformers that go before a segmenter in a ``Pipeline``.

They keep the image layout: one image in gives one image out, a batch (array or
list) gives a batch of the same kind. They learn nothing in ``fit`` beyond the
channel count, so they are safe inside cross-validation.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._validation import check_images, format_label_maps, image_to_float
from .color import COLOR_SPACES, convert_from_rgb


class _ImageTransformer(TransformerMixin, BaseEstimator):
    """Shared ``fit``/``transform`` plumbing: subclasses define
    ``_check_params``, optionally ``_check_channels``, and ``_transform_one``."""

    def fit(self, X, y=None):
        """Validate the parameters and record the number of channels.

        Parameters
        ----------
        X : array-like or list of array-like
            One image ``(H, W[, C])``, an ``(N, H, W, C)`` batch or a list.
        y : ignored
            Present for pipeline compatibility.

        Returns
        -------
        self : object
        """
        self._check_params()
        images, _ = check_images(X)
        self._check_channels(images[0].shape[2])
        self.n_channels_ = images[0].shape[2]
        return self

    def transform(self, X):
        """Transform each image.

        Parameters
        ----------
        X : array-like or list of array-like
            Images with the channel count seen in ``fit``.

        Returns
        -------
        Xt : ndarray or list of ndarray
            Float images in the same layout as ``X``.
        """
        check_is_fitted(self, "n_channels_")
        images, is_batch = check_images(X)
        if images[0].shape[2] != self.n_channels_:
            raise ValueError(
                f"X has {images[0].shape[2]} channels but {type(self).__name__} "
                f"was fitted on {self.n_channels_}"
            )
        out = [self._transform_one(image_to_float(im)) for im in images]
        return format_label_maps(out, is_batch, like=X)

    def _check_channels(self, n_channels):
        pass


class ColorSpaceTransformer(_ImageTransformer):
    """Convert RGB images to another colour space.

    Parameters
    ----------
    color_space : {"lab", "hsv", "grey", "rgb"}, default="lab"
        Target space, scaled to about unit range per channel as described in
        :mod:`skseg.color`. Integer images are first scaled to ``[0, 1]``.

    Attributes
    ----------
    n_channels_ : int
        Channels of the images seen in ``fit`` (3).

    Examples
    --------
    >>> import numpy as np
    >>> from skseg.preprocessing import ColorSpaceTransformer
    >>> img = np.zeros((4, 5, 3), dtype=np.uint8)
    >>> ColorSpaceTransformer("grey").fit_transform(img).shape
    (4, 5, 1)
    """

    def __init__(self, color_space="lab"):
        self.color_space = color_space

    def _check_params(self):
        if self.color_space not in COLOR_SPACES:
            raise ValueError(
                f"color_space must be one of {COLOR_SPACES}, got {self.color_space!r}"
            )

    def _check_channels(self, n_channels):
        if n_channels != 3:
            raise ValueError(
                f"ColorSpaceTransformer needs RGB images (3 channels), got {n_channels}"
            )

    def _transform_one(self, image):
        return convert_from_rgb(image, self.color_space)


class IntensityScaler(_ImageTransformer):
    """Rescale each image's intensities, channel by channel.

    Parameters
    ----------
    method : {"minmax", "percentile", "standard"}, default="percentile"
        ``"minmax"`` maps each channel's minimum and maximum to 0 and 1;
        ``"percentile"`` maps the ``percentiles`` to 0 and 1 and clips outside
        them (robust to hot pixels, common in microscopy); ``"standard"``
        subtracts the mean and divides by the standard deviation.
    percentiles : tuple of float, default=(1.0, 99.0)
        Lower and upper percentile for ``method="percentile"``.

    Attributes
    ----------
    n_channels_ : int
        Channels of the images seen in ``fit``.

    Notes
    -----
    A constant channel has no range: it maps to 0.
    """

    def __init__(self, method="percentile", percentiles=(1.0, 99.0)):
        self.method = method
        self.percentiles = percentiles

    def _check_params(self):
        methods = ("minmax", "percentile", "standard")
        if self.method not in methods:
            raise ValueError(f"method must be one of {methods}, got {self.method!r}")
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(
                "percentiles must satisfy 0 <= low < high <= 100, "
                f"got {self.percentiles}"
            )

    def _transform_one(self, image):
        if self.method == "standard":
            center = image.mean(axis=(0, 1))
            scale = image.std(axis=(0, 1))
        else:
            if self.method == "minmax":
                low, high = image.min(axis=(0, 1)), image.max(axis=(0, 1))
            else:
                low, high = np.percentile(image, self.percentiles, axis=(0, 1))
            center, scale = low, high - low
        scale = np.where(scale > 0, scale, np.inf).astype(image.dtype)
        out = (image - center.astype(image.dtype)) / scale
        if self.method == "percentile":
            out = np.clip(out, 0.0, 1.0)
        return out
