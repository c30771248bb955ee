"""skseg: image-segmentation estimators with the scikit-learn API.

The classical estimators and metrics need only numpy, scikit-learn and Pillow.
The deep-learning estimators need the ``torch`` extra
(``pip install skseg[torch]``) and import torch only when first used.
"""

from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

__version__ = "0.1.0"


def _missing_core_message():
    here = Path(__file__).resolve().parent
    if (here.parent / "pyproject.toml").is_file():
        return (
            "skseg's compiled core (skseg._core) is missing: Python imported "
            f"skseg from its source tree {here}, which shadows the installed "
            "package when you run from the checkout root (or have it on "
            "PYTHONPATH). Install the checkout (pip install .) and run Python "
            "from another directory"
        )
    return (
        f"skseg's compiled core (skseg._core) is missing from {here}; the "
        "installation is incomplete: reinstall skseg"
    )


# Looked up, not loaded: the compiled core loads with the first estimator.
if find_spec(f"{__name__}._core") is None:
    raise ImportError(_missing_core_message())

# Public name -> module that defines it. Modules load on first access so that
# ``import skseg`` stays fast and never imports torch.
_LAZY = {
    "GaussianMixture": "skseg.mixture",
    "GMMImageSegmenter": "skseg.mixture",
    "UnsupervisedCNNSegmenter": "skseg.unsupervised_cnn",
    "UNetSegmenter": "skseg.unet",
    "ColorSpaceTransformer": "skseg.preprocessing",
    "IntensityScaler": "skseg.preprocessing",
    "read_image": "skseg.io",
    "read_mask": "skseg.io",
    "write_image": "skseg.io",
    "write_label_map": "skseg.io",
    "write_overlay": "skseg.io",
    "overlay": "skseg.io",
    "label_palette": "skseg.io",
    "load_sample_image": "skseg.io",
    "load_segmentation_folder": "skseg.datasets",
    "dice_score": "skseg.metrics",
    "iou_score": "skseg.metrics",
    "pixel_accuracy": "skseg.metrics",
    "confusion_matrix": "skseg.metrics",
    "match_labels": "skseg.metrics",
    "matched_dice_score": "skseg.metrics",
    "matched_iou_score": "skseg.metrics",
    "matched_pixel_accuracy": "skseg.metrics",
    "dice_scorer": "skseg.metrics",
    "iou_scorer": "skseg.metrics",
    "pixel_accuracy_scorer": "skseg.metrics",
    "matched_dice_scorer": "skseg.metrics",
    "matched_iou_scorer": "skseg.metrics",
    "matched_pixel_accuracy_scorer": "skseg.metrics",
}

__all__ = ["__version__", "build_info", *_LAZY]


def build_info():
    """Describe how the compiled core was built and what it uses at run time.

    Returns
    -------
    info : dict
        ``openmp`` (OpenMP version as ``yyyymm``, 0 when built without it),
        ``max_threads``, ``compiler``, ``simd_compiled`` (the SIMD levels with
        kernels in this build) and ``simd_runtime`` (the level chosen for this
        CPU).
    """
    from . import _core

    return dict(_core.build_info())


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skseg' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
