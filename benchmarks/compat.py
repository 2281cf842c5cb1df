"""The drop-ins (nlmeans.compat) against the functions they replace, in one run.

scikit-image: ``denoise_nl_means`` (its default fast mode; with --slow also its
slow mode, timed once) against ``nlmeans.compat.skimage.denoise_nl_means`` with
the same arguments (whose result does not depend on fast_mode on these images), on
camera (512², grey) and astronaut (512², RGB) with white noise in [0, 1] units.
OpenCV: its four ``fastNlMeansDenoising*`` functions against
``nlmeans.compat.opencv``'s, 8-bit noise, same arguments.

Each timing is the median of --repeats runs after a warm-up (compilation and
kernel loading excluded), the two sides run in turns; the speed ratio is the
median over the rounds of the two runs' ratio, with its lowest and highest.
CPU/wall is printed beside each timing: a figure taken while something else
ran is void.

    python benchmarks/compat.py                  # both libraries, 5 rounds
    python benchmarks/compat.py --slow           # also scikit-image's slow mode (minutes)

Writes benchmarks/results/compat.md. Needs the `bench` extra (OpenCV).
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from speed import machine, ratio_stats, steal_note, steal_seconds, time_in_turns  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def psnr(result, clean, peak):
    mse = np.mean((np.asarray(result, np.float64) - clean) ** 2)
    return 10 * np.log10(peak ** 2 / mse)


def skimage_cases():
    """(name, clean, noisy, keyword arguments) in scikit-image's units."""
    from skimage import data, img_as_float

    rng = np.random.default_rng(0)
    camera = img_as_float(data.camera())
    astronaut = img_as_float(data.astronaut())
    cases = []
    for sigma in (0.05, 0.1):
        noisy = camera + sigma * rng.standard_normal(camera.shape)
        cases += [
            (f"grey σ {sigma}, defaults", camera, noisy, {}),
            (f"grey σ {sigma}, h 0.8σ, sigma σ", camera, noisy,
             {"h": 0.8 * sigma, "sigma": sigma}),
            (f"grey σ {sigma}, h 0.6σ, sigma σ, 5 / 6", camera, noisy,
             {"h": 0.6 * sigma, "sigma": sigma, "patch_size": 5, "patch_distance": 6})]
    noisy = astronaut + 0.08 * rng.standard_normal(astronaut.shape)
    cases.append(("RGB σ 0.08, h 0.8σ, sigma σ", astronaut, noisy,
                  {"h": 0.064, "sigma": 0.08, "channel_axis": -1}))
    return cases


def opencv_cases():
    """(name, clean, reference function, ours, positional arguments after the image)."""
    import cv2
    from skimage import data

    from nlmeans.compat import opencv as ours

    rng = np.random.default_rng(1)
    camera = data.camera().astype(np.float64)
    bgr = data.astronaut()[..., ::-1].astype(np.float64)

    def noisy(clean, sigma):
        return np.clip(np.rint(clean + sigma * rng.standard_normal(clean.shape)), 0, 255) \
            .astype(np.uint8)
    cases = []
    for sigma, h in ((10, 10.0), (20, 16.0)):
        cases.append((f"grey σ {sigma}, h {h:g}, 7 / 21", camera, cv2.fastNlMeansDenoising,
                      ours.fastNlMeansDenoising, (noisy(camera, sigma), None, h, 7, 21)))
    for sigma, h in ((10, 8.0), (20, 12.0)):
        cases.append((f"colour σ {sigma}, h = hColor = {h:g}", bgr,
                      cv2.fastNlMeansDenoisingColored, ours.fastNlMeansDenoisingColored,
                      (noisy(bgr, sigma), None, h, h, 7, 21)))
    frames = [noisy(camera[:256, 128:384], 20) for _ in range(5)]
    cases.append(("Multi, 5 frames of 256², σ 20, h 16", camera[:256, 128:384],
                  cv2.fastNlMeansDenoisingMulti, ours.fastNlMeansDenoisingMulti,
                  (frames, 2, 5, None, 16.0, 7, 21)))
    colour_frames = [noisy(bgr[:256, 128:384], 20) for _ in range(5)]
    cases.append(("ColoredMulti, 5 frames of 256², σ 20, h = hColor = 12", bgr[:256, 128:384],
                  cv2.fastNlMeansDenoisingColoredMulti, ours.fastNlMeansDenoisingColoredMulti,
                  (colour_frames, 2, 5, None, 12.0, 12.0, 7, 21)))
    return cases


