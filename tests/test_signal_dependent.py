"""Signal-dependent (Poisson-Gaussian) noise: the variance-stabilising transform,
the blind fit of its variance a * x + b, and the denoisers run through them."""

import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner

import nlmeans
from nlmeans.methods.passes import run_passes
from nlmeans.model.noise import SIGNAL_DEPENDENT_FROM, estimate_noise_model, variance_curve
from nlmeans.model.stabilise import VarianceStabiliser, gat_forward, gat_inverse
from nlmeans_cli.main import cli


def scene(shape=(192, 200)):
    """Smooth shading from dark to bright with a few edges, 5-245."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    clean = 20 + 200 * x / shape[1] + 20 * np.sin(y / 23.0)
    clean[40:120, 50:110] += 25
    clean[(x - 150) ** 2 + (y - 60) ** 2 < 30 ** 2] -= 15
    return clean


def photon_noise(clean, a, b, seed=0):
    """a * Poisson(clean / a) + N(0, b): variance a * clean + b."""
    rng = np.random.default_rng(seed)
    return a * rng.poisson(clean / a) + math.sqrt(b) * rng.standard_normal(clean.shape)


def psnr(result, clean):
    return 10 * np.log10(255.0 ** 2 / np.mean((np.clip(result, 0, 255) - clean) ** 2))


# -- the transform ------------------------------------------------------------------

def expected_transform(x, a, b):
    """E f(z) for z = a * Poisson(x / a) + N(0, b), summed over the Poisson counts
    and integrated over the Gaussian by Gauss-Hermite quadrature: slow, exact."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    lam = x / a
    total = 0.0
    for k in range(int(lam + 12 * math.sqrt(lam + 1) + 20)):
        pmf = math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1)) if lam > 0 else float(k == 0)
        z = a * k + math.sqrt(b) * nodes
        total += pmf * np.sum(weights * gat_forward(z, a, b))
    return total


@pytest.mark.parametrize("a, b", [(1.0, 0.0), (4.0, 4.0), (16.0, 0.0), (2.0, 25.0)])
def test_the_inverse_is_the_exact_unbiased_one(a, b):
    """gat_inverse(E f(z)) gives back the mean x of z (Makitalo and Foi's closed
    form is within a fraction of a grey level of the exact inverse)."""
    for x in (2.0, 10.0, 40.0, 150.0):
        back = gat_inverse(expected_transform(x, a, b), a, b)
        assert abs(back - x) < 0.02 * x + 0.15 * a, (a, b, x, back)


def test_the_algebraic_inverse_would_be_biased():
    """What the exact unbiased inverse is for: at low counts, inverting f
    algebraically misses the mean by far more."""
    a, b, x = 16.0, 0.0, 10.0
    d = expected_transform(x, a, b)
    algebraic = ((d * a / 2) ** 2 - 0.375 * a * a - b) / a
    assert abs(algebraic - x) > 4 * abs(gat_inverse(d, a, b) - x)


def test_the_transform_makes_the_noise_unit():
    clean = np.full((200, 200), 0.0)
    for a, b in ((1.0, 1.0), (4.0, 4.0), (16.0, 0.0)):
        for level in (30.0, 120.0, 230.0):
            clean[:] = level
            stable = gat_forward(photon_noise(clean, a, b, seed=int(level)), a, b)
            assert abs(stable.std() - 1.0) < 0.05, (a, b, level, stable.std())


def test_the_stabiliser_transforms_each_channel_by_its_curve():
    values = np.random.default_rng(0).uniform(0, 255, (3, 1, 8, 9))
    curves = ((1.0, 2.0), (4.0, 0.0), (0.5, 9.0))
    stabiliser = VarianceStabiliser(curves, np.float64)
    forward = stabiliser.forward(values)
    for channel, (a, b) in enumerate(curves):
        np.testing.assert_allclose(forward[channel], gat_forward(values[channel], a, b))
        np.testing.assert_allclose(stabiliser.backward(forward)[channel],
                                   gat_inverse(forward[channel], a, b))
    assert stabiliser.span(255.0) == pytest.approx(
        max(gat_forward(255.0, a, b) - gat_forward(0.0, a, b) for a, b in curves))


