"""The command line, through click's CliRunner and as a real process."""

import hashlib
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner

import nlmeans
from conftest import SAMPLES
from nlmeans.io import read_array
from nlmeans_cli.main import cli

RNG = np.random.default_rng(7)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".nlmeans-")]


@pytest.fixture
def noisy_png(tmp_path):
    path = tmp_path / "noisy.png"
    image = np.clip(128 + 30 * RNG.standard_normal((40, 50)), 0, 255).astype(np.uint8)
    iio.imwrite(path, image)
    return path


def test_denoise_sample_image(tmp_path):
    out = tmp_path / "clean.png"
    result = run("denoise", os.path.join(SAMPLES, "camera_noisy.png"), out, "--h", 22)
    assert result.exit_code == 0, result.output
    clean = iio.imread(os.path.join(SAMPLES, "camera.png")).astype(float)
    noisy = iio.imread(os.path.join(SAMPLES, "camera_noisy.png")).astype(float)
    written = iio.imread(out)
    assert written.dtype == np.uint8 and written.shape == clean.shape
    assert np.mean((written - clean) ** 2) < np.mean((noisy - clean) ** 2) / 3


def test_cli_equals_api(noisy_png, tmp_path):
    out = tmp_path / "out.png"
    result = run("denoise", noisy_png, out, "--h", 15, "--ds", 1, "--Ds", 4, "--sigma", 3)
    assert result.exit_code == 0, result.output
    expected = nlmeans.denoise(iio.imread(noisy_png), 15, patch_radius=1, search_radius=4,
                               sigma=3)
    np.testing.assert_array_equal(iio.imread(out), expected)


def test_ds_and_Ds_are_different_options(noisy_png, tmp_path):
    image = iio.imread(noisy_png)
    run("denoise", noisy_png, tmp_path / "a.png", "--h", 20, "--ds", 1, "--Ds", 3)
    run("denoise", noisy_png, tmp_path / "b.png", "--h", 20, "--patch-radius", 1,
        "--search-radius", 3)
    expected = nlmeans.denoise(image, 20, patch_radius=1, search_radius=3)
    np.testing.assert_array_equal(iio.imread(tmp_path / "a.png"), expected)
    np.testing.assert_array_equal(iio.imread(tmp_path / "b.png"), expected)
    swapped = nlmeans.denoise(image, 20, patch_radius=3, search_radius=1)
    assert not np.array_equal(expected, swapped)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [None, 3])
def test_16_bit_round_trip(tmp_path, suffix, channels):
    shape = (30, 35) if channels is None else (30, 35, channels)
    image = np.clip(30000 + 3000 * RNG.standard_normal(shape), 0, 65535).astype(np.uint16)
    src, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    nlmeans.io.write_image(str(src), image)
    result = run("denoise", src, out, "--h", 2500)
    assert result.exit_code == 0, result.output
    written = read_array(str(out))
    assert written.dtype == np.uint16 and written.shape == image.shape
    expected = nlmeans.denoise(image, 2500, channel_axis=None if channels is None else -1)
    np.testing.assert_array_equal(written, expected)
    assert written.std() < image.std() / 2  # really denoised, not truncated to 8 bits


def test_rgb_and_alpha(tmp_path):
    rgb = np.clip(100 + 40 * RNG.standard_normal((24, 20, 3)), 0, 255).astype(np.uint8)
    alpha = (RNG.random((24, 20)) * 255).astype(np.uint8)
    src, out = tmp_path / "rgba.png", tmp_path / "out.png"
    iio.imwrite(src, np.dstack([rgb, alpha]))
    assert run("denoise", src, out, "--h", 30).exit_code == 0
    written = iio.imread(out)
    assert written.shape == (24, 20, 4)
    np.testing.assert_array_equal(written[..., 3], alpha)
    np.testing.assert_array_equal(written[..., :3], nlmeans.denoise(rgb, 30, channel_axis=-1))


