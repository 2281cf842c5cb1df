"""nlmeans.compat.skimage.denoise_nl_means: scikit-image's arguments and
conversions, nlmeans' formula (against the slow reference)."""

import numpy as np
import pytest
from reference import reference_gaussian_nlmeans, reference_nlmeans
from skimage import data, img_as_float
from skimage.restoration import denoise_nl_means as skimage_nl_means

from nlmeans.compat.skimage import denoise_nl_means

RNG = np.random.default_rng(3)


def test_the_formula_with_scikit_images_units():
    """uint8 in, float64 in [0, 1] out; h and sigma in those units; patch_size is
    the patch's width (an even one made odd, one more), patch_distance the
    search radius; uniform patches in the fast mode, Gaussian ones in the slow
    mode; the pixel itself with weight 1."""
    image = (RNG.random((12, 14)) * 255).astype(np.uint8)
    for fast_mode, reference in ((True, reference_nlmeans), (False, reference_gaussian_nlmeans)):
        expected = reference(image[..., None] / 255.0, 0.2, (2, 2), (3, 3), sigma=0.05)
        out = denoise_nl_means(image, patch_size=4, patch_distance=3, h=0.2, sigma=0.05,
                               fast_mode=fast_mode)
        assert out.dtype == np.float64 and out.shape == image.shape
        np.testing.assert_allclose(out, expected[..., 0], rtol=1e-5, atol=1e-6)


def test_tiles_and_threads_give_the_formula():
    """Tiles of 32 rows on two threads (an image of three tiles), and a window
    wider than the image (mirrored copies)."""
    image = RNG.random((70, 9))
    expected = reference_gaussian_nlmeans(image[..., None], 0.25, (1, 1), (2, 11))
    out = denoise_nl_means(image, 3, 2, 0.25, fast_mode=False)  # search radius 2
    np.testing.assert_allclose(out, reference_gaussian_nlmeans(
        image[..., None], 0.25, (1, 1), (2, 2))[..., 0], rtol=1e-5, atol=1e-6)
    from nlmeans.kernels.gaussian import gaussian_nlmeans

    padded = np.pad(image[None, None], [(0, 0), (0, 0), (3, 3), (12, 12)], mode="reflect")
    # float32, as the drop-in runs it (a float64 variant would compile for this test only)
    wide = gaussian_nlmeans(padded.astype(np.float32), (1, 1, 70, 9), (0, 2, 11), (0, 1, 1),
                            0.25, 0.0, rows=32, threads=2)
    np.testing.assert_allclose(wide[0, 0], expected[..., 0], rtol=1e-5, atol=1e-6)


def test_colour_3d_and_4d():
    colour = RNG.random((10, 11, 3))
    for fast_mode, reference in ((True, reference_nlmeans), (False, reference_gaussian_nlmeans)):
        out = denoise_nl_means(np.moveaxis(colour, -1, 0), 3, 2, 0.3, fast_mode=fast_mode,
                               channel_axis=0)
        np.testing.assert_allclose(np.moveaxis(out, 0, -1),
                                   reference(colour, 0.3, (1, 1), (2, 2)), rtol=1e-5, atol=1e-6)
        volume = RNG.random((5, 6, 7))
        np.testing.assert_allclose(denoise_nl_means(volume, 5, 1, 0.3, fast_mode=fast_mode),
                                   reference(volume[..., None], 0.3, (2, 2, 2),
                                             (1, 1, 1))[..., 0], rtol=1e-5, atol=1e-6)
    colour_volume = RNG.random((4, 5, 6, 2))
    np.testing.assert_allclose(denoise_nl_means(colour_volume, 3, 1, 0.3, channel_axis=-1),
                               reference_nlmeans(colour_volume, 0.3, (1, 1, 1), (1, 1, 1)),
                               rtol=1e-5, atol=1e-6)
    four = RNG.random((3, 4, 5, 6))
    np.testing.assert_allclose(denoise_nl_means(four, 3, 1, 0.3),
                               reference_nlmeans(four[..., None], 0.3, (1,) * 4,
                                                 (1,) * 4)[..., 0], rtol=1e-5, atol=1e-6)


def test_dtypes_bool_and_preserve_range():
    assert denoise_nl_means(RNG.random((16, 16)).astype(np.float32)).dtype == np.float32
    # half floats come back as float32, as from scikit-image (they were refused)
    assert denoise_nl_means(RNG.random((16, 16)).astype(np.float16)).dtype == np.float32
    flags = RNG.random((20, 20)) > 0.5
    out = denoise_nl_means(flags, h=0.3)
    assert out.dtype == np.float64 and 0 <= out.min() and out.max() <= 1
    image = (RNG.random((16, 18)) * 255).astype(np.uint8)
    kept = denoise_nl_means(image, 5, 3, h=20.0, preserve_range=True)
    scaled = denoise_nl_means(image, 5, 3, h=20.0 / 255)
    np.testing.assert_allclose(kept, scaled * 255, rtol=1e-5, atol=1e-6)


def test_scikit_images_refusals():
    with pytest.raises(NotImplementedError):
        denoise_nl_means(RNG.random(20))
    with pytest.raises(NotImplementedError):
        denoise_nl_means(RNG.random((2, 3, 4, 5, 6)))
    with pytest.raises(NotImplementedError, match="4D requires fast_mode"):
        denoise_nl_means(RNG.random((3, 4, 5, 6)), fast_mode=False)
    with pytest.raises(NotImplementedError, match="Multichannel 3D"):
        denoise_nl_means(RNG.random((4, 5, 6, 3)), fast_mode=False, channel_axis=-1)


def test_as_good_as_each_of_scikit_images_modes():
    """The same arguments give the quality of scikit-image's mode: the fast mode
    within 0.5 dB (it counts the pixel itself twice and drops weights below
    exp(-5)), the slow mode within 0.1 dB (the same Gaussian patches; it cuts
    the window at the borders where we mirror it)."""
    clean = img_as_float(data.camera()[128:256, 128:256])
    noisy = clean + 0.08 * RNG.standard_normal(clean.shape)

    def psnr(result):
        return 10 * np.log10(1 / np.mean((np.clip(result, 0, 1) - clean) ** 2))

    for fast_mode, tolerance in ((True, 0.5), (False, 0.1)):
        ours = denoise_nl_means(noisy, h=0.06, sigma=0.08, fast_mode=fast_mode)
        theirs = skimage_nl_means(noisy, h=0.06, sigma=0.08, fast_mode=fast_mode)
        assert psnr(noisy) + 5 < psnr(ours)
        assert abs(psnr(ours) - psnr(theirs)) < tolerance
    # A tiny h leaves the image as it is, as in scikit-image.
    np.testing.assert_allclose(denoise_nl_means(noisy, h=1e-6), noisy, atol=1e-6)
