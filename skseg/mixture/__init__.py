"""Gaussian mixtures over pixel colours, fitted by the compiled EM core.

The parts of the family, one module each:

- ``gaussian_mixture``: :class:`GaussianMixture`, a drop-in for scikit-learn's,
  whose EM runs in C++;
- ``segmenter``: :class:`GMMImageSegmenter`, a mixture over an image's colours;
- ``_dask``: both estimators over Dask arrays and files (``skseg[dask]``):
  distributed EM, lazy prediction, and :func:`predict_files` for folders.
"""

from ._dask import aligned_row_chunks, predict_files
from .gaussian_mixture import GaussianMixture
from .segmenter import GMMImageSegmenter

__all__ = [
    "GaussianMixture",
    "GMMImageSegmenter",
    "aligned_row_chunks",
    "predict_files",
]
