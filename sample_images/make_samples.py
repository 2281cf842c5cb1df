"""Regenerate the sample images from scikit-image's bundled data (run from the project root)."""

import imageio.v3 as iio
import numpy as np
from skimage import data, transform

SIGMA = 20


def main():
    clean = {
        "camera": data.camera(),
        "astronaut": data.astronaut(),
    }
    for index, (name, image) in enumerate(clean.items(), start=1):
        small = transform.resize(image, (256, 256) + image.shape[2:], anti_aliasing=True,
                                 preserve_range=True)
        small = np.rint(small).astype(np.uint8)
        iio.imwrite(f"sample_images/{name}.png", small)
        rng = np.random.default_rng(1000 * SIGMA + index)
        noisy = np.clip(np.rint(small + SIGMA * rng.standard_normal(small.shape)), 0, 255)
        iio.imwrite(f"sample_images/{name}_noisy.png", noisy.astype(np.uint8))


if __name__ == "__main__":
    main()
