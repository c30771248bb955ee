"""Load segmentation datasets from folders in the layouts people use.

Three layouts are read (``layout="auto"`` picks one from what the folder
holds, in this order):

``"voc"``
    PASCAL VOC: ``JPEGImages/NAME.jpg`` and palette PNG masks in
    ``SegmentationClassPNG/NAME.png`` (what ``labelme2voc`` writes) or
    ``SegmentationClass/NAME.png``. Without ``split`` every mask is loaded;
    with it, the names listed in ``ImageSets/Segmentation/{split}.txt``.
    Images without a mask are not part of the segmentation set and are
    skipped. VOC masks mark object borders with 255, which stays as it is
    (pass ``ignore_index=255`` to the estimators and metrics).
``"images_masks"``
    ``images/NAME.ext`` and ``masks/NAME.ext`` with matching stems (the layout
    of ``shared/data``). Every image needs a mask and every mask an image.
``"labelme"``
    One labelme ``*.json`` file per image at the top of the folder, with the
    image embedded (``imageData``, base64) or next to it (``imagePath``,
    relative to the JSON file and inside the dataset folder). Shapes are
    rasterised to class masks as labelme's own ``labelme2voc`` does (see
    :func:`load_segmentation_folder`), within the image only.

Class names come from the ``labels`` argument, else from ``class_names.txt``
or ``labels.txt`` in the folder (one name per line; a labelme
``__ignore__`` line is dropped), else, for labelme, from the labels used.

Only image files (read by Pillow with the decompression-bomb guard of
:mod:`skseg.io`), UTF-8 text files and JSON (parsed with :mod:`json`) are read:
never pickles or ``.npy`` files, nothing that executes code, and only regular
files (FIFOs and devices are skipped or refused, never opened). A labelme
``imagePath`` that is absolute or leads out of the dataset folder is refused.
"""

import base64
import binascii
import io
import json
import math
import posixpath
import re
from pathlib import Path, PureWindowsPath

import numpy as np
from PIL import Image, ImageDraw
from sklearn.utils import Bunch

from ._validation import check_positive_int
from .io import DEFAULT_MAX_PIXELS, _open_regular_file, read_image, read_mask

__all__ = ["LAYOUTS", "load_segmentation_folder"]

