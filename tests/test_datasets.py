"""Tests for skseg.datasets.load_segmentation_folder.

Each layout is built from tiny files in ``tmp_path``; the expected arrays
come from the data written (or, for labelme shapes, from geometry computed
in the test).
"""

import base64
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skseg.datasets import load_segmentation_folder
from skseg.io import label_palette

SHARED_DATA = Path(__file__).parents[1] / ".." / "shared" / "data"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _save_label_png(path, labels):
    image = Image.fromarray(labels.astype(np.uint8), mode="L")
    image.putpalette(label_palette().ravel().tobytes())
    image.save(path)


def _images_masks_folder(root, rng, sizes=((5, 6), (4, 7), (6, 3))):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    expected = {}
    for i, (h, w) in enumerate(sizes):
        name = f"sample{i}"
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = rng.integers(0, 3, (h, w))
        Image.fromarray(image).save(root / "images" / f"{name}.png")
        _save_label_png(root / "masks" / f"{name}.png", mask)
        expected[name] = (image, mask)
    return expected


# --------------------------------------------------------------------------
# images/ + masks/
# --------------------------------------------------------------------------


def test_images_masks_layout(tmp_path, rng):
    expected = _images_masks_folder(tmp_path, rng)
    (tmp_path / "images" / ".DS_Store").write_bytes(b"junk")  # hidden: ignored
    (tmp_path / "class_names.txt").write_text("background\nroad\ncar\n")

    data = load_segmentation_folder(tmp_path)
    assert data.layout == "images_masks"
    assert data.names == sorted(expected)
    assert data.class_names == ["background", "road", "car"]
    for name, image, mask, image_path in zip(
        data.names, data.images, data.masks, data.image_paths, strict=True
    ):
        np.testing.assert_array_equal(image, expected[name][0])
        np.testing.assert_array_equal(mask, expected[name][1])
        assert mask.dtype == np.int64 and image_path.stem == name

    first_two = load_segmentation_folder(tmp_path, max_images=2, mode="L")
    assert first_two.names == data.names[:2]
    assert all(im.ndim == 2 for im in first_two.images)


def test_images_masks_missing_mask_names_the_image(tmp_path, rng):
    _images_masks_folder(tmp_path, rng)
    (tmp_path / "masks" / "sample1.png").unlink()
    with pytest.raises(ValueError, match=r"sample1\.png.*has no mask"):
        load_segmentation_folder(tmp_path)


def test_images_masks_orphan_mask_names_the_mask(tmp_path, rng):
    _images_masks_folder(tmp_path, rng)
    (tmp_path / "images" / "sample2.png").unlink()
    with pytest.raises(ValueError, match=r"masks.sample2\.png.*has no image"):
        load_segmentation_folder(tmp_path)


def test_images_masks_size_mismatch_names_both_files(tmp_path, rng):
    _images_masks_folder(tmp_path, rng)
    _save_label_png(tmp_path / "masks" / "sample0.png", np.zeros((5, 5)))
    with pytest.raises(ValueError, match=r"sample0\.png.*5x5.*sample0\.png.*5x6"):
        load_segmentation_folder(tmp_path)


