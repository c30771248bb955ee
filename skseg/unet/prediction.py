"""Whole-image and tiled inference for :class:`skseg.UNetSegmenter`.

Images are padded (reflection) to a multiple of ``2**depth``. An image larger
than a tile is cut into overlapping tiles whose corners lie on the network's
down-sampling grid; each tile's probabilities are weighted by a window that is
zero in the outer quarter of the overlap (where the tile border's zero padding
distorts the output) and ramps linearly to one across the middle half, so
seams blend and memory stays bounded by the tile size.
"""

import numpy as np

from .._torch import require

torch = require("torch", "UNetSegmenter")
F = torch.nn.functional


def autocast_dtype(device):
    """The mixed-precision dtype for a CUDA device (None on the CPU)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def forward_probabilities(model, batch, *, n_classes, device, tta):
    """Probabilities of a normalised ``(N, C, H, W)`` float32 tensor batch:
    ``(N, 1, H, W)`` sigmoid for two classes, else ``(N, K, H, W)`` softmax."""
    batch = batch.to(device, non_blocking=True)
    if device.type == "cuda":
        batch = batch.contiguous(memory_format=torch.channels_last)
    flips = [(), (3,), (2,)] if tta else [()]
    amp = autocast_dtype(device)
    out = None
    for dims in flips:
        x = batch.flip(dims) if dims else batch
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = model(x)
        logits = logits.float()
        prob = torch.sigmoid(logits) if n_classes == 2 else torch.softmax(logits, 1)
        if dims:
            prob = prob.flip(dims)
        out = prob if out is None else out + prob
    return out / len(flips)


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


def _tile_starts(length, tile, stride):
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _window(start, size, length, overlap):
    """1-D blending weights of a tile: zero then a ramp at inner edges only."""
    margin = overlap // 4
    ramp = max(overlap // 2, 1)
    rise = np.clip((np.arange(size, dtype=np.float32) - margin + 0.5) / ramp, 0, 1)
    weight = np.ones(size, np.float32)
    if start > 0:
        weight = np.minimum(weight, rise)
    if start + size < length:
        weight = np.minimum(weight, rise[::-1])
    return weight


def predict_image(
    model,
    image,
    *,
    n_classes,
    multiple,
    tile_size,
    tile_overlap,
    batch_size,
    device,
    tta,
):
    """Probabilities for one normalised ``(C, H, W)`` float32 image.

    Returns an ``(K, H, W)`` float32 array (``K == 1`` for two classes).
    """
    _, height, width = image.shape
    padded_h, padded_w = _round_up(height, multiple), _round_up(width, multiple)
    pad = ((0, 0), (0, padded_h - height), (0, padded_w - width))
    if padded_h != height or padded_w != width:
        image = np.pad(image, pad, mode="reflect" if min(height, width) > 1 else "edge")
    tile = max(multiple, (tile_size // multiple) * multiple)
    overlap = min(tile_overlap, tile - multiple)
    stride = max(multiple, ((tile - overlap) // multiple) * multiple)
    n_out = 1 if n_classes == 2 else n_classes
    if padded_h <= tile and padded_w <= tile:
        batch = torch.from_numpy(np.ascontiguousarray(image[None]))
        prob = forward_probabilities(
            model, batch, n_classes=n_classes, device=device, tta=tta
        )
        return prob[0, :, :height, :width].cpu().numpy()
    tile_h, tile_w = min(tile, padded_h), min(tile, padded_w)
    corners = [
        (y, x)
        for y in _tile_starts(padded_h, tile_h, stride)
        for x in _tile_starts(padded_w, tile_w, stride)
    ]
    total = np.zeros((n_out, padded_h, padded_w), np.float32)
    weight_sum = np.zeros((padded_h, padded_w), np.float32)
    for first in range(0, len(corners), batch_size):
        chunk = corners[first : first + batch_size]
        batch = np.stack([image[:, y : y + tile_h, x : x + tile_w] for y, x in chunk])
        prob = forward_probabilities(
            model, torch.from_numpy(batch), n_classes=n_classes, device=device, tta=tta
        )
        prob = prob.cpu().numpy()
        for (y, x), tile_prob in zip(chunk, prob, strict=True):
            weight = np.outer(
                _window(y, tile_h, padded_h, overlap),
                _window(x, tile_w, padded_w, overlap),
            )
            total[:, y : y + tile_h, x : x + tile_w] += tile_prob * weight
            weight_sum[y : y + tile_h, x : x + tile_w] += weight
    total /= weight_sum
    return np.ascontiguousarray(total[:, :height, :width])


def predict_batch_same_size(model, images, *, n_classes, multiple, device, tta):
    """Probabilities for a list of same-shape ``(C, H, W)`` images in one pass
    (each small enough to be a single tile)."""
    _, height, width = images[0].shape
    padded_h, padded_w = _round_up(height, multiple), _round_up(width, multiple)
    stack = np.stack(images)
    if padded_h != height or padded_w != width:
        mode = "reflect" if min(height, width) > 1 else "edge"
        pad = ((0, 0), (0, 0), (0, padded_h - height), (0, padded_w - width))
        stack = np.pad(stack, pad, mode=mode)
    prob = forward_probabilities(
        model, torch.from_numpy(stack), n_classes=n_classes, device=device, tta=tta
    )
    return prob[:, :, :height, :width].cpu().numpy()
