"""``nlmeans compare REFERENCE IMAGE...``: quality metrics against a reference."""

import json
import os

import click

import numpy as np


def metrics(reference, image, data_range, channel_axis):
    """PSNR, SSIM, MSE and max absolute error of `image` against `reference`."""
    from skimage.metrics import structural_similarity

    ref = reference.astype(np.float64)
    img = image.astype(np.float64)
    mse = float(np.mean((ref - img) ** 2))
    psnr = float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))
    small = min(ref.shape[:2]) < 7
    ssim = float("nan") if small else float(structural_similarity(
        ref, img, data_range=data_range, channel_axis=channel_axis))
    return {"psnr": psnr, "ssim": ssim, "mse": mse,
            "max_abs_error": float(np.max(np.abs(ref - img)))}


def json_ready(row):
    """The row with the figures JSON cannot hold (inf, NaN) as null, and why."""
    out, notes = dict(row), []
    if row["psnr"] == float("inf"):
        out["psnr"] = None
        notes.append("psnr: the images are identical (infinite PSNR)")
    if row["ssim"] != row["ssim"]:
        out["ssim"] = None
        notes.append("ssim: the image is smaller than SSIM's 7x7 window")
    if notes:
        out["notes"] = notes
    return out


def data_range_of(dtype, reference):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.max - info.min)
    span = float(reference.max() - reference.min())
    return span if span > 0 else 1.0


@click.command("compare")
@click.argument("reference", type=click.Path(dir_okay=True, readable=False))
@click.argument("images", metavar="IMAGE...", nargs=-1, required=True,
                type=click.Path(dir_okay=True, readable=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--montage", type=click.Path(dir_okay=False),
              help="Write a picture: reference | each image | its absolute difference as a "
                   "heat map, each labelled with its name and PSNR.")
@click.option("--overwrite", is_flag=True, help="Replace the --montage file if it exists.")
def compare_command(reference, images, as_json, montage, overwrite):
    """Compare each IMAGE with REFERENCE: PSNR, SSIM, MSE, max absolute error.

    The data range comes from the pixel type (255 for 8-bit, 65535 for 16-bit;
    the reference's span for float); colour is compared over all channels.
    """
    from nlmeans.api.jobs import check_image
    from nlmeans.io import ImageIOError, read_image

    if montage:
        from nlmeans_cli.processing import same_file

        for path in (reference, *images):
            if path != "-" and same_file(path, montage):
                raise click.ClickException(f"{montage}: the montage is an input; "
                                           f"refusing to overwrite it")
    if montage and os.path.exists(montage) and not overwrite:
        raise click.ClickException(f"{montage}: already exists (use --overwrite)")
    if montage:  # before any work: the montage is an 8-bit RGB picture
        from nlmeans.io import Image, check_writable, format_of

        try:
            check_writable(montage, Image(np.zeros((1, 1, 3), np.uint8)), format_of(montage))
        except ImageIOError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        ref = read_image(reference)
        others = [(path, read_image(path)) for path in images]
    except ImageIOError as exc:
        raise click.ClickException(str(exc)) from None
    for path, image in [(reference, ref)] + others:
        try:
            check_image(image.pixels)  # NaN or inf: no figure would mean anything
        except ValueError as exc:
            raise click.ClickException(f"{path}: {exc}") from None
    ref_pixels = ref.merged()
    rows = []
    for path, image in others:
        pixels = image.merged()
        if pixels.shape != ref_pixels.shape:
            raise click.ClickException(f"{path}: shape {pixels.shape} differs from the "
                                       f"reference's {ref_pixels.shape}")
        if pixels.dtype != ref_pixels.dtype:
            raise click.ClickException(f"{path}: pixel type {pixels.dtype} differs from the "
                                       f"reference's {ref_pixels.dtype}")
        axis = -1 if pixels.ndim == 3 else None
        row = {"image": path}
        row.update(metrics(ref_pixels, pixels, data_range_of(pixels.dtype, ref_pixels), axis))
        rows.append(row)
    if as_json:
        click.echo(json.dumps({"reference": reference,
                               "results": [json_ready(r) for r in rows]}, indent=2))
    else:
        width = max(len("image"), *(len(r["image"]) for r in rows))
        click.echo(f"{'image':<{width}}  {'PSNR dB':>8}  {'SSIM':>6}  {'MSE':>10}  {'max err':>8}")
        for r in rows:
            click.echo(f"{r['image']:<{width}}  {r['psnr']:>8.2f}  {r['ssim']:>6.4f}  "
                       f"{r['mse']:>10.4g}  {r['max_abs_error']:>8.4g}")
    if montage:
        from nlmeans.io.montage import make_montage
        from nlmeans.io import write_image

        picture = make_montage(reference, ref_pixels, [(p, i.merged(), r["psnr"])
                                                      for (p, i), r in zip(others, rows)])
        try:
            write_image(montage, picture)
        except ImageIOError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"montage written to {montage}", err=True)
