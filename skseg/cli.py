"""The ``skseg`` command line.

``skseg segment INPUT -o OUTPUT`` segments an image file, every image in a
folder, or a built-in sample (``sample:china``), writes label maps as palette
PNGs and, on request, an overlay on the image and a recoloured image.
``skseg train`` fits a U-Net on a dataset folder and saves it for
``skseg segment --method unet --model PATH``; ``skseg export`` writes such a
model as ONNX.

Bad paths and options end with a one-line error and exit status 2, and so
does an output that would overwrite an input; every output path is checked
before the first image is segmented.
"""

import argparse
import os
import sys
from functools import partial
from pathlib import Path

from . import __version__

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
SAMPLE_PREFIX = "sample:"


def main(argv=None):
    """Run the command line with ``argv`` (default ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success. Errors in the input exit with status 2 and one line on
        standard error, not a traceback.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        # Some messages (torch's, for one) span lines; the error stays one.
        parser.exit(2, f"skseg: error: {' '.join(str(exc).split())}\n")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default where it has one."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skseg",
        description="Image segmentation with scikit-learn estimators.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skseg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    seg = commands.add_parser(
        "segment",
        help="segment images and write label maps",
        description="Segment an image, a folder of images or a built-in sample "
        "(sample:china, sample:flower). Outputs never overwrite inputs.",
        formatter_class=_HelpFormatter,
    )
    seg.add_argument("input", help="image file, folder, or sample:NAME")
    seg.add_argument(
        "-o",
        "--output",
        required=True,
        help="label map PNG (a folder when INPUT is a folder)",
    )
    seg.add_argument(
        "--method", choices=sorted(_METHODS), default="gmm", help="segmenter"
    )
    seg.add_argument("--overlay", help="also write labels blended on the image here")
    seg.add_argument(
        "--recolor", help="also write the image painted with segment mean colours"
    )
    seg.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    seg.add_argument("-k", type=int, default=8, help="gmm: number of components")
    seg.add_argument(
        "--covariance-type",
        default="full",
        choices=["full", "tied", "diag", "spherical"],
        help="gmm: covariance structure",
    )
    seg.add_argument(
        "--color-space",
        default="rgb",
        choices=["rgb", "lab", "hsv", "grey"],
        help="gmm: colour features",
    )
    seg.add_argument(
        "--spatial-weight", type=float, default=0.0, help="gmm: weight of position"
    )
    seg.add_argument(
        "--variant",
        default="superpixel",
        choices=["superpixel", "continuity"],
        help="cnn: the published variant (superpixel: Felzenszwalb, lr 0.05)",
    )
    seg.add_argument(
        "--max-iter",
        type=int,
        help="gmm/cnn: iteration limit (default: 100 for gmm, 64 for cnn)",
    )
    seg.add_argument("--model", help="unet: a model saved by 'skseg train'")
    seg.add_argument("--device", default="auto", help="cnn/unet: torch device")
    seg.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed; the same seed gives the same segments",
    )
    seg.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show progress (cnn: a progress bar; gmm: EM iterations)",
    )
    seg.set_defaults(run=_run_segment)

    train = commands.add_parser(
        "train",
        help="train a U-Net on a dataset folder",
        description="Train a UNetSegmenter on a dataset folder (images/ + masks/, "
        "VOC or labelme) and save it.",
        formatter_class=_HelpFormatter,
    )
    train.add_argument("dataset", help="dataset folder")
    train.add_argument("-o", "--output", required=True, help="where to save the model")
    train.add_argument(
        "--layout",
        default="auto",
        choices=["auto", "images_masks", "voc", "labelme"],
        help="dataset layout; auto detects it from the folder",
    )
    train.add_argument("--depth", type=int, default=4, help="U-Net levels")
    train.add_argument(
        "--init-features", type=int, default=16, help="channels of the first level"
    )
    train.add_argument(
        "--augment",
        default="hflip",
        choices=["hflip", "dihedral", "none"],
        help="symmetries of the data: hflip (photos, street scenes; default), "
        "dihedral (all flips and quarter turns: micrographs, aerial tiles), none",
    )
    train.add_argument(
        "--max-epochs", type=int, default=50, help="passes over the training images"
    )
    train.add_argument(
        "--max-time",
        type=float,
        help="stop training after this many seconds (default: no limit)",
    )
    train.add_argument(
        "--validation-fraction",
        type=float,
        help="hold out this fraction of the images to score Dice after every "
        "epoch and keep the best epoch (default: no validation)",
    )
    train.add_argument("--batch-size", type=int, default=4, help="training batch size")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    train.add_argument(
        "--patch-size",
        type=int,
        help="side of the square patches trained on (default: whole images)",
    )
    train.add_argument(
        "--ignore-index", type=int, help="mask value of unlabelled pixels"
    )
    train.add_argument("--device", default="auto", help="torch device")
    train.add_argument(
        "--random-state",
        type=int,
        default=0,
        help="seed; on the CPU the same seed trains the same model",
    )
    train.add_argument(
        "-v", "--verbose", action="store_true", help="show a progress bar"
    )
    train.set_defaults(run=_run_train)

    export = commands.add_parser(
        "export",
        help="export a saved U-Net to ONNX",
        description="Write a model saved by 'skseg train' (or UNetSegmenter.save) "
        "as an ONNX file with dynamic batch, height and width; needs "
        "pip install 'skseg[onnx]'.",
    )
    export.add_argument("model", help="model folder")
    export.add_argument("-o", "--output", required=True, help="the .onnx file")
    export.set_defaults(run=_run_export)
    return parser


# -- segment -------------------------------------------------------------------


def _make_gmm(args):
    from .mixture import GMMImageSegmenter

    return GMMImageSegmenter(
        k=args.k,
        covariance_type=args.covariance_type,
        color_space=args.color_space,
        spatial_weight=args.spatial_weight,
        max_iter=100 if args.max_iter is None else args.max_iter,
        random_state=args.random_state,
        verbose=int(args.verbose),
    )


def _make_cnn(args):
    from .unsupervised_cnn import UnsupervisedCNNSegmenter

    params = {
        "method": args.variant,
        "max_iter": 64 if args.max_iter is None else args.max_iter,
    }
    if args.variant == "superpixel":
        # The fast preset of the superpixel method; the papers' defaults
        # (10000 SLIC superpixels, up to 1000 iterations) take many minutes.
        params.update(superpixels="felzenszwalb", lr=0.05)
    return UnsupervisedCNNSegmenter(
        device=args.device,
        random_state=args.random_state,
        verbose=args.verbose,
        **params,
    )


# Raised by torch and json on damaged model files that UNetSegmenter.load does
# not itself turn into a ValueError.
_MODEL_FILE_ERRORS = (KeyError, IndexError, EOFError, RuntimeError)
_MAX_DETAIL = 200


def _make_unet(args):
    from .unet import UNetSegmenter

    if not args.model:
        raise ValueError("--method unet needs --model PATH (from 'skseg train')")
    try:
        return UNetSegmenter.load(args.model, device=args.device)
    except _MODEL_FILE_ERRORS as exc:  # RecursionError is a RuntimeError
        detail = " ".join(str(exc).split())
        if len(detail) > _MAX_DETAIL:  # torch lists every mismatched tensor
            detail = detail[:_MAX_DETAIL] + " ..."
        raise ValueError(
            f"cannot load the model {args.model!r} (damaged, or not saved by "
            f"'skseg train'): {type(exc).__name__}: {detail}"
        ) from None


# Method name -> (build the estimator from the options, fit it on each image).
_METHODS = {
    "gmm": (_make_gmm, True),
    "cnn": (_make_cnn, True),
    "unet": (_make_unet, False),
}


def _run_segment(args):
    from . import io

    # Every path is checked before the first (possibly long) fit.
    jobs = _segment_jobs(args)
    make, fits_each_image = _METHODS[args.method]
    estimator = make(args)
    for name, read, outputs in jobs:
        image = read()
        if args.verbose:
            print(f"{name}: segmenting ({args.method})", file=sys.stderr, flush=True)
        labels = (
            estimator.fit_predict(image)
            if fits_each_image
            else estimator.predict(image)
        )
        io.write_label_map(outputs["-o"], labels)
        if "--overlay" in outputs:
            io.write_overlay(outputs["--overlay"], image, labels, alpha=args.alpha)
        if "--recolor" in outputs:
            io.write_image(outputs["--recolor"], _recolor(estimator, image, labels))
        n_segments = len(set(labels.ravel().tolist()))
        print(f"{name}: {n_segments} segments -> {outputs['-o']}", flush=True)


def _segment_jobs(args):
    """(name, read the image, {option: output path}) for each input, after
    checking that the outputs can be written and overwrite no input."""
    from . import io

    outputs = {
        option: Path(path)
        for option, path in (
            ("-o", args.output),
            ("--overlay", args.overlay),
            ("--recolor", args.recolor),
        )
        if path
    }
    _check_distinct(outputs)
    if args.input.startswith(SAMPLE_PREFIX):
        name = args.input[len(SAMPLE_PREFIX) :]
        _check_output_files(outputs)
        return [(name, partial(io.load_sample_image, name), outputs)]
    source = Path(args.input)
    if source.is_dir():
        # Regular files only: reading a FIFO named *.png would wait forever.
        files = sorted(
            p
            for p in source.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not files:
            raise ValueError(f"no image files in folder {source}")
        for option, folder in outputs.items():
            if folder.exists() and not folder.is_dir():
                raise ValueError(
                    f"{option} {folder} is a file; for a folder of images it "
                    "names the folder to write into"
                )
            if _same_path(folder, source):
                raise ValueError(
                    f"{option} {folder} is the input folder; its PNG files would "
                    "overwrite or mix with the input images: choose another folder"
                )
        _check_distinct_stems(files)
        for folder in outputs.values():
            folder.mkdir(parents=True, exist_ok=True)
        return [
            (
                f.name,
                partial(io.read_image, f),
                {option: d / f"{f.stem}.png" for option, d in outputs.items()},
            )
            for f in files
        ]
    if not source.exists():
        raise FileNotFoundError(f"input not found: {source}")
    _check_output_files(outputs)
    for option, path in outputs.items():
        if _same_path(path, source):
            raise ValueError(
                f"{option} {path} is the input image, which it would overwrite: "
                "choose another output file"
            )
    return [(source.name, partial(io.read_image, source), outputs)]


def _same_path(a, b):
    """Whether two paths name one file, through links and ``..``; paths that
    do not exist yet are compared as resolved."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_distinct(outputs):
    options = list(outputs)
    for i, first in enumerate(options):
        for second in options[i + 1 :]:
            if _same_path(outputs[first], outputs[second]):
                raise ValueError(
                    f"{first} and {second} name the same path "
                    f"{outputs[first]}; give each output its own"
                )


