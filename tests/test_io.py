"""Tests for skseg.io: reading images and masks, writing label maps and overlays.

Every file is built with Pillow in ``tmp_path``; expected arrays are computed
in the test from the data written, never taken from skseg itself.
"""

import io
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from skseg.io import (
    DEFAULT_MAX_PIXELS,
    SAMPLE_IMAGES,
    label_palette,
    load_sample_image,
    overlay,
    read_image,
    read_mask,
    write_image,
    write_label_map,
    write_overlay,
)

LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --------------------------------------------------------------------------
# read_image: formats, bit depths, modes
# --------------------------------------------------------------------------


def test_grey_and_rgb_png_read_back_exactly(tmp_path, rng):
    grey = rng.integers(0, 256, (7, 5), dtype=np.uint8)
    rgb = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")

    out = read_image(tmp_path / "grey.png")  # a PathLike
    assert out.dtype == np.uint8 and out.shape == (7, 5)
    assert out.flags.writeable and out.flags.c_contiguous
    np.testing.assert_array_equal(out, grey)
    out = read_image(str(tmp_path / "rgb.png"))  # a str
    assert out.shape == (6, 9, 3)
    np.testing.assert_array_equal(out, rgb)
    with open(tmp_path / "rgb.png", "rb") as f:  # a file object
        np.testing.assert_array_equal(read_image(f), rgb)
        assert not f.closed  # the caller's file stays the caller's
    buffer = io.BytesIO((tmp_path / "grey.png").read_bytes())
    np.testing.assert_array_equal(read_image(buffer), grey)


def test_mode_converts_grey_and_colour(tmp_path, rng):
    grey = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    rgb = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")

    as_rgb = read_image(tmp_path / "grey.png", mode="RGB")
    np.testing.assert_array_equal(as_rgb, np.stack([grey] * 3, axis=2))
    as_grey = read_image(tmp_path / "rgb.png", mode="L")
    expected = np.rint(rgb @ LUMA)
    assert as_grey.dtype == np.uint8 and as_grey.shape == (4, 6)
    np.testing.assert_array_equal(as_grey, expected)
    # Pillow's own fixed-point conversion agrees to within rounding.
    pillow = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(as_grey.astype(int) - pillow).max() <= 1


@pytest.mark.parametrize("fmt", ["png", "tiff", "tiff-big-endian"])
def test_16bit_grey_stays_uint16(tmp_path, rng, fmt):
    data = rng.integers(0, 65536, (5, 8), dtype=np.uint16)
    data[0, 0], data[0, 1] = 0, 65535
    if fmt == "tiff-big-endian":
        image = Image.fromarray(data.astype(">u2"))
        assert image.mode == "I;16B"
        path = tmp_path / "big.tif"
    else:
        image = Image.fromarray(data)
        path = tmp_path / f"img.{fmt}"
    image.save(path)

    out = read_image(path)
    assert out.dtype == np.uint16 and out.dtype.isnative
    np.testing.assert_array_equal(out, data)
    rgb = read_image(path, mode="RGB")
    assert rgb.dtype == np.uint16
    np.testing.assert_array_equal(rgb, np.stack([data] * 3, axis=2))


def test_32bit_integer_tiff_maps_to_uint16_only_in_range(tmp_path):
    fits = np.array([[0, 1000], [65535, 7]], dtype=np.int32)
    Image.fromarray(fits).save(tmp_path / "fits.tif")
    out = read_image(tmp_path / "fits.tif")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, fits)

    too_wide = np.array([[0, 70000]], dtype=np.int32)
    Image.fromarray(too_wide).save(tmp_path / "wide.tif")
    with pytest.raises(ValueError, match=r"wide\.tif.*70000"):
        read_image(tmp_path / "wide.tif")
    negative = np.array([[-3, 5]], dtype=np.int32)
    Image.fromarray(negative).save(tmp_path / "neg.tif")
    with pytest.raises(ValueError, match=r"neg\.tif"):
        read_image(tmp_path / "neg.tif")


