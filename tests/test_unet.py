"""Tests of UNetSegmenter with tiny networks and images (fast on a CPU)."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import f1_score, jaccard_score

torch = pytest.importorskip("torch")

from skseg.unet import UNetSegmenter  # noqa: E402
from skseg.unet.losses import segmentation_loss  # noqa: E402
from skseg.unet.network import receptive_radius  # noqa: E402

TINY = dict(depth=2, init_features=4, batch_size=4, random_state=0, device="cpu")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def disks(n, size=32, seed=0, labels=(0, 1), extra=False):
    """Grey images of bright disks on a dark noisy background, with masks.

    With ``extra``, a second, dimmer disk gets the third label.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images, masks = [], []
    for _ in range(n):
        mask = np.full((size, size), labels[0])
        image = 0.15 + 0.05 * rng.standard_normal((size, size))
        cy, cx = rng.uniform(8, size - 8, 2)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(4, 7) ** 2
        if extra:
            cy2 = (cy + size / 2) % size
            disk2 = (yy - cy2) ** 2 + (xx - cx) ** 2 < 5**2
            disk2 &= ~disk
            image[disk2] += 0.4
            mask[disk2] = labels[2]
        image[disk] += 0.75
        mask[disk] = labels[1]
        images.append(np.clip(image, 0, 1).astype(np.float32)[..., None])
        masks.append(mask)
    return np.stack(images), np.stack(masks)


@pytest.fixture(scope="module")
def binary_model():
    torch.set_num_threads(1)
    X, y = disks(12)
    model = UNetSegmenter(**{**TINY, "init_features": 8}, max_epochs=12, lr=1e-2)
    return model.fit(X, y)


# ------------------------------------------------------------------ import


def test_module_imports_without_torch(tmp_path):
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'tqdm'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from skseg.unet import UNetSegmenter\n"
        "import numpy as np\n"
        "m = UNetSegmenter(depth=2)\n"
        "assert m.get_params()['depth'] == 2\n"
        "try:\n"
        "    m.fit(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 8), int))\n"
        "except ImportError as exc:\n"
        "    assert 'skseg[torch]' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('fit without torch did not raise')\n"
        "assert 'torch' not in sys.modules\n"
    )
    # Run outside the checkout, whose source tree would shadow the installed package.
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


# ------------------------------------------------------- learning and shapes


def test_binary_learns_disks(binary_model):
    X, y = disks(8, seed=1)
    pred = binary_model.predict(X)
    assert pred.shape == y.shape
    assert binary_model.classes_.tolist() == [0, 1]
    # Chance level for a 10% foreground is far below this.
    assert f1_score(y.ravel(), pred.ravel()) > 0.85
    loss = binary_model.history_["loss"]
    assert loss[-1] < 0.5 * loss[0]


def test_multiclass_learns_with_arbitrary_labels():
    X, y = disks(12, labels=(3, 7, 9), extra=True)
    model = UNetSegmenter(**{**TINY, "init_features": 8}, max_epochs=15, lr=1e-2)
    model.fit(X, y)
    assert model.classes_.tolist() == [3, 7, 9]
    Xt, yt = disks(6, seed=2, labels=(3, 7, 9), extra=True)
    pred = model.predict(Xt)
    assert set(np.unique(pred)) <= {3, 7, 9}
    assert jaccard_score(yt.ravel(), pred.ravel(), average="macro") > 0.6
    proba = model.predict_proba(Xt)
    assert proba.shape == (*yt.shape, 3)
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(model.classes_[proba.argmax(-1)], pred)


def test_sizes_and_output_formats_round_trip():
    rng = np.random.default_rng(0)
    sizes = [(37, 45), (32, 32), (19, 50)]
    X = [rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in sizes]
    y = [rng.choice([3, 7, 9], size=s) for s in sizes]
    model = UNetSegmenter(**TINY, max_epochs=1, patch_size=None).fit(X, y)
    assert model.n_channels_ == 3
    pred = model.predict(X)
    assert isinstance(pred, list)
    assert [p.shape for p in pred] == sizes
    assert all(set(np.unique(p)) <= {3, 7, 9} for p in pred)
    one = model.predict(X[0])
    assert one.shape == (37, 45)
    np.testing.assert_array_equal(one, pred[0])
    proba = model.predict_proba(X)
    assert [p.shape for p in proba] == [(*s, 3) for s in sizes]
    stacked = model.predict(np.stack([X[1], X[1]]))
    assert isinstance(stacked, np.ndarray) and stacked.shape == (2, 32, 32)


