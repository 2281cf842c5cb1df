"""NL-Bayes: the two steps' parameters from sigma, and running them.

Non-Local Bayes (Lebrun, Buades and Morel, "A nonlocal Bayesian image
denoising algorithm", SIAM J. Imaging Sciences 2013; "Implementation of the
Non-Local Bayes image denoising algorithm", IPOL 2013) models the patches
similar to a reference patch as Gaussian, with the mean and covariance of the
group they form, and estimates each by its conditional mean given the noisy
patch (a Wiener filter per group):

- step 1 groups the noisy patches most similar to each reference; with C the
  group's covariance and m its mean, a patch x becomes
  m + (C - beta sigma^2 I) C^-1 (x - m), channel by channel (on correlated
  noise with the gains clamped to [0, 1] in C's eigenbasis, see bayes_steps);
- step 2 groups on the step-1 result (the basic estimate), takes the
  covariance C_b from the basic estimate's patches, and estimates the noisy
  patches again, m + C_b (C_b + beta sigma^2 I)^-1 (x - m), channels together
  (we repeat it once more where that measured better, see bayes_steps);
- a group whose variance is below gamma sigma^2 (gamma = 1.05) is flat: every
  value becomes the group's mean;
- every estimated patch is added to every pixel it covers and the sums are
  divided by the counts; references are taken every `stride` positions, and
  patches already estimated (and their neighbours) are not taken as references
  again.

The parameters are the paper's (its IPOL implementation's), for 8-bit
intensities, with sigma measured in 8-bit units of the image's data range.
Colour images are processed in opponent colours (an orthonormal transform,
so white noise keeps its level in every channel; step 1 groups on brightness).
3-D volumes use cubic patches of 3 voxels a side (the paper has no rule for
them; ours is below).

Results are deterministic: independent of the number of threads. NL-Bayes runs
a whole image in memory (its paste trick makes a result depend on the tiles
of references around it, not only on a halo of pixels).

Frames (a sequence, time first) run the image steps over a spatio-temporal
window, with 2-D patches (grey: three frames deep, below):
the frame's own window and the same in the 4 frames before and after it
(fewer for large frames, below; the window shifts inwards at the sequence's
ends, so no frame is met twice), and groups three times the image's (twice in
the later steps, below). The paste trick marks a member's neighbours only
along the axes its patch spans (nlmeans.kernels.bayes): a 2-D patch's
neighbour in the next frame shares none of its pixels and stays a reference;
marking it had left the last frame 0.7 dB below the one before on the dev
clip (now +0.4 to +0.7 dB over all its frames, for 1.4 to 1.5 times the time).
Measured on the real dev clip (640x272 colour, 8 frames, sigma 20): NL-Bayes
frame by frame 40.90 dB, over space and time 41.22 with the image's groups,
41.46 / 41.43 with twice / three times them (a window of 1 frame each side).
Wider windows keep those groups, three times the image's in step 1 and twice
in the later steps: groups that grew with the window (2 r + 1 and r + 1 times)
measured 0.4 to 1.2 dB lower at radius 4 on the made sequences of
benchmarks/video.py (0.1 to 0.5 at radius 2), and level on the dev clip.
The later steps' tau is a fifth of sigma (8-bit units), not the paper's 16:
a group takes, beyond its n closest, every patch whose pilot is within tau of
the reference's. In frames a patch's copies in the other frames have nearly
the same pilot (it came from the same group), and 16, made for images, admits
neighbours that differ as well. The result's error, and with it the
distance of two copies' pilots, grows about as sigma (mean squared error
about 0.2 sigma on the clip, sigma on the made sequences, 8-bit units), so
tau scales with it. At radius 4, against tau 16: the dev clip (16 frames)
+0.98 / +0.59 / +0.16 dB at sigma 10 / 20 / 40, the 15 made sequences +0.07
to +0.38 (tau 4 at every sigma: the clip -0.31 / 0 / -0.06, the sequences
-0.08 to +0.20). With tau 16 the window of 4 frames each side had lost 0.47
/ 0.24 dB on the clip at sigma 10 / 20; with the new tau it is level with 2
frames each side on the clip and -0.02 to +1.03 dB above it on the made
sequences (the still and moving scenes most), and +0.51 / +0.35 / +0.24 dB
over the former default (1 frame each side, tau 16) on the clip. So the
window spans 4 frames each side, V-BM3D's, but where a block of frames
(bounded in bytes, below) could not hold twice its context: the context grows
with the radius, and at 1080p colour 4 frames each side would compute 9
frames for each frame kept (radius 3 at 720p colour, 2 at 1080p grey, 1 at
1080p colour).
From sigma 30 on (8-bit units) step 1's window spans one frame each side
whatever the window: step 1 groups noisy patches, and in strong noise a far
frame's candidates add little that the near frames' lack, while the later
steps, which group on the pilot, keep the wide window. Measured with the
window of 4 (step 1 at 1 against 4): the dev clip +0.09 / +0.10 dB at sigma
30 / 40, the made sequences -0.11 to +0.18, the same on average (+0.02), for
0.73 to 0.84 of the time. Below sigma 30 step 1 keeps the wide window: at
sigma 10 and 20 the near one lost up to 0.16 dB on the still and moving
scenes. That near window holds about the image window's positions, spread
over its three frames (its width over sqrt(3), made odd: 45 -> 27 pixels in
grey at sigma 30 to 79, 37 -> 21 in colour at sigma 30 to 49): a window of the
image's width in each frame held three times the candidates the image rule
finds enough, and the neighbouring frames' copies of a patch match it better
than the far positions of its own frame. Measured against the image's width
(sigma estimated, 8-bit noise): the clip in grey +0.12 / -0.06 dB at sigma 30 /
40, the made grey sequences -0.07 to +0.21 (the still scene -0.07 / -0.13), at
0.82 to 0.89 of the time; the clip in colour +0.00 / +0.05, the colour pan
+0.07 / +0.07, a 176 x 144 crop of the clip -0.05 / -0.09, at 0.80 to 1.00 of
the time (small frames get more tiles, so both threads work: CPU/wall 1.66 ->
1.94 on the crop). On average the same PSNR (+0.03 dB).
Steps 2 and 3 group on a pilot, in which a patch's copies in the other frames
stand out from its noise: there groups twice the image's measured better
than three times on the dev clip (+0.00, +0.03, +0.03 dB at sigma 10, 20,
40) and on the 15 made sequences of benchmarks/video.py (+0.04 to +0.25 dB,
grey and colour, sigma 10 to 40), and a third less time; step 1,
on noisy patches, keeps three times (the image's groups in the later steps
lost 0.15 dB on the clip).
Grey frames repeat step 2 at every noise level (grey images only from sigma
20 on): the repeat's covariances come from the step-2 result, which the groups
over frames make better than an image's. Measured at sigma 10 and 15, 8 frames,
8-bit noise: the clip in grey +0.42 / +0.31 dB, the made grey sequences +0.09
to +0.30 dB, for about 40 % more time.
Grey frames' patches are three frames deep in steps 1 and 2 (patches that span
frames, as VNLB's do), so that a patch matches on its motion as well as on its
look. Measured on the clip in grey and the made grey sequences (sigma 10 to
40): deep in every step +0.4 to +2.1 dB over 2-D patches, deep but in the
repeat +0.3 to +1.1 dB, for 1.7 to 2.8 times the time. Below sigma 30 (8-bit
units) the repeat's patches are deep too: against 2-D ones, with the window of
4 frames, the made grey sequences +0.4 to +0.6 dB at sigma 10 and 20 (level
with V-BM3D or above on all of them), the clip in grey level, for 1.02 to 1.3
times the time. From sigma 30 on the repeat takes step 1's 7 x 7 patches, which
deep ones (planes 5 x 5 at most) would shrink: deep, the clip in grey lost 0.24
dB at sigma 40 (the made sequences -0.01 to +0.11). Patches named by their
first frame cover the first and last frames a third as often as the others,
and references taken in raster order leave the last frames to the groups of
earlier frames' references (the paste trick marks their patches): the last
frame of the clip in grey came out 1.2 to 1.9 dB below the one before (V-BM3D's
0.7 to 0.9). Steps with deep patches take their references ends first along
time (the first frame, the last, the second, the second-to-last...), so that
both ends get groups centred on their own patches: the last frame's dip 0.8 to
1.0 dB, the grey sequences' PSNR -0.14 to +0.08 dB (-0.02 on average). Colour
frames' 2-D patches keep raster order, where their ends were no worse than
V-BM3D's (0.3 to 0.7 dB below the next frame): ends first measured -0.03 to
-0.14 dB on the clip and the colour pan. A pass of 2-D groups of
the end frames' own, added to their sums only, took the dip to 0.2 to 0.7 dB
but cost 12 to 40 % more time and up to 0.13 dB on the made sequences (their
2-D estimates outnumber the deep ones there). Grey frames' later steps take
at most four times their group where more patches lie within tau (the
closest; FRAME_GROUP_CAP), and from sigma 20 on that times (sigma / 20)^2 (a
mean's noise variance falls as one over its members): on a step-2 pilot the
flat parts of a frame put many patches within tau of each other, and their
groups took most of the time (the repeat 6.2 of the clip's 14.5 s at sigma
20, step 2 with the same parameters on the noisier basic estimate 3.6). With
the cap: the clip in grey +0.23 / +0.17 / +0.33 / +0.07 dB at sigma 10 / 20 /
30 / 40, at 0.96 / 0.77 / 1.06 / 0.86 of the time, the made grey sequences
+0.02 to +0.17 dB (caps of 3 and 6 times measured within 0.08 dB of 4 at
sigma 10 and 20; at sigma 40 a fixed 4 times lost 0.65 dB on the clip, 6
times 0.28, 10 and 20 times -0.01 and +0.07). Colour frames have none: four
times lost 0.11 / 0.37 dB on the clip at sigma 10 / 20.
Colour frames keep 2-D
patches: three frames deep measured +0.25 to +0.7 dB on the clip, at 2.6 to
4.6 times the time (225 values a patch). The frames' context grows by the
patches' two more frames. Deep patches have 5 x 5 planes at most (75 values),
where grey images take 7 x 7 patches (49) in strong noise: 3 x 7 x 7 (147 values)
in step 1 measured 0.07 dB better on average (-0.06 to +0.24 dB) on the made
grey sequences and the clip in grey at sigma 30 and 40, for 1.3 to 2 times the time.
The frames run in blocks (up to 16 frames, fewer for large frames), each with
the frames its window reaches as context on either side, so that memory is
bounded and a streamed run (:mod:`nlmeans.runners.frames`) gives the same
frames as one call. On the same clip (12 frames) blocks of 4 measured 41.58
dB against 41.59 for one block of all; blocks of 1, 41.42, at 2.5 times the
time.
Frames whose content moves add to each reference's candidates a window of
half the radius around where its 32 x 32 block went in each other frame
(:mod:`nlmeans.methods.block_moves`: each block's own move where one fits
clearly better than the frame's pan). Measured against the pan's windows
(sigma 10 / 20 / 40): a 64 x 64 object moving (12, 16) pixels a frame over a
still scene +0.25 / +0.22 / +0.15 dB, one moving (3, 4) +0.31 / +0.18 /
+0.11, the dev clip +0.06 / +0.05 / +0.05, the pans within 0.04.
"""

