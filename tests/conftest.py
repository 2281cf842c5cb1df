import os
import sys

# Let the tests import the reference implementation next to them.
sys.path.insert(0, os.path.dirname(__file__))

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(PROJECT_ROOT, "sample_images")
# Development data beside the project (not part of it); tests that read it skip without it.
POLYU = os.path.join(os.path.dirname(PROJECT_ROOT), "shared", "datasets", "polyu-dev")

import pytest  # noqa: E402

import nlmeans.planning.backend_choice  # noqa: E402

NUMPY_WORK = nlmeans.planning.backend_choice.NUMPY_WORK


@pytest.fixture(autouse=True)
def kernel_for_every_size(monkeypatch):
    """The command line runs small images on the NumPy pass (equal to the kernel
    to float rounding); the tests compare the command line with the API bit for
    bit, so here every size runs on the kernel, as in the API. The tests of
    that rule ask for it back (`numpy_for_small`)."""
    monkeypatch.setattr(nlmeans.planning.backend_choice, "NUMPY_WORK", 0)


@pytest.fixture
def numpy_for_small(monkeypatch):
    monkeypatch.setattr(nlmeans.planning.backend_choice, "NUMPY_WORK", NUMPY_WORK)
