r"""The non-local operation and the non-local block, in NumPy.

The non-local operation computes, for every position i of a feature map x
(a sequence, an image, a video or a volume),

.. math::

    y_i = \frac{1}{\mathcal{C}(x)} \sum_j f(x_i, x_j)\, g(x_j),

where j runs over all positions (or over a window around i), g is a unary map
(a 1x1 convolution: a matrix over the channels) and f a pairwise affinity:

=====================  =======================================  =====================
``f``                  f(x_i, x_j)                              C(x)
=====================  =======================================  =====================
``gaussian``           exp(x_iᵀ x_j)                            Σ_j f
``embedded_gaussian``  exp(θ(x_i)ᵀ φ(x_j))                      Σ_j f
``dot_product``        θ(x_i)ᵀ φ(x_j)                           N
``concatenation``      ReLU(w_fᵀ [θ(x_i), φ(x_j)])              N
``gaussian_distance``  exp(−‖x_i − x_j‖² / h²)                  Σ_j f
=====================  =======================================  =====================

N is the number of positions j that i sees (all of them, or those in its
window). The embedded Gaussian is softmax self-attention: y = softmax(θᵀφ) gᵀ
row by row.

**NL-means is a non-local operation.** Take x_i to be the patch of
(2 ds + 1)^n pixels around pixel i, g the map that picks the patch's centre
pixel, f = ``gaussian_distance`` and a window of radius Ds: then y is exactly
``nlmeans.denoise(image, h', patch_radius=ds, search_radius=Ds)`` with
h'² = h² / |P| (NL-means compares *mean* squared differences over the |P|
patch pixels, ‖x_i − x_j‖² sums them). Expanding the square,
exp(−‖x_i − x_j‖²/h²) = exp(−‖x_i‖²/h²) · exp(2 x_iᵀx_j/h²) · exp(−‖x_j‖²/h²):
the first factor depends on i only and cancels in C(x) = Σ_j f; the last
depends on j and does not. So the dot-product Gaussian exp(x_iᵀ x_j) is
NL-means (with h² = 2) in which each candidate j is reweighted by
exp(+‖x_j‖²/2): it prefers candidates of large norm, not only similar ones.

The non-local block adds a residual connection, z_i = W_z y_i + x_i, so a
block with W_z = 0 is the identity and can be inserted into a trained network.
"""

import numpy as np

AFFINITIES = ("gaussian", "embedded_gaussian", "dot_product", "concatenation",
              "gaussian_distance")
_SOFTMAX = ("gaussian", "embedded_gaussian", "gaussian_distance")

# Pairwise matrices are formed for blocks of query positions so that memory
# stays near this many entries, whatever the number of positions.
_BLOCK_ENTRIES = 1 << 24


def _float_dtype(x):
    return x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _channel_map(matrix, channels, name, dtype):
    """A (C_out, C) matrix, identity when None."""
    if matrix is None:
        return np.eye(channels, dtype=dtype)
    matrix = np.asarray(matrix, dtype=dtype)
    if matrix.ndim != 2 or matrix.shape[1] != channels:
        raise ValueError(f"{name} must be a matrix with {channels} columns (one per input "
                         f"channel), got shape {matrix.shape}")
    return matrix


def _window_radii(window, n_axes):
    if window is None:
        return None
    radii = tuple(window) if isinstance(window, (tuple, list)) else (window,) * n_axes
    if len(radii) != n_axes or any(int(r) != r or r < 0 for r in radii):
        raise ValueError(f"window must be a radius >= 0 or one radius per position axis "
                         f"({n_axes}), got {window!r}")
    return tuple(int(r) for r in radii)


