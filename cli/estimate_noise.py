"""``nlmeans estimate-noise INPUT...``: print each image's noise model."""

import json

import click


@click.command("estimate-noise")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True,
                type=click.Path(dir_okay=True, readable=False))
@click.option("--noise", type=click.Choice(["auto", "gaussian"]), default="auto",
              show_default=True, help="'gaussian' takes the noise as white and of one level.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the whole model of every image as a JSON list on stdout.")
def estimate_noise_command(inputs, noise, as_json):
    """Estimate the noise of each INPUT image: the level `nlmeans denoise` uses
    when sigma is auto, and the model it comes from.

    Per image, a line with its path and sigma in the image's own intensity units
    (0-255 for 8-bit, 0-65535 for 16-bit; 1 for signal-dependent noise: its
    level after the variance-stabilising transform), then the kind of noise
    (white; spatially correlated as in camera photos and JPEGs; or
    signal-dependent, white noise that grows with the signal as photon noise
    does), the correlation figure (about 1 for white noise), the growth of the
    level from the image's dark end to its bright end, the fitted variance
    a * intensity + b of each channel for signal-dependent noise, and the level
    in the dark, middle and bright thirds of each channel. Exit code 1 if any
    file could not be read or holds NaN or inf values.
    """
    from nlmeans import estimate_noise_model
    from nlmeans.api.jobs import check_image
    from nlmeans.io import ImageIOError, read_image

    failed, models = 0, []
    for path in inputs:
        try:
            image = read_image(path)
            check_image(image.pixels)  # NaN or inf: nothing to measure
        except ImageIOError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed += 1
            continue
        except ValueError as exc:
            click.echo(f"Error: {path}: {exc}", err=True)
            failed += 1
            continue
        model = estimate_noise_model(image.pixels, channel_axis=-1 if image.is_colour else None,
                                     noise=noise)
        if as_json:
            models.append({"path": path, **model.to_dict()})
        else:
            click.echo(f"{path}\t{model.sigma:.3f}\n" + describe_model(model, image.is_colour))
    if as_json:
        click.echo(json.dumps(models, indent=2))
    if failed:
        raise SystemExit(1)


def describe_model(model, colour):
    """The model's figures, indented under the path line."""
    names = "RGB" if colour and len(model.levels) == 3 else None
    lines = [f"  {model.kind} noise, correlation figure {model.correlation:.2f}, measured "
             f"at scale {model.scale}; levels at scales 1/2/4: "
             + " / ".join(f"{s:.3g}" for s in model.scale_sigmas)]
    if model.kind != "correlated":
        lines.append(f"  level growth from dark to bright: {model.growth:.2f} (signal-dependent "
                     f"from 1.3)")
    for index, (a, b) in enumerate(model.curve):
        name = names[index] if names else (f"channel {index}" if len(model.curve) > 1 else "")
        lines.append(f"  {name + ' ' if name else ''}variance: {a:.4g} * intensity + {b:.4g}")
    for index, (levels, where) in enumerate(zip(model.levels, model.level_intensities)):
        name = names[index] if names else (f"channel {index}" if len(model.levels) > 1 else "")
        lines.append(f"  {name + ' ' if name else ''}dark/mid/bright: "
                     + " / ".join(f"{s:.3g}" for s in levels)
                     + " at intensity " + " / ".join(f"{v:.4g}" for v in where))
    return "\n".join(lines)