def test_binary_proba_and_threshold(binary_model):
    X, _ = disks(3, seed=3)
    proba = binary_model.predict_proba(X)
    assert proba.shape == (3, 32, 32, 2)
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(
        binary_model.predict(X), (proba[..., 1] >= 0.5).astype(int)
    )
    strict = pickle.loads(pickle.dumps(binary_model)).set_params(threshold=0.9)
    np.testing.assert_array_equal(strict.predict(X), (proba[..., 1] >= 0.9))


@pytest.mark.parametrize(
    "options",
    [
        dict(upsampling="bilinear", loss="dice", dropout=0.2),
        dict(loss="ce", class_weight="balanced", optimizer="adamw"),
        dict(lr_schedule="onecycle", batch_norm=False, convs_per_level=1),
        dict(resize=True, patch_size=16, tta=True),
    ],
)
def test_options_train_and_predict(options):
    X, y = disks(6)
    model = UNetSegmenter(**TINY, max_epochs=2, **options).fit(X, y)
    assert len(model.history_["loss"]) == 2
    assert np.isfinite(model.history_["loss"]).all()
    assert model.predict(X).shape == y.shape


def test_class_weight_dict_uses_original_labels():
    X, y = disks(4, labels=(10, 20))
    model = UNetSegmenter(**TINY, max_epochs=1, class_weight={20: 5.0}).fit(X, y)
    assert model.predict(X).shape == y.shape
    with pytest.raises(ValueError, match="class_weight has label 30"):
        clone(model).set_params(class_weight={30: 1.0}).fit(X, y)


# -------------------------------------------------------------- ignore_index


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("loss", ["dice", "ce", "dice+ce"])
def test_ignored_pixels_do_not_affect_loss_or_gradients(n_classes, loss):
    gen = torch.Generator().manual_seed(0)
    k = 1 if n_classes == 2 else n_classes
    logits = torch.randn(2, k, 16, 16, generator=gen)
    target = torch.randint(0, n_classes, (2, 16, 16), generator=gen)
    ignored = torch.rand(2, 16, 16, generator=gen) < 0.3
    target[ignored] = -1
    weight = torch.linspace(0.5, 2.0, n_classes)

    def loss_and_grad(values):
        values = values.clone().requires_grad_(True)
        out = segmentation_loss(
            values, target, loss=loss, n_classes=n_classes, class_weight=weight
        )
        out.backward()
        return out.detach(), values.grad

    base_loss, base_grad = loss_and_grad(logits)
    changed = logits.clone()
    noise = 10 * torch.randn(changed.shape, generator=gen)
    changed = torch.where(ignored[:, None], noise, changed)
    new_loss, new_grad = loss_and_grad(changed)
    torch.testing.assert_close(new_loss, base_loss)
    torch.testing.assert_close(new_grad, base_grad)
    assert float(base_grad.abs().sum()) > 0
    assert float(base_grad[ignored[:, None].expand_as(base_grad)].abs().max()) == 0.0
    # The check has teeth: the same pixels, labelled, do change the loss.
    full_target = target.clone()
    full_target[ignored] = 0
    assert not torch.equal(
        segmentation_loss(logits, full_target, loss=loss, n_classes=n_classes),
        segmentation_loss(logits, target, loss=loss, n_classes=n_classes),
    )


def test_loss_on_fully_ignored_batch_is_zero():
    logits = torch.randn(1, 3, 8, 8, requires_grad=True)
    target = torch.full((1, 8, 8), -1)
    out = segmentation_loss(logits, target, loss="dice+ce", n_classes=3)
    out.backward()
    assert float(out.detach()) == 0.0 and float(logits.grad.abs().sum()) == 0.0


def test_ignore_index_is_not_a_class_and_is_never_predicted():
    X, y = disks(6, labels=(0, 1))
    y = y.copy()
    y[:, :4, :] = 255
    model = UNetSegmenter(**TINY, max_epochs=2, ignore_index=255).fit(X, y)
    assert model.classes_.tolist() == [0, 1]
    assert set(np.unique(model.predict(X))) <= {0, 1}
    # The same masks without ignore_index make 255 a third class.
    model3 = UNetSegmenter(**TINY, max_epochs=1).fit(X, y)
    assert model3.classes_.tolist() == [0, 1, 255]


