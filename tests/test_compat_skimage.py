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
    search radius; Gaussian patches in either mode (scikit-image's slow mode's
    formula); the pixel itself with weight 1."""
    image = (RNG.random((12, 14)) * 255).astype(np.uint8)
    expected = reference_gaussian_nlmeans(image[..., None] / 255.0, 0.2, (2, 2), (3, 3),
                                          sigma=0.05)
    for fast_mode in (True, False):
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


@pytest.mark.parametrize("height, width, channels, search, patch, rows", [
    (20, 15, 1, 3, 1, 8), (20, 15, 2, 3, 2, 8), (9, 30, 3, 5, 1, 4), (40, 12, 1, 11, 3, 32),
    (13, 13, 1, 2, 0, 5)])
def test_pairs_across_tiles_give_the_formula(height, width, channels, search, patch, rows):
    """The 2-D kernel's pairs: rows that a tile gives to the next ones (tiles
    shorter than the search radius too), windows wider than the image, patches
    of one pixel, channels; the same bytes on one thread and on two."""
    from nlmeans.kernels.gaussian import gaussian_nlmeans

    image = RNG.random((height, width, channels))
    margin = search + patch
    padded = np.pad(np.moveaxis(image, -1, 0)[:, None], [(0, 0), (0, 0)] + [(margin,) * 2] * 2,
                    mode="reflect").astype(np.float32)
    runs = [gaussian_nlmeans(padded, (channels, 1, height, width), (0, search, search),
                             (0, patch, patch), 0.3, 0.05, rows=rows, threads=threads)
            for threads in (1, 2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    expected = reference_gaussian_nlmeans(image, 0.3, (patch, patch), (search, search),
                                          sigma=0.05)
    np.testing.assert_allclose(np.moveaxis(runs[0][:, 0], 0, -1), expected, rtol=1e-5,
                               atol=1e-6)


def test_colour_3d_and_4d():
    """Gaussian patches on 2-D and 3-D images, with or without channels (3-D
    with channels only in the fast mode, as scikit-image); uniform on 4-D."""
    colour = RNG.random((10, 11, 3))
    volume = RNG.random((5, 6, 7))
    for fast_mode in (True, False):
        out = denoise_nl_means(np.moveaxis(colour, -1, 0), 3, 2, 0.3, fast_mode=fast_mode,
                               channel_axis=0)
        np.testing.assert_allclose(np.moveaxis(out, 0, -1), reference_gaussian_nlmeans(
            colour, 0.3, (1, 1), (2, 2)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(denoise_nl_means(volume, 5, 1, 0.3, fast_mode=fast_mode),
                                   reference_gaussian_nlmeans(volume[..., None], 0.3, (2, 2, 2),
                                                              (1, 1, 1))[..., 0],
                                   rtol=1e-5, atol=1e-6)
    colour_volume = RNG.random((4, 5, 6, 2))
    np.testing.assert_allclose(denoise_nl_means(colour_volume, 3, 1, 0.3, channel_axis=-1),
                               reference_gaussian_nlmeans(colour_volume, 0.3, (1, 1, 1),
                                                          (1, 1, 1)), rtol=1e-5, atol=1e-6)
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


def test_as_good_as_scikit_images_slow_mode_in_either_mode():
    """The same arguments give the quality of scikit-image's slow mode, whatever
    `fast_mode` says: within 0.1 dB (the same Gaussian patches; it cuts the
    window at the borders where we mirror it), and better than its fast mode
    at its defaults (uniform patches, approximated)."""
    clean = img_as_float(data.camera()[128:256, 128:256])
    noisy = clean + 0.08 * RNG.standard_normal(clean.shape)

    def psnr(result):
        return 10 * np.log10(1 / np.mean((np.clip(result, 0, 1) - clean) ** 2))

    # The defaults within 0.15 dB: on a crop this small the borders, where the
    # windows differ, weigh more (-0.03 dB on the whole 512² image).
    for options, tolerance in (({"h": 0.06, "sigma": 0.08}, 0.1), ({}, 0.15)):
        slow = psnr(skimage_nl_means(noisy, fast_mode=False, **options))
        for fast_mode in (True, False):
            assert abs(psnr(denoise_nl_means(noisy, fast_mode=fast_mode, **options))
                       - slow) < tolerance
    assert psnr(denoise_nl_means(noisy)) > psnr(skimage_nl_means(noisy)) + 0.3
    # A tiny h leaves the image as it is, as in scikit-image.
    np.testing.assert_allclose(denoise_nl_means(noisy, h=1e-6), noisy, atol=1e-6)
