"""Images larger than memory: a TIFF denoised strip by strip into a tiled TIFF.

The input is read lazily through tifffile: memory-mapped when it is stored
uncompressed in one block, else through its zarr store, which decodes only the
TIFF strips or tiles a read touches. The settings are decided once, before any
strip, as for an image in memory: the minimum and maximum of the whole image
(one streaming pass) and the noise and data range of its even sample
(:mod:`nlmeans.model.sample`). Then strips of rows, each grown by the settings' halo,
are denoised and their tiles written in order to a tiled TIFF (BigTIFF from
2 GiB), in a temporary file renamed when complete. Only one strip (and less
than a row of tiles of output) is in memory at a time: the strip height follows
from the memory budget. The result is the in-memory run's, bit for bit
(:func:`nlmeans.runners.strips.iter_strips`).
"""

import math
import os
import re
from dataclasses import dataclass

import numpy as np

from nlmeans.io.images import TIFF_SIGNATURES, output_mode
from nlmeans.io.tempfiles import create_private_file, discard, temp_name
from nlmeans.model.layout import check_finite
from nlmeans.model.sample import assemble, sample_regions
from nlmeans.planning import memory
from nlmeans.runners.strips import iter_strips

#: Side of the output's square tiles.
TILE = 256
#: Strips are a multiple of this many rows.
STRIP_STEP = 16
#: Memory of a strip's work per pixel and channel, in bytes, besides the input
#: and output pixels: float32 values, the padded copy, the first pass's result
#: and its padded copy for the guided pass, the result and the conversions.
#: Measured peak over 12000-wide 8-bit pieces of 300 and 600 rows: 20.5 to 21
#: bytes (grey, two passes), 16.7 per channel (RGB, one pass).
WORK_BYTES_PER_PIXEL = 24
#: Memory the process itself holds before a strip (Python, NumPy, Numba's
#: compiler and the loaded kernel): measured 165 MB.
BASE_BYTES = 170 * 2**20
#: The default budget: this share of the memory available when the run starts.
DEFAULT_SHARE = 0.5

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text):
    """Bytes in a size such as ``300M``, ``2G``, ``1.5GiB`` or ``500000000``
    (binary units); ValueError for anything else."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(I?B)?\s*", str(text).upper())
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 300M, 2G, 1.5GiB)")
    size = float(match.group(1)) * _UNITS[match.group(2)]
    if size <= 0:
        raise ValueError(f"a memory budget must be > 0, got {text!r}")
    return int(size)


def default_budget():
    """DEFAULT_SHARE of the available memory (2 GiB where it cannot be read)."""
    available = memory.available_memory()
    return int(DEFAULT_SHARE * available) if available else 2 * 2**30


def in_memory_bytes(shape, channels, itemsize):
    """About the peak memory of denoising an image of `shape` (all axes) in one
    piece: the input and output and the float32 work of two passes."""
    pixels = math.prod(shape) // channels
    return BASE_BYTES + pixels * channels * (2 * itemsize + WORK_BYTES_PER_PIXEL)


@dataclass
class TiffSource:
    """A TIFF opened for reading in pieces: `pixels` slices like an array."""

    path: str
    pixels: object
    shape: tuple
    dtype: np.dtype
    channel_axis: int | None
    compression: int
    icc_profile: bytes | None
    handle: object

    def close(self):
        self.handle.close()


def open_tiff(path):
    """A :class:`TiffSource` for a TIFF holding one 2-D grey or RGB image, or None
    for anything else (pages, volumes, alpha): those are read into memory."""
    try:
        with open(path, "rb") as f:
            if not f.read(4).startswith(TIFF_SIGNATURES):
                return None  # (without importing tifffile: 0.03 s of a small PNG's run)
    except OSError:
        return None
    import tifffile  # deferred: 0.03 s of a small PNG's run

    try:
        tif = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, OSError, ValueError):
        return None
    series = tif.series[0] if len(tif.series) == 1 else None
    if series is None or series.axes not in ("YX", "YXS") or (
            series.axes == "YXS" and series.shape[-1] != 3):
        tif.close()
        return None
    page = tif.pages[0]
    if series.dataoffset is not None:
        pixels = tifffile.memmap(path, mode="r")
    else:
        try:
            import zarr  # optional: the [dask] extra
        except ImportError:
            tif.close()
            raise ImportError("reading a compressed TIFF in pieces needs zarr: "
                              "pip install 'nlmeans[dask]'") from None
        pixels = zarr.open(series.aszarr(), mode="r")
    icc = page.tags.get(34675)
    return TiffSource(path, pixels, tuple(series.shape), np.dtype(series.dtype),
                      -1 if series.axes == "YXS" else None, int(page.compression),
                      bytes(icc.value) if icc is not None else None, tif)


def measure(pixels, shape, dtype, channel_axis, rows):
    """((min, max), sample) of a lazily read image: the extremes in one pass
    of `rows` at a time, the sample of :mod:`nlmeans.model.sample`."""
    low = high = None
    for start in range(0, shape[0], rows):
        block = np.asarray(pixels[start:start + rows])
        low = block.min() if low is None else min(low, block.min())
        high = block.max() if high is None else max(high, block.max())
    check_finite((low, high), dtype)
    regions = sample_regions(shape, channel_axis)
    if regions is None:
        return (low, high), (np.asarray(pixels[:]), channel_axis)
    return (low, high), assemble([np.asarray(pixels[r]) for r in regions], shape, channel_axis)


def strip_rows(settings, shape, itemsize, budget):
    """Rows per strip (a multiple of STRIP_STEP) whose work, halo included, fits
    in `budget` bytes; ValueError when not even STRIP_STEP rows fit."""
    width, channels = shape[1], settings.channels
    # The piece's input and work, the strip's output, and the output tiles held.
    per_row = width * channels * (WORK_BYTES_PER_PIXEL + 2 * itemsize)
    reach = 2 * settings.halo[0]
    rows = ((budget - BASE_BYTES - TILE * width * channels * itemsize) // per_row - reach)
    rows = rows // STRIP_STEP * STRIP_STEP
    if rows < STRIP_STEP:
        need = BASE_BYTES + (STRIP_STEP + reach + TILE) * per_row
        raise ValueError(f"a memory budget of {format_size(budget)} is too small for strips "
                         f"of this image ({width} pixels wide): give at least "
                         f"{format_size(need)}")
    return min(rows, -(-shape[0] // STRIP_STEP) * STRIP_STEP)


def format_size(count):
    """Bytes as MiB or GiB, for messages."""
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def denoise_tiff(source, output_path, settings, bounds, rows, progress=None):
    """Denoise `source` with `settings` strip by strip (`rows` each) into the tiled
    TIFF `output_path`, atomically; `progress(done, total)` after each strip."""
    folder = os.path.dirname(os.path.abspath(output_path))
    tmp = temp_name(folder, ".tif")  # named first, so a Ctrl-C at any point leaves nothing
    try:
        os.close(create_private_file(tmp))
        strips = iter_strips(source.pixels, settings, rows, bounds)
        _write_tiles(tmp, source, _tiles(strips, source.shape, progress))
        os.chmod(tmp, output_mode(output_path))
        os.replace(tmp, output_path)
    finally:
        discard(tmp)


def _tiles(strips, shape, progress):
    """The tiles of the strips' results, row of tiles by row of tiles, padded
    to TILE x TILE at the right and bottom edges; rows wait in a buffer until
    they fill a row of tiles."""
    waiting = []
    for start, stop, result in strips:
        waiting.append(result)
        held = sum(len(r) for r in waiting)
        if held >= TILE or stop == shape[0]:
            rows = np.concatenate(waiting) if len(waiting) > 1 else waiting[0]
            full = len(rows) if stop == shape[0] else len(rows) // TILE * TILE
            for top in range(0, full, TILE):
                yield from _row_of_tiles(rows[top:top + TILE], shape[1])
            waiting = [rows[full:]] if full < len(rows) else []
        if progress is not None:
            progress(stop, shape[0])


def _row_of_tiles(band, width):
    for left in range(0, width, TILE):
        piece = band[:, left:left + TILE]
        if piece.shape[:2] != (TILE, TILE):
            tile = np.zeros((TILE, TILE) + piece.shape[2:], dtype=piece.dtype)
            tile[:piece.shape[0], :piece.shape[1]] = piece
            piece = tile
        yield np.ascontiguousarray(piece)


def _write_tiles(path, source, tiles):
    import tifffile  # deferred: 0.03 s of a small PNG's run

    # Lossless compressions tifffile writes are kept (LZW, Deflate, Zstandard);
    # others, JPEG's loss among them, become Deflate.
    compression = source.compression
    if compression not in (1, 5, 8, 32946, 50000):
        compression = 8
    nbytes = math.prod(source.shape) * source.dtype.itemsize
    extra = {"iccprofile": source.icc_profile} if source.icc_profile else {}
    with tifffile.TiffWriter(path, bigtiff=nbytes >= 2**31) as writer:
        writer.write(tiles, shape=source.shape, dtype=source.dtype, tile=(TILE, TILE),
                     compression=compression if compression != 1 else None,
                     photometric="rgb" if source.channel_axis is not None else "minisblack",
                     **extra)
