"""A real clip: both methods frame by frame and over time, OpenCV's Multi and
V-BM3D, in one run, with per-frame PSNR (flicker shows as a dip).

The clip's first --frames decoded frames (8-bit RGB, through PyAV) are the
clean reference; white Gaussian noise of each sigma is added to them in float
(default_rng(sigma)). Methods, each on the same noisy frames:

- nlmeans / nlbayes frame by frame: ``nlmeans.denoise`` on each frame, automatic;
- nlmeans / nlbayes temporal: ``nlmeans.denoise(frames, time_axis=0)``, automatic;
- nlmeans / nlbayes temporal, no motion: the same with ``follow_motion=False``
  (the windows around the pixel only);
- OpenCV Multi: fastNlMeansDenoisingColoredMulti (5 frames, 7x7 patches, 21x21
  window) on the frames rounded to 8 bits, the best of h = 0.6, 0.8, 1.0 sigma
  (chosen with the clean clip: an oracle);
- V-BM3D (IPOL 2021, C++, GPL; a benchmark peer only) given sigma, when its
  binary is given (--vbm3d, or the NLMEANS_VBM3D environment variable; built
  by the shared anchors' build_vbm3d.sh), else skipped with a note.

PSNR over all frames (data range 255, outputs clipped to [0, 255]); seconds
per frame with CPU time / wall time; the end-frame dip: frames 1 and T-2 less
the mean of their two neighbours (the worse of the two).

    python benchmarks/video_clip.py --clip ../shared/datasets/video-dev/bikes.mp4 \
        --sequences ../shared/datasets/set12

Writes video_clip.md and video_clip_frames.png (per-frame PSNR at the middle
sigma) into --out (default benchmarks/results); --sequences also runs every
method on benchmarks/video.py's made sequences (grey and colour, known ground
truth) and writes video_sequences.md. --temporal-radii R adds the temporal
methods with a window of ±R frames, --taus T NL-Bayes over time with its later
steps' tau fixed at T, --grey runs the clip's luminance. Needs the `video` and `bench`
extras (PyAV, OpenCV).
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from speed import machine  # noqa: E402
from video import opencv_multi  # noqa: E402

SIGMAS = (10.0, 20.0, 40.0)
OPENCV_FACTORS = (0.6, 0.8, 1.0)
# Plot colours, one per method (RGB).
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def read_clip(path, count):
    import av

    frames = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return np.stack(frames).astype(np.float64)


def made_clip(height, count):
    """`count` frames of benchmarks/video.py's HD pan, 8-bit values in float64."""
    from video import pan_frame, pan_picture

    picture = pan_picture(height)
    return np.stack([np.rint(pan_frame(picture, t, height)) for t in range(count)])


def psnr(result, clean):
    return 10 * np.log10(255.0 ** 2 / np.mean((np.clip(result, 0, 255) - clean) ** 2))


