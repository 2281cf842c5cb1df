"""A picture for people: reference | images | absolute differences, labelled."""

import numpy as np

# A perceptual dark-to-bright ramp (black, purple, red, orange, yellow, white)
# for the difference heat maps.
_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164],
                  [255, 255, 255]], dtype=np.float64)


def heat_map(values, top):
    """(Y, X) non-negative values -> (Y, X, 3) uint8 colours, `top` at the bright end."""
    t = np.clip(values / top, 0, 1) * (len(_RAMP) - 1) if top > 0 else np.zeros_like(values)
    low = np.floor(t).astype(int).clip(0, len(_RAMP) - 2)
    frac = (t - low)[..., None]
    return np.rint(_RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac).astype(np.uint8)


def _to_rgb8(pixels):
    """Any grey/colour array -> (Y, X, 3) uint8 for display (alpha dropped)."""
    array = np.asarray(pixels)
    if array.ndim == 3 and array.shape[2] in (2, 4):
        array = array[..., :-1]
    if array.dtype == np.uint8:
        out = array
    elif np.issubdtype(array.dtype, np.integer):
        out = np.rint(array / np.iinfo(array.dtype).max * 255).astype(np.uint8)
    else:
        low, high = float(array.min()), float(array.max())
        out = np.rint((array - low) / (high - low or 1) * 255).astype(np.uint8)
    if out.ndim == 2 or out.shape[2] == 1:
        out = np.repeat(out.reshape(out.shape[0], out.shape[1], 1), 3, axis=2)
    return out


def _label(tile, text):
    """The tile with a caption strip under it."""
    from PIL import Image, ImageDraw, ImageFont  # deferred: only comparisons draw

    strip = 22
    canvas = Image.new("RGB", (tile.shape[1], tile.shape[0] + strip), (255, 255, 255))
    canvas.paste(Image.fromarray(tile), (0, 0))
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # older Pillow
        font = ImageFont.load_default()
    draw.text((4, tile.shape[0] + 4), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def _short(name):
    return name if len(name) <= 40 else "..." + name[-37:]


def make_montage(reference_name, reference, others):
    """Row 1: reference and each image; row 2: blank and each |image - reference|.

    `others` holds (name, pixels, psnr). Volumes show their middle slice.
    """
    def middle(array):
        return array[array.shape[0] // 2] if array.ndim == 4 or (
            array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)) else array

    reference = middle(reference)
    top = [_label(_to_rgb8(reference), f"reference: {_short(reference_name)}")]
    diffs = []
    ref = reference.astype(np.float64)
    errors = [np.abs(middle(p).astype(np.float64) - ref) for _, p, _ in others]
    errors = [e.mean(axis=2) if e.ndim == 3 else e for e in errors]
    scale = max(float(np.percentile(np.concatenate([e.ravel() for e in errors]), 99.5)), 1e-12)
    for (name, pixels, psnr), error in zip(others, errors):
        top.append(_label(_to_rgb8(middle(pixels)), f"{_short(name)}: {psnr:.2f} dB"))
        diffs.append(_label(heat_map(error, scale), f"|difference| (white = {scale:.3g})"))
    blank = np.full_like(top[0], 255)
    rows = [np.concatenate(top, axis=1), np.concatenate([blank] + diffs, axis=1)]
    return np.concatenate(rows, axis=0)
