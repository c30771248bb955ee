"""Colour conversions against scikit-image, and the per-image transformers."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_sample_image

from skseg.color import convert_from_rgb, convert_to_rgb
from skseg.preprocessing import ColorSpaceTransformer, IntensityScaler

skimage_color = pytest.importorskip("skimage.color")

REFERENCES = {
    "lab": lambda rgb: skimage_color.rgb2lab(rgb) / 100.0,
    "hsv": skimage_color.rgb2hsv,
    "grey": lambda rgb: skimage_color.rgb2gray(rgb)[..., np.newaxis],
}


@pytest.fixture(scope="module")
def photo():
    """A real photograph, RGB in [0, 1], with pure black, white and grey added."""
    rgb = load_sample_image("flower.jpg")[::8, ::8] / 255.0
    rgb[0, :3] = [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]]
    return rgb


@pytest.mark.parametrize("space", sorted(REFERENCES))
def test_conversion_matches_scikit_image_and_inverts(photo, space):
    features = convert_from_rgb(photo, space)
    np.testing.assert_allclose(features, REFERENCES[space](photo), atol=1e-12)
    back = convert_to_rgb(features, space)
    expected = np.repeat(features, 3, axis=-1) if space == "grey" else photo
    np.testing.assert_allclose(back, expected, atol=1e-9)


def test_conversion_keeps_float32():
    rgb = np.random.default_rng(0).random((5, 3), dtype=np.float32)
    assert convert_from_rgb(rgb, "lab").dtype == np.float32
    assert convert_to_rgb(convert_from_rgb(rgb, "hsv"), "hsv").dtype == np.float32


def test_conversion_rejects_wrong_channel_count_and_space():
    with pytest.raises(ValueError, match="3 RGB channels"):
        convert_from_rgb(np.zeros((4, 4, 1)), "lab")
    with pytest.raises(ValueError, match="color_space must be one of"):
        convert_from_rgb(np.zeros((4, 3)), "xyz")


def test_color_space_transformer_keeps_layout():
    img = load_sample_image("china.jpg")[::16, ::16]
    one = ColorSpaceTransformer("lab").fit_transform(img)
    np.testing.assert_allclose(one, REFERENCES["lab"](img / 255.0), atol=1e-5)
    batch = np.stack([img, img[::-1]])
    out = ColorSpaceTransformer("grey").fit(batch).transform(batch)
    assert out.shape == (*batch.shape[:3], 1)
    as_list = ColorSpaceTransformer("hsv").fit_transform([img, img[:5]])
    assert isinstance(as_list, list) and as_list[1].shape == (5, img.shape[1], 3)


def test_color_space_transformer_errors():
    with pytest.raises(ValueError, match="needs RGB images"):
        ColorSpaceTransformer().fit(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="color_space"):
        ColorSpaceTransformer("cmyk").fit(np.zeros((4, 4, 3)))
    fitted = ColorSpaceTransformer("rgb").fit(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="1 channels but"):
        fitted.transform(np.zeros((4, 4)))


def test_intensity_scaler_methods():
    rng = np.random.default_rng(1)
    img = rng.normal(100.0, 20.0, size=(40, 30, 2))
    minmax = IntensityScaler("minmax").fit_transform(img)
    np.testing.assert_allclose(minmax.min(axis=(0, 1)), 0.0)
    np.testing.assert_allclose(minmax.max(axis=(0, 1)), 1.0)
    standard = IntensityScaler("standard").fit_transform(img)
    np.testing.assert_allclose(standard.mean(axis=(0, 1)), 0.0, atol=1e-12)
    np.testing.assert_allclose(standard.std(axis=(0, 1)), 1.0)
    robust = IntensityScaler("percentile", percentiles=(5, 95)).fit_transform(img)
    low, high = np.percentile(img, [5, 95], axis=(0, 1))
    np.testing.assert_allclose(robust, np.clip((img - low) / (high - low), 0, 1))


def test_intensity_scaler_constant_image_and_errors():
    flat = IntensityScaler("minmax").fit_transform(np.full((3, 3), 7, np.uint8))
    np.testing.assert_array_equal(flat, 0.0)
    with pytest.raises(ValueError, match="method"):
        IntensityScaler("zscore").fit(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="percentiles"):
        IntensityScaler(percentiles=(50, 10)).fit(np.zeros((3, 3)))


def test_transformers_clone_with_params():
    est = clone(IntensityScaler("minmax", percentiles=(2, 98)))
    assert est.get_params() == {"method": "minmax", "percentiles": (2, 98)}


def test_mixed_dtype_list_is_scaled_per_image(photo):
    as_uint8 = np.rint(photo * 255).astype(np.uint8)
    images = [as_uint8, as_uint8.astype(np.uint16) * 257, as_uint8 / 255.0]
    for transformer in (ColorSpaceTransformer("rgb"), IntensityScaler("minmax")):
        out = transformer.fit(images).transform(images)
        np.testing.assert_allclose(out[1], out[0], rtol=1e-6)
        np.testing.assert_allclose(out[2], out[0], rtol=1e-6)
    np.testing.assert_allclose(
        ColorSpaceTransformer("rgb").fit_transform(images)[1],
        as_uint8 / 255.0,
        rtol=1e-6,
    )
