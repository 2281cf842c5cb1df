"""Opponent colours: the linear RGB transform in which colour images' patches
are compared (brightness and two chroma axes, the chroma scaled down)."""

import numpy as np


class OpponentColours:
    """RGB to opponent colours with the chroma axes scaled by `chroma_weight`, and back.

    The rows of the orthonormal opponent basis are brightness (1, 1, 1)/√3 and
    chroma (1, 0, −1)/√2 and (1, −2, 1)/√6; backward is its transpose with the
    chroma scaling undone. White noise of level sigma in RGB has level
    ``sigma * noise_scale`` on average over the three transformed channels.
    """

    def __init__(self, chroma_weight, dtype):
        basis = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]])
        basis /= np.linalg.norm(basis, axis=1, keepdims=True)
        scale = np.array([1.0, chroma_weight, chroma_weight])
        self.forward_matrix = (basis * scale[:, None]).astype(dtype)
        self.backward_matrix = (basis.T / scale[None, :]).astype(dtype)
        self.noise_scale = np.sqrt((1.0 + 2.0 * chroma_weight ** 2) / 3.0)

    def forward(self, volume):
        return np.tensordot(self.forward_matrix, volume, axes=1)

    def backward(self, volume):
        return np.tensordot(self.backward_matrix, volume, axes=1)
