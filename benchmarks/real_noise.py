"""Real camera noise: nlmeans against OpenCV, scikit-image and CBM3D on noisy/clean photo pairs.

Each pair is a noisy shot as the camera wrote it (`*_real.*`) and the mean of many
shots of the same scene (`*_mean.*`), the reference. Every method gets the 8-bit
noisy image and nothing else; PSNR (data range 255) and SSIM are measured on the
8-bit output against the reference and averaged over the pairs.

Methods (those whose package is missing are skipped, with a note):
- noisy: the shot itself;
- nlmeans auto: nlmeans.denoise(noisy, channel_axis=-1), no parameters;
- nlmeans gaussian: the same with noise="gaussian" (the white-noise model alone);
- nlmeans nlbayes: nlmeans.denoise(noisy, channel_axis=-1, method="nlbayes"), sigma from the
  same noise model;
- nlmeans nlbayes / auto, noise sample (uses the reference): the same with noise= the noisy
  shot less the reference, as a sample of the noise alone (nlmeans.model.covariance); no user
  has the reference, but two shots of a still scene give such a sample (their difference over
  sqrt 2), so these rows are what a two-shot sample can reach;
- OpenCV h=3: fastNlMeansDenoisingColored(noisy, None, 3, 3, 7, 21), a common setting;
- scikit-image recipe: its documented recipe, sigma = estimate_sigma(noisy, average_sigmas=True),
  denoise_nl_means(h=0.8 sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6);
- CBM3D: bm3d.bm3d_rgb(noisy, sigma) with sigma from nlmeans' noise model (the level that
  nlmeans uses); slow (about 30 s an image on 2 cores), so it runs on every --bm3d-every'th
  pair, and the table also gives every method's mean over those pairs.

    python benchmarks/real_noise.py --dataset ../shared/datasets/polyu-dev
    python benchmarks/real_noise.py --dataset ../shared/datasets/polyu-dev --every 4 --no-bm3d

Writes real_noise.md and real_noise.csv into --out (default benchmarks/results).
"""

import argparse
import csv
import glob
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def pairs(folder, every=1):
    """Sorted (name, noisy path, reference path) of a folder's *_real / *_mean pairs."""
    found = []
    for noisy in sorted(glob.glob(os.path.join(folder, "*_real.*"))):
        stem, suffix = noisy.rsplit("_real", 1)
        reference = stem + "_mean" + suffix
        if os.path.exists(reference):
            found.append((os.path.basename(stem), noisy, reference))
    if not found:
        raise SystemExit(f"{folder}: no *_real / *_mean pairs")
    return found[::every]


class WithReference:
    """A method that also reads the reference (the noise-sample rows)."""

    def __init__(self, fn):
        self.fn = fn


def _noise_sample(noisy, reference):
    return noisy.astype(np.float64) - reference


def methods(use_bm3d, use_sample=True):
    """{name: fn(noisy uint8 RGB) -> uint8 RGB, or a WithReference}; missing packages are
    noted and skipped."""
    import nlmeans

    table = {
        "noisy": lambda x: x,
        "nlmeans auto": lambda x: nlmeans.denoise(x, channel_axis=-1),
        "nlmeans gaussian": lambda x: nlmeans.denoise(x, channel_axis=-1, noise="gaussian"),
        "nlmeans nlbayes": lambda x: nlmeans.denoise(x, channel_axis=-1, method="nlbayes"),
    }
    if use_sample:
        table["nlmeans nlbayes, noise sample (uses the reference)"] = WithReference(
            lambda x, ref: nlmeans.denoise(x, channel_axis=-1, method="nlbayes",
                                           noise=_noise_sample(x, ref)))
        table["nlmeans auto, noise sample (uses the reference)"] = WithReference(
            lambda x, ref: nlmeans.denoise(x, channel_axis=-1, noise=_noise_sample(x, ref)))
    try:
        import cv2

        table["OpenCV h=3"] = lambda x: cv2.fastNlMeansDenoisingColored(
            np.ascontiguousarray(x), None, 3, 3, 7, 21)
    except ImportError:
        print("note: opencv-python-headless is not installed; OpenCV skipped")

    def skimage_recipe(x):
        from skimage.restoration import denoise_nl_means, estimate_sigma

        image = x.astype(np.float64) / 255.0
        sigma = estimate_sigma(image, channel_axis=-1, average_sigmas=True)
        out = denoise_nl_means(image, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5,
                               patch_distance=6, channel_axis=-1)
        return to_uint8(out * 255.0)

    table["scikit-image recipe"] = skimage_recipe
    if use_bm3d:
        try:
            import bm3d

            def cbm3d(x):
                sigma = nlmeans.estimate_noise_model(x, channel_axis=-1).sigma
                return to_uint8(bm3d.bm3d_rgb(x.astype(np.float64) / 255.0, sigma / 255.0) * 255)

            table["CBM3D"] = cbm3d
        except ImportError:
            print("note: bm3d is not installed; CBM3D skipped")
    return table


