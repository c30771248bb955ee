"""The skseg command line: real runs on small images, and its error handling."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from skseg import __version__
from skseg.cli import main


@pytest.fixture
def small_images(tmp_path):
    """Two small real photographs (crops of scikit-learn's samples) as files."""
    from sklearn.datasets import load_sample_image

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("china", "flower"):
        crop = load_sample_image(f"{name}.jpg")[100:160:2, 200:280:2]
        Image.fromarray(crop).save(folder / f"{name}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _run(args, capsys):
    try:
        status = main(args)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_version(capsys):
    status, out, _ = _run(["--version"], capsys)
    assert status == 0 and out.strip() == f"skseg {__version__}"


def test_segment_sample_image_writes_labels_overlay_and_recolour(tmp_path, capsys):
    labels_path = tmp_path / "labels.png"
    overlay_path = tmp_path / "overlay.png"
    recolor_path = tmp_path / "recolor.png"
    args = ["segment", "sample:flower", "-k", "4", "--max-iter", "20"]
    args += ["-o", str(labels_path), "--overlay", str(overlay_path)]
    args += ["--recolor", str(recolor_path)]
    status, out, _ = _run(args, capsys)
    assert status == 0, out
    labels = Image.open(labels_path)
    assert labels.mode == "P" and labels.size == (640, 427)
    values = np.unique(np.asarray(labels))
    assert set(values.tolist()) <= {0, 1, 2, 3} and len(values) >= 2
    assert Image.open(overlay_path).size == (640, 427)
    recolored = np.asarray(Image.open(recolor_path).convert("RGB"))
    assert len(np.unique(recolored.reshape(-1, 3), axis=0)) <= 4
    assert "segments" in out


def test_segment_folder_writes_one_map_per_image(small_images, tmp_path, capsys):
    out_dir = tmp_path / "out"
    args = ["segment", str(small_images), "-o", str(out_dir), "-k", "3"]
    status, out, _ = _run(args, capsys)
    assert status == 0, out
    assert sorted(p.name for p in out_dir.iterdir()) == ["china.png", "flower.png"]
    assert np.asarray(Image.open(out_dir / "china.png")).shape == (30, 40)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["segment", "no/such/file.png", "-o", "x.png"], "not found"),
        (["segment", "sample:nothing", "-o", "x.png"], "nothing"),
        (["segment", "sample:china", "-o", "x.png", "-k", "0"], "k must be >= 1"),
        (["segment", "sample:china", "-o", "x.png", "--method", "unet"], "--model"),
    ],
)
def test_errors_are_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = _run(args, capsys)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("skseg: error:")
    assert message in err
    assert "Traceback" not in err


def test_unreadable_image_is_an_error_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    status, _, err = _run(["segment", str(bad), "-o", str(tmp_path / "o.png")], capsys)
    assert status == 2 and "broken.png" in err


def test_bad_option_is_a_usage_error(capsys):
    args = ["segment", "sample:china", "-o", "x", "--method", "x"]
    status, _, err = _run(args, capsys)
    assert status == 2 and "invalid choice" in err


@pytest.mark.skipif(shutil.which("skseg") is None, reason="console script not on PATH")
def test_console_script_is_installed():
    result = subprocess.run(
        ["skseg", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"skseg {__version__}"


def test_train_then_segment_with_the_saved_unet(tmp_path, capsys):
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i in range(4):
        mask = np.zeros((32, 32), np.uint8)
        mask[rng.integers(4, 12) :, rng.integers(4, 12) :][:12, :12] = 1
        image = (mask * 180 + rng.integers(0, 40, mask.shape)).astype(np.uint8)
        Image.fromarray(image).save(data / "images" / f"im{i}.png")
        Image.fromarray(mask).save(data / "masks" / f"im{i}.png")
    model = tmp_path / "model"
    args = ["train", str(data), "-o", str(model), "--depth", "2"]
    args += ["--init-features", "4", "--max-epochs", "2", "--patch-size", "32"]
    args += ["--device", "cpu"]
    status, out, err = _run(args, capsys)
    assert status == 0, err
    assert "trained on 4 images" in out
    labels_path = tmp_path / "labels.png"
    args = ["segment", str(data / "images" / "im0.png"), "--method", "unet"]
    args += ["--model", str(model), "--device", "cpu", "-o", str(labels_path)]
    status, out, err = _run(args, capsys)
    assert status == 0, err
    labels = np.asarray(Image.open(labels_path))
    assert labels.shape == (32, 32) and set(np.unique(labels)) <= {0, 1}


@pytest.mark.parametrize("variant", ["superpixel", "continuity"])
def test_segment_with_the_unsupervised_cnn(small_images, tmp_path, capsys, variant):
    pytest.importorskip("torch")
    out = tmp_path / "labels.png"
    recolor = tmp_path / "recolor.png"
    args = ["segment", str(small_images / "china.png"), "--method", "cnn"]
    args += ["--variant", variant, "--max-iter", "3", "--device", "cpu"]
    args += ["-o", str(out), "--recolor", str(recolor)]
    status, _, err = _run(args, capsys)
    assert status == 0, err
    labels = np.asarray(Image.open(out))
    assert labels.shape == (30, 40)
    # Labels are consecutive and the recolouring has one colour per segment.
    assert np.unique(labels).tolist() == list(range(labels.max() + 1))
    painted = np.asarray(Image.open(recolor).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(painted, axis=0)) <= labels.max() + 1