def test_images_masks_corrupt_image_names_the_file(tmp_path, rng):
    _images_masks_folder(tmp_path, rng)
    (tmp_path / "images" / "sample1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ValueError, match=r"images.sample1\.png"):
        load_segmentation_folder(tmp_path)


def test_images_masks_rejects_jpeg_masks_and_duplicate_stems(tmp_path, rng):
    _images_masks_folder(tmp_path, rng)
    Image.new("L", (6, 5)).save(tmp_path / "masks" / "extra.jpg")
    with pytest.raises(ValueError, match=r"extra\.jpg.*JPEG"):
        load_segmentation_folder(tmp_path)
    (tmp_path / "masks" / "extra.jpg").unlink()
    Image.new("RGB", (6, 5)).save(tmp_path / "images" / "sample0.jpg")
    with pytest.raises(ValueError, match=r"sample0\.jpg|sample0\.png"):
        load_segmentation_folder(tmp_path)


def test_images_masks_bomb_guard_applies(tmp_path, rng):
    _images_masks_folder(tmp_path, rng)
    with pytest.raises(ValueError, match="max_pixels=20"):
        load_segmentation_folder(tmp_path, max_pixels=20)


def test_bad_folder_and_options(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_segmentation_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="layout"):
        load_segmentation_folder(tmp_path / "empty")
    _images_masks_folder(tmp_path / "ds", rng)
    with pytest.raises(ValueError, match="layout must be"):
        load_segmentation_folder(tmp_path / "ds", layout="coco")
    with pytest.raises(ValueError, match="split"):
        load_segmentation_folder(tmp_path / "ds", split="train")
    with pytest.raises(ValueError, match="max_images"):
        load_segmentation_folder(tmp_path / "ds", max_images=0)
    with pytest.raises(ValueError, match="JPEGImages"):
        load_segmentation_folder(tmp_path / "ds", layout="voc")


# --------------------------------------------------------------------------
# VOC
# --------------------------------------------------------------------------


def _voc_folder(root, rng, mask_dir="SegmentationClassPNG"):
    (root / "JPEGImages").mkdir(parents=True)
    (root / mask_dir).mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    masks = {}
    for name in ("2007_000032", "2007_000039", "2007_000063"):
        image = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg")
        mask = rng.integers(0, 21, (8, 10))
        mask[0, :] = 255  # VOC's object border / void label
        _save_label_png(root / mask_dir / f"{name}.png", mask)
        masks[name] = mask
    # An image outside the segmentation set, as in VOC.
    Image.new("RGB", (4, 4)).save(root / "JPEGImages" / "2007_000001.jpg")
    split_dir = root / "ImageSets" / "Segmentation"
    (split_dir / "train.txt").write_text("2007_000032\n2007_000063\n")
    (split_dir / "val.txt").write_text("2007_000039\n")
    return masks


def test_voc_layout_all_masks_and_splits(tmp_path, rng):
    masks = _voc_folder(tmp_path, rng)
    (tmp_path / "class_names.txt").write_text(
        "_background_\naeroplane\n", encoding="utf-8"
    )
    data = load_segmentation_folder(tmp_path)
    assert data.layout == "voc"
    assert data.names == sorted(masks)  # the unannotated image is skipped
    assert data.class_names == ["_background_", "aeroplane"]
    for name, image, mask, image_path in zip(
        data.names, data.images, data.masks, data.image_paths, strict=True
    ):
        np.testing.assert_array_equal(mask, masks[name])
        with Image.open(image_path) as reference:
            np.testing.assert_array_equal(image, np.asarray(reference))

    train = load_segmentation_folder(tmp_path, split="train")
    assert train.names == ["2007_000032", "2007_000063"]
    val = load_segmentation_folder(tmp_path, layout="voc", split="val")
    assert val.names == ["2007_000039"]
    np.testing.assert_array_equal(val.masks[0], masks["2007_000039"])


def test_voc_segmentation_class_fallback_ignores_npy(tmp_path, rng):
    masks = _voc_folder(tmp_path, rng, mask_dir="SegmentationClass")
    # labelme2voc writes .npy arrays beside the PNGs; they must never be loaded.
    (tmp_path / "SegmentationClass" / "2007_000032.npy").write_bytes(b"\x80junk")
    data = load_segmentation_folder(tmp_path)
    assert data.names == sorted(masks)
    assert all(p.suffix == ".png" for p in data.mask_paths)


def test_voc_errors_name_the_files(tmp_path, rng):
    _voc_folder(tmp_path, rng)
    with pytest.raises(ValueError, match=r"test\.txt.*train"):
        load_segmentation_folder(tmp_path, split="test")
    with pytest.raises(ValueError, match="plain name"):
        load_segmentation_folder(tmp_path, split="../../etc/passwd")
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("missing_one\n")
    with pytest.raises(ValueError, match=r"missing_one\.png"):
        load_segmentation_folder(tmp_path, split="val")
    (tmp_path / "JPEGImages" / "2007_000039.jpg").unlink()
    with pytest.raises(ValueError, match=r"2007_000039\.png.*no image"):
        load_segmentation_folder(tmp_path)


# --------------------------------------------------------------------------
# labelme
# --------------------------------------------------------------------------


def _png_base64(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _shape(label, points, shape_type="polygon"):
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "shape_type": shape_type,
        "flags": {},
    }


def _labelme_json(path, shapes, *, image=None, image_path=None, size=None):
    h, w = size if size is not None else image.shape[:2]
    data = {
        "version": "5.4.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": _png_base64(image) if image is not None else None,
        "imageHeight": h,
        "imageWidth": w,
    }
    path.write_text(json.dumps(data))


def test_labelme_polygons_rectangles_and_paint_order(tmp_path, rng):
    h, w = 12, 16
    embedded = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # Shape 1: a rectangle drawn as a polygon (x, y corners, inclusive).
    # Shape 2: a rectangle shape, given as opposite corners in either order,
    # painted over shape 1 where they overlap, as labelme does.
    _labelme_json(
        tmp_path / "a.json",
        [
            _shape("cat", [[2, 3], [9, 3], [9, 7], [2, 7]]),
            _shape("dog", [[12, 9], [7, 5]], "rectangle"),
        ],
        image=embedded,
    )
    beside = rng.integers(0, 256, (h, w), dtype=np.uint8)
    Image.fromarray(beside).save(tmp_path / "b.png")
    _labelme_json(
        tmp_path / "b.json",
        [_shape("dog", [[0, 0], [3, 0], [3, 2], [0, 2]])],
        image_path="b.png",
        size=(h, w),
    )

    data = load_segmentation_folder(tmp_path)
    assert data.layout == "labelme"
    assert data.names == ["a", "b"]
    assert data.class_names == ["_background_", "cat", "dog"]
    np.testing.assert_array_equal(data.images[0], embedded)
    np.testing.assert_array_equal(data.images[1], beside)
    assert data.image_paths == [None, tmp_path / "b.png"]

    expected_a = np.zeros((h, w), dtype=np.int64)
    expected_a[3:8, 2:10] = 1  # rows y = 3..7, columns x = 2..9
    expected_a[5:10, 7:13] = 2  # rows y = 5..9, columns x = 7..12
    np.testing.assert_array_equal(data.masks[0], expected_a)
    expected_b = np.zeros((h, w), dtype=np.int64)
    expected_b[0:3, 0:4] = 2
    np.testing.assert_array_equal(data.masks[1], expected_b)

    # A label list fixes the class indices.
    swapped = load_segmentation_folder(tmp_path, labels=["bg", "dog", "cat"])
    assert swapped.class_names == ["bg", "dog", "cat"]
    np.testing.assert_array_equal(swapped.masks[0], np.choose(expected_a, [0, 2, 1]))


def test_labelme_triangle_and_circle_geometry(tmp_path, rng):
    h, w = 30, 40
    image = rng.integers(0, 256, (h, w), dtype=np.uint8)
    triangle = [(5.0, 5.0), (35.0, 8.0), (12.0, 26.0)]
    centre, radius = (28.0, 20.0), 6.0
    _labelme_json(
        tmp_path / "t.json",
        [
            _shape("tri", [list(p) for p in triangle]),
            _shape("disc", [list(centre), [centre[0] + radius, centre[1]]], "circle"),
        ],
        image=image,
    )
    mask = load_segmentation_folder(tmp_path, layout="labelme").masks[0]

    ys, xs = np.mgrid[0:h, 0:w]
    distance = np.hypot(xs - centre[0], ys - centre[1])
    in_disc = distance < radius - 1
    out_disc = distance > radius + 1

    def side(p, q):
        return (q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0])

    # Signed distances to the three edges; a margin of 1 pixel keeps the test
    # away from the boundary, where rasterisers legitimately differ.
    a, b, c = triangle
    edges = [side(p, q) / math.dist(p, q) for p, q in ((a, b), (b, c), (c, a))]
    inside = np.all([e > 1 for e in edges], axis=0)
    outside = np.any([e < -1 for e in edges], axis=0)
    assert inside.sum() > 100 and in_disc.sum() > 50

    # Discovered classes are sorted: _background_ 0, disc 1, tri 2.
    assert np.all(mask[in_disc] == 1)  # the disc was drawn last, on top
    assert np.all(mask[inside & ~in_disc & ~(distance < radius + 1)] == 2)
    assert np.all(mask[outside & out_disc] == 0)


