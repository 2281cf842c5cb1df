"""The fast kernel against the slow float64 reference, and the exp it uses."""

import numpy as np
import pytest

import nlmeans
from nlmeans.kernels import nlm as _kernels
from reference import mirror_index, mirror_pad, reference_2d, reference_nlmeans

RNG = np.random.default_rng(12345)


def relative_error(result, expected):
    return np.max(np.abs(result - expected)) / np.max(np.abs(expected))


def exact(image, h, patch_radius, search_radius, sigma=0.0, channel_axis=None,
          dtype=np.float64, aggregation="pixel", centre_weight="one"):
    """The formula with exactly these radii: settings made by hand, since the API
    cuts radii beyond the image (the kernel mirrors repeatedly for them)."""
    n = image.ndim - (channel_axis is not None)
    axis = None if channel_axis is None else channel_axis % image.ndim
    step = nlmeans.Pass((patch_radius,) * n, (search_radius,) * n, float(h), float(sigma),
                        aggregation, centre_weight)
    settings = nlmeans.Settings(passes=(step,), sigma=float(sigma), sigma_estimated=False,
                                data_range=None, dtype=np.dtype(dtype).name, n_spatial=n,
                                channels=1 if axis is None else image.shape[axis],
                                channel_axis=axis)
    return nlmeans.denoise(image, settings=settings)


# (shape, channels, patch_radius, search_radius, h, sigma)
CASES_2D = [
    ((11, 13), None, 1, 2, 20.0, 0.0),
    ((12, 9), None, 2, 3, 30.0, 5.0),
    ((10, 10), None, 0, 1, 10.0, 0.0),
    ((9, 14), None, 1, 6, 25.0, 3.0),     # search radius larger than half the image
    ((5, 4), None, 3, 4, 40.0, 0.0),      # patch and window larger than the image
    ((8, 11), 1, 1, 2, 20.0, 0.0),
    ((9, 10), 3, 1, 2, 30.0, 4.0),
    ((7, 8), 4, 2, 3, 35.0, 0.0),
    ((13, 15), None, 4, 2, 60.0, 5.0),    # 9x9 and 11x11 patches: box sums from column pairs
    ((12, 14), 3, 5, 3, 80.0, 0.0),
    ((1, 9), None, 1, 2, 20.0, 0.0),      # a single row
    ((6, 1), 3, 1, 2, 20.0, 0.0),         # a single column
]


@pytest.mark.parametrize("shape, channels, ds, Ds, h, sigma", CASES_2D)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_2d_matches_reference(shape, channels, ds, Ds, h, sigma, dtype, rtol):
    full_shape = shape if channels is None else shape + (channels,)
    image = RNG.random(full_shape) * 100
    expected = reference_2d(image, h, ds, Ds, sigma)
    result = exact(image, h, ds, Ds, sigma, None if channels is None else -1, dtype)
    assert result.shape == image.shape
    assert relative_error(result, expected) < rtol


@pytest.mark.parametrize("shape, channels, ds, Ds, h, sigma", [
    ((5, 6, 7), None, 1, 1, 30.0, 0.0),
    ((4, 5, 6), None, 1, 2, 40.0, 5.0),
    ((3, 4, 5), 2, 1, 1, 30.0, 0.0),
    ((2, 6, 5), None, 0, 3, 20.0, 0.0),   # radius along z larger than the volume
])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_3d_matches_reference(shape, channels, ds, Ds, h, sigma, dtype, rtol):
    full_shape = shape if channels is None else shape + (channels,)
    volume = RNG.random(full_shape) * 100
    vol4 = volume[..., None] if channels is None else volume
    expected = reference_nlmeans(vol4, h, (ds,) * 3, (Ds,) * 3, sigma)
    if channels is None:
        expected = expected[..., 0]
    result = exact(volume, h, ds, Ds, sigma, None if channels is None else 3, dtype)
    assert relative_error(result, expected) < rtol


