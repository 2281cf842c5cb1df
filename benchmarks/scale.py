"""Scale: a TIFF larger than the memory budget, dask arrays, batches on a cluster.

Each part runs in this one process or in child processes measured with
/usr/bin/time (wall, user + system CPU, peak resident memory), one at a time:
a figure taken while something else ran on the machine is void.

- stream: an N x N 8-bit TIFF (the camera image tiled, sigma 15 noise), denoised
  by ``nlmeans denoise`` in memory (the default budget) and with
  ``--max-memory``; peak memory, time, and how far the two outputs differ.
- large: the same for a much larger image with a fixed-h run (fast enough to
  finish on 2 cores) against a 4096² image of the same content: time per
  megapixel.
- dask: an N x N float32 image in 1024² chunks, denoised as a NumPy array and as
  a dask array on the threaded scheduler (a task per core, one Numba thread
  each) and on the synchronous scheduler (one task at a time, all threads).
- batch: 16 images on a LocalCluster of 1 and 2 worker processes, and the local
  batch, single-threaded and on all cores.

    python benchmarks/scale.py                        # every part at full size
    python benchmarks/scale.py --parts stream dask --stream-size 6000

Writes benchmarks/results/scale.md (the parts run), or the file --out names.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIGMA = 15.0


def camera_rows(size, top, rows, seed):
    """Rows [top, top + rows) of the size x size noisy test image, as uint8: the
    camera image tiled with mirrored copies, noise from a per-row-block seed."""
    from skimage import data

    camera = data.camera().astype(np.float32)
    n = camera.shape[0]
    y = np.arange(top, min(top + rows, size))
    x = np.arange(size)
    yy, xx = (y // n) % 2, (x // n) % 2
    ys = np.where(yy == 0, y % n, n - 1 - y % n)
    xs = np.where(xx == 0, x % n, n - 1 - x % n)
    clean = camera[ys[:, None], xs[None, :]]
    rng = np.random.default_rng([seed, top])
    noise = rng.standard_normal(clean.shape, dtype=np.float32) * SIGMA
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def write_test_tiff(path, size, seed=0):
    """The test image as a tiled, Deflate-compressed TIFF, written band by band."""
    import tifffile

    band = 1024

    def tiles():
        for top in range(0, size, 256):
            if top % band == 0:
                rows = camera_rows(size, top, band, seed)
            block = rows[top % band:top % band + 256]
            for left in range(0, size, 256):
                tile = np.zeros((256, 256), np.uint8)
                piece = block[:, left:left + 256]
                tile[:piece.shape[0], :piece.shape[1]] = piece
                yield tile

    with tifffile.TiffWriter(path, bigtiff=size * size >= 2**31) as writer:
        writer.write(tiles(), shape=(size, size), dtype=np.uint8, tile=(256, 256),
                     compression="zlib", photometric="minisblack")


def timed(command, env=None):
    """(wall s, CPU s, peak RSS MB, the finished process) of a command, via
    /usr/bin/time; its CPU counts every process it waited for. `env`: variables
    added to this process's environment."""
    fmt = "%e %U %S %M"
    proc = subprocess.run(["/usr/bin/time", "-f", fmt] + command, capture_output=True,
                          text=True, env=dict(os.environ, **(env or {})))
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr}")
    wall, user, system, rss = proc.stderr.strip().splitlines()[-1].split()
    return float(wall), float(user) + float(system), float(rss) / 1024, proc


def compare_tiffs(a, b, rows=2048):
    """(max |difference|, pixels that differ) of two same-shape TIFFs, by bands."""
    import tifffile
    import zarr

    with tifffile.TiffFile(a) as ta, tifffile.TiffFile(b) as tb:
        za = zarr.open(ta.series[0].aszarr(), mode="r")
        zb = zarr.open(tb.series[0].aszarr(), mode="r")
        worst, count = 0, 0
        for top in range(0, za.shape[0], rows):
            d = np.abs(za[top:top + rows].astype(np.int16) - zb[top:top + rows])
            worst, count = max(worst, int(d.max())), count + int(np.count_nonzero(d))
    return worst, count


