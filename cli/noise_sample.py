"""``nlmeans noise-sample SHOT1 SHOT2 OUTPUT``: the noise alone, from two shots of a still scene."""

import click

EXAMPLE = """
Example:

\b
  nlmeans noise-sample shot1.jpg shot2.jpg noise.tif
  nlmeans denoise shot1.jpg clean.png --method nlbayes --noise-sample noise.tif
"""


@click.command("noise-sample", epilog=EXAMPLE)
@click.argument("first_path", metavar="SHOT1", type=click.Path(dir_okay=False))
@click.argument("second_path", metavar="SHOT2", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def noise_sample_command(first_path, second_path, output_path, overwrite):
    """Write (SHOT1 - SHOT2) / 1.414 to OUTPUT, a float32 TIFF: a sample of the noise
    alone for --noise-sample.

    Two shots of the same still scene, from a fixed camera with the same settings,
    differ only by their noise, each shot's independent of the other's: their
    difference divided by the square root of 2 has the noise's level and its
    correlation between neighbouring pixels (camera noise: demosaicing, JPEG).
    Anything that moved between the shots is not noise: keep the camera and the
    scene still.
    """
    import numpy as np

    from nlmeans.io import ImageIOError, read_image, write_image
    from nlmeans_cli.processing import check_output

    if not output_path.lower().endswith((".tif", ".tiff")):
        raise click.ClickException(f"{output_path}: the sample is written as a float32 TIFF: "
                                   f"name it .tif")
    try:
        for shot in (first_path, second_path):  # neither input is ever overwritten
            check_output(shot, output_path, overwrite, "tif")
        first, second = read_image(first_path), read_image(second_path)
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None
    if first.pixels.shape != second.pixels.shape or first.is_volume or second.is_volume:
        raise click.ClickException(
            f"the two shots must be 2-D images of one shape, got {first.pixels.shape} and "
            f"{second.pixels.shape}")
    difference = (first.pixels.astype(np.float64) - second.pixels) / np.sqrt(2.0)
    try:
        write_image(output_path, difference.astype(np.float32), fmt="TIFF")
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None
    level = float(np.std(difference))
    click.echo(f"{output_path}: noise sample of {difference.shape[1]}x{difference.shape[0]} "
               f"pixels, standard deviation {level:.3g}", err=True)
