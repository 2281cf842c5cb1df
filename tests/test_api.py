"""Properties and argument checking of nlmeans.denoise."""

import os

import imageio.v3 as iio
import numpy as np
import pytest

import nlmeans
from conftest import SAMPLES

RNG = np.random.default_rng(2024)


def psnr(result, clean):
    mse = np.mean((np.clip(result.astype(np.float64), 0, 255) - clean) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, channel_axis", [((20, 17), None), ((9, 12, 3), -1),
                                                 ((4, 9, 8), None)])
def test_constant_image_is_unchanged(dtype, shape, channel_axis):
    image = np.full(shape, 87.25)
    result = nlmeans.denoise(image, 5.0, channel_axis=channel_axis, dtype=dtype)
    np.testing.assert_allclose(result, image, rtol=1e-6)


def test_tiny_h_returns_the_input():
    image = RNG.permutation(400).reshape(20, 20).astype(np.float64)  # all patches differ
    result = nlmeans.denoise(image, 1e-3, patch_radius=1, search_radius=3, dtype=np.float64)
    np.testing.assert_array_equal(result, image)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-5)])
def test_huge_h_returns_the_mirrored_box_mean(dtype, rtol):
    image = RNG.random((23, 19)) * 255
    radius = 4
    padded = np.pad(image, radius, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2 * radius + 1,) * 2)
    expected = windows.mean(axis=(-1, -2))
    result = nlmeans.denoise(image, 1e9, patch_radius=2, search_radius=radius, dtype=dtype)
    np.testing.assert_allclose(result, expected, rtol=rtol)


@pytest.mark.parametrize("channel_axis, shape", [(None, (30, 31)), (-1, (16, 18, 3)),
                                                 (None, (6, 10, 9))])
def test_output_lies_within_input_range(channel_axis, shape):
    image = RNG.normal(100, 40, size=shape)
    result = nlmeans.denoise(image, 30.0, channel_axis=channel_axis)
    assert result.min() >= image.min() - 1e-9 * abs(image.min())
    assert result.max() <= image.max() + 1e-9 * abs(image.max())


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float16, np.float32,
                                   np.float64])
def test_shape_and_dtype_are_preserved(dtype):
    image = (RNG.random((15, 14, 3)) * 200).astype(dtype)
    result = nlmeans.denoise(image, 20.0, channel_axis=2)
    assert result.shape == image.shape
    assert result.dtype == image.dtype


def test_integer_output_is_rounded_from_the_float_result():
    image = (RNG.random((20, 20)) * 255).astype(np.uint8)
    as_float = nlmeans.denoise(image.astype(np.float64), 25.0, dtype=np.float64)
    as_uint8 = nlmeans.denoise(image, 25.0, dtype=np.float64)
    np.testing.assert_array_equal(as_uint8, np.rint(as_float).astype(np.uint8))


def test_channel_axis_first_equals_last():
    image = RNG.random((3, 12, 14)) * 255
    first = nlmeans.denoise(image, 30.0, channel_axis=0, dtype=np.float64)
    last = nlmeans.denoise(np.moveaxis(image, 0, -1), 30.0, channel_axis=-1, dtype=np.float64)
    np.testing.assert_allclose(np.moveaxis(first, 0, -1), last, rtol=1e-12)


def test_one_weight_for_all_channels():
    """Three identical channels give three copies of the grey result."""
    grey = RNG.random((14, 15)) * 255
    colour = np.stack([grey] * 3, axis=-1)
    result = nlmeans.denoise(colour, 20.0, channel_axis=-1, dtype=np.float64)
    expected = nlmeans.denoise(grey, 20.0, dtype=np.float64)
    for c in range(3):
        np.testing.assert_allclose(result[..., c], expected, rtol=1e-12)


