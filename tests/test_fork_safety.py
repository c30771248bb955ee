"""Fits in worker processes complete, whatever the parent process ran.

GNU libgomp is not fork-safe: after the parent ran a parallel region, a child
made by fork() that starts a thread team waits forever. skseg's core runs on
one thread in a forked child, and limits scikit-learn's KMeans (used to
initialise mixtures) to one thread there. Each test bounds its wait, so a
regression fails instead of hanging.
"""

import json
import multiprocessing
import queue
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.datasets import load_sample_image

import skseg
from skseg import GaussianMixture, GMMImageSegmenter

# Seconds to wait for work that takes well under one.
TIMEOUT = 60

# Linux only: fork is Python's default start method there (before 3.14) and
# the runtime at issue is GNU libgomp. On macOS forking after system
# frameworks ran is unsafe for reasons of its own; Windows has no fork.
needs_fork = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="fork start method: Linux only"
)
# Python 3.12+ warns that forking a process with threads (here: the OpenMP
# pools this test starts on purpose) may deadlock; that is what is tested.
allow_fork_warning = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


@pytest.fixture(scope="module")
def pixels():
    return load_sample_image("china.jpg")[::8, ::8].reshape(-1, 3) / 255.0


def _fit_means(X, n_jobs):
    return GaussianMixture(4, n_jobs=n_jobs, random_state=0).fit(X).means_


def _fit_in_child(X, results):
    results.put((skseg.build_info()["forked_child"], _fit_means(X, n_jobs=2)))


@needs_fork
@allow_fork_warning
def test_forked_child_fits_after_parent_used_threads(pixels):
    # The parent runs both OpenMP runtimes (the core's and KMeans') on two
    # threads, then forks.
    _fit_means(pixels, n_jobs=2)
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_fit_in_child, args=(pixels, results))
    child.start()
    try:
        forked, means = results.get(timeout=TIMEOUT)
    except queue.Empty:
        pytest.fail(f"a fit in a forked child did not finish in {TIMEOUT} s")
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    assert forked
    assert not skseg.build_info()["forked_child"]
    # The child ran on one thread: exactly the parent's single-thread fit.
    np.testing.assert_array_equal(means, _fit_means(pixels, n_jobs=1))


class _SegmentingDataset:
    """A map-style dataset whose items fit a mixture to an image tile."""

    def __init__(self, image, n_items):
        self.image = image
        self.n_items = n_items

    def __len__(self):
        return self.n_items

    def __getitem__(self, i):
        tile = self.image[8 * i : 8 * i + 40]
        return GMMImageSegmenter(k=3, n_jobs=2, random_state=0).fit_predict(tile)


@needs_fork
@allow_fork_warning
def test_torch_dataloader_fork_workers_fit():
    torch = pytest.importorskip("torch")
    image = load_sample_image("flower.jpg")[::8, ::8]
    dataset = _SegmentingDataset(image, n_items=4)
    expected = [dataset[i] for i in range(len(dataset))]  # parent on 2 threads
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        num_workers=2,
        multiprocessing_context="fork",
        timeout=TIMEOUT,
    )
    got = list(loader)  # raises RuntimeError if a worker stays silent
    assert len(got) == len(expected)
    for labels, ref in zip(got, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(labels), ref)


_GRID_SEARCH = """
import json
import numpy as np
from sklearn.datasets import load_sample_image
from sklearn.model_selection import GridSearchCV
from skseg import GMMImageSegmenter
from skseg.metrics import matched_iou_scorer

china = load_sample_image("china.jpg")[::8, ::8]
flower = load_sample_image("flower.jpg")[::8, ::8]
images = [china[:40, :60], flower[:40, :60], china[10:50, 10:70], flower[5:45]]
masks = [(im.mean(axis=-1) > 100).astype(int) for im in images]
GMMImageSegmenter(k=4).fit(images)  # the parent uses its threads first

scores = {}
for n_jobs in (2, 1):  # joblib's default backend (loky), then serial
    search = GridSearchCV(
        GMMImageSegmenter(random_state=0, n_jobs=1),
        {"k": [2, 3]},
        scoring=matched_iou_scorer,
        cv=2,
        n_jobs=n_jobs,
    ).fit(images, masks)
    scores[n_jobs] = search.cv_results_["mean_test_score"].tolist()
print(json.dumps(scores))
"""


def test_grid_search_with_joblib_default_backend(tmp_path):
    # In a fresh interpreter, so that a hang is bounded by the timeout; cwd
    # outside the checkout, so the installed package is imported.
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_GRID_SEARCH)],
        capture_output=True,
        text=True,
        timeout=3 * TIMEOUT,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout.strip().splitlines()[-1])
    assert scores["2"] == scores["1"]
    assert all(0.0 < s <= 1.0 for s in scores["1"])
