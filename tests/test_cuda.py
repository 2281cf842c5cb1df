"""The CUDA backend: checked against the CPU kernel on Numba's CUDA simulator
(no GPU needed), and on a real GPU where there is one."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nlmeans
from conftest import PROJECT_ROOT

# Runs in a subprocess: the simulator must be chosen before Numba is imported.
# Images of 8 to 10 pixels a side: the simulator runs each GPU thread in Python
# (12 to 13 took 31 s of the suite).
SIMULATED = textwrap.dedent("""
    import numpy as np
    import nlmeans
    from nlmeans.backends.cpu import numba_pass
    from nlmeans.backends.cuda import cuda_pass
    from nlmeans.model.settings import Pass

    rng = np.random.default_rng(0)
    grey = (rng.random((1, 1, 9, 10)) * 255).astype(np.float32)
    rgb = (rng.random((3, 1, 8, 9)) * 255).astype(np.float32)
    worst = 0.0
    cases = [(grey, None, Pass((1, 1), (1, 1), 30.0)),
             (rgb, None, Pass((1, 1), (1, 1), 40.0, 10.0, "patch", "max")),
             (grey, None, Pass((2, 2), (1, 1), 25.0, 0.0, "pixel", "max")),
             (rgb, rgb * 0.5 + 20, Pass((1, 1), (1, 1), 20.0, 0.0, "patch", "one", True)),
             (grey, None, Pass((1, 1), (1, 1), 1e-3, 0.0, "patch", "max"))]  # weights underflow
    for values, guide, step in cases:
        cpu = numba_pass(values, guide, step, np.float32, (0, 255), False)
        gpu = cuda_pass(values, guide, step, np.float32, (0, 255), False)
        assert gpu.shape == cpu.shape and gpu.dtype == np.float32
        worst = max(worst, float(np.abs(gpu - cpu).max()))
    # Through the API: opponent colours, sigma subtraction, integer output.
    image = (rng.random((8, 9, 3)) * 255).astype(np.uint8)
    options = dict(h=12.0, sigma=8.0, patch_radius=1, search_radius=1, aggregation="patch",
                   centre_weight="max", chroma_weight=0.5, channel_axis=-1)
    cpu = nlmeans.denoise(image, **options).astype(int)
    gpu, report = nlmeans.denoise_with_report(image, device="cuda", estimate_error=False,
                                              **options)
    assert report.device == "cuda" and gpu.dtype == np.uint8
    assert np.abs(gpu.astype(int) - cpu).max() <= 1
    print("WORST", worst)
""")


def test_cuda_kernels_match_the_cpu_kernel_on_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=PROJECT_ROOT)
    proc = subprocess.run([sys.executable, "-c", SIMULATED], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    worst = float(proc.stdout.split("WORST")[1])
    assert worst < 1e-4 * 255  # float32 rounding only, on 0-255 data


def test_device_choice():
    image = np.random.default_rng(1).random((16, 16)) * 255
    with pytest.raises(ValueError, match="device must be one of"):
        nlmeans.denoise(image, 10, device="gpu")
    volume = np.random.default_rng(1).random((4, 16, 16)) * 255
    with pytest.raises(ValueError, match="volumes run on the CPU"):
        nlmeans.denoise(volume, 10, device="cuda")
    with pytest.raises(ValueError, match="computes in float32"):
        nlmeans.denoise(image, 10, device="cuda", dtype=np.float64)
    # auto runs volumes on the CPU, with the same result as asking for the CPU.
    result, report = nlmeans.denoise_with_report(volume, 10, device="auto", estimate_error=False)
    assert report.device == "cpu"
    np.testing.assert_array_equal(result, nlmeans.denoise(volume, 10))


def _real_gpu():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    from nlmeans.backends.cuda import cuda_available

    return cuda_available()


@pytest.mark.skipif(not _real_gpu(), reason="no CUDA GPU here (the simulator test covers it)")
@pytest.mark.parametrize("options", [dict(h=20.0), {}, dict(channel_axis=-1)])
def test_gpu_matches_cpu_on_a_real_gpu(options):
    from skimage import data

    clean = data.astronaut()[:200, :230].astype(np.float64)
    if "channel_axis" not in options:
        clean = clean.mean(axis=-1)
    noisy = clean + 20 * np.random.default_rng(2).standard_normal(clean.shape)
    cpu = nlmeans.denoise(noisy, **options)
    gpu, report = nlmeans.denoise_with_report(noisy, device="cuda", estimate_error=False,
                                              **options)
    assert report.device == "cuda"
    np.testing.assert_allclose(gpu, cpu, atol=1e-4 * (noisy.max() - noisy.min()))
