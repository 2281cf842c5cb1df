"""``nlmeans video INPUT OUTPUT``: denoise a video or a sequence of frames."""

import itertools
import os
import sys
import time

import click

from nlmeans_cli.options import denoise_kwargs, frame_denoise_options

EXAMPLE = """
Examples:

\b
  nlmeans video noisy.mp4 clean.mp4                      # everything automatic
  nlmeans video noisy.mp4 clean.mkv --lossless           # FFV1, for archiving
  nlmeans video frames/ clean-frames/                    # a folder of PNG/TIFF frames
  nlmeans video cells.tif cells-clean.tif --time-series  # a multi-page TIFF time series

Each pixel's search window spans its own frame and --temporal-radius frames
before and after; only those frames are held in memory, whatever the length.
--method nlbayes runs NL-Bayes over space and time (groups of 2-D patches from
the frame and its neighbours): better frames, a few times slower.
"""


@click.command("video", epilog=EXAMPLE)
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True, readable=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=True, readable=False))
@frame_denoise_options
@click.option("--temporal-radius", type=click.IntRange(min=0), default=None,
              help="Frames before and after each frame in the search window. "
                   "[default: 3 (1 in the second pass) in automatic mode, 2 with a numeric --h, "
                   "4 with --method nlbayes (3 at 720p colour, 1 at 1080p colour)]")
@click.option("--motion/--no-motion", "follow_motion", default=True, show_default=True,
              help="Estimate the frames' motion (one move a frame) and also search, in "
                   "each other frame, where the pixel's content went: a camera pan of more "
                   "than the window's reach a frame is still found. --no-motion: the "
                   "windows stay around the pixel.")
@click.option("--time-series", is_flag=True,
              help="INPUT is a multi-page TIFF whose pages are the frames.")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True,
              help="H.264 quality of a video OUTPUT: lower is better and larger "
                   "(18 looks lossless to most eyes).")
@click.option("--lossless", is_flag=True,
              help="Write lossless FFV1 video (OUTPUT must be .mkv) instead of H.264.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def video_command(input_path, output_path, temporal_radius, follow_motion, time_series, crf,
                  lossless, overwrite, quiet, **options):
    """Denoise the video (or frame folder, or TIFF time series) INPUT into OUTPUT.

    Video is read and written through PyAV (pip install 'nlmeans[video]'),
    decoded to 8-bit RGB; a video OUTPUT (.mp4, .mov, .mkv, .m4v) keeps the
    frame rate, the display rotation and the audio stream (copied) where the
    container can hold it. OUTPUT may also be a folder (numbered PNG frames, or
    TIFF for float frames) or a .tif time series, which keep the frames' pixel
    type. The output is written under a temporary name and renamed when
    complete: Ctrl-C leaves no partial output.
    """
    from nlmeans.io import ImageIOError
    from nlmeans.io.video import output_kind

    kwargs = dict(_video_kwargs(options, temporal_radius),
                  follow_motion=None if follow_motion else False)
    try:
        kind = output_kind(output_path)
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None
    if lossless and (kind != "video" or os.path.splitext(output_path)[1].lower() != ".mkv"):
        raise click.UsageError("--lossless writes FFV1 video: OUTPUT must be a .mkv file")
    _check_paths(input_path, output_path, overwrite)
    from nlmeans_cli.processing import log_to_stderr

    log_to_stderr(quiet)
    try:
        count, seconds = _run(input_path, output_path, kind, kwargs, time_series, crf, lossless,
                              interactive=not quiet)
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(f"{input_path}: {exc}") from None
    if not quiet:
        rate = count / seconds if seconds > 0 else 0.0
        click.echo(f"{output_path}: {count} frames denoised in {seconds:.1f} s "
                   f"({rate:.2f} frames/s)", err=True)


def _video_kwargs(options, temporal_radius):
    """nlmeans.denoise_frames's keywords; a usage error for what frames cannot take."""
    if options.get("device") == "cuda":
        raise click.UsageError("video runs on the CPU: leave out --device cuda")
    kwargs = denoise_kwargs(**options)
    kwargs.pop("device")
    return dict(kwargs, temporal_radius=temporal_radius)


