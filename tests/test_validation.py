"""The image and mask input conventions of skseg._validation."""

import numpy as np
import pytest

from skseg._validation import (
    check_image,
    check_images,
    check_mask,
    check_masks,
    check_real,
    float_to_image_dtype,
    format_label_maps,
    image_to_float,
)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_grey_image_gets_channel_axis_and_keeps_dtype(dtype):
    img = np.arange(12, dtype=dtype).reshape(3, 4)
    out = check_image(img)
    assert out.shape == (3, 4, 1)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out[..., 0], img)


def test_float16_is_widened():
    assert check_image(np.zeros((2, 2, 3), np.float16)).dtype == np.float32


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.zeros((2, 2, 2, 2, 2)), ValueError, "5 dimensions"),
        (np.zeros(5), ValueError, "1 dimensions"),
        (np.zeros((4, 4, 5)), ValueError, "5 channels"),
        (np.zeros((0, 4, 3)), ValueError, "empty"),
        (np.array([[0.0, np.nan]]), ValueError, "NaN"),
        (np.array([[0.0, np.inf]]), ValueError, "infinite"),
        (np.zeros((3, 3), np.int32), TypeError, "int32"),
        (np.zeros((3, 3), bool), TypeError, "bool"),
        (np.array([["a", "b"]]), TypeError, "non-numeric"),
        (np.array([None, 1], dtype=object), TypeError, "object"),
        (None, TypeError, "None"),
    ],
)
def test_bad_images_name_the_problem(image, error, match):
    with pytest.raises(error, match=match):
        check_image(image)


def test_three_d_array_is_one_image_and_four_d_is_a_batch():
    images, is_batch = check_images(np.zeros((5, 6, 3), np.uint8))
    assert not is_batch and len(images) == 1
    images, is_batch = check_images(np.zeros((2, 5, 6, 3), np.uint8))
    assert is_batch and [im.shape for im in images] == [(5, 6, 3)] * 2


def test_list_batch_allows_different_sizes_not_channel_counts():
    images, is_batch = check_images([np.zeros((4, 5)), np.zeros((7, 3))])
    assert is_batch and [im.shape for im in images] == [(4, 5, 1), (7, 3, 1)]
    with pytest.raises(ValueError, match="different channel counts"):
        check_images([np.zeros((4, 5)), np.zeros((4, 5, 3))])
    with pytest.raises(ValueError, match="empty list"):
        check_images([])
    with pytest.raises(ValueError, match=r"X\[1\] .*NaN"):
        check_images([np.zeros((2, 2)), np.full((2, 2), np.nan)])


def test_image_to_float_round_trips_integer_scales():
    img8 = np.array([[0, 128, 255]], np.uint8)
    as_float = image_to_float(img8)
    assert as_float.dtype == np.float32
    np.testing.assert_allclose(as_float, [[0, 128 / 255, 1]], rtol=1e-6)
    np.testing.assert_array_equal(float_to_image_dtype(as_float, np.uint8), img8)
    img16 = np.array([[0, 1000, 65535]], np.uint16)
    back = float_to_image_dtype(image_to_float(img16, np.float64), np.uint16)
    np.testing.assert_array_equal(back, img16)
    floats = np.array([[0.25, 2.0]])
    assert image_to_float(floats) is floats


def test_mask_checks():
    img = np.zeros((3, 4, 3))
    mask = check_mask(np.ones((3, 4), np.uint8), image_shape=img.shape)
    assert mask.dtype == np.int64
    np.testing.assert_array_equal(check_mask(np.eye(3, dtype=float)), np.eye(3))
    with pytest.raises(ValueError, match=r"shape \(4, 3\) but its image is \(3, 4\)"):
        check_mask(np.zeros((4, 3), int), image_shape=img.shape)
    with pytest.raises(ValueError, match="negative labels"):
        check_mask(np.array([[0, -1]]))
    ok = check_mask(np.array([[0, -1]]), ignore_index=-1)
    np.testing.assert_array_equal(ok, [[0, -1]])
    with pytest.raises(ValueError, match="non-integer"):
        check_mask(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="dimensions"):
        check_mask(np.zeros((2, 2, 1), int))


def test_masks_must_pair_with_images():
    images, _ = check_images(np.zeros((2, 3, 4, 1)))
    masks = check_masks(np.zeros((2, 3, 4), int), images)
    assert len(masks) == 2
    with pytest.raises(ValueError, match="1 masks for 2 images"):
        check_masks([np.zeros((3, 4), int)], images)
    with pytest.raises(ValueError, match="required"):
        check_masks(None, images)


def test_format_label_maps_follows_the_input_layout():
    maps = [np.zeros((2, 3)), np.ones((2, 3))]
    assert format_label_maps(maps[:1], False) is maps[0]
    assert format_label_maps(maps, True, like=np.zeros((2, 2, 3))).shape == (2, 2, 3)
    assert isinstance(format_label_maps(maps, True, like=[0, 0]), list)
    ragged = [np.zeros((2, 3)), np.zeros((4, 3))]
    assert isinstance(format_label_maps(ragged, True, like=None), list)


def test_check_real_bounds_and_types():
    assert check_real(0.5, "p", low=0.0, high=1.0, high_open=True) == 0.5
    assert check_real(1, "p", low=0.0, high=1.0) == 1.0
    with pytest.raises(ValueError, match=r"p must be a finite number >= 0.0 and < 1.0"):
        check_real(1.0, "p", low=0.0, high=1.0, high_open=True)
    with pytest.raises(ValueError, match="> 0.0"):
        check_real(0.0, "p", low=0.0, low_open=True)
    with pytest.raises(ValueError, match="finite"):
        check_real(float("inf"), "p", low=0.0)
    with pytest.raises(ValueError, match="finite"):
        check_real(float("nan"), "p")
    with pytest.raises(TypeError, match="real number"):
        check_real(True, "p")
    with pytest.raises(TypeError, match="real number"):
        check_real("0.1", "p")
