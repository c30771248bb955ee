"""End to end with default settings: GMMImageSegmenter against the usual
scikit-learn recipe (GaussianMixture fitted on every pixel).

Both use k-means initialisation and stop at tol=1e-3 (at most 100 EM
iterations), so they may run different numbers of iterations: this measures
what a user waits for, not the same work (bench_gmm.py does that). The skseg
time includes finding the distinct colours, k-means on them and EM.

Usage::

    python benchmarks/bench_gmm_segmenter.py [--k 32] [--images china,flower]
"""

import argparse
import time
import warnings

from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from skseg import GMMImageSegmenter
from skseg.io import load_sample_image
from skseg.mixture.segmenter import _unique_rows


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--images", default="china,flower")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"k={args.k}, init k-means, tol=1e-3, random_state=0, float32 in [0, 1]")
    for name in args.images.split(","):
        img = load_sample_image(name)
        seg = GMMImageSegmenter(k=args.k, random_state=0)
        t_fit, _ = timed(lambda seg=seg, img=img: seg.fit(img))
        t_pred, _ = timed(lambda seg=seg, img=img: seg.predict(img))
        # The k-means share of skseg's fit, on the same weighted distinct colours.
        distinct, _, counts = _unique_rows(img.reshape(-1, 3))
        t_kmeans, _ = timed(
            lambda d=distinct, c=counts: KMeans(args.k, n_init=1, random_state=0).fit(
                d / 255.0, sample_weight=c
            )
        )
        pixels = img.reshape(-1, 3).astype("float32") / 255
        ref = SklearnGaussianMixture(args.k, random_state=0)
        t_ref, _ = timed(lambda ref=ref, p=pixels: ref.fit(p))
        t_ref_pred, _ = timed(lambda ref=ref, p=pixels: ref.predict(p))
        print(
            f"{name}: skseg fit {t_fit:.2f} s ({seg.mixture_.n_iter_} iterations, "
            f"k-means about {t_kmeans:.2f} s of it), predict {t_pred:.3f} s, "
            f"lower bound {seg.mixture_.lower_bound_:.4f} | scikit-learn fit "
            f"{t_ref:.2f} s ({ref.n_iter_} iterations), predict {t_ref_pred:.3f} s, "
            f"lower bound {ref.lower_bound_:.4f} | fit {t_ref / t_fit:.0f}x, "
            f"predict {t_ref_pred / t_pred:.0f}x"
        )


if __name__ == "__main__":
    main()