import logging
import threading
from dataclasses import replace

import numpy as np

from nlmeans.kernels.constants import moved_radius
from nlmeans.model.colour import OpponentColours
from nlmeans.model.covariance import patch_covariance
from nlmeans.methods.block_moves import BLOCK, frame_moves
from nlmeans.model.motion import follows_motion, frame_positions, grey_frame
from nlmeans.model.settings import BayesStep

# The paper's flat-area threshold, a multiple of sigma^2.
FLAT_AREA = 1.05
# Step 2 also takes patches whose mean squared difference (8-bit units) is
# below this.
TAU_8BIT = 16.0


# Grey images from this noise level (8-bit units) on, and colour images, get
# step 2 a second time, guided by its own first result (see bayes_steps).
THIRD_STEP_FROM = 20.0
# Frames: the frames before and after a frame that its search window spans, at
# most (V-BM3D's window, and VNLB's); fewer where a block of large frames could
# not hold twice its context (see frame_steps).
FRAME_TEMPORAL_RADIUS = 4
# Frames: the later steps' tau, in 8-bit units per unit of sigma (8-bit), in
# place of the image's TAU_8BIT (see the module docstring).
FRAME_TAU_PER_SIGMA = 0.2
# Frames: from this noise level (8-bit units) on, step 1's window spans one frame
# each side whatever the window (see the module docstring).
FRAME_NEAR_STEP_1_FROM = 30.0
# Frames: step 1's groups and the later steps', in multiples of the image's,
# whatever the temporal radius (see the module docstring).
FRAME_GROUPS = (3, 2)
# Grey frames: below this noise level (8-bit units) the repeated step's patches
# are three frames deep too; from it on they are 2-D, step 1's 7 x 7 (see the
# module docstring).
FRAME_DEEP_REPEAT_BELOW = 30.0
# Grey frames: the later steps' groups take at most this many times their size
# (times (sigma / 20)^2 from sigma 20 on) where more patches lie within tau (see
# the module docstring).
FRAME_GROUP_CAP = 4
# The in-plane radius of grey frames' deep patches, at most (see the module docstring).
DEEP_PLANE_RADIUS = 2
# Frames: the bytes a block's frames, with their context, may take, at 30 bytes
# per value: the values and their opponent colours, a step's guide and result
# (float32), its float64 numerator and per-pixel weight (as
# nlmeans.planning.memory.check_bayes_fits counts them); measured 23 to 24 for a
# step of colour frames, plus the caller's float32 stack and 8-bit frames. 1 GiB
# keeps `nlmeans video` on 1080p colour within 1.5 GB (5 frames at a time).
FRAME_BLOCK_BYTES = 1 << 30
MAX_FRAME_BLOCK = 16
_BYTES_PER_VALUE = 30
# Frames whose content moves: where a colour of the tiles' checkerboard holds
# fewer than LANE_TILES tiles (the moves make the tiles wide: a 256 x 256 pan
# of (7, 12) pixels a frame ran on 1.06 cores of 2) and the frames hold at most
# LANE_POSITIONS positions, the tiles run in LANES lanes instead, each with
# its own sums (LANES - 1 more copies of the sums: at most 200 MB for colour),
# added at the end: tile i in lane i % LANES, a lane's tiles one after the
# other, so that the sums are the same whatever the number of threads. Lanes
# never add to the same sums at once, so their tiles need no reach (_tile_grid).
LANE_TILES = 4
LANE_POSITIONS = 1 << 21
LANES = 4