def test_jpeg_in_and_out(tmp_path, noisy_png):
    jpg = tmp_path / "in.jpg"
    iio.imwrite(jpg, iio.imread(noisy_png), quality=95)
    result = run("denoise", jpg, tmp_path / "out.jpg", "--h", 20)
    assert result.exit_code == 0, result.output
    assert iio.imread(tmp_path / "out.jpg").shape == (40, 50)


def test_existing_output_needs_overwrite(noisy_png, tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    result = run("denoise", noisy_png, out, "--h", 10)
    assert result.exit_code == 1
    assert "already exists (use --overwrite)" in result.output
    assert out.read_bytes() == b"keep me"
    result = run("denoise", noisy_png, out, "--h", 10, "--overwrite")
    assert result.exit_code == 0
    assert iio.imread(out).shape == (40, 50)


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink"])
def test_output_equal_to_input_is_refused(noisy_png, tmp_path, spelling, monkeypatch):
    before = digest(noisy_png)
    monkeypatch.chdir(tmp_path)
    if spelling == "same":
        target = "noisy.png"
    elif spelling == "dot":
        target = "./sub/../noisy.png"
        (tmp_path / "sub").mkdir()
    else:
        os.symlink(noisy_png, tmp_path / "link.png")
        target = "link.png"
    result = run("denoise", "noisy.png", target, "--h", 10, "--overwrite")
    assert result.exit_code == 1
    assert "OUTPUT is the INPUT file" in result.output
    assert digest(noisy_png) == before


@pytest.mark.parametrize("args, code, message", [
    (["--h", "0"], 2, "must be a finite number > 0"),
    (["--h", "-3"], 2, "must be a finite number > 0"),
    (["--h", "nan"], 2, "must be a finite number > 0"),
    (["--h", "ten"], 2, "'ten' is neither a number nor one of: auto, sure"),
    (["--h", "inf"], 2, "must be a finite number > 0"),
    (["--sigma", "loud"], 2, "'loud' is neither a number nor one of: auto"),
    (["--aggregation", "blob"], 2, "'blob' is not one of 'pixel', 'patch'"),
    (["--h", "10", "--ds", "-1"], 2, "--ds"),
    (["--h", "10", "--Ds", "1.5"], 2, "--Ds"),
    (["--h", "10", "--sigma", "-2"], 2, "must be a finite number >= 0"),
    (["--chroma-weight", "0"], 2, "must be a finite number > 0, got 0"),
    (["--chroma-weight", "half"], 2, "'half' is not a number"),
    (["--chroma-weight", "0.5"], 1, "chroma_weight needs an RGB image"),
])
def test_bad_options(noisy_png, tmp_path, args, code, message):
    out = tmp_path / "out.png"
    result = run("denoise", noisy_png, out, *args)
    assert result.exit_code == code
    assert message in result.output
    assert not out.exists()


@pytest.mark.parametrize("make_input, output_name, message", [
    (lambda d: d / "missing.png", "out.png", "no such file"),
    (lambda d: d, "out.png", "is a folder"),
    (lambda d: _write(d / "empty.png", b""), "out.png", "empty file"),
    (lambda d: _write(d / "text.png", b"this is not an image\n"), "out.png", "cannot read image"),
    (lambda d: _truncated_png(d), "out.png", "cannot read image"),
    (None, "out.xyz", "unsupported output format"),
    (None, "missing_folder/out.png", "does not exist"),
])
def test_bad_files(noisy_png, tmp_path, make_input, output_name, message):
    src = noisy_png if make_input is None else make_input(tmp_path)
    before = digest(src) if os.path.isfile(src) else None
    result = run("denoise", src, tmp_path / output_name, "--h", 10)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / output_name).exists()
    assert leftovers(tmp_path) == []
    if before is not None:
        assert digest(src) == before


def _write(path, data):
    path.write_bytes(data)
    return path


