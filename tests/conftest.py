"""Test-wide settings."""

import os

from hypothesis import settings

# In CI, property tests draw the same examples on every run: a red build is
# then reproducible, never a fluke of the random draw.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
