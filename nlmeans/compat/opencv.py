"""OpenCV's ``cv2.fastNlMeansDenoising*`` functions, computed by nlmeans.

Code written for OpenCV can switch by changing where the functions come from::

    from nlmeans.compat import opencv as cv2   # for these four functions

Arguments, their order and defaults are OpenCV's, 8-bit images in and out, and
h means what it means there: weights ``exp(-d2 / h^2)``, d2 the mean squared
difference of two ``templateWindowSize``-wide patches (over their channels),
over a ``searchWindowSize``-wide window, the pixel itself included, the image
mirrored at its borders. Colour images (BGR, as OpenCV's) are converted to
CIELAB as OpenCV converts them there (the 8-bit values taken as linear RGB,
no gamma; Lab stored in 8 bits), the lightness denoised with `h` and the two
colour channels together with `hColor`, and converted back. Where OpenCV
differs: it computes weights in fixed point from a table and drops those below
0.001; here they are exact. (With the sRGB gamma undone first, the colour
results measured 1.4 to 1.7 dB better; nlmeans' own API denoises colour in
opponent colours, better still.)
"""

import numpy as np

from nlmeans.backends.cpu import numba_pass
from nlmeans.model.settings import Pass

# Below this many pixels the colour conversions run on one thread.
_PIXELS_PER_THREAD = 1 << 16


def fastNlMeansDenoising(src, dst=None, h=3.0, templateWindowSize=7,  # noqa: N802 - OpenCV's
                         searchWindowSize=21):
    """Denoise an 8-bit image with 1 to 4 channels (see the module docstring)."""
    image = _checked_uint8(src, "src")
    out = _denoise([_channels_first(image)], 0, h, templateWindowSize, searchWindowSize)
    return _channels_last(out, image.ndim == 2)


def fastNlMeansDenoisingColored(src, dst=None, h=3.0, hColor=3.0,  # noqa: N802, N803
                                templateWindowSize=7, searchWindowSize=21):
    """Denoise an 8-bit BGR image in CIELAB (see the module docstring)."""
    image = _checked_uint8(src, "src", colour=True)
    return _colored([image], 0, h, hColor, templateWindowSize, searchWindowSize)


def fastNlMeansDenoisingMulti(srcImgs, imgToDenoiseIndex, temporalWindowSize,  # noqa: N802, N803
                              dst=None, h=3.0, templateWindowSize=7, searchWindowSize=21):
    """Denoise frame `imgToDenoiseIndex` of the 8-bit frames `srcImgs`, with
    `temporalWindowSize` frames (odd) around it in the window."""
    frames = _frames(srcImgs, imgToDenoiseIndex, temporalWindowSize, colour=False)
    out = _denoise([_channels_first(frame) for frame in frames], temporalWindowSize // 2, h,
                   templateWindowSize, searchWindowSize)
    return _channels_last(out, frames[0].ndim == 2)


def fastNlMeansDenoisingColoredMulti(srcImgs, imgToDenoiseIndex,  # noqa: N802, N803
                                     temporalWindowSize, dst=None, h=3.0, hColor=3.0,
                                     templateWindowSize=7, searchWindowSize=21):
    """As fastNlMeansDenoisingMulti, for 8-bit BGR frames, in CIELAB."""
    frames = _frames(srcImgs, imgToDenoiseIndex, temporalWindowSize, colour=True)
    return _colored(frames, temporalWindowSize // 2, h, hColor, templateWindowSize,
                    searchWindowSize)


def _checked_uint8(image, name, colour=False):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be an 8-bit image (uint8), got {image.dtype}")
    if colour and (image.ndim != 3 or image.shape[2] != 3):
        raise ValueError(f"{name} must be a 3-channel (BGR) image, got shape {image.shape}")
    if not colour and not (image.ndim == 2 or image.ndim == 3 and 1 <= image.shape[2] <= 4):
        raise ValueError(f"{name} must be an image with 1 to 4 channels, got {image.shape}")
    return image


