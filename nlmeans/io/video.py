"""Reading and writing frame sequences: video files (through PyAV, the ``av``
package: ``pip install 'nlmeans[video]'``), folders of frame images and
multi-page TIFF time series.

A :class:`Source` yields the frames one at a time and says what it knows of
the sequence (frame rate, size, rotation, length); a writer takes the denoised
frames one at a time and writes them to a temporary file (or folder) beside the
output, which :meth:`commit` renames into place, so that an interrupted run
leaves nothing half-written. Video is decoded to 8-bit RGB; the video writer
keeps the frame rate, the size, the display rotation and, where the container
can hold it, the audio stream (copied, not re-encoded).
"""

import os
import re
import shutil
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from nlmeans.io.images import ImageIOError, output_mode, read_image, write_image
from nlmeans.io.tempfiles import create_private_file, discard, temp_name

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
# Outputs: H.264 in these containers; FFV1 (lossless) in Matroska.
VIDEO_OUTPUTS = (".mp4", ".mov", ".mkv", ".m4v")
FRAME_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp")


def _av():
    try:
        import av  # optional: the [video] extra
    except ImportError:
        raise ImageIOError("video files need PyAV: pip install 'nlmeans[video]'") from None
    return av


@dataclass
class SequenceInfo:
    """What a source knows of its sequence (frames 0: unknown)."""

    frames: int
    fps: Fraction | None = None
    rotation: int = 0
    audio: str | None = None  # the audio codec's name, if there is an audio stream


def _natural_key(name):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class Source:
    """Frames of a video file, a folder of images or a multi-page TIFF."""

    def __init__(self, path, time_series=False):
        self.path = path
        self.container = None
        if not os.path.exists(path):
            raise ImageIOError(f"{path}: no such file or folder")
        if os.path.isdir(path):
            self.kind = "folder"
            self.files = sorted((f for f in os.listdir(path)
                                 if os.path.splitext(f)[1].lower() in FRAME_EXTENSIONS
                                 and not f.startswith(".")), key=_natural_key)
            if not self.files:
                raise ImageIOError(f"{path}: no frame images in the folder (looked for "
                                   f"{', '.join(FRAME_EXTENSIONS)})")
            self.info = SequenceInfo(len(self.files))
        elif os.path.splitext(path)[1].lower() in (".tif", ".tiff"):
            if not time_series:
                raise ImageIOError(f"{path}: a TIFF is read as a time series of its pages only "
                                   f"with --time-series")
            self.kind = "tiff"
            self.info = SequenceInfo(self._tiff_pages())
        elif os.path.splitext(path)[1].lower() in FRAME_EXTENSIONS:
            raise ImageIOError(f"{path}: a still image, not a video; denoise it with "
                               f"nlmeans denoise, or give a folder of frames")
        else:
            self.kind = "video"
            self._open_video()

    def _tiff_pages(self):
        import tifffile  # deferred: 0.03 s, only TIFF sequences need it

        try:
            with tifffile.TiffFile(self.path) as tif:
                return len(tif.pages)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
            raise ImageIOError(f"{self.path}: cannot read as TIFF ({exc})") from None

    def _open_video(self):
        av = _av()
        try:
            self.container = av.open(self.path)
        except av.FFmpegError as exc:
            raise ImageIOError(f"{self.path}: cannot read as video ({exc.strerror or exc})") \
                from None
        if not self.container.streams.video:
            self.close()
            raise ImageIOError(f"{self.path}: has no video stream")
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        fps = self.video.average_rate or self.video.guessed_rate
        frames = self.video.frames
        if not frames and self.video.duration and fps:
            frames = round(self.video.duration * self.video.time_base * fps)
        self.info = SequenceInfo(int(frames or 0), Fraction(fps) if fps else None, 0,
                                 self.audio.codec_context.name if self.audio else None)

    def frames(self, audio_sink=None):
        """Yield (frame array, channel axis); a video's audio packets go to
        `audio_sink(packet)` as they are read."""
        if self.kind == "folder":
            for name in self.files:
                yield _frame_of(read_image(os.path.join(self.path, name)),
                                os.path.join(self.path, name))
        elif self.kind == "tiff":
            import tifffile  # deferred: 0.03 s, only TIFF sequences need it

            with tifffile.TiffFile(self.path) as tif:
                for page in tif.pages:
                    pixels = page.asarray()
                    yield pixels, (-1 if pixels.ndim == 3 else None)
        else:
            yield from self._video_frames(audio_sink)

    def _video_frames(self, audio_sink):
        av = _av()
        streams = [self.video] + ([self.audio] if self.audio is not None and audio_sink else [])
        try:
            for packet in self.container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        audio_sink(packet)
                    continue
                for frame in packet.decode():
                    self.info.rotation = int(getattr(frame, "rotation", 0) or 0)
                    yield frame.to_ndarray(format="rgb24"), -1
        except av.FFmpegError as exc:
            raise ImageIOError(f"{self.path}: cannot decode ({exc.strerror or exc})") from None

    def close(self):
        if self.container is not None:
            self.container.close()
            self.container = None


def _frame_of(image, name):
    """A frame file's pixels and channel axis; alpha is refused."""
    if image.alpha is not None:
        raise ImageIOError(f"{name}: frames with an alpha channel are not supported")
    if image.is_volume:
        raise ImageIOError(f"{name}: a multi-page file is not a frame")
    return image.pixels, image.channel_axis


