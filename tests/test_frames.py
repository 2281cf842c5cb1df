"""Frames: the temporal search window (time_axis=) against the slow reference,
the automatic temporal mode against frame by frame, and the streamed run
(denoise_frames) against the one-call run, bit for bit."""

import json

import numpy as np
import pytest
from scipy import ndimage
from reference import reference_nlmeans

import nlmeans
import nlmeans.runners.frames as frames_module
from nlmeans import Settings, denoise, denoise_frames, resolve


def _pan(frames=9, size=(24, 28), step=(0.5, 1.5), seed=3):
    """A smooth random scene panned across by `step` pixels a frame, 0-255 floats."""
    rng = np.random.default_rng(seed)
    scene = ndimage.gaussian_filter(rng.random((size[0] + 40, size[1] + 40)), 2.0)
    scene = 255 * (scene - scene.min()) / np.ptp(scene)
    return np.stack([ndimage.shift(scene, (-step[0] * t, -step[1] * t), order=1,
                                   mode="nearest")[:size[0], :size[1]] for t in range(frames)])


def _noisy(clean, sigma, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    out = clean + sigma * rng.standard_normal(clean.shape)
    return np.clip(np.rint(out), 0, 255).astype(dtype)


def _psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((np.asarray(a, float) - b) ** 2))


@pytest.mark.parametrize("channels", [None, 2])
def test_temporal_window_matches_reference(channels):
    # 2-D patches, a window over 2 frames each side, the sequence mirrored at its ends.
    rng = np.random.default_rng(1)
    shape = (5, 7, 8) + ((channels,) if channels else ())
    seq = rng.random(shape) * 100
    out = denoise(seq, 40.0, patch_radius=1, search_radius=2, temporal_radius=2, time_axis=0,
                  channel_axis=-1 if channels else None, dtype=np.float64)
    volume = seq if channels else seq[..., None]
    expected = reference_nlmeans(volume, 40.0, (0, 1, 1), (2, 2, 2))
    np.testing.assert_allclose(out, expected if channels else expected[..., 0], rtol=1e-9)


def test_automatic_kind_of_passes_match_reference():
    # What automatic mode runs on frames (patch-wise, largest-weight centre, sigma
    # subtracted, a guided second pass), with small windows, as the reference
    # computes it; float frames are not clipped between the passes.
    seq = _noisy(_pan(frames=4, size=(9, 10)), 20).astype(np.float64)
    auto = resolve(seq, time_axis=0, dtype=np.float64)
    first, second = auto.passes
    assert first.patch_radius[0] == 0 and first.search_radius[0] >= 1 and second.guided
    first = nlmeans.Pass((0, 1, 1), (1, 2, 2), 12.0, 15.0, "patch", "max")
    second = nlmeans.Pass((0, 1, 1), (1, 2, 1), 6.0, 0.0, "patch", "max", guided=True)
    settings = Settings(passes=(first, second), sigma=15.0, sigma_estimated=False,
                        data_range=255.0, dtype="float64", n_spatial=3, time_axis=0)
    out = denoise(seq, settings=settings)
    options = dict(aggregation="patch", centre="max")
    step1 = reference_nlmeans(seq[..., None], 12.0, (0, 1, 1), (1, 2, 2), 15.0, **options)
    step2 = reference_nlmeans(seq[..., None], 6.0, (0, 1, 1), (1, 2, 1), 0.0, guide=step1,
                              **options)
    np.testing.assert_allclose(out, step2[..., 0], rtol=1e-9, atol=1e-9)


def test_time_axis_anywhere_gives_the_same_frames():
    seq = _noisy(np.stack([_pan(frames=6)] * 3, axis=-1), 15)  # (T, Y, X, C)
    expected = denoise(seq, time_axis=0, channel_axis=-1)
    moved = np.moveaxis(seq, 0, 2)  # (Y, X, T, C)
    out = denoise(moved, time_axis=2, channel_axis=3)
    np.testing.assert_array_equal(np.moveaxis(out, 2, 0), expected)
    settings = resolve(moved, time_axis=-2, channel_axis=-1)
    assert (settings.time_axis, settings.channel_axis) == (2, 3)
    np.testing.assert_array_equal(denoise(moved, settings=settings), out)


