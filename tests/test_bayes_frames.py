"""NL-Bayes over space and time: frames run in blocks with context, the stream
equals the one-call run, and the temporal groups gain over frame by frame."""

import os
from dataclasses import replace
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner

import nlmeans
import nlmeans.methods.nlbayes as nlbayes
from nlmeans import denoise, denoise_frames, resolve
from nlmeans.methods.nlbayes import frame_block, frame_blocks, frame_context, run_bayes
from nlmeans_cli.main import cli
from test_frames import _noisy, _pan, _psnr


@pytest.mark.parametrize("sigma", [10, 25, 40])
def test_frame_steps_are_the_image_steps_over_nine_frames(sigma):
    """Small frames' window spans four frames before and after (step 1's one
    from sigma 30 on, 8-bit units, as wide in each as the image's over sqrt(3),
    made odd); step 1's groups are three times the
    image's, the later steps' (which group on a pilot) twice, a narrower
    window's too, and their tau a fifth of sigma (8-bit units) where images
    take the paper's 16; grey frames repeat step 2 at
    every noise level, where grey images do it from sigma 20 on, and their
    patches are three frames deep (colour frames': one), with planes of 5 x 5 at
    most (images take 7 x 7 in strong noise: sigma 40), but in the repeat from
    sigma 30 on, which keeps step 1's 2-D patches; grey frames' later steps cap
    the patches within tau at four times the group, times (sigma / 20)^2 from
    sigma 20 on."""
    seq = _noisy(_pan(frames=6, size=(40, 44)), 20)
    settings = resolve(seq, time_axis=0, method="nlbayes", sigma=sigma)
    image = resolve(seq[0], method="nlbayes", sigma=sigma)
    assert settings.time_axis == 0 and len(settings.passes) == 3
    assert len(image.passes) == (2 if sigma < nlbayes.THIRD_STEP_FROM else 3)
    image_steps = image.passes + (image.passes[1],) * (3 - len(image.passes))
    repeat = settings.passes[2]
    assert repeat.guided and repeat.flat_area == 0.0
    deep_repeat = sigma < nlbayes.FRAME_DEEP_REPEAT_BELOW
    if not deep_repeat:
        assert repeat.patch_radius == (0,) + image.passes[0].patch_radius
    for i, (frames_step, image_step) in enumerate(zip(settings.passes, image_steps)):
        if i < 2 or deep_repeat:
            assert frames_step.patch_radius == (1,) + tuple(min(r, 2)
                                                            for r in image_step.patch_radius)
        near = i == 0 and sigma >= nlbayes.FRAME_NEAR_STEP_1_FROM  # step 1 in strong noise
        # There its window over three frames holds about the image window's positions.
        spatial = tuple(round((2 * r + 1) / 3 ** 0.5) // 2 for r in image_step.search_radius) \
            if near else image_step.search_radius
        assert frames_step.search_radius == (1 if near else 4,) + spatial
        if near:
            positions = 3 * (2 * spatial[0] + 1) ** 2
            assert 0.8 < positions / (2 * image_step.search_radius[0] + 1) ** 2 < 1.2
        assert frames_step.group_size == (3 if i == 0 else 2) * image_step.group_size
        assert frames_step.tau == (sigma / 5 if i else 0.0)
        assert i == 0 or frames_step.tau != image_step.tau
        cap = int(4 * frames_step.group_size * max(1.0, (sigma / 20) ** 2))
        assert frames_step.group_cap == (cap if i else 0)
    colour = resolve(np.stack([seq] * 3, axis=-1), time_axis=0, channel_axis=-1,
                     method="nlbayes", sigma=sigma)
    assert [step.patch_radius[0] for step in colour.passes] == [0] * len(colour.passes)
    assert [step.group_cap for step in colour.passes] == [0] * len(colour.passes)
    wider = resolve(seq, time_axis=0, method="nlbayes", sigma=sigma, temporal_radius=2)
    assert [step.search_radius[0] for step in wider.passes] == [
        1 if sigma >= nlbayes.FRAME_NEAR_STEP_1_FROM else 2, 2, 2]
    assert [step.group_size for step in wider.passes] == [
        step.group_size for step in settings.passes]


@pytest.mark.parametrize("block, radius", [(16, 1), (3, 1), (3, 4)])
def test_frames_run_in_blocks_with_their_context(block, radius, monkeypatch):
    """The one-call run is each block's frames of NL-Bayes run on the block and
    the frames its window reaches, as one volume."""
    monkeypatch.setattr(nlbayes, "MAX_FRAME_BLOCK", block)
    seq = _noisy(_pan(frames=14, size=(36, 40)), 20).astype(np.float64)
    settings = resolve(seq, time_axis=0, method="nlbayes", dtype=np.float64,
                       temporal_radius=radius)
    out = denoise(seq, settings=settings)
    values = seq[None]
    context = frame_context(settings)
    assert context == radius + 2  # the window's frames and the patch's two more
    blocks = frame_blocks(len(seq), frame_block(settings, seq[0].size), context)
    assert len(blocks) == -(-len(seq) // block)
    for start, stop, first, last in blocks:
        part = run_bayes(values[:, first:last], settings, (-np.inf, np.inf))  # floats: unclipped
        np.testing.assert_array_equal(out[start:stop], part[0, start - first:stop - first])


@pytest.mark.parametrize("length, block, colour", [(9, 16, False), (9, 2, True), (1, 4, False),
                                                   (2, 1, False), (5, 3, True)])
def test_streamed_nlbayes_frames_equal_the_one_call_run(length, block, colour, monkeypatch):
    monkeypatch.setattr(nlbayes, "MAX_FRAME_BLOCK", block)
    clean = _pan(frames=length, size=(32, 36))
    if colour:
        clean = np.stack([clean, clean[:, ::-1], 255 - clean], axis=-1)
    seq = _noisy(clean, 15, seed=length)
    axis = -1 if colour else None
    one = denoise(seq, time_axis=0, channel_axis=axis, method="nlbayes")
    streamed = np.stack(list(denoise_frames(iter(seq), channel_axis=axis, method="nlbayes")))
    assert streamed.dtype == seq.dtype
    np.testing.assert_array_equal(streamed, one)


def test_streamed_photon_noise_frames_equal_the_one_call_run(monkeypatch):
    """With a variance curve the blocks run on the stabilised frames, as one call does."""
    monkeypatch.setattr(nlbayes, "MAX_FRAME_BLOCK", 2)
    rng = np.random.default_rng(1)
    clean = _pan(frames=7, size=(32, 36)) * 0.9 + 10
    seq = 4.0 * rng.poisson(clean / 4.0) + 2.0 * rng.standard_normal(clean.shape)
    one = denoise(seq, time_axis=0, method="nlbayes", noise=(4.0, 4.0))
    streamed = np.stack(list(denoise_frames(seq, method="nlbayes", noise=(4.0, 4.0))))
    np.testing.assert_array_equal(streamed, one)


def test_stream_holds_a_block_and_its_context(monkeypatch):
    monkeypatch.setattr(nlbayes, "MAX_FRAME_BLOCK", 2)
    seq = _noisy(_pan(frames=20, size=(16, 16)), 20)
    read = []

    def source():
        for frame in seq:
            read.append(1)
            yield frame

    ahead = [len(read) - emitted for emitted, _ in
             enumerate(denoise_frames(source(), method="nlbayes"), start=1)]
    # The first 8 frames measure the noise; then a block of 2 and its 3 frames of context
    # (the window's frame and the patches' two more).
    assert max(ahead[8:]) <= 2 + 3 and len(ahead) == 20


def test_blocks_shrink_with_the_frames_memory():
    settings = resolve(_noisy(_pan(frames=4, size=(24, 24)), 20), time_axis=0, method="nlbayes")
    assert frame_block(settings, 640 * 272 * 3) == nlbayes.MAX_FRAME_BLOCK
    hd = frame_block(settings, 1920 * 1080 * 3)
    assert 1 <= hd < nlbayes.MAX_FRAME_BLOCK
    frames = hd + 2 * frame_context(settings)
    assert frames * nlbayes._BYTES_PER_VALUE * 1920 * 1080 * 3 <= nlbayes.FRAME_BLOCK_BYTES \
        or hd == 1


def test_a_steps_memory_per_value_is_within_the_blocks_estimate():
    """A step's allocations per value (colour frames, the division of its sums
    included) stay within what frame_block counts, with room for the caller's
    float32 stack and 8-bit frames. Per value: the growth from 2 to 4 frames,
    which leaves out the kernel's fixed scratch. The division alone once took 16
    bytes a value of temporaries, and a step 35."""
    import tracemalloc

    grey = _pan(frames=4, size=(96, 128))
    seq = _noisy(np.stack([grey, 0.8 * grey + 20, 255 - grey], axis=-1), 20)
    settings = resolve(seq, time_axis=0, channel_axis=-1, method="nlbayes")
    step = settings.passes[1]
    values = np.ascontiguousarray(np.moveaxis(seq, -1, 0), np.float32)
    peaks = []
    for frames in (2, 4, 2):  # the first run compiles
        noisy = np.ascontiguousarray(values[:, :frames])
        basic = noisy + 1
        tracemalloc.start()
        try:
            nlbayes.run_step(noisy, basic, step, np.float32)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    per_value = (peaks[1] - peaks[2]) / (values.size - values[:, :2].size)
    # Beyond its inputs: the float64 numerator, the per-pixel weight, the result.
    assert per_value <= 8 + 8 / 3 + 4 + 0.5
    assert 2 * 4 + per_value + 4 + 1 <= nlbayes._BYTES_PER_VALUE


def test_estimates_divide_the_sums_where_covered():
    rng = np.random.default_rng(3)
    num = rng.uniform(0, 50, (3, 2, 5, 7))
    weight = rng.uniform(0.5, 2, (2, 5, 7))
    weight[0, 1, :3] = 0.0
    fallback = rng.uniform(0, 255, num.shape).astype(np.float32)
    out = nlbayes._estimates(num, weight, fallback, np.float32)
    expected = np.where(weight > 0, num / np.where(weight > 0, weight, 1.0), fallback)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected.astype(np.float32))


@pytest.mark.parametrize("step", [(0.5, 1.5), (0.0, 0.0)])
def test_temporal_nlbayes_beats_frame_by_frame(step):
    clean = _pan(frames=8, size=(48, 56), step=step)
    noisy = _noisy(clean, 20, seed=2)
    single = np.stack([denoise(frame, method="nlbayes") for frame in noisy])
    temporal = denoise(noisy, time_axis=0, method="nlbayes")
    assert _psnr(temporal, clean) > _psnr(single, clean) + 0.5
    per_frame = [_psnr(o, c) for o, c in zip(temporal, clean)]
    # No frame left noisy: each gains over itself alone, and no flicker inside.
    assert all(t > _psnr(s, c) + 0.3 for t, s, c in zip(per_frame, single, clean))
    assert min(per_frame[1:-1]) > np.mean(per_frame) - 0.6


def test_a_wider_window_gains_on_a_still_scene_with_the_groups_it_had():
    """temporal_radius 4 on a still scene, where every frame holds a copy of each
    patch: the groups of radius 1 (three and two times the image's) beat groups
    grown with the window (nine and five times), and beat radius 1. At sigma 40:
    below sigma 30 the repeat's deep patches on this small scene measure the grown
    groups 0.2 dB better, where on the made 256 x 256 sequences of
    benchmarks/video.py they are 0.3 to 0.7 dB worse (the clip in grey level)."""
    clean = _pan(frames=10, size=(48, 56), step=(0.0, 0.0))
    noisy = _noisy(clean, 40, seed=5)
    narrow = denoise(noisy, time_axis=0, method="nlbayes", sigma=40, temporal_radius=1)
    settings = resolve(noisy, time_axis=0, method="nlbayes", sigma=40, temporal_radius=4)
    grown = replace(settings, passes=tuple(
        replace(step, group_size=step.group_size // (3 if i == 0 else 2) * (9 if i == 0 else 5))
        for i, step in enumerate(settings.passes)))
    wide = _psnr(denoise(noisy, settings=settings), clean)
    assert wide > _psnr(denoise(noisy, settings=grown), clean) + 0.2
    assert wide > _psnr(narrow, clean) + 0.5


def _flat(step):
    return replace(step, patch_radius=(0,) + step.patch_radius[1:])


def test_deep_patches_gain_on_grey_frames():
    """Grey frames' patches three frames deep (every step at sigma 10) against
    2-D ones in every step, and against 2-D ones in the repeat, the rest alike."""
    clean = _pan(frames=8, size=(48, 56), step=(0.5, 1.5))
    noisy = _noisy(clean, 10, seed=4)
    settings = resolve(noisy, time_axis=0, method="nlbayes", sigma=10)
    flat = replace(settings, passes=tuple(_flat(step) for step in settings.passes))
    flat_repeat = replace(settings, passes=settings.passes[:2] + (_flat(settings.passes[2]),))
    assert [step.patch_radius[0] for step in settings.passes] == [1, 1, 1]
    deep = _psnr(denoise(noisy, settings=settings), clean)
    assert deep > _psnr(denoise(noisy, settings=flat), clean) + 0.3
    assert deep > _psnr(denoise(noisy, settings=flat_repeat), clean) + 0.5


def test_video_command_runs_nlbayes(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    clean = _pan(frames=6, size=(32, 40))
    seq = np.stack([clean, clean, clean[:, :, ::-1]], axis=-1)
    seq = _noisy(seq, 15, seed=3)
    for i, frame in enumerate(seq, start=1):
        iio.imwrite(frames / f"f{i}.png", frame)
    out = tmp_path / "clean"
    result = CliRunner().invoke(cli, ["video", str(frames), str(out), "--method", "nlbayes",
                                      "-q"])
    assert result.exit_code == 0, result.output
    got = np.stack([iio.imread(out / name) for name in sorted(os.listdir(out))])
    expected = nlmeans.denoise(seq, time_axis=0, channel_axis=-1, method="nlbayes")
    np.testing.assert_array_equal(got, expected)


def test_frames_take_a_smaller_tau_than_images():
    """The later steps' groups take every patch whose pilot is within a fifth
    of sigma (8-bit units) of the reference's, not the paper's 16 for images:
    a frame's copies of a patch in the other frames have nearly the same
    pilot (it was estimated from the same group), and 16 admits neighbours
    that differ as well (a still scene of the camera's grass). Without the cap
    that grey frames also put on the patches within tau (which makes up most
    of the difference here: +0.04 dB with it), as colour frames have none."""
    from skimage import data

    clean = np.stack([data.camera()[300:364, 100:164].astype(np.float64)] * 10)
    noisy = _noisy(clean, 20, seed=5)
    settings = resolve(noisy, time_axis=0, method="nlbayes", sigma=20)
    assert [step.tau for step in settings.passes] == [0.0, 4.0, 4.0]
    settings = replace(settings, passes=tuple(replace(step, group_cap=0)
                                              for step in settings.passes))
    paper = replace(settings, passes=tuple(replace(step, tau=16.0 if step.guided else 0.0)
                                           for step in settings.passes))
    assert _psnr(denoise(noisy, settings=settings), clean) > \
        _psnr(denoise(noisy, settings=paper), clean) + 0.3


@pytest.mark.parametrize("width, height, channels, radius", [
    (640, 272, 3, 4), (1280, 720, 1, 4), (1280, 720, 3, 3), (1920, 1080, 1, 2),
    (1920, 1080, 3, 1)])
def test_the_window_spans_four_frames_where_blocks_hold_twice_their_context(
        width, height, channels, radius):
    """The automatic window is the widest up to 4 frames either side whose
    blocks (bounded in memory) hold at least twice their context: large frames
    would otherwise compute up to 9 frames for each frame kept."""
    values = width * height * channels
    for sigma in (10, 40):
        steps = nlbayes.frame_steps(sigma, 255.0, channels, frame_values=values)
        assert steps[-1].search_radius[0] == radius
        settings = SimpleNamespace(passes=steps)  # all that the block sizes read
        assert frame_block(settings, values) >= 2 * frame_context(settings)
        if radius < nlbayes.FRAME_TEMPORAL_RADIUS:
            wider = nlbayes.frame_steps(sigma, 255.0, channels, temporal_radius=radius + 1)
            wider = SimpleNamespace(passes=wider)
            assert frame_block(wider, values) < 2 * frame_context(wider)
