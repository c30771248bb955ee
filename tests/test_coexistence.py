"""torch, scikit-learn and skseg in one process, imported in either order.

Each brings an OpenMP runtime (or shares one by its soname). Whatever the
import order, a mixture fit, a torch convolution and a scikit-learn KMeans
must all finish in one process, and no runtime may be left with fewer
threads than it would have alone. Each order runs in a fresh interpreter,
as import order is process state.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.cluster import KMeans

pytest.importorskip("torch")

_SCRIPT = """
import json
import sys

if sys.argv[1] == "torch-first":
    import torch
    import skseg.mixture
else:
    import skseg.mixture
    import torch
import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_info

import skseg

X = np.random.default_rng(0).random((5000, 3))
means = [
    skseg.GaussianMixture(4, n_jobs=n_jobs, random_state=0).fit(X).means_.tolist()
    for n_jobs in (2, 1)
]
conv = torch.nn.functional.conv2d(torch.ones(1, 3, 16, 16), torch.ones(2, 3, 3, 3))
kmeans = KMeans(4, n_init=1, random_state=0).fit(X)
print(json.dumps({
    "gmm_means": means,
    "conv_values": torch.unique(conv).tolist(),
    "kmeans_inertia": kmeans.inertia_,
    "torch_threads": torch.get_num_threads(),
    "core_max_threads": skseg.build_info()["max_threads"],
    "threadpools": threadpool_info(),
}))
"""


def _run(mode, cwd):
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,  # outside the checkout: the installed package is imported
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _expected_openmp_threads():
    """What an OpenMP runtime starts with: OMP_NUM_THREADS, else the CPUs."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    if env.isdigit():
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count()


ORDERS = ("torch-first", "skseg-first")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {order: _run(order, tmp_path_factory.mktemp(order)) for order in ORDERS}


@pytest.mark.parametrize("order", ORDERS)
def test_torch_sklearn_and_skseg_share_a_process(order, runs):
    got = runs[order]
    # The fit is bit-identical for any thread count, in this company too.
    assert got["gmm_means"][0] == got["gmm_means"][1]
    assert got["conv_values"] == [27.0]  # 3 channels x 3 x 3 ones
    X = np.random.default_rng(0).random((5000, 3))
    ref = KMeans(4, n_init=1, random_state=0).fit(X).inertia_
    np.testing.assert_allclose(got["kmeans_inertia"], ref, rtol=1e-6)
    # No runtime left single-threaded by the import order.
    n = _expected_openmp_threads()
    assert got["core_max_threads"] == n
    assert {run["torch_threads"] for run in runs.values()} == {got["torch_threads"]}
    openmp = [p for p in got["threadpools"] if p["user_api"] == "openmp"]
    assert openmp
    assert {p["num_threads"] for p in openmp} == {n}, openmp