def _truncated_png(folder):
    full = folder / "full.png"
    iio.imwrite(full, (RNG.random((64, 64)) * 255).astype(np.uint8))
    data = full.read_bytes()
    return _write(folder / "truncated.png", data[: len(data) // 2])


def test_sixteen_bit_to_jpeg_is_refused(tmp_path):
    src = tmp_path / "in.png"
    iio.imwrite(src, (RNG.random((10, 10)) * 65535).astype(np.uint16))
    result = run("denoise", src, tmp_path / "out.jpg", "--h", 100)
    assert result.exit_code == 1
    assert "cannot store uint16" in result.output
    assert leftovers(tmp_path) == []


def test_version_and_help():
    result = run("--version")
    assert result.exit_code == 0 and nlmeans.__version__ in result.output
    result = run("--help")
    assert result.exit_code == 0 and "nlmeans denoise noisy.png clean.png --h 10" in result.output
    result = run("denoise", "--help")
    assert result.exit_code == 0 and "Examples:" in result.output
    assert "--search-radius" in result.output and "--report" in result.output


def test_python_m_nlmeans_is_the_command_line(tmp_path):
    """python -m nlmeans: the same commands, names, output and exit codes as nlmeans."""
    def module(*args):
        return subprocess.run([sys.executable, "-m", "nlmeans", *map(str, args)],
                              capture_output=True, text=True, cwd=tmp_path)

    version = module("--version")
    assert version.returncode == 0 and version.stdout == f"nlmeans, version {nlmeans.__version__}\n"
    usage = module("denoise")
    assert usage.returncode == 2 and usage.stderr.startswith("Usage: nlmeans denoise ")
    src = tmp_path / "in.png"
    iio.imwrite(src, (RNG.random((16, 16)) * 255).astype(np.uint8))
    assert module("denoise", src, tmp_path / "out.png", "--h", 10, "-q").returncode == 0
    assert np.array_equal(iio.imread(tmp_path / "out.png"),
                          nlmeans.denoise(iio.imread(src), 10))


def test_console_script_errors_are_one_line(tmp_path):
    """The installed entry point: exit codes and no traceback, as a user sees them."""
    bad = _write(tmp_path / "bad.png", b"not a png")
    code = "from nlmeans_cli.main import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "denoise", str(bad),
                           str(tmp_path / "o.png"), "--h", "5"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("Error: ")
    proc = subprocess.run([sys.executable, "-c", code, "denoise", str(bad),
                           str(tmp_path / "o.png"), "--h", "-5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_automatic_denoise_and_report(tmp_path):
    out = tmp_path / "auto.png"
    result = run("denoise", os.path.join(SAMPLES, "camera_noisy.png"), out, "--report")
    assert result.exit_code == 0, result.output
    assert "noise sigma: " in result.stdout and "(estimated)" in result.stdout
    assert "aggregation=patch" in result.stdout
    line = result.stdout.split("estimated PSNR (SURE): ")[1]
    low, high = (float(v) for v in line.split("; ")[1].split(" dB")[0].split(" to "))
    clean = iio.imread(os.path.join(SAMPLES, "camera.png")).astype(float)
    written = iio.imread(out).astype(float)
    true = 10 * np.log10(255 ** 2 / np.mean((written - clean) ** 2))
    assert true > 30.0                      # the noisy input is at 22.4 dB
    # sigma is estimated (19.5 for 20) and the 8-bit file is clipped: the truth lies
    # in the range the report gives for sigma 5 % off.
    assert low < true < high
    expected = nlmeans.denoise(iio.imread(os.path.join(SAMPLES, "camera_noisy.png")))
    np.testing.assert_array_equal(iio.imread(out), expected)


def test_automatic_colour_report(tmp_path):
    out = tmp_path / "auto.png"
    result = run("denoise", os.path.join(SAMPLES, "astronaut_noisy.png"), out, "--report")
    assert result.exit_code == 0, result.output
    assert "chroma weight=0.5" in result.stdout
    line = result.stdout.split("estimated PSNR (SURE): ")[1]
    low, high = (float(v) for v in line.split("; ")[1].split(" dB")[0].split(" to "))
    clean = iio.imread(os.path.join(SAMPLES, "astronaut.png")).astype(float)
    true = 10 * np.log10(255 ** 2 / np.mean((iio.imread(out).astype(float) - clean) ** 2))
    # sigma is estimated at 18.2 for 20 (the 8-bit file clips bright areas), so
    # SURE's own estimate is 1.6 dB high; the truth lies in the range for sigma 5 % off.
    assert true > 30.0 and low < true < high


def test_h_sure_lists_the_candidates(tmp_path):
    result = run("denoise", os.path.join(SAMPLES, "camera_noisy.png"), tmp_path / "o.png",
                 "--h", "sure", "--report", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("SURE for h=") == 5
    assert result.stderr == ""


def test_refine_option_and_report(tmp_path):
    source = os.path.join(SAMPLES, "camera_noisy.png")
    result = run("denoise", source, tmp_path / "a.png", "--report")
    assert result.exit_code == 0, result.output
    assert "second pass: h=" in result.stdout and "search radius=10" in result.stdout
    result = run("denoise", source, tmp_path / "b.png", "--no-refine", "--report")
    assert result.exit_code == 0, result.output
    assert "second pass" not in result.stdout
    np.testing.assert_array_equal(iio.imread(tmp_path / "b.png"),
                                  nlmeans.denoise(iio.imread(source), refine=False))
    result = run("denoise", source, tmp_path / "c.png", "--h", 10, "--refine")
    assert result.exit_code == 2 and "refine needs sigma > 0" in result.output  # usage


def test_explicit_options_reach_the_api(noisy_png, tmp_path):
    out = tmp_path / "o.png"
    result = run("denoise", noisy_png, out, "--sigma", 12, "--ds", 1, "--Ds", 3,
                 "--aggregation", "pixel", "--centre-weight", "one")
    assert result.exit_code == 0, result.output
    expected = nlmeans.denoise(iio.imread(noisy_png), sigma=12, patch_radius=1, search_radius=3,
                               aggregation="pixel", centre_weight="one")
    np.testing.assert_array_equal(iio.imread(out), expected)


def test_estimate_noise_command(tmp_path):
    result = run("estimate-noise", os.path.join(SAMPLES, "camera_noisy.png"),
                 os.path.join(SAMPLES, "astronaut_noisy.png"))
    assert result.exit_code == 0, result.output
    # One line "path<TAB>sigma" per image, the model's figures indented below it.
    values = [float(line.split("\t")[1]) for line in result.stdout.strip().splitlines()
              if "\t" in line]
    assert len(values) == 2 and all(abs(v / 20 - 1) < 0.1 for v in values)
    assert result.stdout.count("white noise, correlation figure") == 2
    result = run("estimate-noise", os.path.join(SAMPLES, "camera_noisy.png"), tmp_path / "no.png")
    assert result.exit_code == 1
    assert "no.png: no such file" in result.stderr
    assert result.stdout.count("\t") == 1


def test_first_run_says_it_compiles(noisy_png, tmp_path, monkeypatch, caplog):
    """The kernel logs that it compiles, when it is about to: after the input was read."""
    import logging

    from nlmeans.kernels import nlm as _kernels

    monkeypatch.setattr(_kernels, "will_compile", lambda dispatcher, arguments=None: True)
    with caplog.at_level(logging.INFO, logger="nlmeans"):
        nlmeans.denoise(np.zeros((8, 8)) + np.arange(8), 10)
    assert "compiling the denoising kernel (first run only" in caplog.text
    result = run("denoise", noisy_png, tmp_path / "o.png", "--h", 10)
    assert result.exit_code == 0
    assert result.stderr.count("compiling the denoising kernel (first run only") == 1
    result = run("denoise", noisy_png, tmp_path / "o2.png", "--h", 10, "-q")
    assert result.stderr == ""
    result = run("denoise", tmp_path / "missing.png", tmp_path / "o3.png")
    assert result.exit_code == 1 and "compiling" not in result.stderr


def test_small_images_run_without_numba(tmp_path, numpy_for_small):
    """A small image on the command line runs on the NumPy pass: less time than
    importing Numba and loading the kernel. Run in a fresh process, which must
    not import Numba at all; the result equals the kernel's to float rounding."""
    import subprocess
    import sys

    image = np.clip(128 + 30 * RNG.standard_normal((48, 48)), 0, 255).astype(np.uint8)
    iio.imwrite(tmp_path / "small.png", image)
    code = ("import sys; from nlmeans_cli.main import main; sys.argv = ['nlmeans', 'denoise', "
            f"{str(tmp_path / 'small.png')!r}, {str(tmp_path / 'out.png')!r}, '--report']; "
            "import atexit; atexit.register(lambda: print('numba', 'numba' in sys.modules, "
            "'tifffile', 'tifffile' in sys.modules, 'numpy.ma', 'numpy.ma' in sys.modules)); "
            "main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "numba False" in done.stdout and "estimated PSNR" in done.stdout + done.stderr
    assert "tifffile False" in done.stdout  # a PNG: the TIFF reader is not imported
    assert "numpy.ma False" in done.stdout  # medians without numpy's (0.02 s to import)
    written = iio.imread(tmp_path / "out.png")
    expected = nlmeans.denoise(image)
    assert np.abs(written.astype(int) - expected).max() <= 1
    assert np.mean(written != expected) < 0.01
    # A larger one, or a batch, starts Numba once for good.
    from nlmeans.planning.backend_choice import small_for_numpy

    assert small_for_numpy(nlmeans.resolve(image), image.shape)
    assert not small_for_numpy(nlmeans.resolve(np.tile(image, (4, 4))), (192, 192))
    assert not small_for_numpy(nlmeans.resolve(image, method="nlbayes"), image.shape)


def test_the_kernel_knows_whether_it_is_cached():
    from nlmeans.kernels import nlm as _kernels
    from nlmeans.backends.cpu import kernel_is_cached, passes_compiled

    image = np.zeros((8, 8)) + np.arange(8)
    nlmeans.denoise(image, 10)  # the fused path, loaded or compiled
    nlmeans.denoise(image)  # the general path
    assert not _kernels.will_compile(_kernels._fused_tile)
    assert kernel_is_cached()
    assert passes_compiled(nlmeans.resolve(image, 10)) and passes_compiled(nlmeans.resolve(image))


def test_the_kernel_knows_which_variants_are_compiled(tmp_path):
    """With an empty Numba cache no variant is compiled, grey or colour; after a
    run, the variant it ran is."""
    code = ("import numpy as np, nlmeans; from nlmeans.backends.cpu import passes_compiled; "
            "grey = np.zeros((8, 8)) + np.arange(8); rgb = np.stack([grey] * 3, -1); "
            "print(passes_compiled(nlmeans.resolve(grey, 10)), "
            "passes_compiled(nlmeans.resolve(rgb, 10, channel_axis=-1)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
    from nlmeans.backends.cpu import kernel_compiled

    grey = np.zeros((8, 8)) + np.arange(8)
    nlmeans.denoise(grey, 10)
    step = nlmeans.resolve(grey, 10).passes[0]
    assert kernel_compiled(step, 1, np.float32)


def test_the_compile_check_is_made_only_where_its_message_is_shown(monkeypatch, caplog):
    """Whether the kernel will compile is asked (0.4 ms a call) only when the
    message saying so would be shown: not on API calls with logging at its
    default level."""
    import logging

    from nlmeans.backends import cpu

    asked = []
    monkeypatch.setattr(cpu, "kernel_compiled", lambda *args: asked.append(args) or True)
    image = np.zeros((64, 64)) + np.arange(64)
    caplog.set_level(logging.WARNING, logger="nlmeans")  # as a program using the API has it
    nlmeans.denoise(image, 10)
    assert asked == []
    caplog.set_level(logging.INFO, logger="nlmeans")  # as the command line has it
    nlmeans.denoise(image, 10)
    assert len(asked) == 1


def _run_cli(args, cache, threads):
    """`nlmeans ARGS` in a fresh process with the Numba cache in `cache` and
    `threads` threads."""
    code = f"import sys; from nlmeans_cli.main import main; sys.argv = {['nlmeans'] + args!r}; main()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, NUMBA_CACHE_DIR=str(cache),
                                                NUMBA_NUM_THREADS=str(threads)))
    assert done.returncode == 0, done.stderr
    return done


def test_the_same_command_gives_the_same_bytes_whatever_ran_before(tmp_path):
    """Reproducibility: the path (NumPy pass or kernel) depends on the job only.
    A medium image (above the NumPy pass's size) denoised in a fresh process with
    an empty Numba cache on one thread, then again with the cache filled on two,
    then by batch, gives the same file every time; so does a small one (run on
    the NumPy pass by both commands). Before, the first run of the medium image
    took the NumPy pass and differed from later runs in a few pixels. A float32
    TIFF keeps the kernel's full precision: the kernel compiled in the process
    differed from the one loaded from the cache by up to 1e-4 in a third of its
    pixels, before one update's rounding was pinned (EXACT_ORDER)."""
    import tifffile

    rng = np.random.default_rng(7)
    folder = tmp_path / "in"
    folder.mkdir()
    for name, size in (("medium.png", 128), ("small.png", 40)):
        image = np.clip(128 + 30 * rng.standard_normal((size, size)), 0, 255).astype(np.uint8)
        iio.imwrite(folder / name, image)
    tifffile.imwrite(folder / "float.tif", rng.random((128, 128)).astype(np.float32))
    names = ("float.tif", "medium.png", "small.png")  # the first compiles the kernel
    cache = tmp_path / "cache"
    outputs = []
    for run, threads in (("cold", 1), ("warm", 2)):
        for name in names:
            out = tmp_path / f"{run}_{name}"
            done = _run_cli(["denoise", str(folder / name), str(out)], cache, threads)
            if run == "cold" and name == "float.tif":
                assert list(cache.rglob("*.nbi")) or "compiling" in done.stderr
            outputs.append((name, out.read_bytes()))
    _run_cli(["batch", str(folder), str(tmp_path / "batch"), "-q"], cache, 2)
    for name in names:
        files = [data for n, data in outputs if n == name]
        files.append((tmp_path / "batch" / name).read_bytes())
        assert files[0] == files[1] == files[2], name
    # The medium image ran on the kernel, as the API runs it.
    np.testing.assert_array_equal(iio.imread(tmp_path / "warm_medium.png"),
                                  nlmeans.denoise(iio.imread(folder / "medium.png")))


def test_a_batch_warms_up_the_variant_its_files_need(tmp_path):
    from nlmeans.backends.cpu import passes_compiled
    from nlmeans_cli.processing import warm_up

    rgb = np.clip(RNG.normal(128, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
    iio.imwrite(tmp_path / "first.png", rgb)
    warm_up({"h": 12.0}, str(tmp_path / "first.png"))
    assert passes_compiled(nlmeans.resolve(rgb[:32, :32], 12.0, channel_axis=-1))
    warm_up({"h": 12.0}, str(tmp_path / "missing.png"))  # random grey instead
    assert passes_compiled(nlmeans.resolve(np.zeros((16, 16)), 12.0))


def test_noise_with_a_non_finite_sigma_is_a_usage_error(noisy_png, tmp_path):
    for value in ("nan", "inf", "-1"):
        result = run("noise", noisy_png, tmp_path / "n.png", "--sigma", value)
        assert result.exit_code == 2 and "finite number" in result.output
        assert not (tmp_path / "n.png").exists()


def test_compare_json_is_json_for_identical_images(noisy_png, tmp_path):
    import json

    result = run("compare", noisy_png, noisy_png, "--json")
    assert result.exit_code == 0 and "Infinity" not in result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["psnr"] is None and "identical" in row["notes"][0] and row["mse"] == 0.0


@pytest.mark.parametrize("name, message", [("m.xyz", "unsupported output format '.xyz'"),
                                           ("missing/m.png", "output folder")])
def test_compare_montage_path_is_checked_before_the_table(noisy_png, tmp_path, name, message):
    result = run("compare", noisy_png, noisy_png, "--montage", tmp_path / name)
    assert result.exit_code == 1 and message in result.stderr
    assert result.stdout == ""  # no table printed before the refusal


def test_compare_montage_needs_overwrite_to_replace(noisy_png, tmp_path):
    montage = tmp_path / "m.png"
    montage.write_bytes(b"keep me")
    result = run("compare", noisy_png, noisy_png, "--montage", montage)
    assert result.exit_code == 1 and "already exists" in result.output
    assert montage.read_bytes() == b"keep me"
    result = run("compare", noisy_png, noisy_png, "--montage", montage, "--overwrite")
    assert result.exit_code == 0 and iio.imread(montage).ndim == 3


def test_compare_montage_never_replaces_an_input(noisy_png, tmp_path):
    import shutil

    copy = tmp_path / "copy.png"
    shutil.copy(noisy_png, copy)
    before = copy.read_bytes()
    for args in [(copy, noisy_png), (noisy_png, copy)]:
        result = run("compare", *args, "--montage", copy, "--overwrite")
        assert result.exit_code == 1 and "is an input" in result.stderr, result.output
        assert result.stdout == "" and copy.read_bytes() == before


def test_format_that_contradicts_the_output_name_is_refused(noisy_png, tmp_path):
    result = run("denoise", noisy_png, tmp_path / "out.png", "--format", "tif", "--h", 10)
    assert result.exit_code == 1 and "contradicts the file name's .png" in result.output
    assert not (tmp_path / "out.png").exists()
    # The message echoes what the user typed (jpg), not the format's name (JPEG).
    result = run("denoise", noisy_png, tmp_path / "out.png", "--format", "jpg", "--h", 10)
    assert result.exit_code == 1 and "--format jpg contradicts the file name's .png" in result.output
    result = run("denoise", noisy_png, tmp_path / "out.tiff", "--format", "tif", "--h", 10, "-q")
    assert result.exit_code == 0


def test_image_bytes_are_not_written_to_a_terminal(noisy_png):
    import pty

    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-c", "from nlmeans_cli.main import main; main()",
                               "denoise", str(noisy_png), "-", "--h", "10"],
                              stdout=terminal, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 1 and "standard output is a terminal" in proc.stderr


def test_long_jobs_run_in_strips_with_a_note(noisy_png, tmp_path, monkeypatch):
    import nlmeans_cli.processing as processing

    monkeypatch.setattr(processing, "LARGE_JOB_SECONDS", 0.0)  # every job is "long"
    out = tmp_path / "o.png"
    result = run("denoise", noisy_png, out, "--h", 20)
    assert result.exit_code == 0, result.output
    assert "a long job: about" in result.stderr
    np.testing.assert_array_equal(iio.imread(out), nlmeans.denoise(iio.imread(noisy_png), 20))
    quiet = run("denoise", noisy_png, tmp_path / "q.png", "--h", 20, "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_radii_beyond_the_image_are_cut_to_it(noisy_png, tmp_path):
    """--Ds 500 on a 40x50 image: radii of at most 39 and 49, said once."""
    result = run("denoise", noisy_png, tmp_path / "o.png", "--h", 20, "--Ds", 500, "--ds", 45)
    assert result.exit_code == 0, result.output
    assert "--Ds 500 reaches beyond the image (40x50): using 39x49" in result.stderr
    assert "--ds 45 reaches beyond the image (40x50): using 39x45" in result.stderr
    expected = nlmeans.denoise(iio.imread(noisy_png), 20, search_radius=(39, 49),
                               patch_radius=(39, 45))
    np.testing.assert_array_equal(iio.imread(tmp_path / "o.png"), expected)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_max_memory_is_honoured_for_images_that_cannot_stream(tmp_path, suffix):
    """A PNG or JPEG is read whole: over --max-memory it is refused with the
    estimate (a TIFF would be streamed in strips instead); within, it runs."""
    src = tmp_path / f"in{suffix}"
    iio.imwrite(src, (RNG.random((64, 64, 3)) * 255).astype(np.uint8))
    result = run("denoise", src, tmp_path / "out.png", "--h", 10, "--max-memory", "100K")
    assert result.exit_code == 1
    assert "more than the memory budget" in result.stderr and "only TIFF" in result.stderr
    assert not (tmp_path / "out.png").exists()
    result = run("denoise", src, tmp_path / "out.png", "--h", 10, "--max-memory", "2G", "-q")
    assert result.exit_code == 0, result.output
