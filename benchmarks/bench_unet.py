"""Benchmark UNetSegmenter against a tutorial U-Net loop (and smp's Unet).

ISBI 2012 membranes (train on slices 00-23, test on 24-29, membrane = mask
value 0 is the positive class): every model (skseg's U-Net, skseg on the
ImageNet encoders, the tutorial U-Net in a plain loop) trains for the same
wall-clock budget in this run, then test Dice and IoU of the membrane class
and training throughput are printed. CamVid subset (12 classes, 11 =
unlabelled/ignored): mIoU and pixel accuracy on the last quarter of the
frames (sorted by name) of UNetSegmenter from scratch and with ImageNet
encoders (EfficientNet-Lite0 from skseg[pretrained]; ResNet-18 only when
torchvision's file is in the torch hub cache), with training and prediction
images per second: all with horizontal flips only (street scenes have an up),
the from-scratch model in the default (residual) architecture. The ISBI and
loop sections pin the configurations they were first measured with (the
classic architecture, dihedral augmentation).
Loops: the tutorial's network trained by both loops, images per second.
MONAI (``--sections monai``): UNetSegmenter's default configuration against
MONAI's 2-D tutorial UNet, DiceCELoss, Adam 1e-3 and SlidingWindowInferer, on
both data sets, with the same patches, augmentation, budget and metric code;
metric, training patches/s, prediction seconds per test image, and prediction
time and peak memory in a fresh process (``--seeds 0,1`` for a second seed).

Usage::

    python benchmarks/bench_unet.py --budget 600
    python benchmarks/bench_unet.py --quick          # 60 s budgets, smoke run
    python benchmarks/bench_unet.py --sections loops # one part only
    python benchmarks/bench_unet.py --sections monai --budget 300 --seeds 0,1
"""

import argparse
import time
from pathlib import Path

import numpy as np

from skseg.datasets import load_segmentation_folder
from skseg.metrics import dice_score, iou_score, pixel_accuracy

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def load_folder(path):
    """(images, masks, names) sorted by name."""
    data = load_segmentation_folder(path, layout="images_masks")
    order = np.argsort(data.names)
    return (
        [data.images[i] for i in order],
        [data.masks[i] for i in order],
        [data.names[i] for i in order],
    )


def binary_scores(truths, preds):
    """Dice and IoU of class 1, pooled over the images."""
    return dice_score(truths, preds), iou_score(truths, preds)


# ----------------------------------------------------- the tutorial baseline