#: Values accepted by ``layout`` in :func:`load_segmentation_folder`.
LAYOUTS = ("auto", "images_masks", "voc", "labelme")

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
    ".gif",
    ".webp",
    ".ppm",
    ".pgm",
)
# JPEG changes pixel values, so a JPEG mask holds wrong classes near edges.
_LOSSY_MASK_EXTENSIONS = (".jpg", ".jpeg")
_CLASS_NAME_FILES = ("class_names.txt", "labels.txt")
# labelme's conventions: unannotated pixels are "_background_" (class 0), and
# shapes labelled "__ignore__" mark pixels to ignore (class -1).
BACKGROUND_LABEL = "_background_"
IGNORE_LABEL = "__ignore__"
IGNORE_VALUE = -1
# labelme's rasterisation sizes (labelme.utils.shape_to_mask).
_LINE_WIDTH = 10
_POINT_RADIUS = 5
# Pillow's drawing overflows on coordinates far outside any image; such points
# come only from corrupt files.
_MAX_COORDINATE = 1e7
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def load_segmentation_folder(
    path,
    *,
    layout="auto",
    split=None,
    labels=None,
    colormap=None,
    mode=None,
    max_images=None,
    max_pixels=DEFAULT_MAX_PIXELS,
):
    """Load the images and class masks of a segmentation dataset folder.

    Parameters
    ----------
    path : str or path-like
        The dataset folder.
    layout : {"auto", "images_masks", "voc", "labelme"}, default="auto"
        Folder layout (see the module docstring). ``"auto"`` picks ``"voc"``
        when there is a ``JPEGImages`` folder, ``"images_masks"`` when there
        are ``images`` and ``masks`` folders, ``"labelme"`` when there are
        ``*.json`` files.
    split : str, default=None
        VOC only: load the names listed in
        ``ImageSets/Segmentation/{split}.txt`` (for example ``"train"``).
    labels : list of str, default=None
        Class names, class ``i`` being ``labels[i]``. For labelme this fixes
        the class index of each shape label: ``labels[0]`` is the background
        (unannotated pixels), so ``"_background_"``, when listed, must come
        first; ``"__ignore__"``, when listed, is dropped and its shapes paint
        -1. Without it, labelme classes are ``"_background_"`` followed by the
        sorted labels found in all JSON files of the folder. For the other
        layouts it only names the classes.
    colormap : mapping, default=None
        Passed to :func:`skseg.io.read_mask` for colour masks.
    mode : {None, "L", "RGB"}, default=None
        Passed to :func:`skseg.io.read_image`; ``"RGB"`` makes a folder that
        mixes grey and colour images uniform.
    max_images : int, default=None
        Load only the first ``max_images`` samples, in name order.
    max_pixels : int, default=DEFAULT_MAX_PIXELS
        Largest image or mask accepted (decompression-bomb guard).

    Returns
    -------
    data : :class:`sklearn.utils.Bunch`
        ``images`` (list of arrays, as :func:`skseg.io.read_image` returns
        them), ``masks`` (list of ``(H, W)`` ``int64`` arrays), ``names``
        (list of str, sorted), ``class_names`` (list of str, or None when
        unknown), ``image_paths`` and ``mask_paths`` (lists of
        :class:`pathlib.Path`; for labelme, ``mask_paths`` are the JSON files
        and ``image_paths`` are None for embedded images), and ``layout``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        For an unknown or undetectable layout, an image without a mask or a
        mask without an image, a mask whose size differs from its image, an
        unreadable file, malformed labelme JSON, or shape labels missing from
        ``labels``. The messages name the files.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"dataset folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise ValueError(f"dataset path {str(root)!r} is not a folder")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if max_images is not None:
        max_images = check_positive_int(max_images, "max_images")
    if labels is not None:
        labels = _check_labels(labels)
    if layout == "auto":
        layout = _detect_layout(root)
    if split is not None and layout != "voc":
        raise ValueError(
            f"split is only used by the 'voc' layout, not {layout!r}; got "
            f"split={split!r}"
        )

    read_options = {"mode": mode, "max_pixels": max_pixels}
    if layout == "labelme":
        return _load_labelme(root, labels, max_images, read_options)

    if layout == "voc":
        pairs = _voc_pairs(root, split)
    else:
        pairs = _images_masks_pairs(root)
    if max_images is not None:
        pairs = pairs[:max_images]
    images, masks = [], []
    for _, image_path, mask_path in pairs:
        image = read_image(image_path, **read_options)
        mask = read_mask(mask_path, colormap=colormap, max_pixels=max_pixels)
        _check_same_size(image, mask, image_path, mask_path)
        images.append(image)
        masks.append(mask)
    if labels is None:
        labels = _class_name_file(root)
    class_names = None
    if labels is not None:
        class_names = [name for name in labels if name != IGNORE_LABEL]
    return Bunch(
        images=images,
        masks=masks,
        names=[name for name, _, _ in pairs],
        class_names=class_names,
        image_paths=[p for _, p, _ in pairs],
        mask_paths=[p for _, _, p in pairs],
        layout=layout,
    )


# --------------------------------------------------------------------------
# Layouts with image and mask files
# --------------------------------------------------------------------------


def _detect_layout(root):
    if (root / "JPEGImages").is_dir():
        return "voc"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "images_masks"
    if any(root.glob("*.json")):
        return "labelme"
    raise ValueError(
        f"cannot tell the layout of dataset folder {str(root)!r}: expected "
        "JPEGImages/ plus SegmentationClassPNG/ or SegmentationClass/ (VOC), "
        "images/ plus masks/, or labelme *.json files. Name the layout "
        "explicitly (layout= in Python, --layout on the command line)"
    )


def _files_by_stem(folder, extensions):
    """Map each file stem in ``folder`` to its file, refusing duplicate stems."""
    found = {}
    for file in sorted(folder.iterdir()):
        if file.name.startswith(".") or not file.is_file():
            continue
        if file.suffix.lower() not in extensions:
            continue
        if file.stem in found:
            raise ValueError(
                f"two files share the name {file.stem!r}: {str(found[file.stem])!r} "
                f"and {str(file)!r}; keep one"
            )
        found[file.stem] = file
    return found


def _require_folder(folder, layout):
    if not folder.is_dir():
        raise ValueError(f"{layout} dataset: folder {str(folder)!r} is missing")


def _images_masks_pairs(root):
    image_dir, mask_dir = root / "images", root / "masks"
    _require_folder(image_dir, "images_masks")
    _require_folder(mask_dir, "images_masks")
    images = _files_by_stem(image_dir, IMAGE_EXTENSIONS)
    masks = _files_by_stem(mask_dir, IMAGE_EXTENSIONS)
    for mask_path in masks.values():
        _check_lossless(mask_path)
    no_mask = sorted(set(images) - set(masks))
    if no_mask:
        raise ValueError(
            f"image {str(images[no_mask[0]])!r} has no mask in {str(mask_dir)!r} "
            f"(expected a file named {no_mask[0]}.png)"
            + _count_others(no_mask, "images without a mask")
        )
    no_image = sorted(set(masks) - set(images))
    if no_image:
        raise ValueError(
            f"mask {str(masks[no_image[0]])!r} has no image in "
            f"{str(image_dir)!r}" + _count_others(no_image, "masks without an image")
        )
    if not images:
        raise ValueError(f"no image files in {str(image_dir)!r}")
    return [(name, images[name], masks[name]) for name in sorted(images)]


def _voc_pairs(root, split):
    image_dir = root / "JPEGImages"
    _require_folder(image_dir, "voc")
    mask_dir = root / "SegmentationClassPNG"
    if not mask_dir.is_dir():
        mask_dir = root / "SegmentationClass"
    if not mask_dir.is_dir():
        raise ValueError(
            f"voc dataset {str(root)!r} has neither SegmentationClassPNG/ nor "
            "SegmentationClass/"
        )
    images = _files_by_stem(image_dir, IMAGE_EXTENSIONS)
    # Only PNG masks: labelme2voc also writes .npy arrays, which we never load.
    masks = _files_by_stem(mask_dir, (".png",))
    if split is None:
        names = sorted(masks)
        if not names:
            raise ValueError(f"no PNG masks in {str(mask_dir)!r}")
    else:
        names = _read_split(root, split)
    pairs = []
    for name in names:
        if name not in masks:
            raise ValueError(
                f"voc dataset: no mask {str(mask_dir / (name + '.png'))!r} for "
                f"sample {name!r}"
            )
        if name not in images:
            raise ValueError(
                f"voc dataset: mask {str(masks[name])!r} has no image "
                f"{str(image_dir / (name + '.jpg'))!r}"
            )
        pairs.append((name, images[name], masks[name]))
    return pairs


def _read_split(root, split):
    if not isinstance(split, str) or not _SPLIT_NAME.match(split):
        raise ValueError(
            f"split must be a plain name such as 'train' or 'val', got {split!r}"
        )
    list_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_file.is_file():
        available = sorted(p.stem for p in list_file.parent.glob("*.txt"))
        raise ValueError(
            f"voc split file {str(list_file)!r} does not exist; available "
            f"splits: {available or 'none'}"
        )
    names = []
    for line in _read_text(list_file, "voc split").splitlines():
        fields = line.split()
        if fields:
            names.append(fields[0])
    if not names:
        raise ValueError(f"voc split file {str(list_file)!r} lists no samples")
    return names


def _read_text(file, what):
    """The text of a UTF-8 file (a byte-order mark is dropped); errors name it."""
    with _open_regular_file(file, what) as stream:
        raw = stream.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{what} file {str(file)!r} is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start})"
        ) from None


def _check_lossless(mask_path):
    if mask_path.suffix.lower() in _LOSSY_MASK_EXTENSIONS:
        raise ValueError(
            f"mask {str(mask_path)!r} is a JPEG file: JPEG compression changes "
            "class values, so masks must be lossless (PNG, TIFF, BMP)"
        )


def _count_others(names, what):
    return f" ({len(names) - 1} more {what})" if len(names) > 1 else ""


def _check_same_size(image, mask, image_path, mask_path):
    if image.shape[:2] != mask.shape:
        raise ValueError(
            f"mask {str(mask_path)!r} is {mask.shape[0]}x{mask.shape[1]} "
            f"(height x width) but its image {str(image_path)!r} is "
            f"{image.shape[0]}x{image.shape[1]}"
        )


# --------------------------------------------------------------------------
# Class names
# --------------------------------------------------------------------------


def _check_labels(labels):
    if isinstance(labels, str) or not all(isinstance(x, str) for x in labels):
        raise TypeError(f"labels must be a list of class-name strings, got {labels!r}")
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels has repeated names: {labels}")
    return labels


def _class_name_file(root):
    """Names listed in ``class_names.txt`` or ``labels.txt``, else None."""
    for file_name in _CLASS_NAME_FILES:
        file = root / file_name
        if file.is_file():
            names = [
                line.strip()
                for line in _read_text(file, "class-name").splitlines()
                if line.strip()
            ]
            return _check_labels(names) if names else None
    return None


# --------------------------------------------------------------------------
# labelme
# --------------------------------------------------------------------------


def _load_labelme(root, labels, max_images, read_options):
    json_files = sorted(
        p for p in root.glob("*.json") if p.is_file() and not p.name.startswith(".")
    )
    if not json_files:
        raise ValueError(f"no labelme *.json files in {str(root)!r}")
    annotations = [(file, _read_labelme_json(file)) for file in json_files]
    if labels is None:
        labels = _class_name_file(root)
    if labels is None:
        # Discovered over every file, so the class indices do not depend on
        # max_images.
        used = {
            shape["label"]
            for _, data in annotations
            for shape in data["shapes"]
            if shape["label"] not in (BACKGROUND_LABEL, IGNORE_LABEL)
        }
        labels = [BACKGROUND_LABEL, *sorted(used)]
    class_names = [name for name in labels if name != IGNORE_LABEL]
    if BACKGROUND_LABEL in class_names and class_names[0] != BACKGROUND_LABEL:
        raise ValueError(
            f"labels must start with {BACKGROUND_LABEL!r} when they list it "
            f"(unannotated pixels are class 0), got {labels}"
        )
    class_index = {name: i for i, name in enumerate(class_names)}
    class_index[IGNORE_LABEL] = IGNORE_VALUE

    if max_images is not None:
        annotations = annotations[:max_images]
    images, masks, image_paths = [], [], []
    for file, data in annotations:
        image, image_path = _labelme_image(root, file, data, read_options)
        height, width = image.shape[:2]
        declared = (data.get("imageHeight"), data.get("imageWidth"))
        if None not in declared and tuple(declared) != (height, width):
            raise ValueError(
                f"labelme file {str(file)!r} declares a {declared[0]}x{declared[1]} "
                f"image (height x width) but its image is {height}x{width}"
            )
        masks.append(
            _rasterise_shapes(file, data["shapes"], (height, width), class_index)
        )
        images.append(image)
        image_paths.append(image_path)
    return Bunch(
        images=images,
        masks=masks,
        names=[file.stem for file, _ in annotations],
        class_names=class_names,
        image_paths=image_paths,
        mask_paths=[file for file, _ in annotations],
        layout="labelme",
    )


def _read_labelme_json(file):
    text = _read_text(file, "labelme")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"labelme file {str(file)!r} is not valid JSON: {exc}"
        ) from None
    except RecursionError:
        raise ValueError(
            f"labelme file {str(file)!r} nests JSON too deeply to be a labelme "
            "annotation"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise ValueError(f"{str(file)!r} is not a labelme annotation: no 'shapes' list")
    for i, shape in enumerate(data["shapes"]):
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            raise ValueError(
                f"labelme file {str(file)!r}: shape {i} has no 'label' string"
            )
        shape_type = shape.get("shape_type")
        if shape_type is not None and not isinstance(shape_type, str):
            raise ValueError(
                f"labelme file {str(file)!r}: shape {i} ({shape['label']!r}) has "
                f"shape_type {shape_type!r}; expected a string such as 'polygon'"
            )
        points = shape.get("points")
        try:
            ok = all(
                len(p) == 2 and all(_plain_coordinate(c) for c in p) for p in points
            )
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(
                f"labelme file {str(file)!r}: shape {i} ({shape['label']!r}) "
                "needs 'points' as a list of [x, y] number pairs within "
                f"+-{_MAX_COORDINATE:g}"
            )
    for key in ("imageHeight", "imageWidth"):
        value = data.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            raise ValueError(
                f"labelme file {str(file)!r}: {key} must be a positive integer, "
                f"got {value!r}"
            )
    return data


def _plain_coordinate(value):
    # The comparison is exact for any int (10**400 too, which float() cannot
    # convert) and false for NaN and infinity.
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and abs(value) <= _MAX_COORDINATE
    )


def _labelme_image(root, file, data, read_options):
    """Read a labelme file's image: embedded data first, as labelme does."""
    embedded = data.get("imageData")
    if embedded:
        raw = _decode_base64(embedded, file, "imageData")
        try:
            return read_image(io.BytesIO(raw), **read_options), None
        except ValueError as exc:
            raise ValueError(
                f"labelme file {str(file)!r}: embedded imageData: {exc}"
            ) from None
    image_path = data.get("imagePath")
    if not isinstance(image_path, str) or not image_path:
        raise ValueError(
            f"labelme file {str(file)!r} has neither imageData nor imagePath"
        )
    # Files written on Windows store backslashes.
    forms = [image_path]
    if "\\" in image_path:
        forms.append(image_path.replace("\\", "/"))
    inside = [_path_inside(root, form) for form in forms]
    if None in inside:
        # One message whatever lies outside, so nothing about it is revealed.
        raise ValueError(
            f"labelme file {str(file)!r}: imagePath {image_path!r} must be a "
            "relative path to a file inside the dataset folder"
        )
    for form, resolved in zip(forms, inside, strict=True):
        if resolved.is_file():
            return read_image(resolved, **read_options), root / form
    raise ValueError(
        f"labelme file {str(file)!r}: its image {str(root / forms[-1])!r} does "
        "not exist or is not a regular file"
    )