def _cpu():
    """CPU seconds of this process and its finished children (V-BM3D runs as one)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(run):
    cpu, wall = _cpu(), time.perf_counter()
    out = run()
    wall = time.perf_counter() - wall
    return out, wall, (_cpu() - cpu) / wall


def methods(vbm3d, radii=(), taus=()):
    from dataclasses import replace

    import nlmeans

    def axis(frames):
        return -1 if frames.ndim == 4 else None  # RGB or grey frames

    def frame_by_frame(method):
        return lambda noisy, sigma, clean: np.stack([
            nlmeans.denoise(f, method=method, channel_axis=axis(noisy)) for f in noisy])

    def temporal(method, radius=None):
        return lambda noisy, sigma, clean: nlmeans.denoise(noisy, method=method, time_axis=0,
                                                           channel_axis=axis(noisy),
                                                           temporal_radius=radius)

    def around_the_pixel(method):
        def run(noisy, sigma, clean):
            settings = nlmeans.resolve(noisy, method=method, time_axis=0,
                                       channel_axis=axis(noisy))
            return nlmeans.denoise(noisy, settings=replace(settings, follow_motion=False))
        return run

    table = {"nlmeans frame by frame": frame_by_frame("nlmeans"),
             "nlmeans temporal": temporal("nlmeans"),
             # The windows around the pixel only, not following the frames' motion.
             "nlmeans temporal, no motion": around_the_pixel("nlmeans"),
             "nlbayes frame by frame": frame_by_frame("nlbayes"),
             "nlbayes temporal": temporal("nlbayes"),
             "nlbayes temporal, no motion": around_the_pixel("nlbayes")}
    def with_tau(tau, radius=None):
        def run(noisy, sigma, clean):
            settings = nlmeans.resolve(noisy, method="nlbayes", time_axis=0,
                                       channel_axis=axis(noisy), temporal_radius=radius)
            tau_here = tau * (settings.data_range / 255.0) ** 2  # 8-bit units to the image's
            return nlmeans.denoise(noisy, settings=replace(settings, passes=tuple(
                replace(step, tau=tau_here) if step.guided else step
                for step in settings.passes)))
        return run

    for radius in radii:  # the temporal methods again with a window of ±radius frames
        for method in ("nlmeans", "nlbayes"):
            table[f"{method} temporal ±{radius}"] = temporal(method, radius)
    for tau in taus:  # NL-Bayes's later steps with a fixed tau
        table[f"nlbayes temporal τ {tau:g}"] = with_tau(tau)
        for radius in radii:
            table[f"nlbayes temporal ±{radius} τ {tau:g}"] = with_tau(tau, radius)
    notes = []
    try:
        import cv2  # noqa: F401

        table["OpenCV Multi (best h)"] = opencv
    except ImportError:
        notes.append("OpenCV Multi skipped: pip install opencv-python-headless")
    if vbm3d and os.path.exists(vbm3d):
        table["V-BM3D"] = lambda noisy, sigma, clean: run_vbm3d(vbm3d, noisy, sigma)
    else:
        notes.append("V-BM3D skipped: no binary (--vbm3d PATH, or NLMEANS_VBM3D; the shared "
                     "anchors' build_vbm3d.sh builds it with cmake and libfftw3-dev)")
    return table, notes


def opencv(noisy, sigma, clean):
    """OpenCV's Multi on the 8-bit frames, at the h of the grid best for `clean`."""
    eight = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    outs = [opencv_multi(eight, f * sigma, noisy.ndim == 4).astype(np.float64)
            for f in OPENCV_FACTORS]
    return max(outs, key=lambda out: psnr(out, clean))


def run_vbm3d(binary, noisy, sigma):
    import tifffile

    folder = tempfile.mkdtemp()
    try:
        for i, frame in enumerate(noisy):
            tifffile.imwrite(os.path.join(folder, f"noisy_{i:03d}.tiff"),
                             frame.astype(np.float32))
        subprocess.run([binary, "-i", os.path.join(folder, "noisy_%03d.tiff"), "-f", "0",
                        "-l", str(len(noisy) - 1), "-sigma", str(sigma), "-add", "0",
                        "-verbose", "0", "-deno", os.path.join(folder, "out_%03d.tiff"),
                        "-bsic", os.path.join(folder, "basic_%03d.tiff")], check=True)
        return np.stack([tifffile.imread(os.path.join(folder, f"out_{i:03d}.tiff"))
                         for i in range(len(noisy))]).astype(np.float64)
    finally:
        shutil.rmtree(folder)


def end_dip(per_frame):
    """The worse of frames 1 and T-2 less the mean of its two neighbours."""
    if len(per_frame) < 4:
        return 0.0
    last = len(per_frame) - 2
    return min(per_frame[t] - (per_frame[t - 1] + per_frame[t + 1]) / 2 for t in (1, last))


def plot(series, path, title):
    """A line plot of per-frame PSNR per method, drawn into a PNG with NumPy."""
    import imageio.v3 as iio

    width, height, margin = 720, 400, 50
    canvas = np.full((height, width, 3), 255, np.uint8)
    values = np.concatenate([v for v in series.values()])
    low, high = np.floor(values.min() - 0.2), np.ceil(values.max() + 0.2)
    frames = len(next(iter(series.values())))

    def at(t, value):
        x = margin + (width - 2 * margin) * t / max(frames - 1, 1)
        y = height - margin - (height - 2 * margin) * (value - low) / (high - low)
        return x, y

    for level in np.arange(low, high + 1e-9, 0.5):  # grid lines every 0.5 dB
        canvas[int(round(at(0, level)[1])), margin:width - margin] = (225, 225, 225)
    canvas[margin:height - margin, margin] = 0
    canvas[height - margin, margin:width - margin] = 0
    for (name, per_frame), colour in zip(series.items(), COLOURS):
        points = [at(t, v) for t, v in enumerate(per_frame)]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            for s in np.linspace(0, 1, 200):
                x, y = int(round(x0 + s * (x1 - x0))), int(round(y0 + s * (y1 - y0)))
                canvas[y - 1:y + 2, x - 1:x + 2] = colour
    iio.imwrite(path, canvas)
    legend = ", ".join(f"{name}: rgb{c}" for name, c in zip(series, COLOURS))
    return (f"{title}; y from {low:.0f} to {high:.0f} dB (grid every 0.5 dB), x frames 0 to "
            f"{frames - 1}. Colours: {legend}.")


