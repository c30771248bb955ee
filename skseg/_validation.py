"""Image and mask input conventions shared by every skseg estimator.

Images
------
* One image is ``(H, W)`` (grey) or ``(H, W, C)`` with ``C`` from 1 to 4. A 3-D
  array is always one image, never a batch of grey images.
* A batch is an ``(N, H, W, C)`` array or a list (or tuple) of images, whose
  sizes may differ but whose channel counts must agree.
* Accepted dtypes: ``uint8`` (0..255), ``uint16`` (0..65535), ``float16``,
  ``float32`` and ``float64``. Estimators work on floats in ``[0, 1]``:
  :func:`image_to_float` divides integer images by their dtype's maximum and
  leaves float images as they are. Other integer dtypes, booleans, complex and
  object arrays are rejected, because their intensity scale is ambiguous.
* Alpha: every channel of an array is a feature. A 4-channel array may be RGB
  plus near-infrared as well as RGBA, so skseg never guesses; alpha is decided
  when an image is read (:func:`skseg.io.read_image` drops it by default), or
  by slicing ``image[..., :3]`` yourself.

Masks
-----
* A mask is an ``(H, W)`` integer or boolean class map with the height and width
  of its image; a batch of masks is an ``(N, H, W)`` array or a list.
* Labels must be non-negative, except the estimator's ``ignore_index``.
  Float masks are accepted only when every value is a whole number.
"""

import math
import numbers

import numpy as np

_IMAGE_DTYPES = (np.uint8, np.uint16, np.float16, np.float32, np.float64)
MAX_CHANNELS = 4


def check_image(image, *, name="image"):
    """Validate one image and return it as an ``(H, W, C)`` array.

    Parameters
    ----------
    image : array-like of shape (H, W) or (H, W, C)
        The image. See the module docstring for the accepted dtypes.
    name : str, default="image"
        How the image is called in error messages.

    Returns
    -------
    image : ndarray of shape (H, W, C)
        The image in its own dtype (``float16`` becomes ``float32``), with a
        channel axis added to grey images. No copy when none is needed.

    Raises
    ------
    TypeError
        For a dtype other than those accepted.
    ValueError
        For a wrong number of dimensions or channels, an empty image, or NaN or
        infinite values.
    """
    arr = _as_numeric_array(image, name)
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if arr.dtype.type not in _IMAGE_DTYPES:
        raise TypeError(
            f"{name} has dtype {arr.dtype}; expected uint8, uint16 or a float "
            "dtype (other integer types have no agreed intensity range: "
            "convert to float in [0, 1] or to uint8)"
        )
    if arr.ndim == 2:
        arr = arr[:, :, np.newaxis]
    elif arr.ndim != 3:
        raise ValueError(
            f"{name} has {arr.ndim} dimensions with shape {arr.shape}; expected "
            "(H, W) or (H, W, C) for one image"
        )
    height, width, channels = arr.shape
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(
            f"{name} has shape {arr.shape}: {channels} channels, expected 1 to "
            f"{MAX_CHANNELS}. A batch of images is an (N, H, W, C) array or a list"
        )
    if height == 0 or width == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_images(images, *, name="X"):
    """Validate one image or a batch and return a list of ``(H, W, C)`` arrays.

    Parameters
    ----------
    images : array-like or list of array-like
        One image (2-D or 3-D array), an ``(N, H, W, C)`` array, or a list or
        tuple of images.
    name : str, default="X"
        How the input is called in error messages.

    Returns
    -------
    images : list of ndarray of shape (H, W, C)
        The validated images, as :func:`check_image` returns them.
    is_batch : bool
        False when a single image was given. Estimators use it to return one
        label map for one image (see :func:`format_label_maps`).
    """
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError(f"{name} is an empty list of images")
        out = [check_image(im, name=f"{name}[{i}]") for i, im in enumerate(images)]
        is_batch = True
    else:
        arr = _as_numeric_array(images, name)
        if arr.ndim in (2, 3):
            return [check_image(arr, name=name)], False
        if arr.ndim != 4:
            raise ValueError(
                f"{name} has {arr.ndim} dimensions with shape {arr.shape}; "
                "expected one image (H, W) or (H, W, C), or a batch (N, H, W, C)"
            )
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is an empty batch: shape {arr.shape}")
        out = [check_image(im, name=f"{name}[{i}]") for i, im in enumerate(arr)]
        is_batch = True
    channels = {im.shape[2] for im in out}
    if len(channels) > 1:
        raise ValueError(
            f"the images in {name} have different channel counts {sorted(channels)}"
        )
    return out, is_batch


def image_to_float(image, dtype=None):
    """Return an image as floats in ``[0, 1]`` for integer inputs.

    ``uint8`` and ``uint16`` images are divided by 255 and 65535; float images
    keep their values. The result is ``float32`` for integer inputs unless
    ``dtype`` says otherwise, and keeps a float input's dtype.
    """
    if image.dtype.kind in "ui":
        scale = np.iinfo(image.dtype).max
        return image.astype(dtype or np.float32) / np.float32(scale)
    return image.astype(dtype or image.dtype, copy=False)


