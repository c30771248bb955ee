"""UNetSegmenter's augmentation modes and its residual (down-sample first)
network, with tiny networks and images (fast on a CPU)."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from skseg.unet import UNetSegmenter  # noqa: E402
from skseg.unet.network import ResidualUNet, receptive_radius  # noqa: E402
from skseg.unet.training import _Sampler  # noqa: E402

TINY = dict(depth=2, init_features=4, batch_size=4, random_state=0, device="cpu")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def symmetries(image, group):
    """The transforms of a ``(h, w)`` array that ``group`` claims, as bytes."""
    found = [image]
    if group in ("hflip", "dihedral"):
        found.append(image[:, ::-1])
    if group == "dihedral":
        for base in list(found):
            if image.shape[0] == image.shape[1]:
                found.extend(np.rot90(base, k) for k in range(1, 4))
            found.append(base[::-1])
    return {np.ascontiguousarray(a).tobytes() for a in found}


def draws(group, shape, seed, n=300):
    """``n`` (image, target) samples of a sampler on one image with distinct
    pixel values (its target the same values), as bytes."""
    values = np.arange(np.prod(shape), dtype=np.int64).reshape(shape)
    sampler = _Sampler(
        [values[None].astype(np.float32)],
        [values],
        patch_size=None,
        multiple=1,
        augment=group,
        rng=np.random.default_rng(seed),
    )
    out = []
    for _ in range(n):
        x, y = sampler.batch([0])
        out.append((x[0, 0].numpy().astype(np.int64).tobytes(), y[0].numpy().tobytes()))
    return out


@pytest.mark.parametrize(
    "group, shape, count",
    [
        ("none", (5, 5), 1),
        ("hflip", (5, 5), 2),
        ("dihedral", (5, 5), 8),
        ("hflip", (4, 6), 2),
        ("dihedral", (4, 6), 4),  # oblong: the four flips, no quarter turns
    ],
)
def test_augment_draws_exactly_its_symmetries(group, shape, count):
    values = np.arange(np.prod(shape), dtype=np.int64).reshape(shape)
    allowed = symmetries(values, group)
    assert len(allowed) == count
    samples = draws(group, shape, seed=0)
    # The mask moves with the image, every claimed symmetry occurs, and no
    # other transform does ("hflip" never flips vertically or turns).
    assert all(image == target for image, target in samples)
    assert {image for image, _ in samples} == allowed
    # Each symmetry about equally often (seeded: 300 draws, 37.5 each of 8).
    frequencies = np.unique([image for image, _ in samples], return_counts=True)[1]
    assert frequencies.min() > 300 / count / 2


def test_augment_is_reproducible():
    assert draws("dihedral", (5, 5), seed=3) == draws("dihedral", (5, 5), seed=3)
    assert draws("dihedral", (5, 5), seed=3) != draws("dihedral", (5, 5), seed=4)


def disks(n, size=32, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, masks = [], []
    for _ in range(n):
        cy, cx = rng.uniform(8, size - 8, 2)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < 36).astype(np.int64)
        image = 0.2 + 0.6 * mask + 0.05 * rng.standard_normal((size, size))
        images.append(image.astype(np.float32)[..., None])
        masks.append(mask)
    return np.stack(images), np.stack(masks)


@pytest.mark.parametrize("old, new", [(True, "dihedral"), (False, "none")])
def test_boolean_augment_is_deprecated_for_its_mode(old, new):
    X, y = disks(4)
    with pytest.warns(FutureWarning, match=f"augment={old} is deprecated.*'{new}'"):
        legacy = UNetSegmenter(**TINY, max_epochs=2, augment=old).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = UNetSegmenter(**TINY, max_epochs=2, augment=new).fit(X, y)
    np.testing.assert_array_equal(legacy.predict_proba(X), named.predict_proba(X))
    assert legacy.augment is old  # the parameter is stored unchanged


@pytest.mark.parametrize("value", ["vflip", "Dihedral", 1, None, ("hflip",)])
def test_bad_augment(value):
    X, y = disks(2)
    with pytest.raises(ValueError, match="augment must be one of"):
        UNetSegmenter(**TINY, max_epochs=1, augment=value).fit(X, y)


def test_bad_architecture():
    X, y = disks(2)
    with pytest.raises(ValueError, match="architecture must be one of"):
        UNetSegmenter(**TINY, max_epochs=1, architecture="resnet").fit(X, y)


def test_residual_network_runs_nothing_but_the_head_at_full_resolution():
    net = ResidualUNet(
        3,
        5,
        depth=3,
        init_features=4,
        convs_per_level=2,
        batch_norm=True,
        upsampling="transpose",
        dropout=0.0,
    ).eval()
    full = []
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            module.register_forward_hook(
                lambda m, _, out: full.append(m) if out.shape[-1] == 64 else None
            )
    with torch.inference_mode():
        out = net(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, 5, 64, 64)
    assert full == [net.head]


def test_classic_and_residual_both_learn_disks():
    X, y = disks(12)
    for architecture in ("classic", "residual"):
        model = UNetSegmenter(
            **{**TINY, "init_features": 8},
            architecture=architecture,
            max_epochs=15,
            lr=1e-2,
        ).fit(X[:8], y[:8])
        predicted = model.predict(X[8:])
        dice = 2 * (predicted & y[8:]).sum() / (predicted.sum() + y[8:].sum())
        assert dice > 0.8, architecture


def test_residual_tiled_prediction_equals_whole_image():
    X, y = disks(4, size=40)
    X = np.repeat(X, 3, axis=-1)
    model = UNetSegmenter(**TINY, architecture="residual", max_epochs=1).fit(X, y)
    image = np.random.default_rng(1).random((203, 181, 3)).astype(np.float32)
    whole = model.set_params(tile_size=256).predict_proba(image)
    radius = receptive_radius(2, 2, "transpose", "residual")
    tiled = model.set_params(tile_size=128, tile_overlap=4 * radius).predict_proba(
        image
    )
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_models_saved_before_architecture_load_as_classic(tmp_path):
    import json
    import pickle

    X, y = disks(4)
    model = UNetSegmenter(**TINY, architecture="classic", max_epochs=1).fit(X, y)
    expected = model.predict_proba(X)
    # As skseg 0.1 wrote them: no ``architecture`` among the parameters.
    model.save(tmp_path)
    meta = json.loads((tmp_path / "params.json").read_text())
    del meta["params"]["architecture"]
    (tmp_path / "params.json").write_text(json.dumps(meta))
    loaded = UNetSegmenter.load(tmp_path)
    assert loaded.architecture == "classic"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    state = model.__getstate__()
    del state["architecture"]
    unpickled = UNetSegmenter.__new__(UNetSegmenter)
    unpickled.__setstate__(state)
    np.testing.assert_array_equal(unpickled.predict_proba(X), expected)
    assert pickle.loads(pickle.dumps(unpickled)).architecture == "classic"