def _frames(images, index, window, colour):
    """The `window` frames around `index`, checked as OpenCV checks them."""
    images = [_checked_uint8(image, "srcImgs", colour) for image in images]
    if window % 2 != 1 or window < 1:
        raise ValueError(f"temporalWindowSize must be odd and positive, got {window}")
    radius = window // 2
    if index - radius < 0 or index + radius >= len(images):
        raise ValueError(f"imgToDenoiseIndex {index} with temporalWindowSize {window} needs "
                         f"frames {index - radius} to {index + radius} of {len(images)}")
    if len({(image.shape, image.dtype) for image in images}) > 1:
        raise ValueError("srcImgs must all have the same shape")
    return images[index - radius:index + radius + 1]


def _denoise(frames, radius, h, template, search):
    """The middle frame of the 2 * `radius` + 1 `frames` (each (C, Y, X)),
    with the others in its window, (C, Y, X) uint8: the kernel computes that
    frame only."""
    values = np.stack(frames, axis=1).astype(np.float32)  # (C, T, Y, X)
    if radius == 0:  # one image: a 2-D pass, which takes the kernel's 2-D tiles (faster)
        step = Pass((template // 2,) * 2, (search // 2,) * 2, float(h), 0.0, "pixel", "one")
    else:
        step = Pass((0, template // 2, template // 2), (radius, search // 2, search // 2),
                    float(h), 0.0, "pixel", "one")
    out = numba_pass(values, None, step, np.float32, (0, 255), True, frames_padded=radius > 0)
    return out[:, 0].astype(np.uint8)


def _channels_first(image):
    return image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)


def _channels_last(planes, grey):
    return planes[0] if grey else np.ascontiguousarray(np.moveaxis(planes, 0, -1))


def _colored(frames, radius, h, h_colour, template, search):
    """OpenCV's colour variant: CIELAB, lightness with `h`, colour with `h_colour`."""
    labs = [_bgr_to_lab(frame) for frame in frames]
    light = _denoise([lab[:1] for lab in labs], radius, h, template, search)
    colour = _denoise([lab[1:] for lab in labs], radius, h_colour, template, search)
    return _lab_to_bgr(np.concatenate([light, colour]))


def _bgr_to_lab(bgr):
    """8-bit CIELAB planes, (3, Y, X), as OpenCV's colour denoising makes them
    (COLOR_LBGR2Lab): the values taken as linear RGB, no gamma; stored as
    L * 255 / 100, a + 128, b + 128."""
    from nlmeans.kernels import lab  # deferred: importing Numba costs ~0.3 s

    pixels = np.ascontiguousarray(bgr).reshape(-1, 3)
    planes = np.empty((3, len(pixels)), np.uint8)
    _in_ranges(lab.bgr_to_lab, len(pixels), pixels, lab.RGB_TO_XYZ, lab.WHITE, planes)
    return planes.reshape((3,) + bgr.shape[:2])


def _lab_to_bgr(planes):
    """The inverse of _bgr_to_lab (COLOR_Lab2LBGR): 8-bit BGR, (Y, X, 3)."""
    from nlmeans.kernels import lab  # deferred, as above

    flat = np.ascontiguousarray(planes).reshape(3, -1)
    pixels = np.empty((flat.shape[1], 3), np.uint8)
    _in_ranges(lab.lab_to_bgr, len(pixels), flat, lab.XYZ_TO_RGB, lab.WHITE, pixels)
    return pixels.reshape(planes.shape[1:] + (3,))


def _in_ranges(convert, count, *arguments):
    """convert(*arguments, start, stop) over [0, count) in one range per thread
    (the compiled conversions release the GIL)."""
    from numba import get_num_threads  # deferred, as above

    from nlmeans.kernels.nlm import run_tiles  # deferred, as above

    threads = get_num_threads() if count >= _PIXELS_PER_THREAD else 1
    bounds = np.linspace(0, count, threads + 1).astype(int)
    run_tiles(lambda i: convert(*arguments, bounds[i], bounds[i + 1]), threads, threads)
