"""``nlmeans denoise INPUT OUTPUT``: denoise one image file."""

import time

import click

from nlmeans_cli.options import denoise_kwargs, denoise_options, max_memory_option

EXAMPLE = """
Examples:

\b
  nlmeans denoise noisy.png clean.png                  # everything automatic
  nlmeans denoise noisy.png clean.png --report         # ... and say how it went
  nlmeans denoise noisy.png clean.png --h 10 --ds 2 --Ds 7

h is in the image's own units: --h 10 on an 8-bit image means what OpenCV's
h=10 means; a 16-bit image needs 256 times more.
"""


@click.command("denoise", epilog=EXAMPLE)
@click.argument("input_path", metavar="INPUT",
                type=click.Path(dir_okay=True, readable=False, allow_dash=True))
@click.argument("output_path", metavar="OUTPUT",
                type=click.Path(dir_okay=True, readable=False, allow_dash=True))
@denoise_options
@click.option("--volume", is_flag=True,
              help="Denoise a multi-page TIFF as one 3-D volume (3-D patches and windows) "
                   "instead of page by page.")
@click.option("--format", "fmt", type=click.Choice(["png", "tif", "jpg", "bmp", "webp"]),
              default=None, help="Output format (default: from OUTPUT's suffix; png for -).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="JPEG/WebP output quality.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@max_memory_option
@click.option("--report", is_flag=True,
              help="Print the noise level, the parameters used and the SURE estimate of the "
                   "result's PSNR (costs one more run).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def denoise_command(input_path, output_path, volume, fmt, quality, overwrite, max_memory, report,
                    quiet, **options):
    """Denoise the image INPUT with NL-means and write it to OUTPUT.

    The output keeps the input's pixel type (8-bit, 16-bit, float32), colour and
    ICC profile; an alpha channel is copied unchanged; EXIF orientation is
    applied. INPUT or OUTPUT may be - for standard input or output. The output
    is written to a temporary file in the output folder and renamed, so it is
    never left half-written; the output folder must exist (batch creates it).
    """
    from nlmeans_cli.processing import log_to_stderr, check_output, process

    from nlmeans.io import ImageIOError

    started = time.perf_counter()
    try:
        fmt = check_output(input_path, output_path, overwrite, fmt)
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None
    log_to_stderr(quiet)
    outcome = process(input_path, output_path, denoise_kwargs(**options), fmt=fmt,
                      volume=volume, quality=quality, estimate_error=report,
                      interactive=not quiet, max_memory=max_memory)
    details = outcome.details
    # Never mix text into an image written to standard output.
    to_stderr = output_path == "-"

    if report:
        click.echo(format_report(details), err=to_stderr)
    if not quiet:
        click.echo(f"{output_path}: {outcome.pixels} pixels denoised in "
                   f"{time.perf_counter() - started:.2f} s", err=True)


def format_report(details):
    """The --report lines, from the settings that ran: noise level, each pass,
    estimated quality."""
    settings = details.settings
    model = settings.noise
    how = "estimated" if settings.sigma_estimated else \
        "given" if model is None else "measured on the noise sample"
    kind = (f"; {model.kind} noise, correlation figure {model.correlation:.2f}"
            if model is not None else "")
    lines = [f"noise sigma: {settings.sigma:.3g} ({how}){kind}"]
    if settings.noise_covariance is not None:
        lines[0] += "; NL-Bayes uses the sample's covariance over its patches"
    if settings.variance_curve is not None:
        curves = ", ".join(f"{a:.4g}*x + {b:.4g}" for a, b in settings.variance_curve)
        lines[0] = (f"noise: signal-dependent ({how}), variance {curves}; denoised after a "
                    f"variance-stabilising transform, at sigma {settings.sigma:.3g} there")
    lines.append(f"device: {details.device}")
    names = ["parameters", "second pass"]
    for index, step in enumerate(settings.passes):
        name = names[index] if index < len(names) else f"pass {index + 1}"
        line = f"{name}: {describe_pass(step)}"
        if index == 0 and settings.chroma_weight != 1:
            line += f" chroma weight={settings.chroma_weight:g}"
        lines.append(line)
    if not settings.passes:
        lines.append("parameters: no pass (no noise found; the image is unchanged)")
    for h, mse in details.h_candidates:
        lines.append(f"  SURE for h={h:.4g}: MSE {mse:.4g}")
    if details.psnr_estimate is not None:
        low, high = details.psnr_range
        spread = (f"{low:.2f} to {high:.2f} dB if sigma is 5 % off" if high < float("inf")
                  else f"{low:.2f} dB or more if sigma is 5 % off (with sigma 5 % higher "
                       f"SURE's error falls to 0: the estimate is unreliable here)")
        lines.append(f"estimated PSNR (SURE): {details.psnr_estimate:.2f} dB "
                     f"(MSE {details.sure_mse:.4g}, data range {details.data_range:g}); "
                     + spread)
    elif details.error_note:
        lines.append(f"estimated PSNR: {details.error_note}")
    elif settings.sigma == 0:
        lines.append("estimated PSNR: not available (sigma is 0)")
    return "\n".join(lines)


def describe_pass(step):
    """One pass (or NL-Bayes step) as `name=value` pairs."""
    def radii(values):
        return str(values[0]) if len(set(values)) == 1 else "x".join(str(v) for v in values)

    if not hasattr(step, "h"):
        text = (f"NL-Bayes step {2 if step.guided else 1}: patch radius="
                f"{radii(step.patch_radius)} search radius={radii(step.search_radius)} "
                f"group={step.group_size} beta={step.beta:g} stride={step.stride}")
        return text + (" (groups from the first step's result)" if step.guided else "")

    text = (f"h={step.h:.4g} patch radius={radii(step.patch_radius)} "
            f"search radius={radii(step.search_radius)} aggregation={step.aggregation} "
            f"centre weight={step.centre_weight}")
    if step.sigma:
        text += f" sigma subtracted={step.sigma:.3g}"
    if step.guided:
        text += " (distances from the previous pass's result)"
    return text
