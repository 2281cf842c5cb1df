"""Whole arrays with progress and cancellation, for interactive front ends (the
napari widget): the result of :func:`nlmeans.denoise` with the same settings,
bit for bit, with the caller told how far the kernel is."""

from nlmeans.api.resolve import SETTINGS_OPTIONS, check_settings_fit
from nlmeans.model.layout import check_image
from nlmeans.runners.block import denoise_block
from nlmeans.runners.strips import denoise_in_strips, strip_axis

# check_settings_fit's options: none given beside the settings.
_NO_OPTIONS = dict.fromkeys(SETTINGS_OPTIONS + ("dtype", "channel_axis", "time_axis"))


def denoise_with_progress(image, settings, progress):
    """``denoise(image, settings=settings)`` on the compiled CPU kernel, calling
    ``progress(done, total)`` as the kernel's tiles finish.

    Parameters
    ----------
    image : array_like
        The array the settings were resolved for (:func:`nlmeans.resolve`).
    settings : Settings
        What to run: NL-means or NL-Bayes, on an image, a volume or frames in
        memory (``time_axis``).
    progress : callable
        ``progress(done, total)``, called from the kernel's worker threads, one
        call at a time; `done` grows to `total`. An exception it raises stops
        the job between two tiles and reaches the caller: a front end cancels
        a job so.

    Returns
    -------
    numpy.ndarray
        The denoised array, equal to ``denoise(image, settings=settings)``.
    """
    image, bounds = check_image(image)
    check_settings_fit(settings, image, _NO_OPTIONS)
    if not settings.passes:  # nothing to remove: a copy
        progress(1, 1)
        return image.copy()
    if settings.method == "nlbayes":  # it reports its own tiles
        return denoise_block(image, settings, bounds, progress=progress)
    # One strip as long as the image: the kernel's own tiles report progress.
    length = image.shape[strip_axis(settings)]
    return denoise_in_strips(image, settings, length, progress=progress, bounds=bounds)