def run_methods(table, clean, sigmas, label=""):
    """Rows (method, sigma, PSNR, s/frame, CPU/wall, end dip) of every method on
    `clean` with white noise of each sigma added, and the per-frame PSNR curves
    at the middle sigma."""
    rows, curves = [], {}
    for sigma in sigmas:
        noisy = clean + sigma * np.random.default_rng(int(sigma)).standard_normal(clean.shape)
        rows.append(("noisy", sigma, psnr(noisy, clean), None, None, None))
        for name, run in table.items():
            out, wall, load = timed(lambda run=run: run(noisy, sigma, clean))
            per_frame = [psnr(o, c) for o, c in zip(out, clean)]
            rows.append((name, sigma, psnr(out, clean), wall / len(clean), load,
                         end_dip(per_frame)))
            if sigma == sigmas[len(sigmas) // 2]:
                curves[name] = np.array(per_frame)
            print(f"{label}sigma {sigma:g} {name}: {rows[-1][2]:.2f} dB, "
                  f"{rows[-1][3]:.2f} s/frame", flush=True)
    return rows, curves


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--clip", help="a video file")
    source.add_argument("--made", type=int, metavar="HEIGHT",
                        help="in place of a clip, benchmarks/video.py's HD pan (astronaut, "
                             "16:9, HEIGHT rows), e.g. 1080")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--grey", action="store_true",
                        help="the clip's luminance (scikit-image's rgb2gray) in place of RGB")
    parser.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS))
    parser.add_argument("--vbm3d", default=os.environ.get("NLMEANS_VBM3D"))
    parser.add_argument("--sequences", metavar="SET12_DIR",
                        help="also run the methods on benchmarks/video.py's sequences")
    parser.add_argument("--methods", nargs="+", metavar="NAME",
                        help="run only the methods whose names contain one of these words "
                             "(e.g. temporal V-BM3D)")
    parser.add_argument("--temporal-radii", type=int, nargs="+", default=[], metavar="R",
                        help="also the temporal methods with a window of R frames before and "
                             "after (rows 'nlmeans temporal ±R' and 'nlbayes temporal ±R'; the "
                             "default rows use the automatic radius)")
    parser.add_argument("--taus", type=float, nargs="+", default=[], metavar="T",
                        help="also NL-Bayes over time with its later steps' tau fixed at T "
                             "(8-bit units; automatically a fifth of sigma), at the automatic "
                             "radius and each --temporal-radii R (rows 'nlbayes temporal τ T', "
                             "'nlbayes temporal ±R τ T')")
    parser.add_argument("--name", default="video_clip",
                        help="the results' file names (NAME.md, NAME_frames.png, and with "
                             "--sequences NAME_sequences.md; video_sequences.md by default)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    import nlmeans

    clean = read_clip(args.clip, args.frames) if args.clip else made_clip(args.made, args.frames)
    if args.grey:
        from skimage.color import rgb2gray

        clean = rgb2gray(clean / 255.0) * 255.0
    table, notes = methods(args.vbm3d, args.temporal_radii, args.taus)
    if args.methods:
        table = {name: run for name, run in table.items()
                 if any(word in name for word in args.methods)}
    # Compile both methods' kernels, grey and colour, untimed.
    grey = clean[:3, :32, :32, 0] if clean.ndim == 4 else clean[:3, :32, :32]
    for frames in (np.stack([grey] * 3, axis=-1), grey):
        axis = -1 if frames.ndim == 4 else None
        nlmeans.denoise(frames, time_axis=0, channel_axis=axis, method="nlbayes")
        nlmeans.denoise(frames, time_axis=0, channel_axis=axis)
    rows, curves = run_methods(table, clean, args.sigmas)
    lines = write(args, clean, rows, curves, notes)
    if args.sequences:
        lines += write_sequences(args, table, notes)
    print("\n".join(lines))
    return rows


def write_sequences(args, table, notes):
    """Every method on video.py's made sequences (known ground truth): a table of
    PSNR per sequence and sigma, and one of seconds per frame, in
    video_sequences.md."""
    from video import sequences

    results = []
    for name, clean, _ in sequences(args.sequences):
        rows, _ = run_methods(table, clean, args.sigmas, label=f"{name}: ")
        results.append((name, clean, rows))
    methods_run = list(table)
    lines = ["# The methods on made sequences", "", f"Machine: {machine()}; `python "
             f"benchmarks/video_clip.py --clip ... --sequences SET12_DIR{_options(args)}`.", "",
             "benchmarks/video.py's sequences (10 frames of 256×256 panned, moving or still "
             "over Set12 and astronaut), white Gaussian noise added in float; PSNR in dB over "
             "all frames.", "",
             "| sequence | σ | noisy | " + " | ".join(methods_run) + " |",
             "|---" * (len(methods_run) + 3) + "|"]
    for name, clean, rows in results:
        for sigma in args.sigmas:
            mine = {r[0]: r for r in rows if r[1] == sigma}
            lines.append(f"| {name} | {sigma:g} | {mine['noisy'][2]:.2f} | " + " | ".join(
                f"{mine[m][2]:.2f}" for m in methods_run) + " |")
    lines += ["", "Seconds per frame, mean over σ (CPU/wall):", "",
              "| sequence | " + " | ".join(methods_run) + " |",
              "|---" * (len(methods_run) + 1) + "|"]
    for name, clean, rows in results:
        cells = []
        for m in methods_run:
            mine = [r for r in rows if r[0] == m]
            cells.append(f"{np.mean([r[3] for r in mine]):.2f} "
                         f"({np.mean([r[4] for r in mine]):.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [""] + [f"- {note}" for note in notes]
    name = "video_sequences" if args.name == "video_clip" else f"{args.name}_sequences"
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return [""] + lines


def _options(args):
    """The command line's options besides --clip and --frames, as given."""
    words = []
    if tuple(args.sigmas) != SIGMAS:
        words += ["--sigmas"] + [f"{s:g}" for s in args.sigmas]
    if args.grey:
        words += ["--grey"]
    if args.methods:
        words += ["--methods"] + args.methods
    if args.temporal_radii:
        words += ["--temporal-radii"] + [str(r) for r in args.temporal_radii]
    if args.taus:
        words += ["--taus"] + [f"{t:g}" for t in args.taus]
    if args.name != "video_clip":
        words += ["--name", args.name]
    return "".join(" " + shlex.quote(word) for word in words)


def write(args, clean, rows, curves, notes):
    name = os.path.basename(args.clip) if args.clip else f"made HD pan ({args.made} rows)"
    sigmas = args.sigmas
    source = f"--clip {name}" if args.clip else f"--made {args.made}"
    kind = "A real clip" if args.clip else "A made clip"
    colours = "RGB" if clean.ndim == 4 else "grey"
    lines = [f"# {kind}: {name}, {clean.shape[0]} frames of {clean.shape[2]}×{clean.shape[1]} "
             f"{colours}",
             "", f"Machine: {machine()}; `python "
             f"benchmarks/video_clip.py {source} --frames {args.frames}{_options(args)}`.",
             "",
             "PSNR in dB over all frames; seconds per frame (CPU/wall); end-frame dip in dB "
             "(frames 1 and T−2 against their neighbours).", "",
             "| method | " + " | ".join(f"σ {s:g}" for s in sigmas) + " | s/frame | CPU/wall |"
             " end dip |", "|---" * (len(sigmas) + 4) + "|"]
    for method in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == method]
        times = [r[3] for r in mine if r[3] is not None]
        cells = " | ".join(f"{r[2]:.2f}" for r in mine)
        extra = (f"{np.mean(times):.2f} | {np.mean([r[4] for r in mine]):.2f} | "
                 f"{min(r[5] for r in mine):+.2f}") if times else "— | — | —"
        lines.append(f"| {method} | {cells} | {extra} |")
    lines += [""] + [f"- {note}" for note in notes]
    os.makedirs(args.out, exist_ok=True)
    if curves:
        caption = plot(curves, os.path.join(args.out, f"{args.name}_frames.png"),
                       f"Per-frame PSNR at sigma {sigmas[len(sigmas) // 2]:g}")
        lines += ["", f"`{args.name}_frames.png`: {caption}"]
    with open(os.path.join(args.out, f"{args.name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


if __name__ == "__main__":
    main()
