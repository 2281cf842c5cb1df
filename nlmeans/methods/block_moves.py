"""Block moves: where the content of each block of a frame went in the frames
around it, for NL-Bayes's windows that follow motion.

:func:`nlmeans.model.motion.frame_move` finds one move per pair of frames (a
pan). Content that moves otherwise (a cyclist, a running animal) needs its
own: each block of BLOCK x BLOCK pixels of a frame gets a move into the next
frame and one into the frame before. The blocks of the 2 x 2-binned frames
are matched within SEARCH binned pixels of no move and of the pan (least mean
squared difference), the best refined on a 3 x 3 at full resolution, and
kept only where its error is lower than the pan's by SIGNIFICANCE standard
deviations of what noise alone makes of it (as frame_move's: about 2 /
sqrt(N) relative, N the block's pixels); other blocks take the pan (and so
do those that the pan takes out of the frame), so that
blocks of flat content or noise do not move by chance, and frames with no
other motion than the pan get the pan's windows exactly. Moves over several
frames chain: the block's move into the next frame, then the move of that
frame's block where the block's centre landed, and so on, as a predictive
search follows a patch's best matches from frame to frame. Each pair's moves
depend on the two frames alone, so blocks of frames (a stream's batches) get
the moves of the whole sequence.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nlmeans.model.motion import BIN, SIGNIFICANCE, binned

# Block side in pixels (full resolution).
BLOCK = 32
# Binned pixels searched around no move and around the pan, along each axis
# (SEARCH * BIN at full resolution).
SEARCH = 8


def block_grid(shape):
    """Blocks (BY, BX) of a frame of (Y, X) `shape`; the last ones partial."""
    return tuple(-(-n // BLOCK) for n in shape)


def pair_moves(first, second, pan):
    """(BY, BX, 2) int64: where the content of each block of the 2-D float64
    frame `first` went in `second`, or the frames' move `pan` (dy, dx) where
    nothing fits clearly better (see the module's notes)."""
    from nlmeans.kernels.motion import block_search  # deferred: Numba costs ~0.3 s

    pan = np.asarray(pan, np.int64)
    grid = block_grid(first.shape)
    starts = [(-(-pan // BIN)).tolist(), [0, 0]]  # the pan binned (rounded up), no move
    centres = np.array(starts[:1] if starts[0] == [0, 0] else starts, np.int64)
    coarse = np.empty(grid + (2,), np.int64)
    block_search(binned(first), binned(second), BLOCK // BIN,
                 np.ascontiguousarray(np.broadcast_to(centres, grid + centres.shape)),
                 SEARCH, coarse, np.empty(grid))
    fine, errors = np.empty(grid + (2,), np.int64), np.empty(grid)
    block_search(first, second, BLOCK, coarse[:, :, None] * BIN, BIN - 1, fine, errors)
    panned, pan_errors = np.empty(grid + (2,), np.int64), np.empty(grid)
    block_search(first, second, BLOCK, np.broadcast_to(pan, grid + (1, 2)).copy(), 0,
                 panned, pan_errors)
    pixels = np.outer(_sides(first.shape[0]), _sides(first.shape[1]))
    # A block that the pan takes out of the frame keeps it: nothing to compare with.
    clearly = np.isfinite(pan_errors) & \
        (errors < pan_errors * (1 - SIGNIFICANCE * 2 / np.sqrt(pixels)))
    return np.where(clearly[..., None], fine, pan)


def _sides(n):
    """The blocks' sides along an axis of n pixels."""
    return np.minimum(BLOCK, n - BLOCK * np.arange(-(-n // BLOCK)))


def frame_moves(frames, positions, span, threads=1):
    """(T, 2 S + 1, BY, BX, 2) int64, S = `span`: moves[z, S + k, by, bx] is
    where the content of block (by, bx) of frame z went in frame z + k, |k| <= S
    (0 for k = 0 and for frames outside the sequence), chained frame by frame
    (see the module's notes). `frames`: the T 2-D float64 frames; `positions`
    ((T, 2)): where each sits (frame_positions), whose differences are the pans;
    `threads`: pairs of frames matched at once."""
    count = len(frames)
    pans = np.diff(np.asarray(positions, np.int64), axis=0)
    with ThreadPoolExecutor(max(1, threads)) as pool:
        forward = list(pool.map(pair_moves, frames[:-1], frames[1:], pans))
        backward = list(pool.map(pair_moves, frames[1:], frames[:-1], -pans))
    grid = block_grid(frames[0].shape)
    centres = np.stack(np.meshgrid(*[BLOCK * np.arange(g) + _sides(n) // 2 for g, n in
                                     zip(grid, frames[0].shape)], indexing="ij"), axis=-1)
    moves = np.zeros((count, 2 * span + 1) + grid + (2,), np.int64)
    for z in range(count):
        for direction in (1, -1):
            total = np.zeros(grid + (2,), np.int64)
            for k in range(1, span + 1):
                plane = z + direction * (k - 1)  # where the content is now
                if not 0 <= plane + direction < count:
                    break
                field = forward[plane] if direction == 1 else backward[plane - 1]
                at = np.clip((centres + total) // BLOCK, 0, np.array(grid) - 1)
                total = total + field[at[..., 0], at[..., 1]]
                moves[z, span + direction * k] = total
    return moves
