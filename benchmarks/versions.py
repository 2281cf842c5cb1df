"""This checkout against another version of nlmeans, on a made 720p colour
sequence, in turns: the speed of the frames' automatic mode across versions.

The other version is a checkout of another commit (``git worktree add DIR
COMMIT``); each run is a fresh process with that checkout's ``nlmeans`` first
on its path, so both run the same script on the same frames. The sequence:
four of scikit-image's colour images (astronaut, coffee, chelsea, rocket)
resized to 700 x 900 and tiled, a 1280 x 720 window moving --move pixels a
frame, white Gaussian noise of sigma 20 added in float (default_rng(20)),
float32 frames; ``nlmeans.denoise(frames, time_axis=0, channel_axis=-1)``,
automatic (or --method nlbayes). The versions run in turns (this, other,
this, other...) for --rounds rounds, after a warm-up run of each on small
frames (so that compiling is not timed); seconds per frame with CPU/wall.

    git worktree add /tmp/before COMMIT
    python benchmarks/versions.py --other /tmp/before --move 1 2 --move 7 12
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from speed import machine  # noqa: E402

RUN = r"""
import sys, time, numpy as np
print(__import__("nlmeans").__file__, file=sys.stderr)
from skimage import data, transform
import nlmeans
move, count, method = (int(sys.argv[1]), int(sys.argv[2])), int(sys.argv[3]), sys.argv[4]
if count == 0:  # warm-up: compile on small frames
    nlmeans.denoise((np.random.default_rng(0).random((4, 48, 48, 3)) * 255).astype(np.float32),
                    time_axis=0, channel_axis=-1, method=method)
    sys.exit()
canvas = np.zeros((1400, 1800, 3))
for i, image in enumerate([data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]):
    image = transform.resize(image[..., :3], (700, 900), anti_aliasing=True) * 255
    canvas[(i // 2) * 700:(i // 2 + 1) * 700, (i % 2) * 900:(i % 2 + 1) * 900] = image
frames = np.stack([canvas[20 + move[0] * t:740 + move[0] * t, 20 + move[1] * t:1300 + move[1] * t]
                   for t in range(count)])
noisy = (frames + np.random.default_rng(20).normal(0, 20, frames.shape)).astype(np.float32)
c0, t0 = time.process_time(), time.perf_counter()
out = nlmeans.denoise(noisy, time_axis=0, channel_axis=-1, method=method)
wall = time.perf_counter() - t0
psnr = 10 * np.log10(255 ** 2 / np.mean((np.clip(out, 0, 255) - frames) ** 2))
print(psnr, wall / count, (time.process_time() - c0) / wall)
"""


def run(checkout, move, count, method):
    # In the checkout: `python -c` puts the working directory first on the path.
    env = dict(os.environ, PYTHONPATH=checkout)
    done = subprocess.run([sys.executable, "-c", RUN, str(move[0]), str(move[1]), str(count),
                           method], capture_output=True, text=True, env=env, check=True,
                          cwd=checkout)
    return [float(v) for v in done.stdout.split()] if count else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="another checkout of nlmeans")
    parser.add_argument("--move", type=int, nargs=2, action="append", metavar=("DY", "DX"))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--method", default="nlmeans")
    parser.add_argument("--name", default="versions")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    checkouts = {"this checkout": ROOT, os.path.basename(os.path.normpath(args.other)):
                 os.path.abspath(args.other)}
    for checkout in checkouts.values():
        run(checkout, (0, 0), 0, args.method)
    lines = [f"# This checkout against {list(checkouts)[1]}: 720p colour frames, "
             f"{args.method} automatic", "",
             f"Machine: {machine()}; `python benchmarks/versions.py " + " ".join(sys.argv[1:])
             + "`.", "",
             f"{args.frames} frames of 1280×720 colour, σ 20; in turns, {args.rounds} rounds; "
             "seconds per frame (CPU/wall).", "",
             "| move a frame | version | PSNR | s/frame per round | CPU/wall | time / this |",
             "|---|---|---|---|---|---|"]
    for move in args.move or [(1, 2)]:
        times = {name: [] for name in checkouts}
        for _ in range(args.rounds):
            for name, checkout in checkouts.items():
                times[name].append(run(checkout, move, args.frames, args.method))
                print(move, name, times[name][-1], flush=True)
        mine = sum(t[1] for t in times["this checkout"]) / args.rounds
        for name, results in times.items():
            mean = sum(t[1] for t in results) / args.rounds
            lines.append(f"| {tuple(move)} | {name} | {results[0][0]:.2f} | "
                         + " ".join(f"{t[1]:.2f}" for t in results)
                         + f" | {results[-1][2]:.2f} | {mean / mine:.2f} |")
    with open(os.path.join(args.out, f"{args.name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
