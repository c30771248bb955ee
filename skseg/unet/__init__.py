"""Supervised U-Net segmentation (:class:`UNetSegmenter`).

The parts of the family, one module each:

- ``estimator``: :class:`UNetSegmenter`, the scikit-learn API, save and load;
- ``network``: the U-Net modules (classic, and a decoder on an encoder);
- ``encoders``: ResNet and EfficientNet-Lite0 encoders and their weight files;
- ``training``: the training loop (sampling, augmentation, optimiser, encoder
  freezing, validation);
- ``distributed``: training on several processes with DistributedDataParallel;
- ``prediction``: whole-image and band-by-band tiled inference;
- ``losses``: the segmentation losses;
- ``export``: ONNX export.

torch is imported only when a model is fitted, loaded or used, so
``import skseg.unet`` works without it.
"""

from .estimator import UNetSegmenter

__all__ = ["UNetSegmenter"]
