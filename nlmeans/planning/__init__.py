"""Planning: what a job needs before it runs, decided once.

- :mod:`nlmeans.planning.memory`: the memory a job needs, against what is
  available (refused with the estimate before anything is allocated).
- :mod:`nlmeans.planning.backend_choice`: where the passes run (compiled CPU
  kernel, NumPy pass, GPU).

Called by the runners and the API, above the methods they plan for.
"""