def test_noise_reduction_on_sample_image():
    clean = iio.imread(os.path.join(SAMPLES, "camera.png")).astype(np.float64)
    noisy = iio.imread(os.path.join(SAMPLES, "camera_noisy.png"))  # sigma = 20
    result = nlmeans.denoise(noisy, 22.0)
    assert psnr(result, clean) >= psnr(noisy, clean) + 5.0


def test_float64_and_float32_paths_agree():
    noisy = iio.imread(os.path.join(SAMPLES, "astronaut_noisy.png"))[:96, :96]
    r32 = nlmeans.denoise(noisy.astype(np.float64), 25.0, channel_axis=-1, dtype=np.float32)
    r64 = nlmeans.denoise(noisy.astype(np.float64), 25.0, channel_axis=-1, dtype=np.float64)
    assert np.max(np.abs(r32 - r64)) < 1e-4 * 255


@pytest.mark.parametrize("kwargs, message", [
    ({"h": 0.0}, "h must be a finite number > 0"),
    ({"h": -1.0}, "h must be a finite number > 0"),
    ({"h": float("nan")}, "h must be a finite number > 0"),
    ({"h": float("inf")}, "h must be a finite number > 0"),
    ({"h": "10"}, "h must be a number"),
    ({"h": 10, "patch_radius": -1}, "patch_radius must be an integer >= 0"),
    ({"h": 10, "patch_radius": 1.5}, "patch_radius must be an integer >= 0"),
    ({"h": 10, "search_radius": -2}, "search_radius must be an integer >= 0"),
    ({"h": 10, "search_radius": (1, 2, 3)}, "search_radius must be an int or a sequence of 2"),
    ({"h": 10, "sigma": -1.0}, "sigma must be a finite number >= 0"),
    ({"h": 10, "sigma": float("nan")}, "sigma must be a finite number >= 0"),
    ({"h": 10, "channel_axis": 2}, "channel_axis must be in"),
    ({"h": 10, "dtype": np.float16}, "dtype must be float32 or float64"),
])
def test_invalid_arguments_raise_value_error(kwargs, message):
    image = RNG.random((8, 8))
    if kwargs.get("channel_axis") is not None:
        image = RNG.random((8, 8, 3))
        kwargs = dict(kwargs, channel_axis=3)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        nlmeans.denoise(image, **kwargs)


@pytest.mark.parametrize("image, channel_axis, message", [
    (np.zeros((0, 5)), None, "must not be empty"),
    (np.zeros(5), None, "must be 2-D"),
    (np.zeros((2, 3, 4, 5, 6)), None, "must be 2-D"),
    (np.zeros((4, 5)), -1, "with channel_axis must be 3-D"),
    (np.zeros((4, 5, 3)), 1.0, "channel_axis must be an int"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), None, "NaN or inf"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), None, "NaN or inf"),
    (np.zeros((4, 4), dtype=bool), None, "integer or floating-point dtype"),
    (np.zeros((4, 4), dtype=complex), None, "integer or floating-point dtype"),
])
def test_invalid_images_raise_value_error(image, channel_axis, message):
    with pytest.raises(ValueError, match=message):
        nlmeans.denoise(image, 10.0, channel_axis=channel_axis)


def test_tiny_images_work():
    one = np.array([[42.0]])
    np.testing.assert_allclose(nlmeans.denoise(one, 10.0), one)
    two = np.array([[10.0, 20.0]])
    assert nlmeans.denoise(two, 10.0, patch_radius=3, search_radius=5).shape == (1, 2)


def test_input_is_not_modified():
    image = RNG.random((12, 12)) * 255
    before = image.copy()
    nlmeans.denoise(image, 20.0)
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("kwargs", [{"h": 10.0}, {"h": 10.0, "sigma": 5.0}, {}, {"h": "sure"}])
def test_report_variant_returns_the_same_integer_image(kwargs):
    """The SURE run needs unrounded values; the image returned must still be rounded."""
    image = np.clip(128 + 30 * RNG.standard_normal((40, 40)), 0, 255).astype(np.uint8)
    with_report, _ = nlmeans.denoise_with_report(image, **kwargs)
    assert with_report.dtype == np.uint8
    np.testing.assert_array_equal(with_report, nlmeans.denoise(image, **kwargs))


