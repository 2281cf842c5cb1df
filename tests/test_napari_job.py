"""The napari widget's job without Qt: nlmeans.api.progress.denoise_with_progress
and nlmeans.napari_plugin.job (layouts, results equal to nlmeans.denoise,
progress, cancellation)."""

import numpy as np
import pytest

import nlmeans
from nlmeans.api.progress import denoise_with_progress
from nlmeans.napari_plugin.job import (Cancelled, axes_choices, default_axes,
                                       denoise_layer_data, noise_text)

RNG = np.random.default_rng(7)
GREY = (RNG.random((48, 40)) * 200).astype(np.uint8)
RGB = (RNG.random((40, 36, 3)) * 255).astype(np.uint8)
STACK = RNG.random((5, 32, 36)).astype(np.float32) * 100


CASES = [(GREY, {}), (RGB, {"channel_axis": -1}), (STACK, {}), (STACK, {"time_axis": 0})]


@pytest.mark.parametrize("image, options", CASES + [(GREY, {"h": 12.0, "search_radius": 39})])
@pytest.mark.parametrize("method", ["nlmeans", "nlbayes"])
def test_progress_run_equals_denoise(image, options, method):
    if method == "nlbayes":  # NL-Bayes takes no h nor radii
        options = {k: v for k, v in options.items() if k not in ("h", "search_radius")}
    settings = nlmeans.resolve(image, method=method, **options)
    calls = []
    result = denoise_with_progress(image, settings, lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(result, nlmeans.denoise(image, settings=settings))
    assert calls and calls[-1][0] == calls[-1][1]
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_progress_run_stops_when_progress_raises():
    settings = nlmeans.resolve(STACK, method="nlmeans")

    def stop(done, total):
        raise Cancelled("cancelled")
    with pytest.raises(Cancelled):
        denoise_with_progress(STACK, settings, stop)


def test_progress_run_checks_its_settings():
    with pytest.raises(ValueError, match="channel"):
        denoise_with_progress(RGB, nlmeans.resolve(GREY), lambda done, total: None)


def test_axes_offered_and_guessed():
    assert axes_choices(2, False) == ["Y, X"]
    assert axes_choices(3, True) == ["Y, X"]
    assert axes_choices(3, False) == ["Y, X", "Z, Y, X", "T, Y, X"]
    assert axes_choices(4, False) == ["Y, X", "Z, Y, X", "T, Y, X", "T, Z, Y, X"]
    assert default_axes(2, False) == "Y, X"
    assert default_axes(3, True) == "Y, X"
    assert default_axes(3, False, ("0", "1", "2")) == "Z, Y, X"
    assert default_axes(3, False, ("t", "y", "x")) == "T, Y, X"
    assert default_axes(4, True, ("time", "y", "x", "c")) == "T, Y, X"
    assert default_axes(4, False, ("t", "z", "y", "x")) == "T, Z, Y, X"


@pytest.mark.parametrize("axes, options", [
    ("Z, Y, X", {}), ("T, Y, X", {"time_axis": 0})])
def test_layer_job_equals_denoise(axes, options):
    result, summary = denoise_layer_data(STACK, axes=axes, method="NL-Bayes")
    np.testing.assert_array_equal(result, nlmeans.denoise(STACK, method="nlbayes", **options))
    assert summary["axes"] == axes and summary["method"] == "NL-Bayes"
    assert summary["sigma_estimated"] and summary["sigma"] > 0


def test_layer_job_loops_over_leading_axes_and_reports_progress():
    fractions = []
    result, summary = denoise_layer_data(STACK, axes="Y, X", h=15.0, progress=fractions.append)
    for plane, out in zip(STACK, result):
        np.testing.assert_array_equal(out, nlmeans.denoise(plane, 15.0))
    assert summary["h"] == 15.0 and summary["mode"] == "fixed"
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1
    assert len(fractions) > len(STACK)


def test_layer_job_names_signal_dependent_noise():
    """The summary of a job on photon noise gives the variance curve that ran;
    its sigma is the stabilised image's, which the widget must not show."""
    from test_signal_dependent import photon_noise, scene

    noisy = np.clip(np.rint(photon_noise(scene((90, 60)), 4.0, 4.0, seed=10)), 0, 255)
    noisy = noisy.astype(np.uint8)
    result, summary = denoise_layer_data(noisy)
    settings = nlmeans.resolve(noisy)
    np.testing.assert_array_equal(result, nlmeans.denoise(noisy, settings=settings))
    assert summary["noise"] == "signal-dependent"
    assert summary["variance_curve"] == [list(curve) for curve in settings.variance_curve]
    (a, b), = settings.variance_curve
    assert noise_text(summary) == f"signal-dependent, variance {a:.3g}·x + {b:.3g}"
    white = denoise_layer_data(GREY)[1]
    assert white["noise"] == "white" and "variance_curve" not in white
    assert noise_text(white) == f"{white['sigma']:.3g}"


def test_layer_job_rgb():
    result, _ = denoise_layer_data(RGB, axes="Y, X", rgb=True)
    np.testing.assert_array_equal(result, nlmeans.denoise(RGB, channel_axis=-1))


def test_layer_job_rgba_keeps_its_alpha():
    alpha = (RNG.random(RGB.shape[:2]) * 255).astype(np.uint8)[..., None]
    result, _ = denoise_layer_data(np.concatenate([RGB, alpha], axis=-1), rgb=True)
    np.testing.assert_array_equal(result[..., :3], nlmeans.denoise(RGB, channel_axis=-1))
    np.testing.assert_array_equal(result[..., 3:], alpha)


def test_layer_job_cancelled_between_tiles():
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2  # after the job has started
    with pytest.raises(Cancelled):
        denoise_layer_data(STACK, axes="Y, X", cancelled=cancelled)
    assert len(calls) == 3


def test_layer_job_refuses_axes_the_layer_lacks():
    with pytest.raises(ValueError, match="cannot be denoised as T, Y, X"):
        denoise_layer_data(GREY, axes="T, Y, X")
