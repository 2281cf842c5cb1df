"""Backends: one NL-means pass over a channel-first float volume (C, Z, Y, X).

Every backend is a function ``backend(values, guide, step, dtype, bounds,
rounded)`` that mirrors the volume at its borders, runs the pass and returns
the result clipped to `bounds`:

- :mod:`nlmeans.backends.cpu`: the compiled Numba kernel, in tiles, one thread each;
- :mod:`nlmeans.backends.ndpass`: the same formula in NumPy (no compile, any
  number of axes; for small images and 4-D volumes);
- :mod:`nlmeans.backends.cuda`: an NVIDIA GPU through numba-cuda;
- :mod:`nlmeans.backends.scales`: the weights' exponent scale they share.
"""
