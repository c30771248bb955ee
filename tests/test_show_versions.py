import importlib.metadata
import subprocess
import sys

from threadpoolctl import threadpool_limits

import skseg
from skseg._show_versions import _get_versions


def test_version_is_written_once():
    # pyproject.toml takes the distribution's version from skseg/__init__.py.
    assert importlib.metadata.version("skseg") == skseg.__version__


def test_show_versions_prints_versions_and_build(capsys):
    skseg.show_versions()
    out = capsys.readouterr().out
    assert f"skseg: {skseg.__version__}" in out
    for dist in ("numpy", "scipy", "scikit-learn", "threadpoolctl"):
        assert f"{dist}: {importlib.metadata.version(dist)}" in out
    info = skseg.build_info()
    for key in ("compiler", "simd_runtime", "openmp"):
        assert f"{key}: {info[key]}" in out
    for pool in _get_versions()["threadpools"]:
        assert f"filepath: {pool['filepath']}" in out


def test_threadpools_include_the_cores_openmp_runtime():
    if not skseg.build_info()["openmp"]:
        return  # built without OpenMP: nothing to find
    report = _get_versions()
    assert any(pool["user_api"] == "openmp" for pool in report["threadpools"])
    # threadpoolctl sees the core's runtime: limiting OpenMP limits the core.
    with threadpool_limits(limits=1, user_api="openmp"):
        assert skseg.build_info()["max_threads"] == 1


def test_show_versions_does_not_import_torch(tmp_path):
    code = "import sys, skseg; skseg.show_versions(); print('torch' in sys.modules)"
    # cwd outside the checkout, so the installed package is imported.
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.strip().splitlines()[-1] == "False"
    try:
        expected = f"torch: {importlib.metadata.version('torch')} (installed, not"
    except importlib.metadata.PackageNotFoundError:
        expected = "torch: None"
    assert expected in out
