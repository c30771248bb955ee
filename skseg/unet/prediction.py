"""Whole-image and tiled inference for :class:`skseg.UNetSegmenter`.

Images are padded (reflection) to a multiple of ``2**depth``. An image larger
than a tile is cut into overlapping tiles whose corners lie on the network's
down-sampling grid; each tile's probabilities are weighted by a window that is
zero in the outer quarter of the overlap (where the tile border's zero padding
distorts the output) and ramps linearly to one across the middle half, so
seams blend. Tiles are predicted one row of tiles at a time and the finished
rows of probabilities are handed out band by band, so memory is bounded by a
band of tiles, not by the image.
"""

import numpy as np

from .._torch import require
from .encoders import ResNetEncoder

torch = require("torch", "UNetSegmenter")
F = torch.nn.functional


def autocast_dtype(device):
    """The mixed-precision dtype for a CUDA device (None on the CPU)."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def use_channels_last(model, device):
    """Whether ``model`` runs channels-last on ``device``: always on CUDA; on
    the CPU, where it pays too (oneDNN: 1.3x the training patches/s of the
    residual U-Net at one thread, 1.65x for the EfficientNet-Lite0 U-Net at
    two), for every network but those on a ResNet encoder, because torch
    2.13's channels-last backward of a strided 1x1 convolution with few input
    channels (a ResNet shortcut's kind) corrupts the heap on the CPU."""
    network = getattr(model, "module", model)  # DistributedDataParallel
    encoder = getattr(network, "encoder", None)
    return device.type == "cuda" or not isinstance(encoder, ResNetEncoder)


def forward_probabilities(model, batch, *, n_classes, device, tta):
    """Probabilities of a normalised ``(N, C, H, W)`` float32 tensor batch:
    ``(N, 1, H, W)`` sigmoid for two classes, else ``(N, K, H, W)`` softmax."""
    batch = batch.to(device, non_blocking=True)
    if use_channels_last(model, device):
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


# On the CPU the network's activations are host memory: run at most this many
# pixels of tiles or images at once (one default 256 x 256 tile), so that
# memory stays bounded whatever batch_size is; larger passes buy little speed
# there (a 1024 x 1024 slice: 0.60 s and 47 MiB peak in 256-pixel tiles one
# at a time, 0.49 s and 184 MiB whole, 0.94 s and 87 MiB in 512-pixel
# tiles). On a GPU, batch_size tiles run together.
CPU_PIXELS_PER_PASS = 256 * 256


def _padded_index(length, padded):
    """Source index of every position of an axis padded from ``length`` to
    ``padded`` as the estimator pads (reflection; edge for length 1)."""
    mode = "reflect" if length > 1 else "edge"
    return np.pad(np.arange(length), (0, padded - length), mode=mode)


def predict_bands(
    model,
    read_rows,
    height,
    width,
    *,
    n_classes,
    multiple,
    tile_size,
    tile_overlap,
    batch_size,
    device,
    tta,
):
    """Probabilities of one image, predicted in overlapping tiles and handed
    out band by band, top to bottom, so that memory stays bounded by a band of
    tiles whatever the image size.

    Parameters
    ----------
    read_rows : callable
        ``read_rows(y0, y1)`` returns rows ``y0:y1`` of the normalised image as
        a ``(C, y1 - y0, width)`` float32 array; the image itself never needs
        to be held normalised as a whole.
    height, width : int
        The image's size.

    Yields
    ------
    y0, y1, prob
        Rows ``y0:y1`` of the result and their ``(K, y1 - y0, width)`` float32
        probabilities (``K == 1`` for two classes): a view into the running
        sums, valid until the next band is asked for.
    """
    padded_h, padded_w = _round_up(height, multiple), _round_up(width, multiple)
    tile = max(multiple, (tile_size // multiple) * multiple)
    overlap = min(tile_overlap, tile - multiple)
    stride = max(multiple, ((tile - overlap) // multiple) * multiple)
    tile_h, tile_w = min(tile, padded_h), min(tile, padded_w)
    n_out = 1 if n_classes == 2 else n_classes
    row_index = _padded_index(height, padded_h)
    col_index = _padded_index(width, padded_w)
    xs = _tile_starts(padded_w, tile_w, stride)
    if device.type == "cpu":
        batch_size = max(1, min(batch_size, CPU_PIXELS_PER_PASS // (tile_h * tile_w)))
    column_weights = [
        torch.from_numpy(_window(x, tile_w, padded_w, overlap)).to(device) for x in xs
    ]
    # Running sums for padded rows [top, top + tile_h), on the model's device
    # (tiles are added where they are computed; a band crosses to the host
    # once): every tile row starts at or below ``top``, so the rows above the
    # next tile row are final.
    top = 0
    total = torch.zeros((n_out, tile_h, padded_w), device=device)
    weight_sum = torch.zeros((tile_h, padded_w), device=device)

    def finished(y0, y1):
        # Normalised in place: these rows leave the running sums next.
        rows = slice(y0 - top, min(y1, height) - top)
        prob = total[:, rows, :width]
        prob /= weight_sum[rows, :width]
        return y0, min(y1, height), prob.cpu().numpy()

    for y in _tile_starts(padded_h, tile_h, stride):
        if y > top:
            if top < height:
                yield finished(top, y)
            shift, keep = y - top, top + tile_h - y
            # Move the rows still open to the top, in chunks that do not
            # overlap (an overlapping copy would need the whole buffer twice).
            for first in range(0, keep, shift):
                last = min(first + shift, keep)
                total[:, first:last] = total[:, first + shift : last + shift]
                weight_sum[first:last] = weight_sum[first + shift : last + shift]
            total[:, keep:] = 0
            weight_sum[keep:] = 0
            top = y
        rows = row_index[y : y + tile_h]
        first = int(rows.min())
        band = read_rows(first, int(rows.max()) + 1)
        # Index (a copy) only where the band reaches into the padding.
        if padded_h > height and y + tile_h > height:
            band = band[:, rows - first]
        if padded_w > width:
            band = band[:, :, col_index]
        row_weight = torch.from_numpy(_window(y, tile_h, padded_h, overlap))
        row_weight = row_weight.to(device)
        for start in range(0, len(xs), batch_size):
            chunk = range(start, min(start + batch_size, len(xs)))
            batch = np.stack([band[:, :, xs[i] : xs[i] + tile_w] for i in chunk])
            prob = forward_probabilities(
                model,
                torch.from_numpy(batch),
                n_classes=n_classes,
                device=device,
                tta=tta,
            )
            for i, tile_prob in zip(chunk, prob, strict=True):
                x = xs[i]
                weight = torch.outer(row_weight, column_weights[i])
                total[:, :, x : x + tile_w].addcmul_(tile_prob, weight)
                weight_sum[:, x : x + tile_w] += weight
    if top < height:
        yield finished(top, top + tile_h)


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
