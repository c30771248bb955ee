"""Segmentation losses for :class:`skseg.UNetSegmenter`: soft Dice, (binary)
cross-entropy and their sum, all blind to ignored pixels.

Targets are internal class indices ``0..C-1`` with ``-1`` for pixels that do
not count (the user's ``ignore_index`` and the padding added for training).
"""

from .._torch import require

torch = require("torch", "UNetSegmenter")
F = torch.nn.functional

LOSSES = ("dice", "ce", "dice+ce")
_DICE_SMOOTH = 1.0


def segmentation_loss(logits, target, *, loss, n_classes, class_weight=None):
    """Mean loss of a batch.

    Parameters
    ----------
    logits : Tensor of shape (N, K, H, W)
        ``K == 1`` (one logit, sigmoid) when ``n_classes == 2``, else
        ``K == n_classes`` (softmax).
    target : Tensor of shape (N, H, W), int64
        Class indices; ``-1`` marks pixels that must not affect the loss.
    loss : {"dice", "ce", "dice+ce"}
        Soft Dice with smoothing 1 (computed over the whole batch), binary or
        categorical cross-entropy, or their sum.
    n_classes : int
    class_weight : Tensor of shape (n_classes,), default=None
        Per-class weights of the cross-entropy term.

    Returns
    -------
    loss : Tensor
        A scalar. Ignored pixels receive exactly zero gradient.
    """
    valid = target >= 0
    if not bool(valid.any()):
        # Nothing labelled in this batch (e.g. a patch of unlabelled pixels):
        # a zero that keeps the graph, instead of the NaN of an empty mean.
        return logits.sum() * 0.0
    logits = logits.float()
    validf = valid.float()
    index = target.clamp(min=0)
    total = logits.new_zeros(())
    if n_classes == 2:
        z = logits[:, 0]
        truth = index.float()
        if loss in ("ce", "dice+ce"):
            pixel = F.binary_cross_entropy_with_logits(z, truth, reduction="none")
            weight = validf if class_weight is None else class_weight[index] * validf
            total = total + (pixel * weight).sum() / weight.sum()
        if loss in ("dice", "dice+ce"):
            prob = torch.sigmoid(z) * validf
            truth = truth * validf
            inter = (prob * truth).sum()
            denom = prob.sum() + truth.sum()
            total = total + 1.0 - (2.0 * inter + _DICE_SMOOTH) / (denom + _DICE_SMOOTH)
        return total
    if loss in ("ce", "dice+ce"):
        total = total + F.cross_entropy(
            logits, target, weight=class_weight, ignore_index=-1
        )
    if loss in ("dice", "dice+ce"):
        mask = validf.unsqueeze(1)
        prob = torch.softmax(logits, dim=1) * mask
        onehot = F.one_hot(index, n_classes).permute(0, 3, 1, 2).float() * mask
        inter = (prob * onehot).sum(dim=(0, 2, 3))
        denom = prob.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
        dice = (2.0 * inter + _DICE_SMOOTH) / (denom + _DICE_SMOOTH)
        total = total + 1.0 - dice.mean()
    return total
