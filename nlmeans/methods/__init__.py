"""Methods: what a denoising run computes from its settings, on a backend.

- :mod:`nlmeans.methods.passes`: NL-means, its passes in order (a guided
  second pass, opponent colours for RGB);
- :mod:`nlmeans.methods.nlbayes`: Non-Local Bayes, its two steps and their
  parameters;
- :mod:`nlmeans.methods.nonlocal_op`: the general non-local operation that
  NL-means is an instance of.
"""