def test_anisotropic_radii_match_reference():
    volume = RNG.random((4, 6, 7)) * 100
    expected = reference_nlmeans(volume[..., None], 25.0, (0, 1, 2), (1, 2, 1))[..., 0]
    result = nlmeans.denoise(volume, 25.0, patch_radius=(0, 1, 2), search_radius=(1, 2, 1),
                             dtype=np.float64)
    assert relative_error(result, expected) < 1e-9


@pytest.mark.parametrize("channels", [None, 3])
def test_several_tiles_match_reference(channels):
    """Images larger than one tile: the tiles' seams must not show."""
    from numba import get_num_threads

    from nlmeans.backends.cpu import _TILE_2D_PIXEL, _tile_shape

    # The tile of a large image (a small one would get fewer rows, see below).
    _, rows, width = _tile_shape(2, 1 if channels is None else channels, True, (8192, 8192), 1)
    assert rows <= _TILE_2D_PIXEL[1]  # more channels, fewer rows per tile
    extra = () if channels is None else (channels,)
    image = RNG.random((rows + 12, width + 40) + extra) * 100
    # The tiles the image gets (fewer rows where it has few tiles per thread).
    _, rows, width = _tile_shape(2, 1 if channels is None else channels, True, image.shape[:2],
                                 get_num_threads())
    assert rows >= 32
    axis = None if channels is None else -1
    result = nlmeans.denoise(image, 30.0, patch_radius=1, search_radius=3, dtype=np.float64,
                             channel_axis=axis)
    # A crop around each seam; 8 pixels from the crop's edges see no border
    # (search 3 + patch 1 < 8), so the crop's reference equals the full image's there.
    seam_y = image[rows - 12:rows + 12, 100:140]
    expected = reference_2d(seam_y, 30.0, 1, 3)
    assert relative_error(result[rows - 4:rows + 4, 108:132], expected[8:16, 8:32]) < 1e-9
    seam_x = image[:40, width - 20:width + 20]
    expected = reference_2d(seam_x, 30.0, 1, 3)
    assert relative_error(result[:32, width - 12:width + 12], expected[:32, 8:32]) < 1e-9


def test_exp2_polynomial_accuracy():
    x = np.concatenate([np.linspace(0, 120, 100_001), RNG.random(10_000) * 1000])
    exact = np.exp2(-x)
    fast64 = _kernels.exp2_neg_array(x)
    assert np.max(np.abs(fast64 / exact - 1)) < 1e-14
    x32 = x[x < 120].astype(np.float32)
    fast32 = _kernels.exp2_neg_array(x32).astype(np.float64)
    exact32 = np.exp2(-x32.astype(np.float64))
    assert np.max(np.abs(fast32 / exact32 - 1)) < 5e-7


def test_exp2_flushes_what_would_be_denormal():
    """No weight is denormal (slow products on x86): below the smallest normal
    number the result is exactly 0, above it the full-precision value."""
    for dtype, limit in ((np.float32, 125), (np.float64, 1021)):
        tiny = np.finfo(dtype).tiny
        x = np.concatenate([np.linspace(limit - 5, limit + 5, 10_001), [1e4, 1e30]]).astype(dtype)
        result = _kernels.exp2_neg_array(x)
        assert np.all((result == 0) | (result >= tiny))
        assert np.all(result[x >= limit + 1] == 0)
        kept = x <= limit
        np.testing.assert_allclose(result[kept], np.exp2(-x[kept].astype(np.float64)),
                                   rtol=5e-7)


def test_half_offsets_cover_each_pair_once():
    offsets = [tuple(t) for t in _kernels.half_offsets((1, 2, 3))]
    assert len(offsets) == (3 * 5 * 7 - 1) // 2
    everything = set(offsets) | {tuple(-a for a in t) for t in offsets}
    assert len(everything) == 3 * 5 * 7 - 1
    assert (0, 0, 0) not in everything