def test_float_tiff_keeps_values_and_rejects_nan(tmp_path):
    data = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    Image.fromarray(data).save(tmp_path / "f.tif")
    out = read_image(tmp_path / "f.tif")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, data)

    Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)).save(
        tmp_path / "nan.tif"
    )
    with pytest.raises(ValueError, match=r"nan\.tif.*NaN"):
        read_image(tmp_path / "nan.tif")


def test_one_bit_image_reads_as_0_and_255(tmp_path):
    bits = np.array([[0, 1, 1], [1, 0, 0]], dtype=bool)
    Image.fromarray(bits).convert("1").save(tmp_path / "bits.png")
    with Image.open(tmp_path / "bits.png") as written:
        assert written.mode == "1"
    np.testing.assert_array_equal(read_image(tmp_path / "bits.png"), bits * 255)


def test_cmyk_and_lab_are_converted_to_rgb(tmp_path):
    cmyk = Image.new("CMYK", (3, 2), (10, 200, 30, 40))
    cmyk.save(tmp_path / "cmyk.tif")
    out = read_image(tmp_path / "cmyk.tif")
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    # The naive CMYK formula: R = (255 - C) * (255 - K) / 255, and so on.
    expected = (255 - np.array([10, 200, 30])) * (255 - 40) / 255
    assert np.abs(out.astype(float) - expected).max() <= 1

    lab = Image.new("LAB", (3, 1))
    lab.putpixel((0, 0), (255, 128, 128))  # L* = 100, neutral: white
    lab.putpixel((1, 0), (0, 128, 128))  # L* = 0: black
    lab.putpixel((2, 0), (128, 128, 128))  # mid grey: R = G = B
    lab.save(tmp_path / "lab.tif")
    out = read_image(tmp_path / "lab.tif").astype(int)
    assert np.all(out[0, 0] >= 254) and np.all(out[0, 1] <= 1)
    assert np.ptp(out[0, 2]) <= 1 and 100 < out[0, 2, 0] < 140


# --------------------------------------------------------------------------
# EXIF orientation
# --------------------------------------------------------------------------


