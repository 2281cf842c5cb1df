"""What a denoising run does, decided once: :class:`Settings` and its :class:`Pass` es.

A :class:`Settings` holds everything the run needs and nothing about the pixels:
the noise level, the data range, the precision, the colour transform and the
list of passes. :func:`nlmeans.api.resolve` makes one from an image and the user's
options (the automatic rules live there); :func:`nlmeans.api.denoise` runs one. Being
a frozen value that round-trips through a dict (and so JSON), the same settings
can be carried to every tile, chunk or worker of a large job, which then all
compute exactly what one run over the whole image would.
"""

from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from nlmeans.model.covariance import MAX_LAG
from nlmeans.model.noise import NoiseModel

METHODS = ("nlmeans", "nlbayes")


@dataclass(frozen=True)
class Pass:
    """One NL-means pass over the image.

    Attributes
    ----------
    patch_radius, search_radius : tuple of int
        Per spatial axis ((Y, X) or (Z, Y, X)).
    h : float
        Decay of the weights, in the image's intensity units.
    sigma : float
        Noise level whose ``2 sigma^2`` is subtracted from the patch distances.
    aggregation : {"pixel", "patch"}
    centre_weight : {"one", "max"}
    guided : bool
        The distances compare patches of the previous pass's result instead of
        the image's own (the averaged pixels are the image's in both cases).
    """

    patch_radius: tuple
    search_radius: tuple
    h: float
    sigma: float = 0.0
    aggregation: str = "pixel"
    centre_weight: str = "one"
    guided: bool = False

    @property
    def halo(self):
        """Pixels per spatial axis beyond a region that its result there reads:
        the search window plus the patch, plus the patch again for patch-wise
        aggregation."""
        extra = self.patch_radius if self.aggregation == "patch" else (0,) * len(self.patch_radius)
        return tuple(s + p + a for s, p, a in zip(self.search_radius, self.patch_radius, extra))


@dataclass(frozen=True)
class BayesStep:
    """One step of NL-Bayes (:mod:`nlmeans.methods.nlbayes`).

    Attributes
    ----------
    patch_radius, search_radius : tuple of int
        Per spatial axis ((Y, X) or (Z, Y, X)).
    group_size : int
        Patches in a group: the most similar ones in the search window (step 1:
        exactly these; step 2: at least these, with every patch closer than `tau`).
    sigma : float
        Noise level, in the image's intensity units.
    beta : float
        The noise variance in the Bayes estimate is beta * sigma^2.
    flat_area : float
        Groups whose variance is below flat_area * sigma^2 are taken as flat:
        every value becomes the group's mean (0: never).
    tau : float
        Step 2: the mean squared difference (intensity units^2) below which a
        patch joins the group beyond `group_size`; 0 in step 1.
    stride : int
        Reference patches every `stride` positions along each axis.
    guided : bool
        Step 2: groups are found, and covariances taken, on the previous step's
        result.
    clamp : bool
        Step 1: the gains (lambda - beta sigma^2) / lambda of the Bayes estimate,
        in the eigenbasis of the group's covariance, clamped to [0, 1] (for noise
        that is not white: see :func:`nlmeans.methods.nlbayes.bayes_steps`).
    group_cap : int
        Step 2: where more than this many patches lie closer than `tau`, the group
        is this many closest ones (0: no cap; see
        :func:`nlmeans.methods.nlbayes.frame_steps`).
    """

    patch_radius: tuple
    search_radius: tuple
    group_size: int
    sigma: float
    beta: float = 1.0
    flat_area: float = 1.05
    tau: float = 0.0
    stride: int = 1
    guided: bool = False
    clamp: bool = False
    group_cap: int = 0

    @property
    def halo(self):
        """Pixels per spatial axis beyond a region that its result reads (the
        references of a tile read further: NL-Bayes runs whole images)."""
        return tuple(2 * s + 2 * p for s, p in zip(self.search_radius, self.patch_radius))


