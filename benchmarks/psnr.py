"""PSNR benchmark: nlmeans against scikit-image, OpenCV and BM3D on a folder of images.

Protocol (shared/design/benchmarks.md): the clean image as float64 in [0, 255];
for the i-th image (1-based, sorted by name) and noise level sigma,
noisy = clean + sigma * default_rng(1000 * sigma + i).standard_normal(clean.shape).
Protocol F keeps that float image; protocol Q rounds and clips it to uint8, as a
file on disk would be. PSNR (data range 255) and SSIM are measured against the
clean image after clipping the output to [0, 255]; tables average over images.

Methods (those whose package is missing are skipped, with a note):
- nlmeans auto: nlmeans.denoise(noisy) with no parameters (sigma estimated);
- nlmeans sure: the same with h chosen by SURE;
- nlmeans nlbayes: nlmeans.denoise(noisy, method="nlbayes") (sigma estimated);
- nlmeans fixed: the plain formula with sigma given, h = 0.4 sigma, patch 5, window 21;
- scikit-image doc: denoise_nl_means(fast_mode=True, sigma=sigma, h=0.8 sigma), patch 5 /
  distance 6 below sigma = 20, patch 7 / distance 10 from there on, its documented settings;
- scikit-image oracle: the best, per image, of h in {0.4, 0.5, ..., 1.2} sigma and both
  window settings, chosen with the clean image (no user can do this);
- OpenCV oracle: fastNlMeansDenoising (fastNlMeansDenoisingColored for colour) 7/21 with the
  best h in {0.6, 0.7, ..., 1.4} sigma; OpenCV takes 8-bit input only, so it gets the
  protocol-Q image in both protocols;
- BM3D: bm3d.bm3d(noisy, sigma_psd=sigma) (bm3d.bm3d_rgb, CBM3D, for colour) when the
  package is installed.

Protocol PG (--protocols PG --levels 1,1 4,4 16,0): Poisson-Gaussian noise whose
variance grows with the signal, a*x + b in 0-255 units: noisy = a * Poisson(clean / a)
+ sqrt(b) * N(0, 1), drawn with default_rng(seed of a, b and i), kept in float. The
methods that take no sigma run on it blind: nlmeans auto and nlmeans nlbayes (the
noise model fits a and b and, finding noise that grows with the signal, runs them
through the generalised Anscombe transform and its exact unbiased inverse), and the
same with noise="gaussian" ("one sigma": white noise of one level, as before the
model knew such noise). Beside them the oracles "GAT oracle + nlmeans" and "GAT
oracle + nlbayes", the same transform with the true a, b (noise=(a, b)), and OpenCV
with its best h for the level at the image's mean intensity. The oracle is what a
blind model of the noise can reach at best with these denoisers.

    python benchmarks/psnr.py --dataset ../shared/datasets/set12
    python benchmarks/psnr.py --dataset scikit-image-colour --protocols F
    python benchmarks/psnr.py --quick          # two sample images, one sigma
    python benchmarks/psnr.py --dataset SET12_DIR --protocols PG --levels 1,1 4,4 16,0

Writes psnr.md, psnr.csv and psnr.png into --out (default benchmarks/results).
"""

import argparse
import csv
import glob
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(os.path.dirname(HERE), "sample_images")
SIGMAS = (10, 15, 25, 50)
ALL_METHODS = ("nlmeans auto", "nlmeans sure", "nlmeans fixed", "nlmeans nlbayes", "scikit-image doc",
               "scikit-image oracle", "OpenCV oracle", "BM3D", "nlmeans one sigma",
               "nlbayes one sigma", "GAT oracle + nlmeans", "GAT oracle + nlbayes")
# The methods that need no sigma (or, the oracles, the true a and b): protocol PG's.
PG_METHODS = ("nlmeans auto", "nlmeans nlbayes", "nlmeans one sigma", "nlbayes one sigma",
              "GAT oracle + nlmeans", "GAT oracle + nlbayes", "OpenCV oracle")
PG_LEVELS = ("1,1", "4,4", "16,0")


