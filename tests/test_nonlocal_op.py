"""The non-local operation and block against direct, independent computations."""


import numpy as np
import pytest

import nlmeans
from nlmeans.methods.nonlocal_op import NonLocalBlock, nonlocal_operation

RNG = np.random.default_rng(99)


def direct(x, pairwise, g, normalise):
    """y_i = 1/C_i · Σ_j pairwise(i, j) · g x_j by a double loop over positions."""
    channels, positions = x.shape[0], x.shape[1:]
    flat = x.reshape(channels, -1)
    n = flat.shape[1]
    y = np.zeros((g.shape[0], n))
    for i in range(n):
        weights = np.array([pairwise(flat[:, i], flat[:, j]) for j in range(n)])
        norm = weights.sum() if normalise == "sum" else n
        y[:, i] = (g @ flat) @ weights / norm
    return y.reshape((g.shape[0],) + positions)


def test_embedded_gaussian_is_softmax_self_attention():
    x = RNG.normal(size=(6, 5, 7))
    theta, phi, g = (RNG.normal(size=(3, 6)) for _ in range(3))
    flat = x.reshape(6, -1)
    queries, keys, values = (theta @ flat).T, (phi @ flat).T, (g @ flat).T
    scores = queries @ keys.T
    attention = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    expected = (attention @ values).T.reshape(3, 5, 7)
    result = nonlocal_operation(x, "embedded_gaussian", theta=theta, phi=phi, g=g)
    np.testing.assert_allclose(result, expected, rtol=1e-10)


def test_gaussian_normalises_by_the_sum_of_f():
    x = RNG.normal(size=(3, 9)) * 0.5
    g = RNG.normal(size=(2, 3))
    expected = direct(x, lambda a, b: np.exp(a @ b), g, "sum")
    np.testing.assert_allclose(nonlocal_operation(x, "gaussian", g=g), expected, rtol=1e-10)


def test_dot_product_normalises_by_n():
    x = RNG.normal(size=(4, 3, 4))
    theta, phi, g = (RNG.normal(size=(2, 4)) for _ in range(3))
    expected = direct(x, lambda a, b: (theta @ a) @ (phi @ b), g, "count")
    result = nonlocal_operation(x, "dot_product", theta=theta, phi=phi, g=g)
    np.testing.assert_allclose(result, expected, rtol=1e-10)


def test_concatenation_normalises_by_n():
    x = RNG.normal(size=(4, 10))
    theta, phi, g = (RNG.normal(size=(3, 4)) for _ in range(3))
    w_f = RNG.normal(size=6)
    expected = direct(x, lambda a, b: max(w_f @ np.concatenate([theta @ a, phi @ b]), 0.0),
                      g, "count")
    result = nonlocal_operation(x, "concatenation", theta=theta, phi=phi, g=g, w_f=w_f)
    np.testing.assert_allclose(result, expected, rtol=1e-10)


def test_window_restricts_the_neighbours():
    x = RNG.normal(size=(2, 6, 5))
    theta, phi = RNG.normal(size=(2, 2)), RNG.normal(size=(2, 2))
    result = nonlocal_operation(x, "dot_product", theta=theta, phi=phi, window=(1, 2))
    for i, j in [(0, 0), (3, 2), (5, 4)]:
        neighbours = [(a, b) for a in range(max(0, i - 1), min(6, i + 2))
                      for b in range(max(0, j - 2), min(5, j + 3))]
        q = theta @ x[:, i, j]
        total = sum((q @ (phi @ x[:, a, b])) * x[:, a, b] for a, b in neighbours)
        np.testing.assert_allclose(result[:, i, j], total / len(neighbours), rtol=1e-10)


def test_softmax_is_numerically_safe():
    x = RNG.normal(size=(4, 50)) * 100  # exp(x_i·x_j) overflows float64
    result = nonlocal_operation(x, "gaussian")
    assert np.all(np.isfinite(result))
    # Each output is a convex combination of the inputs.
    assert np.all(result <= x.max(axis=1, keepdims=True) + 1e-9)
    assert np.all(result >= x.min(axis=1, keepdims=True) - 1e-9)


def test_64x64_image_runs_in_float32():
    x = RNG.normal(size=(4, 64, 64)).astype(np.float32)
    result = nonlocal_operation(x, "embedded_gaussian")
    assert result.shape == x.shape and result.dtype == np.float32
    assert np.all(np.isfinite(result))


