"""Supervised U-Net segmentation (:class:`UNetSegmenter`).

The parts of the family, one module each:

- ``estimator``: :class:`UNetSegmenter`, the scikit-learn API, save and load;
- ``network``: the U-Net module itself;
- ``training``: the training loop (sampling, augmentation, optimiser, validation);
- ``distributed``: training on several processes with DistributedDataParallel;
- ``prediction``: whole-image and tiled inference;
- ``losses``: the segmentation losses.

torch is imported only when a model is fitted, loaded or used, so
``import skseg.unet`` works without it.
"""

from .estimator import UNetSegmenter

__all__ = ["UNetSegmenter"]