COLOUR_SET = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "cat", "retina",
              "hubble_deep_field")


def colour_set():
    """(name, image) for 256x256 centre crops of scikit-image's colour photographs.

    Six of the eight were among the images the automatic rules were fitted on.
    """
    from skimage import data

    images = []
    for name in COLOUR_SET:
        image = getattr(data, name)()[..., :3]
        y, x = (image.shape[0] - 256) // 2, (image.shape[1] - 256) // 2
        images.append((f"{name}.png", image[y:y + 256, x:x + 256].astype(np.float64)))
    return images


def load_clean(folder):
    """Name-sorted clean images of a folder as float64 arrays in [0, 255]."""
    import imageio.v3 as iio

    if folder == "scikit-image-colour":
        return sorted(colour_set())
    paths = sorted(p for p in glob.glob(os.path.join(folder, "*"))
                   if os.path.splitext(p)[1].lower() in (".png", ".tif", ".tiff", ".bmp", ".jpg")
                   and "_noisy" not in os.path.basename(p))
    images = []
    for path in paths:
        image = np.asarray(iio.imread(path))
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[..., :3]
        if image.dtype != np.uint8:
            raise SystemExit(f"{path}: the protocol needs 8-bit images")
        images.append((os.path.basename(path), image.astype(np.float64)))
    if not images:
        raise SystemExit(f"{folder}: no images")
    return images


def pg_level(label):
    """(a, b) of a Poisson-Gaussian level label 'a,b'."""
    a, b = (float(v) for v in label.split(","))
    return a, b


def make_noisy(clean, sigma, index, protocol):
    if protocol == "PG":
        a, b = pg_level(sigma)
        rng = np.random.default_rng([int(1000 * a), int(1000 * b), index])
        return a * rng.poisson(clean / a) + np.sqrt(b) * rng.standard_normal(clean.shape)
    noisy = clean + sigma * np.random.default_rng(1000 * sigma + index).standard_normal(clean.shape)
    if protocol == "Q":
        noisy = np.clip(np.rint(noisy), 0, 255)
    return noisy