def test_negative_ignore_index():
    X, y = disks(4)
    y = y.copy()
    y[:, 0, :] = -1
    model = UNetSegmenter(**TINY, max_epochs=1, ignore_index=-1).fit(X, y)
    assert model.classes_.tolist() == [0, 1]


# ---------------------------------------------------------------- prediction


def test_tiled_prediction_equals_whole_image():
    X, y = disks(4, size=40)
    X = np.repeat(X, 3, axis=-1)
    options = dict(TINY, convs_per_level=1, max_epochs=1)
    model = UNetSegmenter(**options).fit(X, y)
    image = np.random.default_rng(1).random((203, 181, 3)).astype(np.float32)
    whole = model.set_params(tile_size=256).predict_proba(image)
    # Tiles whose kept pixels are a receptive field away from their inner
    # borders see exactly the context of the whole image.
    radius = receptive_radius(2, 1, "transpose")
    tiled = model.set_params(tile_size=96, tile_overlap=4 * radius).predict_proba(image)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # Short overlaps blend seams: close, not exact.
    blended = model.set_params(tile_size=64, tile_overlap=16).predict_proba(image)
    assert np.abs(blended - whole).max() < 0.05
    assert (blended.argmax(-1) == whole.argmax(-1)).mean() > 0.99


def test_flip_tta_averages_flips(binary_model):
    X, _ = disks(2, seed=4)
    model = pickle.loads(pickle.dumps(binary_model))
    plain = model.predict_proba(X)
    flipped = model.predict_proba(X[:, :, ::-1])[:, :, ::-1]
    vflipped = model.predict_proba(X[:, ::-1])[:, ::-1]
    tta = model.set_params(tta=True).predict_proba(X)
    np.testing.assert_allclose(tta, (plain + flipped + vflipped) / 3, atol=1e-5)


# ------------------------------------------------------------- persistence


def test_save_load_identical_predictions(binary_model, tmp_path):
    X, _ = disks(3, seed=5)
    path = binary_model.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["params.json", "weights.pt"]
    loaded = UNetSegmenter.load(path)
    assert loaded.get_params() == binary_model.get_params()
    np.testing.assert_array_equal(loaded.classes_, binary_model.classes_)
    np.testing.assert_array_equal(loaded.predict(X), binary_model.predict(X))
    np.testing.assert_allclose(
        loaded.predict_proba(X), binary_model.predict_proba(X), atol=1e-6
    )
    assert loaded.history_["loss"] == binary_model.history_["loss"]
    assert UNetSegmenter.load(path, device="auto").device == "auto"


def test_save_load_keeps_class_weight_dict(tmp_path):
    X, y = disks(4, labels=(2, 5))
    model = UNetSegmenter(**TINY, max_epochs=1, class_weight={5: 3.0}).fit(X, y)
    loaded = UNetSegmenter.load(model.save(tmp_path / "m"))
    assert loaded.class_weight == {5: 3.0}


def test_load_rejects_other_folders(tmp_path):
    with pytest.raises(ValueError, match="not a saved UNetSegmenter"):
        UNetSegmenter.load(tmp_path)
    (tmp_path / "params.json").write_text('{"format": "other"}')
    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="does not describe a UNetSegmenter"):
        UNetSegmenter.load(tmp_path)


def test_pickle_and_clone(binary_model):
    X, _ = disks(3, seed=6)
    restored = pickle.loads(pickle.dumps(binary_model))
    np.testing.assert_array_equal(restored.predict(X), binary_model.predict(X))
    assert "_weights" not in restored.__dict__
    fresh = clone(binary_model)
    assert fresh.get_params() == binary_model.get_params()
    assert not hasattr(fresh, "model_")


def test_joblib_round_trip(binary_model, tmp_path):
    joblib = pytest.importorskip("joblib")
    X, _ = disks(2, seed=7)
    joblib.dump(binary_model, tmp_path / "m.joblib")
    restored = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(restored.predict(X), binary_model.predict(X))


# ------------------------------------------------------------------ training