def part_stream(args, folder, lines):
    size = args.stream_size
    source = os.path.join(folder, "big.tif")
    write_test_tiff(source, size)
    runs = {}
    for name, extra in (("in memory", []), (f"--max-memory {args.budget}",
                                            ["--max-memory", args.budget])):
        out = os.path.join(folder, f"out-{len(runs)}.tif")
        wall, cpu, rss, proc = timed(["nlmeans", "denoise", source, out] + extra + args.options)
        runs[name] = (wall, cpu, rss, out, "streaming" in proc.stderr)
    worst, count = compare_tiffs(runs["in memory"][3], runs[f"--max-memory {args.budget}"][3])
    base = runs["in memory"][0]
    lines += [f"## A {size}x{size} 8-bit TIFF ({size * size / 1e6:.0f} MP, Deflate, "
              f"{os.path.getsize(source) / 2**20:.0f} MiB on disk), "
              f"options: {' '.join(args.options) or 'automatic'}", "",
              "| run | streamed | wall s | CPU/wall | peak RSS MB | time vs in memory |",
              "|---|---|---|---|---|---|"]
    for name, (wall, cpu, rss, _, streamed) in runs.items():
        lines.append(f"| {name} | {'yes' if streamed else 'no'} | {wall:.1f} | "
                     f"{cpu / wall:.2f} | {rss:.0f} | {wall / base:.3f}x |")
    lines += ["", f"Outputs: max difference {worst}, {count} of {size * size} pixels differ "
                  f"({count / size / size:.2e}).", ""]


def part_large(args, folder, lines):
    fixed = ["--h", "10", "--ds", "2", "--Ds", "7"]
    lines += [f"## Time per megapixel, fixed h (--h 10 --ds 2 --Ds 7), streamed with "
              f"--max-memory {args.budget}", "",
              "| image | MP | wall s | CPU/wall | peak RSS MB | s per MP | vs 4096² |",
              "|---|---|---|---|---|---|---|"]
    reference = None
    for size in (4096, args.large_size):
        source = os.path.join(folder, f"large-{size}.tif")
        write_test_tiff(source, size)
        out = os.path.join(folder, f"large-out-{size}.tif")
        wall, cpu, rss, _ = timed(["nlmeans", "denoise", source, out, "--max-memory",
                                   args.budget] + fixed)
        per_mp = wall / (size * size / 1e6)
        reference = reference or per_mp
        lines.append(f"| {size}x{size} | {size * size / 1e6:.0f} | {wall:.1f} | "
                     f"{cpu / wall:.2f} | {rss:.0f} | {per_mp:.3f} | {per_mp / reference:.3f} |")
        os.remove(source)
        os.remove(out)
    lines.append("")


def part_dask(args, lines):
    import dask
    import dask.array as da

    import nlmeans

    size = args.dask_size
    image = np.concatenate([camera_rows(size, top, 1024, 1) for top in range(0, size, 1024)])
    image = image.astype(np.float32)
    nlmeans.denoise(image[:64, :64])  # compiled or loaded before timing
    rows = []

    def clock(name, fn):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall = time.perf_counter() - start
        rows.append((name, wall, (time.process_time() - cpu) / wall))
        return result

    expected = clock("NumPy array, in memory", lambda: nlmeans.denoise(image))
    lazy = da.from_array(image, chunks=(1024, 1024))
    threaded = clock("dask, threaded scheduler (1 Numba thread per task)",
                     lambda: nlmeans.denoise(lazy).compute(scheduler="threads"))
    with dask.config.set(scheduler="synchronous"):
        clock("dask, synchronous scheduler (all Numba threads per task)",
              lambda: nlmeans.denoise(lazy).compute())
    diff = float(np.abs(threaded - expected).max())
    base = rows[0][1]
    lines += [f"## Dask: {size}x{size} float32 in 1024² chunks (automatic settings)", "",
              "| run | wall s | CPU/wall | throughput vs in memory |", "|---|---|---|---|"]
    lines += [f"| {name} | {wall:.1f} | {ratio:.2f} | {base / wall:.3f}x |"
              for name, wall, ratio in rows]
    lines += ["", f"Largest difference from the NumPy result: {diff:.2e} (of a 0-255 range).",
              ""]


