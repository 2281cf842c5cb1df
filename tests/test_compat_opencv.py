"""nlmeans.compat.opencv: OpenCV's four fastNlMeansDenoising* functions, their
arguments and meaning of h, computed by the kernel; compared with OpenCV where
it is installed."""

import warnings

import numpy as np
import pytest
from skimage import data

import nlmeans
from nlmeans.compat import opencv

RNG = np.random.default_rng(11)


def noisy_8bit(clean, sigma):
    return np.clip(np.rint(clean + sigma * RNG.standard_normal(clean.shape)), 0, 255).astype(
        np.uint8)


def psnr(result, clean):
    return 10 * np.log10(255.0 ** 2 / np.mean((result.astype(float) - clean) ** 2))


def test_grey_is_the_formula_with_opencvs_windows():
    """h, a 7-pixel template (patch radius 3) and a 21-pixel search window
    (radius 10): nlmeans' plain formula, 8 bits in and out."""
    image = noisy_8bit(np.full((40, 44), 120.0), 15)
    out = opencv.fastNlMeansDenoising(image, None, 12.0, 7, 21)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out, nlmeans.denoise(image, 12.0, patch_radius=3,
                                                       search_radius=10))
    np.testing.assert_array_equal(opencv.fastNlMeansDenoising(image, h=12.0),
                                  out)  # OpenCV's defaults: 7 and 21


def test_multi_denoises_the_middle_of_its_temporal_window():
    frames = [noisy_8bit(np.full((24, 28), 90.0), 15) for _ in range(7)]
    out = opencv.fastNlMeansDenoisingMulti(frames, 3, 5, None, 12.0, 3, 7)
    expected = nlmeans.denoise(np.stack(frames[1:6]), 12.0, patch_radius=1, search_radius=3,
                               temporal_radius=2, time_axis=0)[2]
    np.testing.assert_array_equal(out, expected)


def test_bad_arguments_are_refused():
    image = noisy_8bit(np.full((20, 20), 100.0), 10)
    with pytest.raises(ValueError, match="8-bit"):
        opencv.fastNlMeansDenoising(image.astype(np.float32))
    with pytest.raises(ValueError, match="3-channel"):
        opencv.fastNlMeansDenoisingColored(image)
    with pytest.raises(ValueError, match="needs frames"):
        opencv.fastNlMeansDenoisingMulti([image] * 3, 0, 3)
    with pytest.raises(ValueError, match="odd"):
        opencv.fastNlMeansDenoisingMulti([image] * 3, 1, 2)


def test_lab_as_opencv_makes_it():
    cv2 = pytest.importorskip("cv2")
    bgr = data.astronaut()[::4, ::4, ::-1].copy()
    lab = np.moveaxis(opencv._bgr_to_lab(bgr), 0, -1)
    assert np.abs(lab.astype(int) - cv2.cvtColor(bgr, cv2.COLOR_LBGR2Lab)).max() <= 2
    reference = cv2.cvtColor(bgr, cv2.COLOR_LBGR2Lab)
    back = opencv._lab_to_bgr(np.moveaxis(reference, -1, 0))
    assert np.abs(back.astype(int) - cv2.cvtColor(reference, cv2.COLOR_Lab2LBGR)).max() <= 2


# linear RGB to XYZ, sRGB primaries, D65 white (written out again, not imported)
XYZ = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                [0.019334, 0.119193, 0.950227]])


def lab_reference(bgr):
    """8-bit Lab by scikit-image's xyz2lab, scaled as OpenCV stores it."""
    from skimage.color import xyz2lab

    lab = xyz2lab((bgr[..., ::-1] / 255.0) @ XYZ.T)
    scaled = np.stack([lab[..., 0] * 255 / 100, lab[..., 1] + 128, lab[..., 2] + 128], axis=-1)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def bgr_reference(lab):
    """8-bit BGR by scikit-image's lab2xyz (which clips negative z, warning)."""
    from skimage.color import lab2xyz

    lab = lab.astype(np.float64)
    real = np.stack([lab[..., 0] * 100 / 255, lab[..., 1] - 128, lab[..., 2] - 128], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rgb = lab2xyz(real) @ np.linalg.inv(XYZ).T
    return np.clip(np.rint(rgb[..., ::-1] * 255), 0, 255).astype(np.uint8)


def test_lab_conversions_equal_scikit_images_formulas():
    """The compiled conversions give the 8-bit values of the NumPy formulas,
    on every 8-bit grey and on random colours (negative z included)."""
    values = np.concatenate([np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1),
                             RNG.integers(0, 256, (40024, 3)).astype(np.uint8)])
    image = values.reshape(-1, 76, 3)
    np.testing.assert_array_equal(np.moveaxis(opencv._bgr_to_lab(image), 0, -1),
                                  lab_reference(image))
    np.testing.assert_array_equal(opencv._lab_to_bgr(np.moveaxis(image, -1, 0)),
                                  bgr_reference(image))


def test_cube_root_is_numpys_to_the_last_bits():
    """The compiled cube root of the Lab conversion (a guess from the exponent
    and three of Halley's steps) within 3 ulps of NumPy's cbrt, over the
    ratios the conversion takes (above CIELAB's linear segment) and beyond."""
    from numba import njit

    from nlmeans.kernels.lab import _cube_root

    @njit
    def cube_roots(values):
        return np.array([_cube_root(v) for v in values])

    values = np.concatenate([RNG.uniform(0.008856, 1.2, 20000), np.geomspace(1e-6, 1e6, 2000)])
    expected = np.cbrt(values)
    assert np.max(np.abs(cube_roots(values) - expected) / np.spacing(expected)) <= 3


@pytest.mark.parametrize("colour", [False, True])
def test_as_good_as_opencv(colour):
    """Equal PSNR (within 0.1 dB) to OpenCV's own functions, same arguments."""
    cv2 = pytest.importorskip("cv2")
    clean = (data.astronaut()[:160, 100:260, ::-1] if colour
             else data.camera()[100:260, 100:260]).astype(float)
    noisy = noisy_8bit(clean, 15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if colour:
            ours = opencv.fastNlMeansDenoisingColored(noisy, None, 10.0, 10.0)
            theirs = cv2.fastNlMeansDenoisingColored(noisy, None, 10.0, 10.0)
        else:
            ours = opencv.fastNlMeansDenoising(noisy, None, 12.0)
            theirs = cv2.fastNlMeansDenoising(noisy, None, 12.0)
    assert abs(psnr(ours, clean) - psnr(theirs, clean)) < 0.1
    assert psnr(ours, clean) > psnr(noisy, clean) + 3


def test_colored_multi_as_good_as_opencv():
    cv2 = pytest.importorskip("cv2")
    clean = data.astronaut()[:96, 100:196, ::-1].astype(float)
    frames = [noisy_8bit(clean, 15) for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = opencv.fastNlMeansDenoisingColoredMulti(frames, 1, 3, None, 10.0, 10.0)
    theirs = cv2.fastNlMeansDenoisingColoredMulti(frames, 1, 3, None, 10.0, 10.0)
    assert ours.shape == clean.shape and ours.dtype == np.uint8
    assert abs(psnr(ours, clean) - psnr(theirs, clean)) < 0.1
