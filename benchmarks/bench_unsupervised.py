"""Benchmark UnsupervisedCNNSegmenter against the authors' reference loops.

Speed: on a 481x321 photograph (scikit-image's ``coffee``, resized to the BSDS
size), the time per iteration of the superpixel method (Kanezaki 2018: SLIC
with 10000 segments, 100 channels, 2 conv layers, SGD lr 0.1), split into
forward pass, refinement (argmax, superpixel majority, label count) and
backward pass (loss, backward, SGD step), for skseg and for a faithful
re-implementation of the reference loop (per-superpixel numpy loop after a
device-to-host copy of the labels every iteration). Both start from the same
initial weights and superpixels and run the same iterations in this process,
on the CPU and, when there is one, on CUDA. The phase split synchronises the
device at each phase boundary; the end-to-end figures run the loops without
those extra synchronisations.

Quality: on a few CamVid frames with ground truth (class 11 = unlabelled,
ignored), the matched mIoU (Hungarian one-to-one matching of segments to
classes, :func:`skseg.metrics.matched_iou_score`) of both methods, superpixel
and continuity (Kim, Kanezaki and Tanaka 2020), for skseg and for the
reference loops at equal iterations and equal initial weights. Frames are
downscaled by 3 (4 with ``--quick``) to keep the CPU run to a few minutes;
SLIC keeps the paper's superpixel density (10000 per 481x321 pixels).

Usage::

    python benchmarks/bench_unsupervised.py            # full (a few minutes)
    python benchmarks/bench_unsupervised.py --quick    # smoke run
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data, segmentation, transform

from skseg._torch import torch_seed
from skseg.io import read_image, read_mask
from skseg.metrics import matched_iou_score
from skseg.unsupervised_cnn import UnsupervisedCNNSegmenter
from skseg.unsupervised_cnn.network import build_net
from skseg.unsupervised_cnn.training import ImageProblem, train

CAMVID = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CAMVID = CAMVID / "camvid_train_subset"
CAMVID_IGNORE = 11
BSDS_SHAPE = (321, 481)
N_CHANNELS, N_CONV, LR, MOMENTUM = 100, 2, 0.1, 0.9
RANDOM_STATE = 0


# -- the authors' code, re-implemented faithfully ------------------------------


class ReferenceNet(torch.nn.Module):
    """``MyNet`` of Kanezaki's demo.py: conv -> ReLU -> BN blocks, then a
    1x1 conv and BN, always used in training mode."""

    def __init__(self, input_dim, n_channel, n_conv):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(input_dim, n_channel, 3, stride=1, padding=1)
        self.bn1 = nn.BatchNorm2d(n_channel)
        self.conv2 = nn.ModuleList()
        self.bn2 = nn.ModuleList()
        for _ in range(n_conv - 1):
            self.conv2.append(nn.Conv2d(n_channel, n_channel, 3, stride=1, padding=1))
            self.bn2.append(nn.BatchNorm2d(n_channel))
        self.conv3 = nn.Conv2d(n_channel, n_channel, 1, stride=1, padding=0)
        self.bn3 = nn.BatchNorm2d(n_channel)

    def forward(self, x):
        F = torch.nn.functional
        x = self.bn1(F.relu(self.conv1(x)))
        for conv, bn in zip(self.conv2, self.bn2, strict=True):
            x = bn(F.relu(conv(x)))
        return self.bn3(self.conv3(x))


def reference_net_like(net, in_channels, device):
    """A ReferenceNet holding the same initial weights as skseg's ``net``
    (both list their parameters in the same order)."""
    ref = ReferenceNet(in_channels, N_CHANNELS, N_CONV)
    with torch.no_grad():
        for mine, theirs in zip(net.parameters(), ref.parameters(), strict=True):
            theirs.copy_(mine)
    return ref.to(device)


def reference_loop(
    model,
    image,
    segments,
    n_iter,
    device,
    *,
    method="superpixel",
    min_labels=3,
    continuity_weight=1.0,
    timer=None,
):
    """The training loop of Kanezaki's demo.py (superpixel) or of Kim et al.'s
    demo.py (continuity), with phase timing hooks. Returns the final labels,
    the label count per iteration."""
    tick = timer or (lambda phase: None)
    height, width = image.shape[:2]
    data_t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    data_t = data_t.to(device)
    labels = segments.reshape(-1)
    l_inds = None
    if method == "superpixel":
        u_labels = np.unique(labels)
        l_inds = [np.where(labels == u)[0] for u in u_labels]
    model.train()
    loss_fn = torch.nn.CrossEntropyLoss()
    loss_hpy = torch.nn.L1Loss()
    loss_hpz = torch.nn.L1Loss()
    hpy_target = torch.zeros(height - 1, width, N_CHANNELS, device=device)
    hpz_target = torch.zeros(height, width - 1, N_CHANNELS, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    counts = []
    for _ in range(n_iter):
        tick("start")
        optimizer.zero_grad()
        output = model(data_t)[0]
        output = output.permute(1, 2, 0).contiguous().view(-1, N_CHANNELS)
        tick("forward")
        _, target = torch.max(output, 1)
        im_target = target.data.cpu().numpy()
        n_labels = len(np.unique(im_target))
        if method == "superpixel":
            for inds in l_inds:
                labels_per_sp = im_target[inds]
                u_labels_per_sp = np.unique(labels_per_sp)
                hist = np.zeros(len(u_labels_per_sp))
                for j in range(len(hist)):
                    hist[j] = len(np.where(labels_per_sp == u_labels_per_sp[j])[0])
                im_target[inds] = u_labels_per_sp[np.argmax(hist)]
            target = torch.from_numpy(im_target).to(device)
        tick("refinement")
        if method == "superpixel":
            loss = loss_fn(output, target)
        else:
            output_hp = output.reshape((height, width, N_CHANNELS))
            hp_y = output_hp[1:, :, :] - output_hp[0:-1, :, :]
            hp_z = output_hp[:, 1:, :] - output_hp[:, 0:-1, :]
            lhpy = loss_hpy(hp_y, hpy_target)
            lhpz = loss_hpz(hp_z, hpz_target)
            loss = loss_fn(output, target) + continuity_weight * (lhpy + lhpz)
        loss.backward()
        optimizer.step()
        tick("backward")
        counts.append(n_labels)
        if n_labels <= min_labels:
            break
    with torch.no_grad():
        output = model(data_t)[0]
        final = output.argmax(0).cpu().numpy()
    return final, counts


# -- helpers --------------------------------------------------------------------


class PhaseTimer:
    """Accumulates wall time per phase, synchronising CUDA at each boundary."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.totals = {"forward": 0.0, "refinement": 0.0, "backward": 0.0}
        self.last = None

    def __call__(self, phase):
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        if phase != "start":
            self.totals[phase] += now - self.last
        self.last = now


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def superpixels(image, n_segments):
    seg = segmentation.slic(
        image, n_segments=n_segments, compactness=100, channel_axis=-1
    )
    return np.unique(seg, return_inverse=True)[1].reshape(seg.shape)


