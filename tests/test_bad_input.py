"""Bad input: a clear one-line error, a non-zero exit, the input untouched, no partial output."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlmeans
from nlmeans_cli.main import cli

RNG = np.random.default_rng(31)
import nlmeans.planning.memory as MEMORY_MODULE  # noqa: E402
import nlmeans.io.images as IO_MODULE  # noqa: E402


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def assert_clean_failure(result, code, message, folder, output_name="out.png"):
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (folder / output_name).exists()
    assert [n for n in os.listdir(folder) if n.startswith(".nlmeans-")] == []


def test_no_read_permission(tmp_path, monkeypatch):
    src = tmp_path / "in.png"
    iio.imwrite(src, np.zeros((8, 8), np.uint8))
    if os.geteuid() == 0:  # root reads everything: let the permission check say no
        monkeypatch.setattr(IO_MODULE.os, "access", lambda path, mode: False)
    else:
        src.chmod(0)
    assert_clean_failure(run("denoise", src, tmp_path / "out.png"), 1, "permission denied",
                         tmp_path)


@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 3), (2, 2), (1, 3000), (3000, 1),
                                   (2, 1500)])
def test_tiny_images_are_denoised(tmp_path, shape):
    src, out = tmp_path / "tiny.png", tmp_path / "out.png"
    iio.imwrite(src, (RNG.random(shape) * 255).astype(np.uint8))
    result = run("denoise", src, out, "--ds", 3, "--Ds", 9, "--h", 20)  # radii beyond the image
    assert result.exit_code == 0, result.output
    assert iio.imread(out).shape == shape
    # Automatic mode: too small to measure the noise is not noise-free; it says so.
    size = "x".join(map(str, shape[:2]))
    assert_clean_failure(run("denoise", src, tmp_path / "auto.png"), 1,
                         f"the image ({size} pixels) is too small to measure its noise",
                         tmp_path, "auto.png")
    with pytest.raises(ValueError, match="give sigma"):
        nlmeans.denoise(iio.imread(src), channel_axis=-1 if len(shape) == 3 else None)
    assert nlmeans.denoise(iio.imread(src), sigma=5, channel_axis=-1 if len(shape) == 3
                           else None).shape == shape


def test_five_dimensional_tiff(tmp_path):
    src = tmp_path / "five.tif"
    tifffile.imwrite(src, np.zeros((2, 2, 3, 8, 8), np.uint8), photometric="minisblack")
    before = digest(src)
    assert_clean_failure(run("denoise", src, tmp_path / "out.tif"), 1,
                         "unsupported image shape", tmp_path, "out.tif")
    assert digest(src) == before


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_tiff_with_nan_or_inf(tmp_path, bad):
    array = RNG.random((10, 10)).astype(np.float32)
    array[3, 4] = bad
    src = tmp_path / "f.tif"
    tifffile.imwrite(src, array)
    assert_clean_failure(run("denoise", src, tmp_path / "out.tif", "--h", 0.1), 1,
                         "must not contain NaN or inf", tmp_path, "out.tif")
    # estimate-noise and compare say so too, in one line, exit 1: no nan, no NaN in JSON.
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, RNG.random((10, 10)).astype(np.float32))
    for args in (["estimate-noise", src], ["estimate-noise", src, "--json"],
                 ["estimate-noise", good, src], ["compare", good, src], ["compare", src, good],
                 ["compare", good, src, "--json"]):
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert f"Error: {src}: image must not contain NaN or inf values" in result.stderr
        printed = result.stdout.replace(str(tmp_path), "")  # the folder's name holds "nan"
        assert "nan" not in printed.lower() and "Traceback" not in result.output
        assert "Warning" not in result.output


def test_image_too_large_for_memory_is_refused(tmp_path, monkeypatch):
    src = tmp_path / "in.png"
    iio.imwrite(src, np.zeros((64, 64), np.uint8))
    monkeypatch.setattr(MEMORY_MODULE, "available_memory", lambda: 100_000)
    assert_clean_failure(run("denoise", src, tmp_path / "out.png"), 1,
                         "memory and only 0.1 MiB is available", tmp_path)


def test_output_folder_not_writable(tmp_path, monkeypatch):
    src = tmp_path / "in.png"
    iio.imwrite(src, np.zeros((8, 8), np.uint8))
    out_dir = tmp_path / "ro"
    out_dir.mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    if os.geteuid() == 0:  # root writes anywhere: make the temp file creation fail
        monkeypatch.setattr(IO_MODULE, "create_private_file", refuse)
    else:
        out_dir.chmod(0o500)
    assert_clean_failure(run("denoise", src, out_dir / "out.png"), 1, "cannot write in",
                         out_dir)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_while_writing_leaves_nothing(tmp_path, sig, code):
    """SIGINT (Ctrl-C) or SIGTERM (`kill`, a service manager) arrives after the
    temp file is written, before the rename."""
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    iio.imwrite(src, (RNG.random((32, 32)) * 255).astype(np.uint8))
    before = digest(src)
    marker = tmp_path / "writing"
    script = (
        "import os, sys, time\n"
        "import nlmeans.io.images as nio\n"
        "real = os.replace\n"
        "def slow_replace(a, b):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    time.sleep(30)\n"
        "    real(a, b)\n"
        "nio.os.replace = slow_replace\n"
        "from nlmeans_cli.main import main\n"
        "sys.argv = ['nlmeans'] + sys.argv[1:]\n"
        "main()\n")
    proc = subprocess.Popen([sys.executable, "-c", script, "denoise", str(src), str(out)],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert not out.exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".nlmeans-")] == []
    assert digest(src) == before


DTYPES = st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), dtype=DTYPES, ndim=st.integers(2, 4),
       patch=st.integers(-1, 4), search=st.integers(-1, 6),
       h=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()),
       colour=st.booleans())
def test_random_inputs_never_crash(data, dtype, ndim, patch, search, h, colour):
    """Only ValueError, and otherwise the input's shape, dtype and range."""
    shape = tuple(data.draw(st.integers(1, 9)) for _ in range(ndim))
    if np.dtype(dtype).kind == "f":
        image = (RNG.random(shape) * 200 - 50).astype(dtype)
    else:
        info = np.iinfo(dtype)
        image = RNG.integers(max(info.min, -1000), min(info.max, 1000), size=shape).astype(dtype)
    channel_axis = -1 if colour else None
    try:
        result = nlmeans.denoise(image, h, patch_radius=patch, search_radius=search,
                                 channel_axis=channel_axis)
    except ValueError as exc:
        assert str(exc)  # names the problem
        return
    assert result.shape == image.shape and result.dtype == image.dtype
    assert result.min() >= image.min() and result.max() <= image.max()


