"""Runners: a finished :class:`~nlmeans.model.settings.Settings` executed on data
of some shape or size. Each takes the settings (never decides them) and calls
the methods below it:

- :mod:`nlmeans.runners.block`: an array in memory, in its own layout;
- :mod:`nlmeans.runners.strips`: strips along the first axis, with progress;
- :mod:`nlmeans.runners.chunked`: dask arrays, chunk by chunk with a halo;
- :mod:`nlmeans.runners.outofcore`: TIFFs larger than memory;
- :mod:`nlmeans.runners.frames`: sequences of frames, streamed.

A piece grown by the settings' halo gives the whole image's result inside it,
bit for bit, so every runner gives what one in-memory run gives.
"""