def tutorial_unet(torch):
    """The U-Net as typical tutorials write it (64..1024 features)."""
    nn = torch.nn

    class DoubleConv(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )

        def forward(self, x):
            return self.conv(x)

    class UNET(nn.Module):
        def __init__(self, in_channels=1, out_channels=1, features=(64, 128, 256, 512)):
            super().__init__()
            self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
            self.pool = nn.MaxPool2d(2, 2)
            for f in features:
                self.downs.append(DoubleConv(in_channels, f))
                in_channels = f
            for f in reversed(features):
                self.ups.append(nn.ConvTranspose2d(f * 2, f, 2, 2))
                self.ups.append(DoubleConv(f * 2, f))
            self.bottleneck = DoubleConv(features[-1], features[-1] * 2)
            self.final_conv = nn.Conv2d(features[0], out_channels, 1)

        def forward(self, x):
            skips = []
            for down in self.downs:
                x = down(x)
                skips.append(x)
                x = self.pool(x)
            x = self.bottleneck(x)
            skips = skips[::-1]
            for i in range(0, len(self.ups), 2):
                x = self.ups[i](x)
                x = self.ups[i + 1](torch.cat((skips[i // 2], x), dim=1))
            return self.final_conv(x)

    return UNET()


def plain_loop(torch, model, train_x, train_y, test_x, budget, *, size, lr, batch):
    """Tutorial training: resize to ``size``, BCE + Dice, Adam, threshold 0.5.

    Returns (predicted test masks at full size, images trained, seconds).
    """
    F = torch.nn.functional

    def to_tensor(images, mode):
        t = torch.from_numpy(np.stack(images)[:, None].astype(np.float32))
        return F.interpolate(t, size=(size, size), mode=mode)

    x = to_tensor([im / 255.0 for im in train_x], "bilinear")
    y = to_tensor(train_y, "nearest")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    bce = torch.nn.BCEWithLogitsLoss()
    seen, start = 0, time.perf_counter()
    gen = torch.Generator().manual_seed(0)
    while time.perf_counter() - start < budget:
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            if time.perf_counter() - start >= budget:
                break
            logits = model(x[idx])
            prob = torch.sigmoid(logits)
            dice = 1 - (2 * (prob * y[idx]).sum() + 1) / (prob.sum() + y[idx].sum() + 1)
            loss = bce(logits, y[idx]) + dice
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(idx)
    elapsed = time.perf_counter() - start
    model.eval()
    preds = []
    with torch.no_grad():
        for im in test_x:
            t = to_tensor([im / 255.0], "bilinear")
            p = torch.sigmoid(model(t))
            p = F.interpolate(p, size=im.shape[:2], mode="bilinear")
            preds.append((p[0, 0] > 0.5).numpy())
    return preds, seen, elapsed


def smp_unet(torch):
    """smp.Unet (resnet18 encoder, random init) or the reason it is missing."""
    try:
        import segmentation_models_pytorch as smp
    except Exception as exc:  # noqa: BLE001 - any failure means "skip"
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0]
    model = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
    return model, None


# ------------------------------------------------------------------- runs


def run_isbi(args, torch):
    from skseg.unet import UNetSegmenter

    images, masks, names = load_folder(DATA / "isbi2012_membrane")
    # Membrane (mask value 0) is the positive class 1.
    targets = [(m == 0).astype(np.uint8) for m in masks]
    train = [i for i, n in enumerate(names) if int(n) <= 23]
    test = [i for i, n in enumerate(names) if int(n) >= 24]
    train_x, train_y = [images[i] for i in train], [targets[i] for i in train]
    test_x, test_y = [images[i] for i in test], [targets[i] for i in test]
    print(
        f"ISBI 2012: {len(train)} train / {len(test)} test slices "
        f"{images[0].shape}, budget {args.budget:.0f} s per model, "
        f"torch threads {torch.get_num_threads()}"
    )
    rows = []

    common = dict(
        augment="dihedral",
        batch_size=8,
        lr=3e-3,
        lr_schedule="onecycle",
        loss="dice+ce",
        max_epochs=100_000,
        max_time=args.budget,
        random_state=0,
    )
    # A small net on small patches: on a CPU budget, more steps beat width
    # (init_features=16, depth=4 reached 0.74 Dice vs 0.77 for this in 90 s).
    models = [
        (
            "skseg UNetSegmenter (128 px patches)",
            UNetSegmenter(
                architecture="classic",
                depth=3,
                init_features=8,
                patch_size=128,
                **common,
            ),
        )
    ]
    # The ImageNet encoders (their first convolution adapted to one channel)
    # on 256 px patches: their deepest features are 32x smaller.
    models += [
        (f"skseg, {name} (256 px)", model)
        for name, model in pretrained_models(
            UNetSegmenter, dict(common, patch_size=256)
        )
    ]
    for name, model in models:
        if isinstance(model, str):
            print(f"  {name}: {model}")
            continue
        start = time.perf_counter()
        model.fit(train_x, train_y)
        fit_time = time.perf_counter() - start
        seen = int(np.sum(model.history_["samples"]))
        start = time.perf_counter()
        preds = model.predict(test_x)
        predict_time = time.perf_counter() - start
        dice, iou = binary_scores(test_y, preds)
        rows.append((name, dice, iou, seen, fit_time, model.patch_size**2))
        print(
            f"  {name}: {model.n_epochs_} epochs, final loss "
            f"{model.history_['loss'][-1]:.4f}, test prediction {predict_time:.1f} s"
        )

    torch.manual_seed(0)
    preds, seen, elapsed = plain_loop(
        torch,
        tutorial_unet(torch),
        train_x,
        train_y,
        test_x,
        args.budget,
        size=128,
        lr=1e-4,
        batch=4,
    )
    dice, iou = binary_scores(test_y, preds)
    rows.append(
        ("tutorial U-Net, plain loop (128 px)", dice, iou, seen, elapsed, 128**2)
    )

    torch.manual_seed(0)
    net, reason = (None, "--no-smp given") if args.no_smp else smp_unet(torch)
    if net is None:
        print(
            f"  segmentation_models_pytorch Unet: skipped ({reason}). smp needs "
            "timm, which imports torchvision; torchvision's PyPI wheels link "
            "libtorch_cuda.so and fail to load with a CPU-only torch"
        )
    else:
        preds, seen, elapsed = plain_loop(
            torch,
            net,
            train_x,
            train_y,
            test_x,
            args.budget,
            size=256,
            lr=1e-3,
            batch=4,
        )
        dice, iou = binary_scores(test_y, preds)
        rows.append(
            ("smp Unet resnet18, plain loop (256 px)", dice, iou, seen, elapsed, 256**2)
        )

    print(f"  {'model':50s} {'Dice':>6s} {'IoU':>6s} {'img/s':>7s} {'Mpx/s':>7s}")
    plain = next(row for row in rows if row[0].startswith("tutorial"))
    base = plain[3] / plain[4]
    for name, dice, iou, seen, elapsed, pixels in rows:
        rate = seen / elapsed
        print(
            f"  {name:50s} {dice:6.4f} {iou:6.4f} {rate:7.2f} "
            f"{rate * pixels / 1e6:7.3f}   ({seen} images in {elapsed:.0f} s, "
            f"{rate / base:.2f}x the plain loop's images/s)"
        )
    met = "met" if rows[0][1] >= 0.80 else "NOT met"
    print(f"  goal test Dice >= 0.80 for skseg: {met}")


def camvid_models(UNetSegmenter, budget):
    """(name, estimator or the reason it cannot run) for the CamVid section."""
    common = dict(
        augment="hflip",
        patch_size=256,
        lr_schedule="onecycle",
        ignore_index=11,
        max_epochs=100_000,
        max_time=budget,
        random_state=0,
    )
    models = [
        (
            "from scratch (default residual network, depth 4, 16 features)",
            UNetSegmenter(depth=4, init_features=16, batch_size=8, lr=3e-3, **common),
        )
    ]
    return models + pretrained_models(UNetSegmenter, common)


def pretrained_models(UNetSegmenter, common):
    """(name, estimator or the reason it cannot run) for each ImageNet
    encoder, with the fine-tuning recipe and ``common`` settings."""
    from skseg.unet.encoders import imagenet_weights_file

    recipe = dict(
        common,
        encoder_weights="imagenet",
        # Four of the encoder's five stages: 1.3x the training patches/s of
        # all five, and on CamVid the better mIoU in the same time.
        depth=4,
        init_features=8,
        batch_size=8,
        optimizer="adamw",
        lr=3e-3,
        freeze_epochs=1,
        encoder_lr_factor=0.1,
    )
    models = []
    for encoder in ("efficientnet_lite0", "resnet18"):
        name = f"{encoder} ImageNet encoder"
        try:
            imagenet_weights_file(encoder)
        except FileNotFoundError as exc:
            models.append((name, f"not measurable: {exc}"))
            continue
        models.append((name, UNetSegmenter(encoder=encoder, **recipe)))
    return models


def run_camvid(args, torch):
    from skseg.unet import UNetSegmenter

    images, masks, names = load_folder(DATA / "camvid_train_subset")
    n_test = len(names) // 4
    train_x, train_y = images[:-n_test], masks[:-n_test]
    test_x, test_y = images[-n_test:], masks[-n_test:]
    print(
        f"CamVid subset: {len(train_x)} train / {len(test_x)} held-out frames "
        f"{images[0].shape}, 11 classes + 11 = ignore, budget {args.budget:.0f} s"
    )
    for name, model in camvid_models(UNetSegmenter, args.budget):
        if isinstance(model, str):
            print(f"  {name}: {model}")
            continue
        model.fit(train_x, train_y)
        start = time.perf_counter()
        preds = model.predict(test_x)
        predict_rate = len(test_x) / (time.perf_counter() - start)
        # Mean over the classes present in the held-out truth or prediction.
        ious = iou_score(test_y, preds, average=None, ignore_index=11)
        accuracy = pixel_accuracy(test_y, preds, ignore_index=11)
        seen = int(np.sum(model.history_["samples"]))
        seconds = model.history_["time"][-1]
        print(
            f"  {name}: held-out mIoU {np.mean(ious):.4f} over {len(ious)} "
            f"classes, pixel accuracy {accuracy:.4f}; training "
            f"{seen / seconds:.2f} img/s ({model.n_epochs_} epochs, {seen} "
            f"patches in {seconds:.0f} s), prediction {predict_rate:.2f} img/s"
        )


def run_loops(args, torch):
    """Training images per second of the same network in both loops.

    The ISBI rows compare each approach as a user would run it (skseg with a
    small net); here the tutorial's own network (depth 4, 64 features) is
    trained by UNetSegmenter's loop and by the plain loop, on 128 px inputs,
    so the ratio measures the loops alone.
    """
    from skseg.unet import UNetSegmenter

    images, masks, names = load_folder(DATA / "isbi2012_membrane")
    train_x = images[:24]
    train_y = [(m == 0).astype(np.uint8) for m in masks[:24]]
    budget = args.budget / 5
    print(f"Same network (tutorial U-Net, 64 features), {budget:.0f} s per loop:")
    torch.manual_seed(0)
    model = UNetSegmenter(
        architecture="classic",
        augment="dihedral",
        depth=4,
        init_features=64,
        patch_size=128,
        batch_size=4,
        lr=1e-4,
        loss="dice+ce",
        max_epochs=100_000,
        max_time=budget,
        random_state=0,
    ).fit(train_x, train_y)
    ours = int(np.sum(model.history_["samples"])) / model.history_["time"][-1]
    torch.manual_seed(0)
    _, seen, elapsed = plain_loop(
        torch,
        tutorial_unet(torch),
        train_x,
        train_y,
        [],
        budget,
        size=128,
        lr=1e-4,
        batch=4,
    )
    plain = seen / elapsed
    print(
        f"  UNetSegmenter loop {ours:.2f} img/s, plain loop {plain:.2f} img/s: "
        f"{ours / plain:.2f}x"
    )


_PEAK_SCRIPT = """
import resource, sys, numpy as np
from skseg.unet import UNetSegmenter
model = UNetSegmenter.load(sys.argv[1], device="cpu")
side = int(sys.argv[3])
image = np.random.default_rng(0).integers(0, 256, (side, side, 3), np.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
getattr(model, sys.argv[2])(image)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) / 1024)
"""


def peak_rss_mib(model_dir, method, side, python=None):
    """Growth of the peak RSS (MiB) of a fresh process over one call of
    ``method`` on a random ``side`` x ``side`` RGB uint8 image."""
    import subprocess
    import sys

    out = subprocess.run(
        [
            python or sys.executable,
            "-c",
            _PEAK_SCRIPT,
            str(model_dir),
            method,
            str(side),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.split()[-1])


def run_memory(args, torch):
    """Peak memory of predicting a 4000 x 4000 RGB image (46 MiB as uint8)
    with a 4-feature network (tiles of 512, batch_size 8), 2 and 5 classes,
    each in its own process."""
    import tempfile

    from skseg.unet import UNetSegmenter

    side = 4000
    rng = np.random.default_rng(0)
    print(
        f"Peak RSS growth predicting one {side}x{side} RGB uint8 image "
        f"({side * side * 3 / 2**20:.0f} MiB), 4-feature network, tile_size 512:"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n_classes in (2, 5):
            X = rng.integers(0, 256, (2, 64, 64, 3), np.uint8)
            y = rng.integers(0, n_classes, (2, 64, 64))
            # 4 features: the network's own activations stay small, so the
            # figures show what stitching the image costs.
            model = UNetSegmenter(
                architecture="classic",
                init_features=4,
                tile_size=512,
                max_epochs=1,
                device="cpu",
                random_state=0,
            )
            model.fit(X, y).save(Path(tmp) / str(n_classes))
            for method in ("predict", "predict_proba"):
                peak = peak_rss_mib(Path(tmp) / str(n_classes), method, side)
                print(f"  {n_classes} classes, {method}: +{peak:.0f} MiB")


# ------------------------------------------------------------- MONAI as peer

# MONAI's 2-D tutorial U-Net (Project-MONAI/tutorials, 2d_segmentation).
MONAI_NETWORK = dict(channels=(16, 32, 64, 128, 256), strides=(2, 2, 2, 2))


def monai_unet(in_channels, out_channels):
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        num_res_units=2,
        **MONAI_NETWORK,
    )


def monai_inputs(torch, image):
    """MONAI's tutorial preprocessing: intensities scaled to [0, 1],
    ``(1, C, H, W)``."""
    x = np.asarray(image, np.float32) / 255.0
    if x.ndim == 2:
        x = x[..., None]
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 0))[None])


def monai_predict(torch, net, image, *, binary):
    """Label map of one image by MONAI's sliding-window inference (roi 256,
    overlap 0.25, as the tutorial). Multi-class nets have an extra last
    channel for the unlabelled pixels (MONAI's losses have no ignore index),
    which is never predicted."""
    from monai.inferers import SlidingWindowInferer

    inferer = SlidingWindowInferer(roi_size=(256, 256), sw_batch_size=1, overlap=0.25)
    with torch.no_grad():
        logits = inferer(monai_inputs(torch, image), net)[0]
    if binary:
        return (torch.sigmoid(logits[0]) > 0.5).numpy().astype(np.uint8)
    return logits[:-1].argmax(0).numpy()


def train_monai(torch, net, images, targets, *, binary, augment, budget, seed):
    """The tutorial's recipe (DiceCELoss, Adam 1e-3) on the patches and
    flips that skseg's own sampler draws (256 px, batches of 8), for
    ``budget`` seconds. Returns (patches, seconds)."""
    from monai.losses import DiceCELoss

    from skseg.unet.training import _Sampler

    if binary:
        loss_fn = DiceCELoss(sigmoid=True)
    else:
        loss_fn = DiceCELoss(softmax=True, to_onehot_y=True)
    prepared = [monai_inputs(torch, im)[0].numpy() for im in images]
    rng = np.random.default_rng(seed)
    sampler = _Sampler(
        prepared, targets, patch_size=256, multiple=16, augment=augment, rng=rng
    )
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    net.train()
    seen, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        x, y = sampler.batch(rng.integers(0, len(prepared), 8))
        y = y[:, None].float() if binary else y[:, None]
        loss = loss_fn(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(x)
    elapsed = time.perf_counter() - start
    net.eval()
    return seen, elapsed


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def predict_child(kind, model_path, image_path):
    """In this fresh process: load the model and the image, reset the peak
    RSS (/proc/self/clear_refs), predict; predict again, timed. Print the
    seconds of the second call and the peak of the first beyond the RSS
    before it (MiB). Linux only."""
    from skseg._torch import require

    torch = require("torch", "bench_unet")
    image = np.load(image_path)
    if kind == "skseg":
        from skseg.unet import UNetSegmenter

        model = UNetSegmenter.load(model_path, device="cpu")
        predict = model.predict
    else:
        saved = torch.load(model_path, weights_only=True)
        net = monai_unet(int(saved["in_channels"]), int(saved["out_channels"]))
        net.load_state_dict(saved["state"])
        net.eval()

        def predict(im):
            return monai_predict(torch, net, im, binary=bool(saved["binary"]))

    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    predict(image)
    peak = (_status_kib("VmHWM") - before) / 1024
    start = time.perf_counter()
    predict(image)
    print(time.perf_counter() - start, peak)


def fresh_prediction(kind, model_path, image, tmp, threads):
    """(seconds, peak MiB) of ``predict_child`` in a fresh process."""
    import subprocess
    import sys

    image_path = Path(tmp) / "image.npy"
    np.save(image_path, image)
    command = [sys.executable, __file__, "--predict-child", kind, str(model_path)]
    command += [str(image_path)]
    if threads:
        command += ["--threads", str(threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    seconds, peak = out.stdout.split()[-2:]
    return float(seconds), float(peak)


def monai_tasks():
    """(name, train, test, options) of the two data sets of the comparison."""
    images, masks, names = load_folder(DATA / "isbi2012_membrane")
    # Membrane (mask value 0) is the positive class 1.
    targets = [(m == 0).astype(np.int64) for m in masks]
    train = [i for i, n in enumerate(names) if int(n) <= 23]
    test = [i for i, n in enumerate(names) if int(n) >= 24]
    # Prediction time and memory on a 1024 x 1024 slice: a test slice and its
    # mirror images (ISBI's slices are 512 x 512).
    slice_ = images[test[0]]
    big = np.block([[slice_, slice_[:, ::-1]], [slice_[::-1], slice_[::-1, ::-1]]])
    yield (
        "ISBI 2012 membranes (slices 00-23 -> 24-29), Dice of the membranes",
        ([images[i] for i in train], [targets[i] for i in train]),
        ([images[i] for i in test], [targets[i] for i in test]),
        dict(binary=True, augment="dihedral", ignore_index=None, big=big),
    )
    images, masks, names = load_folder(DATA / "camvid_train_subset")
    n_test = len(names) // 4
    yield (
        "CamVid subset (first 3/4 of the frames -> last 1/4), 11 classes",
        (images[:-n_test], masks[:-n_test]),
        (images[-n_test:], masks[-n_test:]),
        dict(binary=False, augment="hflip", ignore_index=11, big=images[-1]),
    )


def task_scores(truths, preds, options):
    """(metric text, primary metric) with skseg.metrics for both models."""
    if options["binary"]:
        dice, iou = binary_scores(truths, preds)
        return f"Dice {dice:.4f}, IoU {iou:.4f}", dice
    ious = iou_score(truths, preds, average=None, ignore_index=11)
    accuracy = pixel_accuracy(truths, preds, ignore_index=11)
    return f"mIoU {np.mean(ious):.4f}, accuracy {accuracy:.4f}", np.mean(ious)


def run_monai(args, torch):
    """skseg's default UNetSegmenter against MONAI's tutorial U-Net: same data,
    budget, patches and metric code, in this run."""
    import tempfile

    try:
        import monai
    except ImportError as exc:
        print(
            f"MONAI section skipped: monai is not importable ({exc}); "
            "pip install monai (1.6.1 was measured) to run it"
        )
        return
    from skseg.unet import UNetSegmenter

    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"skseg default UNetSegmenter vs MONAI {monai.__version__} tutorial UNet "
        f"{MONAI_NETWORK}, num_res_units=2, DiceCELoss, Adam 1e-3, "
        f"SlidingWindowInferer(roi 256, overlap 0.25); {args.budget:.0f} s "
        f"training each, torch threads {torch.get_num_threads()}; prediction "
        "time (second call) and peak memory (first call, beyond the loaded "
        "model and image) in a fresh process"
    )
    for title, (train_x, train_y), (test_x, test_y), options in monai_tasks():
        big = options["big"]
        print(f"{title}; {len(train_x)} train / {len(test_x)} test images")
        print(
            f"  {'model':34s} {'seed':>4s}  {'metric':30s} {'patches/s':>9s} "
            f"{'pred s/img':>10s} {'fresh s':>8s} {'peak MiB':>8s}"
            f"   (fresh process: one {big.shape[0]}x{big.shape[1]} image)"
        )
        for seed in seeds:
            rows = []
            with tempfile.TemporaryDirectory() as tmp:
                model = UNetSegmenter(
                    augment=options["augment"],
                    ignore_index=options["ignore_index"],
                    max_epochs=1_000_000,
                    max_time=args.budget,
                    random_state=seed,
                ).fit(train_x, train_y)
                seen = int(np.sum(model.history_["samples"]))
                rate = seen / model.history_["time"][-1]
                start = time.perf_counter()
                preds = model.predict(test_x)
                per_image = (time.perf_counter() - start) / len(test_x)
                model.save(Path(tmp) / "skseg")
                fresh = fresh_prediction(
                    "skseg", Path(tmp) / "skseg", big, tmp, args.threads
                )
                n_params = sum(p.numel() for p in model.model_.parameters())
                name = f"skseg default ({n_params / 1e6:.2f} M params)"
                rows.append((name, preds, rate, per_image, fresh))

                torch.manual_seed(seed)
                in_channels = 1 if train_x[0].ndim == 2 else train_x[0].shape[2]
                # Multi-class: one more channel for the unlabelled pixels.
                out_channels = 1 if options["binary"] else 12
                net = monai_unet(in_channels, out_channels)
                targets = list(train_y)
                seen, elapsed = train_monai(
                    torch,
                    net,
                    train_x,
                    targets,
                    binary=options["binary"],
                    augment=options["augment"],
                    budget=args.budget,
                    seed=seed,
                )
                start = time.perf_counter()
                preds = [
                    monai_predict(torch, net, im, binary=options["binary"])
                    for im in test_x
                ]
                per_image = (time.perf_counter() - start) / len(test_x)
                saved = {
                    "state": net.state_dict(),
                    "in_channels": in_channels,
                    "out_channels": out_channels,
                    "binary": options["binary"],
                }
                torch.save(saved, Path(tmp) / "monai.pt")
                fresh = fresh_prediction(
                    "monai", Path(tmp) / "monai.pt", big, tmp, args.threads
                )
                n_params = sum(p.numel() for p in net.parameters())
                name = f"MONAI tutorial UNet ({n_params / 1e6:.2f} M params)"
                rows.append((name, preds, seen / elapsed, per_image, fresh))
            for name, preds, rate, per_image, (seconds, peak) in rows:
                text, _ = task_scores(test_y, preds, options)
                print(
                    f"  {name:34s} {seed:4d}  {text:30s} {rate:9.2f} "
                    f"{per_image:10.3f} {seconds:8.3f} {peak:8.0f}",
                    flush=True,
                )


SECTIONS = {
    "isbi": run_isbi,
    "camvid": run_camvid,
    "loops": run_loops,
    "memory": run_memory,
    "monai": run_monai,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=float, default=600.0, help="training seconds per model"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 60 s budgets")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--no-smp", action="store_true", help="skip smp's Unet")
    parser.add_argument(
        "--sections",
        default="isbi,camvid,loops,memory,monai",
        help="comma-separated parts to run: isbi, camvid, loops, memory, monai",
    )
    parser.add_argument(
        "--seeds", default="0", help="comma-separated seeds (monai section)"
    )
    parser.add_argument(
        "--predict-child", nargs=3, help=argparse.SUPPRESS
    )  # KIND MODEL IMAGE: one prediction in this fresh process (monai section)
    args = parser.parse_args()
    if args.predict_child:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        predict_child(*args.predict_child)
        return
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(
            f"unknown sections {sorted(unknown)}; choose from {list(SECTIONS)}"
        )
    if args.quick:
        args.budget = min(args.budget, 60.0)

    from skseg._torch import require

    torch = require("torch", "bench_unet")
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("isbi2012_membrane", "camvid_train_subset"):
        if not (DATA / name).is_dir():
            raise SystemExit(f"data folder {DATA / name} is missing")
    for name in sections:
        SECTIONS[name](args, torch)


if __name__ == "__main__":
    main()
