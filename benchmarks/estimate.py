"""The long-job estimate (nlmeans.api.jobs.estimated_seconds) against the time the job takes.

The command line prints the estimate before a long job and runs it in strips with
progress when it exceeds 10 s; the estimate should be right within a factor of 2.
Each shape is denoised once after a warm-up (compilation excluded) on all threads;
the table gives the estimate, the wall time with the process's CPU/wall (close to
the thread count, else the figure is void: something else ran) and their ratio.

    python benchmarks/estimate.py
    python benchmarks/estimate.py --out /tmp/results
    python benchmarks/estimate.py --fit

Writes estimate.md into --out (default benchmarks/results). --fit times a grid of
grey jobs on each kernel path instead and prints the model's constants fitted to
them (least squares on the relative error; the log in estimate_fit.md): paste them
into nlmeans/runners/strips.py.
"""

import argparse
import os
import platform
import time
import warnings

import numpy as np

import nlmeans
from nlmeans.api.jobs import estimated_seconds, kernel_work

HERE = os.path.dirname(os.path.abspath(__file__))

# (name, shape, options, h): the kernel's paths (fused pixel-wise, patch-wise with the
# largest-weight centre), grey and colour, wide and tall, small and huge windows.
CASES = [
    ("512² grey, automatic", (512, 512), {}, None),
    ("512² colour, automatic", (512, 512, 3), {"channel_axis": -1}, None),
    ("1024² grey, 5/15", (1024, 1024), {"patch_radius": 2, "search_radius": 7}, 20.0),
    ("1024² grey, 7/21", (1024, 1024), {"patch_radius": 3, "search_radius": 10}, 20.0),
    ("1024² colour, 7/21", (1024, 1024, 3),
     {"patch_radius": 3, "search_radius": 10, "channel_axis": -1}, 20.0),
    ("2048×256 grey, 5/41", (2048, 256), {"patch_radius": 2, "search_radius": 20}, 20.0),
    ("256² grey, 5×5 patches, 121² window", (256, 256),
     {"patch_radius": 2, "search_radius": 60}, 20.0),
    ("512² grey, automatic, 81² window", (512, 512), {"search_radius": 40}, None),
    ("64³ volume, automatic", (64, 64, 64), {}, None),
    ("48×96×128 volume, 3³ patches, 9³ window, pixel-wise", (48, 96, 128),
     {"patch_radius": 1, "search_radius": 4, "aggregation": "pixel", "centre_weight": "one"},
     20.0),
    ("200×300 grey, 7×7 patches, window wider than the image (--Ds 200)", (200, 300),
     {"patch_radius": 3, "search_radius": 200}, 20.0),
    ("200×300 colour, automatic, window wider than the image (--Ds 1000)", (200, 300, 3),
     {"search_radius": 1000, "channel_axis": -1}, None),
    ("300×400 grey, automatic, 201² window", (300, 400), {"search_radius": 100}, None),
]