# -- the blind fit ------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [(1.0, 1.0), (4.0, 4.0), (16.0, 0.0), (2.0, 30.0)])
def test_the_fit_finds_the_variance_line(a, b):
    clean = scene()
    fit = variance_curve(photon_noise(clean, a, b, seed=3))
    assert fit is not None
    found_a, found_b, growth = fit
    assert found_a == pytest.approx(a, rel=0.12)
    # b matters beside a * x over the image's values: compare the variances.
    for x in (40.0, 120.0, 220.0):
        assert found_a * x + found_b == pytest.approx(a * x + b, rel=0.15)
    assert growth >= SIGNAL_DEPENDENT_FROM


@pytest.mark.parametrize("sigma", [5.0, 15.0, 50.0])
def test_white_noise_does_not_grow(sigma):
    clean = scene()
    noisy = clean + sigma * np.random.default_rng(4).standard_normal(clean.shape)
    model = estimate_noise_model(noisy)
    assert model.kind == "white" and model.curve == ()
    assert model.growth < SIGNAL_DEPENDENT_FROM


def test_clipped_white_noise_does_not_grow():
    """An 8-bit file of strong white noise: clipping lowers the level near 0 and
    255, which must not read as noise growing with the signal."""
    clean = scene()
    for sigma in (25.0, 50.0):
        noisy = np.clip(np.rint(clean + sigma * np.random.default_rng(5).standard_normal(
            clean.shape)), 0, 255).astype(np.uint8)
        model = estimate_noise_model(noisy)
        assert model.kind == "white", (sigma, model.growth)


def test_photon_noise_is_signal_dependent_per_channel():
    clean = np.stack([scene(), scene()[::-1] * 0.8 + 20, scene()[:, ::-1]], axis=-1)
    noisy = photon_noise(clean, 4.0, 4.0, seed=6)
    model = estimate_noise_model(noisy, channel_axis=-1)
    assert model.kind == "signal-dependent" and model.sigma == 1.0
    assert len(model.curve) == 3
    for a, _ in model.curve:
        assert a == pytest.approx(4.0, rel=0.15)
    assert nlmeans.estimate_noise_model(noisy, channel_axis=-1, noise="gaussian").kind == "white"


def test_a_channel_too_dark_to_fit_shares_the_others_line():
    """Mostly black in one channel (near its values' floor): no line of its own,
    the mean line of the others instead (one sensor, one gain)."""
    clean = np.stack([scene(), scene(), np.full(scene().shape, 3.0)], axis=-1)
    noisy = photon_noise(clean, 4.0, 0.0, seed=7)
    assert variance_curve(noisy[..., 2]) is None
    model = estimate_noise_model(noisy, channel_axis=-1)
    assert model.kind == "signal-dependent"
    (a0, b0), (a1, b1), (a2, b2) = model.curve
    assert (a2, b2) == pytest.approx(((a0 + a1) / 2, (b0 + b1) / 2))


# -- denoising through the transform ------------------------------------------------

@pytest.mark.parametrize("method", ["nlmeans", "nlbayes"])
def test_blind_denoising_of_photon_noise_gains_on_one_sigma(method):
    clean = scene()
    noisy = photon_noise(clean, 4.0, 4.0, seed=8)
    blind = nlmeans.denoise(noisy, method=method)
    one_sigma = nlmeans.denoise(noisy, method=method, noise="gaussian")
    known = nlmeans.denoise(noisy, method=method, noise=(4.0, 4.0))
    assert psnr(blind, clean) > psnr(one_sigma, clean) + 1.0
    assert psnr(blind, clean) > psnr(known, clean) - 0.3


