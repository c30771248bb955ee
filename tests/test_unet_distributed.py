"""UNetSegmenter trained with DistributedDataParallel on two CPU processes
(gloo), against the same fit in one process.

The fits with ``n_processes=2`` run in a script with a ``__main__`` guard, as
users must write them: spawned processes import the parent's main module, and
a test runner's may not be guarded.
"""

import inspect
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover - exotic builds
    pytest.skip("torch was built without torch.distributed", allow_module_level=True)

from skseg.unet import UNetSegmenter  # noqa: E402


def squares(n, size=24, seed=0):
    """Grey images of a bright square on noise, with the square as the mask."""
    rng = np.random.default_rng(seed)
    images = 0.2 + 0.1 * rng.standard_normal((n, size, size, 1))
    masks = np.zeros((n, size, size), dtype=np.int64)
    for image, mask in zip(images, masks, strict=True):
        y, x = rng.integers(2, size - 10, 2)
        image[y : y + 8, x : x + 8] += 0.6
        mask[y : y + 8, x : x + 8] = 1
    return np.clip(images, 0, 1).astype(np.float32), masks


PARAMS = dict(
    depth=2,
    init_features=4,
    max_epochs=6,
    batch_size=4,
    patch_size=None,
    lr=1e-2,
    device="cpu",
    random_state=0,
)


def run_script(tmp_path, body):
    """Run ``body`` in a fresh, guarded script with ``squares`` and ``PARAMS``."""
    script = tmp_path / "fit_ddp.py"
    main = textwrap.indent(textwrap.dedent(body), "    ")
    script.write_text(
        "import numpy as np\nimport torch\nfrom skseg.unet import UNetSegmenter\n\n"
        f"{inspect.getsource(squares)}\n"
        f"PARAMS = {PARAMS!r}\n\nif __name__ == '__main__':\n"
        f"    torch.set_num_threads(1)\n{main}"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.usefixtures("torch_one_thread")
def test_ddp_on_two_cpu_processes(tmp_path):
    # One spawned run only: each process imports torch, slow on a busy machine.
    X, y = squares(8)
    params = dict(PARAMS, validation_fraction=0.25)
    run_script(
        tmp_path,
        """
        X, y = squares(8)
        params = dict(PARAMS, validation_fraction=0.25, n_processes=2)
        UNetSegmenter(**params).fit(X, y).save("ddp")
        """,
    )
    single = UNetSegmenter(**params).fit(X, y)
    # The DDP model loads in one process, as an ordinary estimator.
    ddp = UNetSegmenter.load(tmp_path / "ddp")

    assert type(ddp.model_) is type(single.model_)
    assert ddp.get_params()["n_processes"] == 2
    assert ddp.n_epochs_ == 6 and ddp.history_["epoch"] == list(range(1, 7))
    # Rank 0's history counts the samples of both processes' shares, and
    # its validation (on rank 0) scored every epoch.
    assert ddp.history_["samples"] == single.history_["samples"]
    assert np.isfinite(ddp.history_["val_dice"]).all()
    assert 1 <= ddp.best_epoch_ <= 6
    # The same optimisation, shared out: the loss falls as in one process.
    loss, ref = np.array(ddp.history_["loss"]), np.array(single.history_["loss"])
    assert loss[-1] < 0.9 * loss[0]
    np.testing.assert_allclose(loss, ref, rtol=0.15)
    # And it segments as well as the single-process model.
    accuracy = (ddp.predict(X) == y).mean()
    assert accuracy >= (single.predict(X) == y).mean() - 0.05


def test_n_processes_is_checked():
    X, y = squares(2)
    with pytest.raises(ValueError, match="n_processes"):
        UNetSegmenter(n_processes=0).fit(X, y)


def test_ddp_keeps_a_frozen_pretrained_encoder(tmp_path):
    # Under DDP a frozen encoder keeps its gradients (DDP reduces them in every
    # step) and gets a learning rate of 0: its weights and batch-norm
    # statistics must come out exactly as loaded.
    run_script(
        tmp_path,
        """
        from skseg.unet.encoders import build_encoder
        torch.manual_seed(0)
        torch.save(build_encoder("resnet18", 3, 2).state_dict(), "w.pth")
        X, y = squares(8)
        params = dict(PARAMS, max_epochs=2, n_processes=2)
        UNetSegmenter(
            encoder="resnet18", encoder_weights="w.pth", freeze_epochs=2, **params
        ).fit(X, y).save("ddp")
        """,
    )
    state = torch.load(tmp_path / "w.pth", weights_only=True)
    model = UNetSegmenter.load(tmp_path / "ddp")
    encoder = model.model_.encoder.state_dict()
    # conv1 was adapted from 3 input channels to the images' 1.
    assert set(encoder) == set(state)
    for key in set(state) - {"conv1.weight"}:
        torch.testing.assert_close(encoder[key], state[key], rtol=0, atol=0, msg=key)
    assert model.n_epochs_ == 2