def _path_inside(root, relative):
    """``root / relative`` with links resolved, or None when it is absolute
    or leads out of ``root`` (through ``..`` or a symbolic link)."""
    if PureWindowsPath(relative).anchor:  # "/x", "\\x", "C:x", "\\\\host\\x"
        return None
    normal = posixpath.normpath(relative)
    if normal == ".." or normal.startswith("../"):
        return None
    base = root.resolve()
    resolved = (base / normal).resolve()
    return resolved if resolved.is_relative_to(base) else None


def _decode_base64(text, file, field):
    try:
        return base64.b64decode(text)
    except (binascii.Error, TypeError, ValueError):
        raise ValueError(
            f"labelme file {str(file)!r}: {field} is not valid base64"
        ) from None


def _rasterise_shapes(file, shapes, shape_hw, class_index):
    """Paint shapes in order into a class map, later shapes over earlier ones."""
    height, width = shape_hw
    classes = np.zeros((height, width), dtype=np.int64)
    for i, shape in enumerate(shapes):
        label = shape["label"]
        if label not in class_index:
            raise ValueError(
                f"labelme file {str(file)!r}: shape {i} has label {label!r}, which "
                f"is not among the labels {sorted(k for k in class_index)}"
            )
        region = _shape_region(file, i, shape, (height, width))
        classes[region] = class_index[label]
    return classes


