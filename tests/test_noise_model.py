"""The noise model: white noise as before, correlated camera noise seen at the right scale."""

import glob
import json
import os

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.ndimage import gaussian_filter

import nlmeans
from conftest import PROJECT_ROOT, SAMPLES
from nlmeans.model.noise import CORRELATED_FROM, estimate_noise_model
from nlmeans_cli.main import cli

SHARED = os.path.join(os.path.dirname(PROJECT_ROOT), "shared", "datasets")
POLYU = os.path.join(SHARED, "polyu-dev")
SET12 = os.path.join(SHARED, "set12")


def scene(shape=(192, 200), seed=0):
    """Smooth shading with a few edges, 0-255."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    clean = 90 + 60 * np.sin(x / 37.0) * np.cos(y / 29.0)
    clean[40:120, 50:130] += 40
    clean[(x - 150) ** 2 + (y - 60) ** 2 < 30 ** 2] -= 50
    return clean


def correlated_noise(shape, std, smooth, seed=0):
    """White Gaussian noise low-passed by a Gaussian of width `smooth`, scaled to `std`."""
    noise = gaussian_filter(np.random.default_rng(seed).standard_normal(shape), smooth)
    return noise * std / noise.std()


@pytest.mark.parametrize("sigma", [5.0, 15.0, 40.0])
def test_white_noise_is_white_and_reads_as_before(sigma):
    noisy = scene() + sigma * np.random.default_rng(1).standard_normal(scene().shape)
    model = estimate_noise_model(noisy)
    assert model.kind == "white" and model.scale == 1
    assert model.sigma == nlmeans.estimate_noise(noisy)  # exactly today's estimate
    assert abs(model.correlation - 1) < 0.3
    # White noise reads alike at every scale on a smooth scene.
    assert max(model.scale_sigmas) / min(model.scale_sigmas) < 1.3
    assert all(abs(level / sigma - 1) < 0.25 for level in model.levels[0])


@pytest.mark.parametrize("smooth", [0.8, 1.2])
def test_correlated_noise_is_found_and_measured_above_the_fine_scale(smooth):
    shape = scene().shape
    noisy = scene() + correlated_noise(shape, 5.0, smooth)
    model = estimate_noise_model(noisy)
    assert model.kind == "correlated" and model.correlation >= CORRELATED_FROM
    fine, second, coarse = model.scale_sigmas
    assert fine < 0.5 * 5.0 < coarse          # the 3x3 high-pass misses most of it
    assert model.sigma == min(coarse, 2 * second)
    # Noise alone: between its pixel spread and twice that (the white-equivalent
    # level of 4x4 block means exceeds the pixel spread of correlated noise).
    flat = estimate_noise_model(correlated_noise(shape, 5.0, smooth))
    assert flat.kind == "correlated" and 5.0 < flat.sigma < 10.0
    assert nlmeans.estimate_noise_model(noisy, noise="gaussian").sigma == fine


def test_signal_dependent_noise_shows_in_the_levels():
    clean = np.tile(np.linspace(20, 235, 256), (192, 1))
    noise = np.random.default_rng(3).standard_normal(clean.shape) * (1 + clean / 40)
    model = estimate_noise_model(clean + noise)
    dark, mid, bright = model.levels[0]
    assert dark < mid < bright
    low, middle, high = model.level_intensities[0]
    assert low < middle < high
    assert abs(dark / (1 + low / 40) - 1) < 0.25 and abs(bright / (1 + high / 40) - 1) < 0.25


def test_colour_levels_are_per_channel():
    clean = np.stack([scene(), 0.5 * scene(), scene()[::-1]], axis=-1)
    stds = np.array([3.0, 6.0, 12.0])
    noisy = clean + stds * np.random.default_rng(4).standard_normal(clean.shape)
    model = estimate_noise_model(noisy, channel_axis=-1)
    assert model.kind == "white" and len(model.channel_sigmas) == 3
    np.testing.assert_allclose(model.channel_sigmas, stds, rtol=0.2)
    assert model.sigma == pytest.approx(np.mean(model.channel_sigmas))


def test_model_round_trips_through_settings_json():
    noisy = scene() + correlated_noise(scene().shape, 4.0, 1.0)
    settings = nlmeans.resolve(noisy)
    assert settings.noise.kind == "correlated" and settings.sigma == settings.noise.sigma
    carried = nlmeans.Settings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert carried == settings
    np.testing.assert_array_equal(nlmeans.denoise(noisy, settings=carried),
                                  nlmeans.denoise(noisy))


def test_correlated_noise_is_removed_better_with_the_model():
    clean = scene()
    noisy = clean + correlated_noise(clean.shape, 6.0, 1.0, seed=7)

    def error(result):
        return np.mean((result - clean) ** 2)

    auto = nlmeans.denoise(noisy)
    white = nlmeans.denoise(noisy, noise="gaussian")
    assert error(auto) < 0.6 * error(white) and error(auto) < 0.5 * error(noisy)


def test_noise_option_checks_and_number():
    noisy = scene() + 10 * np.random.default_rng(2).standard_normal(scene().shape)
    np.testing.assert_array_equal(nlmeans.denoise(noisy, noise=10.0),
                                  nlmeans.denoise(noisy, sigma=10.0))
    with pytest.raises(ValueError, match="noise must be one of"):
        nlmeans.denoise(noisy, noise="poisson")
    with pytest.raises(ValueError, match="sigma, or a number or pair for noise, not both"):
        nlmeans.denoise(noisy, sigma=3.0, noise=4.0)
    settings = nlmeans.resolve(noisy)
    with pytest.raises(ValueError, match="settings= fixes noise"):
        nlmeans.denoise(noisy, settings=settings, noise="gaussian")


def test_report_has_no_impossible_figures_on_correlated_noise():
    noisy = np.clip(scene() + correlated_noise(scene().shape, 5.0, 1.0), 0, 255).astype(np.uint8)
    _, report = nlmeans.denoise_with_report(noisy)
    assert report.psnr_estimate is None and report.sure_mse is None
    assert "SURE needs white noise" in report.error_note
    _, report = nlmeans.denoise_with_report(noisy, "sure")
    assert report.h_candidates == [] and "automatic rules instead" in report.error_note
    assert report.h == nlmeans.resolve(noisy).passes[0].h


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_cli_report_and_estimate_noise_show_the_model(tmp_path):
    source = tmp_path / "camera_like.png"
    noisy = np.clip(scene() + correlated_noise(scene().shape, 5.0, 1.0), 0, 255)
    iio.imwrite(source, noisy.astype(np.uint8))
    result = run("denoise", source, tmp_path / "out.png", "--report")
    assert result.exit_code == 0, result.output
    assert "correlated noise, correlation figure" in result.output
    assert "estimated PSNR: not available" in result.output
    assert " dB" not in result.output.split("estimated PSNR")[1]
    result = run("estimate-noise", "--json", source, os.path.join(SAMPLES, "camera_noisy.png"))
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)
    assert [m["kind"] for m in models] == ["correlated", "white"]
    assert set(models[0]) >= {"sigma", "correlation", "levels", "scale_sigmas", "path"}
    result = run("estimate-noise", source)
    assert "dark/mid/bright" in result.stdout and "correlated noise" in result.stdout
    gaussian = run("denoise", source, tmp_path / "g.png", "--noise", "gaussian", "--report")
    assert "white noise" in gaussian.output and "estimated PSNR (SURE)" in gaussian.output
    bad = run("denoise", source, tmp_path / "b.png", "--noise", "poisson")
    assert bad.exit_code == 2 and "neither a number nor one of" in bad.output


@pytest.mark.skipif(not os.path.isdir(SET12), reason="../shared/datasets/set12 is absent")
@pytest.mark.parametrize("sigma", [10, 50])
def test_set12_white_noise_reads_as_white(sigma):
    """The benchmark protocol's noise: the model must keep today's estimate."""
    for index, path in enumerate(sorted(glob.glob(os.path.join(SET12, "*.png"))), 1):
        clean = iio.imread(path).astype(np.float64)
        noisy = clean + sigma * np.random.default_rng(1000 * sigma + index).standard_normal(
            clean.shape)
        model = estimate_noise_model(noisy)
        assert model.kind == "white", (path, model.correlation)


@pytest.mark.skipif(not os.path.isdir(POLYU), reason="../shared/datasets/polyu-dev is absent")
def test_real_camera_noise_is_correlated_and_denoising_helps():
    """Three real noisy/clean pairs: the model finds correlated noise near its
    measured level, and automatic mode improves on the noisy shot."""
    noisy_paths = sorted(glob.glob(os.path.join(POLYU, "*_real.JPG")))[::25]
    for path in noisy_paths:
        noisy = iio.imread(path)
        reference = iio.imread(path.replace("_real", "_mean")).astype(np.float64)
        model = estimate_noise_model(noisy, channel_axis=-1)
        true = (noisy - reference).std(axis=(0, 1)).mean()
        assert model.kind == "correlated" and 0.6 < model.sigma / true < 2.5
        denoised = nlmeans.denoise(noisy, channel_axis=-1).astype(np.float64)
        assert np.mean((denoised - reference) ** 2) < 0.8 * np.mean((noisy - reference) ** 2)


@pytest.mark.parametrize("size", [1, 2, 7, 10, 1001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, np.int16])
def test_medians_and_quantiles_equal_numpys(size, dtype):
    """The estimators' medians and quantiles (np.partition, no numpy.ma import)
    against numpy's median and quantile (linear method), odd and even counts."""
    from nlmeans.model.quantiles import median, quantiles

    rng = np.random.default_rng(size)
    values = (rng.random((size,)) * 200 - (50 if dtype == np.int16 else 0)).astype(dtype)
    values = values.reshape(-1, 1) if size % 2 else values  # any shape: all values count
    assert median(values) == pytest.approx(float(np.median(values)), rel=1e-6, abs=1e-12)
    fractions = (0, 0.001, 1 / 3, 0.5, 2 / 3, 0.999, 1)
    expected = np.quantile(values.astype(np.float64), fractions)
    np.testing.assert_allclose(quantiles(values, fractions), expected, rtol=1e-6, atol=1e-12)
    with pytest.raises(ValueError, match="no values"):
        median(values[:0])
    if values.dtype.kind == "f" and size > 1:  # NaN anywhere gives NaN, as numpy's do
        values.flat[size // 3] = np.nan
        assert np.isnan(median(values)) and np.isnan(np.median(values))
        assert np.isnan(quantiles(values, fractions)).all()


def test_high_pass_and_bands_equal_their_plain_forms():
    """The measurements' fast forms against plain ones: the high-pass (two
    3-tap passes) against the 3x3 kernel applied by scipy, and the bands of
    local brightness (grouped by one stable sort) against a mask per band, with
    ties at the edges and a band too small to count."""
    from scipy.ndimage import correlate

    from nlmeans.model.noise import CURVE_BAND_MIN, CURVE_BANDS, _bands, _MAD_TO_SIGMA
    from nlmeans.model.parameters import high_pass
    from nlmeans.model.quantiles import median, quantiles

    rng = np.random.default_rng(4)
    plane = rng.integers(0, 256, (23, 31)).astype(np.float64)
    kernel = np.outer([1.0, -2.0, 1.0], [1.0, -2.0, 1.0])
    np.testing.assert_array_equal(high_pass(plane), correlate(plane, kernel)[1:-1, 1:-1])
    brightness = np.round(rng.random(20 * CURVE_BANDS * CURVE_BAND_MIN) * 8) / 4
    responses = rng.random(brightness.size) * 10
    edges = np.asarray(quantiles(brightness, np.linspace(0, 1, CURVE_BANDS + 1)[1:-1]))
    band = np.searchsorted(edges, brightness, side="left")
    expected = [(median(brightness[band == k]), median(responses[band == k]) * _MAD_TO_SIGMA / 6,
                 np.count_nonzero(band == k)) for k in range(CURVE_BANDS)
                if np.count_nonzero(band == k) >= CURVE_BAND_MIN]
    assert len(expected) < CURVE_BANDS  # ties leave some bands empty
    assert _bands(responses, brightness) == expected
