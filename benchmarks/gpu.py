"""GPU speed: nlmeans on an NVIDIA GPU beside nlmeans and OpenCV on all CPU cores, in one run.

Grey float32 images (camera, mirrored to size, sigma = 20), the plain formula at
5/15 and 7/21 (h = 20, pixel-wise), and automatic mode (patch-wise aggregation,
largest-weight centre, second pass). For the GPU: the kernels' time alone
(launch to synchronise, data already on the GPU) and end to end through
``nlmeans.denoise(..., device="cuda")`` (mirroring, transfers both ways,
clipping); for the CPU: nlmeans and OpenCV (8-bit input, as it requires) on
every core. Each figure is the median of --repeats runs after a warm-up, with
CPU time / wall time beside the CPU runs. Also the largest difference between
the GPU's and the CPU's results, relative to the data range.

    python benchmarks/gpu.py                       # 2048^2 and 4096^2
    python benchmarks/gpu.py --sizes 1024 --repeats 3

Writes gpu.md into --out (default benchmarks/results). Needs numba-cuda and a GPU.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from speed import test_image  # noqa: E402  (the speed benchmark's image)

WINDOWS = [(2, 7), (3, 10)]


def timed(fn, repeats):
    """(median wall s, CPU s / wall s) over `repeats` runs after one warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), sum(cpus) / sum(walls)


def kernel_seconds(noisy, options, repeats):
    """Median time of the GPU kernels alone for every pass of the settings."""
    import nlmeans
    from nlmeans.backends.cuda import import_cuda, run_on_device, to_device

    cuda = import_cuda()
    settings = nlmeans.resolve(noisy, **options)
    volume = noisy[None, None].astype(np.float32)
    times = []
    for _ in range(repeats + 1):
        total, guide = 0.0, None
        for step in settings.passes:
            values_d, guide_d = to_device(volume, guide if step.guided else None, step)
            cuda.synchronize()
            start = time.perf_counter()
            out_d = run_on_device(values_d, guide_d, step)
            cuda.synchronize()
            total += time.perf_counter() - start
            guide = out_d.copy_to_host()[:, None]
        times.append(total)
    return statistics.median(times[1:])


def rows_for(size, repeats):
    import cv2
    import nlmeans
    from numba import get_num_threads

    clean, noisy8 = test_image(size)
    noisy = noisy8.astype(np.float32)
    mp = size * size / 1e6
    rows = []
    cases = [(f"{2 * p + 1}/{2 * s + 1}", dict(h=20.0, patch_radius=p, search_radius=s))
             for p, s in WINDOWS] + [("automatic", {})]
    for label, options in cases:
        cpu_wall, cpu_ratio = timed(lambda: nlmeans.denoise(noisy, **options), repeats)
        gpu_wall, _ = timed(lambda: nlmeans.denoise(noisy, device="cuda", **options), repeats)
        kernels = kernel_seconds(noisy, options, repeats)
        gaps = np.abs(nlmeans.denoise(noisy, device="cuda", **options)
                      - nlmeans.denoise(noisy, **options)) / 255.0
        difference, beyond = gaps.max(), int((gaps > 1e-4).sum())
        row = dict(size=size, case=label, kernel_mps=mp / kernels, gpu_mps=mp / gpu_wall,
                   cpu_mps=mp / cpu_wall, cpu_ratio=cpu_ratio, difference=difference,
                   beyond=beyond,
                   threads=get_num_threads())
        if label != "automatic":
            p, s = options["patch_radius"], options["search_radius"]
            cv_wall, cv_ratio = timed(lambda: cv2.fastNlMeansDenoising(
                noisy8, None, 20.0, 2 * p + 1, 2 * s + 1), repeats)
            row.update(opencv_mps=mp / cv_wall, opencv_ratio=cv_ratio)
        rows.append(row)
        print(row, flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    import cv2
    from numba import cuda

    from nlmeans.backends.cuda import import_cuda

    import_cuda()
    cv2.setNumThreads(os.cpu_count())
    rows = [row for size in args.sizes for row in rows_for(size, args.repeats)]
    device = cuda.get_current_device().name
    device = device.decode() if isinstance(device, bytes) else device
    lines = [f"## GPU: {device}; CPU: {os.cpu_count()} cores", "",
             "MP/s (megapixels per second), grey float32, median of "
             f"{args.repeats} runs; CPU runs with CPU time / wall time.", "",
             "| size | case | GPU kernels | GPU end to end | nlmeans CPU (CPU/wall) "
             "| OpenCV CPU (CPU/wall) | GPU end to end / nlmeans CPU | max difference / range "
             "| pixels > 1e-4 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        opencv = (f"{r['opencv_mps']:.1f} ({r['opencv_ratio']:.1f})" if "opencv_mps" in r
                  else "—")
        lines.append(f"| {r['size']}² | {r['case']} | {r['kernel_mps']:.0f} | {r['gpu_mps']:.0f} "
                     f"| {r['cpu_mps']:.1f} ({r['cpu_ratio']:.1f}) | {opencv} "
                     f"| {r['gpu_mps'] / r['cpu_mps']:.1f}× | {r['difference']:.1e} "
                     f"| {r['beyond']} |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
