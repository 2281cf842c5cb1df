"""Speed of nlmeans against scikit-image's and OpenCV's NL-means, in one run.

Every method denoises the same noisy 8-bit image (camera, sigma = 20) with the
same windows; each timing is the median of --repeats runs after a warm-up
(compilation excluded) and is printed with the process's CPU time / wall time
over those runs, which should be close to the thread count: a figure taken
while something else ran on the machine is void.

nlmeans and OpenCV at the same thread count run in turns (one run of each per
round), and the ratio is the median over the rounds of the two runs' ratio, with
its lowest and highest: on a shared machine whose speed drifts, a ratio of two
runs made side by side is steadier than a ratio of two medians taken minutes
apart.

    python benchmarks/speed.py                 # 512^2 and 2048^2, 5/15 and 7/21
    python benchmarks/speed.py --sizes 512 --repeats 3
    python benchmarks/speed.py --startup-only  # first run and cached start-up only

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


def time_in_turns(fns, repeats):
    """Warm each callable up, then run them in turns, `repeats` rounds.

    Returns, per callable, (wall s of each round, CPU s / wall s over its timed
    runs, result).
    """
    results = [fn() for fn in fns]
    walls = [[] for _ in fns]
    cpus = [0.0 for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            c0, w0 = time.process_time(), time.perf_counter()
            results[i] = fn()
            walls[i].append(time.perf_counter() - w0)
            cpus[i] += time.process_time() - c0
    return [(walls[i], cpus[i] / sum(walls[i]), results[i]) for i in range(len(fns))]


def ratio_stats(walls, reference_walls):
    """Median, lowest and highest over the rounds of reference wall / wall."""
    ratios = [r / w for w, r in zip(walls, reference_walls)]
    return statistics.median(ratios), min(ratios), max(ratios)


def steal_seconds():
    """CPU seconds the hypervisor gave to other guests so far (Linux's steal
    time, summed over the CPUs), or None where the system does not report it.
    Where it grows during a run, the machine was shared: the timings are void."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def steal_note(start_steal, start_wall):
    """One line on the steal time since `start_steal` (steal_seconds) and
    `start_wall` (time.perf_counter), as a share of the run's CPU time."""
    end = steal_seconds()
    if start_steal is None or end is None:
        return "Steal time: not reported by this system."
    stolen = end - start_steal
    share = stolen / ((time.perf_counter() - start_wall) * (os.cpu_count() or 1))
    verdict = " Over 1 %: another guest shared the host, the timings are void." \
        if share > 0.01 else ""
    return f"Steal time during the run: {stolen:.1f} CPU s, {100 * share:.1f} % of it.{verdict}"


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
    """Groups of (name, thread count, callable maker) at these windows, each to run in turns."""
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

    # Each group runs in turns; OpenCV, the reference of the ratios, is in every group.
    groups = [[("nlmeans", n, ours), ("OpenCV", n, opencv)]
              for n in sorted({threads, 1}, reverse=True)]
    if include_skimage:
        groups.append([("scikit-image", 1, lambda noisy, n: skimage(noisy)),
                       ("OpenCV", 1, opencv)])
    return groups


def cli_startup():
    """`nlmeans denoise` in fresh processes sharing an empty NUMBA_CACHE_DIR, in
    this order: the README's quick start (the bundled sample, automatic mode,
    --report) twice, on the NumPy pass while the kernel is not compiled; a
    512x512 PNG, automatic, which compiles the kernel; the quick start again,
    cached; a 64x64 crop of it; a 1024x1024 PNG with --h 20, which compiles
    the kernel's other path (fixed h; at 512x512 that runs on NumPy). The 64x64
    run is repeated 9 times. Returns (what, sorted wall seconds, CPU seconds /
    wall seconds) per case."""
    import resource

    import imageio.v3 as iio

    sample = os.path.join(os.path.dirname(HERE), "sample_images", "camera_noisy.png")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        small, large = os.path.join(tmp, "small.png"), os.path.join(tmp, "large.png")
        larger = os.path.join(tmp, "larger.png")
        iio.imwrite(small, iio.imread(sample)[96:160, 96:160])
        iio.imwrite(large, test_image(512)[1])
        iio.imwrite(larger, test_image(1024)[1])
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba-cache"))

        def timed(what, src, *options, repeats=1):
            walls, cpus = [], []
            for _ in range(repeats):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "nlmeans_cli.main", "denoise", src,
                                os.path.join(tmp, "out.png"), "--overwrite", "-q", *options],
                               check=True, env=env, stdout=subprocess.DEVNULL)
                walls.append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
            runs.append((what, sorted(walls), sum(cpus) / sum(walls)))

        timed("quick start (256x256 sample, automatic, --report): first run, NumPy pass",
              sample, "--report")
        timed("quick start: second run, kernel still not compiled: NumPy pass", sample,
              "--report")
        timed("512x512 PNG, automatic: first run, compiling", large)
        timed("quick start: kernel cached", sample, "--report")
        timed("64x64 PNG, automatic: NumPy pass, Numba not imported", small, repeats=9)
        timed("1024x1024 PNG, --h 20: first run of the fixed-h path, compiling", larger,
              "--h", "20")
    return runs


