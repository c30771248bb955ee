"""Test-wide settings."""

import os
import threading

import pytest
from hypothesis import settings

# In CI, property tests draw the same examples on every run: a red build is
# then reproducible, never a fluke of the random draw.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# How long returns_promptly waits for a call that should take milliseconds.
_HANG_LIMIT_S = 60


@pytest.fixture
def fifo(tmp_path):
    """Make named pipes (``fifo("name.png")``) for tests of calls that must
    not open them; at teardown a reader that did open one is released, so a
    regression fails its test instead of leaving a thread blocked."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("this platform has no named pipes")
    made = []

    def make(name):
        path = tmp_path / name
        os.mkfifo(path)
        made.append(path)
        return path

    yield make
    for path in made:
        try:  # Succeeds only when a reader is waiting; closing gives it EOF.
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


@pytest.fixture
def returns_promptly(fifo):
    """``returns_promptly(fn)`` calls ``fn`` in a thread and returns its result
    (or raises its exception); a call still blocked after a generous wait fails
    the test. Not a timing test: the calls it guards take milliseconds or
    block forever."""

    def call(fn):
        outcome = {}

        def target():
            try:
                outcome["value"] = fn()
            except BaseException as exc:  # SystemExit from the CLI too
                outcome["error"] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(_HANG_LIMIT_S)
        assert not thread.is_alive(), f"blocked for {_HANG_LIMIT_S} s (on a FIFO?)"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return call


@pytest.fixture
def torch_one_thread():
    """torch on one thread for the test: the machine may be shared, and one
    thread makes CPU results reproducible. Modules that train networks use it
    with ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
