"""The video command keeps frame-sized arrays off the C heap, so that freed
ones go back to the system and a long run peaks as a short one."""

import subprocess
import sys

import pytest

from nlmeans_cli import memory

FRAGMENT = """
import os, sys
import numpy as np
from nlmeans_cli.memory import map_large_arrays

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

if sys.argv[1] == "mapped":
    assert map_large_arrays()
big = np.ones(30 << 17)  # freed, a 30 MB block raises glibc's own threshold
del big
arrays = [np.ones(1 << 17) for _ in range(200)]  # 200 arrays of 1 MiB
before = resident_mb()
del arrays[::2]  # half of them freed, between the ones still held
print(before - resident_mb())
"""


def _handed_back(mode):
    done = subprocess.run([sys.executable, "-c", FRAGMENT, mode], capture_output=True,
                          text=True, check=True)
    return float(done.stdout)


@pytest.mark.skipif(memory._MALLOPT is None, reason="glibc's mallopt: Linux with glibc only")
def test_freed_large_arrays_go_back_to_the_system():
    assert _handed_back("heap") < 20  # glibc's default: the holes stay with the process
    assert _handed_back("mapped") > 90  # of the 100 MiB freed


def test_without_glibc_nothing_is_set(monkeypatch):
    monkeypatch.setattr(memory, "_MALLOPT", None)
    assert memory.map_large_arrays() is False
