"""Frames streamed: :class:`FrameStream` denoises a sequence of any length
holding only the frames its temporal windows need (the runner behind
:func:`nlmeans.denoise_frames`).

A sequence in memory runs as one (T, Y, X[, C]) volume (``denoise(frames,
time_axis=0)``): 2-D patches, a search window that also spans the frames
before and after, padded at the first and last frame so that no frame meets
its own copy (:mod:`nlmeans.model.padding`). Here the
same passes run on batches of frames, each with the frames around it that its
window reads as the kernel's margin along time, so that every frame gets the
result it gets in one call, bit for bit: the kernel's sums for a frame depend
only on the frame and its neighbours, not on where a tile starts along time.
A guided second pass reads the first pass's results around its batch, so the
first pass runs ahead of it by its temporal radius.
"""

import itertools
from dataclasses import replace
from functools import partial

import numpy as np

from nlmeans.backends.cpu import numba_pass
from nlmeans.methods.nlbayes import block_bounds, frame_block, frame_context
from nlmeans.methods.passes import mapped_back, run_pass, run_passes
from nlmeans.model.colour import OpponentColours
from nlmeans.model.layout import as_channel_first_volume, check_image
from nlmeans.model.motion import follows_motion, frame_move, grey_frame
from nlmeans.model.padding import flat_index
from nlmeans.model.stabilise import VarianceStabiliser
from nlmeans.runners.block import in_callers_layout

# Frames per kernel call. Each offset's weights are computed for the batch's
# frames plus the offset's distance along time, so longer batches waste less
# (3 frames of 1080p RGB with a 7-frame window: about 1.6x the weights of the
# batch, against 1.2x for the kernel's own 8-plane tiles); but a batch with
# its margin is held about three times over in float (the frames, their
# opponent colours, the kernel's mirrored copy): 1080p colour with 3-frame
# batches peaked at 1.0 GB, the same for 16 frames as for 120.
BATCH_BYTES = 96 * 2**20
MAX_BATCH = 16


def checked_frame(frame, first):
    """The frame as an array; ValueError unless it is like `first` (if given)."""
    frame, _ = check_image(frame)
    if first is not None and (frame.shape, frame.dtype) != (first.shape, first.dtype):
        raise ValueError(f"every frame must have the first's shape and dtype {first.shape} "
                         f"{first.dtype}, got {frame.shape} {frame.dtype}")
    return frame


