"""What the napari widget runs, without Qt: a layer's array denoised as the
axes picked say, with progress and cancellation."""

import numpy as np

from nlmeans.api.jobs import denoise_with_progress
from nlmeans.api.resolve import resolve
from nlmeans.api.version import package_version

# The layouts of a layer's last axes the widget offers: (spatial axes, over time).
# Axes before them are looped over: a stack of planes "Y, X" denoises each plane.
AXES = {"Y, X": (2, False), "Z, Y, X": (3, False), "T, Y, X": (2, True),
        "T, Z, Y, X": (3, True)}
METHODS = {"NL-means": "nlmeans", "NL-Bayes": "nlbayes"}
TIME_LABELS = ("t", "time", "frame", "frames")


class Cancelled(Exception):
    """The job was cancelled (raised from the progress callback)."""


def axes_choices(ndim, rgb):
    """The layouts of AXES that a layer of `ndim` axes (the last one RGB's when
    `rgb`) can take."""
    spatial = ndim - bool(rgb)
    return [name for name, (n, time) in AXES.items() if n + time <= spatial]


def default_axes(ndim, rgb, axis_labels=()):
    """The layout a layer most likely has: frames when the first of its last
    three (or four) axes is labelled as time, a volume for three axes or more,
    else an image."""
    spatial = ndim - bool(rgb)
    if spatial <= 2:
        return "Y, X"
    labels = [str(label).lower() for label in axis_labels][:spatial]
    if spatial >= 4 and len(labels) == spatial and labels[-4] in TIME_LABELS:
        return "T, Z, Y, X"
    if len(labels) == spatial and labels[-3] in TIME_LABELS:
        return "T, Y, X"
    return "Z, Y, X"


def job_axes(ndim, axes, rgb):
    """How many leading axes a layer of `ndim` axes loops over for `axes`."""
    n_spatial, over_time = AXES[axes]
    return ndim - n_spatial - over_time - bool(rgb)


def denoise_layer_data(data, axes="Y, X", rgb=False, method="NL-means", h=None,
                       progress=None, cancelled=None):
    """(result, settings summary) of a layer's `data` denoised as `axes` says.

    Each array of the last axes (`axes`, plus RGB's) is one job; axes before
    them are looped over. `h` None is the automatic mode. `progress(fraction)`
    is called as the kernel's tiles finish; `cancelled()` True between two
    tiles stops the job with :class:`Cancelled`. The result equals
    ``nlmeans.denoise`` of each job with the same options. An RGBA layer's
    colours are denoised and its alpha kept. The summary holds the first
    job's settings.
    """
    data = np.asarray(data)
    if rgb and data.shape[-1] == 4:
        colours, summary = denoise_layer_data(data[..., :3], axes, True, method, h, progress,
                                              cancelled)
        return np.concatenate([colours, data[..., 3:]], axis=-1), summary
    offered = axes_choices(data.ndim, rgb)
    if axes not in offered:
        raise ValueError(f"a layer of {data.ndim} axes{' (RGB)' if rgb else ''} cannot be "
                         f"denoised as {axes}: choose among {', '.join(offered)}")
    over_time = AXES[axes][1]
    lead = data.shape[:job_axes(data.ndim, axes, rgb)]
    out = np.empty_like(data)
    jobs = int(np.prod(lead, dtype=np.int64))
    summary = None
    for index, job in enumerate(np.ndindex(lead)):
        def tick(done, total, index=index):
            if cancelled is not None and cancelled():
                raise Cancelled("cancelled")
            if progress is not None:
                progress((index + done / max(total, 1)) / jobs)
        settings = resolve(data[job], h, method=METHODS[method],
                           channel_axis=-1 if rgb else None, time_axis=0 if over_time else None)
        tick(0, 1)
        out[job] = denoise_with_progress(data[job], settings, tick)
        summary = summary or _summary(settings, axes, method)
    return out, summary


def _summary(settings, axes, method):
    """The settings of a job, for the new layer's metadata (plain values)."""
    first = settings.passes[0] if settings.passes else None
    summary = {"method": method, "axes": axes, "mode": settings.mode,
               "sigma": float(settings.sigma), "sigma_estimated": bool(settings.sigma_estimated),
               "noise": "white", "version": package_version()}
    if settings.variance_curve is not None:
        # sigma is then the stabilised image's (about 1): the curve is the noise's level
        summary["noise"] = "signal-dependent"
        summary["variance_curve"] = [[float(a), float(b)] for a, b in settings.variance_curve]
    if first is not None and hasattr(first, "h"):
        summary["h"] = float(first.h)
    if first is not None:
        summary["patch_radius"] = tuple(int(r) for r in first.patch_radius)
        summary["search_radius"] = tuple(int(r) for r in first.search_radius)
    return summary


def noise_text(summary):
    """The noise a job ran with, for the widget: its sigma, or for noise that
    grows with the signal the variance a*x + b of each channel (its sigma is
    then the stabilised image's, about 1, which would mislead)."""
    if summary.get("noise") == "signal-dependent":
        curves = "; ".join(f"{a:.3g}·x + {b:.3g}" for a, b in summary["variance_curve"])
        return f"signal-dependent, variance {curves}"
    return f"{summary['sigma']:.3g}"