def _oriented(array, orientation):
    """What a viewer shows for EXIF orientation 3, 6 or 8."""
    return {3: np.rot90(array, 2), 6: np.rot90(array, -1), 8: np.rot90(array, 1)}[
        orientation
    ]


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applied_png(tmp_path, rng, orientation):
    data = rng.integers(0, 256, (4, 7, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(data).save(tmp_path / "o.png", exif=exif)
    np.testing.assert_array_equal(
        read_image(tmp_path / "o.png"), _oriented(data, orientation)
    )


def test_exif_orientation_applied_jpeg(tmp_path):
    # Flat 8x8 blocks survive JPEG nearly unchanged.
    blocks = np.kron(
        np.array([[0, 255, 0], [255, 0, 128]], dtype=np.uint8), np.ones((8, 8))
    ).astype(np.uint8)
    data = np.stack([blocks, 255 - blocks, blocks // 2], axis=2)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(data).save(tmp_path / "o.jpg", exif=exif, quality=95, subsampling=0)
    with Image.open(tmp_path / "o.jpg") as raw:
        assert raw.size == (24, 16)  # stored unrotated
        decoded = np.asarray(raw)

    out = read_image(tmp_path / "o.jpg")
    np.testing.assert_array_equal(out, _oriented(decoded, 6))
    error = np.abs(out.astype(int) - _oriented(data, 6).astype(int))
    assert error.mean() < 3 and error.max() < 40


# --------------------------------------------------------------------------
# Alpha: RGBA, grey + alpha, palettes with transparency
# --------------------------------------------------------------------------


def _rgba_file(tmp_path, rng):
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    return tmp_path / "rgba.png", rgba


def test_rgba_alpha_drop_keep(tmp_path, rng):
    path, rgba = _rgba_file(tmp_path, rng)
    np.testing.assert_array_equal(read_image(path), rgba[:, :, :3])
    np.testing.assert_array_equal(read_image(path, alpha="keep"), rgba)
    grey_alpha = read_image(path, alpha="keep", mode="L")
    assert grey_alpha.shape == (5, 6, 2)
    np.testing.assert_array_equal(grey_alpha[:, :, 0], np.rint(rgba[:, :, :3] @ LUMA))
    np.testing.assert_array_equal(grey_alpha[:, :, 1], rgba[:, :, 3])


@pytest.mark.parametrize("background", [(255, 255, 255), (10, 100, 200), 0])
def test_rgba_alpha_composite(tmp_path, rng, background):
    path, rgba = _rgba_file(tmp_path, rng)
    weight = rgba[:, :, 3:4] / 255.0
    bg = np.broadcast_to(np.asarray(background, dtype=float), (3,))
    expected = np.rint(rgba[:, :, :3] * weight + bg * (1 - weight))
    out = read_image(path, alpha="composite", background=background)
    assert out.dtype == np.uint8 and out.shape == (5, 6, 3)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out[0, 0], bg)  # fully transparent
    np.testing.assert_array_equal(out[0, 1], rgba[0, 1, :3])  # opaque


def test_grey_alpha_composite_uses_luma_of_background(tmp_path, rng):
    la = rng.integers(0, 256, (3, 4, 2), dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), la[:, :, 0])
    np.testing.assert_array_equal(read_image(tmp_path / "la.png", alpha="keep"), la)
    weight = la[:, :, 1] / 255.0
    bg = np.dot([30, 60, 90], LUMA)
    expected = np.rint(la[:, :, 0] * weight + bg * (1 - weight))
    out = read_image(tmp_path / "la.png", alpha="composite", background=(30, 60, 90))
    np.testing.assert_array_equal(out, expected)


def _palette_image(indices, colours):
    image = Image.fromarray(indices.astype(np.uint8), mode="L")
    image.putpalette(np.asarray(colours, dtype=np.uint8).ravel().tobytes())
    return image


def test_palette_png_reads_as_rgb(tmp_path):
    colours = np.array([[0, 0, 0], [200, 10, 30], [5, 250, 90]])
    indices = np.array([[0, 1, 2], [2, 1, 0]])
    _palette_image(indices, colours).save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out, colours[indices])


def test_palette_png_with_transparency_reads_as_rgba(tmp_path):
    colours = np.array([[9, 9, 9], [200, 10, 30], [5, 250, 90]])
    indices = np.array([[0, 1, 2], [2, 1, 0]])
    _palette_image(indices, colours).save(tmp_path / "pt.png", transparency=0)

    np.testing.assert_array_equal(read_image(tmp_path / "pt.png"), colours[indices])
    kept = read_image(tmp_path / "pt.png", alpha="keep")
    assert kept.shape == (2, 3, 4)
    np.testing.assert_array_equal(kept[:, :, :3], colours[indices])
    np.testing.assert_array_equal(kept[:, :, 3], np.where(indices == 0, 0, 255))
    composite = read_image(tmp_path / "pt.png", alpha="composite", background=7)
    np.testing.assert_array_equal(
        composite, np.where(indices[:, :, None] == 0, 7, colours[indices])
    )


# --------------------------------------------------------------------------
# read_mask
# --------------------------------------------------------------------------


def test_read_mask_palette_gives_indices_not_colours(tmp_path):
    colours = np.array([[0, 0, 0], [128, 0, 0], [0, 128, 0], [50, 60, 70]])
    indices = np.array([[0, 3, 2], [1, 1, 0]])
    _palette_image(indices, colours).save(tmp_path / "m.png")
    mask = read_mask(tmp_path / "m.png")
    assert mask.dtype == np.int64 and mask.shape == (2, 3)
    np.testing.assert_array_equal(mask, indices)


def test_read_mask_grey_16bit_and_one_bit(tmp_path):
    grey = np.array([[0, 7], [255, 12]], dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "g.png"), grey)
    wide = np.array([[0, 300], [65535, 1]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "w.png"), wide)
    bits = np.array([[True, False], [False, True]])
    Image.fromarray(bits).convert("1").save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "b.png"), bits.astype(int))


