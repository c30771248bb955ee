"""``skseg.show_versions()``: the facts a bug report needs."""

import importlib.metadata
import platform
import sys

# Distributions whose versions matter to skseg, in the order printed.
_DEPENDENCIES = ("skseg", "numpy", "scipy", "scikit-learn", "threadpoolctl", "Pillow")
# What is shown of each threadpoolctl entry.
_THREADPOOL_KEYS = ("user_api", "internal_api", "num_threads", "version", "filepath")


def _installed_version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch_version():
    """torch's version, read from its metadata unless it is already imported.

    Importing torch takes seconds and loads its own OpenMP runtime, which
    would change the very thread pools being reported.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch.__version__
    version = _installed_version("torch")
    return None if version is None else f"{version} (installed, not imported)"


def _get_versions():
    """The report as a dict of sections (see :func:`show_versions`)."""
    from threadpoolctl import threadpool_info

    # Loads the compiled core and scikit-learn's KMeans (used to initialise
    # mixtures), so that their OpenMP runtimes appear below.
    import skseg.mixture  # noqa: F401

    from . import build_info

    deps = {name: _installed_version(name) for name in _DEPENDENCIES}
    deps["torch"] = _torch_version()
    return {
        "system": {
            "python": sys.version.replace("\n", " "),
            "executable": sys.executable,
            "machine": platform.platform(),
        },
        "dependencies": deps,
        "build": build_info(),
        "threadpools": [
            {key: info.get(key) for key in _THREADPOOL_KEYS}
            for info in threadpool_info()
        ],
    }


def show_versions():
    """Print versions, build and thread-pool facts for a bug report.

    Prints the Python and platform, skseg and its dependencies (torch only
    when installed, without importing it), how the compiled core was built
    (:func:`skseg.build_info`: compiler, OpenMP, SIMD levels) and the OpenMP
    and BLAS runtimes loaded in this process with their thread counts, as
    reported by threadpoolctl.
    """
    report = _get_versions()
    for title, key in (("System", "system"), ("Dependencies", "dependencies")):
        print(f"\n{title}:")
        for name, value in report[key].items():
            print(f"{name:>14}: {value}")
    print("\nBuild (skseg.build_info()):")
    for name, value in report["build"].items():
        print(f"{name:>14}: {value}")
    print("\nThread pools (threadpoolctl):")
    for pool in report["threadpools"]:
        print()
        for name, value in pool.items():
            print(f"{name:>14}: {value}")
