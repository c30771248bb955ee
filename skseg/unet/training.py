"""The training loop of :class:`skseg.UNetSegmenter`: batch sampling (random
patches or whole images), flip/rotation augmentation, the optimiser and its
learning-rate schedule, mixed precision on CUDA, validation and early stopping.
"""

import copy
import math
import time

import numpy as np

from .._torch import require
from ..metrics import dice_score, iou_score
from .losses import segmentation_loss
from .prediction import autocast_dtype, use_channels_last

torch = require("torch", "UNetSegmenter")


def onecycle_lr(base_lr, progress):
    """One-cycle learning rate at ``progress`` in [0, 1]: cosine warm-up from
    ``base_lr / 25`` to ``base_lr`` over the first 30%, then cosine decay to
    ``base_lr / 1e4`` (the shape of ``torch.optim.lr_scheduler.OneCycleLR``)."""
    warm = 0.3
    progress = min(max(progress, 0.0), 1.0)
    if progress < warm:
        low = base_lr / 25.0
        return low + (base_lr - low) * (1 - math.cos(math.pi * progress / warm)) / 2
    low = base_lr / 1e4
    frac = (progress - warm) / (1 - warm)
    return low + (base_lr - low) * (1 + math.cos(math.pi * frac)) / 2


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


class _Sampler:
    """Draws augmented training samples (image ``(C, h, w)``, target ``(h, w)``)."""

    def __init__(self, images, targets, *, patch_size, multiple, augment, rng):
        self.images = images
        self.targets = targets
        self.augment = augment
        self.rng = rng
        self.multiple = multiple
        if patch_size is None:
            self.patch = None
        else:
            # No bigger than the largest image needs: tiny images are not
            # padded up to a large default patch.
            max_h = max(im.shape[1] for im in images)
            max_w = max(im.shape[2] for im in images)
            side = _round_up(patch_size, multiple)
            self.patch = (
                min(side, _round_up(max_h, multiple)),
                min(side, _round_up(max_w, multiple)),
            )

    def _crop(self, image, target):
        ph, pw = self.patch
        _, height, width = image.shape
        y = int(self.rng.integers(0, height - ph + 1)) if height > ph else 0
        x = int(self.rng.integers(0, width - pw + 1)) if width > pw else 0
        return image[:, y : y + ph, x : x + pw], target[y : y + ph, x : x + pw]

    def _augment(self, image, target):
        """A random symmetry of ``self.augment``'s group, each equally likely:
        a horizontal (left-right) flip or not for ``"hflip"``; for
        ``"dihedral"`` the eight flips and quarter turns of a square sample,
        the four flips (none, left-right, up-down, both) of an oblong one, so
        that batches keep one shape."""
        if self.augment == "none":
            return image, target
        if self.rng.random() < 0.5:
            image, target = image[:, :, ::-1], target[:, ::-1]
        if self.augment == "hflip":
            return image, target
        if target.shape[0] == target.shape[1]:
            k = int(self.rng.integers(0, 4))
            return np.rot90(image, k, (1, 2)), np.rot90(target, k)
        if self.rng.random() < 0.5:
            image, target = image[:, ::-1, :], target[::-1, :]
        return image, target

    def batch(self, indices):
        samples = []
        for i in indices:
            image, target = self.images[i], self.targets[i]
            if self.patch is not None:
                image, target = self._crop(image, target)
            image, target = self._augment(image, target)
            samples.append((image, target))
        if self.patch is not None:
            height, width = self.patch
        else:
            height = _round_up(max(t.shape[0] for _, t in samples), self.multiple)
            width = _round_up(max(t.shape[1] for _, t in samples), self.multiple)
        channels = samples[0][0].shape[0]
        # Padding is zero in the normalised image (the training mean) and -1
        # (ignored) in the target, so it never counts in the loss.
        x = np.zeros((len(samples), channels, height, width), np.float32)
        y = np.full((len(samples), height, width), -1, np.int64)
        for k, (image, target) in enumerate(samples):
            h, w = target.shape
            x[k, :, :h, :w] = image
            y[k, :h, :w] = target
        return torch.from_numpy(x), torch.from_numpy(y)


