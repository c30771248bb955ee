"""Label operations of the unsupervised CNN segmenter that run on the device.

Every function here takes and returns torch tensors on one device and never
copies data to the host, so that a training iteration on a GPU does not wait
for the CPU. Torch is passed in by the caller: this module does not import it.
"""


def argmax_channels(response):
    """Label of each pixel of an ``(N, C, H, W)`` response: the index of its
    first maximum over the channels, as ``np.argmax``.

    ``max(dim=1).indices`` follows the same first-maximum rule as ``argmax``
    and is about three times faster on the CPU for channel-first tensors,
    where ``argmax`` reduces over a strided axis.
    """
    return response.max(dim=1).indices


def superpixel_offsets(segments, n_classes):
    """Precompute ``segments * n_classes``, the first half of the bin index of
    :func:`refine_by_superpixels` (it does not change between iterations)."""
    return segments * n_classes


def refine_by_superpixels(torch, labels, segments, offsets, n_segments, n_classes):
    """Give every pixel the majority label of its superpixel.

    One vectorised pass: pixel counts per (superpixel, label) pair are
    accumulated into an ``(n_segments, n_classes)`` table by ``scatter_add_``
    (unlike ``torch.bincount``, it needs no host synchronisation on CUDA to size
    its output), the majority of each row is found by ``argmax`` and gathered
    back per pixel. ``argmax`` returns the first maximum, so ties go to the
    smallest label, as ``np.argmax`` over sorted unique labels does in
    Kanezaki's reference loop.

    Parameters
    ----------
    torch : module
        The torch module.
    labels : Tensor of shape (n_pixels,), int64
        Current label of each pixel, in ``0..n_classes-1``.
    segments : Tensor of shape (n_pixels,), int64
        Superpixel of each pixel, in ``0..n_segments-1``.
    offsets : Tensor of shape (n_pixels,), int64
        ``segments * n_classes`` (see :func:`superpixel_offsets`).
    n_segments, n_classes : int
        Number of superpixels and of labels.

    Returns
    -------
    refined : Tensor of shape (n_pixels,), int64
    """
    counts = torch.zeros(
        n_segments * n_classes, dtype=torch.int32, device=labels.device
    )
    ones = torch.ones(1, dtype=torch.int32, device=labels.device).expand_as(labels)
    counts.scatter_add_(0, offsets + labels, ones)
    majority = counts.view(n_segments, n_classes).argmax(dim=1)
    return majority[segments]


def labels_present(torch, labels, n_classes, out=None):
    """Boolean vector of the labels that occur in ``labels``, OR-ed into
    ``out`` when given (to count labels over several images without a host
    round trip)."""
    present = torch.zeros(n_classes, dtype=torch.bool, device=labels.device)
    present[labels] = True
    if out is not None:
        present |= out
    return present


def consecutive_labels(torch, labels, n_classes):
    """Renumber labels to ``0..n-1`` in the order of their original values."""
    present = labels_present(torch, labels, n_classes)
    new_index = torch.cumsum(present.to(torch.int64), 0) - 1
    return new_index[labels]
