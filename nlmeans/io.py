"""Reading and writing image files without losing bit depth, plus atomic writes.

imageio (with Pillow and tifffile) does most of the work. Pillow silently
reduces 16-bit colour PNGs to 8 bits, so those go through pypng instead.
Every error a user can cause raises :class:`ImageIOError` with a one-line
message.
"""

import os
import tempfile
from dataclasses import dataclass

import numpy as np

#: Extensions we write, by lower-case suffix.
WRITABLE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp")
_EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".bmp", ".webp")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageIOError(Exception):
    """A file could not be read or written; the message is meant for the user."""


@dataclass
class Image:
    """Pixels split into what is denoised and what is passed through.

    ``pixels`` is (Y, X) for grey or (Y, X, C) for colour; ``alpha`` is (Y, X) or None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None

    @property
    def is_colour(self):
        return self.pixels.ndim == 3

    def merged(self, pixels=None):
        """The full array to write: `pixels` (default: own) with alpha re-attached."""
        pixels = self.pixels if pixels is None else pixels
        if self.alpha is None:
            return pixels
        base = pixels if pixels.ndim == 3 else pixels[..., None]
        return np.concatenate([base, self.alpha[..., None].astype(base.dtype)], axis=-1)


def _png_header(path):
    """(bit depth, colour type) of a PNG file, or None if it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _read_png16(path):
    import png

    reader = png.Reader(filename=path)
    width, height, rows, info = reader.asDirect()
    planes = info["planes"]
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    return array.reshape(height, width, planes) if planes > 1 else array.reshape(height, width)


def _write_png16(path, array):
    import png

    planes = 1 if array.ndim == 2 else array.shape[2]
    writer = png.Writer(width=array.shape[1], height=array.shape[0], bitdepth=16,
                        greyscale=planes in (1, 2), alpha=planes in (2, 4))
    with open(path, "wb") as f:
        writer.write(f, array.reshape(array.shape[0], -1).astype(np.uint16))


def read_array(path):
    """Read an image file into an array, keeping its bit depth.

    Raises ImageIOError with a one-line reason for missing, unreadable, empty or
    corrupt files.
    """
    if not os.path.exists(path):
        raise ImageIOError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImageIOError(f"{path}: is a folder, not an image file")
    if not os.access(path, os.R_OK):
        raise ImageIOError(f"{path}: permission denied")
    if os.path.getsize(path) == 0:
        raise ImageIOError(f"{path}: empty file")
    try:
        header = _png_header(path)
        if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
            return _read_png16(path)
        import imageio.v3 as iio

        array = iio.imread(path)
    except ImageIOError:
        raise
    except Exception as exc:  # every reader error means: not a readable image
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Could not find a backend" in reason:
            reason = "unknown or corrupt file format"
        raise ImageIOError(f"{path}: cannot read image ({reason})") from None
    return np.asarray(array)


def read_image(path):
    """Read a 2-D image file as an :class:`Image` (grey or colour, alpha split off)."""
    array = read_array(path)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype.kind not in "uif":
        raise ImageIOError(f"{path}: unsupported pixel type {array.dtype}")
    if array.ndim == 2:
        return Image(array)
    if array.ndim == 3 and array.shape[2] in (1, 2, 3, 4):
        channels = array.shape[2]
        if channels in (2, 4):  # grey+alpha or RGBA
            return Image(_squeeze_grey(array[..., :-1]), array[..., -1].copy())
        return Image(_squeeze_grey(array))
    raise ImageIOError(f"{path}: unsupported image shape {array.shape} "
                       f"(expected Y x X with 1-4 channels)")


def _squeeze_grey(array):
    return array[..., 0] if array.shape[-1] == 1 else array


def check_writable_extension(path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in WRITABLE_EXTENSIONS:
        raise ImageIOError(f"{path}: unsupported output format {ext or '(no extension)'!r}; "
                           f"use one of {', '.join(WRITABLE_EXTENSIONS)}")
    return ext


def write_array(path, array, *, quality=95):
    """Write `array` to `path` atomically: a temp file in the same folder, then a rename.

    A crash or Ctrl-C never leaves a truncated image at `path`. 16-bit arrays stay
    16-bit (a format that cannot hold them raises ImageIOError).
    """
    ext = check_writable_extension(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ImageIOError(f"{path}: output folder {folder} does not exist")
    if array.dtype != np.uint8 and ext in _EIGHT_BIT_ONLY:
        raise ImageIOError(f"{path}: {ext} cannot store {array.dtype} pixels; use .png or .tif")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".nlmeans-", suffix=ext, dir=folder)
    except OSError as exc:
        raise ImageIOError(f"{path}: cannot write in {folder} ({exc.strerror})") from None
    os.close(fd)
    try:
        _write_to(tmp, array, ext, quality)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, ImageIOError) or not isinstance(exc, Exception):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageIOError(f"{path}: cannot write image ({reason})") from None


def _write_to(tmp, array, ext, quality):
    if ext == ".png" and array.dtype == np.uint16 and array.ndim == 3:
        _write_png16(tmp, array)
        return
    import imageio.v3 as iio

    if ext in (".jpg", ".jpeg"):
        iio.imwrite(tmp, array, extension=ext, quality=quality)
    elif ext in (".tif", ".tiff"):
        iio.imwrite(tmp, array, extension=ext, plugin="tifffile")
    else:
        iio.imwrite(tmp, array, extension=ext)
