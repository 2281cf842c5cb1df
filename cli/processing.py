"""Denoising one file, shared by `nlmeans denoise` and `nlmeans batch`."""

import os
import sys
import time
from dataclasses import dataclass, field

import click


def same_file(a, b):
    """True if paths a and b name the same file (symlinks, ./ and .. resolved)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


@dataclass
class Outcome:
    """What happened to one file."""

    input: str
    output: str
    status: str = "done"          # done, skipped, failed
    reason: str = ""
    seconds: float = 0.0
    pixels: int = 0
    details: object = field(default=None, repr=False)


def output_format(output_path, fmt=None):
    """The output's format name ('PNG', 'TIFF', ...): --format, else OUTPUT's suffix;
    PNG for standard output."""
    from nlmeans.io import format_of

    return format_of(output_path, fmt) if output_path != "-" or fmt else "PNG"


def check_output(input_path, output_path, overwrite, fmt=None):
    """Refuse outputs that would lose data, before any work is done."""
    from nlmeans.io import FORMATS

    fmt = output_format(output_path, fmt)
    if output_path == "-":
        if sys.stdout.isatty():
            raise click.ClickException("OUTPUT is -, but standard output is a terminal: "
                                       "redirect it to a file or a pipe")
        return fmt
    suffix = os.path.splitext(output_path)[1].lower()
    if FORMATS.get(suffix, fmt) != fmt:
        raise click.ClickException(f"{output_path}: --format {fmt.lower()} contradicts the "
                                   f"file name's {suffix}; change one of them")
    if input_path != "-" and same_file(input_path, output_path):
        raise click.ClickException(f"{output_path}: OUTPUT is the INPUT file; "
                                   f"refusing to overwrite the input")
    if os.path.isdir(output_path):
        raise click.ClickException(f"{output_path}: is a folder; give an output file name")
    if os.path.exists(output_path) and not overwrite:
        raise click.ClickException(f"{output_path}: already exists (use --overwrite)")
    out_folder = os.path.dirname(os.path.abspath(output_path))
    if not os.path.isdir(out_folder):
        raise click.ClickException(f"{output_path}: output folder {out_folder} does not exist")
    return fmt


def announce_compilation(quiet):
    """Tell the user why the very first run is slow."""
    from nlmeans.denoise import kernel_is_cached

    if not quiet and not kernel_is_cached():
        click.echo("compiling the denoising kernel (first run only, about a minute)...", err=True)


def warm_up(options):
    """Compile (or load) the kernel for these options on a tiny image, so that worker
    processes find it in the cache instead of all compiling it at once."""
    import numpy as np

    from nlmeans import denoise

    denoise(np.random.default_rng(0).random((16, 16)) * 255, **options)


def denoise_image(image, options, volume=False, estimate_error=False):
    """Denoise an io.Image's pixels: a volume in 3-D with --volume, else page by page.

    Returns (pixels, report of the first page or of the volume).
    """
    import numpy as np

    from nlmeans import denoise_with_report

    axis = image.channel_axis
    if not image.is_volume or volume:
        return denoise_with_report(image.pixels, channel_axis=axis,
                                   estimate_error=estimate_error, **options)
    pages, first = [], None
    for page in image.pixels:
        result, report = denoise_with_report(page, channel_axis=axis,
                                             estimate_error=estimate_error and first is None,
                                             **options)
        pages.append(result)
        first = first or report
    return np.stack(pages), first


def process(input_path, output_path, options, *, fmt=None, volume=False, quality=95,
            estimate_error=False):
    """Read, denoise and write one file. Raises ClickException with a one-line reason."""
    from nlmeans.io import ImageIOError, check_writable, read_bytes, read_image, write_image

    started = time.perf_counter()
    try:
        if input_path == "-":
            image = read_bytes(sys.stdin.buffer.read(), "<stdin>")
        else:
            image = read_image(input_path)
        out_format = output_format(output_path, fmt)
        check_writable(output_path, image, out_format)
        try:
            result, details = denoise_image(image, options, volume, estimate_error)
        except (ValueError, MemoryError) as exc:
            raise click.ClickException(f"{input_path}: {exc}") from None
        merged = image.merged(result)
        if output_path == "-":
            from nlmeans.io import encode

            data = encode(merged, out_format, quality=quality, icc_profile=image.icc_profile,
                          is_volume=image.is_volume, exif=image.exif)
            stream = sys.stdout.buffer
            stream.write(data)
            stream.flush()
        else:
            write_image(output_path, merged, fmt=out_format, quality=quality,
                        icc_profile=image.icc_profile, is_volume=image.is_volume,
                        exif=image.exif)
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None
    return Outcome(input_path, output_path, seconds=time.perf_counter() - started,
                   pixels=int(image.pixels.size // (image.pixels.shape[-1]
                                                    if image.is_colour else 1)),
                   details=details)

