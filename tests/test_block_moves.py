"""Block moves (NL-Bayes's windows that follow content moving otherwise than
the pan): the block search against a NumPy reference, the moves found, their
chaining, the tiles' reach, and what they buy on a moving object."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import nlmeans
from nlmeans.kernels.bayes import _window
from nlmeans.kernels.motion import block_search
from nlmeans.methods import block_moves
from nlmeans.methods.block_moves import frame_moves, pair_moves
from nlmeans.methods.nlbayes import moved_radii, tile_shape, window_moves
from nlmeans.model.motion import frame_positions
from nlmeans.model.settings import BayesStep

RNG = np.random.default_rng(21)


def _texture(shape, seed):
    """Smoothed noise, so that its blocks are all different."""
    rng = np.random.default_rng(seed)
    return gaussian_filter(rng.random(shape) * 255, 1.5) * 4 - 380 + 128


def _reference_error(first, second, y0, x0, block, dy, dx):
    """The block's mean squared difference over the pixels whose moved place is
    in `second`; infinite where fewer than half of the block's are."""
    ny, nx = first.shape
    ys, xs = np.mgrid[y0:min(y0 + block, ny), x0:min(x0 + block, nx)]
    inside = (ys + dy >= 0) & (ys + dy < ny) & (xs + dx >= 0) & (xs + dx < nx)
    if 2 * inside.sum() < ys.size:
        return np.inf
    a, b = ys[inside], xs[inside]
    return np.mean((first[a, b] - second[a + dy, b + dx]) ** 2)


def test_block_search_matches_the_reference():
    first, second = RNG.random((21, 26)) * 50, RNG.random((21, 26)) * 50
    block, radius = 8, 3
    grid = (3, 4)
    centres = np.array([[[0, 0], [4, -5]]] * 12).reshape(grid + (2, 2))
    centres[1, 2] = [[-6, 2], [0, 0]]
    moves, errors = np.empty(grid + (2,), np.int64), np.empty(grid)
    block_search(first, second, block, centres, radius, moves, errors)
    for by in range(grid[0]):
        for bx in range(grid[1]):
            found = [(_reference_error(first, second, by * block, bx * block, block, dy, dx),
                      (dy, dx))
                     for cy, cx in centres[by, bx]
                     for dy in range(cy - radius, cy + radius + 1)
                     for dx in range(cx - radius, cx + radius + 1)]
            best = min(e for e, _ in found)
            first_best = next(m for e, m in found if e == best)  # ties: the first
            assert tuple(moves[by, bx]) == first_best
            assert errors[by, bx] == pytest.approx(best, rel=1e-12)


def _object_frames(pan, move, count=4, shape=(160, 192)):
    """A textured background panned by `pan` a frame and a 64 x 64 textured
    object moving by `move` a frame over it."""
    scene, thing = _texture((400, 400), 1), _texture((64, 64), 2)
    frames = []
    for t in range(count):
        y, x = 100 + pan[0] * t, 100 + pan[1] * t
        frame = scene[y:y + shape[0], x:x + shape[1]].copy()
        oy, ox = 40 + move[0] * t, 48 + move[1] * t
        frame[oy:oy + 64, ox:ox + 64] = thing
        frames.append(frame)
    return np.stack(frames)


@pytest.mark.parametrize("sigma", [5.0, 30.0])
def test_pair_moves_follow_an_object_and_keep_the_rest_at_the_pan(sigma):
    pan, move = (3, -5), (9, 13)
    frames = _object_frames(pan, move, 2) + RNG.normal(0, sigma, (2, 160, 192))
    moves = pair_moves(frames[0], frames[1], (-3, 5))
    # The object covers blocks (by 2, bx 2) of frame 0 whole: rows 40-103, columns 48-111.
    assert moves[2, 2].tolist() == list(move)
    assert moves[1, 2].tolist() == list(move)
    # Background blocks away from the object (and from where it goes) take the pan.
    for by, bx in [(0, 0), (4, 0), (4, 5), (0, 5)]:
        assert moves[by, bx].tolist() == [-3, 5]


def test_pair_moves_keep_noise_at_the_pan():
    """Frames of flat content and independent noise: every block takes the pan,
    whatever the noise (some move always fits a block's noise a little better)."""
    rng = np.random.default_rng(8)
    for pan in [(0, 0), (4, -2)]:
        frames = 90 + rng.normal(0, 20, (2, 100, 130))
        assert (pair_moves(frames[0], frames[1], pan) == pan).all()


def test_frame_moves_chain_a_block_from_frame_to_frame():
    move = (6, 9)
    frames = _object_frames((0, 0), move, 5) + RNG.normal(0, 5, (5, 160, 192))
    positions = frame_positions(frames[None])
    assert (positions == 0).all()
    moves = frame_moves(list(frames), positions, 3)
    assert moves.shape == (5, 7, 5, 6, 2)
    assert (moves[:, 3] == 0).all()
    # The block at rows 64-95, columns 64-95 of frame 1 lies within the object
    # there (rows 46-109, columns 57-120), and so does where it goes in frames
    # 2 and 3, and where it came from in frame 0.
    assert moves[1, 4, 2, 2].tolist() == list(move)
    assert moves[1, 5, 2, 2].tolist() == [2 * m for m in move]
    assert moves[1, 2, 2, 2].tolist() == [-m for m in move]
    assert (moves[1, 0] == 0).all()  # no frame 3 before frame 1
    assert (moves[:, :, 0, 0] == 0).all()  # the background stands still