def skseg_train(net, image, segments, n_iter, device, timer=None, min_labels=3):
    problem = ImageProblem(torch, image, device, False, N_CHANNELS, segments=segments)
    return train(
        torch,
        net,
        [problem],
        n_classes=N_CHANNELS,
        lr=LR,
        momentum=MOMENTUM,
        max_iter=n_iter,
        stop_at=min_labels,
        continuity_weight=0.0,
        scribble_weight=0.5,
        amp=False,
        phase_timer=timer,
    )


# -- speed ------------------------------------------------------------------------


def bench_speed(device, n_iter):
    photo = transform.resize(data.coffee(), BSDS_SHAPE, anti_aliasing=True)
    image = photo.astype(np.float32)
    segments = superpixels(image, 10000)
    seed = torch_seed(RANDOM_STATE)
    print(
        f"\n== speed on {device}: {BSDS_SHAPE[1]}x{BSDS_SHAPE[0]} coffee, "
        f"{segments.max() + 1} SLIC superpixels, {N_CHANNELS} channels, "
        f"{n_iter} iterations (no early stop), torch threads "
        f"{torch.get_num_threads()}"
    )

    def fresh_nets():
        net = build_net(torch, 3, N_CHANNELS, N_CONV, seed)
        ref = reference_net_like(net, 3, device)
        return net.to(device), ref

    # Warm-up (allocator, kernels, oneDNN primitives), not timed.
    net, ref = fresh_nets()
    skseg_train(net, image, segments, 1, device)
    reference_loop(ref, image, segments, 1, device, min_labels=0)

    rows = {}
    net, ref = fresh_nets()
    timer = PhaseTimer(device)
    _, counts = skseg_train(net, image, segments, n_iter, device, timer, min_labels=0)
    rows["skseg"] = (timer.totals, counts[-1])
    timer = PhaseTimer(device)
    _, ref_counts = reference_loop(
        ref, image, segments, n_iter, device, min_labels=0, timer=timer
    )
    rows["reference"] = (timer.totals, ref_counts[-1])

    print(
        f"{'per iteration (ms)':<20}{'forward':>10}{'refinement':>12}"
        f"{'backward':>10}{'total':>10}{'refine %':>10}{'labels':>8}"
    )
    for name, (totals, final_count) in rows.items():
        per = {k: 1000 * v / n_iter for k, v in totals.items()}
        total = sum(per.values())
        print(
            f"{name:<20}{per['forward']:>10.1f}{per['refinement']:>12.2f}"
            f"{per['backward']:>10.1f}{total:>10.1f}"
            f"{100 * per['refinement'] / total:>9.1f}%{final_count:>8}"
        )
    ref_refine = rows["reference"][0]["refinement"]
    own_refine = rows["skseg"][0]["refinement"]
    print(f"refinement speed-up (reference / skseg): {ref_refine / own_refine:.1f}x")

    # End to end, without the phase synchronisations.
    net, ref = fresh_nets()
    sync(device)
    start = time.perf_counter()
    skseg_train(net, image, segments, n_iter, device, min_labels=0)
    sync(device)
    own = (time.perf_counter() - start) / n_iter
    start = time.perf_counter()
    reference_loop(ref, image, segments, n_iter, device, min_labels=0)
    sync(device)
    theirs = (time.perf_counter() - start) / n_iter
    print(
        f"end to end per iteration: skseg {1000 * own:.1f} ms, reference "
        f"{1000 * theirs:.1f} ms, ratio reference/skseg {theirs / own:.2f}x"
    )


