"""8-bit BGR to CIELAB and back as OpenCV's colour NL-means makes them
(``COLOR_LBGR2Lab`` / ``COLOR_Lab2LBGR``: the values taken as linear RGB, D65
white; L stored as L * 255 / 100, a and b plus 128).

The formulas are scikit-image's ``xyz2lab`` / ``lab2xyz`` (thresholds 0.008856
and 0.2068966, slope 7.787), in float64; the results are rounded to 8 bits.
Lab is kept as three planes, (3, N), the layout the denoising kernel takes.

Compiled a block of pixels at a time, one loop per quantity, so that LLVM
vectorises every loop: a loop that wrote the three outputs of a pixel (or
read through an (N, 3) array) stayed scalar, and so did any loop that divides
under Numba's default error model (each division checks for zero). Vectorised,
512² pixels take 2.6 ms instead of 9.9 to Lab and 1.3 instead of 3.2 back, on
one thread. The functions take a range of pixels and release the GIL, so that
threads share an image (Numba's prange did, but its OpenMP threads then kept
spinning, and took the cores from the denoising that follows: 3 ms of it).
"""

import numpy as np
from numba import njit

# sRGB primaries, D65 white: linear RGB to CIE XYZ (as OpenCV's conversions use).
RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                       [0.212671, 0.715160, 0.072169],
                       [0.019334, 0.119193, 0.950227]])
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
WHITE = np.array([0.95047, 1.0, 1.08883])

# Pixels per block: its float64 rows (six of them) stay in L1.
_BLOCK = 512


def _compiled(**options):
    return njit(cache=True, error_model="numpy", **options)


@_compiled(inline="always")
def _to_byte(value):
    """Round half to even (NumPy's rint) and clip to 0..255."""
    return np.uint8(min(max(np.rint(value), 0.0), 255.0))


@_compiled(inline="always")
def _cube_root(x):
    """x ** (1 / 3) for x > 0, within 3 ulps of NumPy's cbrt: a first guess
    from the bits of float32(x), its exponent divided by 3 (within 4 %; the
    division is a multiply and a shift, which vectorise), then three of
    Halley's steps, each of which cubes the relative error (1e-4, 1e-12, 1e-16)."""
    bits = np.int64(np.float32(x).view(np.int32))
    guess = np.int32(((bits * np.int64(0x55555556)) >> np.int64(32)) + np.int64(0x2A5137A0))
    y = np.float64(guess.view(np.float32))
    cube = y * y * y
    y = y * (cube + 2.0 * x) / (2.0 * cube + x)
    cube = y * y * y
    y = y * (cube + 2.0 * x) / (2.0 * cube + x)
    cube = y * y * y
    return y * (cube + 2.0 * x) / (2.0 * cube + x)


@_compiled(inline="always")
def _lab_f(ratio):
    """CIELAB's f(X / Xn): the cube root above the linear segment (computed
    either way, of a value the root takes, so that the loop has no branch)."""
    root = _cube_root(max(ratio, 0.008856))
    return root if ratio > 0.008856 else 7.787 * ratio + 16.0 / 116.0


@_compiled(inline="always")
def _lab_f_inverse(f):
    return f ** 3 if f > 0.2068966 else (f - 16.0 / 116.0) / 7.787


@_compiled()
def _f_of_row(r, g, b, row, white, out):
    """out[i] = f(row . (r[i], g[i], b[i]) / white)."""
    m_r, m_g, m_b = row[0], row[1], row[2]
    for i in range(out.shape[0]):
        out[i] = _lab_f((m_r * r[i] + m_g * g[i] + m_b * b[i]) / white)


@_compiled(nogil=True)
def bgr_to_lab(bgr, matrix, white, out, start, stop):
    """Pixels [start, stop) of (N, 3) uint8 BGR, taken as linear RGB, to the
    8-bit Lab planes `out`, (3, N)."""
    fx, fy, fz = np.empty(_BLOCK), np.empty(_BLOCK), np.empty(_BLOCK)
    rgb = np.empty((3, _BLOCK))
    for first in range(start, stop, _BLOCK):
        n = min(_BLOCK, stop - first)
        for k in range(3):  # RGB k is BGR 2 - k
            row = rgb[k, :n]
            for i in range(n):
                row[i] = bgr[first + i, 2 - k] / 255.0
        r, g, b = rgb[0, :n], rgb[1, :n], rgb[2, :n]
        _f_of_row(r, g, b, matrix[0], white[0], fx[:n])
        _f_of_row(r, g, b, matrix[1], white[1], fy[:n])
        _f_of_row(r, g, b, matrix[2], white[2], fz[:n])
        light, green_red, blue_yellow = (out[0, first:first + n], out[1, first:first + n],
                                         out[2, first:first + n])
        for i in range(n):
            light[i] = _to_byte((116.0 * fy[i] - 16.0) * 255 / 100)
        for i in range(n):
            green_red[i] = _to_byte(500.0 * (fx[i] - fy[i]) + 128)
        for i in range(n):
            blue_yellow[i] = _to_byte(200.0 * (fy[i] - fz[i]) + 128)


@_compiled(nogil=True)
def lab_to_bgr(lab, matrix, white, out, start, stop):
    """The inverse of bgr_to_lab: pixels [start, stop) of the 8-bit Lab planes
    `lab`, (3, N), to (N, 3) uint8 BGR; z below 0 is taken as 0."""
    xyz = np.empty((3, _BLOCK))
    rgb = np.empty((3, _BLOCK))
    for first in range(start, stop, _BLOCK):
        n = min(_BLOCK, stop - first)
        x, y, z = xyz[0, :n], xyz[1, :n], xyz[2, :n]
        light, green_red, blue_yellow = (lab[0, first:first + n], lab[1, first:first + n],
                                         lab[2, first:first + n])
        for i in range(n):
            y[i] = (light[i] * 100 / 255 + 16.0) / 116.0
        for i in range(n):
            x[i] = _lab_f_inverse((green_red[i] - 128.0) / 500.0 + y[i]) * white[0]
        for i in range(n):
            z[i] = _lab_f_inverse(max(y[i] - (blue_yellow[i] - 128.0) / 200.0, 0.0)) * white[2]
        for i in range(n):
            y[i] = _lab_f_inverse(y[i]) * white[1]
        for k in range(3):
            m0, m1, m2 = matrix[k, 0], matrix[k, 1], matrix[k, 2]
            row = rgb[k, :n]
            for i in range(n):
                row[i] = (m0 * x[i] + m1 * y[i] + m2 * z[i]) * 255
        for k in range(3):  # RGB k is BGR 2 - k
            row = rgb[k, :n]
            for i in range(n):
                out[first + i, 2 - k] = _to_byte(row[i])