def float_to_image_dtype(values, dtype):
    """Convert floats in the image scale back to ``dtype``, the inverse of
    :func:`image_to_float` (integer outputs are rounded and clipped)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        scale = np.iinfo(dtype).max
        return np.clip(np.rint(values * scale), 0, scale).astype(dtype)
    return values.astype(dtype)


def check_mask(mask, *, image_shape=None, ignore_index=None, name="mask"):
    """Validate one mask and return it as an ``(H, W)`` ``int64`` array.

    Parameters
    ----------
    mask : array-like of shape (H, W)
        Class indices (integers or booleans; floats only when whole numbers).
    image_shape : tuple, default=None
        Shape of the mask's image; its first two entries must equal the mask's.
    ignore_index : int, default=None
        A label that marks unlabelled pixels; it may be negative.
    name : str, default="mask"
        How the mask is called in error messages.
    """
    arr = _as_numeric_array(mask, name)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} has {arr.ndim} dimensions with shape {arr.shape}; expected an "
            "(H, W) map of class labels"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{name} has non-integer values; expected class labels")
    elif arr.dtype.kind not in "uib":
        raise TypeError(f"{name} has dtype {arr.dtype}; expected integer labels")
    arr = labels_to_int64(arr, name)
    if image_shape is not None and arr.shape != tuple(image_shape[:2]):
        raise ValueError(
            f"{name} has shape {arr.shape} but its image is "
            f"{tuple(image_shape[:2])} (height, width)"
        )
    negative = arr < 0
    if ignore_index is not None:
        negative &= arr != ignore_index
    if negative.any():
        raise ValueError(
            f"{name} has negative labels (for example {int(arr[negative][0])}); "
            "labels must be >= 0, or equal to ignore_index"
        )
    return arr


def labels_to_int64(arr, name):
    """Integer, boolean or whole-float labels as ``int64``; a ValueError for
    values outside the int64 range (uint64 labels >= 2**63 would otherwise
    wrap around to negative numbers)."""
    if arr.size and arr.dtype.kind in "uf":
        high, low = arr.max(), arr.min()
        if arr.dtype.kind == "u":  # compared as integers: 2**63 - 1 is fine
            bad = int(high) > np.iinfo(np.int64).max
        else:
            bad = high >= 2.0**63 or low < -(2.0**63)
        if bad:
            raise ValueError(
                f"{name} has labels beyond the int64 range (for example "
                f"{high if high > 0 else low}); class labels must lie in "
                "[-2**63, 2**63)"
            )
    return arr.astype(np.int64, copy=False)


def check_masks(masks, images, *, ignore_index=None, name="y"):
    """Validate the masks of a list of images (as :func:`check_images` returns).

    ``masks`` is one mask when there is one image, else an ``(N, H, W)`` array
    or a list with one mask per image. Returns a list of ``int64`` masks.
    """
    if masks is None:
        raise ValueError(f"{name} is required: one mask per image")
    if isinstance(masks, (list, tuple)):
        mask_list = list(masks)
    else:
        arr = _as_numeric_array(masks, name)
        mask_list = [arr] if arr.ndim == 2 else list(arr)
    if len(mask_list) != len(images):
        raise ValueError(f"{name} has {len(mask_list)} masks for {len(images)} images")
    return [
        check_mask(
            m, image_shape=im.shape, ignore_index=ignore_index, name=f"{name}[{i}]"
        )
        for i, (m, im) in enumerate(zip(mask_list, images, strict=True))
    ]


def format_label_maps(label_maps, is_batch, like=None):
    """Shape per-image outputs the way the input came in.

    One image gives one array; a batch gives a stacked ``(N, ...)`` array when
    every output has the same shape and the input ``like`` was an array, else a
    list.
    """
    if not is_batch:
        return label_maps[0]
    same_shape = len({m.shape for m in label_maps}) == 1
    if same_shape and not isinstance(like, (list, tuple)):
        return np.stack(label_maps)
    return list(label_maps)


def format_images(images, is_batch, like):
    """Shape per-image ``(H, W, C)`` image outputs the way the input ``like``
    came in: as :func:`format_label_maps`, and grey images given as ``(H, W)``
    come back as ``(H, W)``."""
    inputs = list(like) if is_batch else [like]
    images = [
        im[..., 0] if np.ndim(x) == 2 else im
        for im, x in zip(images, inputs, strict=True)
    ]
    return format_label_maps(images, is_batch, like=like)


def check_positive_int(value, name, *, minimum=1):
    """Check that a parameter is an integer >= ``minimum`` (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_real(value, name, *, low=None, high=None, low_open=False, high_open=False):
    """Check that a parameter is a finite real number within bounds.

    Parameters
    ----------
    value : object
        The parameter's value; booleans are not numbers here.
    name : str
        The parameter's name, for the message.
    low, high : float, default=None
        Bounds; None leaves that side open.
    low_open, high_open : bool, default=False
        Whether the bound itself is excluded.

    Returns
    -------
    value : float
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    bad = not math.isfinite(value)
    bad |= low is not None and (value <= low if low_open else value < low)
    bad |= high is not None and (value >= high if high_open else value > high)
    if bad:
        lower = "" if low is None else f"{'>' if low_open else '>='} {low}"
        upper = "" if high is None else f"{'<' if high_open else '<='} {high}"
        bounds = " and ".join(b for b in (lower, upper) if b)
        raise ValueError(f"{name} must be a finite number {bounds}, got {value!r}")
    return float(value)


def _as_numeric_array(value, name):
    if value is None:
        raise TypeError(f"{name} is None; expected an array")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists and the like
        raise ValueError(f"{name} cannot be read as an array: {exc}") from None
    if arr.dtype == object:
        raise TypeError(
            f"{name} is an object array (ragged or non-numeric content); "
            "expected numbers, or a list of arrays for images of different sizes"
        )
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} has non-numeric dtype {arr.dtype}")
    return arr
