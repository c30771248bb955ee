"""The skseg command line: real runs on small images, and its error handling."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
        (
            [
                "segment",
                "sample:china",
                "-o",
                "x.png",
                "--method",
                "cnn",
                "--max-iter",
                "0",
            ],
            "max_iter",
        ),
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


def test_help_shows_the_defaults(capsys):
    for command, defaults in [
        ("segment", ["(default: gmm)", "(default: 100 for gmm, 64 for cnn)"]),
        ("train", ["(default: auto)", "(default: no limit)", "(default: 50)"]),
    ]:
        status, out, _ = _run([command, "--help"], capsys)
        assert status == 0
        text = " ".join(out.split())
        assert all(default in text for default in defaults), text
        assert "seed; " in text and "(default: 0)" in text
    status, out, _ = _run(["train", "--help"], capsys)
    assert "--max-time" in out and "--validation-fraction" in out


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
    args += ["--device", "cpu", "--validation-fraction", "0.5", "--max-time", "300"]
    args += ["--augment", "dihedral"]
    status, out, err = _run(args, capsys)
    assert status == 0, err
    from skseg import UNetSegmenter

    saved = UNetSegmenter.load(model)
    assert saved.validation_fraction == 0.5 and saved.max_time == 300
    assert saved.augment == "dihedral"
    # Validation ran: scores, not NaN, and the best one is reported.
    best = max(saved.history_["val_dice"])
    assert 0 <= best <= 1
    assert f"trained on 4 images, best validation Dice {best:.4f}" in out
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
    args += ["-o", str(out), "--recolor", str(recolor), "--verbose"]
    status, _, err = _run(args, capsys)
    assert status == 0, err
    # --verbose: which image, then a progress bar of the iterations.
    assert "china.png: segmenting (cnn)" in err and "/3 [" in err
    labels = np.asarray(Image.open(out))
    assert labels.shape == (30, 40)
    # Labels are consecutive and the recolouring has one colour per segment.
    assert np.unique(labels).tolist() == list(range(labels.max() + 1))
    painted = np.asarray(Image.open(recolor).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(painted, axis=0)) <= labels.max() + 1


# --------------------------------------------------------------------------
# Outputs never overwrite inputs
# --------------------------------------------------------------------------


def _one_line_error(status, err):
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("skseg: error:"), err
    assert "Traceback" not in err and "Errno" not in err, err


@pytest.mark.parametrize("option", ["-o", "--overlay", "--recolor"])
def test_an_output_that_is_the_input_file_is_refused(small_images, option, capsys):
    photo = small_images / "china.png"
    (small_images / "link.png").symlink_to(photo)
    before = photo.read_bytes()
    spare = small_images / "spare.png"
    for target in (
        photo,
        small_images / "link.png",
        small_images / ".." / "in" / photo.name,
    ):
        outputs = {"-o": spare, "--overlay": None, "--recolor": None, option: target}
        args = ["segment", str(photo), "-k", "2"]
        for flag, path in outputs.items():
            if path is not None:
                args += [flag, str(path)]
        status, _, err = _run(args, capsys)
        _one_line_error(status, err)
        assert "is the input image" in err and option in err
    assert photo.read_bytes() == before and not spare.exists()


def test_an_output_folder_that_is_the_input_folder_is_refused(
    small_images, tmp_path, capsys
):
    before = {p.name: p.read_bytes() for p in small_images.iterdir()}
    (tmp_path / "same").symlink_to(small_images, target_is_directory=True)
    for folder in (small_images, tmp_path / "same", small_images / ".." / "in"):
        for option in ("-o", "--overlay"):
            args = ["segment", str(small_images), "-o", str(tmp_path / "labels")]
            args += [option, str(folder)]
            status, _, err = _run(args, capsys)
            _one_line_error(status, err)
            assert "is the input folder" in err
    assert {p.name: p.read_bytes() for p in small_images.iterdir()} == before
    assert not (tmp_path / "labels").exists()


def test_outputs_that_would_overwrite_each_other_are_refused(
    small_images, tmp_path, capsys
):
    args = ["segment", str(small_images / "china.png"), "-o", str(tmp_path / "a.png")]
    status, _, err = _run([*args, "--overlay", str(tmp_path / "a.png")], capsys)
    _one_line_error(status, err)
    assert "-o and --overlay name the same path" in err
    # china.png and china.jpg would both be written as china.png.
    Image.open(small_images / "china.png").save(small_images / "china.jpg")
    args = ["segment", str(small_images), "-o", str(tmp_path / "out")]
    status, _, err = _run(args, capsys)
    _one_line_error(status, err)
    assert "china.jpg and china.png would both be written as china.png" in err


def test_max_iter_is_passed_through(small_images, tmp_path, capsys):
    # --max-iter 0 once became 100: 0 means k-means initialisation only.
    from skseg import GMMImageSegmenter
    from skseg.io import read_image

    photo = small_images / "flower.png"
    labels = {}
    for max_iter in (0, 100):
        out = tmp_path / f"labels{max_iter}.png"
        args = ["segment", str(photo), "-k", "4", "--max-iter", str(max_iter)]
        status, _, err = _run([*args, "-o", str(out)], capsys)
        assert status == 0, err
        labels[max_iter] = np.asarray(Image.open(out))
        expected = GMMImageSegmenter(k=4, max_iter=max_iter, random_state=0)
        np.testing.assert_array_equal(
            labels[max_iter], expected.fit_predict(read_image(photo))
        )
    assert not np.array_equal(labels[0], labels[100])


def test_missing_output_folder_is_one_line_before_any_work(tmp_path, capsys):
    missing = tmp_path / "nonexistent" / "dir"
    for option in ("-o", "--overlay", "--recolor"):
        args = ["segment", "sample:china", "-o", str(tmp_path / "a.png")]
        args += [option, str(missing / "b.png")]
        status, _, err = _run(args, capsys)
        _one_line_error(status, err)
        assert f"the folder {missing} does not exist" in err and option in err
    status, _, err = _run(["segment", "sample:china", "-o", "labels.jpg"], capsys)
    _one_line_error(status, err)
    assert "ending in .png" in err


def test_fifo_inputs_are_skipped_or_refused(
    small_images, tmp_path, capsys, fifo, returns_promptly
):
    pipe = fifo("in/pipe.png")
    out = tmp_path / "out"
    args = ["segment", str(small_images), "-o", str(out), "-k", "2"]
    status, _, err = returns_promptly(lambda: _run(args, capsys))
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["china.png", "flower.png"]
    args = ["segment", str(pipe), "-o", str(tmp_path / "p.png")]
    status, _, err = returns_promptly(lambda: _run(args, capsys))
    _one_line_error(status, err)
    assert "not a regular file" in err


# --------------------------------------------------------------------------
# Damaged inputs: one line, exit 2
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_unet(tmp_path_factory):
    pytest.importorskip("torch")
    from skseg import UNetSegmenter

    rng = np.random.default_rng(0)
    X = rng.random((2, 16, 16, 1)).astype(np.float32)
    y = (X[..., 0] > 0.5).astype(int)
    model = UNetSegmenter(depth=2, init_features=4, max_epochs=1, random_state=0)
    return model.fit(X, y).save(tmp_path_factory.mktemp("unet") / "model")


@pytest.fixture
def saved_unet(trained_unet, tmp_path):
    """A copy of a saved model folder, for a test to damage."""
    return Path(shutil.copytree(trained_unet, tmp_path / "model"))


def _damage(params_file, change):
    meta = json.loads(params_file.read_text())
    params_file.write_text(json.dumps(change(meta)))


@pytest.mark.parametrize("damage", ["no_params", "nested", "depth", "weights"])
def test_damaged_model_folder_is_one_line(saved_unet, tmp_path, capsys, damage):
    params_file = saved_unet / "params.json"
    if damage == "no_params":
        _damage(
            params_file, lambda meta: {k: v for k, v in meta.items() if k != "params"}
        )
    elif damage == "nested":
        params_file.write_text("[" * 100_000 + "]" * 100_000)
    elif damage == "depth":
        _damage(
            params_file, lambda meta: {**meta, "params": {**meta["params"], "depth": 3}}
        )
    else:
        (saved_unet / "weights.pt").write_bytes(b"PK\x03\x04 truncated")
    Image.new("L", (16, 16)).save(tmp_path / "x.png")
    args = ["segment", str(tmp_path / "x.png"), "--method", "unet"]
    args += [
        "--model",
        str(saved_unet),
        "--device",
        "cpu",
        "-o",
        str(tmp_path / "l.png"),
    ]
    status, _, err = _run(args, capsys)
    _one_line_error(status, err)
    assert "model" in err and len(err) < 500


def _labelme_folder(root, shape):
    root.mkdir()
    Image.new("L", (8, 6)).save(root / "a.png")
    data = {"shapes": [shape], "imagePath": "a.png", "imageHeight": 6, "imageWidth": 8}
    (root / "a.json").write_text(json.dumps(data))
    return root


_RECTANGLE = {"label": "x", "points": [[0, 0], [9, 9]], "shape_type": "rectangle"}


@pytest.mark.parametrize(
    ("shape", "class_names", "message"),
    [
        ({**_RECTANGLE, "points": [[0, 0], [10**400, 1]]}, None, r"a\.json.*points"),
        ({**_RECTANGLE, "shape_type": ["circle"]}, None, r"a\.json.*shape_type"),
        (_RECTANGLE, b"_background_\n\xff\xfe\n", r"class_names\.txt.*UTF-8"),
    ],
)
def test_bad_dataset_is_one_line(tmp_path, capsys, shape, class_names, message):
    root = _labelme_folder(tmp_path / "ds", shape)
    if class_names is not None:
        (root / "class_names.txt").write_bytes(class_names)
    args = ["train", str(root), "-o", str(tmp_path / "model"), "--max-epochs", "1"]
    status, _, err = _run(args, capsys)
    _one_line_error(status, err)
    assert re.search(message, err), err


# --------------------------------------------------------------------------
# What a new user meets
# --------------------------------------------------------------------------


def test_importing_from_the_source_tree_says_what_to_do(tmp_path):
    # A checkout: pyproject.toml beside the package, whose compiled core is
    # built into site-packages, not here. Python puts the current directory
    # first on sys.path, so the source tree shadows the installed package.
    import skseg

    checkout = tmp_path / "checkout"
    (checkout / "skseg").mkdir(parents=True)
    shutil.copy(skseg.__file__, checkout / "skseg" / "__init__.py")
    (checkout / "pyproject.toml").write_text("[project]\nname = 'skseg'\n")
    result = subprocess.run(
        [sys.executable, "-c", "import skseg"],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: skseg's compiled core (skseg._core) is")
    assert "shadows the installed package" in last
    assert "run Python from another directory" in last
    # From elsewhere the installed package imports.
    elsewhere = subprocess.run(
        [sys.executable, "-c", "import skseg; skseg.build_info()"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert elsewhere.returncode == 0, elsewhere.stderr


def test_missing_torch_message_works_from_a_checkout():
    from skseg._torch import require

    with pytest.raises(ImportError) as info:
        require("skseg_no_such_module", "UNetSegmenter")
    message = str(info.value)
    assert "pip install 'skseg[torch]'" in message
    assert "from a source checkout: pip install '.[torch]'" in message


def test_quick_start_outputs_are_ignored_by_git_and_the_sdist():
    # scikit-build-core leaves what .gitignore names out of the sdist, so the
    # files the README's quick start writes must be ignored.
    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    readme = (root / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if "skseg segment" in line)
    outputs = re.findall(r"(?:-o|--overlay|--recolor) (\S+)", command)
    assert len(outputs) == 3, command
    for path in outputs:
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", path], cwd=root
        )
        assert ignored.returncode == 0, f"{path} is not ignored by .gitignore"