def part_batch(args, folder, lines):
    import imageio.v3 as iio

    inputs = os.path.join(folder, "batch-in")
    os.makedirs(inputs, exist_ok=True)
    for index in range(16):
        iio.imwrite(os.path.join(inputs, f"img{index:02d}.png"),
                    camera_rows(args.batch_size, 0, args.batch_size, 100 + index))
    runs = [("local batch, 1 process, 1 thread", ["--jobs", "1"], {"NUMBA_NUM_THREADS": "1"}),
            ("local batch, all cores", [], {}),
            ("LocalCluster, 1 process x 1 thread (kernel on 1 thread)", ["--scheduler", "local:1"],
             {"NUMBA_NUM_THREADS": "1"}),
            ("LocalCluster, 1 process x 1 thread (kernel on all cores)",
             ["--scheduler", "local:1"], {}),
            ("LocalCluster, 2 processes x 1 thread", ["--scheduler", "local:2"], {})]
    # Rounds run the rows in turns, so that a drift of the machine's speed shows in
    # every row alike rather than in one.
    results = {name: [] for name, _, _ in runs}
    for round_ in range(args.batch_rounds):
        for index, (name, extra, env) in enumerate(runs):
            out = os.path.join(folder, f"batch-out-{round_}-{index}")
            wall, cpu, _, proc = timed(["nlmeans", "batch", inputs, out, "--json", "-q"] + extra,
                                       env)
            summary = json.loads(proc.stdout)["summary"]
            results[name].append((wall, cpu / wall, summary["done"]))
            shutil.rmtree(out, ignore_errors=True)
    base = results[runs[0][0]]
    cluster_one = results[runs[2][0]]
    lines += [f"## Batch: 16 images of {args.batch_size}² (automatic settings), wall time "
              f"including start-up, {args.batch_rounds} round(s) in turns", "",
              "| run | files done | wall s | CPU/wall | vs local batch, 1 process, 1 thread "
              "| vs LocalCluster, 1 process x 1 thread |", "|---|---|---|---|---|---|"]
    for name, rows in results.items():
        lines.append(" | ".join([
            f"| {name}", " / ".join(str(done) for _, _, done in rows),
            " / ".join(f"{wall:.1f}" for wall, _, _ in rows),
            " / ".join(f"{ratio:.2f}" for _, ratio, _ in rows),
            " / ".join(f"{b[0] / wall:.2f}x" for b, (wall, _, _) in zip(base, rows)),
            " / ".join(f"{c[0] / wall:.2f}x" for c, (wall, _, _) in zip(cluster_one, rows))])
            + " |")
    lines.append("")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["stream", "large", "dask", "batch"],
                        choices=["stream", "large", "dask", "batch"])
    parser.add_argument("--stream-size", type=int, default=12000)
    parser.add_argument("--large-size", type=int, default=40000)
    parser.add_argument("--dask-size", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--batch-rounds", type=int, default=1,
                        help="run the batch part's rows this many times, in turns")
    parser.add_argument("--budget", default="300M")
    parser.add_argument("--options", nargs="*", default=[],
                        help="extra nlmeans denoise options for the stream part")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "scale.md"))
    args = parser.parse_args()
    lines = [f"# Scale benchmark ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)", "",
             "Run: `python benchmarks/scale.py " + " ".join(sys.argv[1:]) + "`", ""]
    folder = tempfile.mkdtemp(prefix="nlmeans-scale-")
    try:
        for part in args.parts:
            started = time.perf_counter()
            if part == "dask":
                part_dask(args, lines)
            else:
                globals()[f"part_{part}"](args, folder, lines)
            print("\n".join(lines), flush=True)
            print(f"[{part}: {time.perf_counter() - started:.0f} s]", file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
