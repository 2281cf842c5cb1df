"""`nlmeans batch`: folders, patterns, resume, dry runs, jobs, JSON, failures, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner

import nlmeans
from conftest import SAMPLES
from nlmeans_cli.main import cli

RNG = np.random.default_rng(21)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png", "sub/c.png"):
        iio.imwrite(src / name, np.clip(128 + 25 * RNG.standard_normal((24, 28)), 0, 255)
                    .astype(np.uint8))
    (src / "notes.txt").write_text("not an image")
    return src


def test_batch_denoises_every_image(tree, tmp_path):
    out = tmp_path / "out"
    result = run("batch", tree, out, "--h", 20, "--jobs", 1)
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]
    expected = nlmeans.denoise(iio.imread(tree / "a.png"), 20)
    np.testing.assert_array_equal(iio.imread(out / "a.png"), expected)
    assert "2 done, 0 skipped, 0 failed" in result.stderr


def test_recursive_mirrors_the_tree_with_suffix_and_format(tree, tmp_path):
    out = tmp_path / "out"
    result = run("batch", tree, out, "--recursive", "--suffix", "_clean", "--format", "tif",
                 "--jobs", 1, "-q")
    assert result.exit_code == 0, result.output
    assert (out / "sub" / "c_clean.tif").exists() and (out / "a_clean.tif").exists()
    assert iio.imread(out / "sub" / "c_clean.tif").dtype == np.uint8


def test_pattern_selects_files(tree, tmp_path):
    result = run("batch", tree, tmp_path / "out", "--pattern", "a*", "--json", "-q")
    report = json.loads(result.stdout)
    assert [os.path.basename(f["input"]) for f in report["files"]] == ["a.png"]


def test_skip_existing_and_overwrite(tree, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"old")
    result = run("batch", tree, out, "--skip-existing", "--json", "-q")
    summary = json.loads(result.stdout)["summary"]
    assert (summary["done"], summary["skipped"]) == (1, 1)
    assert (out / "a.png").read_bytes() == b"old"
    result = run("batch", tree, out, "--json", "-q")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["summary"]["failed"] == 2  # both outputs exist now
    assert (out / "a.png").read_bytes() == b"old"
    result = run("batch", tree, out, "--overwrite", "-q")
    assert result.exit_code == 0
    assert iio.imread(out / "a.png").shape == (24, 28)


def test_dry_run_writes_nothing(tree, tmp_path):
    out = tmp_path / "out"
    result = run("batch", tree, out, "--recursive", "--dry-run")
    assert result.exit_code == 0
    assert not out.exists()
    assert result.stderr.count("planned: ") == 3


def test_one_bad_file_never_stops_the_batch(tree, tmp_path):
    (tree / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    result = run("batch", tree, out, "--jobs", 1, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    status = {os.path.basename(f["input"]): f["status"] for f in report["files"]}
    assert status == {"a.png": "done", "b.png": "done", "broken.png": "failed"}
    assert "failed: " in result.stderr and "broken.png" in result.stderr
    assert not (out / "broken.png").exists()
    assert [n for n in os.listdir(out) if n.startswith(".nlmeans-")] == []


def test_a_batch_whose_files_all_fail_leaves_no_empty_folders(tmp_path):
    # RGBA cannot go to JPEG: every file fails its check before any denoising.
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("rgba.png", "sub/rgba.png"):
        iio.imwrite(src / name, (RNG.random((16, 16, 4)) * 255).astype(np.uint8))
    (tmp_path / "kept").mkdir()  # an output folder that was there stays
    for out in (tmp_path / "new" / "deep", tmp_path / "kept"):
        result = run("batch", src, out, "--format", "jpg", "--recursive", "--h", 10, "--jobs", 1)
        assert result.exit_code == 1 and "0 done, 0 skipped, 2 failed" in result.stderr
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "kept").is_dir() and os.listdir(tmp_path / "kept") == []


def test_two_jobs_give_the_same_images(tree, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert run("batch", tree, one, "--jobs", 1, "-q", "--recursive").exit_code == 0
    result = run("batch", tree, two, "--jobs", 2, "--json", "--recursive")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["jobs"] == 2
    for name in ("a.png", "b.png", "sub/c.png"):
        np.testing.assert_array_equal(iio.imread(one / name), iio.imread(two / name))


def test_output_dir_equal_to_input_dir_needs_a_new_name(tree):
    result = run("batch", tree, tree)
    assert result.exit_code == 2 and "OUTPUT_DIR is INPUT_DIR" in result.output
    result = run("batch", tree, tree, "--suffix", "_dn", "--jobs", 1, "-q")
    assert result.exit_code == 0
    assert (tree / "a_dn.png").exists()


def test_unwritable_output_folder(tree, tmp_path):
    if os.geteuid() == 0:
        # root writes anywhere; a file where the folder should be fails for everyone
        blocker = tmp_path / "out"
        blocker.write_text("a file, not a folder")
        result = run("batch", tree, blocker / "deeper")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = run("batch", tree, locked / "out")
    assert result.exit_code == 1
    assert "cannot create output folder" in result.output


def interrupted_batch(tmp_path, count, jobs, signum, wait, env=None):
    """Run a batch of `count` copies of the camera sample in a subprocess, send
    `signum` once two outputs exist, and return (exit code, stderr, output folder,
    the sample's shape)."""
    src = tmp_path / "in"
    src.mkdir()
    big = iio.imread(os.path.join(SAMPLES, "camera_noisy.png"))
    for i in range(count):
        iio.imwrite(src / f"img{i:02d}.png", np.roll(big, i, axis=1))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "nlmeans_cli.main", "batch", str(src),
                             str(out), "--jobs", str(jobs), "--Ds", "10", "--ds", "3"],
                            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + wait
    while time.time() < deadline and not (out.exists() and len(os.listdir(out)) >= 2):
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, out, big.shape