def nonlocal_operation(x, f="embedded_gaussian", theta=None, phi=None, g=None, w_f=None,
                       window=None, h=1.0):
    r"""Apply the non-local operation y_i = 1/C(x) · Σ_j f(x_i, x_j) · g(x_j).

    Parameters
    ----------
    x : array_like, shape (C, *positions)
        Feature map with 1, 2 or 3 position axes (sequence, image, video/volume).
    f : {"embedded_gaussian", "gaussian", "dot_product", "concatenation", "gaussian_distance"}
        The pairwise function (see the module docstring for each formula and
        its normalisation C(x)).
    theta, phi : array_like, shape (C_inner, C), optional
        Linear embeddings (1x1 convolutions) used by "embedded_gaussian",
        "dot_product" and "concatenation". Identity when None.
    g : array_like, shape (C_out, C), optional
        Unary map applied to x_j. Identity when None.
    w_f : array_like, shape (2 * C_inner,), optional
        Weights of "concatenation": f = ReLU(w_f[:C_inner] · θ(x_i) + w_f[C_inner:] · φ(x_j)).
        Required for that f.
    window : int or sequence of int, optional
        Restrict j to positions with |j_a − i_a| <= window[a] on every position
        axis (positions outside the map are not used). None: all positions.
    h : float, optional
        Scale of "gaussian_distance": f = exp(−‖x_i − x_j‖² / h²).

    Returns
    -------
    numpy.ndarray, shape (C_out, *positions)
        float32 if x is float32, else float64.

    Notes
    -----
    The exponentials are normalised by subtracting, for each i, the largest
    exponent over j before exponentiating (a softmax), so large features
    neither overflow nor underflow to 0/0. Pairwise values are formed for
    blocks of positions i, so memory stays bounded for any number of positions.
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must have shape (C, *positions) with 1, 2 or 3 position axes, "
                         f"got {x.ndim}-D")
    if f not in AFFINITIES:
        raise ValueError(f"f must be one of {', '.join(AFFINITIES)}, got {f!r}")
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f"h must be a finite number > 0, got {h!r}")
    dtype = _float_dtype(x)
    channels, positions = x.shape[0], x.shape[1:]
    n = int(np.prod(positions))
    flat = x.reshape(channels, n).astype(dtype, copy=False)

    values = (_channel_map(g, channels, "g", dtype) @ flat).T          # (N, C_out)
    if f in ("embedded_gaussian", "dot_product", "concatenation"):
        queries = (_channel_map(theta, channels, "theta", dtype) @ flat).T  # (N, C_inner)
        keys = (_channel_map(phi, channels, "phi", dtype) @ flat).T
        if queries.shape[1] != keys.shape[1]:
            raise ValueError(f"theta and phi must have the same number of rows, got "
                             f"{queries.shape[1]} and {keys.shape[1]}")
    else:
        queries = keys = flat.T
    if f == "concatenation":
        if w_f is None:
            raise ValueError("f='concatenation' needs w_f, a vector of 2 * C_inner weights")
        w_f = np.asarray(w_f, dtype=dtype).ravel()
        inner = queries.shape[1]
        if w_f.size != 2 * inner:
            raise ValueError(f"w_f must have 2 * C_inner = {2 * inner} entries, got {w_f.size}")
        # w_fᵀ[θ_i, φ_j] splits into a part of i plus a part of j.
        query_part, key_part = queries @ w_f[:inner], keys @ w_f[inner:]
    if f == "gaussian_distance":
        key_norms = np.einsum("nc,nc->n", keys, keys)

    radii = _window_radii(window, len(positions))
    coords = np.indices(positions).reshape(len(positions), n).T if radii is not None else None

    out = np.empty((n, values.shape[1]), dtype=dtype)
    block = max(1, _BLOCK_ENTRIES // max(n, 1))
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = slice(start, stop)
        if f == "concatenation":
            pair = np.maximum(query_part[rows, None] + key_part[None, :], 0)
        elif f == "gaussian_distance":
            q = queries[rows]
            # −‖q − k‖²; the ‖q‖² term is constant per row and cancels in the softmax,
            # but is kept so that the exponent is the true (non-positive) distance.
            pair = -(np.einsum("nc,nc->n", q, q)[:, None] - 2 * q @ keys.T
                     + key_norms[None, :]) / dtype.type(h * h)
        else:
            pair = queries[rows] @ keys.T
        mask = None
        if radii is not None:
            mask = np.all(np.abs(coords[rows, None, :] - coords[None, :, :])
                          <= np.asarray(radii), axis=-1)
        if f in _SOFTMAX:
            if mask is not None:
                pair = np.where(mask, pair, -np.inf)
            pair = np.exp(pair - pair.max(axis=1, keepdims=True))
            norm = pair.sum(axis=1, keepdims=True)
        else:
            if mask is not None:
                pair = pair * mask
                norm = mask.sum(axis=1, keepdims=True).astype(dtype)
            else:
                norm = dtype.type(n)
        out[rows] = (pair @ values) / norm
    return out.T.reshape((values.shape[1],) + positions)


class NonLocalBlock:
    r"""A non-local block: z = W_z · y + b + x, y the non-local operation of x.

    Parameters
    ----------
    channels : int
        C, the channels of the input (and output).
    inner_channels : int, optional
        Width of θ, φ and g (the bottleneck). Default C // 2 (at least 1), as in
        the original block.
    f : str, optional
        The pairwise function, see :func:`nonlocal_operation`.
    window : int or sequence of int, optional
        Restrict each position's neighbours to a window (see :func:`nonlocal_operation`).
    bias : bool, optional
        Add a bias b after W_z. Default True (initialised to 0).
    zero_init : bool, optional
        Start with W_z = 0, so that the new block is the identity. Default False.
    seed : int, optional
        Seed of the random initialisation (normal, standard deviation 1/sqrt(fan-in)).
    h : float, optional
        Scale of f="gaussian_distance".

    Attributes
    ----------
    theta, phi, g : (inner_channels, channels) arrays
    w_z : (channels, inner_channels) array
    b_z : (channels,) array or None
    w_f : (2 * inner_channels,) array (used by f="concatenation")

    The same weights apply to inputs of any number of positions, unlike a
    fully connected layer.
    """

    def __init__(self, channels, inner_channels=None, f="embedded_gaussian", window=None,
                 bias=True, zero_init=False, seed=0, h=1.0):
        if int(channels) != channels or channels < 1:
            raise ValueError(f"channels must be an integer >= 1, got {channels!r}")
        inner = max(1, channels // 2) if inner_channels is None else inner_channels
        if int(inner) != inner or inner < 1:
            raise ValueError(f"inner_channels must be an integer >= 1, got {inner_channels!r}")
        if f not in AFFINITIES:
            raise ValueError(f"f must be one of {', '.join(AFFINITIES)}, got {f!r}")
        rng = np.random.default_rng(seed)
        self.f, self.window, self.h = f, window, h
        self.channels, self.inner_channels = int(channels), int(inner)
        scale_in, scale_inner = 1 / np.sqrt(channels), 1 / np.sqrt(inner)
        self.theta = rng.normal(0, scale_in, (inner, channels))
        self.phi = rng.normal(0, scale_in, (inner, channels))
        self.g = rng.normal(0, scale_in, (inner, channels))
        self.w_f = rng.normal(0, 1 / np.sqrt(2 * inner), 2 * inner)
        self.w_z = np.zeros((channels, inner)) if zero_init else rng.normal(0, scale_inner,
                                                                          (channels, inner))
        self.b_z = np.zeros(channels) if bias else None

    def __call__(self, x):
        """Forward pass on x of shape (C, *positions); returns z of the same shape."""
        x = np.asarray(x)
        if x.ndim < 2 or x.shape[0] != self.channels:
            raise ValueError(f"x must have shape ({self.channels}, *positions), got {x.shape}")
        if self.f in ("gaussian", "gaussian_distance"):
            # These affinities compare x itself; θ and φ are not used.
            theta = phi = None
        else:
            theta, phi = self.theta, self.phi
        y = nonlocal_operation(x, self.f, theta=theta, phi=phi, g=self.g, w_f=self.w_f,
                               window=self.window, h=self.h)
        dtype = y.dtype
        z = np.tensordot(self.w_z.astype(dtype), y, axes=(1, 0))
        if self.b_z is not None:
            z += self.b_z.astype(dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        return z + x
