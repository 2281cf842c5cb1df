"""Frames: the temporal window against frame by frame and OpenCV's Multi, in one run.

Clean sequences made here, with known ground truth (none of them used to choose
the automatic rules for frames, which were measured on coffee):

- pan (integer): a 256x256 window over Set12's 09.png moving (1, 2) pixels a frame;
- pan (fast): the same, (7, 12) pixels a frame (farther than the windows reach);
- pan (sub-pixel): over 10.png, (0.4, 1.3) pixels a frame (cubic interpolation);
- pan (colour): over scikit-image's astronaut, (0.7, 1.5) pixels a frame;
- moving object: a 64x64 crop of 12.png moving (3, 4) pixels a frame over a
  static crop of 11.png; its PSNR is also measured on the object's pixels
  alone (a ghost of the object's old places would show in the background's
  PSNR, a smeared object in the object's);
- moving object (fast): the same object moving (12, 16) pixels a frame, farther
  than NL-Bayes's later windows (6) and NL-means's (5 to 7) reach;
- static: a still crop of 08.png.

Ten frames each, 8-bit noise (Gaussian, rounded and clipped) at sigma 10, 20
and 40. Methods: nlmeans automatic frame by frame, nlmeans automatic with the
temporal window (``time_axis=0``), OpenCV's fastNlMeansDenoisingMulti
(temporalWindowSize 5, templateWindowSize 7, searchWindowSize 21; the colour
variant for colour) with the best h per sequence among sigma times 0.5 ... 1.3,
and nlmeans with OpenCV's windows and formula (7x7 patches, 21x21x5 window,
pixel-wise, weight 1 for the pixel itself), at its own best h from the same
grid: the speed comparison at equal window sizes. OpenCV denoises one frame a
call; the sequence is mirrored at its ends for it as nlmeans mirrors it.
Times are per sequence, with CPU time / wall time beside them.

A speed case at equal windows on 1280x720 grey frames follows (at 256x256
OpenCV's Multi runs on one thread: its rows are too few to share).

``--speed-only`` runs that case alone (video_720p.md).

``--hd N`` also writes a 1080p colour video of N frames (and one of 2N) and
runs ``nlmeans video`` on them in a child process: frames/s, and the child's
peak memory, which must not grow with the length; ``--hd-long M`` adds a video
of M frames (NL-means: run with the automatic colour pass's layout on 3x3
windows, the same memory in a fraction of the time). ``--hd-methods nlmeans
nlbayes`` runs both methods, ``--hd-heights 720 1080`` both sizes.

    python benchmarks/video.py --dataset ../shared/datasets/set12 --hd 8 --hd-long 120

Writes video.md into --out (default benchmarks/results). Needs the `bench`
extra (OpenCV) and the `video` extra for --hd.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from speed import machine  # noqa: E402

SIGMAS = (10.0, 20.0, 40.0)
FRAMES = 10
H_FACTORS = (0.5, 0.7, 0.9, 1.1, 1.3)


def _shifted(image, dy, dx, size, order=3):
    from scipy.ndimage import shift

    axes = (-dy, -dx) + (0,) * (image.ndim - 2)
    return np.clip(shift(image, axes, order=order, mode="reflect")[:size, :size], 0, 255)


def _pan(image, step, order=3, size=256):
    return np.stack([_shifted(image, step[0] * t, step[1] * t, size, order)
                     for t in range(FRAMES)])


def sequences(dataset):
    """[(name, clean float frames, object masks or None)]."""
    import imageio.v3 as iio
    from skimage import data

    def set12(number):
        return iio.imread(os.path.join(dataset, f"{number:02d}.png")).astype(np.float64)

    background, thing = set12(11)[100:356, 100:356], set12(12)[200:264, 200:264]

    def moving_object(move, start):
        frames, masks = [], []
        for t in range(FRAMES):
            frame, mask = background.copy(), np.zeros(background.shape, bool)
            y, x = start[0] + move[0] * t, start[1] + move[1] * t
            frame[y:y + 64, x:x + 64], mask[y:y + 64, x:x + 64] = thing, True
            frames.append(frame)
            masks.append(mask)
        return np.stack(frames), np.stack(masks)
    astronaut = data.astronaut()[..., :3].astype(np.float64)[40:, 120:]
    return [
        ("pan (integer)", _pan(set12(9), (1, 2), order=0), None),
        # Farther a frame than the automatic window's radius (5 to 7).
        ("pan (fast)", _pan(set12(9), (7, 12), order=0), None),
        ("pan (sub-pixel)", _pan(set12(10), (0.4, 1.3)), None),
        ("pan (colour)", _pan(astronaut, (0.7, 1.5)), None),
        ("moving object", *moving_object((3, 4), (40, 30))),
        # Farther a frame than the later NL-Bayes steps' window (6), over a still scene.
        ("moving object (fast)", *moving_object((12, 16), (10, 10))),
        ("static", np.stack([set12(8)[128:384, 128:384]] * FRAMES), None),
    ]


def noisy_frames(clean, sigma, seed):
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(clean + sigma * rng.standard_normal(clean.shape)), 0, 255) \
        .astype(np.uint8)


def psnr(result, clean, mask=None):
    error = (np.asarray(result, np.float64) - clean) ** 2
    if mask is not None:
        error = error[mask]
    return 10 * np.log10(255.0 ** 2 / error.mean())


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - w0
    return out, wall, (time.process_time() - c0) / wall


def opencv_multi(noisy, h, colour):
    """OpenCV's Multi over each frame, the sequence mirrored at its ends."""
    import cv2

    radius = 2
    index = [abs(i) if i < 0 else (2 * (len(noisy) - 1) - i if i >= len(noisy) else i)
             for i in range(-radius, len(noisy) + radius)]
    # OpenCV's colour images are BGR (its Lab conversion depends on the order).
    padded = [np.ascontiguousarray(noisy[i][..., ::-1] if colour else noisy[i]) for i in index]
    out = []
    for t in range(len(noisy)):
        if colour:
            out.append(cv2.fastNlMeansDenoisingColoredMulti(padded, t + radius, 5, None, h, h,
                                                            7, 21))
        else:
            out.append(cv2.fastNlMeansDenoisingMulti(padded, t + radius, 5, None, h, 7, 21))
    out = np.stack(out)
    return out[..., ::-1] if colour else out


