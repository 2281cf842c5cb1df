"""Options shared by the commands that denoise, defined once."""

import click


class NumberOrWord(click.ParamType):
    """A finite float (> 0, or >= 0 with allow_zero) or one of a few words."""

    def __init__(self, words, allow_zero=False):
        self.words = tuple(words)
        self.allow_zero = allow_zero
        self.name = "|".join(("float",) + self.words)

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and value.strip().lower() in self.words:
            return value.strip().lower()
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number" if not self.words else
                          f"{value!r} is neither a number nor one of: {', '.join(self.words)}",
                          param, ctx)
        low_ok = number >= 0 if self.allow_zero else number > 0
        if not (low_ok and number < float("inf")):
            rule = ">= 0" if self.allow_zero else "> 0"
            words = f" or one of: {', '.join(self.words)}" if self.words else ""
            self.fail(f"must be a finite number {rule}{words}, got {value}", param, ctx)
        return number


class NoiseModelOption(NumberOrWord):
    """--noise: a word, a level, or "a,b": the variance a*x + b of signal-dependent
    noise (a > 0, both finite)."""

    def __init__(self):
        super().__init__(("auto", "gaussian"), allow_zero=True)
        self.name = "auto|gaussian|float|a,b"

    def convert(self, value, param, ctx):
        if not (isinstance(value, str) and "," in value):
            return super().convert(value, param, ctx)
        try:
            a, b = (float(part) for part in value.split(","))
        except ValueError:
            self.fail(f"{value!r} is not a pair a,b of numbers (the variance a*x + b)", param,
                      ctx)
        if not (0 < a < float("inf") and abs(b) < float("inf")):
            self.fail(f"a,b needs a finite a > 0 and a finite b, got {value}", param, ctx)
        return (a, b)


def denoise_options(command):
    """Decorate a click command with the denoising options (--h, --ds/--Ds, --sigma, ...)."""
    return _with_options(command, hidden=())


def frame_denoise_options(command):
    """The denoising options for frames: --device is not listed in the help (frames
    run on the CPU); given, it is refused with the reason."""
    return _with_options(command, hidden=("--device",))