def test_read_mask_rgb_needs_colormap(tmp_path):
    colours = {(255, 0, 0): 1, (0, 0, 255): 2, (0, 0, 0): 0}
    labels = np.array([[0, 1, 2], [2, 2, 1]])
    table = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], dtype=np.uint8)
    Image.fromarray(table[labels]).save(tmp_path / "rgb.png")

    with pytest.raises(ValueError, match=r"rgb\.png.*colormap"):
        read_mask(tmp_path / "rgb.png")
    np.testing.assert_array_equal(
        read_mask(tmp_path / "rgb.png", colormap=colours), labels
    )
    with pytest.raises(ValueError, match=r"rgb\.png.*\(0, 0, 255\)"):
        read_mask(tmp_path / "rgb.png", colormap={(255, 0, 0): 1, (0, 0, 0): 0})
    with pytest.raises(ValueError, match="R, G, B"):
        read_mask(tmp_path / "rgb.png", colormap={1: 1})


def test_read_mask_grey_colormap_remaps_values(tmp_path):
    grey = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(
        read_mask(tmp_path / "g.png", colormap={0: 1, 255: 0}), 1 - grey // 255
    )
    with pytest.raises(ValueError, match="255"):
        read_mask(tmp_path / "g.png", colormap={0: 1})


def test_read_mask_rejects_fractional_float(tmp_path):
    Image.fromarray(np.array([[0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match=r"f\.tif.*non-integer"):
        read_mask(tmp_path / "f.tif")


# --------------------------------------------------------------------------
# Label maps and palettes
# --------------------------------------------------------------------------


def _voc_colour(label):
    """The PASCAL VOC devkit's colour of one label, written out bit by bit."""
    r = g = b = 0
    c = label
    for j in range(8):
        r |= ((c >> 0) & 1) << (7 - j)
        g |= ((c >> 1) & 1) << (7 - j)
        b |= ((c >> 2) & 1) << (7 - j)
        c >>= 3
    return r, g, b


def test_label_palette_is_the_voc_palette():
    palette = label_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    np.testing.assert_array_equal(palette, [_voc_colour(i) for i in range(256)])
    assert len({tuple(c) for c in label_palette(5000)}) == 5000
    np.testing.assert_array_equal(label_palette(3), palette[:3])
    with pytest.raises(ValueError):
        label_palette(0)


def test_write_label_map_round_trip(tmp_path, rng):
    labels = rng.integers(0, 256, (13, 17))
    labels[0, 0], labels[0, 1] = 0, 255
    write_label_map(tmp_path / "labels.png", labels)
    with Image.open(tmp_path / "labels.png") as written:
        assert written.format == "PNG" and written.mode == "P"
        palette = np.array(written.getpalette()[: 3 * 256]).reshape(-1, 3)
    np.testing.assert_array_equal(palette, label_palette())
    np.testing.assert_array_equal(read_mask(tmp_path / "labels.png"), labels)

    buffer = io.BytesIO()
    write_label_map(buffer, labels.astype(np.uint8))
    buffer.seek(0)
    np.testing.assert_array_equal(read_mask(buffer), labels)


def test_write_label_map_custom_palette(tmp_path):
    labels = np.array([[0, 1], [2, 1]])
    colours = np.array([[1, 2, 3], [40, 50, 60], [200, 100, 0]])
    write_label_map(tmp_path / "c.png", labels, palette=colours)
    np.testing.assert_array_equal(read_image(tmp_path / "c.png"), colours[labels])
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png"), labels)


def test_write_label_map_errors(tmp_path):
    with pytest.raises(ValueError, match="256"):
        write_label_map(tmp_path / "x.png", np.array([[0, 256]]))
    with pytest.raises(ValueError, match="negative"):
        write_label_map(tmp_path / "x.png", np.array([[0, -1]]))
    with pytest.raises(ValueError, match=r"x\.jpg.*\.png"):
        write_label_map(tmp_path / "x.jpg", np.array([[0, 1]]))
    with pytest.raises(ValueError, match="palette has 2 colours"):
        write_label_map(tmp_path / "x.png", np.array([[0, 2]]), palette=[[0] * 3] * 2)
    with pytest.raises(ValueError, match="dimensions"):
        write_label_map(tmp_path / "x.png", np.zeros((2, 2, 2), dtype=int))
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------
# Overlays
# --------------------------------------------------------------------------


def _expected_overlay(image_255, labels, alpha, palette):
    """Reference blend on the 8-bit scale, written independently."""
    out = np.empty(labels.shape + (3,))
    for (i, j), label in np.ndenumerate(labels):
        out[i, j] = (1 - alpha) * image_255[i, j] + alpha * palette[label]
    return np.rint(out).astype(np.uint8)


def test_overlay_uint8_rgb(rng):
    image = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, (6, 7))
    out = overlay(image, labels, alpha=0.3)
    assert out.dtype == np.uint8 and out.shape == (6, 7, 3)
    expected = _expected_overlay(image.astype(float), labels, 0.3, label_palette(4))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(overlay(image, labels, alpha=0.0), image)
    np.testing.assert_array_equal(
        overlay(image, labels, alpha=1.0), label_palette(4)[labels]
    )


def test_overlay_grey_uint16_and_float_scale_to_8_bits(rng):
    labels = rng.integers(0, 3, (4, 5))
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    wide = rng.integers(0, 65536, (4, 5), dtype=np.uint16)
    grey_255 = np.repeat((wide / 65535.0 * 255.0)[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(
        overlay(wide, labels, 0.5, palette),
        _expected_overlay(grey_255, labels, 0.5, palette),
    )
    floats = rng.random((4, 5, 3))
    np.testing.assert_array_equal(
        overlay(floats, labels, 0.25, palette),
        _expected_overlay(floats * 255.0, labels, 0.25, palette),
    )


def test_overlay_ignore_index_leaves_pixels_unchanged(rng):
    image = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    labels = np.array([[0, 1, -1, 1], [-1, -1, 0, 0], [1, 1, 1, -1]])
    out = overlay(image, labels, alpha=0.6, ignore_index=-1)
    ignored = labels == -1
    np.testing.assert_array_equal(out[ignored], image[ignored])
    expected = _expected_overlay(
        image.astype(float), np.where(ignored, 0, labels), 0.6, label_palette(2)
    )
    np.testing.assert_array_equal(out[~ignored], expected[~ignored])


def test_overlay_errors(rng):
    image = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        overlay(image, np.zeros((4, 3), dtype=int))
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, np.zeros((3, 4), dtype=int), alpha=1.5)
    with pytest.raises(ValueError, match="palette"):
        overlay(image, np.full((3, 4), 5), palette=[[0, 0, 0]])
    with pytest.raises(ValueError, match="negative"):
        overlay(image, np.full((3, 4), -1))


def test_write_overlay_writes_the_overlay(tmp_path, rng):
    image = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, (5, 6))
    returned = write_overlay(tmp_path / "ov.png", image, labels, alpha=0.4)
    np.testing.assert_array_equal(returned, overlay(image, labels, 0.4))
    np.testing.assert_array_equal(read_image(tmp_path / "ov.png"), returned)
    with pytest.raises(ValueError, match=r"ov\.unknownext"):
        write_overlay(tmp_path / "ov.unknownext", image, labels)


# --------------------------------------------------------------------------
# Errors and decompression bombs
# --------------------------------------------------------------------------


def test_missing_file_is_file_not_found_naming_it(tmp_path):
    for reader in (read_image, read_mask):
        with pytest.raises(FileNotFoundError, match=r"nothere\.png"):
            reader(tmp_path / "nothere.png")


def test_not_an_image_and_corrupt_files_are_value_errors(tmp_path, rng):
    (tmp_path / "notes.png").write_text("just text, not a PNG")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        tmp_path / "full.png"
    )
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    for reader in (read_image, read_mask):
        with pytest.raises(ValueError, match=r"notes\.png"):
            reader(tmp_path / "notes.png")
        with pytest.raises(ValueError, match=r"cut\.png"):
            reader(tmp_path / "cut.png")
        with pytest.raises(ValueError, match="directory"):
            reader(tmp_path)
    with pytest.raises(TypeError, match="path"):
        read_image(12345)


def test_fifos_and_devices_are_refused_without_being_opened(
    tmp_path, fifo, returns_promptly
):
    # Opening a FIFO for reading waits for a writer, forever in a batch job.
    pipe = fifo("pipe.png")
    (tmp_path / "link.png").symlink_to(pipe)
    for reader in (read_image, read_mask):
        for path in (pipe, tmp_path / "link.png", str(pipe)):
            with pytest.raises(ValueError, match=r"pipe\.png|link\.png") as info:
                returns_promptly(lambda r=reader, p=path: r(p))
            assert "not a regular file" in str(info.value)
    if os.path.exists("/dev/zero"):  # a device that never ends
        with pytest.raises(ValueError, match="not a regular file"):
            returns_promptly(lambda: read_image("/dev/zero"))
    # A regular file beside them still reads.
    Image.new("L", (3, 2), 7).save(tmp_path / "fine.png")
    assert read_image(tmp_path / "fine.png").tolist() == [[7, 7, 7], [7, 7, 7]]


def test_max_pixels_refuses_large_images(tmp_path):
    Image.new("L", (40, 30)).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match=r"big\.png.*1200 pixels.*max_pixels=1000"):
        read_image(tmp_path / "big.png", max_pixels=1000)
    with pytest.raises(ValueError, match=r"big\.png.*max_pixels"):
        read_mask(tmp_path / "big.png", max_pixels=1000)
    assert read_image(tmp_path / "big.png", max_pixels=1200).shape == (30, 40)
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(tmp_path / "big.png", max_pixels=0)
    # The default is no looser than Pillow's own hard limit.
    assert DEFAULT_MAX_PIXELS <= 2 * Image.MAX_IMAGE_PIXELS