def bayes_steps(sigma, scale, channels, n_spatial, white=True):
    """The steps for noise `sigma` in an image of data range `scale`: step 1,
    step 2, and for colour and for grey from sigma 20 (8-bit units) on, step 2
    again, its groups and covariances taken from the first step 2's result.

    `white`: the noise is white (or taken as white). Otherwise (camera noise,
    correlated by demosaicing and JPEG) sigma is its level at the scale where it
    decorrelates, and the noise is far weaker at a patch's high frequencies:
    most of a group's covariance eigenvalues then lie below beta sigma^2, where
    step 1's gains (lambda - beta sigma^2) / lambda turn negative and large, and
    flip and amplify the patches' deviations (saturated, wrong-colour pixels;
    step 1 alone measured 19.5 dB on real photos whose noisy shots have 35.7).
    There step 1's gains are clamped to [0, 1] (``BayesStep.clamp``): the
    estimate of the clean covariance (C - beta sigma^2 I) made positive
    semi-definite in C's eigenbasis. With white noise the paper's formula stays:
    clamped, step 1 alone measured +0.37 dB on Set12 at sigma 25, but the
    final result -0.14 dB (-0.36, -0.17 at sigma 15, 50), as step 2's
    covariances, taken from a pilot with those directions zeroed, then shrink
    fine detail more.

    The repeated step is ours, not the paper's: its pilot is better than the
    basic estimate, so its covariances are nearer the clean image's. It takes
    step 1's patch size (the paper's patches for strong noise: larger than
    step 2's from sigma 30 on in grey, 20 in colour). Measured on
    scikit-image's photographs (256² crops of ten grey and four colour ones,
    not the benchmark's images), grey, step 2 repeated as it is: -0.03,
    -0.01 dB at sigma 10, 15 (hence none there); +0.07, +0.09, +0.09, +0.09
    dB at 20, 25, 35, 50, for a third more time; with step 1's patches a
    further +0.06, +0.07, +0.16 dB at 30, 35, 50. Colour, repeated as it is:
    +0.17, +0.01, +0.10 dB at sigma 15, 25, 50; with step 1's patches a
    further +0.16 and +0.11 dB at 25 and 50.

    The repeat also leaves out the flat-area rule. The rule guards against a
    covariance estimated from noisy patches (it decides "flat" from the noisy
    group's variance, a noisy figure itself, and flattens faint texture with
    it); the repeat's covariances come from the step-2 result, whose own
    Wiener filter already shrinks a flat group to its mean. Measured on the
    same photographs: grey +0.11, +0.12, +0.09, +0.17 dB at sigma 20, 25, 35,
    50; colour +0.09, +0.10, +0.46 dB at 15, 25, 50.
    """
    s8 = 255.0 * sigma / scale  # the paper's rules are in 8-bit units
    tau = TAU_8BIT * (scale / 255.0) ** 2
    if n_spatial == 3:
        first, second = _volume_steps(sigma, s8, channels, tau)
        return replace(first, clamp=not white), second
    colour = channels > 1
    if colour:
        k1 = 3 if s8 < 20 else 5 if s8 < 50 else 7
        k2 = 3 if s8 < 50 else 5 if s8 < 70 else 7
        n1, n2 = 3 * k1 * k1, 3 * k2 * k2
        beta1, beta2 = 1.0, 1.2 if s8 < 50 else 1.0
    else:
        k1, k2 = (5 if s8 < 30 else 7), 5
        n1 = 35 if s8 < 10 else 45 if s8 < 30 else 90 if s8 < 80 else 100
        n2 = 15 if s8 < 20 else 25 if s8 < 40 else 30 if s8 < 80 else 45
        beta1 = 1.1 if s8 < 15 else 1.0 if s8 < 70 else 0.9
        beta2 = 1.1 if s8 < 15 else 1.0 if s8 < 35 else 0.9
    first = replace(_step(k1, n1, sigma, beta1, 0.0, False, 2), clamp=not white)
    second = _step(k2, n2, sigma, beta2, tau, True, 2)
    if colour or s8 >= THIRD_STEP_FROM:
        return first, second, _repeated(first, second)
    return first, second