def best_over_h(run, clean, sigma):
    """(result, h, wall, cpu/wall) of the h of the grid with the best PSNR."""
    best = None
    for factor in H_FACTORS:
        out, wall, load = timed(lambda: run(factor * sigma))
        score = psnr(out, clean)
        if best is None or score > best[0]:
            best = (score, out, factor * sigma, wall, load)
    return best[1:]


def run_case(name, clean, masks, sigma, seed):
    import nlmeans

    colour = clean.ndim == 4
    axis = -1 if colour else None
    noisy = noisy_frames(clean, sigma, seed)
    frame, frame_wall, frame_load = timed(
        lambda: np.stack([nlmeans.denoise(f, channel_axis=axis) for f in noisy]))
    temporal, temporal_wall, temporal_load = timed(
        lambda: nlmeans.denoise(noisy, time_axis=0, channel_axis=axis))
    cv, cv_h, cv_wall, cv_load = best_over_h(lambda h: opencv_multi(noisy, h, colour), clean,
                                             sigma)
    same, same_h, same_wall, same_load = best_over_h(
        lambda h: nlmeans.denoise(noisy, h, patch_radius=3, search_radius=10, temporal_radius=2,
                                  time_axis=0, channel_axis=axis), clean, sigma)
    row = dict(name=name, sigma=sigma, noisy=psnr(noisy, clean),
               frame=psnr(frame, clean), temporal=psnr(temporal, clean),
               opencv=psnr(cv, clean), opencv_h=cv_h, same=psnr(same, clean), same_h=same_h,
               frame_time=(frame_wall, frame_load), temporal_time=(temporal_wall, temporal_load),
               opencv_time=(cv_wall, cv_load), same_time=(same_wall, same_load))
    if masks is not None:
        full = masks if not colour else masks[..., None]
        row["object"] = {key: psnr(out, clean, full) for key, out in
                         (("frame", frame), ("temporal", temporal), ("opencv", cv))}
        row["background"] = {key: psnr(out, clean, ~full) for key, out in
                             (("frame", frame), ("temporal", temporal), ("opencv", cv))}
    return row


def speed_720p(repeats=2):
    """Wall seconds (CPU/wall) of OpenCV Multi and nlmeans at OpenCV's windows on
    10 grey 1280x720 frames (sigma 20, h 20): frames where OpenCV's own threads
    have rows enough to use both cores; and of nlmeans' automatic temporal mode
    (settings resolved once, untimed). Run in turns, `repeats` rounds after a
    warm-up; [(name, walls, cpu/wall)]."""
    from skimage import data, transform

    from speed import time_in_turns

    import nlmeans

    picture = transform.resize(data.astronaut()[..., 1].astype(np.float64), (760, 1320), order=1,
                               preserve_range=True)
    clean = np.stack([picture[t: t + 720, 2 * t: 2 * t + 1280] for t in range(FRAMES)])
    noisy = noisy_frames(clean, 20.0, seed=7)
    automatic = nlmeans.resolve(noisy, time_axis=0)
    runs = time_in_turns([lambda: opencv_multi(noisy, 20.0, False),
                          lambda: nlmeans.denoise(noisy, 20.0, patch_radius=3, search_radius=10,
                                                  temporal_radius=2, time_axis=0),
                          lambda: nlmeans.denoise(noisy, settings=automatic)], repeats)
    return [("OpenCV Multi", runs[0][0], runs[0][1]),
            ("nlmeans, OpenCV's windows", runs[1][0], runs[1][1]),
            ("nlmeans automatic (its own windows)", runs[2][0], runs[2][1])]