def _check_output_files(outputs):
    """Output files need an existing folder and a suffix they can be written
    in, checked now rather than after the segmentation."""
    from PIL import Image

    for option, path in outputs.items():
        if path.is_dir():
            raise ValueError(f"{option} {path} is a folder; expected a file name")
        if not path.parent.is_dir():
            raise ValueError(
                f"{option} {path}: the folder {path.parent} does not exist"
            )
        suffix = path.suffix.lower()
        if option == "-o" and suffix != ".png":
            raise ValueError(
                f"-o {path}: label maps are written as PNG; use a name ending in .png"
            )
        if suffix not in Image.registered_extensions():
            raise ValueError(
                f"{option} {path}: unknown image file extension {suffix!r} "
                "(use .png or .jpg)"
            )


def _check_distinct_stems(files):
    """Two inputs with one stem (a.jpg, a.png) would write the same a.png."""
    by_stem = {}
    for file in files:
        if file.stem in by_stem:
            raise ValueError(
                f"{by_stem[file.stem].name} and {file.name} would both be "
                f"written as {file.stem}.png; rename one"
            )
        by_stem[file.stem] = file


def _recolor(estimator, image, labels):
    """The GMM's palette where there is one, else each segment's mean colour."""
    if hasattr(estimator, "recolor"):
        return estimator.recolor(image)
    from ._validation import check_image
    from .color import mean_color_image

    return mean_color_image(check_image(image), labels)