def _repeated(first, second):
    """Step 2 again: step 1's patches (larger than step 2's in strong noise) and
    references, and no flat-area rule (its covariances come from a good pilot)."""
    return replace(second, patch_radius=first.patch_radius, stride=first.stride,
                   flat_area=0.0)


def frame_steps(sigma, scale, channels, white=True, temporal_radius=None, frame_values=None):
    """The image steps for frames: the search window spanning `temporal_radius`
    frames before and after (by default the widest up to FRAME_TEMPORAL_RADIUS
    whose blocks of frames of `frame_values` values hold at least twice their
    context, so that context costs at most as much again as the block: 4 up to
    720p grey, 3 at 720p colour, 2 at 1080p grey, 1 at 1080p colour); step 1's
    groups FRAME_GROUPS[0] times the image's, the later steps' FRAME_GROUPS[1]
    times, whatever the radius, and their tau FRAME_TAU_PER_SIGMA sigma; step
    1's window one frame each side from sigma FRAME_NEAR_STEP_1_FROM on, as wide
    in each as the image's over sqrt(3) (:func:`_spread`); step 2 repeated at
    every noise level; patches 2-D, or for grey frames three frames
    deep (in the repeat below sigma FRAME_DEEP_REPEAT_BELOW only), and their
    later steps' groups capped where more patches lie within tau
    (:func:`_group_cap`; see the module docstring)."""
    if temporal_radius is None:
        for radius in range(FRAME_TEMPORAL_RADIUS, 0, -1):
            steps = frame_steps(sigma, scale, channels, white, radius)
            if radius == 1 or frame_values is None or \
                    _block_frames(steps, frame_values) >= 2 * _context_frames(steps):
                return steps
    steps = bayes_steps(sigma, scale, channels, 2, white)
    if len(steps) == 2:
        # Frames repeat step 2 at every noise level: their pilot, from groups that span
        # frames, is better than an image's (see the module docstring).
        steps += (_repeated(*steps),)
    # Step 1 groups noisy patches, the later steps group on a pilot, whose matches in
    # the other frames are nearer copies: groups of three and two times the image's.
    # A wider window gives the groups more candidates, not more members (see the
    # module docstring).
    # Grey frames: patches three frames deep; in the repeat only in weak noise, where
    # its patches are 5 x 5 (see the module docstring).
    # Their planes are 5 x 5 at most: 75 values, more than the 7 x 7 patches (49) that
    # images take in strong noise to match reliably (see the module docstring).
    # In strong noise step 1 searches the neighbouring frames only (the same PSNR on
    # average, a fifth less time; see the module docstring).
    deep = channels == 1
    s8 = 255.0 * sigma / scale  # the rules are in 8-bit units
    # FRAME_TAU_PER_SIGMA * sigma in 8-bit units, times (scale / 255)^2 in the image's.
    tau = FRAME_TAU_PER_SIGMA * sigma * scale / 255.0
    deep_steps = len(steps) if s8 < FRAME_DEEP_REPEAT_BELOW else len(steps) - 1
    groups = [step.group_size * FRAME_GROUPS[min(i, 1)] for i, step in enumerate(steps)]
    first = (temporal_radius,) + steps[0].search_radius
    if s8 >= FRAME_NEAR_STEP_1_FROM:
        # Step 1's near window, holding about the image window's candidates spread
        # over its frames (see the module docstring).
        near = min(temporal_radius, 1)
        first = (near,) + _spread(steps[0].search_radius, 2 * near + 1)
    return tuple(replace(step, patch_radius=_deep(step.patch_radius) if deep and i < deep_steps
                         else (0,) + step.patch_radius,
                         search_radius=first if i == 0 else
                         (temporal_radius,) + step.search_radius,
                         group_size=group, tau=tau if step.guided else 0.0,
                         group_cap=_group_cap(group, s8) if step.guided and deep else 0)
                 for i, (step, group) in enumerate(zip(steps, groups)))


