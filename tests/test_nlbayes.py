"""NL-Bayes (method="nlbayes"): the compiled steps against the NumPy reference,
determinism, the automatic parameters, the API and the command line."""

import os
from dataclasses import replace

import imageio.v3 as iio
import numpy as np
import pytest

import nlmeans
from nlmeans.methods.block_moves import BLOCK
from nlmeans.methods import nlbayes
from nlmeans.methods.nlbayes import bayes_steps, fitted_radii, run_bayes, run_step, step_tiles
from nlmeans.model.settings import BayesStep, Settings
from conftest import POLYU
from tests.reference_nlbayes import reference_step


def _smooth_noisy(shape, sigma, seed):
    """A smooth ramp-and-disc image (so that groups have structure) plus noise."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, n) for n in shape[-3:]], indexing="ij")
    clean = 100 + 80 * grids[-1] + 60 * (sum((g - 0.5) ** 2 for g in grids[-2:]) < 0.1)
    clean = np.broadcast_to(clean, shape)
    return clean + sigma * rng.standard_normal(shape)


def _reference(noisy, basic, step, frames=False, moves=None):
    spatial = noisy.shape[1:]
    patch = fitted_radii(step, spatial)
    search = (0,) + step.search_radius if len(step.search_radius) == 2 else step.search_radius
    stride = tuple(min(step.stride, 2 * p + 1) if p else 1 for p in patch)
    return reference_step(noisy, basic, step, patch, search, stride,
                          step_tiles(step, spatial, moves)[0], frames=frames, moves=moves,
                          block=BLOCK)


def _small_steps(n_spatial, sigma=20.0, group=10, tau=16.0):
    """Steps small enough for the reference: 3-wide patches, a 7-wide window."""
    return (BayesStep((1,) * n_spatial, (3,) * n_spatial, group, sigma, 1.0, 1.05, 0.0, 2),
            BayesStep((1,) * n_spatial, (3,) * n_spatial, group // 2, sigma, 1.0, 1.05, tau, 1,
                      guided=True))


@pytest.mark.parametrize("shape", [(1, 1, 150, 70), (3, 1, 40, 33), (1, 9, 12, 14)],
                         ids=["grey-tiles", "colour", "volume"])
@pytest.mark.parametrize("clamp", [False, True], ids=["paper", "clamped"])
def test_steps_equal_the_reference(shape, clamp):
    # 150 rows: three tiles of reference positions, two colours of the checkerboard.
    noisy = _smooth_noisy(shape, 20.0, 1)
    n_spatial = 3 if shape[1] > 1 else 2
    step1, step2 = _small_steps(n_spatial)
    step1 = replace(step1, clamp=clamp)
    basic = run_step(noisy, None, step1, np.float64)
    np.testing.assert_allclose(basic, _reference(noisy, None, step1), rtol=1e-9, atol=1e-7)
    final = run_step(noisy, basic, step2, np.float64)
    np.testing.assert_allclose(final, _reference(noisy, basic, step2), rtol=1e-9, atol=1e-7)
    assert np.abs(final - noisy).mean() > 5  # it did denoise


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "colour"])
def test_frame_steps_with_flat_patches_equal_the_reference(channels):
    """2-D patches over frames (a window of 3 frames): the paste trick marks a
    member's neighbours in its own frame only, since those in the next frame
    share none of its pixels (marking them had left the last frame to the
    groups of the frames before it)."""
    noisy = _smooth_noisy((channels, 5, 20, 22), 20.0, 4)
    step1, step2 = (replace(step, patch_radius=(0, 1, 1), search_radius=(1, 3, 3))
                    for step in _small_steps(3, group=64))
    basic = run_step(noisy, None, step1, np.float64)
    np.testing.assert_allclose(basic, _reference(noisy, None, step1), rtol=1e-9, atol=1e-7)
    final = run_step(noisy, basic, step2, np.float64)
    np.testing.assert_allclose(final, _reference(noisy, basic, step2), rtol=1e-9, atol=1e-7)


@pytest.mark.parametrize("lanes", [True, False], ids=["lanes", "checkerboard"])
@pytest.mark.parametrize("channels, depth", [(1, 0), (3, 0), (1, 1)],
                         ids=["grey", "colour", "grey-deep"])
def test_moved_windows_equal_the_reference(channels, depth, lanes, monkeypatch):
    """Frames whose content moves (a different move for each block and pair of
    frames, some beyond the border; blocks of 32 pixels, frames 70 x 40): each
    reference's candidates also hold the windows around where its block went,
    in the frames within the window's temporal radius, and the tiles are wide
    enough for them: run in lanes (few tiles a colour, small frames) and on the
    checkerboard."""
    if not lanes:
        monkeypatch.setattr(nlbayes, "LANE_POSITIONS", 0)
    noisy = _smooth_noisy((channels, 5, 70, 40), 20.0, 6)
    # Up to two frames each side: the window of radius 1 shifted inwards at the ends.
    moves = np.random.default_rng(3).integers(-12, 13, (5, 5, 3, 2, 2))
    moves[:, 2] = 0  # a frame's own
    step1, step2 = (replace(step, patch_radius=(depth, 1, 1), search_radius=(1, 3, 3))
                    for step in _small_steps(3, group=40))
    deep = depth > 0  # deep patches' references are taken ends first
    assert step_tiles(step1, noisy.shape[1:], moves)[1] == lanes
    basic = run_step(noisy, None, step1, np.float64, frames=deep, moves=moves)
    np.testing.assert_allclose(basic, _reference(noisy, None, step1, deep, moves),
                               rtol=1e-9, atol=1e-7)
    final = run_step(noisy, basic, step2, np.float64, frames=deep, moves=moves)
    np.testing.assert_allclose(final, _reference(noisy, basic, step2, deep, moves),
                               rtol=1e-9, atol=1e-7)
    assert not np.allclose(final, run_step(noisy, basic, step2, np.float64, frames=deep))
    # One move per frame (the blocks all alike) moves the windows otherwise.
    panned = np.repeat(np.repeat(moves[:, :, :1, :1], 3, axis=2), 2, axis=3)
    assert not np.allclose(final, run_step(noisy, basic, step2, np.float64, frames=deep,
                                           moves=panned))


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "colour"])
def test_frames_take_their_references_ends_first(channels):
    """Over frames (patches three frames deep, 7 frames) the references are taken
    along time ends first, as the reference takes them; a volume's in raster
    order, which gives other sums."""
    noisy = _smooth_noisy((channels, 7, 20, 22), 20.0, 5)
    step1, step2 = (replace(step, patch_radius=(1, 1, 1), search_radius=(1, 3, 3))
                    for step in _small_steps(3, group=40))
    basic = run_step(noisy, None, step1, np.float64, frames=True)
    np.testing.assert_allclose(basic, _reference(noisy, None, step1, frames=True), rtol=1e-9,
                               atol=1e-7)
    final = run_step(noisy, basic, step2, np.float64, frames=True)
    np.testing.assert_allclose(final, _reference(noisy, basic, step2, frames=True), rtol=1e-9,
                               atol=1e-7)
    volume = run_step(noisy, basic, step2, np.float64)
    np.testing.assert_allclose(volume, _reference(noisy, basic, step2), rtol=1e-9, atol=1e-7)
    assert np.abs(volume - final).max() > 1e-3


def test_a_group_cap_keeps_the_closest_of_the_patches_within_tau():
    """Step 2 with a tau that admits most of the window: with group_cap, a group
    with more patches than that within tau is the group_cap closest, as the
    reference takes it; without, it takes them all."""
    noisy = _smooth_noisy((1, 4, 20, 22), 20.0, 6)
    step1, step2 = (replace(step, patch_radius=(1, 1, 1), search_radius=(1, 3, 3))
                    for step in _small_steps(3, group=20, tau=400.0))
    basic = run_step(noisy, None, step1, np.float64, frames=True)
    capped = replace(step2, group_cap=20)
    final = run_step(noisy, basic, capped, np.float64, frames=True)
    np.testing.assert_allclose(final, _reference(noisy, basic, capped, frames=True), rtol=1e-9,
                               atol=1e-7)
    uncapped = run_step(noisy, basic, step2, np.float64, frames=True)
    assert np.abs(final - uncapped).max() > 1e-3


def test_automatic_steps_equal_the_reference():
    """The paper's grey parameters at sigma 25 (5x5 patches, groups of 45 from a
    23x23 window), on an image small enough for the reference."""
    noisy = _smooth_noisy((1, 1, 30, 36), 25.0, 2)
    step1, step2, _ = bayes_steps(25.0, 255.0, 1, 2)
    basic = run_step(noisy, None, step1, np.float64)
    np.testing.assert_allclose(basic, _reference(noisy, None, step1), rtol=1e-9, atol=1e-7)
    final = run_step(noisy, basic, step2, np.float64)
    np.testing.assert_allclose(final, _reference(noisy, basic, step2), rtol=1e-9, atol=1e-7)


def test_float32_path_agrees_with_float64():
    noisy = _smooth_noisy((1, 1, 64, 64), 20.0, 3)
    steps = _small_steps(2)
    settings = Settings(passes=steps, sigma=20.0, sigma_estimated=False, data_range=255.0,
                        method="nlbayes")
    wide = run_bayes(noisy, settings, (-np.inf, np.inf))
    narrow = run_bayes(noisy.astype(np.float32),
                       Settings.from_dict(settings.to_dict() | {"dtype": "float32"}),
                       (-np.inf, np.inf))
    assert narrow.dtype == np.float32
    # Float32 inputs can reorder near-equal distances; almost every pixel agrees closely.
    close = np.abs(narrow - wide) < 1e-2
    assert close.mean() > 0.99


def test_result_does_not_depend_on_the_threads():
    from numba import get_num_threads, set_num_threads

    noisy = _smooth_noisy((1, 1, 200, 150), 25.0, 4)[0, 0].astype(np.float32)
    threads = get_num_threads()
    try:
        set_num_threads(1)
        one = nlmeans.denoise(noisy, method="nlbayes", sigma=25.0)
        set_num_threads(max(2, threads) if threads > 1 else 1)
        many = nlmeans.denoise(noisy, method="nlbayes", sigma=25.0)
    finally:
        set_num_threads(threads)
    np.testing.assert_array_equal(one, many)


def test_flat_image_stays_flat():
    flat = np.full((40, 50), 77.0)
    noisy = flat + np.random.default_rng(5).standard_normal(flat.shape) * 5
    out = nlmeans.denoise(noisy, method="nlbayes", sigma=5.0)
    assert np.abs(out - 77).max() < 1.5  # the flat-area rule: group means
    np.testing.assert_array_equal(nlmeans.denoise(flat, method="nlbayes", sigma=5.0), flat)


def test_better_than_nlmeans_on_a_photograph():
    from skimage import data

    clean = data.camera()[100:228, 150:278].astype(np.float64)
    noisy = clean + 25 * np.random.default_rng(6).standard_normal(clean.shape)

    def psnr(x):
        return 10 * np.log10(255 ** 2 / np.mean((np.clip(x, 0, 255) - clean) ** 2))

    bayes = psnr(nlmeans.denoise(noisy, method="nlbayes"))
    assert bayes > psnr(nlmeans.denoise(noisy)) + 0.2
    assert bayes > psnr(noisy) + 8


def test_paper_parameters():
    step1, step2, step3 = bayes_steps(25.0, 255.0, 1, 2)
    # Step 2 repeated from sigma 20 on (grey), guided by its first result, without the
    # flat-area rule, with step 1's patches (5x5 at sigma 25, 7x7 from 30).
    assert step3 == replace(step2, flat_area=0.0)
    assert bayes_steps(40.0, 255.0, 1, 2)[2].patch_radius == (3, 3)
    assert len(bayes_steps(15.0, 255.0, 1, 2)) == 2
    assert (step1.patch_radius, step1.group_size, step1.search_radius, step1.stride) == \
        ((2, 2), 45, (11, 11), 2)
    assert (step2.patch_radius, step2.group_size, step2.search_radius) == ((2, 2), 25, (6, 6))
    assert step2.tau == 16.0 and step2.guided and not step1.guided
    # The rules read sigma in 8-bit units of the data range: 16-bit data, same steps.
    wide = bayes_steps(25.0 * 257, 65535.0, 1, 2)
    assert [s.group_size for s in wide] == [45, 25, 25]
    assert wide[1].tau == pytest.approx(16 * 257 ** 2)
    colour = bayes_steps(40.0, 255.0, 3, 2)
    assert colour[0].patch_radius == (2, 2) and colour[0].group_size == 75
    assert colour[1].beta == 1.2


def test_api_types_colour_and_volume():
    rng = np.random.default_rng(7)
    rgb = np.clip(_smooth_noisy((1, 1, 48, 40), 15, 8)[0, 0][..., None]
                  + rng.normal(0, 10, (48, 40, 3)), 0, 255).astype(np.uint8)
    out, report = nlmeans.denoise_with_report(rgb, method="nlbayes", channel_axis=-1)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert report.method == "nlbayes" and report.sigma_estimated
    volume = _smooth_noisy((1, 12, 20, 22), 15, 9)[0]
    settings = nlmeans.resolve(volume, method="nlbayes")
    assert settings.n_spatial == 3 and settings.passes[0].patch_radius == (1, 1, 1)
    assert nlmeans.Settings.from_dict(settings.to_dict()) == settings
    np.testing.assert_array_equal(nlmeans.denoise(volume, settings=settings),
                                  nlmeans.denoise(volume, method="nlbayes"))


@pytest.mark.parametrize("options, message", [
    (dict(h=10), "leave out h"),
    (dict(patch_radius=2), "leave out patch_radius"),
    (dict(refine=True), "leave out refine"),
    (dict(method="bm3d"), "method must be one of"),
    (dict(device="cuda"), "runs on the CPU"),
])
def test_bad_options(options, message):
    image = np.random.default_rng(0).random((32, 32))
    with pytest.raises(ValueError, match=message):
        nlmeans.denoise(image, **({"method": "nlbayes"} | options))


def test_no_noise_no_steps():
    image = np.tile(np.arange(32.0), (32, 1))
    settings = nlmeans.resolve(image, method="nlbayes", sigma=0)
    assert settings.passes == ()
    np.testing.assert_array_equal(nlmeans.denoise(image, settings=settings), image)


def test_dask_refuses_nlbayes():
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="needs the whole image in memory"):
        nlmeans.denoise(da.zeros((64, 64), chunks=32) + 1.0, method="nlbayes")


def test_command_line(tmp_path):
    import imageio.v3 as iio
    from click.testing import CliRunner

    from nlmeans_cli.main import cli

    noisy = np.clip(_smooth_noisy((1, 1, 60, 50), 20.0, 11)[0, 0], 0, 255).astype(np.uint8)
    source, out = tmp_path / "in.png", tmp_path / "out.png"
    iio.imwrite(source, noisy)
    result = CliRunner().invoke(cli, ["denoise", str(source), str(out), "--method", "nlbayes",
                                      "--report"])
    assert result.exit_code == 0, result.output
    assert "NL-Bayes step 1" in result.output and "NL-Bayes step 2" in result.output
    np.testing.assert_array_equal(iio.imread(out), nlmeans.denoise(noisy, method="nlbayes"))
    for extra in (["--h", "10"], ["--ds", "2"], ["--refine"], ["--device", "cuda"]):
        bad = CliRunner().invoke(cli, ["denoise", str(source), str(tmp_path / "x.png"),
                                       "--method", "nlbayes"] + extra)
        assert bad.exit_code == 2 and "--method nlbayes" in bad.output, bad.output
        assert not (tmp_path / "x.png").exists()


def test_first_run_says_it_compiles(monkeypatch, caplog):
    import logging

    from nlmeans.kernels import nlm as _kernels

    monkeypatch.setattr(_kernels, "will_compile", lambda dispatcher, arguments=None: True)
    with caplog.at_level(logging.INFO, logger="nlmeans"):
        nlmeans.denoise(_smooth_noisy((1, 1, 24, 24), 20.0, 12)[0, 0], method="nlbayes")
    assert caplog.text.count("compiling the NL-Bayes kernel (first run only") == 1


def test_progress_follows_the_tiles():
    from nlmeans.runners.block import denoise_block
    from nlmeans.methods.nlbayes import tile_count

    noisy = _smooth_noisy((1, 1, 300, 140), 25.0, 13)[0, 0]
    settings = nlmeans.resolve(noisy, method="nlbayes")
    calls = []
    result = denoise_block(noisy, settings, (noisy.min(), noisy.max()),
                           progress=lambda done, total: calls.append((done, total)))
    total = tile_count(settings, (1,) + noisy.shape)
    assert total > len(settings.passes)  # several tiles per step
    assert calls == [(i, total) for i in range(1, total + 1)]
    np.testing.assert_array_equal(result, nlmeans.denoise(noisy, settings=settings))


@pytest.mark.parametrize("size", range(1, 13))
@pytest.mark.parametrize("channels", [None, 3])
def test_tiny_images_run(size, channels):
    # Odd sizes 3, 5 and 7 hold a single patch position: a group of one patch,
    # whose second-step system has no factor (it raised ZeroDivisionError).
    shape = (size, size) if channels is None else (size, size, channels)
    image = (np.random.default_rng(size).random(shape) * 255).astype(np.uint8)
    out = nlmeans.denoise(image, method="nlbayes", sigma=20,
                          channel_axis=None if channels is None else -1)
    assert out.shape == image.shape and out.dtype == image.dtype


# Crops of real photos on which the first step's unclamped (C - beta sigma^2 I) C^-1
# wrote saturated, wrong-colour pixels: camera noise is weaker at a patch's high
# frequencies than the level it is measured at, so some of the group's
# eigenvalues lie below beta sigma^2 and got negative gains.
STRAY_PIXEL_PHOTOS = ["Canon5D2_5_160_3200_plug_11", "Canon5D2_5_200_3200_fruit_12",
                      "NikonD800_5_100_4000_flower_14"]


@pytest.mark.skipif(not os.path.isdir(POLYU), reason="the real-photo development set is absent")
@pytest.mark.parametrize("name", STRAY_PIXEL_PHOTOS)
def test_no_stray_pixels_on_real_photos(name):
    noisy = iio.imread(os.path.join(POLYU, name + "_real.JPG"))[:160, :160]
    clean = iio.imread(os.path.join(POLYU, name + "_mean.JPG"))[:160, :160].astype(int)
    out = nlmeans.denoise(noisy, channel_axis=-1, method="nlbayes")
    error = np.abs(out.astype(int) - clean).max(axis=-1)
    noisy_error = np.abs(noisy.astype(int) - clean).max(axis=-1)
    # Where the noisy pixel is within 60 grey levels of the clean one, so is the output.
    assert np.count_nonzero((error > 60) & (noisy_error <= 60)) == 0


def test_first_step_gains_stay_between_zero_and_one():
    """A group with fewer patches than dimensions (most eigenvalues of its
    covariance 0, far below the noise's): the kernel's first-step estimate
    equals the reference's and stays within the group's range, where a
    negative gain would throw patches beyond it."""
    from nlmeans.kernels.bayes import _clamped_estimate
    from tests.reference_nlbayes import _clamped_bayes

    rng = np.random.default_rng(3)
    n, d = 12, 25
    group = 100 + 10 * rng.standard_normal((n, d))
    out = np.empty((n, d))
    _clamped_estimate(group, n, d, 100.0, np.empty((n, d)), np.empty((d, d)), np.empty((d, d)),
                      out)
    np.testing.assert_allclose(out, _clamped_bayes(group, 100.0), atol=1e-9)
    assert out.min() >= group.min() and out.max() <= group.max()


@pytest.mark.parametrize("n, inner, width", [(1, 3, 5), (7, 6, 9), (12, 75, 75), (54, 54, 75),
                                             (5, 49, 49)])
def test_the_blocked_products_equal_numpy(n, inner, width):
    """The estimate's products, written in blocks of four rows and four matrix
    rows: counts and sizes that leave each remainder, and `out` given as `start`."""
    from nlmeans.kernels.bayes import _outer_sums, _subtract_products

    rng = np.random.default_rng(n)
    rows = rng.standard_normal((n + 2, inner + 3))  # wider and longer than used
    matrix = rng.standard_normal((inner + 1, width + 2))
    start = rng.standard_normal((n, width + 1))
    expected = start[:, :width] - 0.7 * rows[:n, :inner] @ matrix[:inner, :width]
    out = np.full((n, width + 1), np.nan)
    _subtract_products(start, rows, n, inner, width, 0.7, matrix, out)
    np.testing.assert_allclose(out[:, :width], expected, rtol=1e-12, atol=1e-12)
    _subtract_products(start, rows, n, inner, width, 0.7, matrix, start)  # in place
    np.testing.assert_allclose(start[:, :width], expected, rtol=1e-12, atol=1e-12)
    sums = np.full((inner, inner), np.nan)
    _outer_sums(rows, n, inner, sums)
    lower = np.tril_indices(inner)
    np.testing.assert_allclose(sums[lower], (rows[:n, :inner].T @ rows[:n, :inner])[lower],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("width", [1, 3, 4, 5, 7, 9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_window_distances_equal_numpys(dtype, width):
    """The squared differences of a reference patch and every patch of its
    window, summed over channels 1..2 of 3 and the patch's values, in the
    window's raster order (a window row at a time in the kernel, a patch row
    five, three or one values at a time: widths that take each and mixes), the
    window's last patches ending on the image's last column."""
    from nlmeans.kernels.bayes import _window_distances

    rng = np.random.default_rng(7)
    k, size = (2, 3, width), (3, 9, 11)
    image = rng.uniform(0, 255, (3, 6, 20, size[2] + width)).astype(dtype)
    ref, lo = (1, 4, 5), (0, 2, 1)
    dist = np.full(size[0] * size[1] * size[2] + 5, np.nan)
    _window_distances(image, 1, 3, ref, k, lo, size, dist)
    values = image.astype(np.float64)
    patch = values[1:3, ref[0]:ref[0] + k[0], ref[1]:ref[1] + k[1], ref[2]:ref[2] + k[2]]
    expected = [((values[1:3, z:z + k[0], y:y + k[1], x:x + k[2]] - patch) ** 2).sum()
                for z in range(lo[0], lo[0] + size[0]) for y in range(lo[1], lo[1] + size[1])
                for x in range(lo[2], lo[2] + size[2])]
    np.testing.assert_allclose(dist[:len(expected)], expected, rtol=1e-12)
    assert np.isnan(dist[len(expected):]).all()


@pytest.mark.parametrize("n", [5, 30, 74, 76, 200])
def test_the_estimate_equals_numpys_on_either_side_of_the_dimensions(n):
    """Step 2's estimate m + C (C + s I)^-1 (x - m), through the n x n system
    (fewer patches than the 75 dimensions) and the d x d one (more), equals
    NumPy's solve; the inverse from the Cholesky factor equals NumPy's too."""
    from nlmeans.kernels.bayes import _cholesky, _inverse_from_factor, bayes_estimate

    rng = np.random.default_rng(n)
    d, shrink = 75, 40.0
    model = 50 * rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) / 10
    noisy = model + 6 * rng.standard_normal((n, d))
    centred = model - model.mean(axis=0)
    covariance = centred.T @ centred / (n - 1)
    mean = noisy.mean(axis=0)
    gain = np.linalg.solve(covariance + shrink * np.eye(d), covariance)  # symmetric pair
    expected = mean + (noisy - mean) @ gain
    out = np.empty((n, d))
    scratch = [np.empty((max(n, d), d)) for _ in range(2)] + [np.empty((d, d)) for _ in range(2)]
    assert bayes_estimate(noisy, model, n, d, shrink, shrink, *scratch, out, np.zeros((0, 0)))
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)
    system = covariance + shrink * np.eye(d)
    factor, inverse = system.copy(), np.full((d, d), np.nan)
    assert _cholesky(factor, d)
    _inverse_from_factor(factor, d, inverse)
    np.testing.assert_allclose(inverse, np.linalg.inv(system), rtol=1e-9, atol=1e-12)
