"""Ctrl-C that lands inside a C callback (as while Numba writes its cache): Python
cannot raise it there, prints it as "Exception ignored" and goes on, and the library
may then fail with an unrelated error. The command must still stop with 130, quietly,
leaving no output."""

import os
import signal
import subprocess
import sys

import numpy as np
import tifffile

# Sends SIGINT to this process from inside a ctypes callback, where the handler's
# KeyboardInterrupt cannot propagate.
SWALLOW_AN_INTERRUPT = """
import ctypes, os, signal, time
def swallowed_interrupt():
    compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    def callback(a, b):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        return 0
    items = (ctypes.c_int * 2)(2, 1)
    ctypes.CDLL(None).qsort(items, 2, ctypes.sizeof(ctypes.c_int), compare(callback))
"""

RUN_THE_COMMAND = """
import sys
from nlmeans_cli.main import main
sys.argv = ['nlmeans'] + sys.argv[1:]
main()
"""


def _run(script, *args):
    process = subprocess.run([sys.executable, "-c", SWALLOW_AN_INTERRUPT + script
                              + RUN_THE_COMMAND, *map(str, args)],
                             capture_output=True, text=True, timeout=120)
    return process.returncode, process.stderr


def _leftovers(folder, keep):
    return sorted(set(os.listdir(folder)) - set(keep))


def test_an_interrupt_followed_by_an_unrelated_error_exits_130(tmp_path):
    """The library fails after the swallowed interrupt (Numba: "no compiled object
    yet"): a stop, not a bug."""
    source = tmp_path / "in.tif"
    tifffile.imwrite(source, np.random.default_rng(0).integers(0, 255, (24, 24), np.uint8))
    script = (
        "import nlmeans.io\n"
        "def failing_write(*args, **kwargs):\n"
        "    swallowed_interrupt()\n"
        "    raise RuntimeError('no compiled object yet')\n"
        "nlmeans.io.write_image = failing_write\n")
    code, stderr = _run(script, "denoise", source, tmp_path / "out.tif")
    assert code == 130, stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    assert _leftovers(tmp_path, ["in.tif"]) == []


def test_a_video_run_stops_at_the_next_frame(tmp_path):
    """The library goes on as if nothing happened: the run stops at the next frame,
    with no output."""
    source = tmp_path / "in.tif"
    frames = np.random.default_rng(0).integers(0, 255, (6, 24, 24), np.uint8)
    tifffile.imwrite(source, frames)
    script = (
        "import nlmeans\n"
        "denoise_frames = nlmeans.denoise_frames\n"
        "def interrupted_once(*args, **kwargs):\n"
        "    for i, frame in enumerate(denoise_frames(*args, **kwargs)):\n"
        "        if i == 1:\n"
        "            swallowed_interrupt()\n"
        "        yield frame\n"
        "nlmeans.denoise_frames = interrupted_once\n")
    code, stderr = _run(script, "video", source, tmp_path / "out.tif", "--time-series")
    assert code == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert _leftovers(tmp_path, ["in.tif"]) == []


def test_sigterm_is_remembered_as_sigterm():
    from nlmeans_cli import signals

    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signals.raise_terminated)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
    except signals.Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    try:
        assert signals.exit_code_of_signal() == 143
    finally:
        signals._received.clear()
