"""The public API: validate, decide once (:func:`resolve`), then run.

- :mod:`nlmeans.api.resolve`: options to :class:`~nlmeans.model.settings.Settings`.
- :mod:`nlmeans.api.denoise`: :func:`denoise`, :func:`denoise_with_report`.
- :mod:`nlmeans.api.frames`: :func:`denoise_frames`, sequences streamed.
- :mod:`nlmeans.api.jobs`: what a front end (the command line) needs around a
  long job: kernel status, time and memory estimates, runs in strips and tiles.

Everything here is re-exported by :mod:`nlmeans`; this is the top layer of the
package, and only the command line and the benchmarks sit above it.
"""
