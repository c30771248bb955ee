"""ONNX export of a fitted :class:`skseg.UNetSegmenter`.

The exported graph is the whole prediction of one batch: it takes images
scaled to ``[0, 1]`` (what :func:`skseg._validation.image_to_float` gives: 8-bit
images divided by 255) as ``image``, float32 ``(N, C, H, W)`` with any batch
size, height and width, and returns ``probabilities``, float32
``(N, n_classes, H, W)`` in the order of ``classes_``. The normalisation, the
padding to the network's stride and the crop back are inside the graph.
Tiling and test-time augmentation are not: an exported model sees the whole
image at once.
"""

import warnings
from pathlib import Path

import numpy as np

from .._torch import require

torch = require("torch", "UNetSegmenter.to_onnx")
F = torch.nn.functional

OPSET = 17


class ProbabilityModel(torch.nn.Module):
    """Normalise, pad to a multiple of ``multiple``, run, crop, to probabilities."""

    def __init__(self, network, mean, std, multiple, binary):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.as_tensor(mean).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std).reshape(1, -1, 1, 1))
        self.multiple = multiple
        self.binary = binary

    def forward(self, image):
        height, width = image.shape[2], image.shape[3]
        x = (image - self.mean) / self.std
        # Replicate padding, so that 1-pixel-wide inputs work; the estimator
        # reflects, so predictions differ within the padded margin's reach.
        pad_h = (self.multiple - height % self.multiple) % self.multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")
        logits = self.network(x)[:, :, :height, :width]
        if self.binary:
            positive = torch.sigmoid(logits)
            return torch.cat([1 - positive, positive], dim=1)
        return torch.softmax(logits, dim=1)


def probability_model(estimator):
    """The fitted estimator's network wrapped as :class:`ProbabilityModel`
    (on the CPU, in eval mode; it shares the estimator's parameters)."""
    estimator._check_fitted()
    network = estimator.model_.to("cpu").eval()
    estimator.device_ = "cpu"
    return ProbabilityModel(
        network,
        np.asarray(estimator.channel_mean_, np.float32),
        np.asarray(estimator.channel_std_, np.float32),
        2**estimator.depth,
        len(estimator.classes_) == 2,
    ).eval()


def to_onnx(estimator, path, *, opset=OPSET):
    """Write ``estimator``'s prediction graph to the ONNX file ``path``."""
    require("onnx", "UNetSegmenter.to_onnx (pip install 'skseg[onnx]')")
    model = probability_model(estimator)
    path = Path(path)
    size = 2 * model.multiple + 1
    example = torch.rand(1, int(estimator.n_channels_), size, size)
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter's deprecation notice and its constant-folding
        # notes about slices say nothing about this graph.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based")
        warnings.filterwarnings("ignore", message=".*will be removed")
        warnings.filterwarnings("ignore", message="Constant folding")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["image"],
            output_names=["probabilities"],
            dynamic_axes={
                "image": {0: "batch", 2: "height", 3: "width"},
                "probabilities": {0: "batch", 2: "height", 3: "width"},
            },
            opset_version=opset,
            dynamo=False,  # the TorchScript exporter needs no onnxscript
        )
    return path
