"""Windows that follow the frames' motion: the estimate, the kernel against the
reference, the stream against one call, and what it buys on a fast pan."""

import os
from dataclasses import replace

import numpy as np
import pytest
from reference import reference_nlmeans

import nlmeans
import nlmeans.runners.frames as frames_module
from nlmeans.backends.cpu import numba_pass
from nlmeans.methods import nlbayes
from nlmeans.kernels import nlm
from nlmeans.model.motion import frame_move, frame_positions
from nlmeans.model.settings import Pass

RNG = np.random.default_rng(11)


def _scene(size=400):
    """A textured scene: smoothed noise, so that its patches are all different."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(RNG.random((size, size)) * 255, 2) * 4 - 380


def _pan(scene, moves, shape):
    """Frames of `shape` cut from `scene` at the cumulative `moves` (dy, dx): the
    content moves by -move each frame."""
    corners = np.cumsum([(0, 0)] + list(moves), axis=0) + 100
    return np.stack([scene[y:y + shape[0], x:x + shape[1]] for y, x in corners])


@pytest.mark.parametrize("move", [(0, 0), (1, -2), (9, 14), (-17, 5), (20, -25)])
@pytest.mark.parametrize("sigma", [5.0, 30.0])
def test_frame_move_finds_the_pan(move, sigma):
    frames = _pan(_scene(), [move], (120, 150))
    noisy = frames + RNG.normal(0, sigma, frames.shape)
    # The content at (y, x) in the first frame is at (y - dy, x - dx) in the second.
    assert frame_move(noisy[0], noisy[1]).tolist() == [-move[0], -move[1]]


@pytest.mark.parametrize("shape", [(24, 28), (60, 70)])
def test_frame_move_keeps_still_noise_still(shape):
    """Two frames of flat content and independent noise: no move, whatever the
    noise (some move always fits the noise a little better than none)."""
    rng = np.random.default_rng(5)
    moved = [frame_move(*(90 + rng.normal(0, 15, (2,) + shape))).tolist() for _ in range(20)]
    assert moved == [[0, 0]] * 20


def test_frame_positions_add_up_the_moves():
    moves = [(3, -4), (5, 1), (-2, 7)]
    frames = _pan(_scene(), moves, (100, 120))
    positions = frame_positions(frames[None])
    assert positions.tolist() == np.cumsum([(0, 0)] + [(-a, -b) for a, b in moves],
                                           axis=0).tolist()


def test_window_offsets_cover_each_pair_once_per_side():
    """The usual half offsets (both sides) and the moved windows' extras: for
    each side, every offset of the union of the usual window and the moved
    one, once; nothing where the moved window lies within the usual one."""
    radius = (2, 3, 4)
    forward, mirrored = np.array([(5, -1), (9, 0)]), np.array([(5, -1), (11, 2)])
    offsets, sides = nlm.window_offsets(radius, forward, mirrored)
    half = (2, 2)
    for side, bit, moves in (("forward", 1, forward), ("mirrored", 2, mirrored)):
        got = sorted(tuple(t) for t, s in zip(offsets.tolist(), sides) if s & bit and t[0] > 0)
        expected = set()
        for k in (1, 2):
            expected |= {(k, y, x) for y in range(-3, 4) for x in range(-4, 5)}
            expected |= {(k, moves[k - 1][0] + y, moves[k - 1][1] + x)
                         for y in range(-half[0], half[0] + 1)
                         for x in range(-half[1], half[1] + 1)}
        assert got == sorted(expected), side
    assert nlm.window_offsets(radius, np.array([(1, 1), (1, -2)]),
                              np.array([(0, 1), (-1, 2)])) is None


@pytest.mark.parametrize("aggregation, centre", [("pixel", "one"), ("patch", "max"),
                                                 ("pixel", "max")])
@pytest.mark.parametrize("channels", [1, 2])
def test_kernel_with_moved_windows_matches_reference(aggregation, centre, channels):
    """Frames whose content moves (different moves between each pair, the
    window reaching past the frames' borders): the kernel, on both of its
    paths, against the reference with the same windows."""
    volume = RNG.random((5, 9, 11, channels)) * 100
    positions = np.array([(0, 0), (3, -4), (5, 1), (5, 1), (-1, 6)], np.int64)
    step = Pass((0, 1, 1), (1, 2, 2), 40.0, 0.0, aggregation, centre)
    values = np.ascontiguousarray(np.moveaxis(volume, -1, 0))
    result = numba_pass(values, None, step, np.float64, (-np.inf, np.inf), False,
                        positions=positions)
    expected = reference_nlmeans(volume, 40.0, (0, 1, 1), (1, 2, 2), aggregation=aggregation,
                                 centre=centre, positions=positions)
    assert np.allclose(np.moveaxis(result, 0, -1), expected, rtol=1e-9, atol=1e-9)
    still = numba_pass(values, None, step, np.float64, (-np.inf, np.inf), False)
    assert not np.allclose(result, still)  # the moves changed the windows


@pytest.mark.parametrize("h", [20.0, None])
def test_a_stream_follows_the_motion_as_one_call_does(h, monkeypatch):
    """Frames read in batches (a long sequence with moves that change; float
    frames, where a last-bit difference shows) get the same bytes as the whole
    sequence in one call: a batch's margins, which follow its own moves, do
    not change a sum."""
    monkeypatch.setattr(frames_module, "MAX_BATCH", 3)
    moves = RNG.integers(-7, 9, size=(19, 2))
    scene = np.clip(_scene(800) + 128, 0, 255)
    frames = _pan(scene, moves, (40, 48))
    noisy = (frames + RNG.normal(0, 15, frames.shape)).astype(np.float32)
    one = nlmeans.denoise(noisy, h, time_axis=0, sigma=15.0)
    streamed = np.stack(list(nlmeans.denoise_frames(iter(noisy), h, sigma=15.0)))
    assert np.array_equal(one, streamed)


def test_a_stream_of_nlbayes_frames_follows_the_motion_as_one_call_does(monkeypatch):
    monkeypatch.setattr(nlbayes, "MAX_FRAME_BLOCK", 2)
    moves = RNG.integers(-9, 10, size=(8, 2))
    frames = _pan(np.clip(_scene(600) + 128, 0, 255), moves, (40, 48))
    noisy = (frames + RNG.normal(0, 15, frames.shape)).astype(np.float32)
    one = nlmeans.denoise(noisy, method="nlbayes", time_axis=0, sigma=15.0)
    streamed = np.stack(list(nlmeans.denoise_frames(iter(noisy), method="nlbayes",
                                                    sigma=15.0)))
    assert np.array_equal(one, streamed)


def test_following_a_fast_pan_recovers_the_frames_gain():
    """A pan of (7, 11) pixels a frame, beyond the automatic window's radius of
    5 to 7: following it gains over the window around the pixel alone, and
    brings the result near that of the same frames standing still."""
    scene = np.clip(_scene(600) + 128, 0, 255)
    clean = _pan(scene, [(7, 11)] * 5, (64, 80))
    noisy = clean + np.random.default_rng(3).normal(0, 20, clean.shape)
    settings = nlmeans.resolve(noisy, sigma=20.0, time_axis=0)
    assert settings.follow_motion

    def psnr(result):
        return 10 * np.log10(255 ** 2 / np.mean((result - clean) ** 2))

    following = psnr(nlmeans.denoise(noisy, settings=settings))
    around = psnr(nlmeans.denoise(noisy, settings=replace(settings, follow_motion=False)))
    assert following > around + 0.5


def test_nlbayes_following_a_fast_pan_gains():
    """NL-Bayes over frames: its later steps' window reaches 6 pixels in the
    other frames; a pan of (7, 11) a frame is found where it moved."""
    scene = np.clip(_scene(600) + 128, 0, 255)
    clean = _pan(scene, [(7, 11)] * 5, (64, 80))
    noisy = clean + np.random.default_rng(4).normal(0, 20, clean.shape)
    settings = nlmeans.resolve(noisy, sigma=20.0, time_axis=0, method="nlbayes")

    def psnr(result):
        return 10 * np.log10(255 ** 2 / np.mean((result - clean) ** 2))

    following = psnr(nlmeans.denoise(noisy, settings=settings))
    around = psnr(nlmeans.denoise(noisy, settings=replace(settings, follow_motion=False)))
    assert following > around + 0.5


def test_follow_motion_is_an_option_of_the_api_and_the_video_command(tmp_path):
    """denoise(..., follow_motion=False) runs the settings with the windows
    around the pixel; `nlmeans video --no-motion` passes it on; the option
    needs frames and a bool."""
    import imageio.v3 as iio
    from click.testing import CliRunner

    from nlmeans_cli.main import cli

    clean = _pan(np.clip(_scene(600) + 128, 0, 255), [(7, 11)] * 5, (40, 48))
    noisy = np.clip(clean + np.random.default_rng(2).normal(0, 15, clean.shape), 0, 255)
    noisy = noisy.astype(np.uint8)
    settings = nlmeans.resolve(noisy, 12.0, time_axis=0, follow_motion=False)
    assert settings.follow_motion is False
    around = nlmeans.denoise(noisy, 12.0, time_axis=0, follow_motion=False)
    assert np.array_equal(around, nlmeans.denoise(noisy, settings=settings))
    assert not np.array_equal(around, nlmeans.denoise(noisy, 12.0, time_axis=0))
    with pytest.raises(ValueError, match="follow_motion needs frames"):
        nlmeans.denoise(noisy[0], 12.0, follow_motion=False)
    with pytest.raises(ValueError, match="True or False"):
        nlmeans.denoise(noisy, 12.0, time_axis=0, follow_motion="no")

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(noisy):
        iio.imwrite(folder / f"f{i}.png", frame)
    result = CliRunner().invoke(cli, ["video", str(folder), str(tmp_path / "out"), "--h", "12",
                                      "--no-motion", "-q"])
    assert result.exit_code == 0, result.output
    out = np.stack([iio.imread(tmp_path / "out" / name)
                    for name in sorted(os.listdir(tmp_path / "out"))])
    assert np.array_equal(out, around)
