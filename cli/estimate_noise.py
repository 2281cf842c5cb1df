"""``nlmeans estimate-noise INPUT...``: print each image's noise level."""

import click


@click.command("estimate-noise")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True,
                type=click.Path(dir_okay=True, readable=False))
def estimate_noise_command(inputs):
    """Estimate the standard deviation of Gaussian noise in each INPUT image.

    Prints one line per image: its path and sigma in the image's own intensity
    units (0-255 for 8-bit, 0-65535 for 16-bit), the value `nlmeans denoise`
    uses when --sigma is auto. Exit code 1 if any file could not be read.
    """
    from nlmeans import estimate_noise
    from nlmeans.io import ImageIOError, read_image

    failed = 0
    for path in inputs:
        try:
            image = read_image(path)
        except ImageIOError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed += 1
            continue
        sigma = estimate_noise(image.pixels, channel_axis=-1 if image.is_colour else None)
        click.echo(f"{path}\t{sigma:.3f}")
    if failed:
        raise SystemExit(1)