# -- train ---------------------------------------------------------------------


def _run_train(args):
    from .datasets import load_segmentation_folder
    from .unet import UNetSegmenter

    output = Path(args.output)
    # Checked before training, not after it.
    if output.exists() and not output.is_dir():
        raise ValueError(f"-o {output} exists and is not a folder")
    data = load_segmentation_folder(args.dataset, layout=args.layout)
    model = UNetSegmenter(
        depth=args.depth,
        init_features=args.init_features,
        augment=args.augment,
        max_epochs=args.max_epochs,
        max_time=args.max_time,
        batch_size=args.batch_size,
        lr=args.lr,
        patch_size=args.patch_size,
        validation_fraction=args.validation_fraction,
        ignore_index=args.ignore_index,
        device=args.device,
        random_state=args.random_state,
        verbose=args.verbose,
    )
    model.fit(data.images, data.masks)
    model.save(output)
    message = f"trained on {len(data.images)} images"
    if args.validation_fraction is not None:
        message += f", best validation Dice {max(model.history_['val_dice']):.4f}"
    print(f"{message} -> {output}")


def _run_export(args):
    from .unet import UNetSegmenter

    UNetSegmenter.load(args.model, device="cpu").to_onnx(args.output)
    print(f"{args.model} -> {args.output}")


if __name__ == "__main__":
    sys.exit(main())