def to_uint8(image):
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def psnr(result, reference):
    mse = np.mean((result.astype(np.float64) - reference) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def ssim(result, reference):
    from skimage.metrics import structural_similarity

    return structural_similarity(result.astype(np.float64), reference, data_range=255.0,
                                 channel_axis=-1)


def measure(found, table, bm3d_every):
    """Rows of (image, method, PSNR, SSIM, wall s, CPU s)."""
    import imageio.v3 as iio

    rows = []
    for index, (name, noisy_path, reference_path) in enumerate(found):
        noisy = np.asarray(iio.imread(noisy_path))[..., :3]
        reference = np.asarray(iio.imread(reference_path))[..., :3].astype(np.float64)
        for method, fn in table.items():
            if method == "CBM3D" and index % bm3d_every:
                continue
            cpu, wall = time.process_time(), time.perf_counter()
            out = fn.fn(noisy, reference) if isinstance(fn, WithReference) else fn(noisy)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rows.append((name, method, psnr(out, reference), ssim(out, reference), wall, cpu))
        print(name, " ".join(f"{m}={p:.2f}" for n, m, p, *_ in rows if n == name), flush=True)
    return rows


def summary(rows, names=None):
    """{method: (mean PSNR, mean SSIM, mean wall s, CPU/wall, images, worse than noisy)}."""
    noisy = {n: p for n, m, p, *_ in rows if m == "noisy"}
    out = {}
    for method in dict.fromkeys(m for _, m, *_ in rows):
        picked = [r for r in rows if r[1] == method and (names is None or r[0] in names)]
        if not picked:
            continue
        p, s, w, c = (np.array([r[i] for r in picked]) for i in (2, 3, 4, 5))
        worse = sum(r[2] < noisy[r[0]] for r in picked)
        out[method] = (p.mean(), s.mean(), w.mean(), c.sum() / max(w.sum(), 1e-9), len(picked),
                       worse)
    return out


def table_lines(title, stats):
    lines = [f"### {title}", "",
             "| method | PSNR dB | SSIM | s per image | CPU/wall | images | worse than noisy |",
             "|---|---|---|---|---|---|---|"]
    for method, (p, s, w, c, n, worse) in stats.items():
        timing = "— | —" if method == "noisy" else f"{w:.3f} | {c:.2f}"  # nothing was run
        lines.append(f"| {method} | {p:.2f} | {s:.4f} | {timing} | {n} | {worse} |")
    return lines + [""]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default=os.path.join(HERE, "..", "..", "shared", "datasets",
                                                          "polyu-dev"))
    parser.add_argument("--every", type=int, default=1, help="use every N-th pair")
    parser.add_argument("--bm3d-every", type=int, default=4,
                        help="run CBM3D on every N-th pair used (it is slow)")
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument("--no-sample", action="store_true",
                        help="leave out the noise-sample rows (they read the reference)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()

    found = pairs(args.dataset, args.every)
    table = methods(not args.no_bm3d, not args.no_sample)
    import nlmeans

    nlmeans.denoise(np.zeros((32, 32, 3), np.uint8) + 7, 3.0, channel_axis=-1)  # compile
    nlmeans.denoise(np.zeros((32, 32, 3), np.uint8) + 7, channel_axis=-1, method="nlbayes",
                    sigma=3.0)
    rows = measure(found, table, args.bm3d_every)
    lines = [f"## Real camera noise: {os.path.basename(os.path.normpath(args.dataset))}, "
             f"{len(found)} pairs", ""]
    lines += table_lines("All pairs (CBM3D: the pairs it ran on)", summary(rows))
    bm3d_names = {r[0] for r in rows if r[1] == "CBM3D"}
    if bm3d_names:
        lines += table_lines(f"The {len(bm3d_names)} pairs CBM3D ran on",
                             summary(rows, bm3d_names))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "real_noise.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(args.out, "real_noise.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "method", "psnr", "ssim", "wall_s", "cpu_s"])
        writer.writerows(rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
