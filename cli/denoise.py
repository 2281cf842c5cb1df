"""``nlmeans denoise INPUT OUTPUT``: denoise one image file."""

import os
import time

import click

from nlmeans_cli.options import denoise_kwargs, denoise_options

EXAMPLE = """
Examples:

\b
  nlmeans denoise noisy.png clean.png                  # everything automatic
  nlmeans denoise noisy.png clean.png --report         # ... and say how it went
  nlmeans denoise noisy.png clean.png --h 10 --ds 2 --Ds 7

h is in the image's own units: --h 10 on an 8-bit image means what OpenCV's
h=10 means; a 16-bit image needs 256 times more.
"""


def same_file(a, b):
    """True if paths a and b name the same file (symlinks, ./ and case of the path resolved)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


@click.command("denoise", epilog=EXAMPLE)
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=True))
@denoise_options
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--report", is_flag=True,
              help="Print the noise level, the parameters used and the SURE estimate of the "
                   "result's PSNR (costs one more run).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def denoise_command(input_path, output_path, overwrite, report, quiet, **options):
    """Denoise the image INPUT with NL-means and write it to OUTPUT.

    The output keeps the input's bit depth (8 or 16 bit) and colour; an alpha
    channel is copied unchanged. The output is written to a temporary file in
    the output folder and renamed, so it is never left half-written. The output
    folder must exist.
    """
    from nlmeans import denoise_with_report
    from nlmeans.io import ImageIOError, check_writable_extension, read_image, write_array

    started = time.perf_counter()
    try:
        check_writable_extension(output_path)
        if same_file(input_path, output_path):
            raise click.ClickException(f"{output_path}: OUTPUT is the INPUT file; "
                                       f"refusing to overwrite the input")
        if os.path.isdir(output_path):
            raise click.ClickException(f"{output_path}: is a folder; give an output file name")
        if os.path.exists(output_path) and not overwrite:
            raise click.ClickException(f"{output_path}: already exists (use --overwrite)")
        out_folder = os.path.dirname(os.path.abspath(output_path))
        if not os.path.isdir(out_folder):
            raise click.ClickException(f"{output_path}: output folder {out_folder} does not exist")
        image = read_image(input_path)
        try:
            result, details = denoise_with_report(
                image.pixels, channel_axis=-1 if image.is_colour else None,
                estimate_error=report, **denoise_kwargs(**options))
        except ValueError as exc:
            raise click.ClickException(f"{input_path}: {exc}") from None
        write_array(output_path, image.merged(result))
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None

    if report:
        click.echo(format_report(details))
    if not quiet:
        shape = "x".join(str(n) for n in image.pixels.shape[:2][::-1])
        click.echo(f"{output_path}: {shape} {image.pixels.dtype} denoised in "
                   f"{time.perf_counter() - started:.2f} s", err=True)


def format_report(details):
    """The --report lines: noise level, parameters, estimated quality."""
    how = "estimated" if details.sigma_estimated else "given"
    def radii(values):
        return str(values[0]) if len(set(values)) == 1 else "x".join(str(v) for v in values)

    lines = [f"noise sigma: {details.sigma:.3g} ({how})",
             f"parameters: h={details.h:.4g} patch radius={radii(details.patch_radius)} "
             f"search radius={radii(details.search_radius)} aggregation={details.aggregation} "
             f"centre weight={details.centre_weight}"]
    for h, mse in details.h_candidates:
        lines.append(f"  SURE for h={h:.4g}: MSE {mse:.4g}")
    if details.psnr_estimate is not None:
        low, high = details.psnr_range
        lines.append(f"estimated PSNR (SURE): {details.psnr_estimate:.2f} dB "
                     f"(MSE {details.sure_mse:.4g}, data range {details.data_range:g}); "
                     f"{low:.2f} to {high:.2f} dB if sigma is 5 % off")
    elif details.sigma == 0:
        lines.append("estimated PSNR: not available (sigma is 0)")
    return "\n".join(lines)