def test_reference_mirroring_is_numpy_reflect():
    """The reference's hand-written mirroring equals numpy's 'reflect' mode, repeated."""
    for n in (1, 2, 3, 5):
        values = np.arange(n)
        expected = np.pad(values, 9, mode="reflect")
        assert [values[mirror_index(i - 9, n)] for i in range(n + 18)] == list(expected)
    volume = RNG.random((2, 3, 4, 1))
    np.testing.assert_array_equal(mirror_pad(volume, (3, 4, 5)),
                                  np.pad(volume, ((3, 3), (4, 4), (5, 5), (0, 0)), mode="reflect"))


@pytest.mark.parametrize("aggregation, centre", [("patch", "one"), ("patch", "max"),
                                                 ("pixel", "max")])
@pytest.mark.parametrize("shape, channels, ds, Ds, h, sigma", [
    ((9, 11), None, 1, 2, 20.0, 0.0),
    ((8, 7), 3, 2, 3, 30.0, 4.0),
    ((5, 4), None, 2, 4, 40.0, 0.0),      # radii larger than the image
])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_aggregation_and_centre_weight_match_reference(aggregation, centre, shape, channels, ds,
                                                       Ds, h, sigma, dtype, rtol):
    full_shape = shape if channels is None else shape + (channels,)
    image = RNG.random(full_shape) * 100
    expected = reference_2d(image, h, ds, Ds, sigma, aggregation=aggregation, centre=centre)
    result = exact(image, h, ds, Ds, sigma, None if channels is None else -1, dtype,
                   aggregation, centre)
    assert relative_error(result, expected) < rtol


def test_patch_aggregation_in_3d_matches_reference():
    volume = RNG.random((4, 5, 6)) * 100
    expected = reference_nlmeans(volume[..., None], 30.0, (1, 1, 1), (1, 1, 1),
                                 aggregation="patch", centre="max")[..., 0]
    result = nlmeans.denoise(volume, 30.0, patch_radius=1, search_radius=1, dtype=np.float64,
                             aggregation="patch", centre_weight="max")
    assert relative_error(result, expected) < 1e-9


@pytest.mark.parametrize("channels", [None, 2])
def test_patch_aggregation_down_long_columns_matches_reference(channels):
    """Patch-wise proposals are made a row at a time with running sums down the
    rows that restart every ROW_RESTART rows: on an image several restarts tall,
    with 5 x 5 patches (a ring of six rows), the result is the reference's."""
    shape = (45, 23) if channels is None else (45, 23, channels)
    image = RNG.random(shape) * 100
    expected = reference_2d(image, 40.0, 2, 3, aggregation="patch", centre="max")
    result = nlmeans.denoise(image, 40.0, patch_radius=2, search_radius=3, dtype=np.float64,
                             aggregation="patch", centre_weight="max",
                             channel_axis=None if channels is None else -1)
    assert relative_error(result, expected) < 1e-9


def test_patch_aggregation_across_tiles_matches_reference():
    from numba import get_num_threads

    from nlmeans.backends.cpu import _tile_shape

    _, rows, width = _tile_shape(2, 1, False, (8192, 8192), 1)  # patch-wise tiles of a large image
    image = RNG.random((rows + 6, width + 20)) * 100
    _, rows, width = _tile_shape(2, 1, False, image.shape, get_num_threads())
    result = nlmeans.denoise(image, 30.0, patch_radius=1, search_radius=2, dtype=np.float64,
                             aggregation="patch", centre_weight="max")
    # A crop across each seam, reaching the image's far edge (mirrored alike);
    # 8 pixels from the crop's other edge see no border.
    expected = reference_2d(image[rows - 12:, :30], 30.0, 1, 2, aggregation="patch",
                            centre="max")
    assert relative_error(result[rows - 4:, :22], expected[8:, :22]) < 1e-9
    expected = reference_2d(image[:30, width - 12:], 30.0, 1, 2, aggregation="patch",
                            centre="max")
    assert relative_error(result[:22, width - 4:], expected[:22, 8:]) < 1e-9


