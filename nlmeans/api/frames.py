"""Frames in bounded memory: :func:`denoise_frames` denoises a sequence of any
length, one frame out as soon as the frames its window reads are in (the
runner: :mod:`nlmeans.runners.frames`)."""

import itertools

import numpy as np

from nlmeans.api.denoise import denoise
from nlmeans.api.resolve import FRAMES_MEASURED, SETTINGS_OPTIONS, check_settings_fit, resolve
from nlmeans.model.settings import Settings
from nlmeans.runners.frames import (FrameStream, checked_frame, frame_layout,
                                    stream_bayes_frames)


def denoise_frames(frames, h=None, *, channel_axis=None, settings=None, **options):
    """Denoise a sequence of frames one after another, in bounded memory.

    Parameters
    ----------
    frames : iterable of array_like
        2-D frames (Y, X) or 3-D ones (Z, Y, X), or either with channels along
        `channel_axis`, all of the same shape and dtype: a list, a generator,
        a video reader.
    h, channel_axis, **options
        As for :func:`nlmeans.api.denoise` with ``time_axis=0`` (`channel_axis` is
        the frames' own). The settings are decided on the first frames (at
        most ``FRAMES_MEASURED``), as ``denoise`` decides them for a sequence
        in memory.
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
    head[0] = checked_frame(head[0], None)
    head[1:] = [checked_frame(frame, head[0]) for frame in head[1:]]
    stacked_axis = None if channel_axis is None else _stacked_axis(channel_axis, head[0].ndim)
    if settings is None:
        settings = resolve(np.stack(head), h, channel_axis=stacked_axis, time_axis=0, **options)
    else:
        _check_frame_settings(settings, head[0], channel_axis, dict(options, h=h))
    if not settings.passes:  # nothing to remove: the frames come back as they are
        yield from (frame.copy() for frame in head)
        yield from (checked_frame(frame, head[0]).copy() for frame in iterator)
        return
    if settings.method == "nlbayes":
        yield from stream_bayes_frames(settings, head, iterator)
        return
    # The padding at the sequence's ends needs more frames than the margin.
    margin = max(step.halo[0] for step in settings.passes)
    more = itertools.islice(iterator, max(0, margin + 1 - len(head)))
    head += [checked_frame(frame, head[0]) for frame in more]
    if len(head) <= margin:
        yield from denoise(np.stack(head), settings=settings)
        return
    yield from FrameStream(settings, head, iterator).run()


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
    frame_axis = frame_layout(settings).channel_axis  # non-negative, or None
    if channel_axis is not None:
        _stacked_axis(channel_axis, frame.ndim)  # ValueError if out of range
        if frame_axis is None or channel_axis % frame.ndim != frame_axis:
            raise ValueError(f"channel_axis {channel_axis} contradicts the settings' frames' "
                             f"{frame_axis}")
    nothing = dict.fromkeys(SETTINGS_OPTIONS + ("dtype", "channel_axis", "time_axis"))
    check_settings_fit(settings, np.expand_dims(frame, settings.time_axis), nothing)
