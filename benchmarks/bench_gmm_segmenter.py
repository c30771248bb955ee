"""End to end with default settings: GMMImageSegmenter against the usual
scikit-learn recipe (GaussianMixture fitted on every pixel).

Sections (``--sections``, comma-separated):

- ``speed``: ``GMMImageSegmenter(k).fit(img)`` and ``.predict(img)`` against
  ``GaussianMixture(k).fit(pixels)`` and ``.predict(pixels)``, pixels as
  float32 in [0, 1]. Both use k-means initialisation and stop at tol=1e-3
  (at most 100 EM iterations), so they may run different numbers of
  iterations: this measures what a user waits for, not the same work
  (bench_gmm.py does that). The skseg fit includes counting the distinct
  colours, k-means on them and EM; its time is the median of ``--repeats``
  runs, scikit-learn's fit is run once.
- ``quality``: the final lower bound (mean log-likelihood per pixel, the same
  quantity for both) over random_state 0 to ``--seeds`` - 1, for skseg, and
  for scikit-learn over the first ``--sklearn-seeds`` of them (each of its
  fits takes 15 to 60 s).
- ``optima``: the same comparison over many seeds (``--optima-seeds``,
  default 100), where scikit-learn's recipe is reproduced by
  ``skseg.GaussianMixture(k).fit(pixels)``: scikit-learn's ``KMeans`` on every
  pixel, then the same EM as scikit-learn's (skseg's drop-in gives its
  answer from the same start, tests/test_mixture.py) in a fraction of its
  time. Prints each side's mean lower bound with its standard error, the
  share of seeds that reach the best optimum found, and the paired
  difference: on a few seeds the average mostly says which seeds were lucky.
- ``inits``: skseg's default initialisation (k-means) against
  ``init_params="k-means++"`` (the seeds alone, as one-point components) over
  random_state 0 to ``--optima-seeds`` - 1, on the images and on five CamVid
  frames (``../shared/data``, when present): mean paired difference of the
  final lower bounds with its standard error, and the median fit time of each.
- ``memory``: peak memory of the fit beyond its input, for a 12-megapixel
  random-colour uint8 image and a 12-megapixel photo (china.jpg resized), each
  fitted in a fresh process that reads the image from a .npy file; the peak
  is the process's VmHWM after resetting it (/proc/self/clear_refs) with the
  image loaded, which counts C++ allocations too. Linux only.

Usage::

    python benchmarks/bench_gmm_segmenter.py [--k 32] [--images china,flower]
        [--sections speed,quality,optima,inits,memory] [--seeds 10]
        [--sklearn-seeds 10] [--optima-seeds 100]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from threadpoolctl import threadpool_limits

from skseg import GaussianMixture, GMMImageSegmenter
from skseg.io import load_sample_image, read_image

MEGAPIXELS_12 = (3000, 4000)
CAMVID_IMAGES = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "camvid_train_subset"
    / "images"
)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def segmenter(k, seed, n_jobs):
    return GMMImageSegmenter(k=k, random_state=seed, n_jobs=n_jobs)


def pixels_of(img):
    return img.reshape(-1, 3).astype("float32") / 255


def speed(names, k, repeats, n_jobs):
    print(f"## speed: k={k}, init k-means, tol=1e-3, random_state=0")
    for name in names:
        img = load_sample_image(name)
        fits = [
            timed(lambda img=img: segmenter(k, 0, n_jobs).fit(img))
            for _ in range(repeats)
        ]
        t_fit = statistics.median(t for t, _ in fits)
        seg = fits[0][1]
        t_pred = statistics.median(
            timed(lambda seg=seg, img=img: seg.predict(img))[0] for _ in range(repeats)
        )
        pixels = pixels_of(img)
        ref = SklearnGaussianMixture(k, random_state=0)
        t_ref, _ = timed(lambda ref=ref, pixels=pixels: ref.fit(pixels))
        t_ref_pred = statistics.median(
            timed(lambda ref=ref, pixels=pixels: ref.predict(pixels))[0]
            for _ in range(3)
        )
        agree = np.mean(seg.predict(img).ravel() == seg.mixture_.predict(pixels))
        print(
            f"{name}: skseg fit {t_fit:.3f} s ({seg.mixture_.n_iter_} iterations), "
            f"predict {t_pred * 1e3:.1f} ms, lower bound "
            f"{seg.mixture_.lower_bound_:.4f} | scikit-learn fit {t_ref:.2f} s "
            f"({ref.n_iter_} iterations), predict {t_ref_pred * 1e3:.0f} ms, lower "
            f"bound {ref.lower_bound_:.4f} | fit {t_ref / t_fit:.0f}x, predict "
            f"{t_ref_pred / t_pred:.0f}x (skseg's labels equal its mixture's "
            f"per-pixel predict on {agree:.0%} of pixels)"
        )


def quality(names, k, n_seeds, n_sklearn_seeds, n_jobs):
    print(
        f"## quality: final lower bound, k={k}, random_state 0..{n_seeds - 1} "
        f"(scikit-learn 0..{n_sklearn_seeds - 1})"
    )
    for name in names:
        img = load_sample_image(name)
        ours = [
            segmenter(k, seed, n_jobs).fit(img).mixture_.lower_bound_
            for seed in range(n_seeds)
        ]
        pixels = pixels_of(img)
        theirs = [
            SklearnGaussianMixture(k, random_state=seed).fit(pixels).lower_bound_
            for seed in range(n_sklearn_seeds)
        ]
        print(f"{name} skseg        mean {np.mean(ours):.4f}: {np.round(ours, 4)}")
        print(f"{name} scikit-learn mean {np.mean(theirs):.4f}: {np.round(theirs, 4)}")
        paired = np.mean(np.subtract(ours[:n_sklearn_seeds], theirs))
        print(f"{name} mean paired difference (skseg - scikit-learn): {paired:+.4f}")


def optima(names, k, n_seeds, n_jobs):
    print(
        f"## optima: final lower bound, k={k}, random_state 0..{n_seeds - 1}; "
        "scikit-learn's recipe as KMeans on every pixel + the same EM"
    )
    for name in names:
        img = load_sample_image(name)
        pixels = pixels_of(img)
        ours = np.array(
            [
                segmenter(k, seed, n_jobs).fit(img).mixture_.lower_bound_
                for seed in range(n_seeds)
            ]
        )
        theirs = np.array(
            [
                GaussianMixture(k, random_state=seed, n_jobs=n_jobs)
                .fit(pixels)
                .lower_bound_
                for seed in range(n_seeds)
            ]
        )
        # "Reached the best optimum": within 0.02 of the best bound either found.
        best = max(ours.max(), theirs.max())
        for who, bounds in (("skseg", ours), ("scikit-learn recipe", theirs)):
            print(
                f"{name} {who:<19} mean {bounds.mean():.4f} +- "
                f"{_standard_error(bounds):.4f}, best optimum "
                f"({best:.3f}) reached by {np.mean(bounds > best - 0.02):.0%} of seeds"
            )
        diff = ours - theirs
        print(
            f"{name} mean paired difference (skseg - scikit-learn recipe): "
            f"{diff.mean():+.4f} +- {_standard_error(diff):.4f}"
        )


def inits(names, k, n_seeds, n_jobs):
    print(
        f"## inits: final lower bound of GMMImageSegmenter(k={k}), init_params "
        f"'kmeans' (default) and 'k-means++', random_state 0..{n_seeds - 1}"
    )
    images = {name: load_sample_image(name) for name in names}
    for path in sorted(CAMVID_IMAGES.glob("*.png"))[::25][:5]:
        images[f"CamVid {path.stem}"] = read_image(path)
    for name, img in images.items():
        bounds, times = {}, {}
        for init in ("kmeans", "k-means++"):
            bounds[init], times[init] = _bounds_and_time(img, k, init, n_seeds, n_jobs)
        diff = bounds["k-means++"] - bounds["kmeans"]
        print(
            f"{name}: kmeans mean {bounds['kmeans'].mean():.4f} "
            f"({times['kmeans'] * 1e3:.0f} ms), k-means++ mean "
            f"{bounds['k-means++'].mean():.4f} ({times['k-means++'] * 1e3:.0f} ms), "
            f"paired difference (k-means++ - kmeans) {diff.mean():+.4f} +- "
            f"{_standard_error(diff):.4f}"
        )


def _bounds_and_time(img, k, init_params, n_seeds, n_jobs):
    """Final lower bounds over random_state 0..n_seeds - 1, median fit time."""
    bounds, times = [], []
    for seed in range(n_seeds):
        seg = GMMImageSegmenter(
            k=k, init_params=init_params, random_state=seed, n_jobs=n_jobs
        )
        t, _ = timed(lambda seg=seg: seg.fit(img))
        bounds.append(seg.mixture_.lower_bound_)
        times.append(t)
    return np.array(bounds), statistics.median(times)


def _standard_error(values):
    return values.std(ddof=1) / np.sqrt(len(values))


def memory(k):
    print(f"## memory: peak of GMMImageSegmenter(k={k}).fit beyond the input")
    rng = np.random.default_rng(0)
    images = {
        "random-colour uint8": rng.integers(
            0, 256, size=(*MEGAPIXELS_12, 3), dtype=np.uint8
        ),
        "china.jpg resized": _resized(load_sample_image("china.jpg")),
    }
    with tempfile.TemporaryDirectory() as folder:
        for name, img in images.items():
            path = Path(folder) / "image.npy"
            np.save(path, img)
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(path), "--k", str(k)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            print(f"{name} {img.shape[0]}x{img.shape[1]}: {out}")


def _resized(img):
    from PIL import Image

    height, width = MEGAPIXELS_12
    return np.asarray(Image.fromarray(img).resize((width, height), Image.BILINEAR))


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(path, k):
    """Fit once in this fresh process; print the peak beyond the input."""
    img = np.load(path)
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    t_fit, seg = timed(lambda: GMMImageSegmenter(k=k, random_state=0).fit(img))
    peak = _status_kib("VmHWM")
    print(
        f"input {img.nbytes / 2**20:.0f} MiB, peak beyond the loaded input "
        f"{(peak - before) / 1024:.0f} MiB, fit {t_fit:.1f} s, "
        f"{seg.mixture_.n_features_in_} features, "
        f"{seg.mixture_.n_iter_} EM iterations"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--images", default="china,flower")
    parser.add_argument("--sections", default="speed,quality,optima,inits,memory")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--sklearn-seeds", type=int, default=10)
    parser.add_argument("--optima-seeds", type=int, default=100)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="n_jobs of skseg and the BLAS/OpenMP threads of scikit-learn "
        "(default: all cores for both)",
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    if args.memory_child:
        memory_child(args.memory_child, args.k)
        return
    names = args.images.split(",")
    sections = args.sections.split(",")
    print(f"threads: {args.threads or 'all cores'}")
    with threadpool_limits(args.threads):
        if "speed" in sections:
            speed(names, args.k, args.repeats, args.threads)
        if "quality" in sections:
            quality(names, args.k, args.seeds, args.sklearn_seeds, args.threads)
        if "optima" in sections:
            optima(names, args.k, args.optima_seeds, args.threads)
        if "inits" in sections:
            inits(names, args.k, args.optima_seeds, args.threads)
    if "memory" in sections:
        memory(args.k)


if __name__ == "__main__":
    main()
