"""Unsupervised segmentation by backpropagation (:class:`UnsupervisedCNNSegmenter`).

The parts of the family, one module each:

- ``estimator``: :class:`UnsupervisedCNNSegmenter`, the scikit-learn API;
- ``network``: the small fully convolutional feature network;
- ``training``: the self-training loop and its losses;
- ``refinement``: superpixel refinement and label bookkeeping.

torch is imported only when a model is fitted or used.
"""

from .estimator import UnsupervisedCNNSegmenter

__all__ = ["UnsupervisedCNNSegmenter"]