# -- quality ------------------------------------------------------------------------


def bench_quality(device, n_images, n_iter, scale):
    names = sorted(p.name for p in (CAMVID / "images").glob("*.png"))
    if not names:
        print(f"\n== quality: skipped, {CAMVID} not found")
        return
    # Spread the frames over the subset (consecutive frames look alike).
    picks = [names[i] for i in np.linspace(0, len(names) - 1, n_images).astype(int)]
    print(
        f"\n== quality on {device}: {n_images} CamVid frames downscaled x{scale}, "
        f"{n_iter} iterations at most (stop at 3 labels), matched mIoU "
        f"(class {CAMVID_IGNORE} ignored)"
    )
    results = {}
    seed = torch_seed(RANDOM_STATE)
    for name in picks:
        image = read_image(CAMVID / "images" / name)
        mask = read_mask(CAMVID / "masks" / name)
        shape = (image.shape[0] // scale, image.shape[1] // scale)
        small = transform.resize(image, shape, anti_aliasing=True).astype(np.float32)
        mask = mask[scale // 2 :: scale, scale // 2 :: scale][: shape[0], : shape[1]]
        n_segments = round(
            10000 * small.shape[0] * small.shape[1] / np.prod(BSDS_SHAPE)
        )
        segments = superpixels(small, n_segments)
        for method in ("superpixel", "continuity"):
            extra = {"superpixel_params": {"n_segments": n_segments}}
            est = UnsupervisedCNNSegmenter(
                method,
                max_iter=n_iter,
                device=device,
                random_state=RANDOM_STATE,
                **(extra if method == "superpixel" else {}),
            )
            start = time.perf_counter()
            labels = est.fit_predict(small)
            elapsed = time.perf_counter() - start
            results.setdefault(("skseg", method), []).append(
                (
                    matched_iou_score(mask, labels, ignore_index=CAMVID_IGNORE),
                    est.n_labels_,
                    est.n_iter_,
                    elapsed,
                )
            )
            net = build_net(torch, 3, N_CHANNELS, N_CONV, seed)
            ref = reference_net_like(net, 3, device)
            start = time.perf_counter()
            labels, counts = reference_loop(
                ref, small, segments, n_iter, device, method=method
            )
            elapsed = time.perf_counter() - start
            results.setdefault(("reference", method), []).append(
                (
                    matched_iou_score(mask, labels, ignore_index=CAMVID_IGNORE),
                    len(np.unique(labels)),
                    len(counts),
                    elapsed,
                )
            )
    print(
        f"{'method':<12}{'code':<11}{'mIoU':>7}{'per image':>34}{'labels':>8}"
        f"{'iters':>7}{'time s':>8}"
    )
    for (code, method), rows in sorted(results.items(), key=lambda kv: kv[0][::-1]):
        scores = np.array([r[0] for r in rows])
        per_image = " ".join(f"{s:.3f}" for s in scores)
        print(
            f"{method:<12}{code:<11}{scores.mean():>7.3f}{per_image:>34}"
            f"{np.mean([r[1] for r in rows]):>8.1f}"
            f"{np.mean([r[2] for r in rows]):>7.1f}"
            f"{np.sum([r[3] for r in rows]):>8.1f}"
        )


def main():
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    else:
        print("CUDA not available: CPU only")
    speed_iter = 2 if args.quick else 6
    for device in devices:
        bench_speed(device, speed_iter if device.type == "cpu" else 5 * speed_iter)
    for device in devices:
        bench_quality(
            device,
            n_images=1 if args.quick else 3,
            n_iter=5 if args.quick else 25,
            scale=4 if args.quick else 3,
        )
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
