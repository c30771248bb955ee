"""Read images and masks, write label maps and overlays (Pillow only).

Images come back in the layout of :mod:`skseg._validation`:

* grey images as ``(H, W)``, colour images as ``(H, W, 3)``; with
  ``alpha="keep"``, grey plus alpha as ``(H, W, 2)`` and RGBA as ``(H, W, 4)``;
* ``uint8`` for 8-bit files, ``uint16`` for 16-bit grey files, ``float32`` for
  32-bit float files.

How Pillow's modes map to arrays (:func:`read_image`):

=========================  ===================================================
Pillow mode                array
=========================  ===================================================
``1`` (1-bit)              ``uint8`` grey, 0 and 255
``L``                      ``uint8`` grey
``LA``, ``La``             ``uint8`` grey plus alpha
``P``, ``PA`` (palette)    ``uint8`` RGB, or RGBA when the palette has
                           transparency
``RGB``, ``RGBX``          ``uint8`` RGB
``RGBA``, ``RGBa``         ``uint8`` RGBA (``RGBa`` is un-premultiplied)
``CMYK``, ``YCbCr``,       ``uint8`` RGB, converted by Pillow
``HSV``
``LAB``                    ``uint8`` RGB, converted with ``PIL.ImageCms``
``I;16``, ``I;16L``,       ``uint16`` grey in native byte order (16-bit PNG
``I;16B``, ``I;16N``       and TIFF files)
``I`` (32-bit integer)     ``uint16`` grey when every value is in 0..65535,
                           else a ``ValueError``: wider integers have no agreed
                           intensity range
``F`` (32-bit float)       ``float32`` grey, values as stored (``NaN`` and
                           infinity are rejected)
=========================  ===================================================

Pillow itself reduces 16-bit colour and 16-bit grey-plus-alpha files to
8 bits per channel; only 16-bit grey files keep their full precision.

Alpha follows the rule of :mod:`skseg._validation`: arrays treat every channel
as a feature, so the decision is taken here. ``alpha="drop"`` (the default)
removes it, ``"keep"`` appends it as the last channel, ``"composite"`` blends
the image onto a background colour. A single transparent colour (a PNG
``tRNS`` chunk) counts as alpha.

Decompression bombs: every reader refuses images with more than
``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS`) before decoding
them. skseg never changes Pillow's global ``Image.MAX_IMAGE_PIXELS``; Pillow's
own hard limit (twice that value, the same 179 megapixels by default) therefore
still applies and gives the same ``ValueError`` where it is lower. Raise or disable
``PIL.Image.MAX_IMAGE_PIXELS`` in your program to read larger trusted files.

Errors: a path that does not exist raises ``FileNotFoundError``; a file that
exists but cannot be read as an image (not an image, truncated, corrupt, too
large, unsupported mode) raises ``ValueError``. Both messages name the file.
Only regular files are opened: a FIFO, device or socket is refused with a
``ValueError`` before it is opened, so reading one never blocks.
"""

import numbers
import os
import stat
import struct
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._validation import (
    check_image,
    check_mask,
    check_positive_int,
    float_to_image_dtype,
    image_to_float,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SAMPLE_IMAGES",
    "label_palette",
    "load_sample_image",
    "overlay",
    "read_image",
    "read_mask",
    "write_image",
    "write_label_map",
    "write_overlay",
]

#: Largest image (in pixels, height times width) read by default: Pillow's own
#: hard limit with its default settings (2 x 89.5 megapixels), far above camera
#: and microscope images, far below what a crafted file could ask to allocate.
DEFAULT_MAX_PIXELS = 178_956_970

#: Names accepted by :func:`load_sample_image`.
SAMPLE_IMAGES = ("china", "flower")

