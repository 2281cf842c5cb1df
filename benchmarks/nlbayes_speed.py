"""Speed of NL-Bayes (method="nlbayes") against the bm3d package, in one run.

The images of the issue's speed goal: a 512x512 grey image (Set12's 08.png when
--dataset holds it, else scikit-image's camera) at sigma 25, and a 512x512
colour one (scikit-image's astronaut) at sigma 25 against CBM3D. Noise as in
psnr.py's protocol F (float, unclipped). nlmeans gets no parameters (sigma
estimated, included in its time); bm3d gets sigma. Each pair runs in turns,
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
    return [grey, ("astronaut (colour)", data.astronaut()[..., :3].astype(np.float64))]


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
        axis = -1 if clean.ndim == 3 else None
        peer = (lambda: bm3d.bm3d_rgb(noisy, sigma_psd=SIGMA)) if axis is not None else \
            (lambda: bm3d.bm3d(noisy, sigma_psd=SIGMA))
        runs = time_in_turns([
            lambda: nlmeans.denoise(noisy, method="nlbayes", channel_axis=axis),
            lambda: nlmeans.denoise(noisy, channel_axis=axis),
            peer], args.repeats)
        peer_walls = runs[2][0]
        for label, (walls, cpu, result) in zip(
                ["nlmeans nlbayes", "nlmeans auto", "CBM3D" if axis is not None else "BM3D"],
                runs):
            median, low, high = ratio_stats(walls, peer_walls)
            lines.append(f"| {name} | {label} | {statistics.median(walls):.2f} | {cpu:.2f} | "
                         f"{psnr(result, clean):.2f} | {median:.1f}× ({low:.1f}–{high:.1f}) |")
        print(lines[-3:], file=sys.stderr, flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "nlbayes_speed.md"), "w") as f:
        f.write(table)


if __name__ == "__main__":
    main()