@pytest.mark.parametrize("kwargs", [{"h": 1e-3}, {"h": 30.0}, {}])
def test_float64_computed_in_float32_stays_exactly_within_range(kwargs):
    """The range bounds rounded to float32 may lie just outside the float64 range (a
    tiny h returns the pixels themselves, the extremes included)."""
    rng = np.random.default_rng(5)
    for _ in range(20):
        image = rng.random((6, 7)) * 200 - 50
        result = nlmeans.denoise(image, dtype=np.float32, **kwargs)
        assert result.dtype == np.float64
        assert image.min() <= result.min() and result.max() <= image.max()


@pytest.mark.parametrize("kwargs, expected", [
    ({"h": 10.0, "estimate_error": False}, None),  # nothing needs it: not computed
    ({"h": 10.0}, 255.0),
    ({"estimate_error": False}, 255.0),  # the automatic rules scale with it
])
def test_report_data_range_is_computed_when_needed(kwargs, expected):
    image = np.clip(128 + 20 * RNG.standard_normal((30, 30)), 0, 255)
    _, report = nlmeans.denoise_with_report(image, **kwargs)
    assert report.data_range == expected


@pytest.mark.parametrize("sigma", [10, 50])
def test_data_range_of_float_images_with_strong_unclipped_noise(sigma):
    """Float data on 0-255 with black and white areas: at sigma 50, the 0.1 and 99.9
    percentiles lie about 155 beyond them, more than half the range."""
    from nlmeans.model.parameters import data_range

    clean = np.zeros((200, 200))
    clean[:, 100:] = 255.0
    noisy = clean + sigma * RNG.standard_normal(clean.shape)
    assert data_range(noisy, sigma) == 255.0
    _, report = nlmeans.denoise_with_report(noisy, estimate_error=False)
    assert report.data_range == 255.0
    assert data_range(noisy / 255.0, sigma / 255.0) == 1.0


def test_ctrl_c_stops_a_long_denoise_promptly():
    """The kernel's tiles run on Python threads, so Ctrl-C is answered between two
    tiles, not after the whole image (it used to take seconds)."""
    import signal
    import subprocess
    import sys
    import time

    code = ("import numpy as np, nlmeans, sys\n"
            "nlmeans.denoise(np.arange(64.0).reshape(8, 8), 10, search_radius=3)\n"
            "print('ready', flush=True)\n"
            "image = np.random.default_rng(0).random((2048, 2048)).astype(np.float32)\n"
            "nlmeans.denoise(image, 0.1, search_radius=40)  # 10 s and more on 2 cores\n"
            "print('finished', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        waited = time.perf_counter() - sent
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in proc.stderr.read()
    assert waited < 3.0, f"took {waited:.1f} s to stop"


@pytest.mark.parametrize("dtype, low, high", [
    (np.int32, 2**31 - 1000, 2**31 - 1), (np.uint32, 2**32 - 1000, 2**32 - 1),
    (np.int64, 2**62, 2**62 + 2**40), (np.int64, 2**63 - 2**40, 2**63 - 1),
    (np.int64, -2**63, -2**63 + 2**40)])
@pytest.mark.parametrize("h", [None, 1e12])
def test_integers_at_the_ends_of_their_range(dtype, low, high, h):
    """Integers whose largest value is not a float32: float32(2**31 - 1) is 2**31,
    which the cast back to int32 wrapped to -2**31 (with a RuntimeWarning). The
    result stays within the input's range, and nothing warns."""
    image = np.random.default_rng(7).integers(low, high, (24, 24), dtype=dtype, endpoint=True)
    image[0, 0], image[0, 1] = low, high
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = nlmeans.denoise(image, h)
    assert out.dtype == dtype
    assert int(out.min()) >= low and int(out.max()) <= high