def output_kind(path):
    """'video', 'tiff' or 'folder' for OUTPUT (a folder: a path ending in a
    separator, an existing folder, or a name without a suffix)."""
    suffix = os.path.splitext(path)[1].lower()
    if path.endswith(os.sep) or os.path.isdir(path) or not suffix:
        return "folder"
    if suffix in (".tif", ".tiff"):
        return "tiff"
    if suffix in VIDEO_OUTPUTS:
        return "video"
    raise ImageIOError(f"{path}: unsupported output {suffix!r}; use a video "
                       f"({', '.join(VIDEO_OUTPUTS)}), a .tif time series or a folder")


class _Pending:
    """A temporary path beside `path`, renamed to it by commit() and removed by abort()."""

    def __init__(self, path, folder=False):
        self.path = path.rstrip(os.sep)
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise ImageIOError(f"{path}: output folder {parent} does not exist")
        self.tmp = temp_name(parent, "" if folder else os.path.splitext(self.path)[1])
        try:
            if folder:
                os.mkdir(self.tmp, 0o700)
            else:
                os.close(create_private_file(self.tmp))
        except BaseException as exc:  # Ctrl-C included: the name is known, so nothing stays
            discard(self.tmp)
            if isinstance(exc, OSError):
                raise ImageIOError(f"{path}: cannot write in {parent} ({exc.strerror})") \
                    from None
            raise

    def commit(self):
        if os.path.isdir(self.tmp):
            if os.path.isdir(self.path):
                shutil.rmtree(self.path)  # --overwrite of a frame folder
            os.chmod(self.tmp, 0o777 & ~_umask())
        else:
            # The permissions of a file written by write_image (a new file's, or
            # those of the file it replaces); the temporary file's are private.
            os.chmod(self.tmp, output_mode(self.path))
        os.replace(self.tmp, self.path)

    def abort(self):
        discard(self.tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class VideoWriter:
    """Frames to a video file: H.264 at `crf` (yuv420p; yuv444p for odd sizes), or
    FFV1 (lossless RGB) with `lossless`; the source's frame rate and rotation,
    and its audio packets copied where the container takes them."""

    def __init__(self, path, info, shape, crf=18, lossless=False, audio_from=None, warn=print):
        av = _av()
        self.pending = _Pending(path)
        self.info = info
        self.crf, self.lossless = crf, lossless
        try:  # the caller aborts only a writer it got back
            self.container = av.open(self.pending.tmp, mode="w")
            self._open(shape)
            self.audio = None
            if audio_from is not None:
                try:
                    self.audio = self.container.add_stream_from_template(audio_from)
                except (av.FFmpegError, ValueError) as exc:
                    warn(f"{path}: audio not kept ({exc})")
        except BaseException:
            self.pending.abort()
            raise
        self.warn = warn
        self.path = path

    def _open(self, shape):
        """Add the video stream (every stream is added before the first packet)."""
        height, width = shape[:2]
        rate = self.info.fps or Fraction(25)
        if self.lossless:
            self.stream = self.container.add_stream("ffv1", rate=rate)
            self.stream.pix_fmt = "bgr0"
        else:
            self.stream = self.container.add_stream("libx264", rate=rate)
            self.stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
            # x264 holds its look-ahead frames: 40 by default, 400 MB at 1080p; 10
            # (x264's own choice for its faster presets) keep the peak of a 1080p
            # run within 1.5 GB.
            self.stream.options = {"crf": str(self.crf), "rc-lookahead": "10"}
        self.stream.width, self.stream.height = width, height
        if self.info.rotation:
            self.stream.set_display_rotation(self.info.rotation)

    def audio_packet(self, packet):
        if self.audio is None:
            return
        packet.stream = self.audio
        try:
            self.container.mux(packet)
        except _av().FFmpegError as exc:
            self.warn(f"{self.path}: audio not kept ({exc.strerror or exc})")
            self.audio = None

    def write(self, frame):
        av = _av()
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ImageIOError(f"{self.path}: video output takes 8-bit RGB frames; write "
                               f"frames of {frame.dtype} to a .tif or a folder")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)

    def commit(self):
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        self.pending.commit()

    def abort(self):
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is removed anyway
            pass
        self.pending.abort()


class TiffWriter:
    """Frames as the pages of one series of a (Big)TIFF, uncompressed (TIFF
    readers then see one (T, Y, X[, C]) array: tifffile.imread, ImageJ, Fiji)."""

    def __init__(self, path):
        import tifffile  # deferred: 0.03 s, only TIFF sequences need it

        self.pending = _Pending(path)
        try:  # the caller aborts only a writer it got back
            self.writer = tifffile.TiffWriter(self.pending.tmp, bigtiff=True)
        except BaseException:
            self.pending.abort()
            raise

    def write(self, frame):
        self.writer.write(frame, photometric="rgb" if frame.ndim == 3 else "minisblack",
                          contiguous=True)

    def commit(self):
        self.writer.close()
        self.pending.commit()

    def abort(self):
        self.writer.close()
        self.pending.abort()


class FolderWriter:
    """Frames as numbered images in a folder: PNG, or TIFF for float frames."""

    def __init__(self, path):
        self.pending = _Pending(path, folder=True)
        self.count = 0

    def write(self, frame):
        suffix = ".tif" if frame.dtype.kind == "f" or frame.dtype.itemsize > 2 else ".png"
        self.count += 1
        write_image(os.path.join(self.pending.tmp, f"frame_{self.count:06d}{suffix}"), frame)

    def commit(self):
        self.pending.commit()

    def abort(self):
        self.pending.abort()