@dataclass(frozen=True)
class Settings:
    """Everything a denoising run needs, decided before it starts.

    Attributes
    ----------
    passes : tuple of Pass
        Run in order; a guided pass takes its distances from the result of the
        one before. No pass: the image comes back unchanged (automatic mode on
        an image without measurable noise).
    sigma : float
        The noise level, in the image's intensity units (with a
        `variance_curve`, in the stabilised image's: about 1).
    sigma_estimated : bool
        Whether sigma was estimated from the image.
    data_range : float or None
        The intensity span the automatic rules and PSNR figures use (None when
        nothing needed it); with a `variance_curve`, the stabilised image's.
    dtype : {"float32", "float64"}
        Precision of the computation.
    chroma_weight : float
        RGB only: distances are measured in opponent colours with the chroma axes
        scaled by this; 1 means the channels as they are.
    n_spatial : {2, 3, 4}
        Axes the passes run over: 2-D image, 3-D volume, 4-D volume; frames
        count their time axis.
    channels : int
        Channels of the image.
    channel_axis : int or None
        Where the channels are in the caller's array.
    mode : {"fixed", "auto", "sure"}
        How h was chosen: given, by the automatic rules, or by SURE among
        multiples of the automatic h.
    method : {"nlmeans", "nlbayes"}
        NL-means passes (:class:`Pass`) or the two steps of NL-Bayes
        (:class:`BayesStep`).
    noise : NoiseModel or None
        The noise model sigma came from (None when sigma was given).
    time_axis : int or None
        Frames: where the time axis is in the caller's array. The passes then
        run over (T, Y, X), time first: n_spatial is 3, and a pass's radii
        along time are its patch's (0: 2-D patches) and its temporal window's.
    variance_curve : tuple of (float, float) or None
        Signal-dependent noise: per channel, (a, b) of its variance a * x + b
        in the image's units. The passes then run on the image's generalised
        Anscombe transform, whose noise is white of level 1, and their result
        is mapped back by the exact unbiased inverse
        (:mod:`nlmeans.model.stabilise`).
    follow_motion : bool
        Frames of 2-D images, both methods: the temporal window in each other
        frame also covers, at half the radius, where the frames' motion took
        the pixel's content (:mod:`nlmeans.model.motion`; a pan of more than
        the window's radius a frame is then still found). False: the window is
        around the pixel only. The CPU kernels only.
    noise_covariance : tuple or None
        NL-Bayes on 2-D images and frames: the noise's autocovariance, from a
        sample of the noise (:func:`nlmeans.model.covariance.noise_autocovariance`),
        nested (channel, channel, dy, dx) with lags up to MAX_LAG, in opponent
        colours for colour; its steps then use the covariance it gives over their
        patches in place of sigma^2 I. None: sigma^2 I.
    """

    passes: tuple
    sigma: float
    sigma_estimated: bool
    data_range: float | None
    dtype: str = "float32"
    chroma_weight: float = 1.0
    n_spatial: int = 2
    channels: int = 1
    channel_axis: int | None = None
    mode: str = "fixed"
    method: str = "nlmeans"
    noise: NoiseModel | None = None
    time_axis: int | None = None
    variance_curve: tuple | None = None
    noise_covariance: tuple | None = None
    follow_motion: bool = True

    def __post_init__(self):
        object.__setattr__(self, "passes", tuple(self.passes))
        if self.noise_covariance is not None:
            object.__setattr__(self, "noise_covariance", self._checked_covariance())
        if self.variance_curve is not None:
            object.__setattr__(self, "variance_curve", _checked_curve(self.variance_curve,
                                                                      self.channels))
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        kind = BayesStep if self.method == "nlbayes" else Pass
        for p in self.passes:
            if not isinstance(p, kind):
                raise ValueError(f"method {self.method!r} runs {kind.__name__} steps, got "
                                 f"{type(p).__name__}")
            if len(p.patch_radius) != self.n_spatial or len(p.search_radius) != self.n_spatial:
                raise ValueError(f"pass radii must have {self.n_spatial} values (one per spatial "
                                 f"axis), got {p.patch_radius} and {p.search_radius}")
        if self.time_axis is not None and self.n_spatial not in (3, 4):
            raise ValueError(f"settings with a time axis run over (T, Y, X) or (T, Z, Y, X): "
                             f"n_spatial must be 3 or 4, got {self.n_spatial}")
        if self.passes and self.passes[0].guided:
            raise ValueError("the first pass has no previous result to be guided by")

    def _checked_covariance(self):
        """noise_covariance as nested tuples, checked against the settings."""
        lags = 2 * MAX_LAG + 1
        try:
            values = np.asarray(self.noise_covariance, np.float64)
        except (TypeError, ValueError):
            values = None
        if values is None or values.shape != (self.channels, self.channels, lags, lags) \
                or not np.isfinite(values).all():
            raise ValueError(f"noise_covariance must be a finite ({self.channels}, "
                             f"{self.channels}, {lags}, {lags}) autocovariance")
        if self.method != "nlbayes" or self.n_spatial - (self.time_axis is not None) != 2:
            raise ValueError("a noise covariance is used by NL-Bayes on 2-D images and frames "
                             "only")
        return tuple(tuple(tuple(tuple(row) for row in plane) for plane in pair)
                     for pair in values.tolist())

    def __repr__(self):
        # One field a line, one pass a line: read like the plan it is; the noise
        # covariance (hundreds of numbers) by its shape.
        passes = "".join(f"        {p!r},\n" for p in self.passes)
        rest = "".join(f"    {f.name}={self._field_repr(f.name)},\n" for f in fields(self)
                       if f.name != "passes")
        return f"Settings(\n    passes=(\n{passes}    ),\n{rest})"

    def _field_repr(self, name):
        value = getattr(self, name)
        if name == "noise_covariance" and value is not None:
            return f"<autocovariance, {self.channels} x {self.channels} channels, lags up to " \
                   f"{MAX_LAG}>"
        return repr(value)

    @property
    def halo(self):
        """Pixels per spatial axis that a crop needs around a region for its result
        there to equal the whole image's: the passes' halos added up, since a
        guided pass reads the previous result over its own halo."""
        total = (0,) * self.n_spatial
        for p in self.passes:
            total = tuple(a + b for a, b in zip(total, p.halo))
        return total

    @property
    def work_dtype(self):
        return np.dtype(self.dtype)

    def with_h(self, h):
        """The same settings with the first pass's h replaced."""
        first = replace(self.passes[0], h=float(h))
        return replace(self, passes=(first,) + self.passes[1:])

    def to_dict(self):
        """A dict of plain Python values (JSON-ready); :meth:`from_dict` inverts it."""
        out = asdict(self)
        out["passes"] = [{k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}
                         for p in out["passes"]]
        if out["variance_curve"] is not None:
            out["variance_curve"] = [list(c) for c in out["variance_curve"]]
        if out["noise_covariance"] is not None:
            out["noise_covariance"] = np.asarray(self.noise_covariance).tolist()
        return out

    @classmethod
    def from_dict(cls, data):
        """Settings from :meth:`to_dict`'s output (e.g. after a JSON round trip)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown settings fields: {', '.join(sorted(unknown))}")
        data = dict(data)
        passes = []
        kind = BayesStep if data.get("method") == "nlbayes" else Pass
        for p in data.get("passes", ()):
            p = dict(p)
            p["patch_radius"] = tuple(int(v) for v in p["patch_radius"])
            p["search_radius"] = tuple(int(v) for v in p["search_radius"])
            passes.append(kind(**p))
        data["passes"] = tuple(passes)
        if data.get("noise") is not None:
            data["noise"] = NoiseModel.from_dict(data["noise"])
        return cls(**data)


def _checked_curve(curve, channels):
    """`curve` as a tuple of one (a, b) of floats per channel, a > 0 and both
    finite; ValueError otherwise."""
    try:
        pairs = tuple((float(a), float(b)) for a, b in curve)
    except (TypeError, ValueError):
        raise ValueError(f"variance_curve must hold one (a, b) per channel, got {curve!r}") \
            from None
    if len(pairs) != channels:
        raise ValueError(f"variance_curve must hold one (a, b) per channel ({channels}), got "
                         f"{len(pairs)}")
    for a, b in pairs:
        if not (np.isfinite(a) and np.isfinite(b) and a > 0):
            raise ValueError(f"variance_curve's a must be > 0 and a, b finite, got ({a}, {b})")
    return pairs
