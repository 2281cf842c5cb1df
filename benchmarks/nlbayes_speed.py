"""Speed of NL-Bayes (method="nlbayes") against the bm3d package, in one run.

The images of the issue's speed goal: a 512x512 grey image (Set12's 08.png when
--dataset holds it, else scikit-image's camera) at sigma 25, and a 512x512
colour one (scikit-image's astronaut) at sigma 25 against CBM3D. Noise as in
psnr.py's protocol F (float, unclipped). nlmeans gets no parameters (sigma
estimated, included in its time); bm3d gets sigma. A third case, a 3-D volume (a
slanted stack of camera crops, which bm3d does not take), compares NL-Bayes with
NL-means only (the ratio column is then NL-means's time over this one's). Each pair runs in turns,
--repeats rounds after a warm-up (compilation excluded); the ratio is the
median over the rounds of bm3d's wall time over nlmeans's, with its lowest and
highest, and every timing has the CPU time / wall time beside it (about the
thread count when nothing else ran; a figure taken while something else ran is
void). NL-means (automatic) is timed too, for the trade-off.

    python benchmarks/nlbayes_speed.py --dataset ../shared/datasets/set12

Writes nlbayes_speed.md into --out (default benchmarks/results). Needs the
`bench` extra (bm3d).
"""

import argparse
import os
import statistics
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from speed import machine, ratio_stats, time_in_turns  # noqa: E402

SIGMA = 25.0


def images(dataset):
    """[(name, clean float64 image)]: grey 512^2 and colour 512^2."""
    import imageio.v3 as iio
    from skimage import data

    path = os.path.join(dataset, "08.png") if dataset else None
    if path and os.path.exists(path):
        grey = ("Set12 08.png (grey)", iio.imread(path).astype(np.float64))
    else:
        grey = ("camera (grey)", data.camera().astype(np.float64))
    return [grey, ("astronaut (colour)", data.astronaut()[..., :3].astype(np.float64)),
            ("camera stack 24x128² (volume)", slanted_stack())]


def slanted_stack():
    """A 24 x 128 x 128 volume: a crop of camera shifted by (0.5, 0.3) pixel more in
    each slice, so that it has structure along z (no peer takes volumes)."""
    from scipy.ndimage import shift
    from skimage import data

    camera = data.camera().astype(np.float64)
    return np.stack([shift(camera, (0.5 * z, 0.3 * z), order=1, mode="reflect")[100:228, 150:278]
                     for z in range(24)])


def psnr(result, clean):
    mse = np.mean((np.clip(np.asarray(result, dtype=np.float64), 0, 255) - clean) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def main(argv=None):
    import bm3d

    import nlmeans

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", help="folder holding Set12 (for its 08.png)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)

    lines = [f"Machine: {machine()}. sigma = {SIGMA:g}, {args.repeats} rounds in turns.\n",
             "| image | method | median s | CPU/wall | PSNR dB | bm3d time / this time "
             "(median, lowest–highest) |", "|---|---|---|---|---|---|"]
    for index, (name, clean) in enumerate(images(args.dataset), start=1):
        noisy = clean + SIGMA * np.random.default_rng(1000 * int(SIGMA) + index).standard_normal(
            clean.shape)
        volume = "volume" in name
        axis = -1 if clean.ndim == 3 and not volume else None
        peer = (lambda: bm3d.bm3d_rgb(noisy, sigma_psd=SIGMA)) if axis is not None else \
            (lambda: bm3d.bm3d(noisy, sigma_psd=SIGMA))
        runs = time_in_turns([
            lambda: nlmeans.denoise(noisy, method="nlbayes", channel_axis=axis),
            lambda: nlmeans.denoise(noisy, channel_axis=axis)]
            + ([] if volume else [peer]), args.repeats)
        peer_walls = runs[-1][0]
        labels = ["nlmeans nlbayes", "nlmeans auto", "CBM3D" if axis is not None else "BM3D"]
        for label, (walls, cpu, result) in zip(labels, runs):
            median, low, high = ratio_stats(walls, peer_walls)
            ratio = f"{median:.1f}× ({low:.1f}–{high:.1f})" if not volume else \
                f"NL-means: {median:.2f}× ({low:.2f}–{high:.2f})"
            lines.append(f"| {name} | {label} | {statistics.median(walls):.2f} | {cpu:.2f} | "
                         f"{psnr(result, clean):.2f} | {ratio} |")
        print(lines[-3:], file=sys.stderr, flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "nlbayes_speed.md"), "w") as f:
        f.write(table)


if __name__ == "__main__":
    main()