@pytest.mark.parametrize("step", [(0.5, 1.5), (0.0, 0.0)])
def test_temporal_automatic_beats_frame_by_frame(step):
    # Pans and a static scene: the neighbouring frames hold the same content,
    # so the wider window must gain clearly (measured about +1 dB on photographs).
    clean = _pan(frames=8, size=(48, 56), step=step)
    noisy = _noisy(clean, 20)
    single = np.stack([denoise(frame) for frame in noisy])
    temporal = denoise(noisy, time_axis=0)
    assert _psnr(temporal, clean) > _psnr(single, clean) + 0.5


def test_no_frame_meets_its_own_copy_in_the_padding():
    """Frames' padding (nlmeans.model.padding): within a frame's temporal window,
    no padded position reads the frame itself; a stream that does not know the
    length yet reads the same planes before the end."""
    from nlmeans.model.padding import flat_index

    for length in range(2, 14):
        for margin in range(1, length):
            for t in range(length):
                read = [flat_index(t + o, length, margin) for o in range(-margin, margin + 1)
                        if o and not 0 <= t + o < length]
                assert t not in read and all(0 <= i < length for i in read)
            for i in range(-margin, 0):
                if margin < length:
                    assert flat_index(i, None, margin) == flat_index(i, length, margin)

    # pad_volume: each plane the one flat_index reads, mirrored within itself.
    from nlmeans.model.padding import pad_volume

    values = np.random.default_rng(2).random((2, 5, 6, 7)).astype(np.float32)
    widths = [(0, 0), (3, 3), (2, 2), (1, 4)]
    mirrored = np.pad(values, [(0, 0), (0, 0), (2, 2), (1, 4)], mode="reflect")
    planes = [flat_index(i, 5, 3) for i in range(-3, 5 + 3)]
    np.testing.assert_array_equal(pad_volume(values, widths, (0, 1, 1), (0, 0, 0)),
                                  mirrored[:, planes])


@pytest.mark.parametrize("step", [(0.5, 1.5), (0.0, 0.0)])
def test_end_frames_do_not_flicker(step):
    """The 2nd and the second-to-last frames are denoised like their neighbours
    (mirroring the sequence put them into their own window twice: 3 dB worse)."""
    clean = _pan(frames=12, size=(48, 56), step=step)
    noisy = _noisy(clean, 20, seed=4)
    out = denoise(noisy, time_axis=0)
    per_frame = [_psnr(o, c) for o, c in zip(out, clean)]
    for end, neighbours in ((1, (0, 2)), (10, (9, 11))):
        assert per_frame[end] > np.mean([per_frame[n] for n in neighbours]) - 0.3, per_frame
    streamed = np.stack(list(denoise_frames(iter(noisy))))
    np.testing.assert_array_equal(streamed, out)


def test_settings_with_a_time_axis_round_trip_and_report():
    seq = _noisy(_pan(frames=5), 10)
    settings = resolve(seq, time_axis=0)
    again = Settings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings and again.time_axis == 0
    assert all(p.patch_radius[0] == 0 for p in settings.passes)
    _, report = nlmeans.denoise_with_report(seq, time_axis=0)
    assert report.settings.time_axis == 0


def test_fixed_h_gets_the_default_temporal_radius():
    seq = _noisy(_pan(frames=5), 10)
    settings = resolve(seq, 10, time_axis=0)
    assert settings.passes[0].patch_radius == (0, 2, 2)
    assert settings.passes[0].search_radius == (2, 7, 7)
    assert resolve(seq, 10, time_axis=0, temporal_radius=0).passes[0].search_radius == (0, 7, 7)
    # Radius 0 along time: each frame on its own, as 2-D images.
    single = np.stack([denoise(f, 10) for f in seq])
    np.testing.assert_array_equal(denoise(seq, 10, time_axis=0, temporal_radius=0), single)


@pytest.mark.parametrize("kwargs, message", [
    (dict(time_axis=0, channel_axis=None, shape=(5, 6)), "must be 3-D"),
    (dict(time_axis=2, channel_axis=2, shape=(4, 5, 3)), "must be 4-D"),
    (dict(time_axis=3, channel_axis=3, shape=(4, 5, 6, 3)), "must differ"),
    (dict(time_axis=5, channel_axis=None, shape=(4, 5, 6)), "time_axis must be in"),
    (dict(time_axis=1.0, channel_axis=None, shape=(4, 5, 6)), "time_axis must be an int"),
    (dict(temporal_radius=2, shape=(4, 5, 6)), "temporal_radius needs frames"),
    (dict(time_axis=0, temporal_radius=-1, shape=(4, 5, 6)), "temporal_radius"),
    (dict(time_axis=0, method="nlbayes", shape=(4, 5, 6, 7)), "not 4-D"),
])
def test_bad_frame_options_are_refused(kwargs, message):
    shape = kwargs.pop("shape")
    with pytest.raises(ValueError, match=message):
        denoise(np.zeros(shape, np.uint8) + 7, **kwargs)


