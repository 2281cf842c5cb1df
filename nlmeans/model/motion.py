"""The frames' motion: where each frame's content sits in a common frame of reference.

The temporal search windows follow it (:func:`nlmeans.kernels.nlm.window_offsets`):
content that moves farther between frames than the window's radius (a camera
pan of more than a few pixels a frame) is still found in the other frames.

The model is one translation per pair of consecutive frames, in whole pixels
(a pan; objects that move otherwise keep the windows around the pixel, which
the moved ones add to, not replace; NL-Bayes refines it block by block,
:mod:`nlmeans.methods.block_moves`). It is estimated on the noisy frames:
phase correlation of the frames averaged over 2 x 2 pixels (the peak of the
normalised cross-power spectrum, robust to the frames' differing content at
their edges; averaging halves the noise), refined by the mean squared
difference over the frames' overlap at full resolution, and kept only where
that difference is clearly lower than without moving: by more than
SIGNIFICANCE standard deviations of what noise alone makes of it (the mean of
N squared differences of independent noise has a relative standard deviation
of sqrt(2 / N), and the difference of two such means, a move's and no move's,
about 2 / sqrt(N)), so that frames of noise, or of flat content, do not move
by chance. Each pair's estimate depends on
the two frames alone, so a stream of frames gets the same positions' differences
as the whole sequence in one call.
"""

import numpy as np

from nlmeans.model.parameters import block_means

# The largest move between two frames, as a fraction of the frame's side: the
# overlap left for the estimate (and the windows' reach) stays large.
MAX_MOVE = 0.25
# Frames averaged over this many pixels a side for the phase correlation.
BIN = 2
# A move must lower the mean squared difference by this many of its standard
# deviations under noise alone (see the module's notes).
SIGNIFICANCE = 4.0


def follows_motion(settings):
    """Whether the passes of `settings` (Settings) have windows that follow the
    frames' motion: frames of 2-D images (time and two spatial axes), a temporal
    window, and Settings.follow_motion."""
    return (settings.follow_motion and settings.time_axis is not None
            and settings.n_spatial == 3
            and any(step.search_radius[0] > 0 for step in settings.passes))


def frame_positions(values, frames=None):
    """Where each frame of the channel-first frames `values` (C, T, Y, X) sits,
    (T, 2) int64 (y, x), the first at (0, 0): the sums of the moves between
    consecutive frames (:func:`frame_move`). `frames`: their grey_frame's, if
    made already."""
    if frames is None:
        frames = [grey_frame(values[:, t]) for t in range(values.shape[1])]
    moves = [frame_move(a, b) for a, b in zip(frames[:-1], frames[1:])]
    return np.cumsum([np.zeros(2, np.int64)] + moves, axis=0).astype(np.int64)


def grey_frame(frame):
    """One channel-first frame (C, Y, X) as float64 (Y, X), its channels' mean."""
    return np.asarray(frame, np.float64).mean(axis=0)


def frame_move(first, second):
    """(dy, dx) int64: where the content of the 2-D frame `first` went in
    `second` (second[y + dy, x + dx] is first[y, x]), or (0, 0) where no move
    fits better than none (see the module's notes)."""
    limit = (int(MAX_MOVE * first.shape[0]), int(MAX_MOVE * first.shape[1]))
    guess = _correlation_peak(binned(first), binned(second)) * BIN
    still = _overlap_error(first, second, (0, 0))
    best, best_error = np.zeros(2, np.int64), still * (1 - SIGNIFICANCE * 2 / np.sqrt(first.size))
    for dy in range(guess[0] - BIN + 1, guess[0] + BIN):
        for dx in range(guess[1] - BIN + 1, guess[1] + BIN):
            if abs(dy) > limit[0] or abs(dx) > limit[1] or (dy, dx) == (0, 0):
                continue
            error = _overlap_error(first, second, (dy, dx))
            if error < best_error:
                best, best_error = np.array([dy, dx], np.int64), error
    return best


def binned(frame):
    """The frame averaged over BIN x BIN blocks (the last partial ones dropped)."""
    return block_means(frame, BIN)


def _correlation_peak(first, second):
    """The integer shift at the peak of the phase correlation of two frames of
    the same shape (signed: shifts past half the frame wrap to negative)."""
    window = np.outer(np.hanning(first.shape[0]), np.hanning(first.shape[1]))
    spectrum = np.conj(np.fft.rfft2((first - first.mean()) * window)) * \
        np.fft.rfft2((second - second.mean()) * window)
    spectrum /= np.maximum(np.abs(spectrum), 1e-12)
    surface = np.fft.irfft2(spectrum, s=first.shape)
    peak = np.array(np.unravel_index(np.argmax(surface), surface.shape), np.int64)
    size = np.array(first.shape, np.int64)
    return np.where(peak > size // 2, peak - size, peak)


def _overlap_error(first, second, move):
    """Mean squared difference of first[y, x] and second[y + dy, x + dx] over
    the frames' overlap."""
    dy, dx = move
    ny, nx = first.shape
    a = first[max(0, -dy):ny - max(0, dy), max(0, -dx):nx - max(0, dx)]
    b = second[max(0, dy):ny - max(0, -dy), max(0, dx):nx - max(0, -dx)]
    difference = a - b
    return float(np.mean(np.square(difference, out=difference)))