@pytest.mark.parametrize("make, out_name, message", [
    (lambda: (RNG.random((12, 12)) * 65535).astype(np.uint16), "out.jpg", "cannot store uint16"),
    (lambda: (RNG.random((12, 12)) * 65535).astype(np.uint16), "out.bmp", "cannot store uint16"),
    (lambda: RNG.random((12, 12)).astype(np.float32), "out.png", "use .tif"),
    (lambda: (RNG.random((12, 12, 4)) * 255).astype(np.uint8), "out.jpg", "alpha channel"),
    (lambda: (RNG.random((5, 12, 12)) * 255).astype(np.uint8), "out.png", "multi-page"),
])
def test_unwritable_outputs_are_refused_before_denoising(tmp_path, monkeypatch, make, out_name,
                                                         message):
    import nlmeans_cli.processing as processing

    src = tmp_path / "in.tif"
    pixels = make()
    tifffile.imwrite(src, pixels, photometric="rgb" if pixels.shape[-1] == 4 else "minisblack")

    def must_not_run(*args, **kwargs):
        raise AssertionError("denoised although the output cannot be written")

    monkeypatch.setattr(processing, "denoise_image", must_not_run)
    assert_clean_failure(run("denoise", src, tmp_path / out_name, "--h", 10), 1, message,
                         tmp_path, out_name)


def test_read_only_output_folder_is_refused_before_denoising(tmp_path, monkeypatch):
    import nlmeans_cli.processing as processing

    src = tmp_path / "in.png"
    iio.imwrite(src, (RNG.random((12, 12)) * 255).astype(np.uint8))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(IO_MODULE, "create_private_file", refuse)
    monkeypatch.setattr(processing, "denoise_image",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("denoised")))
    assert_clean_failure(run("denoise", src, tmp_path / "out.png", "--h", 10), 1,
                         "cannot write in", tmp_path, "out.png")


@pytest.mark.parametrize("dtype", [np.int16, np.uint32, np.float16, np.int8])
def test_tiff_keeps_every_pixel_type(tmp_path, dtype):
    src = tmp_path / "in.tif"
    image = (RNG.random((16, 16)) * 100).astype(dtype)
    tifffile.imwrite(src, image)
    result = run("denoise", src, tmp_path / "out.tif", "--h", 10, "-q")
    assert result.exit_code == 0, result.output
    written = tifffile.imread(tmp_path / "out.tif")
    assert written.dtype == dtype and written.shape == image.shape