def _check_paths(input_path, output_path, overwrite):
    from nlmeans_cli.processing import same_file

    if not os.path.exists(input_path):
        raise click.ClickException(f"{input_path}: no such file or folder")
    if same_file(input_path, output_path.rstrip(os.sep)):
        raise click.ClickException(f"{output_path}: OUTPUT is the INPUT; refusing to "
                                   f"overwrite the input")
    if os.path.lexists(output_path.rstrip(os.sep)) and not overwrite:
        raise click.ClickException(f"{output_path}: already exists (use --overwrite)")


def _run(input_path, output_path, kind, kwargs, time_series, crf, lossless, interactive):
    """Denoise INPUT's frames into OUTPUT; (frames written, seconds)."""
    from nlmeans import denoise_frames
    from nlmeans.io.video import FolderWriter, Source, TiffWriter, VideoWriter
    from nlmeans_cli.memory import map_large_arrays
    from nlmeans_cli.signals import raise_if_signalled

    started = time.perf_counter()
    map_large_arrays()  # so that a long run peaks as a short one does
    source = Source(input_path, time_series=time_series)
    writer = None
    early_audio = []  # audio packets read before the writer exists

    def audio_sink(packet):
        if writer is None:
            early_audio.append(packet)
        else:
            writer.audio_packet(packet)

    try:
        frames = source.frames(audio_sink=audio_sink if kind == "video" else None)
        first = next(frames, None)
        if first is None:
            raise click.ClickException(f"{input_path}: has no frames")
        pixels, axis = first
        _check_output_takes(kind, pixels, output_path)
        kwargs = _fitted_temporal_radius(kwargs, source.info.frames, interactive)
        if kind == "video":
            writer = VideoWriter(output_path, source.info, pixels.shape, crf=crf,
                                 lossless=lossless, audio_from=getattr(source, "audio", None),
                                 warn=lambda message: click.echo(message, err=True))
            for packet in early_audio:
                writer.audio_packet(packet)
            early_audio.clear()
        else:
            writer = (TiffWriter if kind == "tiff" else FolderWriter)(output_path)
        stream = itertools.chain([pixels], (p for p, _ in frames))
        grey_to_rgb = kind == "video" and pixels.ndim == 2
        count = 0
        with _frames_bar(source.info.frames, interactive) as advance:
            for out in denoise_frames(stream, channel_axis=axis, **kwargs):
                raise_if_signalled()
                writer.write(_as_rgb(out) if grey_to_rgb else out)
                count += 1
                advance()
        writer.commit()
        writer = None
        return count, time.perf_counter() - started
    finally:
        if writer is not None:
            writer.abort()
        source.close()


def _fitted_temporal_radius(kwargs, frames, interactive):
    """The keywords with --temporal-radius cut to the sequence's length less one,
    where the length is known (as --ds/--Ds are cut to the image): more frames
    reach only mirrored copies of the ones the window already holds, at a cost
    that grows with the radius."""
    radius = kwargs.get("temporal_radius")
    if radius is None or not frames or radius <= frames - 1:
        return kwargs
    if interactive:
        click.echo(f"--temporal-radius {radius} reaches beyond the sequence ({frames} "
                   f"frames): using {frames - 1}", err=True)
    return dict(kwargs, temporal_radius=frames - 1)


def _check_output_takes(kind, frame, output_path):
    """Refuse, before any work, frames a video output cannot hold."""
    import numpy as np

    if kind == "video" and (frame.dtype != np.uint8 or frame.ndim == 3 and frame.shape[2] != 3):
        raise click.ClickException(f"{output_path}: video output takes 8-bit grey or RGB "
                                   f"frames, got {frame.dtype} with shape {frame.shape}; write "
                                   f"a .tif time series or a folder instead")


def _as_rgb(frame):
    import numpy as np

    return np.repeat(frame[..., None], 3, axis=2)


class _frames_bar:
    """A progress bar over the frames (count, frames/s, time left) on a terminal;
    entering gives the function to call once per frame written."""

    def __init__(self, total, interactive):
        self.bar = None
        if interactive and sys.stderr.isatty() and total:
            self.started = time.perf_counter()
            self.bar = click.progressbar(length=total, label="denoising", file=sys.stderr,
                                         show_eta=True, show_pos=True,
                                         item_show_func=self._rate)
        self.done = 0

    def _rate(self, _):
        seconds = time.perf_counter() - self.started
        return f"{self.done / seconds:.2f} frames/s" if seconds > 0 and self.done else None

    def __enter__(self):
        if self.bar is not None:
            self.bar.__enter__()

        def advance():
            self.done += 1
            if self.bar is not None:
                self.bar.update(1, self.done)
        return advance

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