class FrameStream:
    """The passes of `settings` run batch by batch over the frames of `iterator`."""

    def __init__(self, settings, head, iterator):
        self.settings = settings
        self.iterator = iterator
        self.first = head[0]
        # The stack's layout with time removed: the frames' own.
        self.frame_settings = frame_layout(settings)
        self.noisy = {}
        self.read = 0
        self.length = None  # known once the iterator is exhausted
        # Where each frame sits (the windows follow the motion), from the moves
        # between consecutive frames, as frame_positions makes them in one call.
        self.positions, self.previous = {}, None
        self.follows_motion = follows_motion(settings)
        # Signal-dependent noise: the passes run on the frames' variance-stabilising
        # transform, as run_passes runs them in one call.
        self.stabiliser = None if settings.variance_curve is None else VarianceStabiliser(
            settings.variance_curve, settings.work_dtype)
        for frame in head:
            self._add(frame)
        self.passes = settings.passes
        # Frames before and after a batch that a pass reads: its halo along time.
        self.margins = [step.halo[0] for step in self.passes]
        frame_bytes = self.noisy[0].size * np.dtype(settings.work_dtype).itemsize
        self.batch = max(1, min(MAX_BATCH, BATCH_BYTES // frame_bytes))
        self.done = [0] * len(self.passes)
        self.results = [{} for _ in self.passes]
        self.bounds = sequence_bounds(self.first.dtype)
        self.transform = OpponentColours(settings.chroma_weight, settings.work_dtype) \
            if settings.chroma_weight != 1.0 else None

    def _add(self, frame):
        # Kept in their own dtype (8-bit video: a quarter of float32's memory) and
        # converted when a batch is stacked, which is exact.
        values = _frame_values(frame, self.frame_settings)
        self.noisy[self.read] = values
        if self.follows_motion:
            grey = values.astype(self.settings.work_dtype)
            if self.stabiliser is not None:  # one call estimates on the stabilised values
                grey = self.stabiliser.forward(grey)
            grey = grey_frame(grey)
            self.positions[self.read] = np.zeros(2, np.int64) if self.previous is None else \
                self.positions[self.read - 1] + frame_move(self.previous, grey)
            self.previous = grey
        self.read += 1

    def _read_more(self):
        """Read up to a batch more frames; the sequence's length once it ends."""
        wanted = self.read + self.batch
        for frame in itertools.islice(self.iterator, self.batch):
            self._add(checked_frame(frame, self.first))
        if self.read < wanted:
            self.length = self.read

    def run(self):
        """Yield the final pass's frames, in the caller's layout, as they are done."""
        emitted = 0
        while True:
            self._run_ready()
            last = self.results[-1]
            while emitted in last:
                yield self._to_frame(last.pop(emitted))
                emitted += 1
            self._forget()
            if self.length is not None and emitted >= self.length:
                return
            self._read_more()

    def _run_ready(self):
        """Run, pass by pass, every batch whose input frames are in."""
        for k, step in enumerate(self.passes):
            while True:
                start, stop = self.done[k], self.done[k] + self.batch
                needed = stop + self.margins[k]
                if self.length is not None:
                    stop, needed = min(stop, self.length), min(needed, self.length)
                if start >= stop or needed > self.read or step.guided and needed > self.done[k - 1]:
                    break
                self._run_batch(k, step, start, stop)

    def _run_batch(self, k, step, start, stop):
        margin = self.margins[k]
        indices = [flat_index(i, self.length, margin) for i in range(start - margin,
                                                                    stop + margin)]
        guide = np.stack([self.results[k - 1][i] for i in indices], axis=1) \
            if step.guided else None
        last = k == len(self.passes) - 1
        positions = np.array([self.positions[i] for i in indices]) if self.follows_motion \
            else None
        backend = partial(numba_pass, frames_padded=True, positions=positions)
        stack = np.stack([self.noisy[i] for i in indices], axis=1).astype(
            self.settings.work_dtype, copy=False)
        rounded = last and self.first.dtype.kind != "f"
        if self.stabiliser is None:
            # The stack is passed, not kept: the colour transform's copy replaces it.
            out = run_pass(stack, guide, step, self.settings.work_dtype, self.bounds, rounded,
                           backend, self.transform)
        else:
            # As run_passes: the passes on the stabilised values (pointwise, so a
            # batch's are the sequence's), the last one's result mapped back.
            out = run_pass(self.stabiliser.forward(stack), guide, step,
                           self.settings.work_dtype, (-np.inf, np.inf), False, backend,
                           self.transform)
            if last:
                out = mapped_back(self.stabiliser, out, self.bounds, rounded)
        for offset, index in enumerate(range(start, stop)):
            self.results[k][index] = out[:, offset]
        self.done[k] = stop

    def _forget(self):
        """Drop the frames that no batch still to run reads."""
        keep_noisy = min(done - margin for done, margin in zip(self.done, self.margins))
        for index in [i for i in self.noisy if i < keep_noisy]:
            del self.noisy[index]
        # The last frame read stays: the next frame's move starts from it.
        for index in [i for i in self.positions if i < min(keep_noisy, self.read - 1)]:
            del self.positions[index]
        for k in range(len(self.passes) - 1):
            keep = self.done[k + 1] - self.margins[k + 1]
            for index in [i for i in self.results[k] if i < keep]:
                del self.results[k][index]

    def _to_frame(self, values):
        return _to_frame(values, self.frame_settings, self.first.dtype, self.bounds)


def stream_bayes_frames(settings, head, iterator):
    """Yield the NL-Bayes frames of `settings` (``method="nlbayes"``) for the
    frames of `head` then `iterator`, block by block as
    :func:`nlmeans.methods.nlbayes.run_bayes_frames` runs them in one call (the
    same blocks, each with its context), so the frames are the same; at most a
    block and twice its context are held."""
    first = head[0]
    layout = frame_layout(settings)
    block = frame_block(settings, first.size)
    context = frame_context(settings)
    bounds = sequence_bounds(first.dtype)
    noisy, read, ended = {}, 0, False
    frames = itertools.chain(head, (checked_frame(frame, first) for frame in iterator))
    for start in itertools.count(0, block):
        while not ended and read < start + block + context:
            frame = next(frames, None)
            ended = frame is None
            if not ended:
                noisy[read] = _frame_values(frame, layout)
                read += 1
        if start >= read:
            return
        _, stop, low, high = block_bounds(start, block, context, read)
        stack = np.stack([noisy[i] for i in range(low, high)], axis=1)
        result = run_passes(stack.astype(settings.work_dtype, copy=False), settings, bounds,
                            rounded=first.dtype.kind != "f", one_block=True)
        for index in range(start, stop):
            yield _to_frame(result[:, index - low], layout, first.dtype, bounds)
        for index in [i for i in noisy if i < stop - context]:
            del noisy[index]


def _frame_values(frame, layout):
    """One frame channel first, in its own dtype: (C, Y, X) for 2-D frames, to be
    stacked into (C, T, Y, X); (C, Z, Y, X) for frames of volumes."""
    volume, _ = as_channel_first_volume(frame, layout.channel_axis)
    return volume[:, 0] if layout.n_spatial == 2 else volume


def _to_frame(values, layout, dtype, bounds):
    """One frame's channel-first result in the caller's layout and dtype."""
    return in_callers_layout(values[:, None] if layout.n_spatial == 2 else values, layout,
                             dtype, bounds)


def frame_layout(settings):
    """Settings whose layout is one frame's: the stack's without its time axis."""
    channel = settings.channel_axis
    if channel is not None and channel > settings.time_axis:
        channel -= 1
    return replace(settings, n_spatial=settings.n_spatial - 1, channel_axis=channel,
                   time_axis=None, passes=())


def sequence_bounds(dtype):
    """What the results of frames are clipped to: the dtype's range for integers,
    nothing for floats. Not the sequence's own range, which a streamed run
    does not know before its last frame; a weighted mean cannot leave the range
    of the values it averages, so that clip only ever removed float rounding."""
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return (info.min, info.max)
    return (-np.inf, np.inf)
