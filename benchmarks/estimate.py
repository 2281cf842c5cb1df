"""The long-job estimate (nlmeans.api.jobs.estimated_seconds) against the time the job takes.

The command line prints the estimate before a long job and runs it in strips with
progress when it exceeds 10 s; the estimate should be right within a factor of 2.
Each shape is denoised once after a warm-up (compilation excluded) on all threads;
the table gives the estimate, the wall time with the process's CPU/wall (close to
the thread count, else the figure is void: something else ran) and their ratio.

    python benchmarks/estimate.py
    python benchmarks/estimate.py --out /tmp/results

Writes estimate.md into --out (default benchmarks/results).
"""

import argparse
import os
import platform
import time
import warnings

import numpy as np

import nlmeans
from nlmeans.api.jobs import estimated_seconds

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
    ("200×300 grey, 7×7 patches, window wider than the image (--Ds 200)", (200, 300),
     {"patch_radius": 3, "search_radius": 200}, 20.0),
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # radii cut to the image: intended here
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
