"""How nlmeans' cost scales: patch size, pixels, offsets, threads, colour, 3-D, float64, memory.

Each figure is the median of --repeats runs after a warm-up, with the process's
CPU time / wall time beside it (a figure taken while something else ran is void).
The comparisons (patch sizes, one thread against all, colour against grey,
float64 against float32) run the settings in turns and give the median over the
rounds of the ratio of their runs, which drifts less on a shared machine than a
ratio of medians taken minutes apart.

    python benchmarks/scaling.py            # writes benchmarks/results/scaling.md
"""

import argparse
import os
import statistics
import subprocess
import sys

import numpy as np
from speed import ratio_stats, time_in_turns

HERE = os.path.dirname(os.path.abspath(__file__))


def in_turns(fns, repeats):
    """Run the callables in turns (speed.py's time_in_turns). Returns, per
    callable, its median wall time, its CPU/wall, and the median over the rounds
    of its wall time / the first callable's."""
    runs = time_in_turns(fns, repeats)
    first = runs[0][0]
    return [(statistics.median(walls), load, ratio_stats(first, walls)[0])
            for walls, load, _ in runs]


def timed(fn, repeats):
    """Median wall time and CPU/wall of `repeats` runs after a warm-up."""
    wall, load, _ = in_turns([fn], repeats)[0]
    return wall, load


def noisy_image(shape, seed=0):
    rng = np.random.default_rng(seed)
    from skimage import data, transform

    base = transform.resize(data.camera().astype(np.float32), shape[:2], preserve_range=True)
    if len(shape) == 3:
        base = np.stack([base, base[::-1], base[:, ::-1]], axis=-1)
    return (base + 20 * rng.standard_normal(shape)).astype(np.float32)


def peak_memory_ratio(size):
    """Peak extra resident memory while denoising a size x size float32 image, over the
    image's size. Linux only: the peak (VmHWM) is reset just before the call, so memory
    used earlier (compiling the kernel, say) does not count."""
    code = (
        "import numpy as np, nlmeans\n"
        f"image = np.random.default_rng(0).random(({size}, {size}), dtype=np.float32)\n"
        "image *= 255\n"
        "nlmeans.denoise(image[:64, :64], 20.0)\n"  # compile or load the kernel first
        "def status(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key):\n"
        "            return int(line.split()[1]) * 1024\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = status('VmRSS:')\n"
        "nlmeans.denoise(image, 20.0)\n"
        "print((status('VmHWM:') - before) / image.nbytes)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    import numba

    import nlmeans

    r = args.repeats
    lines = []

    def row(*cells):
        line = "| " + " | ".join(str(c) for c in cells) + " |"
        lines.append(line)
        print(line, flush=True)

    def rate(image, repeats=r, **kw):
        wall, load = timed(lambda: nlmeans.denoise(image, 20.0, **kw), repeats)
        return image.shape[0] * image.shape[1] / wall / 1e6, load, wall

    cores = os.cpu_count()
    row("measure", "setting", "MP/s", "CPU/wall", "note")
    row(*["---"] * 5)
    img1k = noisy_image((1024, 1024))
    patch_sizes = range(1, 6)
    timings = in_turns([lambda ds=ds: nlmeans.denoise(img1k, 20.0, patch_radius=ds, search_radius=7)
                        for ds in patch_sizes], r)
    for ds, (wall, load, relative) in zip(patch_sizes, timings):
        row("patch size", f"ds={ds}, Ds=7, 1024²", f"{img1k.size / wall / 1e6:.2f}", f"{load:.2f}",
            f"{relative:.2f}x the time at ds=1")
    relative = [t[2] for t in timings]
    mean = statistics.mean(relative)
    row("patch size", "slowest / fastest; farthest from the mean", "", "",
        f"{max(relative) / min(relative):.2f}; "
        f"{100 * max(abs(x / mean - 1) for x in relative):.0f} %")
    rates = []
    for size in (256, 1024, 4096):
        mps, load, _ = rate(noisy_image((size, size)), repeats=max(1, r if size < 4096 else 1))
        rates.append(mps)
        row("pixels", f"{size}², 5/15", f"{mps:.2f}", f"{load:.2f}", "")
    spread = (max(rates) - min(rates)) / statistics.mean(rates)
    row("pixels", "spread (max-min)/mean", "", "", f"{100 * spread:.0f} %")
    per_offset = []
    for Ds in (3, 5, 7, 10):
        mps, load, wall = rate(img1k, patch_radius=2, search_radius=Ds)
        offsets = ((2 * Ds + 1) ** 2 - 1) // 2
        per_offset.append(wall / offsets)
        row("offsets", f"Ds={Ds} ({offsets} pairs of offsets)", f"{mps:.2f}", f"{load:.2f}",
            f"{1e9 * wall / offsets / img1k.size:.3f} ns per pixel and offset pair")
    def on_threads(threads):
        def run():
            numba.set_num_threads(threads)
            nlmeans.denoise(img1k, 20.0)
        return run

    grey = lambda: nlmeans.denoise(img1k, 20.0)  # noqa: E731
    if cores > 1:
        one, many = in_turns([on_threads(1), on_threads(cores)], r)
        row("threads", "1, 5/15, 1024²", f"{img1k.size / one[0] / 1e6:.2f}", f"{one[1]:.2f}", "")
        row("threads", f"{cores}, 5/15, 1024²", f"{img1k.size / many[0] / 1e6:.2f}",
            f"{many[1]:.2f}", f"{1 / many[2]:.2f}x the speed of 1 thread")
        numba.set_num_threads(cores)
    colour_img = noisy_image((1024, 1024, 3))
    _, (wall, load, relative) = in_turns(
        [grey, lambda: nlmeans.denoise(colour_img, 20.0, channel_axis=-1)], r)
    row("colour", "RGB vs grey, 5/15, 1024²", f"{img1k.size / wall / 1e6:.2f}", f"{load:.2f}",
        f"{relative:.2f}x the grey time")
    img64 = img1k.astype(np.float64)
    _, (wall, load, relative) = in_turns(
        [grey, lambda: nlmeans.denoise(img64, 20.0, dtype=np.float64)], r)
    row("float64", "vs float32, 5/15, 1024²", f"{img1k.size / wall / 1e6:.2f}", f"{load:.2f}",
        f"{relative:.2f}x the float32 time")
    from skimage.restoration import denoise_nl_means

    volume = np.random.default_rng(1).normal(100, 20, (128, 128, 128)).astype(np.float32)
    ours, load_ours = timed(lambda: nlmeans.denoise(volume, 20.0, patch_radius=1,
                                                    search_radius=3), max(1, r - 1))
    sk, load_sk = timed(lambda: denoise_nl_means(volume, h=20.0, patch_size=3, patch_distance=3,
                                                 fast_mode=True), 1)
    row("3-D", "128³, ds=1, Ds=3: nlmeans", f"{volume.size / ours / 1e6:.2f}", f"{load_ours:.2f}",
        f"{sk / ours:.1f}x scikit-image")
    row("3-D", "128³, ds=1, Ds=3: scikit-image fast mode", f"{volume.size / sk / 1e6:.2f}",
        f"{load_sk:.2f}", "")
    ratio = peak_memory_ratio(4096)
    row("memory", "peak extra resident memory, 4096² float32", "", "",
        f"{ratio:.1f}x the image's size ({ratio + 1:.1f}x with the input)")

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "scaling.md"), "w") as f:
        f.write(f"Machine: {cores} cores. h = 20, float32 unless said.\n\n" + "\n".join(lines)
                + "\n")


if __name__ == "__main__":
    main()
