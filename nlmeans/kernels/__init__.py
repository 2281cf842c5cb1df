"""The compiled kernels: Numba code, arrays in, arrays out, no validation.

- :mod:`nlmeans.kernels.nlm`: the NL-means kernel (one pass over a mirrored
  channel-last volume, in tiles, one thread each).
- :mod:`nlmeans.kernels.bayes`: the NL-Bayes kernel (one step over a tile of
  reference patches).
- :mod:`nlmeans.kernels.motion`: the block search of frames' moves.
- :mod:`nlmeans.kernels.constants`: the kernels' constants that the layers above
  need without importing Numba.

Importing this package imports nothing: Numba costs about 0.3 s to import, so
the modules above load the kernels only when a pass runs on them.
"""