def test_settings_for_frames_refuse_other_layouts():
    seq = _noisy(_pan(frames=5), 10)
    settings = resolve(seq, time_axis=0)
    with pytest.raises(ValueError, match="time_axis 1 contradicts"):
        denoise(seq, settings=settings, time_axis=1)
    with pytest.raises(ValueError, match="fixes temporal_radius"):
        denoise(seq, settings=settings, temporal_radius=1)
    with pytest.raises(ValueError, match="settings with a time axis"):
        Settings(passes=(), sigma=0.0, sigma_estimated=False, data_range=None, time_axis=0)


def test_dask_frames_are_refused():
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="denoise_frames"):
        denoise(da.zeros((4, 8, 8), chunks=4), time_axis=0)


@pytest.mark.parametrize("channels, aggregation, centre, tiles", [
    (None, "pixel", "one", ((8, 32, 256), (2, 16, 16), (1, 48, 32), (3, 64, 1024))),
    (3, "pixel", "one", ((8, 32, 256), (2, 16, 16), (1, 48, 32), (3, 64, 1024))),
    # the patch-wise path: any planes and rows, the same columns
    (None, "patch", "max", ((8, 32, 256), (2, 16, 256), (1, 48, 256), (3, 64, 256)))])
def test_frames_do_not_depend_on_their_tiles(monkeypatch, channels, aggregation, centre,
                                             tiles):
    """Frames give the same bytes with tiles of any planes and rows (multiples
    of ROW_RESTART), and on the fused path (pixel-wise, centre weight 1:
    OpenCV's Multi, fixed h) of any columns too (multiples of 16: a column
    tile of 20 moved 3 % of the values by an ulp, where the vectorised loops
    meet their scalar ends), so the tile that runs fastest can be chosen
    freely, and fewer rows given to more threads."""
    import nlmeans.backends.cpu as backend

    clean = _pan(frames=7, size=(40, 36))
    # float32 frames: float output, so that a sum made in another order shows
    seq = _noisy(np.stack([clean, clean[:, ::-1], clean[::-1]], axis=-1) if channels else clean,
                 20).astype(np.float32)
    options = dict(patch_radius=1, search_radius=3, temporal_radius=2, time_axis=0,
                   aggregation=aggregation, centre_weight=centre,
                   channel_axis=-1 if channels else None)
    results = []
    for tile in tiles:
        monkeypatch.setattr(backend, "_tile_shape", lambda *args, tile=tile, **kw: tile)
        results.append(denoise(seq, 25.0, **options))
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_noise_is_measured_on_the_first_frames_that_hold_enough_pixels(monkeypatch):
    """Large frames: the noise is measured on as many of the first frames as
    hold FRAME_PIXELS_MEASURED pixels (two 720p frames, one 1080p frame), in a
    streamed run as in one call."""
    from nlmeans.api import resolve as resolve_module
    assert resolve_module.measured_frames((720, 1280)) == 2
    assert resolve_module.measured_frames((1080, 1920)) == 1
    assert resolve_module.measured_frames((272, 640)) == resolve_module.FRAMES_MEASURED
    assert resolve_module.measured_frames((64, 2048, 2048)) == 1
    clean = _pan(frames=8)
    seq = np.concatenate([_noisy(clean[:3], 5), _noisy(clean[3:], 30, seed=1)])
    monkeypatch.setattr(resolve_module, "FRAME_PIXELS_MEASURED", 3 * clean[0].size)
    settings = resolve(seq, time_axis=0)
    assert settings.sigma == nlmeans.estimate_noise_model(seq[:3], levels=False).sigma
    assert 3 < settings.sigma < 7
    np.testing.assert_array_equal(np.stack(list(denoise_frames(seq))),
                                  denoise(seq, time_axis=0))


# --- streaming -------------------------------------------------------------

@pytest.mark.parametrize("batch", [1, 3, 16])
@pytest.mark.parametrize("colour", [False, True])
def test_streamed_frames_equal_the_one_call_run(batch, colour, monkeypatch):
    monkeypatch.setattr(frames_module, "MAX_BATCH", batch)
    clean = _pan(frames=19)
    seq = _noisy(np.stack([clean, clean[:, ::-1], clean[::-1]], axis=-1) if colour else clean,
                 20)
    axis = -1 if colour else None
    expected = denoise(seq, time_axis=0, channel_axis=axis)  # two passes on grey
    out = list(denoise_frames(iter(list(seq)), channel_axis=axis))
    assert len(out) == len(seq)
    np.testing.assert_array_equal(np.stack(out), expected)