def startup_table():
    """cli_startup's runs as a Markdown table."""
    return ("`nlmeans denoise` start-up, fresh processes, empty Numba cache at first:\n\n"
            "| run | wall s | CPU/wall |\n|---|---|---|\n" + "".join(
                f"| {what} | {_walls(walls)} | {load:.2f} |\n"
                for what, walls, load in cli_startup()))


def _walls(walls):
    """One run's wall time, or the median of several with their range."""
    if len(walls) == 1:
        return f"{walls[0]:.2f}"
    return (f"{walls[len(walls) // 2]:.2f} (median of {len(walls)}; "
            f"{walls[0]:.2f}-{walls[-1]:.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--no-skimage", action="store_true", help="Skip the slow scikit-image runs.")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--startup-only", action="store_true",
                        help="Only the start-up runs (printed, no files written).")
    args = parser.parse_args(argv)
    if args.startup_only:
        print(f"{startup_table()}\nMachine: {machine()}")
        return

    rows = []
    header = ("method", "size", "windows", "threads", "MP/s", "CPU/wall", "vs OpenCV",
              "vs OpenCV, lowest-highest", "PSNR")
    print("| " + " | ".join(header) + " |", flush=True)
    print("|" + "---|" * len(header), flush=True)
    for size in args.sizes:
        clean, noisy = test_image(size)
        for ds, Ds in WINDOWS:
            h = SIGMA
            windows = f"{2 * ds + 1}/{2 * Ds + 1}"
            opencv_shown = set()  # thread counts whose OpenCV row is printed
            for group in methods(args.threads, h, ds, Ds, not args.no_skimage):
                timed = time_in_turns([make(noisy, n) for _, n, make in group], args.repeats)
                opencv_walls = timed[-1][0]  # OpenCV closes every group
                # OpenCV's own row is printed once, from the first group at its thread count.
                for (name, n, _), (walls, load, result) in zip(group, timed):
                    if name == "OpenCV":
                        if n in opencv_shown:
                            continue
                        opencv_shown.add(n)
                    ratio, lowest, highest = ratio_stats(walls, opencv_walls)
                    rate = size * size / statistics.median(walls) / 1e6
                    row = (name, f"{size}x{size}", windows, n, f"{rate:.2f}", f"{load:.2f}",
                           f"{ratio:.2f}x", f"{lowest:.2f}-{highest:.2f}",
                           f"{psnr(result, clean):.2f}")
                    rows.append(row)
                    print("| " + " | ".join(str(v) for v in row) + " |", flush=True)

    startup = startup_table()
    print(f"\n{startup}\nMachine: {machine()}", flush=True)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "speed.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    with open(os.path.join(args.out, "speed.md"), "w") as f:
        f.write(f"Machine: {machine()}. Noisy camera image (sigma = 20), h = 20, median of "
                f"{args.repeats} runs after a warm-up. 'vs OpenCV' compares with OpenCV at the "
                f"same thread count, run in turns with it: the median over {args.repeats} "
                f"rounds of the ratio of the two runs, then the lowest and highest.\n\n")
        f.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n")
        for row in rows:
            f.write("| " + " | ".join(str(v) for v in row) + " |\n")
        f.write(f"\n{startup}")


if __name__ == "__main__":
    main()
