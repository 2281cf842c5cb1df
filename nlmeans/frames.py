"""Frames streamed: :func:`denoise_frames` denoises a sequence of any length
holding only the frames its temporal windows need.

A sequence in memory runs as one (T, Y, X[, C]) volume (``denoise(frames,
time_axis=0)``): 2-D patches, a search window that also spans the frames
before and after, the volume mirrored at the first and last frame. Here the
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

from nlmeans.backend import numba_pass
from nlmeans.denoise import (_SETTINGS_OPTIONS, _check_settings_fit, _in_callers_layout, denoise,
                             sequence_bounds)
from nlmeans.layout import as_channel_first_volume, check_image
from nlmeans.passes import OpponentColours, _run_pass
from nlmeans.resolve import FRAMES_MEASURED, resolve
from nlmeans.settings import Settings

# Frames per kernel call. Each offset's weights are computed for the batch's
# frames plus the offset's distance along time, so longer batches waste less
# (3 frames of 1080p RGB with a 7-frame window: about 1.6x the weights of the
# batch, against 1.2x for the kernel's own 8-plane tiles); but a batch with
# its margin is held about three times over in float (the frames, their
# opponent colours, the kernel's mirrored copy): 1080p colour with 3-frame
# batches peaked at 1.0 GB, the same for 16 frames as for 120.
BATCH_BYTES = 96 * 2**20
MAX_BATCH = 16


def denoise_frames(frames, h=None, *, channel_axis=None, settings=None, **options):
    """Denoise a sequence of frames one after another, in bounded memory.

    Parameters
    ----------
    frames : iterable of array_like
        2-D frames (Y, X) or 3-D ones (Z, Y, X), or either with channels along
        `channel_axis`, all of the same shape and dtype: a list, a generator,
        a video reader.
    h, channel_axis, **options
        As for :func:`nlmeans.denoise` with ``time_axis=0`` (`channel_axis` is
        the frames' own). The settings are decided on the first
        ``FRAMES_MEASURED`` frames, as ``denoise`` decides them for a
        sequence in memory.
    settings : Settings, optional
        Settings for frames (``resolve(stack, ..., time_axis=...)``); the
        options must then be left out.

    Yields
    ------
    numpy.ndarray
        The denoised frames, in order, each of the input frames' shape and
        dtype, equal to the frames of ``denoise(np.stack(frames), ...,
        time_axis=0)``. A frame comes out once the frames its window reads
        have come in; at most a batch of frames (up to 16) plus twice the
        settings' temporal halo are held, whatever the sequence's length.

    Raises
    ------
    ValueError
        For bad options or frames (a frame of another shape or dtype, NaN).
    """
    iterator = iter(frames)
    head = list(itertools.islice(iterator, FRAMES_MEASURED))
    if not head:
        return
    head[0] = _checked(head[0], None)
    head[1:] = [_checked(frame, head[0]) for frame in head[1:]]
    stacked_axis = None if channel_axis is None else _stacked_axis(channel_axis, head[0].ndim)
    if settings is None:
        settings = resolve(np.stack(head), h, channel_axis=stacked_axis, time_axis=0, **options)
    else:
        _check_frame_settings(settings, head[0], channel_axis, dict(options, h=h))
    if not settings.passes:  # nothing to remove: the frames come back as they are
        yield from (frame.copy() for frame in head)
        yield from (_checked(frame, head[0]).copy() for frame in iterator)
        return
    # The mirror at the sequence's ends needs more frames than the margin.
    margin = max(step.halo[0] for step in settings.passes)
    more = itertools.islice(iterator, max(0, margin + 1 - len(head)))
    head += [_checked(frame, head[0]) for frame in more]
    if len(head) <= margin:
        yield from denoise(np.stack(head), settings=settings)
        return
    yield from _Stream(settings, head, iterator).run()


def _stacked_axis(channel_axis, frame_ndim):
    """The frames' channel axis in the stack (time first)."""
    if not -frame_ndim <= channel_axis < frame_ndim:
        raise ValueError(f"channel_axis must be in [{-frame_ndim}, {frame_ndim - 1}] for "
                         f"{frame_ndim}-D frames, got {channel_axis}")
    return channel_axis + 1 if channel_axis >= 0 else channel_axis


def _check_frame_settings(settings, frame, channel_axis, options):
    """ValueError unless `settings` are for frames like `frame` and no option is given."""
    if not isinstance(settings, Settings) or settings.time_axis is None:
        raise ValueError("settings must be an nlmeans.Settings for frames (resolved with "
                         "time_axis)")
    given = sorted(name for name, value in options.items() if value is not None)
    if given:
        raise ValueError(f"settings= fixes {', '.join(given)}: leave them out")
    frame_axis = _frame_layout(settings).channel_axis  # non-negative, or None
    if channel_axis is not None:
        _stacked_axis(channel_axis, frame.ndim)  # ValueError if out of range
        if frame_axis is None or channel_axis % frame.ndim != frame_axis:
            raise ValueError(f"channel_axis {channel_axis} contradicts the settings' frames' "
                             f"{frame_axis}")
    nothing = dict.fromkeys(_SETTINGS_OPTIONS + ("dtype", "channel_axis", "time_axis"))
    _check_settings_fit(settings, np.expand_dims(frame, settings.time_axis), nothing)


def _checked(frame, first):
    """The frame as an array; ValueError unless it is like `first` (if given)."""
    frame, _ = check_image(frame)
    if first is not None and (frame.shape, frame.dtype) != (first.shape, first.dtype):
        raise ValueError(f"every frame must have the first's shape and dtype {first.shape} "
                         f"{first.dtype}, got {frame.shape} {frame.dtype}")
    return frame


class _Stream:
    """The passes of `settings` run batch by batch over the frames of `iterator`."""

    def __init__(self, settings, head, iterator):
        self.settings = settings
        self.iterator = iterator
        self.first = head[0]
        # The stack's layout with time removed: the frames' own.
        self.frame_settings = _frame_layout(settings)
        self.noisy = {}
        self.read = 0
        self.length = None  # known once the iterator is exhausted
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
        volume, _ = as_channel_first_volume(frame, self.frame_settings.channel_axis)
        if self.frame_settings.n_spatial == 2:
            volume = volume[:, 0]  # (C, Y, X): stacked into (C, T, Y, X)
        # Kept in their own dtype (8-bit video: a quarter of float32's memory) and
        # converted when a batch is stacked, which is exact.
        self.noisy[self.read] = volume
        self.read += 1

    def _read_more(self):
        """Read up to a batch more frames; the sequence's length once it ends."""
        wanted = self.read + self.batch
        for frame in itertools.islice(self.iterator, self.batch):
            self._add(_checked(frame, self.first))
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
        indices = [_mirror(i, self.length) for i in range(start - self.margins[k],
                                                          stop + self.margins[k])]
        guide = np.stack([self.results[k - 1][i] for i in indices], axis=1) \
            if step.guided else None
        last = k == len(self.passes) - 1
        backend = partial(numba_pass, frames_padded=True)
        # The stack is passed, not kept: the colour transform's copy replaces it.
        out = _run_pass(np.stack([self.noisy[i] for i in indices], axis=1)
                        .astype(self.settings.work_dtype, copy=False), guide, step,
                        self.settings.work_dtype, self.bounds,
                        last and self.first.dtype.kind != "f", backend, self.transform)
        for offset, index in enumerate(range(start, stop)):
            self.results[k][index] = out[:, offset]
        self.done[k] = stop

    def _forget(self):
        """Drop the frames that no batch still to run reads."""
        keep_noisy = min(done - margin for done, margin in zip(self.done, self.margins))
        for index in [i for i in self.noisy if i < keep_noisy]:
            del self.noisy[index]
        for k in range(len(self.passes) - 1):
            keep = self.done[k + 1] - self.margins[k + 1]
            for index in [i for i in self.results[k] if i < keep]:
                del self.results[k][index]

    def _to_frame(self, values):
        if self.frame_settings.n_spatial == 2:
            values = values[:, None]
        return _in_callers_layout(values, self.frame_settings, self.first.dtype, self.bounds)


def _mirror(index, length):
    """A frame index mirrored at the sequence's ends (NumPy's 'reflect')."""
    if index < 0:
        return -index
    if length is not None and index >= length:
        return 2 * (length - 1) - index
    return index


def _frame_layout(settings):
    """Settings whose layout is one frame's: the stack's without its time axis."""
    channel = settings.channel_axis
    if channel is not None and channel > settings.time_axis:
        channel -= 1
    return replace(settings, n_spatial=settings.n_spatial - 1, channel_axis=channel,
                   time_axis=None, passes=())
