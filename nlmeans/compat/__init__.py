"""Drop-in functions for code written against other libraries' NL-means:
:mod:`nlmeans.compat.skimage` (scikit-image's ``denoise_nl_means``) and
:mod:`nlmeans.compat.opencv` (OpenCV's ``fastNlMeansDenoising*``)."""