def test_centre_max_with_tiny_h_keeps_the_pixel():
    image = RNG.permutation(100).reshape(10, 10).astype(np.float64)
    result = nlmeans.denoise(image, 1e-4, patch_radius=1, search_radius=2, dtype=np.float64,
                             centre_weight="max")
    np.testing.assert_array_equal(result, image)


def _wide_vectors_in_subprocess(env_changes, before=""):
    """Import the kernels in a fresh interpreter; return (WIDE_VECTORS, Numba's CPU features)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("NLMEANS_WIDE_VECTORS", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    env.update(env_changes)
    script = (before + "\nfrom nlmeans.kernels import nlm as _kernels\n"
              "from numba.core.registry import cpu_target\n"
              "print(_kernels.WIDE_VECTORS, cpu_target.target_context.codegen()._tm_features)")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", out[1]


def test_wide_vectors_only_where_the_cpu_has_them():
    import llvmlite.binding as llvm

    wide, features = _wide_vectors_in_subprocess({})
    assert wide == bool(llvm.get_host_cpu_features().get("avx512f"))
    assert features.endswith(",-prefer-256-bit") == wide


@pytest.mark.parametrize("env_changes, before", [
    ({"NLMEANS_WIDE_VECTORS": "0"}, ""),
    ({"NUMBA_CPU_FEATURES": "+sse2"}, ""),
    # Numba's code generator already made by the user's own code: too late to change it.
    ({}, "import numba\nnumba.njit(lambda x: x)(1)"),
])
def test_wide_vectors_leave_a_chosen_target_alone(env_changes, before):
    wide, features = _wide_vectors_in_subprocess(env_changes, before)
    assert not wide
    assert "prefer-256-bit" not in features


def opponent(rgb, chroma_weight):
    """Brightness and the two chroma axes, the latter scaled by chroma_weight."""
    r, g, b = np.moveaxis(rgb, -1, 0)
    return np.stack([(r + g + b) / np.sqrt(3), chroma_weight * (r - b) / np.sqrt(2),
                     chroma_weight * (r - 2 * g + b) / np.sqrt(6)], axis=-1)


def rgb_from_opponent(values, chroma_weight):
    y, c1, c2 = np.moveaxis(values, -1, 0)
    c1, c2 = c1 / chroma_weight, c2 / chroma_weight
    return np.stack([y / np.sqrt(3) + c1 / np.sqrt(2) + c2 / np.sqrt(6),
                     y / np.sqrt(3) - 2 * c2 / np.sqrt(6),
                     y / np.sqrt(3) - c1 / np.sqrt(2) + c2 / np.sqrt(6)], axis=-1)


@pytest.mark.parametrize("spatial", [(9, 10), (4, 5, 6)])
@pytest.mark.parametrize("aggregation, centre", [("pixel", "one"), ("patch", "max")])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_chroma_weight_is_nl_means_in_scaled_opponent_colours(spatial, aggregation, centre,
                                                              dtype, rtol):
    """The fast path with a chroma weight against the float64 reference run on the
    transformed image, with the transformed noise level, and transformed back."""
    chroma_weight, h, sigma = 0.4, 25.0, 6.0
    image = RNG.random(spatial + (3,)) * 100
    volume = opponent(image if len(spatial) == 3 else image[None], chroma_weight)
    radii = (1, 1, 1) if len(spatial) == 3 else (0, 1, 1)
    search = (1, 2, 2) if len(spatial) == 3 else (0, 3, 3)
    transformed_sigma = sigma * np.sqrt((1 + 2 * chroma_weight ** 2) / 3)
    expected = rgb_from_opponent(reference_nlmeans(volume, h, radii, search, transformed_sigma,
                                                   aggregation=aggregation, centre=centre),
                                 chroma_weight)
    expected = np.clip(expected if len(spatial) == 3 else expected[0], image.min(), image.max())
    result = nlmeans.denoise(image, h, patch_radius=radii[-len(spatial):],
                             search_radius=search[-len(spatial):], sigma=sigma,
                             channel_axis=-1, dtype=dtype, aggregation=aggregation,
                             centre_weight=centre, chroma_weight=chroma_weight)
    assert relative_error(result, expected) < rtol
    # A chroma weight of 1 is the plain RGB formula, and any other weight differs.
    plain = nlmeans.denoise(image, h, patch_radius=radii[-len(spatial):],
                            search_radius=search[-len(spatial):], sigma=sigma, channel_axis=-1,
                            dtype=np.float64, aggregation=aggregation, centre_weight=centre)
    rgb_reference = reference_nlmeans(image if len(spatial) == 3 else image[None], h, radii,
                                      search, sigma, aggregation=aggregation, centre=centre)
    assert relative_error(plain, rgb_reference.reshape(plain.shape)) < 1e-9
    assert relative_error(result, plain) > 10 * rtol


_REFINE_CASES = {}


def _refine_case(spatial, channels):
    """(image, first pass, expected result) from the reference, computed once per
    case for both precisions."""
    from nlmeans.model.parameters import refine_parameters

    if (spatial, channels) not in _REFINE_CASES:
        h, sigma = 30.0, 8.0
        volume_case = len(spatial) == 3
        rng = np.random.default_rng(len(spatial) * 10 + (channels or 1))
        image = rng.random(spatial + ((channels,) if channels else ())) * 100
        vol4 = image[..., None] if channels is None else image
        vol4 = vol4 if volume_case else vol4[None]
        radii = (1, 1, 1) if volume_case else (0, 1, 1)
        search = (1, 2, 2) if volume_case else (0, 2, 2)
        options = dict(aggregation="patch", centre="max")
        first = reference_nlmeans(vol4, h, radii, search, sigma, **options)
        patch2, search2, h2 = refine_parameters(sigma, volume=volume_case)
        lead = () if volume_case else (0,)
        expected = reference_nlmeans(vol4, h2, lead + (patch2,) * len(spatial),
                                     lead + (search2,) * len(spatial), 0.0, guide=first,
                                     **options)
        shape = image.shape
        _REFINE_CASES[spatial, channels] = (image, first.reshape(shape), expected.reshape(shape))
    return _REFINE_CASES[spatial, channels]


@pytest.mark.parametrize("spatial, channels", [((9, 10), None), ((8, 9), 3), ((4, 5, 6), None)])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_refine_is_nl_means_guided_by_the_first_pass(spatial, channels, dtype, rtol):
    """The second pass against the reference whose weights compare the patches of
    the reference's own first pass, with the second pass's fixed settings."""
    image, first, expected = _refine_case(spatial, channels)
    search = (1, 2, 2) if len(spatial) == 3 else (2, 2)
    result = nlmeans.denoise(image, 30.0, patch_radius=1, search_radius=search, sigma=8.0,
                             channel_axis=-1 if channels else None, dtype=dtype,
                             aggregation="patch", centre_weight="max", refine=True)
    assert relative_error(result, expected) < rtol
    assert relative_error(result, first) > 100 * rtol


def test_tiles_give_every_thread_work():
    from nlmeans.backends.cpu import (_TILE_2D_PATCH, _TILE_2D_PIXEL, _TILE_3D, _TILE_FRAMES,
                                      _tile_shape)

    # A large image keeps the tile that measured fastest; with many threads a
    # smaller one gets tiles of fewer rows (not below 32), two or more per thread.
    assert _tile_shape(2, 1, True, (4096, 4096), 16) == _TILE_2D_PIXEL
    assert _tile_shape(2, 1, False, (4096, 4096), 16) == _TILE_2D_PATCH
    _, rows, width = _tile_shape(2, 1, True, (1024, 1024), 16)
    assert (rows, width) == (32, _TILE_2D_PIXEL[2])
    assert _tile_shape(2, 1, True, (1024, 1024), 8)[1] == 64
    assert _tile_shape(2, 1, True, (1024, 1024), 4)[1] == 128
    assert _tile_shape(2, 1, True, (100, 100), 64)[1] == 32
    # Tiles that even out the threads' work: 512 rows of two channels made 7 tiles
    # of 80 rows (the budget's), one thread computing four; 64 rows make 8.
    assert _tile_shape(2, 2, True, (512, 512), 2)[1] == 64
    assert _tile_shape(2, 2, True, (4096, 4096), 2)[1] == 80  # 52 tiles: 26 each
    assert _tile_shape(2, 1, True, (512, 512), 2)[1] == 128
    # RGB: fewer rows than grey on the pixel-wise path, as many on the patch-wise one.
    assert _tile_shape(2, 3, True, (4096, 4096), 2)[1] < _TILE_2D_PIXEL[1]
    assert _tile_shape(2, 3, False, (4096, 4096), 2)[1] == _TILE_2D_PATCH[1]
    assert _tile_shape(3, 1, True, (64, 64, 64), 16) == _TILE_3D
    # Frames: the tile that measured fastest, fewer rows for short small sequences;
    # patch-wise, columns split into equal tiles, and fewer rows for colour.
    assert _tile_shape(3, 3, True, (100, 1080, 1920), 16, flat_patches=True) == _TILE_FRAMES
    assert _tile_shape(3, 1, False, (100, 720, 1280), 2, flat_patches=True) == (4, 64, 640)
    assert _tile_shape(3, 3, False, (100, 720, 1280), 2, flat_patches=True) == (4, 32, 640)
    assert _tile_shape(3, 3, False, (100, 1080, 1920), 2, flat_patches=True) == (4, 32, 960)
    assert _tile_shape(3, 1, False, (100, 1080, 1024), 2, flat_patches=True) == _TILE_FRAMES
    assert _tile_shape(3, 1, True, (10, 256, 256), 2, flat_patches=True) == _TILE_FRAMES
    planes, rows, width = _tile_shape(3, 1, True, (10, 256, 256), 16, flat_patches=True)
    assert (planes, width) == _TILE_FRAMES[::2] and rows == 16


@pytest.mark.parametrize("channels, options", [
    (None, dict(h=25.0)),                                                  # fused, signed rows
    (3, dict(h=40.0)),                                                     # fused, colour
    (None, dict(h=25.0, aggregation="patch", centre_weight="max")),        # tiled, signed rows
    (3, dict(h=40.0, aggregation="patch")),                                # tiled, colour
])
def test_the_tile_rows_do_not_change_a_bit(monkeypatch, channels, options):
    """The running sums along the rows start afresh every ROW_RESTART rows of the
    image, so tiles of any multiple of it give the same result bit for bit (the
    property that makes strips equal to the whole image)."""
    import nlmeans.backends.cpu as backend

    assert backend.ROW_RESTART == _kernels.ROW_RESTART  # one constant, both layers
    # Two tiles across (16 + 8 columns); 24 columns keep the reference below to
    # seconds (70 took 38 s of the suite's budget for the same checks).
    shape = (150, 24) if channels is None else (150, 24, channels)
    image = (RNG.random(shape) * 200).astype(np.float32)
    axis = None if channels is None else -1
    results = []
    for rows in (16, 48, 160):
        monkeypatch.setattr(backend, "_tile_shape", lambda *args, **kw: (1, rows, 16))
        results.append(nlmeans.denoise(image, patch_radius=2, search_radius=5,
                                       channel_axis=axis, **options))
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])
    if "aggregation" not in options:
        # (The patch-wise reference takes minutes at this size; the tests of
        # patch-wise aggregation compare it with the kernel on smaller images.)
        expected = reference_2d(image, options["h"], 2, 5)
        assert relative_error(results[0], expected) < 1e-4


@pytest.mark.parametrize("name, axis", [("camera_noisy", None), ("astronaut_noisy", -1)])
def test_numpy_pass_equals_the_kernel(name, axis):
    """The NumPy pass (small images on the command line) against the kernel,
    automatic settings: equal to float rounding. (Its float32 weights once
    summed to a denormal number whose reciprocal was inf: NaN pixels.)"""
    import imageio.v3 as iio

    from conftest import SAMPLES
    from nlmeans.backends.ndpass import numpy_pass
    from nlmeans.model.layout import as_channel_first_volume
    from nlmeans.methods.passes import run_passes

    image = np.ascontiguousarray(iio.imread(f"{SAMPLES}/{name}.png")[:128, :128])
    settings = nlmeans.resolve(image, channel_axis=axis)
    volume, _ = as_channel_first_volume(image, axis, None)
    values = volume.astype(np.float32)
    bounds = (float(image.min()), float(image.max()))
    fast = run_passes(values, settings, bounds, rounded=True)
    numpy = run_passes(values, settings, bounds, rounded=True, backend=numpy_pass)
    assert np.isfinite(numpy).all()
    assert np.abs(numpy - fast).max() <= 1 and np.mean(numpy != fast) < 1e-3


@pytest.mark.parametrize("radii", [(0, 0), (1, 2), (4, 3), (5, 7, 1), (6,)])
def test_numpy_pass_box_sums_equal_the_naive_sums(radii):
    """The NumPy pass's box sums (from sums of 1, 2, 4, ... entries) against
    sums of every box entry by entry, in float64."""
    from nlmeans.backends.ndpass import _box_sum

    shape = [20, 17, 15][:len(radii)]
    array = RNG.random(shape) * 100
    expected = np.zeros([n - 2 * r for n, r in zip(shape, radii)])
    for box in np.ndindex(*[2 * r + 1 for r in radii]):
        expected += array[tuple(slice(k, k + n) for k, n in zip(box, expected.shape))]
    result = _box_sum(array, radii)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=1e-12)
    assert not np.shares_memory(result, array)


@pytest.mark.parametrize("width", range(1, 12))
def test_numpy_pass_window_sums_of_any_width(width):
    """Sums of `width` consecutive entries, odd or even, against np.convolve."""
    from nlmeans.backends.ndpass import _window_sum

    array = RNG.random((3, 25)) * 100
    expected = np.array([np.convolve(row, np.ones(width), mode="valid") for row in array])
    np.testing.assert_allclose(_window_sum(array, 1, width), expected, rtol=1e-12)


def test_the_api_cuts_radii_beyond_the_image_as_the_command_line_does():
    """Given radii beyond the image are cut, per axis, to its size less one, with a
    warning (the command line cuts them with a note): the formula at the cut radii,
    not a window of repeated mirrored copies (whose cost grows with its area: a
    search radius of 1000 asked for tens of thousands of GiB)."""
    image = RNG.random((5, 40)) * 100
    with pytest.warns(UserWarning, match="search_radius 30 reaches beyond the image"):
        result = nlmeans.denoise(image, 30.0, patch_radius=1, search_radius=30,
                                 dtype=np.float64)
    np.testing.assert_array_equal(result, nlmeans.denoise(
        image, 30.0, patch_radius=1, search_radius=(4, 30), dtype=np.float64))
    expected = reference_nlmeans(image[None, ..., None], 30.0, (0, 1, 1), (0, 4, 30))[0, ..., 0]
    assert relative_error(result, expected) < 1e-9
    with pytest.warns(UserWarning, match="search_radius 1000"):
        nlmeans.resolve(RNG.random((300, 400)), 10.0, search_radius=1000)


def test_unowned_views_are_the_arrays_memory():
    """The tile functions' reference-free views (_unowned) read and write the
    array's own memory, slices of them too."""
    from numba import njit

    from nlmeans.kernels.nlm import _unowned

    @njit
    def double_through_view(values):
        view = _unowned(values)
        for i in range(view.shape[0]):
            view[i] *= 2
        return _unowned(view[1:3]).sum()

    values = np.arange(5.0)
    assert double_through_view(values) == 6.0
    np.testing.assert_array_equal(values, 2 * np.arange(5.0))
