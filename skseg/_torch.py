"""Lazy access to the optional deep-learning dependencies, shared by the torch
estimators. Nothing here imports torch at module load."""

import importlib

_INSTALL_HINT = (
    "install the extra with: pip install 'skseg[torch]' (from a source checkout: "
    "pip install '.[torch]'; for a CUDA or CPU-only torch build, install torch "
    "first as https://pytorch.org/get-started/locally/ shows)"
)


def require(module_name, purpose):
    """Import an optional module or raise an ImportError that says how to get it.

    Parameters
    ----------
    module_name : str
        For example ``"torch"``, ``"skimage.segmentation"`` or ``"tqdm"``.
    purpose : str
        What needs it, for the message (for example ``"UNetSegmenter"``).
    """
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs {module_name.split('.')[0]}, which is not installed; "
            f"{_INSTALL_HINT}"
        ) from exc


def resolve_device(device, purpose):
    """Turn ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or a torch.device
    into a torch.device, checking that CUDA is there when asked for."""
    torch = require("torch", purpose)
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    return dev


def torch_seed(random_state):
    """An integer seed for torch derived from a scikit-learn ``random_state``."""
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, 2**31 - 1))