def _with_options(command, hidden):
    options = [
        click.option("--method", type=click.Choice(["nlmeans", "nlbayes"]), default="nlmeans",
                     show_default=True, hidden="--method" in hidden,
                     help="'nlmeans': non-local means, the fastest; 'nlbayes': Non-Local Bayes, "
                          "better images (closer to BM3D) in a few times the time, its "
                          "parameters from sigma (no --h, --ds, --Ds, --aggregation, "
                          "--centre-weight, --chroma-weight or --refine)."),
        click.option("--h", "h", type=NumberOrWord(("auto", "sure")), default="auto",
                     show_default=True,
                     help="Decay of the weights, > 0, in the image's intensity units "
                          "(0-255 for 8-bit, 0-65535 for 16-bit); 'auto' derives it from "
                          "sigma, 'sure' also tries several values and keeps the one with "
                          "the lowest SURE estimate of the error."),
        # click lowercases derived names, so --ds and --Ds need explicit destinations.
        click.option("--ds", "--patch-radius", "patch_radius", type=click.IntRange(min=0),
                     default=None, help="Patch radius: patches are (2*ds+1) pixels per axis. "
                                        "[default: 2 with a numeric --h, else from sigma]"),
        click.option("--Ds", "--search-radius", "search_radius", type=click.IntRange(min=0),
                     default=None, help="Search radius: windows are (2*Ds+1) pixels per axis. "
                                        "[default: 7 with a numeric --h, else from sigma]"),
        click.option("--sigma", type=NumberOrWord(("auto",), allow_zero=True), default=None,
                     help="Noise standard deviation in intensity units ('auto': estimated); "
                          "2*sigma^2 is subtracted from patch distances. "
                          "[default: 0 with a numeric --h, else auto]"),
        click.option("--noise", type=NoiseModelOption(),
                     default="auto", show_default=True,
                     help="Noise model when sigma is estimated: 'auto' tells white noise from "
                          "the spatially correlated noise of camera photos and JPEGs and from "
                          "noise that grows with the signal (photon noise); 'gaussian' takes "
                          "it as white of one level (a 3x3 high-pass estimate); a number is "
                          "the noise level, as --sigma; a,b is a known variance a*x + b "
                          "(intensity units), stabilised before denoising."),
        click.option("--noise-sample", type=click.Path(dir_okay=False), default=None,
                     help="An image of the noise alone, in the input's channels: a dark "
                          "frame, a blank region, or two shots of a still scene subtracted "
                          "and divided by 1.414 (a float TIFF). Its level replaces the "
                          "estimate, and --method nlbayes uses its covariance over patches "
                          "(correlated camera noise). 2-D images and frames."),
        click.option("--aggregation", type=click.Choice(["pixel", "patch"]), default=None,
                     help="'pixel': each pixel is the weighted mean of its candidates; "
                          "'patch': each pixel averages the estimates of all patches covering "
                          "it. [default: pixel with a numeric --h, else patch]"),
        click.option("--centre-weight", type=click.Choice(["one", "max"]), default=None,
                     help="Weight of the pixel itself: 1, or the largest of its other weights. "
                          "[default: one with a numeric --h, else max]"),
        click.option("--chroma-weight", type=NumberOrWord(()), default=None,
                     help="RGB only: scale of the chroma axes of opponent colours in the patch "
                          "distances (1 = plain RGB distances). "
                          "[default: 0.5 with automatic --h, else 1]"),
        click.option("--refine/--no-refine", default=None,
                     help="Run a second pass whose weights compare patches of the first "
                          "result. [default: on with automatic --h for grey images and "
                          "volumes, else off]"),
        click.option("--float64", "use_float64", is_flag=True,
                     help="Compute in float64 instead of float32."),
        click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu",
                     show_default=True, hidden="--device" in hidden,
                     help="Where to compute: the CPU, an NVIDIA GPU (needs numba-cuda: "
                          "pip install 'nlmeans[cuda]'; 2-D images, float32), or 'auto': the "
                          "GPU when one is usable, else the CPU."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def denoise_kwargs(h, patch_radius, search_radius, sigma, noise, aggregation, centre_weight,
                   chroma_weight, refine, use_float64, device, method="nlmeans",
                   noise_sample=None):
    """Keyword arguments of nlmeans.denoise from the shared options; a usage error
    for combinations that cannot work on any image."""
    import numpy as np

    if noise_sample is not None:
        if noise != "auto" or sigma is not None:
            raise click.UsageError("--noise-sample gives the noise: leave out --noise and "
                                   "--sigma")
        noise = _read_noise_sample(noise_sample)

    if method == "nlbayes":
        given = [f"--{name}" for name, value in (("h", h != "auto"), ("ds", patch_radius),
                                                 ("Ds", search_radius),
                                                 ("aggregation", aggregation),
                                                 ("centre-weight", centre_weight),
                                                 ("chroma-weight", chroma_weight),
                                                 ("refine", refine is not None))
                 if value is not None and value is not False]
        if given:
            raise click.UsageError(f"--method nlbayes takes its parameters from sigma: leave "
                                   f"out {', '.join(given)}")
        if device == "cuda":
            raise click.UsageError("--method nlbayes runs on the CPU: leave out --device cuda")
    if refine and h not in ("auto", "sure") and not sigma \
            and not isinstance(noise, (float, tuple, np.ndarray)):
        raise click.UsageError("--refine needs sigma > 0 (the second pass's h is a multiple "
                               "of sigma): with a numeric --h give --sigma too")

    return dict(h=None if h == "auto" else h, patch_radius=patch_radius,
                search_radius=search_radius, sigma=sigma,
                noise=None if isinstance(noise, str) and noise == "auto" else noise,
                aggregation=aggregation,
                centre_weight=centre_weight, chroma_weight=chroma_weight, refine=refine,
                dtype=np.float64 if use_float64 else np.float32, device=device,
                method=None if method == "nlmeans" else method)


def _read_noise_sample(path):
    """The pixels of the --noise-sample file; a one-line error if it cannot be read."""
    from nlmeans.io import ImageIOError, read_image

    try:
        image = read_image(path)
    except ImageIOError as exc:
        raise click.BadParameter(str(exc), param_hint="--noise-sample") from None
    if image.is_volume:
        raise click.BadParameter(f"{path}: a noise sample is one 2-D image, not a volume",
                                 param_hint="--noise-sample")
    return image.pixels


class MemorySize(click.ParamType):
    """A memory size such as 300M or 2G, in bytes."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        from nlmeans.runners.outofcore import parse_size

        try:
            return parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


max_memory_option = click.option(
    "--max-memory", type=MemorySize(), default=None,
    help="Memory budget, e.g. 300M or 2G (batch: shared by the files in flight). A TIFF "
         "that would need more in one piece is streamed: read, denoised and written in "
         "strips, with the same result bit for bit. [default: half the available "
         "memory]")