def test_the_passes_run_on_the_stabilised_values():
    """With a curve, run_passes is: transform, the same passes without the curve,
    exact unbiased inverse, clip."""
    clean = scene((64, 70))
    noisy = photon_noise(clean, 4.0, 4.0, seed=9)
    settings = nlmeans.resolve(noisy, noise=(4.0, 4.0), dtype=np.float64)
    assert settings.variance_curve == ((4.0, 4.0),) and settings.sigma == 1.0
    assert not settings.sigma_estimated
    values, bounds = noisy[None, None], (noisy.min(), noisy.max())
    stabiliser = VarianceStabiliser(settings.variance_curve, np.float64)
    plain = settings.__class__(**{**settings.__dict__, "variance_curve": None})
    expected = np.clip(stabiliser.backward(run_passes(stabiliser.forward(values), plain,
                                                      (-np.inf, np.inf))), *bounds)
    np.testing.assert_allclose(run_passes(values, settings, bounds), expected, rtol=1e-12)
    np.testing.assert_allclose(nlmeans.denoise(noisy, settings=settings), expected[0, 0],
                               rtol=1e-12)


def test_strips_give_the_whole_images_result_with_a_curve():
    from nlmeans.runners.strips import denoise_in_strips

    noisy = np.clip(np.rint(photon_noise(scene((90, 60)), 4.0, 4.0, seed=10)), 0, 255)
    noisy = noisy.astype(np.uint8)
    settings = nlmeans.resolve(noisy)
    assert settings.variance_curve is not None
    np.testing.assert_array_equal(denoise_in_strips(noisy, settings, 23),
                                  nlmeans.denoise(noisy, settings=settings))


def test_the_curve_round_trips_and_is_checked():
    noisy = photon_noise(scene((64, 64)), 4.0, 4.0, seed=11)
    settings = nlmeans.resolve(noisy)
    assert settings.noise.kind == "signal-dependent"
    again = nlmeans.Settings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings
    with pytest.raises(ValueError, match="one \\(a, b\\) per channel"):
        settings.__class__(**{**settings.__dict__, "variance_curve": ((1.0, 0.0),) * 2})
    with pytest.raises(ValueError, match="a must be > 0"):
        settings.__class__(**{**settings.__dict__, "variance_curve": ((0.0, 1.0),)})
    for bad in ((4.0,), (0.0, 1.0), (4.0, float("nan")), (4.0, "x")):
        with pytest.raises(ValueError, match="noise"):
            nlmeans.denoise(noisy, noise=bad)
    with pytest.raises(ValueError, match="not both"):
        nlmeans.denoise(noisy, sigma=3.0, noise=(4.0, 4.0))


def test_sure_does_not_run_on_signal_dependent_noise():
    noisy = photon_noise(scene((64, 64)), 4.0, 4.0, seed=12)
    _, report = nlmeans.denoise_with_report(noisy, "sure", estimate_error=True)
    assert report.settings.mode == "auto" and report.sure_mse is None
    assert "signal-dependent" in report.error_note


# -- the command line ---------------------------------------------------------------

@pytest.fixture
def photon_png(tmp_path):
    noisy = np.clip(np.rint(photon_noise(scene(), 4.0, 4.0, seed=13)), 0, 255).astype(np.uint8)
    path = tmp_path / "photons.png"
    iio.imwrite(path, noisy)
    return path


def test_cli_reports_and_takes_the_curve(photon_png, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out.png"
    result = runner.invoke(cli, ["denoise", str(photon_png), str(out), "--report", "-q"])
    assert result.exit_code == 0, result.output
    assert "noise: signal-dependent (estimated), variance" in result.output
    result = runner.invoke(cli, ["denoise", str(photon_png), str(tmp_path / "given.png"),
                                 "--noise", "4,4", "--report", "-q"])
    assert result.exit_code == 0, result.output
    assert "signal-dependent (given), variance 4*x + 4" in result.output
    result = runner.invoke(cli, ["denoise", str(photon_png), str(tmp_path / "bad.png"),
                                 "--noise", "4,x"])
    assert result.exit_code == 2 and "not a pair a,b" in result.output
    assert "Traceback" not in result.output


def test_estimate_noise_prints_the_curve(photon_png):
    result = CliRunner().invoke(cli, ["estimate-noise", str(photon_png)])
    assert result.exit_code == 0, result.output
    assert "signal-dependent noise" in result.output and "variance: " in result.output
    result = CliRunner().invoke(cli, ["estimate-noise", str(photon_png), "--json"])
    model = json.loads(result.output)[0]
    assert model["kind"] == "signal-dependent" and len(model["curve"]) == 1
    assert model["growth"] >= SIGNAL_DEPENDENT_FROM
