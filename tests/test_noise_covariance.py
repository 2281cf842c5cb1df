"""NL-Bayes with the noise's covariance (noise=<a sample of the noise>): the
autocovariance and patch covariance against loops, the compiled steps against
the NumPy reference written with C_N, the white case, the API and its errors."""

from dataclasses import replace

import numpy as np
import pytest

import nlmeans
from nlmeans.methods.nlbayes import fitted_radii, run_step, tile_shape
from nlmeans.model.covariance import MAX_LAG, noise_autocovariance, patch_covariance
from nlmeans.model.settings import BayesStep, Settings
from tests.reference_nlbayes import reference_step


def _correlated_noise(shape, level, seed):
    """White noise blurred by a 3x3 binomial kernel (neighbours correlated
    about 0.6), scaled to `level`, over the first two axes of `shape`."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((shape[0] + 2, shape[1] + 2) + tuple(shape[2:]))
    kernel = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    out = sum(kernel[i, j] * white[i:i + shape[0], j:j + shape[1]]
              for i in range(3) for j in range(3))
    return level * out / out.std()


def test_autocovariance_equals_the_products_it_averages():
    sample = np.random.default_rng(1).standard_normal((40, 37, 3))
    autocov = noise_autocovariance(sample, colour=False)
    centred = sample - sample.mean(axis=(0, 1))
    for dy, dx, a, b in [(0, 0, 0, 0), (2, -3, 1, 2), (-6, 6, 2, 0), (1, 0, 0, 1)]:
        total, count = 0.0, 0
        for y in range(40):
            for x in range(37):
                if 0 <= y + dy < 40 and 0 <= x + dx < 37:
                    total += centred[y, x, a] * centred[y + dy, x + dx, b]
                    count += 1
        assert autocov[a, b, dy + MAX_LAG, dx + MAX_LAG] == pytest.approx(total / count)


def test_patch_covariance_is_the_autocovariance_at_each_offset():
    autocov = noise_autocovariance(_correlated_noise((64, 64, 2), 5.0, 2), colour=False)
    covariance = patch_covariance(autocov, (1, 3, 5))
    offsets = [(y, x) for y in range(3) for x in range(5)]
    for a in range(2):
        for b in range(2):
            for i, (y1, x1) in enumerate(offsets):
                for j, (y2, x2) in enumerate(offsets):
                    expected = (autocov[a, b, y2 - y1 + MAX_LAG, x2 - x1 + MAX_LAG]
                                + autocov[b, a, y1 - y2 + MAX_LAG, x1 - x2 + MAX_LAG]) / 2
                    assert covariance[a * 15 + i, b * 15 + j] == pytest.approx(expected)
    np.testing.assert_array_equal(covariance, covariance.T)
    assert np.linalg.eigvalsh(covariance).min() > 0


def test_patches_over_frames_have_independent_planes():
    """Frames' noise is independent from frame to frame: a patch three frames deep
    has the 2-D covariance within each plane and none across planes."""
    autocov = noise_autocovariance(_correlated_noise((64, 64, 2), 5.0, 3), colour=False)
    plane = patch_covariance(autocov, (1, 3, 3))
    deep = patch_covariance(autocov, (3, 3, 3))
    offsets = [(z, y, x) for z in range(3) for y in range(3) for x in range(3)]
    for a in range(2):
        for b in range(2):
            for i, (z1, y1, x1) in enumerate(offsets):
                for j, (z2, y2, x2) in enumerate(offsets):
                    expected = plane[a * 9 + y1 * 3 + x1, b * 9 + y2 * 3 + x2] if z1 == z2 else 0
                    assert deep[a * 27 + i, b * 27 + j] == expected
    assert np.linalg.eigvalsh(deep).min() > 0


def _steps(sigma=12.0):
    return (BayesStep((1, 1), (3, 3), 12, sigma, 1.0, 1.05, 0.0, 2),
            BayesStep((1, 1), (3, 3), 8, sigma, 1.0, 1.05, 16.0, 1, guided=True))


def _image(channels, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:70, :44]
    clean = 100 + 60 * np.sin(x / 5.0) + 40 * (((y - 35) ** 2 + (x - 22) ** 2) < 150)
    noise = _correlated_noise((70, 44, channels), 12.0, seed)
    noisy = clean[..., None] + noise
    return np.moveaxis(noisy, -1, 0)[:, None], rng


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("clamp", [False, True], ids=["paper", "clamped"])
def test_steps_with_a_covariance_equal_the_reference(channels, clamp):
    noisy, _ = _image(channels, 3)
    autocov = noise_autocovariance(_correlated_noise((80, 80, channels), 12.0, 4),
                                   colour=False)
    step1, step2 = _steps()
    step1 = replace(step1, clamp=clamp)
    spatial = noisy.shape[1:]
    patch = fitted_radii(step1, spatial)
    covariance = patch_covariance(autocov, tuple(2 * p + 1 for p in patch))
    stride = tuple(min(step1.stride, 2 * p + 1) if p else 1 for p in patch)
    basic = run_step(noisy, None, step1, np.float64, covariance=covariance)
    expected = reference_step(noisy, None, step1, patch, (0, 3, 3), stride,
                              tile_shape(step1, spatial), covariance)
    np.testing.assert_allclose(basic, expected, rtol=1e-8, atol=1e-6)
    final = run_step(noisy, basic, step2, np.float64, covariance=covariance)
    expected = reference_step(noisy, basic, step2, patch, (0, 3, 3), (1, 1, 1),
                              tile_shape(step2, spatial), covariance)
    np.testing.assert_allclose(final, expected, rtol=1e-8, atol=1e-6)
    assert np.abs(final - basic).mean() > 0.1 and np.abs(basic - noisy).mean() > 1


def test_white_covariance_gives_the_white_steps():
    noisy, _ = _image(1, 5)
    step1, step2 = _steps()
    white = 12.0 ** 2 * np.eye(9)
    for clamp in (False, True):
        first = replace(step1, clamp=clamp)
        plain = run_step(noisy, None, first, np.float64)
        whitened = run_step(noisy, None, first, np.float64, covariance=white)
        np.testing.assert_allclose(whitened, plain, rtol=1e-9, atol=1e-7)
    plain = run_step(noisy, plain, step2, np.float64)
    np.testing.assert_allclose(run_step(noisy, whitened, step2, np.float64, covariance=white),
                               plain, rtol=1e-9, atol=1e-7)


def _photo_with_correlated_noise(colour):
    from skimage import data

    clean = (data.astronaut()[100:260, 150:310] if colour
             else data.camera()[100:260, 150:310]).astype(np.float64)
    shape = clean.shape
    noisy = clean + _correlated_noise(shape if colour else shape + (1,), 10.0, 6) \
        .reshape(shape)
    # Another realisation of the same noise: what two shots' difference / sqrt 2 gives.
    sample = _correlated_noise((96, 96) + shape[2:] if colour else (96, 96, 1), 10.0, 7)
    return clean, noisy, sample.reshape((96, 96) + shape[2:])


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
def test_a_noise_sample_beats_the_blind_model_on_correlated_noise(colour):
    clean, noisy, sample = _photo_with_correlated_noise(colour)
    axis = -1 if colour else None

    def psnr(x):
        return 10 * np.log10(255 ** 2 / np.mean((np.clip(x, 0, 255) - clean) ** 2))

    blind = psnr(nlmeans.denoise(noisy, channel_axis=axis, method="nlbayes"))
    known = psnr(nlmeans.denoise(noisy, channel_axis=axis, method="nlbayes", noise=sample))
    assert known > blind + 0.3, (known, blind)


def test_settings_carry_the_covariance_through_json():
    import json

    _, noisy, sample = _photo_with_correlated_noise(True)
    settings = nlmeans.resolve(noisy, channel_axis=-1, method="nlbayes", noise=sample)
    assert np.asarray(settings.noise_covariance).shape == (3, 3, 13, 13)
    assert "lags up to 6" in repr(settings) and len(repr(settings)) < 3000
    again = Settings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings
    np.testing.assert_array_equal(nlmeans.denoise(noisy, channel_axis=-1, settings=again),
                                  nlmeans.denoise(noisy, channel_axis=-1, method="nlbayes",
                                                  noise=sample))
    # NL-means takes the sample's level only.
    plain = nlmeans.resolve(noisy, channel_axis=-1, noise=sample)
    assert plain.noise_covariance is None and plain.sigma == settings.sigma


def test_frames_take_a_noise_sample():
    clean, _, sample = _photo_with_correlated_noise(False)
    frames = np.stack([clean[:64, :64]] * 4) + _correlated_noise((64, 64, 4), 10.0, 8) \
        .transpose(2, 0, 1)
    out = nlmeans.denoise(frames, time_axis=0, method="nlbayes", noise=sample)
    assert np.mean((out - clean[:64, :64]) ** 2) < 0.5 * np.mean((frames - clean[:64, :64]) ** 2)


@pytest.mark.parametrize("sample, options, message", [
    (np.zeros((40, 40)), {}, "has no noise"),
    (np.ones((20, 40)), {}, "at least 32 x 32"),
    (np.full((40, 40), np.nan), {}, "NaN"),
    (np.ones((40, 40, 3)), {}, "2-D array, got shape"),
    (np.random.default_rng(0).standard_normal((40, 40)), {"sigma": 3.0}, "give the noise once"),
])
def test_bad_noise_samples_are_refused(sample, options, message):
    image = np.random.default_rng(1).standard_normal((48, 48)) * 10 + 100
    with pytest.raises(ValueError, match=message):
        nlmeans.denoise(image, method="nlbayes", noise=sample, **options)


def test_a_noise_sample_is_refused_for_volumes():
    volume = np.random.default_rng(2).standard_normal((8, 40, 40))
    with pytest.raises(ValueError, match="2-D images and frames, not volumes"):
        nlmeans.denoise(volume, method="nlbayes", noise=volume[0])


def test_command_line_noise_sample(tmp_path):
    import imageio.v3 as iio
    import tifffile
    from click.testing import CliRunner

    from nlmeans.io import read_array
    from nlmeans_cli.main import cli

    _, noisy, sample = _photo_with_correlated_noise(True)
    iio_path, sample_path = tmp_path / "noisy.png", tmp_path / "noise.tif"
    iio.imwrite(iio_path, np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
    tifffile.imwrite(sample_path, sample.astype(np.float32), photometric="rgb")

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args])

    result = run("denoise", iio_path, tmp_path / "out.png", "--method", "nlbayes",
                 "--noise-sample", sample_path, "--report")
    assert result.exit_code == 0, result.output
    assert "measured on the noise sample" in result.output
    assert "covariance over its patches" in result.output
    expected = nlmeans.denoise(read_array(iio_path), channel_axis=-1, method="nlbayes",
                               noise=sample.astype(np.float32))
    np.testing.assert_array_equal(read_array(tmp_path / "out.png"), expected)
    for args, message in [(("--sigma", "3"), "leave out --noise and --sigma"),
                          (("--noise", "gaussian"), "leave out --noise and --sigma")]:
        result = run("denoise", iio_path, tmp_path / "x.png", "--noise-sample", sample_path,
                     *args)
        assert result.exit_code == 2 and message in result.output
    result = run("denoise", iio_path, tmp_path / "x.png", "--noise-sample", tmp_path / "no.tif")
    assert result.exit_code == 2 and "no such file" in result.output
    grey = tmp_path / "grey.tif"
    tifffile.imwrite(grey, sample[..., 0].astype(np.float32))
    result = run("denoise", iio_path, tmp_path / "x.png", "--noise-sample", grey)
    assert result.exit_code != 0 and "with the 3 channels last" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.png").exists()


def test_noise_sample_command_from_two_shots(tmp_path):
    import imageio.v3 as iio
    import tifffile
    from click.testing import CliRunner

    from nlmeans_cli.main import cli

    clean, _, _ = _photo_with_correlated_noise(True)
    shots = [clean + _correlated_noise(clean.shape, 6.0, seed) for seed in (11, 12)]
    paths = [tmp_path / "a.tif", tmp_path / "b.tif"]
    for path, shot in zip(paths, shots):
        tifffile.imwrite(path, shot.astype(np.float32), photometric="rgb")

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args])

    result = run("noise-sample", *paths, tmp_path / "noise.tif")
    assert result.exit_code == 0, result.output
    sample = tifffile.imread(tmp_path / "noise.tif")
    assert sample.dtype == np.float32
    np.testing.assert_allclose(sample, (shots[0] - shots[1]) / np.sqrt(2), rtol=1e-5, atol=1e-4)
    # The difference over sqrt 2 has the noise's level and its neighbours' correlation.
    assert np.std(sample) == pytest.approx(6.0, rel=0.05)
    autocov = noise_autocovariance(sample, colour=False)
    assert autocov[0, 0, MAX_LAG, MAX_LAG + 1] / autocov[0, 0, MAX_LAG, MAX_LAG] > 0.5
    iio.imwrite(tmp_path / "grey.png", clean[..., 0].astype(np.uint8))
    for args, message in [((paths[0], tmp_path / "grey.png", tmp_path / "x.tif"), "one shape"),
                          ((*paths, tmp_path / "x.png"), "name it .tif"),
                          ((*paths, tmp_path / "noise.tif"), "already exists"),
                          ((*paths, paths[0], "--overwrite"), "is the INPUT"),
                          ((*paths, paths[1], "--overwrite"), "is the INPUT")]:
        result = run("noise-sample", *args)
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "x.png").exists()
    # Neither shot was overwritten.
    for path, shot in zip(paths, shots):
        np.testing.assert_array_equal(tifffile.imread(path), shot.astype(np.float32))
