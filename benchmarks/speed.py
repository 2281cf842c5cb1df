"""Speed of nlmeans against scikit-image's and OpenCV's NL-means, in one run.

Every method denoises the same noisy 8-bit image (camera, sigma = 20) with the
same windows; each timing is the median of --repeats runs after a warm-up
(compilation excluded) and is printed with the process's CPU time / wall time
over those runs, which should be close to the thread count: a figure taken
while something else ran on the machine is void.

    python benchmarks/speed.py                 # 512^2 and 2048^2, 5/15 and 7/21
    python benchmarks/speed.py --sizes 512 --repeats 3

Writes benchmarks/results/speed.md and speed.csv. Needs the `bench` extra
(opencv-python-headless); scikit-image is a dependency of nlmeans.
"""

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIGMA = 20.0
WINDOWS = [(2, 7), (3, 10)]  # (patch radius, search radius): 5/15 and 7/21


def test_image(size):
    """Clean camera image tiled (mirrored) to size x size, and its noisy uint8 copy."""
    from skimage import data

    camera = data.camera().astype(np.float64)
    reps = -(-size // camera.shape[0])
    tiled = np.block([[camera[:, ::(-1) ** j][::(-1) ** i] for j in range(reps)]
                      for i in range(reps)])[:size, :size]
    rng = np.random.default_rng(size)
    noisy = np.clip(np.rint(tiled + SIGMA * rng.standard_normal(tiled.shape)), 0, 255)
    return tiled, noisy.astype(np.uint8)


def psnr(result, clean):
    mse = np.mean((np.clip(result.astype(np.float64), 0, 255) - clean) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def time_method(fn, repeats):
    """Warm up, then return (median wall s, CPU s / wall s over the timed runs, result)."""
    result = fn()
    walls, cpus = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), sum(cpus) / sum(walls), result


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}"


def methods(threads, h, ds, Ds, include_skimage):
    """(name, thread count, callable) for each method at these windows."""
    import cv2
    import numba

    import nlmeans
    from skimage.restoration import denoise_nl_means

    def ours(noisy, n):
        def run():
            numba.set_num_threads(n)
            return nlmeans.denoise(noisy, h, patch_radius=ds, search_radius=Ds)
        return run

    def opencv(noisy, n):
        def run():
            cv2.setNumThreads(n)
            return cv2.fastNlMeansDenoising(noisy, None, h, 2 * ds + 1, 2 * Ds + 1)
        return run

    def skimage(noisy):
        image = noisy.astype(np.float64)
        return lambda: denoise_nl_means(image, h=h, patch_size=2 * ds + 1, patch_distance=Ds,
                                        fast_mode=True)

    out = []
    for n in sorted({threads, 1}, reverse=True):
        out.append(("nlmeans", n, ours))
        out.append(("OpenCV", n, opencv))
    if include_skimage:
        out.append(("scikit-image", 1, lambda noisy, n: skimage(noisy)))
    return out


def cli_startup(size=512):
    """Wall time of `nlmeans denoise` on a PNG: first run (compiling) and second (cached)."""
    import imageio.v3 as iio

    _, noisy = test_image(size)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.png")
        iio.imwrite(src, noisy)
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba-cache"))
        for _ in range(2):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nlmeans_cli.main", "denoise", src,
                            os.path.join(tmp, "out.png"), "--h", "20", "--overwrite", "-q"],
                           check=True, env=env)
            times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-skimage", action="store_true", help="Skip the slow scikit-image runs.")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)

    rows = []
    header = ("method", "size", "windows", "threads", "MP/s", "CPU/wall", "vs OpenCV", "PSNR")
    print("| " + " | ".join(header) + " |", flush=True)
    print("|" + "---|" * len(header), flush=True)
    for size in args.sizes:
        clean, noisy = test_image(size)
        for ds, Ds in WINDOWS:
            h = SIGMA
            windows = f"{2 * ds + 1}/{2 * Ds + 1}"
            timed = []
            for name, n, make in methods(args.threads, h, ds, Ds, not args.no_skimage):
                wall, load, result = time_method(make(noisy, n), args.repeats)
                timed.append((name, n, size * size / wall / 1e6, load, psnr(result, clean)))
            opencv_rate = {n: rate for name, n, rate, _, _ in timed if name == "OpenCV"}
            for name, n, rate, load, quality in timed:
                ratio = rate / opencv_rate.get(n, opencv_rate[1])
                row = (name, f"{size}x{size}", windows, n, f"{rate:.2f}", f"{load:.2f}",
                       f"{ratio:.2f}x", f"{quality:.2f}")
                rows.append(row)
                print("| " + " | ".join(str(v) for v in row) + " |", flush=True)

    first, second = cli_startup()
    startup = (f"`nlmeans denoise` on a 512x512 PNG: {first:.2f} s first run (compiling), "
               f"{second:.2f} s second run (cached)")
    print(f"\n{startup}\nMachine: {machine()}")

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "speed.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    with open(os.path.join(args.out, "speed.md"), "w") as f:
        f.write(f"Machine: {machine()}. Noisy camera image (sigma = 20), h = 20, median of "
                f"{args.repeats} runs after a warm-up. 'vs OpenCV' compares with OpenCV at the "
                f"same thread count.\n\n")
        f.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n")
        for row in rows:
            f.write("| " + " | ".join(str(v) for v in row) + " |\n")
        f.write(f"\n{startup}.\n")


if __name__ == "__main__":
    main()
