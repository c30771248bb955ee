"""Colour-space conversions between RGB and the feature spaces segmenters use.

All functions take and return float arrays whose last axis is the channel axis,
with RGB in ``[0, 1]`` (sRGB, D65 white). The feature spaces are scaled so that
every channel spans roughly a unit range, which keeps k-means initialisation
and ``spatial_weight`` comparable across spaces:

* ``"rgb"``: unchanged.
* ``"lab"``: CIE L*a*b* divided by 100 (L in ``[0, 1]``, a and b in about
  ``[-1, 1]``), the same L*a*b* as ``skimage.color.rgb2lab`` up to that factor.
* ``"hsv"``: hue, saturation and value in ``[0, 1]``, as ``matplotlib`` and
  ``skimage.color.rgb2hsv`` define them.
* ``"grey"``: luma ``0.2125 R + 0.7154 G + 0.0721 B`` (ITU-R BT.709, as
  scikit-image), one channel.
"""

import numpy as np

from ._validation import float_to_image_dtype, image_to_float

COLOR_SPACES = ("rgb", "lab", "hsv", "grey")

# sRGB (linear) to CIE XYZ for the D65 white point, and the white itself.
_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_GREY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])
_LAB_SCALE = 100.0


def convert_from_rgb(rgb, color_space):
    """Convert RGB values in ``[0, 1]`` to ``color_space``.

    Parameters
    ----------
    rgb : ndarray of shape (..., 3)
        Float RGB values.
    color_space : {"rgb", "lab", "hsv", "grey"}
        Target space, scaled as the module docstring says.

    Returns
    -------
    features : ndarray of shape (..., 3) or (..., 1) for "grey"
        Same float dtype as ``rgb``.
    """
    _check_space(color_space)
    if color_space == "rgb":
        return rgb
    _check_rgb(rgb)
    if color_space == "grey":
        return (rgb @ _GREY_WEIGHTS.astype(rgb.dtype))[..., np.newaxis]
    if color_space == "hsv":
        return _rgb_to_hsv(rgb)
    return _rgb_to_lab(rgb)


def convert_to_rgb(features, color_space):
    """Inverse of :func:`convert_from_rgb` (``"grey"`` gives equal R, G, B)."""
    _check_space(color_space)
    if color_space == "rgb":
        return features
    if color_space == "grey":
        return np.repeat(features, 3, axis=-1)
    if color_space == "hsv":
        return _hsv_to_rgb(features)
    return _lab_to_rgb(features)


def mean_color_image(image, labels):
    """Paint each segment with the mean colour of the image over it.

    Parameters
    ----------
    image : ndarray of shape (H, W, C)
        A validated image (see :func:`skseg._validation.check_image`).
    labels : ndarray of shape (H, W)
        Non-negative segment labels.

    Returns
    -------
    painted : ndarray of shape (H, W, C)
        In the image's dtype (integer images are rounded).
    """
    values = image_to_float(image, np.float64).reshape(-1, image.shape[2])
    flat = labels.reshape(-1)
    counts = np.bincount(flat).astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=v) for v in values.T], axis=1)
    means = sums / np.maximum(counts, 1)[:, np.newaxis]
    return float_to_image_dtype(means[flat].reshape(image.shape), image.dtype)


def _check_space(color_space):
    if color_space not in COLOR_SPACES:
        raise ValueError(
            f"color_space must be one of {COLOR_SPACES}, got {color_space!r}"
        )


def _check_rgb(rgb):
    if rgb.shape[-1] != 3:
        raise ValueError(
            f"colour conversion needs 3 RGB channels, got {rgb.shape[-1]}; "
            "use color_space='rgb' for grey or multispectral images"
        )


def _rgb_to_lab(rgb):
    dtype = rgb.dtype
    rgb = rgb.astype(np.float64)
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ _RGB_TO_XYZ.T / _D65_WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lab = np.stack(
        [
            116.0 * f[..., 1] - 16.0,
            500.0 * (f[..., 0] - f[..., 1]),
            200.0 * (f[..., 1] - f[..., 2]),
        ],
        axis=-1,
    )
    return (lab / _LAB_SCALE).astype(dtype)


def _lab_to_rgb(lab):
    dtype = lab.dtype
    lab = lab.astype(np.float64) * _LAB_SCALE
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / 7.787) * _D65_WHITE
    linear = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, None)
    rgb = np.where(
        linear > 0.0031308, 1.055 * linear ** (1 / 2.4) - 0.055, 12.92 * linear
    )
    return np.clip(rgb, 0.0, 1.0).astype(dtype)


def _rgb_to_hsv(rgb):
    value = rgb.max(axis=-1)
    delta = value - rgb.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        saturation = np.where(value > 0, delta / value, 0.0)
        r, g, b = (rgb[..., i] for i in range(3))
        hue = np.select(
            [delta == 0, value == r, value == g],
            [0.0, ((g - b) / delta) % 6.0, (b - r) / delta + 2.0],
            (r - g) / delta + 4.0,
        )
    hsv = np.stack([hue / 6.0, saturation, value], axis=-1)
    return hsv.astype(rgb.dtype)


def _hsv_to_rgb(hsv):
    h6 = (hsv[..., 0] % 1.0) * 6.0
    s, v = hsv[..., 1], hsv[..., 2]
    sector = np.floor(h6).astype(int) % 6
    frac = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - s * frac), v * (1 - s * (1 - frac))
    # Which of (v, t, p, q) goes to R, G and B in each of the six hue sectors.
    choices = np.stack([v, q, p, p, t, v, t, v, v, q, p, p, p, p, t, v, v, q])
    idx = sector[np.newaxis] + np.array([0, 6, 12]).reshape(3, *([1] * sector.ndim))
    rgb = np.take_along_axis(choices, idx, axis=0)
    return np.moveaxis(rgb, 0, -1).astype(hsv.dtype)