_ALPHA_OPTIONS = ("drop", "keep", "composite")
_READ_MODES = (None, "L", "RGB")
# ITU-R 601-2 luma weights, as Pillow uses for its "L" conversion.
_LUMA = np.array([0.299, 0.587, 0.114])
# Palette-PNG label maps store one byte per pixel.
_MAX_PNG_LABEL = 255
# label_palette spreads 24 bits of the label over R, G and B.
_MAX_PALETTE_SIZE = 1 << 24
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_COLOUR_MASK_MODES = ("RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "HSV")


# --------------------------------------------------------------------------
# Opening files safely
# --------------------------------------------------------------------------


def _describe(source):
    """Name a path or file object for error messages."""
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    name = getattr(source, "name", None)
    return repr(name) if isinstance(name, (str, bytes)) else "<file object>"


def _open_regular_file(path, what):
    """Open ``path`` for binary reading, refusing anything but a regular file.

    The type is checked with ``stat`` before opening: opening a FIFO waits for
    a writer, and reading a device may never end. Should the path be swapped
    for a FIFO between the check and the open, ``O_NONBLOCK`` keeps the open
    from waiting and the second check (``fstat``) refuses it.
    """
    name = _describe(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {name} does not exist") from None
    except OSError as exc:
        raise ValueError(f"cannot read {what} file {name}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{what} path {name} is a directory, not a file")
    not_regular = ValueError(
        f"{what} path {name} is not a regular file (a FIFO, device or socket)"
    )
    if not stat.S_ISREG(mode):
        raise not_regular
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise ValueError(f"cannot read {what} file {name}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise not_regular
        if nonblocking:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _load_image(source, *, max_pixels, what):
    """Open, size-check, decode and EXIF-orient an image file.

    Returns a loaded :class:`PIL.Image.Image` that no longer needs the file;
    a file opened here is closed, a file object given by the caller stays open.
    """
    max_pixels = check_positive_int(max_pixels, "max_pixels")
    name = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        with _open_regular_file(source, what) as file:
            return _decode_image(file, name, max_pixels, what)
    if not (hasattr(source, "read") and hasattr(source, "seek")):
        raise TypeError(
            f"expected a path or a binary file object for the {what}, "
            f"got {type(source).__name__}"
        )
    return _decode_image(source, name, max_pixels, what)


def _decode_image(file, name, max_pixels, what):
    """The body of :func:`_load_image` for an open binary file."""
    # Our own max_pixels limit replaces Pillow's warning; the filter is local
    # to this block, and Pillow's global settings stay as the program set them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(file)
        except Image.DecompressionBombError as exc:
            raise ValueError(_bomb_message(name, what, str(exc))) from None
        except UnidentifiedImageError:
            raise ValueError(
                f"{what} file {name} is not an image Pillow can identify"
            ) from None
        except (OSError, SyntaxError, ValueError, struct.error) as exc:
            raise ValueError(f"cannot read {what} file {name}: {exc}") from None
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise ValueError(
                    f"{what} file {name} is {width}x{height} = {width * height} "
                    f"pixels, more than max_pixels={max_pixels} (a possible "
                    "decompression bomb); pass a larger max_pixels for a "
                    "trusted file"
                )
            try:
                image.load()
                oriented = ImageOps.exif_transpose(image)
            except Image.DecompressionBombError as exc:
                raise ValueError(_bomb_message(name, what, str(exc))) from None
            except (OSError, SyntaxError, ValueError, struct.error) as exc:
                raise ValueError(
                    f"cannot decode {what} file {name} (corrupt or truncated?): {exc}"
                ) from None
    return oriented


def _bomb_message(name, what, detail):
    return (
        f"{what} file {name} is larger than Pillow's own limit "
        f"(PIL.Image.MAX_IMAGE_PIXELS={Image.MAX_IMAGE_PIXELS}; {detail}). "
        "skseg does not change that global setting: raise it in your program "
        "for a trusted file"
    )


# --------------------------------------------------------------------------
# read_image
# --------------------------------------------------------------------------


def read_image(
    path,
    *,
    alpha="drop",
    background=(255, 255, 255),
    mode=None,
    max_pixels=DEFAULT_MAX_PIXELS,
):
    """Read an image file into an array that follows skseg's conventions.

    EXIF orientation is applied, so the array is the image as viewers show
    it. Multi-frame files (GIF, TIFF) give their first frame. The module
    docstring lists how each Pillow mode maps to an array.

    Parameters
    ----------
    path : str, path-like or binary file object
        The image file.
    alpha : {"drop", "keep", "composite"}, default="drop"
        What to do with an alpha channel (including a palette's or a PNG's
        transparent colour). ``"drop"`` removes it; ``"keep"`` appends it as
        the last channel (``(H, W, 2)`` grey, ``(H, W, 4)`` RGBA);
        ``"composite"`` blends the image onto ``background``. Images without
        alpha are the same under all three.
    background : int or tuple of 3 ints, default=(255, 255, 255)
        Background colour for ``alpha="composite"``, on the 8-bit scale
        0..255 (scaled for 16-bit images). A colour is reduced to its luma
        for a grey image.
    mode : {None, "L", "RGB"}, default=None
        ``None`` keeps the file's colour layout; ``"L"`` converts to grey
        (ITU-R 601-2 luma, as Pillow does) and ``"RGB"`` to three channels.
        The dtype is kept (a 16-bit grey file read as ``"RGB"`` stays
        ``uint16``). A kept alpha channel follows the colour channels.
    max_pixels : int, default=DEFAULT_MAX_PIXELS
        Refuse images with more pixels than this (decompression bombs).

    Returns
    -------
    image : ndarray of shape (H, W) or (H, W, C)
        ``uint8``, ``uint16`` or ``float32``, as the module docstring says.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file cannot be read as an image, is larger than
        ``max_pixels``, or has an unsupported mode or values; or for invalid
        options.
    """
    if alpha not in _ALPHA_OPTIONS:
        raise ValueError(f"alpha must be one of {_ALPHA_OPTIONS}, got {alpha!r}")
    if mode not in _READ_MODES:
        raise ValueError(f"mode must be one of {_READ_MODES}, got {mode!r}")
    if alpha == "composite":
        _check_background(background)
    name = _describe(path)
    pil_image = _load_image(path, max_pixels=max_pixels, what="image")
    colour, alpha_channel = _image_to_arrays(pil_image, name)

    if alpha == "composite" and alpha_channel is not None:
        colour = _composite(colour, alpha_channel, background)
    if mode == "L" and colour.ndim == 3:
        colour = _round_to(colour @ _LUMA, colour.dtype)
    elif mode == "RGB" and colour.ndim == 2:
        colour = np.repeat(colour[:, :, np.newaxis], 3, axis=2)
    if alpha == "keep" and alpha_channel is not None:
        alpha_channel = alpha_channel.astype(colour.dtype, copy=False)
        if colour.ndim == 2:
            colour = colour[:, :, np.newaxis]
        colour = np.concatenate([colour, alpha_channel[:, :, np.newaxis]], axis=2)
    # Arrays from Pillow are read-only views of its buffer; callers own theirs.
    colour = np.require(colour, requirements=("C", "W"))
    # The same checks every estimator applies, here so the error names the file.
    check_image(colour, name=f"image read from {name}")
    return colour


def _image_to_arrays(image, name):
    """Return ``(colour, alpha)`` arrays for a loaded Pillow image.

    ``colour`` is ``(H, W)`` or ``(H, W, 3)``; ``alpha`` is ``(H, W)`` or None.
    """
    mode = image.mode
    if mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or image.has_transparency_data
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("L", "RGB") and "transparency" in image.info:
        # A PNG tRNS colour: Pillow turns it into a real alpha channel.
        image = image.convert("LA" if mode == "L" else "RGBA")
    elif mode == "La":
        image = image.convert("LA")
    elif mode == "RGBa":
        image = image.convert("RGBA")
    elif mode in ("RGBX", "CMYK", "YCbCr", "HSV"):
        image = image.convert("RGB")
    elif mode == "LAB":
        image = _lab_to_rgb(image, name)

    mode = image.mode
    if mode in ("L", "RGB"):
        return np.asarray(image), None
    if mode in ("LA", "RGBA"):
        arr = np.asarray(image)
        colour = arr[:, :, 0] if mode == "LA" else arr[:, :, :3]
        return colour, arr[:, :, 3 if mode == "RGBA" else 1]
    if mode in _SIXTEEN_BIT_MODES:
        # astype gives native byte order for big-endian I;16B data.
        return np.asarray(image).astype(np.uint16), None
    if mode == "I;16S":
        arr = np.asarray(image)
        if arr.min() < 0:
            raise ValueError(
                f"image file {name} holds signed 16-bit values (minimum "
                f"{int(arr.min())}); only non-negative intensities are supported"
            )
        return arr.astype(np.uint16), None
    if mode == "I":
        arr = np.asarray(image)
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high > np.iinfo(np.uint16).max:
            raise ValueError(
                f"image file {name} is a 32-bit integer image with values in "
                f"[{low}, {high}]; only values in 0..65535 (read as uint16) have "
                "an agreed intensity range. Convert it to 16-bit or float"
            )
        return arr.astype(np.uint16), None
    if mode == "F":
        arr = np.asarray(image, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError(f"image file {name} contains NaN or infinite values")
        return arr, None
    raise ValueError(f"image file {name} has Pillow mode {mode!r}, not supported")


def _lab_to_rgb(image, name):
    """Convert a CIELAB image to sRGB with LittleCMS (Pillow's ``ImageCms``).

    Pillow's plain ``convert("RGB")`` copies LAB bytes without a colour
    transform, which gives wrong colours.
    """
    try:
        from PIL import ImageCms
    except ImportError as exc:
        raise ValueError(
            f"image file {name} is a CIELAB image; converting it to RGB needs "
            f"Pillow's LittleCMS support, which this Pillow lacks: {exc}"
        ) from None
    try:
        transform = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        return ImageCms.applyTransform(image, transform)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        raise ValueError(
            f"image file {name} is a CIELAB image that could not be converted "
            f"to RGB: {exc}"
        ) from None


def _composite(colour, alpha_channel, background):
    """Blend ``colour`` over ``background`` with ``alpha_channel``."""
    scale = np.iinfo(alpha_channel.dtype).max
    weight = alpha_channel.astype(np.float64) / scale
    bg = _check_background(background)
    if colour.dtype.kind in "ui":
        bg = bg * (np.iinfo(colour.dtype).max / 255.0)
    else:
        bg = bg / 255.0
    if colour.ndim == 2:
        bg = float(bg @ _LUMA) if bg.size == 3 else float(bg[0])
    else:
        bg = np.broadcast_to(bg, (3,))
        weight = weight[:, :, np.newaxis]
    blended = colour * weight + bg * (1.0 - weight)
    return _round_to(blended, colour.dtype)


def _check_background(background):
    values = np.atleast_1d(np.asarray(background, dtype=object))
    ok = values.ndim == 1 and values.size in (1, 3)
    ok = ok and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v <= 255
        for v in values
    )
    if not ok:
        raise ValueError(
            "background must be a number or an (R, G, B) tuple of numbers in "
            f"0..255, got {background!r}"
        )
    return values.astype(np.float64)


def _round_to(values, dtype):
    """Round float values back to an integer dtype (clipped); keep floats."""
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


# --------------------------------------------------------------------------
# read_mask
# --------------------------------------------------------------------------


def read_mask(path, *, colormap=None, max_pixels=DEFAULT_MAX_PIXELS):
    """Read a mask file as an ``(H, W)`` map of class indices.

    * Palette (``P``) images give their palette indices, not their colours
      (the VOC convention, and what :func:`write_label_map` writes).
    * Grey images (``L``, 16-bit, ``I``) give their stored values; 1-bit
      images give 0 and 1; float images must hold whole numbers.
    * Colour (RGB) masks need ``colormap``, since their colours only mean
      classes through a table.

    An alpha channel is ignored. EXIF orientation is applied, as for
    :func:`read_image`, so masks stay aligned with their images.

    Parameters
    ----------
    path : str, path-like or binary file object
        The mask file. Use a lossless format (PNG, TIFF, BMP).
    colormap : mapping, default=None
        Required for colour masks: maps each ``(R, G, B)`` colour (a tuple of
        three ints) to a class index. For grey and palette masks, integer keys
        remap the stored values (for example ``{0: 0, 255: 1}``). Every value
        in the mask must be a key.
    max_pixels : int, default=DEFAULT_MAX_PIXELS
        Refuse masks with more pixels than this (decompression bombs).

    Returns
    -------
    mask : ndarray of shape (H, W), dtype int64
        The class index of each pixel.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        For an unreadable file, a colour mask without ``colormap``, colours or
        values missing from ``colormap``, or non-integer values.
    """
    if colormap is not None and not isinstance(colormap, Mapping):
        raise TypeError(
            f"colormap must be a mapping (colour or value -> class), got "
            f"{type(colormap).__name__}"
        )
    name = _describe(path)
    image = _load_image(path, max_pixels=max_pixels, what="mask")
    mode = image.mode
    if mode in _COLOUR_MASK_MODES:
        if colormap is None:
            raise ValueError(
                f"mask file {name} is a colour ({mode}) image; pass colormap= "
                "mapping each (R, G, B) colour to a class index, or save masks "
                "as palette or grey PNGs (see write_label_map)"
            )
        rgb = np.asarray(image.convert("RGB")).astype(np.int64)
        codes = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
        return _apply_colormap(codes, _colour_table(colormap), name, colour=True)
    if mode in ("P", "PA", "L", "LA"):
        values = np.asarray(image.getchannel(0))
    elif mode == "1":
        values = np.asarray(image)
    elif mode in _SIXTEEN_BIT_MODES or mode in ("I;16S", "I"):
        values = np.asarray(image)
    elif mode == "F":
        values = np.asarray(image)
        if not np.isfinite(values).all() or not np.array_equal(
            values, np.round(values)
        ):
            raise ValueError(
                f"mask file {name} holds non-integer float values; expected "
                "class indices"
            )
    else:
        raise ValueError(f"mask file {name} has Pillow mode {mode!r}, not supported")
    values = values.astype(np.int64)
    if colormap is not None:
        return _apply_colormap(values, _value_table(colormap), name, colour=False)
    return np.ascontiguousarray(values)


def _colour_table(colormap):
    table = {}
    for key, label in colormap.items():
        try:
            r, g, b = (int(c) for c in key)
            ok = all(0 <= c <= 255 for c in (r, g, b)) and len(key) == 3
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"colormap keys must be (R, G, B) tuples of ints in 0..255 for a "
                f"colour mask, got {key!r}"
            )
        table[(r << 16) | (g << 8) | b] = _check_class(label, key)
    return table


def _value_table(colormap):
    table = {}
    for key, label in colormap.items():
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise ValueError(
                "colormap keys must be integer values for a grey or palette "
                f"mask, got {key!r}"
            )
        table[int(key)] = _check_class(label, key)
    return table


def _check_class(label, key):
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise ValueError(f"colormap[{key!r}] must be an integer class, got {label!r}")
    return int(label)


def _apply_colormap(codes, table, name, *, colour):
    uniques, inverse = np.unique(codes, return_inverse=True)
    missing = [int(u) for u in uniques if int(u) not in table]
    if missing:
        shown = [
            (u >> 16, (u >> 8) & 255, u & 255) if colour else u for u in missing[:5]
        ]
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        kind = "colours" if colour else "values"
        raise ValueError(
            f"mask file {name} has {kind} missing from colormap: "
            f"{', '.join(map(str, shown))}{more}"
        )
    mapped = np.array([table[int(u)] for u in uniques], dtype=np.int64)
    return mapped[inverse.reshape(codes.shape)]


# --------------------------------------------------------------------------
# Writing label maps and overlays
# --------------------------------------------------------------------------


def label_palette(n=256):
    """Return ``n`` distinct colours for label maps: the PASCAL VOC palette.

    Label ``i`` gets a colour whose bits interleave the bits of ``i`` over
    R, G and B (most significant first), so label 0 is black, 1 dark red,
    2 dark green, and neighbouring labels differ clearly.

    Parameters
    ----------
    n : int, default=256
        Number of colours, from 1 to 2**24 (all distinct).

    Returns
    -------
    palette : ndarray of shape (n, 3), dtype uint8
        Row ``i`` is the colour of label ``i``.
    """
    n = check_positive_int(n, "n")
    if n > _MAX_PALETTE_SIZE:
        raise ValueError(f"n must be <= {_MAX_PALETTE_SIZE}, got {n}")
    code = np.arange(n, dtype=np.int64)
    palette = np.zeros((n, 3), dtype=np.int64)
    for bit in range(7, -1, -1):
        for channel in range(3):
            palette[:, channel] |= ((code >> channel) & 1) << bit
        code = code >> 3
    return palette.astype(np.uint8)


def _check_palette(palette, n_needed, *, max_size=None):
    """Validate a palette and return it as an ``(n, 3)`` uint8 array."""
    if palette is None:
        return label_palette(max(n_needed, 1))
    arr = np.asarray(palette)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise ValueError(
            f"palette must have shape (n_colours, 3), got shape {arr.shape}"
        )
    if arr.dtype.kind not in "ui" or arr.min() < 0 or arr.max() > 255:
        raise ValueError("palette must hold integer RGB values in 0..255")
    if max_size is not None and arr.shape[0] > max_size:
        raise ValueError(
            f"palette has {arr.shape[0]} colours; a PNG palette holds at most "
            f"{max_size}"
        )
    if arr.shape[0] < n_needed:
        raise ValueError(
            f"palette has {arr.shape[0]} colours but the labels go up to {n_needed - 1}"
        )
    return arr.astype(np.uint8)


def write_label_map(path, labels, palette=None):
    """Write a label map as a palette PNG (one byte per pixel: the label).

    The file shows in colour in any viewer, and :func:`read_mask` reads the
    labels back exactly (the VOC ``SegmentationClass`` format).

    Parameters
    ----------
    path : str, path-like or binary file object
        Output file. A path must end in ``.png``: label maps are never stored
        in lossy formats.
    labels : array-like of shape (H, W)
        Integer labels in 0..255.
    palette : array-like of shape (n_colours, 3), default=None
        RGB colour of each label (ints in 0..255, at most 256 rows, at least
        ``labels.max() + 1``). Default: :func:`label_palette`.

    Raises
    ------
    ValueError
        For labels outside 0..255, a bad palette, or a path not ending in
        ``.png``.
    """
    _check_png_path(path)
    labels = check_mask(labels, name="labels")
    high = int(labels.max())
    if high > _MAX_PNG_LABEL:
        raise ValueError(
            f"labels go up to {high}; a palette PNG stores labels 0..255 "
            "(save larger label maps with numpy instead)"
        )
    colours = _check_palette(palette, high + 1, max_size=_MAX_PNG_LABEL + 1)
    full = np.zeros((_MAX_PNG_LABEL + 1, 3), dtype=np.uint8)
    full[: len(colours)] = colours
    image = Image.fromarray(labels.astype(np.uint8))
    image.putpalette(full.ravel().tobytes(), rawmode="RGB")
    image.save(path, format="PNG")


def _check_png_path(path):
    if isinstance(path, (str, os.PathLike)):
        suffix = Path(path).suffix.lower()
        if suffix != ".png":
            raise ValueError(
                f"label maps are written as palette PNG files; {_describe(path)} "
                "should end in .png"
            )


def overlay(image, labels, alpha=0.5, palette=None, *, ignore_index=None):
    """Blend a colour per label over an image.

    Each pixel becomes ``(1 - alpha) * image + alpha * palette[label]`` on the
    8-bit scale, rounded to ``uint8``.

    Parameters
    ----------
    image : array-like of shape (H, W) or (H, W, C)
        ``uint8``, ``uint16`` (divided by 65535, times 255) or float in
        ``[0, 1]`` (times 255; values outside are clipped). Grey images
        (C = 1, or 2 for grey plus alpha) are shown grey; of 3 or 4 channels
        the first three are taken as RGB.
    labels : array-like of shape (H, W)
        Non-negative integer labels (besides ``ignore_index``).
    alpha : float, default=0.5
        Opacity of the label colours, in ``[0, 1]``.
    palette : array-like of shape (n_colours, 3), default=None
        RGB colour per label (ints in 0..255, more rows than the largest
        label). Default: :func:`label_palette`.
    ignore_index : int, default=None
        Pixels with this label are left as they are in the image.

    Returns
    -------
    blended : ndarray of shape (H, W, 3), dtype uint8
        The overlay.
    """
    img = check_image(image, name="image")
    labels = check_mask(
        labels, image_shape=img.shape, ignore_index=ignore_index, name="labels"
    )
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not 0.0 <= alpha <= 1.0
    ):
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    base = np.clip(image_to_float(img, np.float64), 0.0, 1.0) * 255.0
    base = np.repeat(base[:, :, :1], 3, axis=2) if img.shape[2] < 3 else base[..., :3]
    shown = (
        labels != ignore_index
        if ignore_index is not None
        else np.ones(labels.shape, bool)
    )
    high = int(labels[shown].max()) if shown.any() else 0
    colours = _check_palette(palette, high + 1).astype(np.float64)
    painted = colours[np.where(shown, labels, 0)]
    blended = np.where(
        shown[:, :, np.newaxis], (1.0 - alpha) * base + alpha * painted, base
    )
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def write_overlay(path, image, labels, alpha=0.5, palette=None, *, ignore_index=None):
    """Write :func:`overlay` of ``labels`` on ``image`` to an RGB image file.

    Parameters
    ----------
    path : str, path-like or binary file object
        Output file; its extension picks the format (``.png``, ``.jpg``, ...).
        File objects get PNG.
    image, labels, alpha, palette, ignore_index
        As for :func:`overlay`.

    Returns
    -------
    blended : ndarray of shape (H, W, 3), dtype uint8
        The overlay that was written.
    """
    blended = overlay(image, labels, alpha, palette, ignore_index=ignore_index)
    _save(Image.fromarray(blended), path, "overlay")
    return blended


def write_image(path, image):
    """Write an image array to a file (PNG keeps 16 bits for grey ``uint16``).

    Parameters
    ----------
    path : str, path-like or binary file object
        Output file; its extension picks the format. File objects get PNG.
    image : array-like of shape (H, W) or (H, W, C), C in {1, 3, 4}
        ``uint8``, ``uint16`` (grey only) or float in ``[0, 1]`` (clipped and
        stored as ``uint8``), as :func:`read_image` returns them.
    """
    arr = check_image(image)
    if arr.shape[2] == 2:
        raise ValueError("cannot write a 2-channel image; expected 1, 3 or 4")
    if arr.dtype.kind == "f":
        arr = float_to_image_dtype(np.clip(arr, 0.0, 1.0), np.uint8)
    if arr.dtype == np.uint16 and arr.shape[2] != 1:
        raise ValueError("only grey uint16 images can be written; convert to uint8")
    _save(Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr), path, "image")


def _save(image, path, what):
    if isinstance(path, (str, os.PathLike)):
        try:
            image.save(path)
        except ValueError as exc:  # Pillow: unknown extension
            raise ValueError(f"cannot write {what} {_describe(path)}: {exc}") from None
    else:
        image.save(path, format="PNG")


# --------------------------------------------------------------------------
# Sample images
# --------------------------------------------------------------------------


def load_sample_image(name):
    """Return one of the sample photographs that ship with scikit-learn.

    Parameters
    ----------
    name : {"china", "flower"}
        ``"china"`` (a temple) or ``"flower"``; the file names ``"china.jpg"``
        and ``"flower.jpg"`` work too.

    Returns
    -------
    image : ndarray of shape (427, 640, 3), dtype uint8
        The RGB image.
    """
    from sklearn.datasets import load_sample_image as sklearn_sample

    key = (
        name[: -len(".jpg")]
        if isinstance(name, str) and name.endswith(".jpg")
        else name
    )
    if key not in SAMPLE_IMAGES:
        raise ValueError(
            f"unknown sample image {name!r}; available: {', '.join(SAMPLE_IMAGES)}"
        )
    return np.array(sklearn_sample(f"{key}.jpg"))