def test_labelme_mask_shape_places_its_bitmap(tmp_path, rng):
    image = rng.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    bitmap = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)
    shape = _shape("leaf", [[3, 2], [6, 4]], "mask")  # x 3..6, y 2..4
    shape["mask"] = _png_base64(bitmap)
    _labelme_json(tmp_path / "m.json", [shape], image=image)
    expected = np.zeros((8, 9), dtype=np.int64)
    expected[2:5, 3:7] = bitmap
    mask = load_segmentation_folder(tmp_path).masks[0]
    np.testing.assert_array_equal(mask, expected)


def test_labelme_labels_file_with_ignore(tmp_path, rng):
    image = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    _labelme_json(
        tmp_path / "x.json",
        [
            _shape("car", [[0, 0], [2, 2]], "rectangle"),
            _shape("__ignore__", [[4, 4], [5, 5]], "rectangle"),
        ],
        image=image,
    )
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\nperson\ncar\n")
    data = load_segmentation_folder(tmp_path)
    assert data.class_names == ["_background_", "person", "car"]
    expected = np.zeros((6, 6), dtype=np.int64)
    expected[0:3, 0:3] = 2
    expected[4:6, 4:6] = -1
    np.testing.assert_array_equal(data.masks[0], expected)


def test_labelme_errors_name_the_file(tmp_path, rng):
    image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    square = [[1, 1], [4, 1], [4, 4], [1, 4]]
    _labelme_json(tmp_path / "ok.json", [_shape("cat", square)], image=image)

    with pytest.raises(ValueError, match=r"ok\.json.*'cat'"):
        load_segmentation_folder(tmp_path, labels=["_background_", "dog"])
    with pytest.raises(ValueError, match="_background_"):
        load_segmentation_folder(tmp_path, labels=["cat", "_background_"])

    _labelme_json(
        tmp_path / "size.json", [_shape("cat", square)], image=image, size=(6, 9)
    )
    with pytest.raises(ValueError, match=r"size\.json.*6x9.*6x8"):
        load_segmentation_folder(tmp_path)
    (tmp_path / "size.json").unlink()

    _labelme_json(
        tmp_path / "lost.json",
        [_shape("cat", square)],
        image_path="gone.png",
        size=(6, 8),
    )
    with pytest.raises(ValueError, match=r"lost\.json.*gone\.png"):
        load_segmentation_folder(tmp_path)
    (tmp_path / "lost.json").unlink()

    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json.*JSON"):
        load_segmentation_folder(tmp_path)
    (tmp_path / "broken.json").write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match=r"broken\.json.*shapes"):
        load_segmentation_folder(tmp_path)
    (tmp_path / "broken.json").unlink()

    _labelme_json(tmp_path / "odd.json", [_shape("cat", square, "spline")], image=image)
    with pytest.raises(ValueError, match=r"odd\.json.*spline"):
        load_segmentation_folder(tmp_path)
    (tmp_path / "odd.json").unlink()

    _labelme_json(tmp_path / "bad64.json", [], image=image)
    data = json.loads((tmp_path / "bad64.json").read_text())
    data["imageData"] = base64.b64encode(b"not an image").decode()
    (tmp_path / "bad64.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"bad64\.json.*imageData"):
        load_segmentation_folder(tmp_path)


# --------------------------------------------------------------------------
# The shared ISBI 2012 data
# --------------------------------------------------------------------------


def test_isbi2012_membrane_folder():
    folder = SHARED_DATA / "isbi2012_membrane"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    data = load_segmentation_folder(folder)
    assert data.layout == "images_masks"
    assert len(data.images) == len(data.masks) == 30
    for image, mask in zip(data.images, data.masks, strict=True):
        assert image.shape == (512, 512) and image.dtype == np.uint8
        assert mask.shape == (512, 512)
    values = np.unique(np.concatenate([m.ravel() for m in data.masks]))
    np.testing.assert_array_equal(values, [0, 255])


# --------------------------------------------------------------------------
# Hostile labelme files
# --------------------------------------------------------------------------


def test_labelme_shapes_far_outside_the_image_are_drawn_within_it(
    tmp_path, rng, monkeypatch
):
    # Coordinates up to 1e7 are accepted. Pillow's ellipse takes time that
    # grows with the radius (26 s for this first circle), so the drawing
    # must stay within the image: a spy records what Pillow is asked to draw.
    from PIL import ImageDraw

    h, w = 30, 40
    far = 1e7
    ellipses = []
    real_ellipse = ImageDraw.ImageDraw.ellipse

    def spy(self, xy, *args, **kwargs):
        ellipses.append(xy)
        return real_ellipse(self, xy, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "ellipse", spy)
    ys = np.mgrid[0:h, 0:w][0]
    everything, nothing = np.ones((h, w), bool), np.zeros((h, w), bool)
    cases = {  # name: (points, pixels covered)
        "circle": ([[0, 0], [far, far]], everything),
        "circle_far": ([[far, far], [far - 1, far]], nothing),
        # Base far above, apex far below: the image lies well inside.
        "polygon": ([[-far, -far], [far, -far], [0, far]], everything),
        "rectangle": ([[-far, 10.0], [far, 19.0]], (ys >= 10) & (ys <= 19)),
        "line": ([[-far, 15.0], [far, 15.0]], None),
        "point": ([[far, -far]], nothing),
    }
    for name, (points, _) in cases.items():
        _labelme_json(
            tmp_path / f"{name}.json",
            [_shape("thing", points, name.split("_")[0])],
            image=rng.integers(0, 256, (h, w), dtype=np.uint8),
        )
    data = load_segmentation_folder(tmp_path)
    masks = dict(zip(data.names, (m == 1 for m in data.masks), strict=True))
    for name, (_, expected) in cases.items():
        if expected is not None:
            np.testing.assert_array_equal(masks[name], expected, err_msg=name)
    # A 10-pixel wide line along y = 15 covers rows 11..19 and at most 10..20;
    # rasterisers differ on the two edge rows.
    assert masks["line"][(ys >= 11) & (ys <= 19)].all()
    assert not masks["line"][(ys < 10) | (ys > 20)].any()
    # Pillow drew only the point (radius 5), never an ellipse as large as 1e7.
    assert ellipses and all(abs(xy[2] - xy[0]) <= 2 * max(h, w) for xy in ellipses)


def test_labelme_circle_larger_than_the_image_matches_pillow(tmp_path, rng):
    # A circle whose edge crosses the image, large enough to be drawn pixel
    # by pixel rather than by Pillow (r > image side), yet small enough for
    # Pillow to draw the reference quickly. They may differ only next to the
    # circle.
    from PIL import ImageDraw

    h, w = 30, 40
    cases = [((-200.0, 15.0), 220.3), ((20.0, 260.0), 245.0), ((61.5, -7.2), 50.0)]
    for i, (centre, radius) in enumerate(cases):
        _labelme_json(
            tmp_path / f"c{i}.json",
            [_shape("disc", [list(centre), [centre[0], centre[1] + radius]], "circle")],
            image=rng.integers(0, 256, (h, w), dtype=np.uint8),
        )
    masks = load_segmentation_folder(tmp_path).masks
    ys, xs = np.mgrid[0:h, 0:w]
    for mask, ((cx, cy), r) in zip(masks, cases, strict=True):
        canvas = Image.new("L", (w, h), 0)
        ImageDraw.Draw(canvas).ellipse(
            [cx - r, cy - r, cx + r, cy + r], outline=1, fill=1
        )
        reference = np.asarray(canvas, dtype=bool)
        differ = (mask == 1) != reference
        near_edge = np.abs(np.hypot(xs - cx, ys - cy) - r) <= 1
        assert reference.any() and not reference.all()
        assert not differ[~near_edge].any()


def _outside_image(tmp_path, rng):
    """A dataset folder ``ds`` with a readable image just outside it."""
    Image.fromarray(rng.integers(0, 256, (6, 8), dtype=np.uint8)).save(
        tmp_path / "secret.png"
    )
    root = tmp_path / "ds"
    root.mkdir()
    return root


@pytest.mark.parametrize(
    "image_path",
    [
        "../secret.png",
        "../missing.png",
        "..\\secret.png",
        "..\\missing.png",
        "sub/../../secret.png",
        "{outside}/secret.png",
        "{outside}/missing.png",
        "C:\\secret.png",
        "\\\\host\\share\\secret.png",
        "link/secret.png",
        "link/missing.png",
    ],
)
def test_labelme_image_path_must_stay_in_the_dataset(tmp_path, rng, image_path):
    root = _outside_image(tmp_path, rng)
    (root / "link").symlink_to(tmp_path, target_is_directory=True)
    image_path = image_path.format(outside=tmp_path)
    square = [[1, 1], [4, 1], [4, 4], [1, 4]]
    _labelme_json(
        root / "a.json", [_shape("cat", square)], image_path=image_path, size=(6, 8)
    )
    with pytest.raises(ValueError) as info:
        load_segmentation_folder(root)
    # The same message whether or not the file outside exists.
    assert str(info.value) == (
        f"labelme file {str(root / 'a.json')!r}: imagePath {image_path!r} must be "
        "a relative path to a file inside the dataset folder"
    )


def test_labelme_image_path_inside_the_dataset_still_reads(tmp_path, rng):
    root = _outside_image(tmp_path, rng)
    (root / "pics").mkdir()
    image = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    Image.fromarray(image).save(root / "pics" / "a.png")
    square = [[1, 1], [4, 1], [4, 4], [1, 4]]
    forms = ["pics/a.png", "pics\\a.png", "./pics/../pics/a.png", "pics/./a.png"]
    for i, form in enumerate(forms):
        _labelme_json(
            root / f"j{i}.json", [_shape("cat", square)], image_path=form, size=(6, 8)
        )
    data = load_segmentation_folder(root)
    for loaded in data.images:
        np.testing.assert_array_equal(loaded, image)


def test_labelme_malformed_values_are_value_errors_naming_the_file(tmp_path, rng):
    image = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    square = [[1, 1], [4, 1], [4, 4], [1, 4]]

    def check(name, shapes, match):
        _labelme_json(tmp_path / name, shapes, image=image)
        with pytest.raises(ValueError, match=match):
            load_segmentation_folder(tmp_path)
        (tmp_path / name).unlink()

    # 10**400 cannot become a float; 1e400 parses as infinity.
    check("huge.json", [_shape("cat", [[1, 1], [10**400, 1], [1, 4]])], r"huge\.json")
    check("inf.json", [_shape("cat", [[1, 1], [math.inf, 1], [1, 4]])], r"inf\.json")
    check(
        "typed.json",
        [_shape("cat", square, ["polygon"])],
        r"typed\.json.*shape_type \['polygon'\]",
    )
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=r"deep\.json.*deeply"):
        load_segmentation_folder(tmp_path)
    (tmp_path / "deep.json").write_bytes(b'{"shapes": [], "imagePath": "\xff"}')
    with pytest.raises(ValueError, match=r"deep\.json.*UTF-8"):
        load_segmentation_folder(tmp_path)