@pytest.mark.parametrize("f", ["embedded_gaussian", "gaussian", "dot_product", "concatenation",
                               "gaussian_distance"])
@pytest.mark.parametrize("positions", [(12,), (5, 6), (3, 4, 5)])
def test_zero_w_z_block_is_the_identity(f, positions):
    block = NonLocalBlock(6, f=f, zero_init=True, seed=3)
    x = RNG.normal(size=(6,) + positions)
    np.testing.assert_array_equal(block(x), x)


@pytest.mark.parametrize("f", ["embedded_gaussian", "dot_product", "concatenation"])
def test_block_keeps_shape_for_any_size(f):
    block = NonLocalBlock(8, inner_channels=4, f=f, seed=1)
    assert block.theta.shape == (4, 8) and block.w_z.shape == (8, 4)
    for positions in [(7,), (4, 9), (2, 3, 4), (5, 5)]:
        x = RNG.normal(size=(8,) + positions)
        z = block(x)
        assert z.shape == x.shape
        assert not np.allclose(z, x)  # a non-zero W_z changes the input


def test_block_forward_is_residual_of_the_operation():
    block = NonLocalBlock(4, seed=5)
    block.b_z = RNG.normal(size=4)
    x = RNG.normal(size=(4, 3, 5))
    y = nonlocal_operation(x, "embedded_gaussian", theta=block.theta, phi=block.phi, g=block.g)
    expected = np.einsum("ck,kyx->cyx", block.w_z, y) + block.b_z[:, None, None] + x
    np.testing.assert_allclose(block(x), expected, rtol=1e-12)


def test_same_seed_same_weights():
    a, b = NonLocalBlock(6, seed=11), NonLocalBlock(6, seed=11)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, NonLocalBlock(6, seed=12).theta)


@pytest.mark.parametrize("ds, Ds, h", [(1, 2, 25.0), (2, 3, 40.0), (0, 2, 15.0)])
def test_nlmeans_is_a_gaussian_distance_nonlocal_operation(ds, Ds, h):
    image = RNG.random((10, 12)) * 100
    margin = Ds + ds
    padded = np.pad(image, margin, mode="reflect")
    # x_i: the (2ds+1)^2 patch around each pixel of the image mirrored by Ds.
    side = 2 * ds + 1
    patches = np.lib.stride_tricks.sliding_window_view(padded, (side, side))
    features = patches.reshape(patches.shape[0], patches.shape[1], side * side)
    features = np.moveaxis(features, -1, 0)
    # g picks the patch's centre pixel.
    g = np.zeros((1, side * side))
    g[0, (side * side) // 2] = 1.0
    # NL-means compares mean squared differences: ‖x_i − x_j‖² = |P| · d².
    y = nonlocal_operation(features, "gaussian_distance", g=g, window=Ds,
                           h=h * np.sqrt(side * side))
    interior = y[0, Ds:-Ds, Ds:-Ds]
    expected = nlmeans.denoise(image, h, patch_radius=ds, search_radius=Ds, dtype=np.float64)
    np.testing.assert_allclose(interior, expected, rtol=1e-6)


def test_dot_product_gaussian_is_reweighted_gaussian_distance():
    """exp(x_iᵀx_j) = NL-means weights (h² = 2) times exp(‖x_j‖²/2), as the docs say."""
    x = RNG.normal(size=(3, 8))
    norms = np.sum(x ** 2, axis=0)
    reweighted = direct(x, lambda a, b: np.exp(-np.sum((a - b) ** 2) / 2) * np.exp(b @ b / 2),
                        np.eye(3), "sum")
    np.testing.assert_allclose(nonlocal_operation(x, "gaussian"), reweighted, rtol=1e-10)
    assert norms.std() > 0  # the reweighting is not a constant here


@pytest.mark.parametrize("kwargs, message", [
    ({"f": "cosine"}, "f must be one of"),
    ({"theta": np.ones((2, 5))}, "theta must be a matrix with 3 columns"),
    ({"f": "concatenation"}, "needs w_f"),
    ({"window": -1}, "window must be a radius"),
    ({"f": "gaussian_distance", "h": 0}, "h must be a finite number > 0"),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nonlocal_operation(RNG.normal(size=(3, 4, 4)), **kwargs)