def validation_scores(truths, predictions, n_classes):
    """Pixel Dice and IoU pooled over images, ignoring target ``-1``: the
    positive class (index 1) for two classes, else the mean over the classes
    present in the truth or the prediction (:mod:`skseg.metrics`, whose
    empty-mask rule scores an empty positive class 1.0). A validation set
    whose pixels are all ignored scores 1.0."""
    if not any((truth >= 0).any() for truth in truths):
        return 1.0, 1.0
    average = "binary" if n_classes == 2 else "macro"
    options = {"average": average, "ignore_index": -1}
    return (
        float(dice_score(truths, predictions, **options)),
        float(iou_score(truths, predictions, **options)),
    )


def train(
    model,
    train_images,
    train_targets,
    *,
    val_images,
    val_targets,
    predict_internal,
    n_classes,
    multiple,
    params,
    class_weight,
    device,
    rng,
    history,
    dist=None,
    freeze_epochs=0,
    encoder_lr_factor=1.0,
):
    """Train ``model`` in place and append one entry per epoch to ``history``.

    ``params`` is the estimator's ``get_params()``; ``predict_internal`` maps a
    list of normalised images to internal label maps (used for validation).
    A model with an ``encoder`` is fine-tuned as fastai's ``fine_tune`` does:
    the encoder is frozen (no gradients, batch norm in eval mode so that its
    running statistics stay those of the pretrained weights) while fewer than
    ``freeze_epochs`` epochs are in ``history``, and then learns at
    ``encoder_lr_factor`` times the decoder's rate; the one-cycle schedule
    spans the whole run.
    Returns ``(epochs_run, best_epoch)``; ``best_epoch`` (1-based, counted over
    the whole ``history``) is None without validation. With validation, the
    weights of the best epoch are restored.

    ``dist`` (a :class:`skseg.unet.distributed.ProcessGroup`) trains one
    process of several: ``model`` is then DDP-wrapped, ``rng`` (the same on
    every process) orders the samples, each process draws its share of every
    batch with its own generator, and rank 0's clock, validation and
    decisions hold for all.
    """
    tqdm = (
        require("tqdm", "UNetSegmenter(verbose=True)").tqdm
        if params["verbose"]
        else None
    )
    sampler = _Sampler(
        train_images,
        train_targets,
        patch_size=params["patch_size"],
        multiple=multiple,
        augment=params["augment"],
        rng=rng if dist is None else dist.sample_rng,
    )
    optim_cls = (
        torch.optim.AdamW if params["optimizer"] == "adamw" else torch.optim.Adam
    )
    # DistributedDataParallel wraps the network: the encoder is the wrapped one's.
    encoder = getattr(getattr(model, "module", model), "encoder", None)
    groups = [{"params": list(model.parameters()), "lr_factor": 1.0}]
    if encoder is not None:
        in_encoder = {id(p) for p in encoder.parameters()}
        groups = [
            {
                "params": [p for p in model.parameters() if id(p) not in in_encoder],
                "lr_factor": 1.0,
            },
            {"params": list(encoder.parameters()), "lr_factor": encoder_lr_factor},
        ]
    for group in groups:
        group["lr"] = params["lr"] * group["lr_factor"]
    optimizer = optim_cls(groups, lr=params["lr"], weight_decay=params["weight_decay"])
    amp = autocast_dtype(device)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    channels_last = use_channels_last(model, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    weight = None
    if class_weight is not None:
        weight = torch.as_tensor(class_weight, dtype=torch.float32, device=device)

    n_train = len(train_images)
    batch_size = min(params["batch_size"], n_train)
    steps_per_epoch = math.ceil(n_train / batch_size)
    max_epochs = params["max_epochs"]
    total_steps = max_epochs * steps_per_epoch
    max_time = params["max_time"]
    onecycle = params["lr_schedule"] == "onecycle"
    patience = params["n_iter_no_change"]
    validate = val_images is not None

    best_score, best_state, best_epoch, stale = -np.inf, None, None, 0
    start = time.perf_counter()
    epochs = range(max_epochs)
    show = tqdm is not None and (dist is None or dist.is_main)
    bar = tqdm(epochs, desc="UNetSegmenter", unit="epoch") if show else None
    epochs_run, step = 0, 0
    for _ in bar if bar is not None else epochs:
        model.train()
        frozen = encoder is not None and len(history["loss"]) < freeze_epochs
        if encoder is not None and dist is None:
            # Parameters without gradients are skipped by Adam(W) altogether.
            encoder.requires_grad_(not frozen)
        elif encoder is not None:
            # DDP reduces the gradients of the parameters it was built with in
            # every step, so there a frozen encoder keeps them and gets a
            # learning rate of 0 instead (Adam(W) then leaves it unchanged).
            encoder_group = optimizer.param_groups[1]
            encoder_group["lr_factor"] = 0.0 if frozen else encoder_lr_factor
            if not onecycle:
                encoder_group["lr"] = params["lr"] * encoder_group["lr_factor"]
        if frozen:
            encoder.eval()
        order = rng.permutation(n_train)
        loss_sum, pixels, samples = 0.0, 0, 0
        out_of_time = False
        for first in range(0, n_train, batch_size):
            elapsed = time.perf_counter() - start
            out_of_time = max_time is not None and elapsed >= max_time
            if dist is not None and max_time is not None:
                out_of_time, elapsed = dist.from_main((out_of_time, elapsed))
            if out_of_time:
                break
            if onecycle:
                progress = step / total_steps
                if max_time is not None:
                    progress = max(progress, elapsed / max_time)
                for group in optimizer.param_groups:
                    group["lr"] = (
                        onecycle_lr(params["lr"], progress) * group["lr_factor"]
                    )
            batch = order[first : first + batch_size]
            x, y = sampler.batch(batch if dist is None else dist.shard(batch))
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                logits = model(x)
            loss = segmentation_loss(
                logits,
                y,
                loss=params["loss"],
                n_classes=n_classes,
                class_weight=weight,
            )
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            labelled = int((y >= 0).sum())
            loss_sum += float(loss.detach()) * labelled
            pixels += labelled
            samples += len(x)
            step += 1
        if dist is not None:
            loss_sum, pixels, samples = dist.sum(loss_sum, pixels, samples)
            samples = int(samples)
        if pixels == 0:  # the time ran out before this epoch's first step
            break
        epochs_run += 1
        entry = {
            "epoch": len(history["loss"]) + 1,
            "loss": loss_sum / pixels,
            "val_dice": np.nan,
            "val_iou": np.nan,
            "samples": samples,
            "lr": optimizer.param_groups[0]["lr"],
            "time": time.perf_counter() - start,
        }
        if validate and (dist is None or dist.is_main):
            model.eval()
            predictions = predict_internal(val_images)
            entry["val_dice"], entry["val_iou"] = validation_scores(
                val_targets, predictions, n_classes
            )
        if dist is not None:
            entry = dist.from_main(entry)
        if validate:
            if entry["val_dice"] > best_score:
                best_score, best_epoch, stale = entry["val_dice"], entry["epoch"], 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
        for key, value in entry.items():
            history[key].append(value)
        if bar is not None:
            bar.set_postfix(
                loss=f"{entry['loss']:.4f}",
                val_dice=f"{entry['val_dice']:.4f}" if validate else "-",
            )
        if out_of_time or (max_time is not None and entry["time"] >= max_time):
            break
        if validate and patience is not None and stale >= patience:
            break
    if bar is not None:
        bar.close()
    if encoder is not None:
        encoder.requires_grad_(True)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return epochs_run, best_epoch