def test_class_names_file_must_be_utf8(tmp_path, rng):
    _images_masks_folder(tmp_path, rng)
    (tmp_path / "class_names.txt").write_bytes("fond\ncha\xeet\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"class_names\.txt.*UTF-8"):
        load_segmentation_folder(tmp_path)
    # A byte-order mark (Windows editors) is not part of the first name.
    (tmp_path / "class_names.txt").write_bytes("fond\ncha\xeet\n".encode("utf-8-sig"))
    assert load_segmentation_folder(tmp_path).class_names == ["fond", "cha\xeet"]


def test_fifos_in_a_dataset_are_skipped_or_refused(
    tmp_path, rng, fifo, returns_promptly
):
    image = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "real.png")
    square = [[1, 1], [4, 1], [4, 4], [1, 4]]
    _labelme_json(
        tmp_path / "a.json", [_shape("cat", square)], image_path="real.png", size=(6, 8)
    )
    fifo("b.json")  # not a file: skipped by the folder scan
    fifo("class_names.txt")  # likewise
    data = returns_promptly(lambda: load_segmentation_folder(tmp_path))
    assert data.names == ["a"] and data.class_names == ["_background_", "cat"]
    # An imagePath naming a FIFO is refused, not opened.
    fifo("pipe.png")
    _labelme_json(
        tmp_path / "c.json", [_shape("cat", square)], image_path="pipe.png", size=(6, 8)
    )
    with pytest.raises(ValueError, match=r"c\.json.*pipe\.png"):
        returns_promptly(lambda: load_segmentation_folder(tmp_path))

    # images/ + masks/: a FIFO among the masks is skipped, so its image lacks
    # a mask.
    ds = tmp_path / "pairs"
    _images_masks_folder(ds, rng)
    name = sorted(p.stem for p in (ds / "masks").iterdir())[0]
    (ds / "masks" / f"{name}.png").unlink()
    fifo(f"pairs/masks/{name}.png")
    with pytest.raises(ValueError, match="has no mask"):
        returns_promptly(lambda: load_segmentation_folder(ds))


def test_undetectable_layout_names_both_ways_to_give_it(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(ValueError, match="layout= in Python, --layout on the command"):
        load_segmentation_folder(tmp_path)
