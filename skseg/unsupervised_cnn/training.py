"""Training steps of the unsupervised CNN segmenter.

The estimator's loop and the benchmark both use these functions, so that the
benchmark times exactly what the estimator runs. Torch is passed in by the
caller: this module does not import it.
"""

import numpy as np

from .refinement import (
    argmax_channels,
    labels_present,
    refine_by_superpixels,
    superpixel_offsets,
)


class ImageProblem:
    """One training image on the device, with its superpixels and scribbles.

    Parameters
    ----------
    torch : module
    image : ndarray of shape (H, W, C), float32
        The image as it is trained on (already downscaled when needed).
    device : torch.device
    channels_last : bool
        Store the image in channels-last memory format (faster convolutions
        on CUDA).
    segments : ndarray of shape (H, W) of int, default=None
        Superpixels numbered ``0..n_segments-1``; None for the continuity
        method.
    n_classes : int
        Channels of the network's response (needed for the superpixel
        offsets).
    scribbles : ndarray of shape (H, W) of int, default=None
        Scribbled class per pixel, or ``ignore_index`` where unlabelled.
    ignore_index : int, default=None
    """

    def __init__(
        self,
        torch,
        image,
        device,
        channels_last,
        n_classes,
        segments=None,
        scribbles=None,
        ignore_index=None,
    ):
        self.height, self.width = image.shape[:2]
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        tensor = tensor[None].to(device)
        if channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        self.image = tensor
        self.segments = self.offsets = None
        self.n_segments = 0
        if segments is not None:
            self.segments = torch.from_numpy(segments.reshape(-1).astype(np.int64))
            self.segments = self.segments.to(device)
            self.offsets = superpixel_offsets(self.segments, n_classes)
            self.n_segments = int(segments.max()) + 1
        self.scribble_mask = self.scribble_labels = None
        self.n_scribbled = 0
        if scribbles is not None:
            mask = scribbles.reshape(-1) != ignore_index
            self.n_scribbled = int(mask.sum())
            if self.n_scribbled:
                labels = np.where(mask, scribbles.reshape(-1), 0).astype(np.int64)
                self.scribble_mask = torch.from_numpy(mask).to(device)
                self.scribble_labels = torch.from_numpy(labels).to(device)
        self.n_pixels = self.height * self.width


def forward(torch, net, problem, amp):
    """The network's response to the image as float32 ``(1, C, H, W)``.

    With ``amp`` (CUDA only), the layers up to the last batch norm run in
    bfloat16 autocast. bfloat16 has float32's range, so no loss scaling is
    needed (a gradient scaler would copy its overflow flag to the host every
    step). The last batch norm runs in float32: its output decides the argmax
    labels, and bfloat16's 8-bit mantissa would make ties between channels
    common.
    """
    if not amp:
        return net(problem.image)
    device_type = problem.image.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16):
        features = net[:-1](problem.image)
    return net[-1](features.float())


def similarity_target(torch, response, problem, n_classes):
    """Argmax labels of the response (flat) and the target they give: the
    labels themselves, or their superpixel majority when the problem has
    superpixels."""
    labels = argmax_channels(response.detach()).view(-1)
    if problem.segments is None:
        return labels, labels
    refined = refine_by_superpixels(
        torch, labels, problem.segments, problem.offsets, problem.n_segments, n_classes
    )
    return labels, refined


def loss_of(torch, response, target, problem, continuity_weight, scribble_weight):
    """Cross-entropy toward ``target``, plus the scribble cross-entropy on the
    scribbled pixels (which then leave the similarity term) and
    ``continuity_weight`` times the mean absolute vertical and horizontal
    response differences, as in Kim, Kanezaki and Tanaka (2020)."""
    F = torch.nn.functional
    shape = (1, problem.height, problem.width)
    if problem.scribble_mask is None:
        loss = F.cross_entropy(response, target.view(shape))
    else:
        mask = problem.scribble_mask
        full_target = torch.where(mask, problem.scribble_labels, target)
        per_pixel = F.cross_entropy(
            response, full_target.view(shape), reduction="none"
        ).view(-1)
        scribbled = per_pixel.masked_fill(~mask, 0.0).sum()
        unscribbled = per_pixel.masked_fill(mask, 0.0).sum()
        n_free = problem.n_pixels - problem.n_scribbled
        loss = scribble_weight * scribbled / problem.n_scribbled
        if n_free:
            loss = loss + unscribbled / n_free
    if continuity_weight:
        if problem.height > 1:
            dy = response[:, :, 1:, :] - response[:, :, :-1, :]
            loss = loss + continuity_weight * dy.abs().mean()
        if problem.width > 1:
            dx = response[:, :, :, 1:] - response[:, :, :, :-1]
            loss = loss + continuity_weight * dx.abs().mean()
    return loss


def train(
    torch,
    net,
    problems,
    *,
    n_classes,
    lr,
    momentum,
    max_iter,
    stop_at,
    continuity_weight,
    scribble_weight,
    amp,
    progress=None,
    phase_timer=None,
):
    """Train ``net`` in place and return its history.

    Each iteration takes one SGD step per image. After each iteration, the
    number of distinct argmax labels over all images (before refinement, as
    in the reference) is the only value copied to the host; training stops
    once it is at most ``stop_at``. Losses are kept on the device until the
    end.

    ``phase_timer``, for benchmarks only, is called with ``"start"``,
    ``"forward"``, ``"refinement"`` (argmax, superpixel majority and label
    count) and ``"backward"`` (loss, backward pass and SGD step) at the end of
    each phase; it is expected to synchronise the device.

    Returns
    -------
    losses : ndarray of shape (n_iter,)
        Mean loss over the images at each iteration.
    n_labels : ndarray of shape (n_iter,)
        Label count at each iteration.
    """
    device = problems[0].image.device
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    losses = torch.zeros(max_iter, dtype=torch.float32, device=device)
    counts = torch.zeros(max_iter, dtype=torch.int64, device=device)
    tick = phase_timer or _no_timer
    net.train()
    n_iter = 0
    for it in range(max_iter):
        present = None
        total = None
        for problem in problems:
            tick("start")
            optimizer.zero_grad(set_to_none=True)
            response = forward(torch, net, problem, amp)
            tick("forward")
            labels, target = similarity_target(torch, response, problem, n_classes)
            present = labels_present(torch, labels, n_classes, out=present)
            tick("refinement")
            loss = loss_of(
                torch, response, target, problem, continuity_weight, scribble_weight
            )
            loss.backward()
            optimizer.step()
            total = loss.detach() if total is None else total + loss.detach()
            tick("backward")
        tick("start")
        losses[it] = total / len(problems)
        counts[it] = present.sum()
        n_iter = it + 1
        n_labels = int(counts[it])  # the one host synchronisation per iteration
        tick("refinement")
        if progress is not None:
            progress.set_postfix(labels=n_labels, loss=f"{float(losses[it]):.4f}")
            progress.update(1)
        if n_labels <= stop_at:
            break
    return (
        losses[:n_iter].cpu().numpy().astype(np.float64),
        counts[:n_iter].cpu().numpy(),
    )


def _no_timer(phase):
    pass
