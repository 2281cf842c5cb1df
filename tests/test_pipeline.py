"""Settings resolved once, then run: resolve, Settings, the passes and their backend."""

import json

import numpy as np
import pytest

import nlmeans
from nlmeans import Pass, Settings
from nlmeans.methods.passes import run_passes
from reference import reference_nlmeans

RNG = np.random.default_rng(12)


def noisy_scene(shape, sigma=20.0, seed=0):
    """A smooth gradient with a bright square, plus Gaussian noise, in 0-255."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, n) for n in shape[:3] if n > 3], indexing="ij")
    clean = 60 + 120 * sum(grids) / len(grids)
    clean[tuple(slice(n // 4, n // 2) for n in clean.shape)] += 50
    if len(shape) > clean.ndim:  # colour: three differently scaled copies
        clean = np.stack([clean, 0.8 * clean + 20, 1.1 * clean - 10], axis=-1)
    return np.clip(clean + sigma * rng.standard_normal(clean.shape), 0, 255)


CASES = {
    "grey fixed": (lambda: noisy_scene((40, 44)), dict(h=12.0)),
    "grey uint8 auto": (lambda: noisy_scene((40, 44)).astype(np.uint8), {}),
    "grey uint8 sure": (lambda: noisy_scene((32, 30)).astype(np.uint8), dict(h="sure")),
    "rgb auto": (lambda: noisy_scene((30, 34, 3)), dict(channel_axis=-1)),
    "rgb first fixed chroma": (lambda: np.moveaxis(noisy_scene((30, 34, 3)), -1, 0),
                               dict(h=9.0, chroma_weight=0.5, channel_axis=0)),
    "volume auto": (lambda: noisy_scene((8, 18, 20)).astype(np.float32), {}),
    "grey float64 refine": (lambda: noisy_scene((30, 30)),
                            dict(h=10.0, sigma=15.0, refine=True, dtype=np.float64)),
}


@pytest.mark.parametrize("name", CASES)
def test_denoise_runs_exactly_what_resolve_decides(name):
    make, options = CASES[name]
    image = make()
    settings = nlmeans.resolve(image, **options)
    direct, report = nlmeans.denoise_with_report(image, **options)
    np.testing.assert_array_equal(nlmeans.denoise(image, settings=settings), direct)
    assert report.settings == settings
    # Only the settings are used: the same pixels through a JSON round trip.
    carried = Settings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert carried == settings
    np.testing.assert_array_equal(nlmeans.denoise(image, settings=carried), direct)


def test_settings_describe_automatic_mode():
    image = noisy_scene((48, 48)).astype(np.uint8)
    settings = nlmeans.resolve(image)
    assert settings.mode == "auto" and settings.sigma_estimated
    assert settings.data_range == 255.0 and settings.dtype == "float32"
    first, second = settings.passes
    assert (first.aggregation, first.centre_weight, first.guided) == ("patch", "max", False)
    assert first.sigma == settings.sigma and second.sigma == 0.0 and second.guided
    names = {"Settings": Settings, "Pass": Pass, "NoiseModel": nlmeans.NoiseModel}
    assert eval(repr(settings), names) == settings
    fixed = nlmeans.resolve(image, 10)
    assert fixed.passes == (Pass((2, 2), (7, 7), 10.0),) and fixed.data_range is None


def test_noise_free_image_resolves_to_no_pass():
    ramp = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    settings = nlmeans.resolve(ramp)
    assert settings.passes == () and settings.halo == (0, 0)
    np.testing.assert_array_equal(nlmeans.denoise(ramp, settings=settings), ramp)


def test_sure_settings_hold_the_chosen_h():
    image = noisy_scene((32, 30)).astype(np.uint8)
    _, report = nlmeans.denoise_with_report(image, "sure")
    settings = nlmeans.resolve(image, "sure")
    assert settings.passes[0].h == report.h == min(report.h_candidates, key=lambda c: c[1])[0]


def test_halo_adds_up_search_patch_and_aggregation():
    step = Pass((2, 1), (7, 5), 10.0, aggregation="patch")
    assert step.halo == (7 + 2 + 2, 5 + 1 + 1)
    assert Pass((2, 1), (7, 5), 10.0).halo == (9, 6)
    settings = Settings((step, Pass((1, 1), (10, 10), 3.0, guided=True)), 5.0, False, None)
    assert settings.halo == (11 + 11, 7 + 11)


@pytest.mark.parametrize("options, message", [
    (dict(h=10.0), "settings= fixes h"),
    (dict(patch_radius=1, sigma=3.0), "fixes patch_radius, sigma"),
    (dict(refine=False), "fixes refine"),
    (dict(dtype=np.float64), "dtype float64 contradicts"),
    (dict(channel_axis=0), "channel_axis 0 contradicts"),
])
def test_options_that_contradict_the_settings_are_refused(options, message):
    image = noisy_scene((20, 22, 3))
    settings = nlmeans.resolve(image, channel_axis=-1)
    with pytest.raises(ValueError, match=message):
        nlmeans.denoise(image, settings=settings, **options)
    # Options that agree are accepted: -1 and 2 are the same axis.
    np.testing.assert_array_equal(
        nlmeans.denoise(image, settings=settings, channel_axis=2, dtype=np.float32),
        nlmeans.denoise(image, settings=settings))


def test_settings_for_another_layout_are_refused():
    settings = nlmeans.resolve(noisy_scene((20, 22, 3)), channel_axis=-1)
    four = np.concatenate([noisy_scene((20, 22, 3)), noisy_scene((20, 22))[..., None]], -1)
    with pytest.raises(ValueError, match="settings are for 2-D images with 3 channel"):
        nlmeans.denoise(four, settings=settings)
    with pytest.raises(ValueError, match="with channel_axis must be 3-D"):
        nlmeans.denoise(noisy_scene((20, 22)), settings=settings)
    with pytest.raises(ValueError, match="must be an nlmeans.Settings"):
        nlmeans.denoise(noisy_scene((20, 22)), settings=settings.to_dict())


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="first pass has no previous result"):
        Settings((Pass((1, 1), (2, 2), 1.0, guided=True),), 1.0, False, None)
    with pytest.raises(ValueError, match="one per spatial axis"):
        Settings((Pass((1, 1, 1), (2, 2, 2), 1.0),), 1.0, False, None, n_spatial=2)
    with pytest.raises(ValueError, match="unknown settings fields: colour"):
        Settings.from_dict({**nlmeans.resolve(noisy_scene((20, 20)), 5).to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="method must be one of"):
        Settings((), 1.0, False, None, method="bm3d")


# Crop consistency: with the whole image's settings, a crop's result equals the
# whole image's away from the crop's edges by more than the halo.
CROPS = {
    "grey fixed": ((90, 100), None, dict(h=15.0, patch_radius=2, search_radius=5),
                   (slice(13, 80), slice(21, 97))),
    "grey auto": ((120, 110), None, {}, (slice(7, 110), slice(3, 101))),
    "rgb auto": ((70, 80, 3), -1, dict(channel_axis=-1), (slice(5, 66), slice(9, 75))),
    "rgb fixed": ((60, 64, 3), -1, dict(h=10.0, channel_axis=-1), (slice(4, 55), slice(2, 60))),
    "volume auto": ((26, 40, 38), None, {}, (slice(1, 25), slice(4, 38), slice(3, 36))),
    "volume fixed": ((20, 30, 30), None, dict(h=12.0, patch_radius=1, search_radius=2),
                     (slice(2, 19), slice(3, 28), slice(1, 29))),
}


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-5), (np.float64, 1e-11)])
@pytest.mark.parametrize("name", CROPS)
def test_crop_with_the_whole_images_settings_matches_away_from_its_edges(name, dtype, rtol):
    shape, channel_axis, options, crop = CROPS[name]
    image = noisy_scene(shape, seed=3)
    settings = nlmeans.resolve(image, dtype=dtype, **options)
    whole = nlmeans.denoise(image, settings=settings)
    part = nlmeans.denoise(image[crop], settings=settings)
    halo = settings.halo
    assert len(settings.passes) == (2 if channel_axis is None and not options.get("h") else 1)
    inner = tuple(slice(h, s.stop - s.start - h) for h, s in zip(halo, crop))
    assert all(s.stop - s.start > 0 for s in inner), "the crop is too small for its halo"
    expected = whole[crop][inner]
    np.testing.assert_allclose(part[inner], expected, rtol=rtol, atol=rtol * 255)
    # The whole point of carrying settings: a crop resolved on its own differs.
    if not options.get("h"):
        assert nlmeans.resolve(image[crop], dtype=dtype, **options) != settings


def reference_backend(values, guide, step, dtype, bounds, rounded):
    """One pass by the slow float64 reference (tests/reference.py)."""
    pad = (0,) * (3 - len(step.patch_radius))
    as_zyxc = np.moveaxis(values, 0, -1)
    out = reference_nlmeans(as_zyxc, step.h, pad + step.patch_radius, pad + step.search_radius,
                            step.sigma, step.aggregation, step.centre_weight,
                            None if guide is None else np.moveaxis(guide, 0, -1))
    out = np.clip(np.moveaxis(out, -1, 0), *bounds)
    return np.rint(out) if rounded else out


@pytest.mark.parametrize("shape, channel_axis, options", [
    ((14, 15), None, dict(sigma=12.0, h=9.0, refine=True, aggregation="patch",
                          centre_weight="max")),
    ((12, 13, 3), -1, dict(h=8.0, sigma=5.0, chroma_weight=0.5, aggregation="patch")),
])
def test_passes_on_the_reference_backend_match_the_kernel(shape, channel_axis, options):
    """The runner composes passes and the colour transform the same way whatever
    the backend: the float64 kernel and the slow reference agree."""
    image = noisy_scene(shape, seed=5)
    settings = nlmeans.resolve(image, channel_axis=channel_axis, dtype=np.float64, **options)
    volume = np.moveaxis(image, -1, 0)[:, None] if channel_axis is not None else image[None, None]
    bounds = (image.min(), image.max())
    fast = run_passes(volume, settings, bounds)
    slow = run_passes(volume, settings, bounds, backend=reference_backend)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9)
    assert len(settings.passes) == (2 if options.get("refine") else 1)


@pytest.mark.parametrize("shape, options", [((150, 60), {}), ((70, 50, 3), dict(channel_axis=-1)),
                                            ((64, 40, 3), dict(channel_axis=0, h=12.0)),
                                            ((40, 24, 20), dict(h=12.0, aggregation="patch"))])
def test_strips_give_the_whole_images_result(shape, options):
    from nlmeans.runners.strips import denoise_in_strips

    image = noisy_scene(shape, seed=8).astype(np.uint8)
    if options.get("channel_axis") == 0:
        image = np.ascontiguousarray(np.moveaxis(image, -1, 0))
    settings = nlmeans.resolve(image, **options)
    whole = nlmeans.denoise(image, settings=settings).astype(int)
    calls = []
    parts = denoise_in_strips(image, settings, 17, progress=lambda done, total:
                              calls.append((done, total)))
    assert parts.dtype == image.dtype
    np.testing.assert_array_equal(parts, whole)
    length = shape[0]
    assert calls[-1] == (length, length) and len(calls) == -(-length // 17)


def test_estimated_seconds_grow_with_the_window():
    from nlmeans.runners.strips import estimated_seconds

    small = nlmeans.resolve(np.zeros((1024, 1024)), 10.0, search_radius=7)
    huge = nlmeans.resolve(np.zeros((1024, 1024)), 10.0, search_radius=500)
    assert estimated_seconds(huge, (512, 512), 2) > 100 * estimated_seconds(small, (512, 512), 2)
    assert estimated_seconds(huge, (512, 512), 2) > 60  # the 7 minutes a user met


def _kernel_boxes(step, channels, shape, threads):
    """(weights, planes, rows, setups) the kernel makes, counted tile by tile and
    offset by offset from the boxes its own _offset_window gives."""
    from nlmeans.backends.cpu import kernel_layout
    from nlmeans.kernels import nlm

    patch, search, aggregation, tile, _ = kernel_layout(step, channels, shape, threads)
    offsets = nlm.half_offsets(search)
    shape3 = ((1,) + tuple(shape))[-3:]
    weights = planes = rows = setups = 0
    for z in range(0, shape3[0], tile[0]):
        for y in range(0, shape3[1], tile[1]):
            for x in range(0, shape3[2], tile[2]):
                size = tuple(min(t, n - s) + 2 * a for t, n, s, a in
                             zip(tile, shape3, (z, y, x), aggregation))
                start = tuple(s - a for s, a in zip((z, y, x), aggregation))
                for n in range(len(offsets)):
                    box = nlm._offset_window.py_func(offsets, n, start, size)[2]
                    weights += box[0] * box[1] * box[2]
                    if patch[0] > 0:  # _plane_sums: the box grown by the patch
                        planes += np.prod([b + 2 * p for b, p in zip(box, patch)])
                    rows += box[0] * box[1]
                    setups += 1
    return weights, planes, rows, setups


@pytest.mark.parametrize("shape, options", [
    ((70, 90), {"patch_radius": 1, "search_radius": 4}),
    ((40, 30), {"patch_radius": 2, "search_radius": 29, "aggregation": "pixel",
                "centre_weight": "one"}),
    ((300, 50), {"patch_radius": (1, 2), "search_radius": (3, 49), "aggregation": "patch",
                 "centre_weight": "one"}),
    ((20, 40, 300), {"patch_radius": 1, "search_radius": (2, 3, 4)}),
    ((20, 40, 30), {"patch_radius": 1, "search_radius": 2, "aggregation": "pixel",
                    "centre_weight": "one"}),
])
def test_the_cost_model_counts_the_kernels_work(shape, options):
    """The long-job estimate's work terms are the weights and rows the kernel
    makes, tile by tile: each tile's box of references grown by |t| (a window as
    wide as the image makes up to 4 times pairs x pixels weights)."""
    from nlmeans.api.jobs import kernel_work

    settings = nlmeans.resolve(np.zeros(shape), 10.0, refine=False, **options)
    for threads in (1, 2, 5):
        step = settings.passes[0]
        weights, planes, accumulations, rows, setups, fused, _ = kernel_work(step, 1, shape,
                                                                             threads)
        sweeps = 1 if fused else 2 if step.aggregation == "patch" else 1
        counted = _kernel_boxes(step, 1, shape, threads)
        assert (weights, planes, rows, setups) == tuple(
            c * k for c, k in zip(counted, (sweeps, sweeps, sweeps, 1)))
        assert (planes > 0) == (len(shape) == 3)
        pairs = (np.prod([2 * r + 1 for r in step.search_radius]) - 1) // 2
        assert accumulations == 2 * pairs * np.prod(shape)


def test_a_window_as_wide_as_the_image_costs_more_than_its_pairs():
    """The estimate of a window as wide as the image grows with the weights the
    kernel makes, not with the pairs alone (which said 119 s for a 10-minute job):
    on this image, 20 to 199 multiplies the pairs by 95 and the time by about 170
    (0.08 s and 12 to 14 s, benchmarks/estimate.py)."""
    from nlmeans.runners.strips import estimated_seconds

    image = np.zeros((200, 300))
    narrow = nlmeans.resolve(image, 20.0, patch_radius=3, search_radius=20)
    wide = nlmeans.resolve(image, 20.0, patch_radius=3, search_radius=199)
    pairs = (399 * 399 - 1) / (41 * 41 - 1)
    assert estimated_seconds(wide, image.shape, 2) > 1.5 * pairs * estimated_seconds(
        narrow, image.shape, 2)


def test_one_strip_reports_progress_over_its_tiles():
    """A job whose halo covers the image runs as one strip: its progress follows
    the kernel's tiles (before, one call at the very end), and the result is the
    whole image's."""
    from nlmeans.runners.strips import denoise_in_strips

    image = noisy_scene((300, 260), seed=9).astype(np.uint8)
    settings = nlmeans.resolve(image)  # two passes
    calls = []
    result = denoise_in_strips(image, settings, 10_000, progress=lambda done, total:
                               calls.append((done, total)))
    np.testing.assert_array_equal(result, nlmeans.denoise(image, settings=settings))
    assert len(calls) > 4 and calls[-1] == (300, 300)
    done = [d for d, _ in calls]
    assert done == sorted(done) and max(done[:-1]) < 300