def test_pillow_bomb_limit_becomes_value_error_and_global_is_untouched(
    tmp_path, monkeypatch
):
    Image.new("L", (40, 30)).save(tmp_path / "big.png")
    # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our max_pixels replaces Pillow's warning
        assert read_image(tmp_path / "big.png").shape == (30, 40)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(ValueError, match=r"big\.png.*MAX_IMAGE_PIXELS"):
        read_image(tmp_path / "big.png")
    assert Image.MAX_IMAGE_PIXELS == 500
    # Pillow still warns for other code: its warning filter was only local.
    with pytest.warns(Image.DecompressionBombWarning):
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        with Image.open(tmp_path / "big.png"):
            pass


def test_bad_options(tmp_path):
    Image.new("RGB", (2, 2)).save(tmp_path / "x.png")
    with pytest.raises(ValueError, match="alpha"):
        read_image(tmp_path / "x.png", alpha="ignore")
    with pytest.raises(ValueError, match="mode"):
        read_image(tmp_path / "x.png", mode="HSV")
    with pytest.raises(ValueError, match="background"):  # checked even without alpha
        read_image(tmp_path / "x.png", alpha="composite", background=(1, 2))
    with pytest.raises(TypeError, match="colormap"):
        read_mask(tmp_path / "x.png", colormap=[1, 2])