def _shape_region(file, index, shape, shape_hw):
    """Boolean mask of one labelme shape, drawn as labelme draws it."""
    height, width = shape_hw
    shape_type = shape.get("shape_type") or "polygon"
    xy = [(float(x), float(y)) for x, y in shape["points"]]
    where = f"labelme file {str(file)!r}: shape {index} ({shape_type})"
    if shape_type == "mask":
        return _mask_shape_region(file, where, shape, xy, shape_hw)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    expected = {"circle": 2, "rectangle": 2, "line": 2, "point": 1}
    if shape_type in expected and len(xy) != expected[shape_type]:
        raise ValueError(f"{where} needs {expected[shape_type]} points, has {len(xy)}")
    if shape_type == "circle":
        (cx, cy), (px, py) = xy
        r = math.hypot(cx - px, cy - py)
        # Pillow clips polygons, rectangles and lines to the image itself, so
        # only circles need care to keep the time O(image).
        if r > max(height, width):
            return _disc(cx, cy, r, shape_hw)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif shape_type == "rectangle":
        (x0, y0), (x1, y1) = xy
        # Pillow needs ordered corners; labelme stores them as drawn.
        draw.rectangle(
            [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1
        )
    elif shape_type in ("line", "linestrip"):
        if len(xy) < 2:
            raise ValueError(f"{where} needs at least 2 points, has {len(xy)}")
        draw.line(xy, fill=1, width=_LINE_WIDTH)
    elif shape_type == "point":
        (cx, cy) = xy[0]
        r = _POINT_RADIUS
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif shape_type == "polygon":
        if len(xy) < 3:
            raise ValueError(f"{where} needs at least 3 points, has {len(xy)}")
        draw.polygon(xy, outline=1, fill=1)
    else:
        raise ValueError(
            f"{where}: unsupported shape_type {shape_type!r} (supported: polygon, "
            "rectangle, circle, line, linestrip, point, mask)"
        )
    return np.asarray(canvas, dtype=bool)


def _disc(cx, cy, r, shape_hw):
    """Pixels whose centres lie within ``r`` of ``(cx, cy)``, in time O(image).

    Used for circles larger than the image: Pillow's ellipse takes time that
    grows with the radius (seconds at 10**6 pixels, whatever the image size),
    whereas this tests each pixel of the image once. It differs from Pillow's
    drawing only on pixels within a pixel of the circle.
    """
    rows = (np.arange(shape_hw[0]) - cy) ** 2
    columns = (np.arange(shape_hw[1]) - cx) ** 2
    return rows[:, np.newaxis] + columns[np.newaxis, :] <= r * r


def _mask_shape_region(file, where, shape, xy, shape_hw):
    """A labelme "mask" shape: a bitmap placed at its top-left point."""
    if len(xy) != 2 or not isinstance(shape.get("mask"), str):
        raise ValueError(f"{where} needs 2 points and a base64 'mask' PNG")
    raw = _decode_base64(shape["mask"], file, f"shape mask ({where})")
    try:
        bitmap = read_mask(io.BytesIO(raw)) != 0
    except ValueError as exc:
        raise ValueError(f"{where}: unreadable mask bitmap: {exc}") from None
    (x0, y0), _ = xy
    top, left = int(y0), int(x0)
    region = np.zeros(shape_hw, dtype=bool)
    bottom = min(top + bitmap.shape[0], shape_hw[0])
    right = min(left + bitmap.shape[1], shape_hw[1])
    if top < 0 or left < 0 or bottom <= top or right <= left:
        raise ValueError(f"{where}: mask bitmap lies outside the image")
    region[top:bottom, left:right] = bitmap[: bottom - top, : right - left]
    return region
