"""Options shared by the commands that denoise, defined once."""

import click


def _positive_finite(ctx, param, value):
    if value is not None and not (0 < value < float("inf")):
        raise click.BadParameter(f"must be a finite number > 0, got {value}")
    return value


def _non_negative_finite(ctx, param, value):
    if value is not None and not (0 <= value < float("inf")):
        raise click.BadParameter(f"must be a finite number >= 0, got {value}")
    return value


def denoise_options(command):
    """Decorate a click command with --h, --ds/--Ds, --sigma."""
    options = [
        click.option("--h", "h", type=float, required=True, metavar="FLOAT",
                     callback=_positive_finite,
                     help="Decay of the weights, > 0, in the image's intensity units "
                          "(0-255 for 8-bit, 0-65535 for 16-bit)."),
        # click lowercases derived names, so --ds and --Ds need explicit destinations.
        click.option("--ds", "--patch-radius", "patch_radius", type=click.IntRange(min=0),
                     default=2, show_default=True,
                     help="Patch radius: patches are (2*ds+1) pixels per axis."),
        click.option("--Ds", "--search-radius", "search_radius", type=click.IntRange(min=0),
                     default=7, show_default=True,
                     help="Search radius: windows are (2*Ds+1) pixels per axis."),
        click.option("--sigma", type=float, default=0.0, show_default=True,
                     metavar="FLOAT", callback=_non_negative_finite,
                     help="Noise standard deviation in intensity units; 2*sigma^2 is "
                          "subtracted from patch distances."),
        click.option("--float64", "use_float64", is_flag=True,
                     help="Compute in float64 instead of float32."),
    ]
    for option in reversed(options):
        command = option(command)
    return command