def test_ctrl_c_stops_cleanly(tmp_path):
    """SIGINT during a batch: finished files stay, none is half-written, summary printed."""
    code, err, out, shape = interrupted_batch(tmp_path, 40, 1, signal.SIGINT, 60)
    assert code == 130, err
    assert "interrupted: " in err and "Traceback" not in err
    written = os.listdir(out)
    assert [n for n in written if n.startswith(".nlmeans-")] == []
    assert 2 <= len(written) < 40
    # The summary accounts for every file: those not started are said too.
    assert f"{len(written)} done, 0 skipped, 0 failed, {40 - len(written)} not started" in err
    for name in written:  # every file that is there is complete
        assert iio.imread(out / name).shape == shape


def test_outputs_inside_the_input_folder_never_become_inputs(tree):
    out = tree / "clean"
    for _ in range(2):  # a second run (resuming) must not find the first run's outputs
        result = run("batch", tree, out, "--recursive", "--h", 20, "--jobs", 1,
                     "--skip-existing", "--json", "-q")
        assert result.exit_code == 0, result.output
        inputs = [os.path.relpath(f["input"], tree) for f in json.loads(result.stdout)["files"]]
        assert sorted(inputs) == ["a.png", "b.png", os.path.join("sub", "c.png")]
    assert not (out / "clean").exists()


def test_patterns_ignore_case_and_matching_nothing_is_an_error(tree, tmp_path):
    os.rename(tree / "a.png", tree / "A.PNG")
    result = run("batch", tree, tmp_path / "out", "--pattern", "*.png", "--dry-run", "--json",
                 "-q")
    names = sorted(os.path.basename(f["input"]) for f in json.loads(result.stdout)["files"])
    assert names == ["A.PNG", "b.png"]
    result = run("batch", tree, tmp_path / "out", "--pattern", "*.jpg")
    assert result.exit_code == 1 and "no image files matching *.jpg" in result.output
    assert not (tmp_path / "out").exists()


def _processes_with(marker):
    """PIDs of live processes whose environment holds `marker` (Linux)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc to find stray processes")
def test_sigterm_stops_cleanly_and_leaves_no_process(tmp_path):
    marker = f"NLMEANS_TEST_MARK={os.getpid()}-{time.time()}"
    env = dict(os.environ, NLMEANS_TEST_MARK=marker.split("=", 1)[1])
    code, err, out, shape = interrupted_batch(tmp_path, 30, 2, signal.SIGTERM, 120, env)
    assert code == 143, err
    assert "interrupted: " in err and "Traceback" not in err
    written = os.listdir(out)
    assert [n for n in written if n.startswith(".nlmeans-")] == []
    assert 2 <= len(written) <= 2 + 2 + 2  # those done, plus at most the two in flight
    assert f"{len(written)} done, 0 skipped, 0 failed, {30 - len(written)} not started" in err
    for name in written:
        assert iio.imread(out / name).shape == shape
    time.sleep(1)  # the workers' exit is not instantaneous
    assert _processes_with(marker) == []
