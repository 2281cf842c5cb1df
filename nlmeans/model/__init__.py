"""The model: plain data and rules, no compiled code and no files.

- :mod:`nlmeans.model.settings`: :class:`Settings`, :class:`Pass`,
  :class:`BayesStep`, the plan a run executes;
- :mod:`nlmeans.model.noise` and :mod:`nlmeans.model.parameters`: the noise
  model and the automatic rules (sigma, radii, h);
- :mod:`nlmeans.model.layout`: axes (channels, time) to the channel-first
  volume the backends take, and back;
- :mod:`nlmeans.model.sample`, :mod:`nlmeans.model.quantiles`,
  :mod:`nlmeans.model.sure`, :mod:`nlmeans.model.colour`: samples of large
  images, medians, SURE, the opponent colour transform.
"""