def speed_table():
    """Markdown lines of speed_720p's run."""
    speed = speed_720p()
    cv_walls = speed[0][1]
    lines = ["Equal windows on 10 grey frames of 1280×720 (σ 20, h 20; 7×7 patches, "
             "21×21×5 window), in turns:", "",
             "| method | seconds per round | CPU/wall | OpenCV / this |", "|---|---|---|---|"]
    for name, walls, load in speed:
        ratios = [c / w for c, w in zip(cv_walls, walls)]
        lines.append(f"| {name} | {' '.join(f'{w:.2f}' for w in walls)} | {load:.2f} | "
                     f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |")
    return lines


def write_speed(args):
    """--speed-only: the 720p case alone, to video_720p.md."""
    import nlmeans

    nlmeans.denoise(np.zeros((3, 16, 16), np.uint8) + 9, 10.0, time_axis=0)  # compile, untimed
    lines = ["# Frames: 720p at OpenCV's windows", "",
             f"Machine: {machine()}; `python benchmarks/video.py --dataset {args.dataset} "
             "--speed-only`.", ""] + speed_table()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "video_720p.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


# The automatic colour pass's layout (patch-wise, largest-weight centre,
# opponent colours, 7 frames) with 3x3 windows: the same memory in a fraction
# of the time, for a long video.
LAYOUT_ONLY = ["--h", "10", "--ds", "1", "--Ds", "1", "--temporal-radius", "3", "--aggregation",
               "patch", "--centre-weight", "max", "--chroma-weight", "0.5"]


def pan_width(height):
    """The HD pan's width: 16:9."""
    return height * 16 // 9


def pan_picture(height):
    """Scikit-image's astronaut, scaled for a 16:9 pan of `height` rows (pan_frame)."""
    from skimage import data, transform

    return transform.resize(data.astronaut(), (height + 120, pan_width(height) + 180), order=1,
                            preserve_range=True)


def pan_frame(picture, t, height):
    """Frame t of the HD pan over `picture`: one pixel a frame across, down a
    pixel a frame for 100 frames, then from the top again."""
    return picture[t % 100: t % 100 + height, t: t + pan_width(height)]


def hd_runs(frames, workdir, long=0, method="nlmeans", height=1080):
    """[(frames, options, seconds, frames/s, peak MB of the child)] for colour
    videos (`height` rows, 16:9) of `frames` and 2 x `frames` frames (automatic,
    `method`; none if 0), and of `long` frames (NL-means: with LAYOUT_ONLY)."""
    import av

    width = pan_width(height)
    picture = pan_picture(height)
    assert max(frames * 2, long) <= 180, "the pan runs off the picture"
    rng = np.random.default_rng(0)
    rows = []
    automatic = ["--method", method]
    # NL-Bayes takes no windows: its long run is automatic.
    runs = ([(frames, automatic), (2 * frames, automatic)] if frames else []) + (
        [(long, LAYOUT_ONLY if method == "nlmeans" else automatic)] if long else [])
    for count, options in runs:
        source = os.path.join(workdir, f"hd{count}.mkv")
        with av.open(source, "w") as container:
            stream = container.add_stream("ffv1", rate=25)
            stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
            for t in range(count):
                clean = pan_frame(picture, t, height)
                noisy = np.clip(np.rint(clean + 20 * rng.standard_normal(clean.shape)), 0, 255)
                frame = av.VideoFrame.from_ndarray(noisy.astype(np.uint8), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        output = os.path.join(workdir, f"hd{count}-out.mp4")
        started = time.perf_counter()
        # A fresh interpreter per run: ru_maxrss of the children is the largest child's.
        code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        done = subprocess.run([sys.executable, "-c", code, sys.executable, "-m",
                               "nlmeans_cli.main", "video", source, output, "-q"] + options,
                              check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_mb = int(done.stdout.split()[-1]) / 1024
        name = ("windows 3×3 (memory only)" if options is LAYOUT_ONLY
                else "automatic" if method == "nlmeans" else f"automatic, --method {method}")
        rows.append((count, name, seconds,
                     count / seconds, peak_mb))
        os.unlink(source)
        os.unlink(output)
    return rows


def table(rows):
    lines = ["| sequence | σ | noisy | frame by frame | **temporal** | gain | OpenCV Multi "
             "(best h) | temporal − OpenCV | nlmeans, OpenCV's windows (best h) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['sigma']:.0f} | {r['noisy']:.2f} | {r['frame']:.2f} | "
                     f"**{r['temporal']:.2f}** | {r['temporal'] - r['frame']:+.2f} | "
                     f"{r['opencv']:.2f} (h {r['opencv_h']:.0f}) | "
                     f"{r['temporal'] - r['opencv']:+.2f} | "
                     f"{r['same']:.2f} (h {r['same_h']:.0f}) |")
    return lines


def time_table(rows):
    lines = ["| sequence | σ | frame by frame | temporal | OpenCV Multi | nlmeans, OpenCV's "
             "windows | OpenCV / nlmeans at equal windows |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{w:.2f} ({c:.2f})" for w, c in (r["frame_time"], r["temporal_time"],
                                                     r["opencv_time"], r["same_time"])]
        lines.append(f"| {r['name']} | {r['sigma']:.0f} | " + " | ".join(cells)
                     + f" | {r['opencv_time'][0] / r['same_time'][0]:.2f}× |")
    return lines


def hd_table(args):
    with tempfile.TemporaryDirectory() as workdir:
        hd = [(height, row) for height in args.hd_heights for method in args.hd_methods
              for row in hd_runs(args.hd, workdir, args.hd_long, method, height)]
    lines = ["`nlmeans video` on colour video (σ 20 noise, H.264 out; peak memory of the "
             "process):", "", "| size | frames | options | seconds | frames/s | peak MB |",
             "|---|---|---|---|---|---|"]
    return lines + [f"| {h}p | {n} | {o} | {s:.1f} | {fps:.3f} | {mb:.0f} |"
                    for h, (n, o, s, fps, mb) in hd]


def write_hd(args):
    lines = ["# `nlmeans video` on HD colour", "", f"Machine: {machine()}; `python "
             f"benchmarks/video.py --dataset {args.dataset} --hd {args.hd} --hd-long "
             f"{args.hd_long} --hd-methods {' '.join(args.hd_methods)} --hd-heights "
             f"{' '.join(map(str, args.hd_heights))} --hd-only --hd-file {args.hd_file}`.", ""]
    lines += hd_table(args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, args.hd_file), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="folder of Set12 (01.png ... 12.png)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--hd", type=int, default=0,
                        help="also run nlmeans video on 1080p videos of this many frames and "
                             "twice as many")
    parser.add_argument("--hd-long", type=int, default=0,
                        help="and on one of this many frames (memory; NL-means with 3x3 "
                             "windows, for time)")
    parser.add_argument("--hd-methods", nargs="+", default=["nlmeans"],
                        choices=["nlmeans", "nlbayes"], help="methods of the 1080p runs")
    parser.add_argument("--hd-heights", nargs="+", type=int, default=[1080],
                        help="rows of the HD videos (16:9), e.g. 720 1080")
    parser.add_argument("--hd-file", default="video_hd.md", help="--hd-only's results file")
    parser.add_argument("--hd-only", action="store_true",
                        help="run only the 1080p videos (written to video_hd.md)")
    parser.add_argument("--speed-only", action="store_true",
                        help="run only the 720p case at equal windows (video_720p.md)")
    args = parser.parse_args()
    if args.hd_only:
        return write_hd(args)
    if args.speed_only:
        return write_speed(args)
    import nlmeans

    nlmeans.denoise(np.zeros((3, 16, 16), np.uint8) + 9, time_axis=0)  # compile, untimed
    rows = []
    for index, (name, clean, masks) in enumerate(sequences(args.dataset)):
        for sigma in SIGMAS:
            row = run_case(name, clean, masks, sigma, seed=index * 100 + int(sigma))
            rows.append(row)
            print(table([row])[-1], flush=True)
    lines = ["# Frames: temporal window against frame by frame and OpenCV Multi",
             "", f"Machine: {machine()}; `python benchmarks/video.py --dataset {args.dataset}"
             + (f" --hd {args.hd}" if args.hd else "") + "`.", "",
             f"PSNR in dB over {FRAMES} frames of 256×256.", ""] + table(rows)
    lines += ["", "Moving object: PSNR on the object's pixels / on the background.", "",
              "| σ | frame by frame | temporal | OpenCV Multi |", "|---|---|---|---|"]
    for r in rows:
        if "object" in r:
            lines.append(f"| {r['sigma']:.0f} | " + " | ".join(
                f"{r['object'][k]:.2f} / {r['background'][k]:.2f}"
                for k in ("frame", "temporal", "opencv")) + " |")
    lines += ["", "Seconds per sequence (CPU time / wall time):", ""] + time_table(rows)
    lines += [""] + speed_table()
    if args.hd:
        lines += [""] + hd_table(args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "video.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