def psnr(result, clean):
    mse = np.mean((np.clip(result, 0, 255) - clean) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def ssim(result, clean):
    from skimage.metrics import structural_similarity

    colour = clean.ndim == 3
    return structural_similarity(np.clip(result, 0, 255), clean, data_range=255.0,
                                 channel_axis=-1 if colour else None)


def method_functions(names):
    """{name: fn(noisy, sigma, clean) -> list of candidate outputs}; an oracle returns
    several candidates and the best is kept. Missing packages are reported."""
    import nlmeans

    functions, missing = {}, []

    def colour_axis(image):
        return -1 if image.ndim == 3 else None

    functions["nlmeans auto"] = lambda y, s, c: [nlmeans.denoise(y, channel_axis=colour_axis(y))]
    functions["nlmeans sure"] = lambda y, s, c: [nlmeans.denoise(y, "sure",
                                                                 channel_axis=colour_axis(y))]
    functions["nlmeans nlbayes"] = lambda y, s, c: [nlmeans.denoise(
        y, method="nlbayes", channel_axis=colour_axis(y))]

    def gat_oracle(method):
        def run(y, s, c):
            return [nlmeans.denoise(y, method=method, noise=pg_level(s),
                                    channel_axis=colour_axis(y))]
        return run

    functions["GAT oracle + nlmeans"] = gat_oracle("nlmeans")
    functions["GAT oracle + nlbayes"] = gat_oracle("nlbayes")
    functions["nlmeans one sigma"] = lambda y, s, c: [nlmeans.denoise(
        y, noise="gaussian", channel_axis=colour_axis(y))]
    functions["nlbayes one sigma"] = lambda y, s, c: [nlmeans.denoise(
        y, method="nlbayes", noise="gaussian", channel_axis=colour_axis(y))]
    functions["nlmeans fixed"] = lambda y, s, c: [nlmeans.denoise(
        y, 0.4 * s, patch_radius=2, search_radius=10, sigma=s, channel_axis=colour_axis(y))]

    from skimage.restoration import denoise_nl_means

    def skimage(y, s, factors, windows):
        return [denoise_nl_means(y, h=f * s, sigma=s, patch_size=patch, patch_distance=distance,
                                 fast_mode=True, channel_axis=colour_axis(y))
                for f in factors for patch, distance in windows]

    functions["scikit-image doc"] = lambda y, s, c: skimage(
        y, s, [0.8], [(5, 6) if s < 20 else (7, 10)])
    functions["scikit-image oracle"] = lambda y, s, c: skimage(
        y, s, np.arange(0.4, 1.25, 0.1), [(5, 6), (7, 10)])
    try:
        import cv2

        def opencv(y, s, c):
            if isinstance(s, str):  # protocol PG: the level at the image's mean intensity
                a, b = pg_level(s)
                s = np.sqrt(a * y.mean() + b)
            y8 = np.clip(np.rint(y), 0, 255).astype(np.uint8)
            outs = []
            for f in np.arange(0.6, 1.45, 0.1):
                if y8.ndim == 3:
                    outs.append(cv2.fastNlMeansDenoisingColored(y8, None, f * s, f * s, 7, 21))
                else:
                    outs.append(cv2.fastNlMeansDenoising(y8, None, f * s, 7, 21))
            return [o.astype(np.float64) for o in outs]

        functions["OpenCV oracle"] = opencv
    except ImportError:
        missing.append("OpenCV oracle (pip install opencv-python-headless)")
    try:
        import bm3d

        # Colour: CBM3D (block matching on the opponent-colour luminance).
        functions["BM3D"] = lambda y, s, c: [bm3d.bm3d_rgb(y, sigma_psd=s) if y.ndim == 3
                                             else bm3d.bm3d(y, sigma_psd=s)]
    except ImportError:
        missing.append("BM3D (pip install bm3d)")
    return {n: functions[n] for n in names if n in functions}, missing


def run(images, sigmas, protocols, methods):
    """Rows of (protocol, sigma, method, image, psnr, ssim, seconds), and
    {method: [CPU time / wall time of each call]}."""
    rows, cpu_ratios = [], {}
    for fn in methods.values():  # compile (or load) the kernels before any timing
        fn(np.full((32, 32) + images[0][1].shape[2:], 128.0)
           + np.random.default_rng(0).standard_normal((32, 32) + images[0][1].shape[2:]) * 10,
           "4,4" if protocols == ["PG"] else 10, None)
    for protocol in protocols:
        for sigma in sigmas:
            for index, (name, clean) in enumerate(images, start=1):
                noisy = make_noisy(clean, sigma, index, protocol)
                rows.append((protocol, sigma, "noisy", name, psnr(noisy, clean),
                             ssim(noisy, clean), 0.0))
                for method, fn in methods.items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    candidates = fn(noisy, sigma, clean)
                    wall = time.perf_counter() - t0
                    seconds = wall / len(candidates)
                    cpu_ratios.setdefault(method, []).append((time.process_time() - c0) / wall)
                    scores = [psnr(np.asarray(c, dtype=np.float64), clean) for c in candidates]
                    best = candidates[int(np.argmax(scores))]
                    rows.append((protocol, sigma, method, name, max(scores),
                                 ssim(np.asarray(best, dtype=np.float64), clean), seconds))
                print(f"  protocol {protocol}, sigma {sigma}: {name}", file=sys.stderr, flush=True)
    return rows, cpu_ratios


def summarise(rows, sigmas, cpu_ratios=None):
    """Markdown tables of mean PSNR (and SSIM, seconds per image, and the mean CPU
    time / wall time of the calls) per protocol."""
    cpu_ratios = cpu_ratios or {}
    lines = []
    methods = list(dict.fromkeys(r[2] for r in rows))
    for protocol in dict.fromkeys(r[0] for r in rows):
        lines.append(f"\nProtocol {protocol}: mean PSNR in dB (mean SSIM), seconds per image\n")
        name = "a,b" if protocol == "PG" else "σ"
        lines.append("| method | " + " | ".join(f"{name}={s}" for s in sigmas)
                     + " | s/image | CPU/wall |")
        lines.append("|---|" + "---|" * (len(sigmas) + 2))
        for method in methods:
            cells, seconds = [], []
            for sigma in sigmas:
                sel = [r for r in rows if r[0] == protocol and r[1] == sigma and r[2] == method]
                if sel:
                    cells.append(f"{np.mean([r[4] for r in sel]):.2f} "
                                 f"({np.mean([r[5] for r in sel]):.3f})")
                    seconds += [r[6] for r in sel]
                else:
                    cells.append("—")
            ratio = (f"{np.mean(cpu_ratios[method]):.2f}" if cpu_ratios.get(method)
                     else "—")
            lines.append(f"| {method} | " + " | ".join(cells)
                         + f" | {np.mean(seconds):.2f} | {ratio} |")
    return "\n".join(lines) + "\n"


def plot(rows, sigmas, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    protocols = list(dict.fromkeys(r[0] for r in rows))
    fig, axes = plt.subplots(1, len(protocols), figsize=(6 * len(protocols), 4.5), squeeze=False)
    for ax, protocol in zip(axes[0], protocols):
        for method in dict.fromkeys(r[2] for r in rows):
            xs, ys = [], []
            for sigma in sigmas:
                sel = [r[4] for r in rows if r[0] == protocol and r[1] == sigma and r[2] == method]
                if sel:
                    xs.append(sigma)
                    ys.append(np.mean(sel))
            ax.plot(xs, ys, marker="o", label=method)
        ax.set_xlabel("noise σ (8-bit units)")
        ax.set_ylabel("mean PSNR (dB)")
        ax.set_title(f"protocol {protocol}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", help="folder of clean 8-bit images (default: sample_images), "
                                          "or 'scikit-image-colour' for crops of its colour "
                                          "photographs")
    parser.add_argument("--sigmas", type=int, nargs="+", default=list(SIGMAS))
    parser.add_argument("--protocols", nargs="+", default=["F", "Q"], choices=["F", "Q", "PG"],
                        help="F, Q (white Gaussian) or PG alone (Poisson-Gaussian)")
    parser.add_argument("--levels", nargs="+", default=list(PG_LEVELS), metavar="A,B",
                        help="protocol PG: noise variance a*x + b (0-255 units)")
    parser.add_argument("--methods", nargs="+", default=list(ALL_METHODS), choices=ALL_METHODS)
    parser.add_argument("--quick", action="store_true",
                        help="two sample images, sigma 25, protocol F (for the test suite)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)

    images = load_clean(args.dataset or SAMPLES)
    sigmas, protocols = args.sigmas, args.protocols
    if args.quick:
        images, sigmas, protocols = images[:2], [25], ["F"]
    if "PG" in protocols:
        if protocols != ["PG"]:
            raise SystemExit("protocol PG runs alone: --protocols PG")
        sigmas = args.levels
        methods_asked = [m for m in args.methods if m in PG_METHODS]
        if args.methods == list(ALL_METHODS):
            print("protocol PG: " + ", ".join(PG_METHODS), file=sys.stderr)
    else:
        methods_asked = [m for m in args.methods if not m.startswith("GAT")]
    methods, missing = method_functions(methods_asked)
    for note in missing:
        print(f"skipped: {note}", file=sys.stderr)

    rows, cpu_ratios = run(images, sigmas, protocols, methods)
    dataset = os.path.basename(os.path.normpath(args.dataset or SAMPLES))
    table = (f"Dataset: {dataset} ({len(images)} images).\n" + summarise(rows, sigmas, cpu_ratios))
    print(table)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "psnr.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.out, "psnr.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("protocol", "sigma", "method", "image", "psnr", "ssim", "seconds"))
        writer.writerows(rows)
    plot(rows, sigmas, os.path.join(args.out, "psnr.png"))
    return rows


if __name__ == "__main__":
    main()