def _spread(radii, frames):
    """The in-frame radii of a window over `frames` frames that holds about as
    many positions as the image's window of `radii`: its width over
    sqrt(frames), made odd."""
    return tuple(int(round((2 * r + 1) / np.sqrt(frames))) // 2 for r in radii)


def _group_cap(group, s8):
    """FRAME_GROUP_CAP times the group, and from sigma 20 (`s8`, 8-bit units) on
    that times (sigma / 20)^2: a mean's noise variance falls as one over its
    members, so a group needs about sigma^2 times as many to average it away."""
    return int(FRAME_GROUP_CAP * group * max(1.0, (s8 / 20.0) ** 2))


def _deep(patch_radius):
    """A patch three frames deep, its planes 5 x 5 at most."""
    return (1,) + tuple(min(r, DEEP_PLANE_RADIUS) for r in patch_radius)


def frame_context(settings):
    """Frames of context on either side of a block: those that the windows of
    the patches over its frames reach."""
    return _context_frames(settings.passes)


def frame_block(settings, frame_values):
    """Frames per block for frames of `frame_values` values (channels included):
    as many as FRAME_BLOCK_BYTES holds with the context, 1 to MAX_FRAME_BLOCK."""
    return _block_frames(settings.passes, frame_values)


def _context_frames(steps):
    return max(step.search_radius[0] + 2 * step.patch_radius[0] for step in steps)


def _block_frames(steps, frame_values):
    fit = (FRAME_BLOCK_BYTES // (_BYTES_PER_VALUE * frame_values)
           - 2 * _context_frames(steps))
    return int(max(1, min(MAX_FRAME_BLOCK, fit)))


def frame_blocks(length, block, context):
    """(start, stop, first, last) of each block of a sequence of `length` frames:
    its frames [start, stop) and the frames [first, last) that it runs on."""
    return [block_bounds(start, block, context, length) for start in range(0, length, block)]


def block_bounds(start, block, context, length):
    """(start, stop, first, last) of the block starting at `start` (see
    frame_blocks); a stream gives as `length` the frames read so far, which
    holds the block's context or the whole sequence."""
    return (start, min(start + block, length), max(0, start - context),
            min(length, start + block + context))


def run_bayes_frames(values, settings, bounds, rounded=False, progress=None):
    """NL-Bayes of the (C, T, Y, X) frames `values`, block by block (see
    :func:`frame_blocks`); as :func:`run_bayes` otherwise, `progress` counting
    the blocks."""
    length = values.shape[1]
    blocks = frame_blocks(length, frame_block(settings, values[:, 0].size),
                          frame_context(settings))
    out = np.empty(values.shape, settings.work_dtype)
    for done, (start, stop, first, last) in enumerate(blocks, start=1):
        result = run_bayes(values[:, first:last], settings, bounds, rounded)
        out[:, start:stop] = result[:, start - first:stop - first]
        if progress is not None:
            progress(done, len(blocks))
    return out


def _step(width, group_size, sigma, beta, tau, guided, n_spatial):
    """A step whose search window is group_size / 2 positions wide (made odd),
    as in the paper, with references every width // 2 positions."""
    window = group_size // 2 + (1 - (group_size // 2) % 2)
    return BayesStep((width // 2,) * n_spatial, (window // 2,) * n_spatial, group_size,
                     float(sigma), beta, FLAT_AREA, float(tau), max(1, width // 2), guided)


def _volume_steps(sigma, s8, channels, tau):
    """3-D: 3x3x3 patches; groups of twice their values (a covariance needs more
    patches than dimensions), from a 7^3 window in step 1 and 5^3 in step 2."""
    size = 27 * channels
    beta1 = 1.1 if s8 < 15 else 1.0
    first = BayesStep((1, 1, 1), (3, 3, 3), 2 * size, float(sigma), beta1, FLAT_AREA, 0.0, 1)
    second = BayesStep((1, 1, 1), (2, 2, 2), size, float(sigma), 1.0, FLAT_AREA, tau, 1,
                       guided=True)
    return first, second


def tile_shape(step, spatial_shape, moves=(0, 0)):
    """Tiles of reference positions, per axis (z, y, x), wide enough that tiles
    two apart never touch the same pixels: a group lies within 2 s of its
    reference (s the search radius; the window shifts inwards at the borders),
    so a tile's patches cover from 2 s before its first position to 2 s + k
    after its last (k the patch width), and 4 s + 2 k positions or more keep
    the next tile but one clear. Frames whose content moves by up to `moves`
    (y, x) between the planes of a window: the moved windows (half the radius,
    :func:`moved_radii`) reach up to a move and twice their radius. At least
    64 (32 in 3-D) for work enough per tile. The paste trick's marks are kept
    per tile, so the tiles are part of the method's definition (the tests'
    reference takes them from here)."""
    radii = _three(step.patch_radius), _three(step.search_radius)
    half = (0,) + moved_radii(step)
    reach = [max(2 * s, m + 2 * h) for s, m, h in zip(radii[1], (0,) + tuple(moves), half)]
    base = 64 if len(step.patch_radius) == 2 else 32
    return tuple(max(base, 2 * r + 2 * (2 * p + 1)) if n > 1 else 1
                 for p, r, n in zip(radii[0], reach, spatial_shape))


def moved_radii(step):
    """The (y, x) radii of the windows around where moving content went
    (:func:`nlmeans.kernels.constants.moved_radius`, as NL-means's)."""
    return tuple(moved_radius(s) for s in _three(step.search_radius)[1:])


def window_moves(moves, temporal_radius):
    """The largest move (y, x) of a block of frames with `moves` (see
    :func:`nlmeans.methods.block_moves.frame_moves`; None: (0, 0)) into the
    other frames of a temporal window of `temporal_radius`: up to twice that
    before and after it, where the window is shifted inwards at the ends."""
    if moves is None:
        return (0, 0)
    span = moves.shape[1] // 2
    reach = min(2 * temporal_radius, span)
    near = moves[:, span - reach:span + reach + 1]
    largest = np.abs(near).reshape(-1, 2).max(axis=0)
    return (int(largest[0]), int(largest[1]))


def _three(radii):
    return (0,) + tuple(radii) if len(radii) == 2 else tuple(radii)


def fitted_radii(step, spatial_shape):
    """The step's patch radii cut to what the image holds (a patch no wider
    than the axis), per axis (z, y, x)."""
    return tuple(min(p, (n - 1) // 2) for p, n in zip(_three(step.patch_radius), spatial_shape))


def _tile_grid(step, spatial, moves=None):
    """(patch radii fitted to the image, tile shape, tiles per axis, positions per
    axis, lanes) of `step` on an image of (Z, Y, X) shape `spatial` (frames with
    block `moves`, if given).

    The tiles of :func:`tile_shape` run a checkerboard colour at a time; but
    frames whose moves leave fewer than LANE_TILES tiles in a colour, of at
    most LANE_POSITIONS positions, run in lanes (see LANES), which need no
    reach: as many tiles as the checkerboard's, of equal sizes. Other frames
    with moves take a multiple of 4 tiles along x where no axis has one. On the fast
    moving object of benchmarks/video.py (256 x 256, 10 frames) the
    checkerboard's own tiles, the last a sliver, left one lane most of the
    work (CPU/wall 1.1 to 1.2, 1.5 to 1.7 times the time of equal tiles).
    Smaller tiles cost time where groups reach far: on the fast pan ((7, 12)
    pixels a frame, sigma 10 / 20 / 40, dev runs) still frames' tiles took
    about 1.65 times the time, tiles half as wide 1.4 times (+0.04 to +0.08
    dB): the paste trick's marks are kept per tile, and a group's members in
    far frames fall in other tiles, so more references run."""
    patch = fitted_radii(step, spatial)
    counts = [n - 2 * p for n, p in zip(spatial, patch)]
    tile = tile_shape(step, spatial, window_moves(moves, _three(step.search_radius)[0]))
    grid = [-(-c // t) for c, t in zip(counts, tile)]
    fewest = int(np.prod([g // 2 if g > 1 else 1 for g in grid]))  # the smallest colour
    lanes = moves is not None and fewest < LANE_TILES and \
        int(np.prod(spatial)) <= LANE_POSITIONS
    if lanes:
        tile = tuple(-(-c // g) for c, g in zip(counts, grid))
    elif moves is not None and grid[-1] >= 4 and not any(g % 4 == 0 for g in grid if g > 1):
        # Moves make few, wide tiles. Every colour an even number of them, which
        # two threads share evenly: fewer, wider tiles along x, a multiple of 4
        # (the dev clip's frames, 5 to 7 tiles wide, had run three rounds of
        # tiles for five: now 0.87 of the time; on 512² images, which have no
        # moves, it measured no gain).
        tile = tile[:-1] + (-(-counts[-1] // (grid[-1] - grid[-1] % 4)),)
    grid = [-(-c // t) for c, t in zip(counts, tile)]  # of the tiles chosen
    return patch, tile, grid, counts, lanes


def step_tiles(step, spatial, moves=None):
    """(tile shape, lanes) of `step` on an image of (Z, Y, X) shape `spatial`,
    frames with block `moves` if given (see _tile_grid): the tests' reference
    takes its tiles from here."""
    _, tile, _, _, lanes = _tile_grid(step, spatial, moves)
    return tile, lanes


def tile_count(settings, spatial, moves=None):
    """How many tiles the steps of `settings` run on an image of (Z, Y, X) shape
    `spatial` (the length of run_bayes's progress); frames with block `moves`,
    if given."""
    return sum(int(np.prod(_tile_grid(step, spatial, moves)[2]))
               for step in settings.passes)


def run_step(noisy, basic, step, dtype, tile_done=None, covariance=None, frames=False,
             moves=None):
    """One step on the (C, Z, Y, X) arrays (basic None in step 1); the (C, Z, Y, X)
    result in `dtype`. `tile_done()`, if given, is called after each tile (from
    the worker threads). `covariance`: the noise's covariance over the step's
    patches (channels * K square, channel by channel in (z, y, x) order), in
    place of sigma^2 I. `frames`: Z is time, and with patches deeper than one
    frame the references are taken in the order of :func:`frame_order` along it.
    `moves` ((Z, 2 S + 1, BY, BX, 2), :func:`nlmeans.methods.block_moves.frame_moves`):
    frames whose content moves, where each block's went in the frames around
    it; the windows also cover where it went
    (:func:`nlmeans.kernels.bayes._moved_windows`)."""
    # Deferred: importing Numba costs ~0.3 s, which images run on NL-means
    # (most command-line runs) should not pay.
    from numba import get_num_threads

    from nlmeans.kernels import bayes
    from nlmeans.kernels.nlm import run_tiles

    spatial = noisy.shape[1:]
    patch, tile, grid, counts, lanes = _tile_grid(step, spatial, moves)
    moving = np.zeros((0, 1, 1, 1, 2), np.int64) if moves is None \
        else np.ascontiguousarray(moves, np.int64)
    search = _three(step.search_radius)
    stride = tuple(min(step.stride, 2 * p + 1) if p else 1 for p in patch)
    refs0 = bayes.ref_positions(counts[0], stride[0])
    if frames and patch[0] > 0:
        refs0 = frame_order(refs0)
    num = np.zeros(noisy.shape, np.float64)
    weight = np.zeros(spatial, np.float64)
    first = basic is None
    guide = noisy if first else basic
    # With C_N, step 1 whitens its patches (noise of level 1 there) and step 2 takes
    # C_N itself, in place of sigma^2 I; the flat-area rule takes its mean variance.
    level2 = step.sigma ** 2 if covariance is None else 1.0
    shrink = np.float64(step.beta * level2)
    noise_variance = step.sigma ** 2 if covariance is None \
        else np.trace(covariance) / len(covariance)
    flat_limit = np.float64(step.flat_area * noise_variance)
    whitening = _whitening(covariance, noisy.shape[0], first)
    # tau is a mean squared difference; the kernel compares sums over a patch's values.
    tau = np.float64(step.tau * guide.shape[0] * np.prod([2 * p + 1 for p in patch]))
    moved = moved_radii(step)

    def run_tile(index, num, weight):
        start = tuple(i * n for i, n in zip(np.unravel_index(index, grid), tile))
        stop = tuple(min(s + n, c) for s, n, c in zip(start, tile, counts))
        bayes.bayes_tile(noisy, guide, num, weight, first, patch, search, stride,
                         step.group_size, tau, shrink, flat_limit, step.clamp, whitening,
                         start, stop, refs0, step.group_cap, moving, BLOCK, moved)
        if tile_done is not None:
            tile_done()

    count = int(np.prod(grid))
    if lanes:  # see LANES
        lanes = min(LANES, count)
        sums = [(num, weight)] + [(np.zeros_like(num), np.zeros_like(weight))
                                  for _ in range(lanes - 1)]

        def run_lane(lane):
            for index in range(lane, count, lanes):
                run_tile(index, *sums[lane])
        run_tiles(run_lane, lanes, get_num_threads())
        for lane_num, lane_weight in sums[1:]:
            num += lane_num
            weight += lane_weight
    else:
        # Tiles two apart along every axis never touch the same pixels (tile_shape):
        # the 2 x 2 x 2 colours of a checkerboard run one after the other, the tiles
        # of one colour in parallel.
        for colour in np.ndindex(2, 2, 2):
            tiles = [i for i in range(count)
                     if all(t % 2 == c for t, c in zip(np.unravel_index(i, grid), colour))]
            if tiles:
                run_tiles(lambda i, tiles=tiles: run_tile(tiles[i], num, weight), len(tiles),
                          get_num_threads())
    return _estimates(num, weight, noisy if first else basic, dtype)


def frame_order(positions):
    """Positions along time, the ends first: the first, the last, the second, the
    second-to-last... (see the module docstring)."""
    order = np.empty_like(positions)
    order[0::2] = positions[:(len(positions) + 1) // 2]
    order[1::2] = positions[::-1][:len(positions) // 2]
    return order


def _estimates(num, weight, fallback, dtype):
    """num / weight in `dtype` (the quotient taken in float64), `fallback` where
    no group covered a pixel. Written into one array: temporaries of the
    numerator's size were the largest part of a step's memory."""
    out = np.empty(num.shape, dtype)
    covered = weight > 0
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 where not covered
        np.divide(num, weight, out=out, where=covered, casting="same_kind")
    if not covered.all():
        np.copyto(out, fallback, where=~covered, casting="same_kind")
    return out


def _whitening(covariance, channels, first):
    """What the kernel takes for the noise covariance C_N: (W, W^-1, C_N), W =
    C_N^-1/2 (symmetric) of C_N's diagonal blocks in step 1 (`first`: it
    estimates the channels one by one, whitened), C_N itself in step 2; empty
    arrays for what a step does not use, and all three without C_N."""
    empty = np.zeros((0, 0))
    if covariance is None:
        return empty, empty, empty
    covariance = np.ascontiguousarray(covariance, np.float64)
    if not first:
        return empty, empty, covariance
    size = covariance.shape[0] // channels
    blocks = covariance * np.kron(np.eye(channels), np.ones((size, size)))
    values, vectors = np.linalg.eigh(blocks)
    values = np.maximum(values, 1e-6 * values.max())
    whiten = (vectors / np.sqrt(values)) @ vectors.T
    unwhiten = (vectors * np.sqrt(values)) @ vectors.T
    return np.ascontiguousarray(whiten), np.ascontiguousarray(unwhiten), empty


def run_bayes(values, settings, bounds, rounded=False, progress=None):
    """NL-Bayes of the (C, Z, Y, X) float `values` as `settings` says, clipped to
    `bounds` and, if `rounded`, rounded. `progress(done, total)`, if given, is
    called after each tile, one call at a time (total: :func:`tile_count`)."""
    from nlmeans.kernels import bayes, nlm  # deferred: importing Numba costs ~0.3 s

    if nlm.will_compile(bayes.bayes_tile):
        logging.getLogger("nlmeans").info(
            "compiling the NL-Bayes kernel (first run only, about 20 s; Numba caches it)...")
    dtype = settings.work_dtype
    colour = values.shape[0] == 3
    transform = OpponentColours(1.0, dtype) if colour else None
    noisy = np.ascontiguousarray(transform.forward(values) if colour else values, dtype=dtype)
    moves = _block_moves(values, settings) if follows_motion(settings) else None
    tile_done = None if progress is None else _counter(
        progress, tile_count(settings, values.shape[1:], moves))
    result = None
    for step in settings.passes:
        covariance = None
        if settings.noise_covariance is not None:
            widths = tuple(2 * p + 1 for p in fitted_radii(step, values.shape[1:]))
            covariance = patch_covariance(settings.noise_covariance, widths)
        result = run_step(noisy, result if step.guided else None, step, dtype, tile_done,
                          covariance, frames=settings.time_axis is not None, moves=moves)
    if colour:
        result = transform.backward(result)
    result = np.clip(result, *bounds).astype(dtype, copy=False)
    return np.rint(result, out=result) if rounded else result


def _block_moves(values, settings):
    """The block moves (frame_moves) of the (C, T, Y, X) frames `values` into
    the frames that the steps' windows reach: up to twice the widest temporal
    radius, where a window is shifted inwards at the sequence's ends."""
    from numba import get_num_threads  # deferred: importing Numba costs ~0.3 s

    frames = [grey_frame(values[:, t]) for t in range(values.shape[1])]
    span = 2 * max(_three(step.search_radius)[0] for step in settings.passes)
    return frame_moves(frames, frame_positions(values, frames), span, get_num_threads())


def _counter(progress, total):
    """A function for the worker threads to call after each tile: it counts the
    tiles and calls progress(done, total), one call at a time."""
    done, lock = [0], threading.Lock()

    def tile_done():
        with lock:
            done[0] += 1
            progress(done[0], total)
    return tile_done