def timing(walls, cpu_per_wall):
    return f"{statistics.median(walls):.3f} s ({cpu_per_wall:.2f})"


def skimage_table(repeats, slow):
    from skimage.restoration import denoise_nl_means as reference

    from nlmeans.compat.skimage import denoise_nl_means as ours

    header = ["case", "scikit-image fast: dB, s (CPU/wall)", "nlmeans.compat: dB, s (CPU/wall)",
              "speed ratio (min–max)"]
    if slow:
        header += ["scikit-image slow: dB, s (CPU/wall)", "nlmeans.compat − slow: dB",
                   "speed ratio to slow"]
    rows = []
    for name, clean, noisy, kwargs in skimage_cases():
        (ref_walls, ref_cpu, ref_out), (walls, cpu, out) = time_in_turns(
            [lambda: reference(noisy, fast_mode=True, **kwargs),
             lambda: ours(noisy, **kwargs)], repeats)
        ratio, low, high = ratio_stats(walls, ref_walls)
        ours_db = psnr(out, clean, 1.0)
        row = [name, f"{psnr(ref_out, clean, 1.0):.2f}, {timing(ref_walls, ref_cpu)}",
               f"{ours_db:.2f}, {timing(walls, cpu)}", f"{ratio:.1f}× ({low:.1f}–{high:.1f})"]
        if slow:  # scikit-image's slow mode once (seconds to a minute)
            (slow_walls, slow_cpu, slow_out), = time_in_turns(
                [lambda: reference(noisy, fast_mode=False, **kwargs)], 1)
            slow_db = psnr(slow_out, clean, 1.0)
            row += [f"{slow_db:.2f}, {slow_walls[0]:.1f} s ({slow_cpu:.2f})",
                    f"{ours_db - slow_db:+.2f}",
                    f"{slow_walls[0] / statistics.median(walls):.0f}×"]
        rows.append(row)
        print(" | ".join(row), flush=True)
    return header, rows


def opencv_table(repeats):
    header = ["case", "OpenCV: dB, s (CPU/wall)", "nlmeans.compat.opencv: dB, s (CPU/wall)",
              "speed ratio (min–max)"]
    rows = []
    for name, clean, reference, ours, args in opencv_cases():
        (ref_walls, ref_cpu, ref_out), (walls, cpu, out) = time_in_turns(
            [lambda: reference(*args), lambda: ours(*args)], repeats)
        ratio, low, high = ratio_stats(walls, ref_walls)
        row = [name, f"{psnr(ref_out, clean, 255.0):.2f}, {timing(ref_walls, ref_cpu)}",
               f"{psnr(out, clean, 255.0):.2f}, {timing(walls, cpu)}",
               f"{ratio:.1f}× ({low:.1f}–{high:.1f})"]
        rows.append(row)
        print(" | ".join(row), flush=True)
    return header, rows


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slow", action="store_true", help="also scikit-image's slow mode")
    parser.add_argument("--only", choices=["skimage", "opencv"])
    parser.add_argument("--out", default=os.path.join(RESULTS, "compat.md"))
    args = parser.parse_args(argv)
    import cv2
    import numba

    start_steal, start_wall = steal_seconds(), time.perf_counter()
    sections = [f"# The drop-ins against the libraries they replace\n\n{machine()}, "
                f"{numba.get_num_threads()} threads (OpenCV: {cv2.getNumThreads()}); "
                f"median of {args.repeats} rounds in turns; CPU/wall in brackets."]
    if args.only in (None, "skimage"):
        print("scikit-image", flush=True)
        sections.append("## scikit-image (camera / astronaut 512², values in [0, 1])\n\n"
                        + markdown(*skimage_table(args.repeats, args.slow)))
    if args.only in (None, "opencv"):
        print("OpenCV", flush=True)
        sections.append("## OpenCV (camera / astronaut, 8-bit)\n\n"
                        + markdown(*opencv_table(args.repeats)))
    sections[0] += " " + steal_note(start_steal, start_wall)
    print(sections[0].splitlines()[-1])
    with open(args.out, "w") as f:
        f.write("\n\n".join(sections) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