def test_random_state_reproducible_on_cpu():
    X, y = disks(6)
    options = dict(TINY, max_epochs=2, dropout=0.1, validation_fraction=0.34)
    a = UNetSegmenter(**options).fit(X, y)
    b = UNetSegmenter(**options).fit(X, y)
    assert a.history_["loss"] == b.history_["loss"]
    for (name, wa), wb in zip(
        a.model_.state_dict().items(), b.model_.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(wa, wb, rtol=0, atol=0, msg=name)
    c = UNetSegmenter(**{**options, "random_state": 1}).fit(X, y)
    assert c.history_["loss"] != a.history_["loss"]


def test_fit_leaves_global_torch_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    X, y = disks(2)
    UNetSegmenter(**TINY, max_epochs=1).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


def test_warm_start_continues_training():
    X, y = disks(8)
    options = dict(TINY, max_epochs=3, lr=1e-2, init_features=8)
    model = UNetSegmenter(**options, warm_start=True).fit(X, y)
    first = list(model.history_["loss"])
    model.fit(X, y)
    assert model.n_epochs_ == 6
    assert model.history_["epoch"] == [1, 2, 3, 4, 5, 6]
    assert model.history_["loss"][:3] == first
    # Continuing from trained weights starts far below a fresh start.
    assert model.history_["loss"][3] < 0.8 * first[0]
    cold = UNetSegmenter(**options).fit(X, y)
    cold.fit(X, y)
    assert cold.n_epochs_ == 3
    with pytest.raises(ValueError, match="warm_start: y has classes"):
        model.fit(X, y * 2)


def test_validation_history_and_early_stopping():
    X, y = disks(8)
    model = UNetSegmenter(
        **TINY, max_epochs=30, validation_fraction=0.25, n_iter_no_change=2
    ).fit(X, y)
    history = model.history_
    n = len(history["loss"])
    assert all(0.0 <= d <= 1.0 for d in history["val_dice"])
    assert all(
        i <= d + 1e-12
        for d, i in zip(history["val_dice"], history["val_iou"], strict=True)
    )
    best = int(np.argmax(history["val_dice"])) + 1
    assert model.best_epoch_ == best
    # Stopped exactly when the Dice had not improved for 2 epochs, or at the end.
    assert n == 30 or n == best + 2
    without = UNetSegmenter(**TINY, max_epochs=2).fit(X, y)
    assert np.isnan(without.history_["val_dice"]).all()
    assert without.best_epoch_ is None


def test_validation_scores_match_sklearn():
    from skseg.unet.training import validation_scores

    rng = np.random.default_rng(0)
    truths = [rng.integers(-1, 3, (9, 7)) for _ in range(3)]
    preds = [rng.integers(0, 3, (9, 7)) for _ in range(3)]
    t = np.concatenate([a.ravel() for a in truths])
    p = np.concatenate([a.ravel() for a in preds])
    keep = t >= 0
    dice, iou = validation_scores(truths, preds, 3)
    assert dice == pytest.approx(f1_score(t[keep], p[keep], average="macro"))
    assert iou == pytest.approx(jaccard_score(t[keep], p[keep], average="macro"))
    binary_t, binary_p = [np.clip(a, -1, 1) for a in truths], [a % 2 for a in preds]
    dice, _ = validation_scores(binary_t, binary_p, 2)
    bt = np.concatenate([a.ravel() for a in binary_t])
    bp = np.concatenate([a.ravel() for a in binary_p])
    assert dice == pytest.approx(f1_score(bt[bt >= 0], bp[bt >= 0]))


def test_max_time_stops_training():
    X, y = disks(4)
    model = UNetSegmenter(**TINY, max_epochs=10_000, max_time=0.5).fit(X, y)
    assert 1 <= model.n_epochs_ < 10_000


def test_verbose_shows_progress_bar(capsys):
    X, y = disks(4)
    UNetSegmenter(**TINY, max_epochs=2, verbose=True).fit(X, y)
    assert "UNetSegmenter" in capsys.readouterr().err


# ---------------------------------------------------------------- bad input


def test_bad_input_errors():
    X, y = disks(3)
    model = UNetSegmenter(**TINY, max_epochs=1)
    with pytest.raises(ValueError, match="has shape .* but its image is"):
        model.fit(X, y[:, :30, :])
    with pytest.raises(ValueError, match="only 0"):
        model.fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="no labelled pixel"):
        UNetSegmenter(**TINY, ignore_index=0).fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="empty"):
        model.fit([], [])
    with pytest.raises(ValueError, match="3 masks for 2 images"):
        model.fit(X[:2], y)
    bad = X.copy()
    bad[0, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, y)
    with pytest.raises(NotFittedError):
        model.predict(X)
    with pytest.raises(ValueError, match="leaves no training image"):
        UNetSegmenter(**TINY, validation_fraction=0.9).fit(X[:1], y[:1])
    fitted = model.fit(X, y)
    with pytest.raises(ValueError, match="3 channels but the model was fitted"):
        fitted.predict(np.zeros((2, 32, 32, 3), np.float32))


