"""Reading and writing image files without losing bit depth, colour or data.

- PNG, JPEG, TIFF (multi-page too), BMP and WebP; 8-bit, 16-bit and float32
  pixels come back in the same type. Pillow silently reduces 16-bit colour PNGs
  to 8 bits, so those go through pypng; TIFF goes through tifffile.
- Grey, grey+alpha, RGB, RGBA; palette images become RGB(A). Alpha is split off
  so that it is passed through untouched, never denoised.
- EXIF orientation is applied on reading (the pixels are turned the way a viewer
  shows them) and the output is written without it, so both look the same.
- An embedded ICC colour profile is carried to the output where the format
  holds one (PNG, JPEG, TIFF, WebP).
- Writes are atomic: a temporary file in the target folder, then a rename.

Every error a user can cause raises :class:`ImageIOError` with a one-line message.
"""

import io
import os
import stat
from dataclasses import dataclass

import numpy as np

from nlmeans.io.tempfiles import create_private_file, discard, temp_name

#: Output formats by lower-case suffix.
FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG",
           ".bmp": "BMP", ".webp": "WebP"}
WRITABLE_EXTENSIONS = tuple(FORMATS)
#: Suffixes `nlmeans batch` picks up by default.
READABLE_EXTENSIONS = WRITABLE_EXTENSIONS
_PIXEL_TYPES = {  # what each format stores
    "PNG": (np.uint8, np.uint16), "JPEG": (np.uint8,), "BMP": (np.uint8,), "WebP": (np.uint8,),
    "TIFF": (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.float16,
             np.float32, np.float64),
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class ImageIOError(Exception):
    """A file could not be read or written; the message is meant for the user."""


@dataclass
class Image:
    """Pixels split into what is denoised and what is passed through.

    ``pixels`` is (Y, X) grey or (Y, X, C) colour, or for a volume (a multi-page
    TIFF) (Z, Y, X) or (Z, Y, X, C); ``alpha`` has the same shape without C, or
    is None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    is_volume: bool = False
    exif: bytes | None = None

    @property
    def is_colour(self):
        return self.pixels.ndim == (4 if self.is_volume else 3)

    @property
    def channel_axis(self):
        return -1 if self.is_colour else None

    def merged(self, pixels=None):
        """The full array to write: `pixels` (default: own) with alpha re-attached."""
        pixels = self.pixels if pixels is None else pixels
        if self.alpha is None:
            return pixels
        base = pixels if self.is_colour else pixels[..., None]
        return np.concatenate([base, self.alpha[..., None].astype(base.dtype)], axis=-1)


def _reason(exc):
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Could not find a backend" in text or "cannot identify image file" in text:
        return "unknown or corrupt file format"
    return text


def _check_readable(path):
    if not os.path.exists(path):
        raise ImageIOError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImageIOError(f"{path}: is a folder, not an image file")
    if not os.access(path, os.R_OK):
        raise ImageIOError(f"{path}: permission denied")
    if os.path.getsize(path) == 0:
        raise ImageIOError(f"{path}: empty file")


def _read_png16(data):
    import png  # deferred: only 16-bit colour PNGs need pypng

    width, height, rows, info = png.Reader(bytes=data).asDirect()
    planes = info["planes"]
    array = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    return array.reshape(height, width, planes) if planes > 1 else array.reshape(height, width)


def _read_tiff(data):
    """(array, axes, icc) of a TIFF's first series; axes as tifffile names them."""
    import tifffile  # deferred: 0.03 s of a small PNG's run

    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        if len(tif.series) > 1:
            # Pages of different sizes or types form several series: refuse rather
            # than denoise the first and drop the rest.
            shapes = ", ".join(str(s.shape) for s in tif.series[:4])
            raise ImageIOError(f"{len(tif.series)} images of different sizes or types in one "
                               f"TIFF ({shapes}{', ...' if len(tif.series) > 4 else ''}); "
                               f"split it into files first")
        series = tif.series[0]
        array = series.asarray()
        icc = tif.pages[0].tags.get(34675)
        return array, series.axes, (bytes(icc.value) if icc is not None else None)


def _read_pillow(data):
    """(array, icc) through Pillow, EXIF orientation applied, palettes expanded.

    Pillow's decompression-bomb guard refuses photos and scans above 179
    megapixels; the memory check before denoising is this package's guard, so the
    limit is lifted while the file is decoded (and restored after).
    """
    from PIL import Image as PILImage  # deferred: 0.05 s with its plugins

    limit = PILImage.MAX_IMAGE_PIXELS
    PILImage.MAX_IMAGE_PIXELS = None
    try:
        return _decode_pillow(data)
    finally:
        PILImage.MAX_IMAGE_PIXELS = limit


def _exif_upright(im):
    """The image's EXIF block with the orientation set to 1 (the pixels are turned
    upright when read), or None: camera, date and exposure fields are kept."""
    exif = im.getexif()
    if not len(exif):
        return None
    if 0x0112 in exif:
        exif[0x0112] = 1
    return exif.tobytes()


def _decode_pillow(data):
    from PIL import Image as PILImage  # deferred: 0.05 s with its plugins
    from PIL import ImageOps

    with PILImage.open(io.BytesIO(data)) as im:
        # Animations (camera JPEGs may hold a second, preview picture: not refused).
        if im.format in ("GIF", "PNG", "WEBP") and getattr(im, "n_frames", 1) > 1:
            raise ImageIOError(f"{im.n_frames} frames (an animation); nlmeans denoises still "
                               f"images: extract the frames first")
        im.load()
        icc = im.info.get("icc_profile")
        upright = ImageOps.exif_transpose(im)
        exif = _exif_upright(im)  # after the turn, which reads the orientation
        im = upright
        if im.mode in ("P", "PA"):
            im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
        elif im.mode == "1":
            im = im.convert("L")
        elif im.mode == "CMYK":
            im = im.convert("RGB")
        elif im.mode in ("I", "F"):
            pass  # 32-bit integer / float grey: numpy keeps the values
        array = np.asarray(im)
        if im.mode == "I;16" or im.mode == "I;16B":
            array = array.astype(np.uint16)
        elif im.mode == "I" and array.size and 0 <= array.min() and array.max() <= 65535:
            array = array.astype(np.uint16)
        return array, icc, exif


def read_bytes(data, name="<stdin>"):
    """Decode an image file's bytes into an :class:`Image`."""
    if not data:
        raise ImageIOError(f"{name}: empty file")
    try:
        if data.startswith(TIFF_SIGNATURES):
            array, axes, icc = _read_tiff(data)
            return _split(array, axes, icc, name)
        if (data.startswith(_PNG_SIGNATURE) and len(data) >= 26 and data[24] == 16
                and data[25] in (2, 4, 6)):
            # 16-bit colour or grey+alpha PNG: Pillow would drop to 8 bits.
            array, icc, exif = _read_png16(data), None, None
        else:
            array, icc, exif = _read_pillow(data)
    except ImageIOError as exc:  # the readers' own refusals, without the file's name
        raise ImageIOError(f"{name}: {exc}") from None
    except Exception as exc:  # every decoder error means: not a readable image
        raise ImageIOError(f"{name}: cannot read image ({_reason(exc)})") from None
    axes = "YX" if array.ndim == 2 else "YXS"
    return _split(array, axes, icc, name, exif)


def _split(array, axes, icc, name, exif=None):
    """Image from a decoded array whose axes tifffile-style letters describe."""
    array = np.asarray(array)
    if "S" in axes and not axes.endswith("S"):  # colour stored as separate planes
        array = np.moveaxis(array, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype.kind not in "uif":
        raise ImageIOError(f"{name}: unsupported pixel type {array.dtype}")
    if array.size == 0:
        raise ImageIOError(f"{name}: image has no pixels (shape {array.shape})")
    colour = axes.endswith("S") and array.ndim >= 3
    spatial = array.ndim - (1 if colour else 0)
    if spatial not in (2, 3):
        raise ImageIOError(f"{name}: unsupported image shape {array.shape} (axes {axes}); "
                           f"expected a 2-D image or a stack of them")
    if colour and array.shape[-1] not in (1, 2, 3, 4):
        raise ImageIOError(f"{name}: unsupported number of channels {array.shape[-1]}")
    is_volume = spatial == 3
    if colour and array.shape[-1] in (2, 4):  # grey+alpha or RGBA
        pixels, alpha = array[..., :-1], array[..., -1].copy()
    else:
        pixels, alpha = array, None
    if colour and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    return Image(np.ascontiguousarray(pixels), alpha, icc, is_volume, exif)


def read_image(path):
    """Read an image file (or a multi-page TIFF volume) as an :class:`Image`."""
    _check_readable(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImageIOError(f"{path}: cannot read ({exc.strerror})") from None
    return read_bytes(data, path)


def read_array(path):
    """The full pixel array of an image file (alpha included), in its own dtype."""
    return read_image(path).merged()


def format_of(path, explicit=None):
    """Output format name ('PNG', 'TIFF', ...) from --format or the file's suffix."""
    if explicit:
        key = "." + explicit.lower().lstrip(".")
    else:
        key = os.path.splitext(path)[1].lower()
    if key not in FORMATS:
        shown = explicit or key or "(no extension)"
        raise ImageIOError(f"{path}: unsupported output format {shown!r}; use one of "
                           f"{', '.join(WRITABLE_EXTENSIONS)}")
    return FORMATS[key]


def check_pixels_fit(path, array, fmt):
    """Raise ImageIOError if `fmt` cannot hold `array` without losing data."""
    if array.dtype.type not in _PIXEL_TYPES[fmt]:
        able = [f".{name.lower()}" if name != "TIFF" else ".tif"
                for name, types in _PIXEL_TYPES.items() if array.dtype.type in types]
        raise ImageIOError(f"{path}: {fmt} cannot store {array.dtype} pixels; use "
                           + " or ".join(able))


def check_writable(path, image, fmt):
    """Raise ImageIOError, before any work, if `image` denoised could not be written
    to `path` as `fmt`: its pixel type, alpha or pages do not fit the format, or the
    folder does not take new files. `path` "-" (standard output) skips the folder."""
    check_pixels_fit(path, image.pixels[:0], fmt)  # alpha is written in the pixels' type
    if image.is_volume and fmt != "TIFF":
        raise ImageIOError(f"{path}: a multi-page volume can only be written as TIFF")
    if fmt == "JPEG" and image.alpha is not None:
        raise ImageIOError(f"{path}: JPEG cannot store an alpha channel; use .png or .tif")
    if path == "-":
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ImageIOError(f"{path}: output folder {folder} does not exist")
    probe = temp_name(folder)
    try:  # the only sure test: permissions, read-only mounts and quotas all show here
        os.close(create_private_file(probe))
    except OSError as exc:
        raise ImageIOError(f"{path}: cannot write in {folder} ({exc.strerror})") from None
    finally:
        discard(probe)


def encode(array, fmt, *, quality=95, icc_profile=None, is_volume=False, path="<stdout>",
           exif=None):
    """The bytes of `array` as an image file of format `fmt`; `exif` (bytes) is
    written where the format and its writer take it (PNG, JPEG, WebP)."""
    check_pixels_fit(path, array, fmt)
    if is_volume and fmt != "TIFF":
        raise ImageIOError(f"{path}: a multi-page volume can only be written as TIFF")
    buffer = io.BytesIO()
    if fmt == "TIFF":
        import tifffile  # deferred: 0.03 s of a small PNG's run

        colour = array.ndim == (4 if is_volume else 3) and array.shape[-1] in (3, 4)
        extra = {"iccprofile": icc_profile} if icc_profile else {}
        tifffile.imwrite(buffer, array, photometric="rgb" if colour else "minisblack",
                         extrasamples=("unassalpha",) if colour and array.shape[-1] == 4
                         else None, **extra)
        return buffer.getvalue()
    if fmt == "PNG" and array.dtype == np.uint16 and array.ndim == 3:
        import png  # deferred: only 16-bit colour PNGs need pypng

        planes = array.shape[2]
        png.Writer(width=array.shape[1], height=array.shape[0], bitdepth=16,
                   greyscale=planes in (1, 2), alpha=planes in (2, 4)).write(
            buffer, array.reshape(array.shape[0], -1).astype(np.uint16))
        return buffer.getvalue()
    from PIL import Image as PILImage  # deferred: 0.05 s with its plugins

    im = PILImage.fromarray(np.ascontiguousarray(array))  # uint16 grey becomes mode I;16
    options = {}
    if icc_profile and fmt in ("PNG", "JPEG", "WebP"):
        options["icc_profile"] = icc_profile
    if fmt in ("JPEG", "WebP"):
        options["quality"] = quality
    if exif and fmt in ("PNG", "JPEG", "WebP"):
        options["exif"] = exif
    if fmt == "JPEG" and im.mode in ("LA", "RGBA"):
        raise ImageIOError(f"{path}: JPEG cannot store an alpha channel; use .png or .tif")
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def output_mode(path):
    """Permission bits for a file written at `path`."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_image(path, array, *, fmt=None, quality=95, icc_profile=None, is_volume=False,
                exif=None):
    """Write `array` to `path` atomically: a temp file in the same folder, then a rename.

    A crash or Ctrl-C never leaves a truncated image at `path`. The pixel type is
    kept (a format that cannot hold it raises ImageIOError before anything is
    written).
    """
    fmt = fmt or format_of(path)
    data = encode(array, fmt, quality=quality, icc_profile=icc_profile, is_volume=is_volume,
                  path=path, exif=exif)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ImageIOError(f"{path}: output folder {folder} does not exist")
    tmp = temp_name(folder, os.path.splitext(path)[1])
    try:
        try:
            fd = create_private_file(tmp)
        except OSError as exc:
            raise ImageIOError(f"{path}: cannot write in {folder} ({exc.strerror})") from None
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            # The temp file is private (0600); the output gets the permissions a
            # new file gets (0666 less the umask), or keeps those of the file it
            # replaces.
            os.fchmod(f.fileno(), output_mode(path))
        os.replace(tmp, path)
    except BaseException as exc:
        discard(tmp)
        if isinstance(exc, OSError):
            raise ImageIOError(f"{path}: cannot write image ({exc.strerror})") from None
        raise