def measure(name, shape, options, h):
    """(name, estimate s, wall s, CPU/wall) of one case."""
    from numba import get_num_threads

    rng = np.random.default_rng(0)
    image = np.clip(128 + 25 * rng.standard_normal(shape), 0, 255).astype(np.uint8)
    settings = nlmeans.resolve(image, h, **options)
    spatial = shape[:-1] if options.get("channel_axis") is not None else shape
    estimate = estimated_seconds(settings, spatial, get_num_threads())
    corner = tuple(slice(0, 24) for _ in spatial)
    nlmeans.denoise(image[corner], settings=settings, channel_axis=options.get("channel_axis"))
    wall, cpu = time.perf_counter(), time.process_time()
    nlmeans.denoise(image, settings=settings, channel_axis=options.get("channel_axis"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return name, estimate, wall, cpu / wall


# The fit's grid: (spatial shape, patch radius, search radius), grey; each run on
# both paths (pixel-wise with centre weight 1: fused; patch-wise with the largest
# weight: tiled). Narrow to wider-than-the-image windows, thin to square images.
FIT_GRID = [
    ((64, 64), 1, 5), ((64, 2048), 2, 7), ((2048, 64), 2, 7), ((256, 256), 1, 2),
    ((256, 256), 3, 10), ((512, 512), 2, 7), ((512, 512), 3, 20), ((1024, 1024), 1, 3),
    ((1024, 1024), 2, 10), ((1024, 256), 3, 30), ((200, 300), 3, 60), ((200, 300), 3, 120),
    ((200, 300), 3, 199), ((100, 150), 2, 99), ((100, 600), 3, 99), ((400, 600), 2, 100),
    ((800, 100), 3, 99), ((32, 64, 64), 1, 2), ((64, 64, 64), 1, 3), ((40, 128, 96), 2, 3),
    ((16, 200, 200), 1, (2, 6, 6)),
]


def timed(image, settings):
    """Wall seconds and CPU/wall of denoising `image` (after a warm-up on a corner)."""
    nlmeans.denoise(image[tuple(slice(0, 24) for _ in image.shape)], settings=settings)
    wall, cpu = time.perf_counter(), time.process_time()
    nlmeans.denoise(image, settings=settings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu / wall


def fit(out):
    """Time FIT_GRID on both paths; print each path's constants of the model (and
    write the log to estimate_fit.md in `out`)."""
    from numba import get_num_threads
    from scipy.optimize import nnls

    threads = get_num_threads()
    rng = np.random.default_rng(0)
    log = []

    def say(line):
        print(line, flush=True)
        log.append(line)
    for path, options in (("fused", {"aggregation": "pixel", "centre_weight": "one"}),
                          ("tiled", {"aggregation": "patch", "centre_weight": "max"})):
        rows, times = [], []
        for shape, patch, search in FIT_GRID:
            image = np.clip(128 + 25 * rng.standard_normal(shape), 0, 255).astype(np.uint8)
            settings = nlmeans.resolve(image, 20.0, patch_radius=patch, search_radius=search,
                                       refine=False, **options)
            step = settings.passes[0]
            *work, _, tiles = kernel_work(step, 1, shape, threads)
            wall, ratio = min(timed(image, settings) for _ in range(2))  # the quieter run
            rows.append(np.append(np.array(work) / min(threads, tiles), 1.0))  # + per pass
            times.append(wall)
            name = f"{'x'.join(map(str, shape))} {patch}/{search}"
            say(f"{path} {name}: {wall:.3f} s, CPU/wall {ratio:.2f}")
        rows, times = np.array(rows), np.array(times)
        scale = rows.max(axis=0)
        scale[scale == 0] = 1
        costs, _ = nnls(rows / scale / times[:, None], np.ones(len(times)))
        costs = costs / scale
        ratios = times / (rows @ costs)
        for (shape, patch, search), ratio in zip(FIT_GRID, ratios):
            say(f"  {'x'.join(map(str, shape))} {patch}/{search}: wall / model {ratio:.2f}")
        say(f"_{path.upper()}_COSTS = ({', '.join(f'{c:.3g}' for c in costs)})  "
            f"# wall / model {ratios.min():.2f} to {ratios.max():.2f}")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "estimate_fit.md"), "w") as f:
        f.write("```\n" + "\n".join(log) + "\n```\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--fit", action="store_true", help="fit the model's constants")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # radii cut to the image: intended here
    if args.fit:
        return fit(args.out)
    lines = ["## The long-job estimate against the time taken", "",
             "| job | estimate s | wall s | CPU/wall | wall / estimate |", "|---|---|---|---|---|"]
    for case in CASES:
        name, estimate, wall, ratio = measure(*case)
        lines.append(f"| {name} | {estimate:.2f} | {wall:.2f} | {ratio:.2f} | "
                     f"{wall / estimate:.2f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}"]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "estimate.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