@pytest.mark.parametrize(
    "param, value, error",
    [
        ("loss", "focal", ValueError),
        ("upsampling", "nearest", ValueError),
        ("depth", 0, ValueError),
        ("init_features", 2.5, TypeError),
        ("dropout", 1.0, ValueError),
        ("lr", 0.0, ValueError),
        ("validation_fraction", 1.0, ValueError),
        ("class_weight", "auto", ValueError),
        ("ignore_index", 1.5, TypeError),
        ("device", "cuda:99" if torch.cuda.is_available() else "cuda", ValueError),
        ("device", "not-a-device", ValueError),
    ],
)
def test_bad_parameters(param, value, error):
    X, y = disks(2)
    with pytest.raises(error, match=param if param != "device" else "device"):
        UNetSegmenter(**{**TINY, param: value}, max_epochs=1).fit(X, y)


# ---------------------------------------------------------------- ecosystem


def test_grid_search_with_dice_scorer():
    from sklearn.model_selection import GridSearchCV

    from skseg.metrics import dice_scorer

    X, y = disks(9)
    search = GridSearchCV(
        UNetSegmenter(**TINY, max_epochs=2),
        {"lr": [1e-2, 1e-4]},
        scoring=dice_scorer,
        cv=3,
    )
    search.fit(X, y)
    assert search.best_params_["lr"] in (1e-2, 1e-4)
    assert 0.0 <= search.best_score_ <= 1.0
    assert search.predict(X).shape == y.shape


def test_cross_val_score_and_pipeline():
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from skseg.metrics import dice_scorer

    X, y = disks(6)
    scores = cross_val_score(
        UNetSegmenter(**TINY, max_epochs=1), X, y, scoring=dice_scorer, cv=2
    )
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    # Inverting the intensities in a pipeline step: the model sees dark disks.
    pipe = make_pipeline(
        FunctionTransformer(lambda images: 1.0 - images),
        UNetSegmenter(**{**TINY, "init_features": 8}, max_epochs=10, lr=1e-2),
    )
    pipe.fit(X, y)
    Xt, yt = disks(4, seed=9)
    assert f1_score(yt.ravel(), pipe.predict(Xt).ravel()) > 0.7


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_mixed_precision_path():
    X, y = disks(8)
    model = UNetSegmenter(**{**TINY, "device": "cuda"}, max_epochs=3).fit(X, y)
    assert model.device_.startswith("cuda")
    assert next(model.model_.parameters()).is_cuda
    restored = pickle.loads(pickle.dumps(model.set_params(device="cpu")))
    assert model.predict(X).shape == restored.predict(X).shape


def test_mixed_dtype_list_is_scaled_per_image(binary_model):
    # The same pictures as uint8, uint16 and float: the same training and labels.
    X, y = disks(4, seed=6)
    as_uint8 = [np.rint(im * 255).astype(np.uint8) for im in X]
    mixed = [as_uint8[0], as_uint8[1].astype(np.uint16) * 257, *as_uint8[2:]]
    mixed[3] = as_uint8[3] / np.float32(255)
    options = dict(TINY, max_epochs=1)
    reference = UNetSegmenter(**options).fit(as_uint8, list(y))
    model = UNetSegmenter(**options).fit(mixed, list(y))
    assert model.history_["loss"] == reference.history_["loss"]
    labels = binary_model.predict(mixed)
    for got, want in zip(labels, binary_model.predict(as_uint8), strict=True):
        np.testing.assert_array_equal(got, want)
