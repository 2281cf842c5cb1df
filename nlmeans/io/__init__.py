"""Files in and out: images (:mod:`nlmeans.io.images`), frame sequences and
video (:mod:`nlmeans.io.video`) and comparison pictures
(:mod:`nlmeans.io.montage`).

The image functions are re-exported here, so ``nlmeans.io.read_image`` is the
path to use. Nothing here imports the denoiser: the I/O layer sits beside the
kernels and the model, below everything that runs.
"""

from nlmeans.io.images import (FORMATS, READABLE_EXTENSIONS, WRITABLE_EXTENSIONS, Image,
                               ImageIOError, check_pixels_fit, check_writable, encode, format_of,
                               read_array, read_bytes, read_image, write_image)
from nlmeans.io.tempfiles import PREFIX as TEMP_PREFIX

__all__ = ["FORMATS", "READABLE_EXTENSIONS", "WRITABLE_EXTENSIONS", "Image", "ImageIOError",
           "check_pixels_fit", "check_writable", "encode", "format_of", "read_array",
           "read_bytes", "read_image", "write_image", "TEMP_PREFIX"]
