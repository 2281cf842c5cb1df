"""nlmeans.compat.skimage.denoise_nl_means: scikit-image's arguments and
conversions, nlmeans' formula (against the slow reference)."""

import numpy as np
import pytest
from reference import reference_nlmeans
from skimage import data, img_as_float
from skimage.restoration import denoise_nl_means as skimage_nl_means

from nlmeans.compat.skimage import denoise_nl_means

RNG = np.random.default_rng(3)


def test_the_formula_with_scikit_images_units():
    """uint8 in, float64 in [0, 1] out; h and sigma in those units; patch_size is
    the patch's width (an even one made odd, one more), patch_distance the
    search radius; the pixel itself with weight 1."""
    image = (RNG.random((12, 14)) * 255).astype(np.uint8)
    out = denoise_nl_means(image, patch_size=4, patch_distance=3, h=0.2, sigma=0.05)
    assert out.dtype == np.float64 and out.shape == image.shape
    expected = reference_nlmeans(image[..., None] / 255.0, 0.2, (2, 2), (3, 3), sigma=0.05)
    np.testing.assert_allclose(out, expected[..., 0], rtol=1e-5, atol=1e-6)


def test_colour_3d_and_4d():
    colour = RNG.random((10, 11, 3))
    out = denoise_nl_means(colour, 3, 2, 0.3, channel_axis=-1)
    expected = reference_nlmeans(colour, 0.3, (1, 1), (2, 2))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    volume = RNG.random((5, 6, 7))
    np.testing.assert_allclose(denoise_nl_means(volume, 3, 1, 0.3),
                               reference_nlmeans(volume[..., None], 0.3, (1, 1, 1),
                                                 (1, 1, 1))[..., 0], rtol=1e-5, atol=1e-6)
    assert denoise_nl_means(RNG.random((3, 4, 5, 6)), 3, 1, 0.3).shape == (3, 4, 5, 6)


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


def test_close_to_scikit_images_fast_mode():
    """The same arguments give a result of about the same quality: scikit-image's
    fast mode counts the pixel itself twice and drops weights below exp(-5)."""
    clean = img_as_float(data.camera()[128:256, 128:256])
    noisy = clean + 0.08 * RNG.standard_normal(clean.shape)
    ours = denoise_nl_means(noisy, h=0.06, sigma=0.08)
    theirs = skimage_nl_means(noisy, h=0.06, sigma=0.08)

    def psnr(result):
        return 10 * np.log10(1 / np.mean((np.clip(result, 0, 1) - clean) ** 2))

    assert psnr(noisy) + 5 < psnr(ours)
    assert abs(psnr(ours) - psnr(theirs)) < 0.5
    # A tiny h leaves the image as it is, as in scikit-image.
    np.testing.assert_allclose(denoise_nl_means(noisy, h=1e-6), noisy, atol=1e-6)
