"""The ``skseg`` command line.

``skseg segment INPUT -o OUTPUT`` segments an image file, every image in a
folder, or a built-in sample (``sample:china``), writes label maps as palette
PNGs and, on request, an overlay on the image and a recoloured image.
``skseg train`` fits a U-Net on a dataset folder and saves it for
``skseg segment --method unet --model PATH``; ``skseg export`` writes such a
model as ONNX.

Bad paths and options end with a one-line error and exit status 2.
"""

import argparse
import sys
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
        parser.exit(2, f"skseg: error: {exc}\n")
    return 0


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skseg", description="Image segmentation with scikit-learn estimators."
    )
    parser.add_argument("--version", action="version", version=f"skseg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    seg = commands.add_parser(
        "segment",
        help="segment images and write label maps",
        description="Segment an image, a folder of images or a built-in sample "
        "(sample:china, sample:flower).",
    )
    seg.add_argument("input", help="image file, folder, or sample:NAME")
    seg.add_argument(
        "-o",
        "--output",
        required=True,
        help="label map PNG (a folder when INPUT is a folder)",
    )
    seg.add_argument("--method", choices=sorted(_METHODS), default="gmm")
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
    seg.add_argument("--max-iter", type=int, help="gmm/cnn: iteration limit (100 / 64)")
    seg.add_argument("--model", help="unet: a model saved by 'skseg train'")
    seg.add_argument("--device", default="auto", help="cnn/unet: torch device")
    seg.add_argument("--random-state", type=int, default=0)
    seg.set_defaults(run=_run_segment)

    train = commands.add_parser(
        "train",
        help="train a U-Net on a dataset folder",
        description="Train a UNetSegmenter on a dataset folder (images/ + masks/, "
        "VOC or labelme) and save it.",
    )
    train.add_argument("dataset", help="dataset folder")
    train.add_argument("-o", "--output", required=True, help="where to save the model")
    train.add_argument(
        "--layout", default="auto", choices=["auto", "images_masks", "voc", "labelme"]
    )
    train.add_argument("--depth", type=int, default=4, help="U-Net levels")
    train.add_argument(
        "--init-features", type=int, default=32, help="channels of the first level"
    )
    train.add_argument("--max-epochs", type=int, default=50)
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--patch-size", type=int, default=None)
    train.add_argument("--ignore-index", type=int, default=None)
    train.add_argument("--device", default="auto")
    train.add_argument("--random-state", type=int, default=0)
    train.add_argument("--verbose", action="store_true")
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
        max_iter=args.max_iter or 100,
        random_state=args.random_state,
    )


def _make_cnn(args):
    from .unsupervised_cnn import UnsupervisedCNNSegmenter

    params = {"method": args.variant, "max_iter": args.max_iter or 64}
    if args.variant == "superpixel":
        # The fast preset of the superpixel method; the papers' defaults
        # (10000 SLIC superpixels, up to 1000 iterations) take many minutes.
        params.update(superpixels="felzenszwalb", lr=0.05)
    return UnsupervisedCNNSegmenter(
        device=args.device, random_state=args.random_state, **params
    )


def _make_unet(args):
    from .unet import UNetSegmenter

    if not args.model:
        raise ValueError("--method unet needs --model PATH (from 'skseg train')")
    return UNetSegmenter.load(args.model, device=args.device)


# Method name -> (build the estimator from the options, fit it on each image).
_METHODS = {
    "gmm": (_make_gmm, True),
    "cnn": (_make_cnn, True),
    "unet": (_make_unet, False),
}


def _run_segment(args):
    from . import io

    jobs = _segment_jobs(args)
    make, fits_each_image = _METHODS[args.method]
    estimator = make(args)
    for name, image, output, overlay, recolor in jobs:
        labels = (
            estimator.fit_predict(image)
            if fits_each_image
            else estimator.predict(image)
        )
        io.write_label_map(output, labels)
        if overlay:
            io.write_overlay(overlay, image, labels, alpha=args.alpha)
        if recolor:
            io.write_image(recolor, _recolor(estimator, image, labels))
        n_segments = len(set(labels.ravel().tolist()))
        print(f"{name}: {n_segments} segments -> {output}")


def _segment_jobs(args):
    """(name, image, label path, overlay path, recolour path) for each input."""
    from . import io

    if args.input.startswith(SAMPLE_PREFIX):
        name = args.input[len(SAMPLE_PREFIX) :]
        return [(name, io.load_sample_image(name), *_outputs(args))]
    source = Path(args.input)
    if source.is_dir():
        files = sorted(
            p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise ValueError(f"no image files in folder {source}")
        dirs = _outputs(args)
        for folder in dirs:
            if folder:
                Path(folder).mkdir(parents=True, exist_ok=True)
        return [
            (
                f.name,
                io.read_image(f),
                *(Path(d) / f"{f.stem}.png" if d else None for d in dirs),
            )
            for f in files
        ]
    if not source.exists():
        raise FileNotFoundError(f"input not found: {source}")
    return [(source.name, io.read_image(source), *_outputs(args))]


def _outputs(args):
    return args.output, args.overlay, args.recolor


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

    data = load_segmentation_folder(args.dataset, layout=args.layout)
    model = UNetSegmenter(
        depth=args.depth,
        init_features=args.init_features,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patch_size=args.patch_size,
        ignore_index=args.ignore_index,
        device=args.device,
        random_state=args.random_state,
        verbose=int(args.verbose),
    )
    model.fit(data.images, data.masks)
    model.save(args.output)
    print(f"trained on {len(data.images)} images -> {args.output}")


def _run_export(args):
    from .unet import UNetSegmenter

    UNetSegmenter.load(args.model, device="cpu").to_onnx(args.output)
    print(f"{args.model} -> {args.output}")


if __name__ == "__main__":
    sys.exit(main())
