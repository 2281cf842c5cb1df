"""``nlmeans noise INPUT OUTPUT --sigma S``: add Gaussian noise (to make test pairs)."""

import click

from nlmeans_cli.options import NumberOrWord


@click.command("noise")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True, readable=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=True, readable=False))
@click.option("--sigma", type=NumberOrWord((), allow_zero=True), required=True,
              help="Standard deviation of the noise in the image's intensity units.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def noise_command(input_path, output_path, sigma, seed, overwrite):
    """Add Gaussian noise of standard deviation SIGMA to INPUT and write OUTPUT.

    Integer images are rounded and clipped to their type's range; alpha is
    copied unchanged.
    """
    import numpy as np

    from nlmeans.io import ImageIOError, read_image, write_image
    from nlmeans_cli.processing import check_output

    try:
        check_output(input_path, output_path, overwrite)
        image = read_image(input_path)
        pixels = image.pixels
        noisy = pixels + sigma * np.random.default_rng(seed).standard_normal(pixels.shape)
        if np.issubdtype(pixels.dtype, np.integer):
            info = np.iinfo(pixels.dtype)
            noisy = np.clip(np.rint(noisy), info.min, info.max)
        write_image(output_path, image.merged(noisy.astype(pixels.dtype)),
                    icc_profile=image.icc_profile, is_volume=image.is_volume, exif=image.exif)
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None
