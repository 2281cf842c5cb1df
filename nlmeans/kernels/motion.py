"""Numba kernels for the frames' block moves (private: arrays in, arrays out).

A frame is cut into square blocks (the last ones along each axis partial); a
block's error for a move (dy, dx) is the mean squared difference between its
pixels (y, x) and the other frame's (y + dy, x + dx), over the pixels whose
moved place lies in the other frame, or infinite where fewer than half of the
block's pixels do. :mod:`nlmeans.methods.block_moves` builds the moves of
every block from these.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def block_error(first, second, y0, x0, block, dy, dx):
    """The error of the block of `first` (2-D float64) at (y0, x0), `block`
    pixels a side, for the move (dy, dx) into `second` (see the module's notes)."""
    ny, nx = first.shape
    y1, x1 = min(y0 + block, ny), min(x0 + block, nx)
    a0, a1 = max(y0, -dy), min(y1, ny - dy)
    b0, b1 = max(x0, -dx), min(x1, nx - dx)
    if a1 <= a0 or b1 <= b0 or 2 * (a1 - a0) * (b1 - b0) < (y1 - y0) * (x1 - x0):
        return np.inf
    total = 0.0
    for y in range(a0, a1):
        row, moved = first[y], second[y + dy]
        for x in range(b0, b1):
            d = row[x] - moved[x + dx]
            total += d * d
    return total / ((a1 - a0) * (b1 - b0))


@njit(cache=True, nogil=True)
def block_search(first, second, block, centres, radius, moves, errors):
    """For every block (by, bx) of `first` (moves.shape[:2] blocks, `block` pixels
    a side): the move within `radius` (along both axes) of one of its centres,
    centres[by, bx] ((BY, BX, n, 2) int64), of least error into `second`, and
    that error, into moves[by, bx] and errors[by, bx]. Of equal errors, the
    first found: the centres in their order, each one's moves in raster order."""
    for by in range(moves.shape[0]):
        for bx in range(moves.shape[1]):
            best, best_dy, best_dx = np.inf, 0, 0
            for c in range(centres.shape[2]):
                cy, cx = centres[by, bx, c, 0], centres[by, bx, c, 1]
                for dy in range(cy - radius, cy + radius + 1):
                    for dx in range(cx - radius, cx + radius + 1):
                        error = block_error(first, second, by * block, bx * block, block,
                                            dy, dx)
                        if error < best:
                            best, best_dy, best_dx = error, dy, dx
            moves[by, bx, 0], moves[by, bx, 1] = best_dy, best_dx
            errors[by, bx] = best