# --------------------------------------------------------------------------
# Sample images
# --------------------------------------------------------------------------


def test_load_sample_image_matches_scikit_learn():
    from sklearn.datasets import load_sample_image as sklearn_sample

    for name in SAMPLE_IMAGES:
        image = load_sample_image(name)
        assert image.shape == (427, 640, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(image, sklearn_sample(f"{name}.jpg"))
    np.testing.assert_array_equal(
        load_sample_image("china.jpg"), load_sample_image("china")
    )
    with pytest.raises(ValueError, match="china, flower"):
        load_sample_image("lena")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (np.arange(12, dtype=np.uint8).reshape(3, 4), None),
        (np.arange(24, dtype=np.uint8).reshape(2, 4, 3), None),
        (np.arange(32, dtype=np.uint8).reshape(2, 4, 4), None),
        (np.array([[0, 40000, 65535]], dtype=np.uint16), None),
        (np.array([[0.0, 0.5, 1.5]]), np.array([[0, 128, 255]], np.uint8)),
    ],
)
def test_write_image_round_trips(tmp_path, image, expected):
    path = tmp_path / "out.png"
    write_image(path, image)
    back = read_image(path, alpha="keep")
    np.testing.assert_array_equal(back, image if expected is None else expected)


def test_write_image_rejects_what_png_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="2-channel"):
        write_image(tmp_path / "a.png", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="grey uint16"):
        write_image(tmp_path / "b.png", np.zeros((2, 2, 3), np.uint16))
    with pytest.raises(ValueError, match="cannot write image"):
        write_image(tmp_path / "c.nosuchformat", np.zeros((2, 2), np.uint8))
