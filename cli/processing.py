"""Denoising one file, shared by `nlmeans denoise` and `nlmeans batch`."""

import contextlib
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

    typed, fmt = fmt, output_format(output_path, fmt)
    if output_path == "-":
        if sys.stdout.isatty():
            raise click.ClickException("OUTPUT is -, but standard output is a terminal: "
                                       "redirect it to a file or a pipe")
        return fmt
    suffix = os.path.splitext(output_path)[1].lower()
    if FORMATS.get(suffix, fmt) != fmt:
        raise click.ClickException(f"{output_path}: --format {typed} contradicts the "
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


def log_to_stderr(quiet):
    """Show the library's progress messages (the first run's "compiling ...") on
    stderr, unless quiet. They are logged when they happen, after the input
    was read."""
    import logging

    class StderrHandler(logging.StreamHandler):
        """Writes to whatever sys.stderr is when a message comes."""

        stream = property(lambda self: sys.stderr, lambda self, value: None)

    logger = logging.getLogger("nlmeans")
    if not any(isinstance(h, logging.StreamHandler) and type(h).__name__ == "StderrHandler"
               for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def warm_up(options, example=None):
    """Compile the kernel for these options on a tiny image when it is not cached
    yet, so that worker processes find it in the cache instead of all compiling it
    at once (where it is cached, loading it here would only delay the workers).
    The tiny image is a corner of `example` (the batch's first file), whose
    channels and pixel type choose the kernel's compiled variant."""
    from nlmeans import denoise, resolve
    from nlmeans.api.jobs import kernel_is_cached, passes_compiled

    # A noise sample fits the real images' channels, maybe not the tiny one's; the
    # compiled kernels are the same without it.
    options = {k: v for k, v in options.items() if k != "noise" or isinstance(v, (str, float,
                                                                                  tuple))}
    tiny = _corner_of(example)
    axis = -1 if tiny.ndim == 3 else None
    if options.get("method") == "nlbayes":
        if kernel_is_cached("nlbayes"):
            return
    elif passes_compiled(resolve(tiny, channel_axis=axis,
                                 **{k: v for k, v in options.items() if k != "device"})):
        return
    denoise(tiny, channel_axis=axis, **options)


def _corner_of(path, size=32, max_bytes=64 << 20):
    """A size² corner of the image file at `path` (a page of a volume), or random
    grey pixels where there is no such file or it is large or unreadable."""
    import numpy as np

    from nlmeans.io import ImageIOError, read_image

    try:
        if path is not None and os.path.getsize(path) <= max_bytes:
            image = read_image(path)
            pixels = image.pixels[0] if image.is_volume else image.pixels
            if min(pixels.shape[:2]) >= 8:
                return np.ascontiguousarray(pixels[:size, :size])
    except (OSError, ImageIOError):
        pass
    return np.random.default_rng(0).random((16, 16)) * 255


# Jobs estimated above this many seconds run in strips: a note, a progress bar on a
# terminal (over the tiles when the halo covers the image), and Ctrl-C answered
# between tiles.
LARGE_JOB_SECONDS = 10.0


def denoise_image(image, options, volume=False, estimate_error=False, interactive=False):
    """Denoise an io.Image's pixels: a volume in 3-D with --volume, else page by page.

    Returns (pixels, report of the first page or of the volume).
    """
    import numpy as np

    axis = image.channel_axis
    if not image.is_volume or volume:
        return _denoise_array(image.pixels, axis, options, estimate_error, interactive)
    pages, first = [], None
    for page in image.pixels:
        result, report = _denoise_array(page, axis, options, estimate_error and first is None,
                                        interactive)
        pages.append(result)
        first = first or report
    return np.stack(pages), first


def _denoise_array(pixels, axis, options, estimate_error, interactive):
    """(result, report) of one array; large CPU jobs go strip by strip, small ones
    run on the NumPy pass, which takes less time than starting Numba. The path
    depends on the job's size only, never on what ran before (the same command
    gives the same bytes: see the reproducibility guarantee in docs/cli.md)."""
    from nlmeans import denoise_with_report, resolve

    spatial = [n for i, n in enumerate(pixels.shape)
               if axis is None or i != axis % pixels.ndim]
    options = _clamped_radii(options, spatial, interactive)
    if options.get("method") == "nlbayes" and not estimate_error:
        return _nlbayes_with_progress(pixels, axis, options, spatial, interactive)
    if estimate_error or options.get("h") == "sure" or options.get("device", "cpu") != "cpu":
        # SURE needs whole-image runs; h="sure" has run them while resolving.
        return denoise_with_report(pixels, channel_axis=axis, estimate_error=estimate_error,
                                   small_on_numpy=True, **options)
    from nlmeans.api.jobs import estimated_seconds, small_for_numpy

    settings = resolve(pixels, channel_axis=axis,
                       **{k: v for k, v in options.items() if k != "device"})
    if small_for_numpy(settings, spatial):
        return denoise_with_report(pixels, settings=settings, estimate_error=False,
                                   small_on_numpy=True)
    from numba import get_num_threads

    seconds = estimated_seconds(settings, spatial, get_num_threads())
    if seconds <= LARGE_JOB_SECONDS:
        return denoise_with_report(pixels, settings=settings, estimate_error=False)
    return _in_strips(pixels, settings, spatial, seconds, interactive)


def _clamped_radii(options, spatial, interactive):
    """The options with --ds/--Ds cut, per axis, to the image's size less one: a
    larger radius reaches only mirrored copies of pixels the window already holds,
    at a cost that grows with the window's area."""
    options = dict(options)
    for name, flag in (("patch_radius", "--ds"), ("search_radius", "--Ds")):
        value = options.get(name)
        if not isinstance(value, int):
            continue
        radii = tuple(min(value, n - 1) for n in spatial)
        if radii != (value,) * len(spatial):
            if interactive:
                click.echo(f"{flag} {value} reaches beyond the image "
                           f"({'x'.join(map(str, spatial))}): using "
                           f"{'x'.join(map(str, radii))}", err=True)
            options[name] = radii
    return options


# NL-Bayes runs whole images (its result depends on more than a halo of pixels);
# above this many pixels a terminal shows a progress bar over its tiles.
NLBAYES_BAR_PIXELS = 1_000_000


def _nlbayes_with_progress(pixels, axis, options, spatial, interactive):
    """(result, report) of NL-Bayes on the whole array, with a progress bar over
    its tiles for large images on a terminal (Ctrl-C is answered between tiles)."""
    import numpy as np

    from nlmeans import Report, resolve
    from nlmeans.api.jobs import check_image, denoise_block, tile_count

    settings = resolve(pixels, channel_axis=axis,
                       **{k: v for k, v in options.items() if k != "device"})
    shape = (1,) * (3 - len(spatial)) + tuple(spatial)
    length = tile_count(settings, shape) if int(np.prod(spatial)) > NLBAYES_BAR_PIXELS else 0
    with strip_progress(length, interactive and length > 0) as progress:
        result = denoise_block(pixels, settings, check_image(pixels)[1], progress=progress)
    return result, Report.of(settings)


def _in_strips(pixels, settings, spatial, seconds, interactive):
    from nlmeans import Report
    from nlmeans.api.jobs import denoise_in_strips

    length, halo = spatial[0], settings.halo[0]
    # Strips of 16 halos or more: the rows read twice cost at most an eighth more.
    rows = max(-(-length // 40), 16 * halo, 32)
    if interactive:
        window = "x".join(str(2 * r + 1) for r in settings.passes[0].search_radius)
        click.echo(f"a long job: about {seconds:.0f} s on this machine (search window "
                   f"{window} for {'x'.join(map(str, spatial))} pixels)"
                   + "; Ctrl-C stops it", err=True)
    with strip_progress(length, interactive) as progress:
        result = denoise_in_strips(pixels, settings, rows, progress=progress)
    return result, Report.of(settings)


@contextlib.contextmanager
def strip_progress(length, interactive):
    """A progress bar over `length` rows on a terminal, as the `progress(done,
    total)` callback the strip runners take; None where there is no bar."""
    if not (interactive and sys.stderr.isatty()):
        yield None
        return
    with click.progressbar(length=length, label="denoising", file=sys.stderr,
                           show_eta=True) as bar:
        yield lambda done, total: bar.update(done - bar.pos)


def process(input_path, output_path, options, *, fmt=None, volume=False, quality=95,
            estimate_error=False, interactive=False, max_memory=None):
    """Read, denoise and write one file. Raises ClickException with a one-line reason.

    A TIFF whose run would need more than `max_memory` bytes (default: half the
    available memory) is streamed in strips (:mod:`nlmeans.runners.outofcore`)."""
    from nlmeans.io import ImageIOError, check_writable, read_bytes, read_image, write_image

    started = time.perf_counter()
    if input_path != "-" and output_path != "-":
        streamed = _stream_if_large(input_path, output_path, options, fmt, max_memory,
                                    estimate_error, interactive)
        if streamed is not None:
            return streamed
    try:
        if input_path == "-":
            image = read_bytes(sys.stdin.buffer.read(), "<stdin>")
        else:
            image = read_image(input_path)
        out_format = output_format(output_path, fmt)
        check_writable(output_path, image, out_format)
        if max_memory is not None:
            _check_budget(input_path, image, max_memory)
        try:
            result, details = denoise_image(image, options, volume, estimate_error, interactive)
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



def _stream_if_large(input_path, output_path, options, fmt, max_memory, estimate_error,
                     interactive):
    """The Outcome of streaming a TIFF too large for the memory budget in strips,
    or None when the file is read into memory as usual."""
    from nlmeans.io import ImageIOError
    from nlmeans.runners import outofcore

    try:
        source = outofcore.open_tiff(input_path)
    except ImportError as exc:
        source = None
        if _too_large_for(input_path, max_memory):
            raise click.ClickException(f"{input_path}: {exc}") from None
    if source is None:
        return None
    try:
        channels = 3 if source.channel_axis is not None else 1
        budget = max_memory or outofcore.default_budget()
        need = outofcore.in_memory_bytes(source.shape, channels, source.dtype.itemsize)
        if need <= budget:
            return None
        return _stream(source, output_path, options, fmt, budget, need, estimate_error,
                       interactive)
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None
    except (ValueError, MemoryError) as exc:
        raise click.ClickException(f"{input_path}: {exc}") from None
    finally:
        source.close()


def _check_budget(input_path, image, max_memory):
    """Refuse, with the estimate, an image read into memory whose run would need
    more than --max-memory (only TIFFs can be streamed in strips instead)."""
    from nlmeans.runners.outofcore import in_memory_bytes

    channels = image.pixels.shape[-1] if image.is_colour else 1
    need = in_memory_bytes(image.pixels.shape, channels, image.pixels.dtype.itemsize)
    if need > max_memory:
        raise click.ClickException(f"{_over_budget(input_path, need, max_memory)}; only TIFF "
                                   f"inputs are streamed in strips: convert it to TIFF, or "
                                   f"raise --max-memory")


def _over_budget(path, need, budget):
    """The words for a run that needs more than the memory budget."""
    from nlmeans.runners.outofcore import format_size

    return (f"{path}: denoising it in one piece would need about {format_size(need)}, more "
            f"than the memory budget of {format_size(budget)}")


def _too_large_for(path, max_memory):
    """Whether a file is larger than the memory budget itself (it is then surely
    too large to denoise in memory)."""
    from nlmeans.runners.outofcore import default_budget

    return os.path.getsize(path) > (max_memory or default_budget()) / 4


def _stream(source, output_path, options, fmt, budget, need, estimate_error, interactive):
    """Denoise the TIFF `source` in strips into `output_path` (see process)."""
    import numpy as np

    from nlmeans import Report
    from nlmeans.api.jobs import stand_in
    from nlmeans.io import Image, check_writable
    from nlmeans.runners.outofcore import TILE, denoise_tiff, measure, strip_rows
    from nlmeans.api.jobs import resolve_checked

    started = time.perf_counter()
    path, shape = source.path, source.shape
    too_large = _over_budget(path, need, budget)
    if output_format(output_path, fmt) != "TIFF":
        raise click.ClickException(f"{too_large}: write a .tif output to stream it in strips, "
                                   f"or raise --max-memory")
    if options.get("h") == "sure" or options.get("device", "cpu") != "cpu":
        raise click.ClickException(f"{too_large}; it is streamed in strips on the CPU, where "
                                   f"--h sure and --device do not apply: leave them out or "
                                   f"raise --max-memory")
    check_writable(output_path, Image(np.empty((0, 0, 3)[:len(shape)], source.dtype)), "TIFF")
    options = _clamped_radii(options, shape[:2], interactive)
    options = {k: v for k, v in options.items() if k != "device"}
    rows = max(TILE, (budget // 4) // (int(np.prod(shape[1:])) * source.dtype.itemsize))
    bounds, sample = measure(source.pixels, shape, source.dtype, source.channel_axis, rows)
    settings, _ = resolve_checked(stand_in(shape, source.dtype), bounds,
                                  dict(options, channel_axis=source.channel_axis),
                                  sample=sample, in_memory=False)
    rows = strip_rows(settings, shape, source.dtype.itemsize, budget)
    if interactive:
        click.echo(f"{too_large}: streaming it in strips of {rows} rows", err=True)
    with strip_progress(shape[0], interactive) as progress:
        denoise_tiff(source, output_path, settings, bounds, rows, progress=progress)
    report = Report.of(settings)
    if estimate_error:
        report.error_note = "not available for an image streamed in strips (SURE needs it whole)"
    return Outcome(path, output_path, seconds=time.perf_counter() - started,
                   pixels=int(shape[0] * shape[1]), details=report)


# Batch tasks, run in worker processes or on a cluster's workers (cli.batch, cli.cluster).

def process_task(task, options, volume, quality, fmt, max_memory=None):
    """The Outcome of one (input, output) task; never raises for a bad file."""
    input_path, output_path = task
    try:
        outcome = process(input_path, output_path, options, fmt=fmt, volume=volume,
                          quality=quality, max_memory=max_memory)
        outcome.details = None  # keep the reply small
        return outcome
    except click.ClickException as exc:
        reason = exc.format_message()
        for prefix in (f"{input_path}: ", f"{output_path}: "):
            reason = reason[len(prefix):] if reason.startswith(prefix) else reason
        return Outcome(input_path, output_path, status="failed", reason=reason)
    except Exception as exc:  # one bad file never stops the batch
        return Outcome(input_path, output_path, status="failed",
                       reason=f"{type(exc).__name__}: {exc}".splitlines()[0])


class Interrupted(Exception):
    """A batch stopped by Ctrl-C or SIGTERM, with the outcomes of the files done."""

    def __init__(self, outcomes, terminated=False):
        self.outcomes = outcomes
        self.terminated = terminated


def files_bar(count):
    """The batch's progress bar over `count` files, naming the last one done."""
    return click.progressbar(length=count, label="denoising", file=sys.stderr, show_pos=True,
                             show_eta=True,
                             item_show_func=lambda o: os.path.basename(o.input) if o else "")