def test_the_tiles_reach_the_moved_windows_of_the_end_frames():
    """A window shifted inwards at the sequence's ends spans planes up to twice
    its temporal radius from the reference's: the tiles must keep tiles two
    apart clear of those planes' moved windows too (else two threads could add
    to the same pixels). Frames panned 10 pixels a frame along X."""
    count, radius = 9, 2
    positions = np.array([(0, 10 * t) for t in range(count)], np.int64)
    frames = [np.zeros((64, 400))] * count
    original = block_moves.pair_moves
    try:  # the pans alone, without matching any block
        block_moves.pair_moves = lambda first, second, pan: np.broadcast_to(
            pan, block_moves.block_grid(first.shape) + (2,))
        moves = frame_moves(frames, positions, 2 * radius)
    finally:
        block_moves.pair_moves = original
    step = BayesStep((0, 1, 1), (radius, 3, 3), 10, 20.0, 1.0, 1.05, 0.0, 1)
    k, counts = 3, 400 - 2
    # The farthest member of the first frame's references: the plane 2 R away.
    lo, hi = _window(0, radius, count)
    assert hi == 2 * radius
    farthest = abs(moves[0, 2 * radius + hi, 0, 0, 1]) + moved_radii(step)[1] + k
    tile = tile_shape(step, (count, 64, 400), window_moves(moves, radius))[2]
    assert tile >= 2 * farthest or tile >= counts


def test_nlbayes_follows_a_moving_object():
    """An object moving (9, 13) pixels a frame over a still background, beyond
    the later steps' window: the block moves gain over the pan's windows alone
    on the object's pixels."""
    clean = _object_frames((0, 0), (9, 13), 6)
    noisy = clean + np.random.default_rng(4).normal(0, 20, clean.shape)
    mask = np.zeros(clean.shape, bool)
    for t in range(6):
        mask[t, 40 + 9 * t:104 + 9 * t, 48 + 13 * t:112 + 13 * t] = True

    def psnr(result):
        return 10 * np.log10(255 ** 2 / np.mean((result - clean)[mask] ** 2))
    followed = nlmeans.denoise(noisy, sigma=20.0, method="nlbayes", time_axis=0)
    original = block_moves.SIGNIFICANCE
    try:
        block_moves.SIGNIFICANCE = np.inf  # no block moves otherwise than the pan
        panned = nlmeans.denoise(noisy, sigma=20.0, method="nlbayes", time_axis=0)
    finally:
        block_moves.SIGNIFICANCE = original
    assert psnr(followed) > psnr(panned) + 0.3


def test_lanes_give_the_same_bytes_whatever_the_threads():
    """Frames whose moves leave few tiles a colour run in lanes with their own
    sums: the same bytes on one thread as on two."""
    import numba

    from nlmeans.methods import nlbayes

    noisy = _object_frames((5, 9), (0, 0), 5, (112, 128)) + RNG.normal(0, 20, (5, 112, 128))
    noisy = noisy[None]
    moves = frame_moves(list(noisy[0]), frame_positions(noisy), 2)
    step = BayesStep((0, 2, 2), (1, 6, 6), 30, 20.0, 1.0, 1.05, 0.0, 2)
    spatial = noisy.shape[1:]
    tile, lanes = nlbayes.step_tiles(step, spatial, moves)
    # As many tiles as the checkerboard's (the moves' reach), of equal sizes.
    board = tile_shape(step, spatial, nlbayes.window_moves(moves, 1))
    counts = (5, 108, 124)
    assert lanes and tile == tuple(-(-c // -(-c // b)) for c, b in zip(counts, board))
    assert not nlbayes.step_tiles(step, spatial)[1]  # still frames: the checkerboard
    threads = numba.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
            results.append(nlbayes.run_step(noisy, None, step, np.float64, moves=moves))
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(results[0], results[1])


def test_frames_with_moves_take_tiles_in_fours_along_x(monkeypatch):
    """Frames too large for lanes whose moves leave 5 to 7 (or any number but a
    multiple of 4) tiles along x take a multiple of 4 wider ones, so that each
    colour of the checkerboard has an even number for two threads; the tiles
    stay as wide as the checkerboard needs. Images and still frames keep theirs."""
    from nlmeans.methods import nlbayes

    monkeypatch.setattr(nlbayes, "LANE_POSITIONS", 0)
    spatial = (5, 40, 600)
    moves = np.random.default_rng(5).integers(-12, 13, (5, 5, 2, 19, 2))
    moves[:, 2] = 0  # a frame's own
    step = BayesStep((0, 2, 2), (1, 6, 6), 30, 20.0, 1.0, 1.05, 0.0, 2)
    board = tile_shape(step, spatial, window_moves(moves, 1))
    across = 600 - 2 * 2
    assert -(-across // board[-1]) % 4  # the checkerboard's own count is not a multiple
    tile, lanes = nlbayes.step_tiles(step, spatial, moves)
    assert not lanes and tile[:2] == board[:2] and tile[-1] >= board[-1]
    assert -(-across // tile[-1]) % 4 == 0 and -(-across // tile[-1]) >= 4
    assert nlbayes.step_tiles(step, spatial) == (tile_shape(step, spatial), False)