@pytest.mark.parametrize("batch", [2, 16])
def test_streamed_photon_noise_frames_equal_the_one_call_run(batch, monkeypatch):
    """Signal-dependent noise: a stream runs its passes on the frames'
    variance-stabilising transform and maps the result back, as one call does
    (it had run them on the raw frames with the stabilised noise level of 1:
    21 dB where one call gave 35)."""
    monkeypatch.setattr(frames_module, "MAX_BATCH", batch)
    rng = np.random.default_rng(1)
    clean = _pan(frames=9) * 0.9 + 10
    seq = 4.0 * rng.poisson(clean / 4.0) + 2.0 * rng.standard_normal(clean.shape)
    expected = denoise(seq, time_axis=0, noise=(4.0, 4.0))
    out = np.stack(list(denoise_frames(seq, noise=(4.0, 4.0))))
    np.testing.assert_array_equal(out, expected)


def test_streamed_float_frames_equal_bit_for_bit():
    seq = _noisy(_pan(frames=12), 20).astype(np.float32) / 255
    options = dict(sigma=0.08, temporal_radius=3, dtype=np.float64)
    expected = denoise(seq, 0.05, time_axis=0, **options)
    out = np.stack(list(denoise_frames(seq, 0.05, **options)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("length", [1, 2, 3, 5, 9])
def test_short_sequences_stream_like_the_one_call_run(length):
    # Shorter than the windows' margin: the whole sequence runs in memory.
    seq = _noisy(_pan(frames=length), 20)
    expected = denoise(seq, time_axis=0)
    np.testing.assert_array_equal(np.stack(list(denoise_frames(seq))), expected)


def test_stream_holds_a_bounded_number_of_frames(monkeypatch):
    monkeypatch.setattr(frames_module, "MAX_BATCH", 2)
    seq = _noisy(_pan(frames=40, size=(16, 16)), 20)
    read = []

    def source():
        for frame in seq:
            read.append(1)
            yield frame

    settings = resolve(seq[:8], time_axis=0)
    halo = settings.halo[0]
    held = []
    for emitted, _ in enumerate(denoise_frames(source()), start=1):
        held.append(len(read) - emitted)
    # A batch in, its window's halo ahead, and one batch read ahead.
    assert max(held) <= 8 + 2 * 2 + 2 * halo
    assert len(held) == 40


def test_stream_with_given_settings_and_errors():
    seq = _noisy(_pan(frames=10), 20)
    moved = np.moveaxis(seq, 0, -1)  # (Y, X, T)
    settings = resolve(moved, time_axis=-1)
    out = np.stack(list(denoise_frames(seq, settings=settings)))
    np.testing.assert_array_equal(out, np.moveaxis(denoise(moved, settings=settings), -1, 0))
    with pytest.raises(ValueError, match="fixes h"):
        list(denoise_frames(seq, 10, settings=settings))
    with pytest.raises(ValueError, match="for frames"):
        list(denoise_frames(seq, settings=resolve(seq[0])))
    bad = list(seq[:9]) + [seq[0, :5]]
    with pytest.raises(ValueError, match="first's shape"):
        list(denoise_frames(bad))
    assert list(denoise_frames([])) == []


def test_stream_without_noise_returns_the_frames():
    seq = np.full((10, 8, 8), 9, np.uint8)
    out = list(denoise_frames(iter(seq)))
    np.testing.assert_array_equal(np.stack(out), seq)


# --- four axes: 4-D volumes and frames that are volumes -----------------------

@pytest.mark.parametrize("shape, patch, search, options, reference_options", [
    ((4, 5, 4, 5), (1, 1, 1, 1), (1, 1, 2, 1), dict(), dict()),
    ((3, 4, 3, 4), (1, 0, 1, 1), (1, 1, 1, 1),
     dict(aggregation="patch", centre_weight="max", sigma=10.0),
     dict(aggregation="patch", centre="max", sigma=10.0)),
])
def test_4d_volume_matches_reference(shape, patch, search, options, reference_options):
    rng = np.random.default_rng(4)
    volume = rng.random(shape) * 100
    out = denoise(volume, 30.0, patch_radius=patch, search_radius=search, dtype=np.float64,
                  **options)
    expected = reference_nlmeans(volume[..., None], 30.0, patch, search,
                                 **reference_options)[..., 0]
    np.testing.assert_allclose(out, expected, rtol=1e-9)
    single = denoise(volume.astype(np.float32), 30.0, patch_radius=patch, search_radius=search,
                     **options)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, expected, rtol=1e-4, atol=1e-3)  # float32 path


def test_4d_colour_volume_matches_reference():
    rng = np.random.default_rng(5)
    volume = rng.random((3, 4, 3, 4, 2)) * 100  # (W, Z, Y, X, C)
    out = denoise(np.moveaxis(volume, -1, 0), 40.0, patch_radius=1, search_radius=1,
                  channel_axis=0, dtype=np.float64)
    expected = reference_nlmeans(volume, 40.0, (1,) * 4, (1,) * 4)
    np.testing.assert_allclose(np.moveaxis(out, 0, -1), expected, rtol=1e-9)


def test_4d_automatic_mode_removes_noise():
    # A smooth 4-D field with white noise: one noise level measured plane by
    # plane, volume rules with 4-D patches.
    rng = np.random.default_rng(6)
    clean = 255 * ndimage.gaussian_filter(rng.random((6, 8, 20, 20)), 2.0)
    clean = (clean - clean.min()) / np.ptp(clean) * 200 + 20
    noisy = clean + 15 * rng.standard_normal(clean.shape)
    settings = resolve(noisy)
    assert settings.n_spatial == 4 and settings.passes[0].patch_radius == (1, 1, 1, 1)
    assert abs(settings.sigma - 15) < 2
    assert _psnr(denoise(noisy), clean) > _psnr(noisy, clean) + 6


def test_volume_frames_match_reference_and_stream():
    # (T, Z, Y, X): 3-D patches, the window also over the volumes before and after.
    rng = np.random.default_rng(7)
    seq = rng.random((4, 3, 4, 5)) * 100
    out = denoise(seq, 40.0, patch_radius=1, search_radius=1, temporal_radius=1, time_axis=0,
                  dtype=np.float64)
    expected = reference_nlmeans(seq[..., None], 40.0, (0, 1, 1, 1), (1, 1, 1, 1))[..., 0]
    np.testing.assert_allclose(out, expected, rtol=1e-9)
    settings = resolve(seq, time_axis=0)
    assert settings.passes[0].patch_radius[0] == 0 and settings.passes[0].search_radius[0] == 1
    streamed = np.stack(list(denoise_frames(list(seq))))
    np.testing.assert_array_equal(streamed, denoise(seq, time_axis=0))


def test_four_axes_refusals():
    with pytest.raises(ValueError, match="not 4-D"):
        denoise(np.zeros((3, 4, 5, 6)) + 1, method="nlbayes")
    with pytest.raises(ValueError, match="without channel_axis"):
        denoise(np.zeros((2, 3, 4, 5, 6)))


def test_scikit_image_4d_cases():
    # scikit-image's own 4-D NL-means cases, in our terms (patch_size 3 = radius 1,
    # patch_distance = search radius): a 4-D volume beats its 3-D slices, 3-D
    # with channels beats both; a 4-D volume with channels beats the noise.
    rng = np.random.default_rng(5)
    img = np.zeros((10, 10, 8, 5))
    img[2:-2, 2:-2, 2:-2, :2] = 0.5
    img[2:-2, 2:-2, 2:-2, 2:] = 1.0
    sigma = 0.3
    noisy = img + sigma * rng.standard_normal(img.shape)
    options = dict(patch_radius=1, search_radius=2, sigma=sigma)

    def psnr(out):
        return 10 * np.log10(1.0 / np.mean((out - img) ** 2))

    slices = np.stack([denoise(noisy[..., c], 0.3 * sigma, **options) for c in range(5)], -1)
    as_4d = denoise(noisy, 0.3 * sigma, **options)
    as_colour = denoise(noisy, 0.3 * sigma, channel_axis=-1, **options)
    assert psnr(noisy) < psnr(slices) < psnr(as_4d)
    assert psnr(slices) < psnr(as_colour)

    img = np.zeros((8, 8, 8, 4, 4))
    img[2:-2, 2:-2, 2:-2, 1:-1, :] = 1.0
    noisy = img + sigma * rng.standard_normal(img.shape)
    out = denoise(noisy, 0.35 * sigma, patch_radius=1, search_radius=3, sigma=sigma,
                  channel_axis=-1)
    assert psnr(out) > psnr(noisy)
