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


_LINE = 16  # pixels per caption line
_MIN_WIDTH = 256  # tiles narrower than this are enlarged


def _zoomed(array, zoom):
    """`array` enlarged `zoom` times along its first two axes, each pixel a block."""
    return array if zoom == 1 else np.repeat(np.repeat(array, zoom, axis=0), zoom, axis=1)


def _font():
    from PIL import ImageFont  # deferred: only comparisons draw

    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # older Pillow
        return ImageFont.load_default()


def _wrapped(text, width, font):
    """`text` cut into lines that fit `width` pixels (at spaces where it can, else
    anywhere: a long path is shown whole, over several lines)."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:
            if line and font.getlength(line + char) > width:
                lines.append(line)
                line = ""
            line += char
    return lines + [line] if line else lines


def _label(tile, lines, count, font):
    """The tile with a caption strip of `count` lines under it, holding `lines`."""
    from PIL import Image, ImageDraw  # deferred: only comparisons draw

    strip = 6 + _LINE * count
    canvas = Image.new("RGB", (tile.shape[1], tile.shape[0] + strip), (255, 255, 255))
    canvas.paste(Image.fromarray(tile), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        draw.text((4, tile.shape[0] + 3 + _LINE * index), line, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def make_montage(reference_name, reference, others):
    """Row 1: reference and each image; row 2: blank and each |image - reference|.

    `others` holds (name, pixels, psnr). Volumes show their middle slice, and
    the captions say which. Captions wrap to the tiles' width, whole.
    """
    def is_volume(array):
        return array.ndim == 4 or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4))

    slice_note = ""
    if is_volume(reference):
        depth = reference.shape[0]
        slice_note = f" (slice {depth // 2 + 1} of {depth})"

    def middle(array):
        return array[array.shape[0] // 2] if is_volume(array) else array

    reference = middle(reference)
    ref = reference.astype(np.float64)
    errors = [np.abs(middle(p).astype(np.float64) - ref) for _, p, _ in others]
    errors = [e.mean(axis=2) if e.ndim == 3 else e for e in errors]
    scale = max(float(np.percentile(np.concatenate([e.ravel() for e in errors]), 99.5)), 1e-12)
    tiles = [_to_rgb8(reference)] + [_to_rgb8(middle(p)) for _, p, _ in others]
    # Small images are shown enlarged, pixel by pixel, to about 256 pixels wide.
    zoom = min(max(1, -(-_MIN_WIDTH // tiles[0].shape[1])), 8)
    tiles = [_zoomed(tile, zoom) for tile in tiles]
    errors = [_zoomed(error, zoom) for error in errors]
    captions = ([f"reference: {reference_name}{slice_note}"]
                + [f"{name}{slice_note}: {psnr:.2f} dB" for name, _, psnr in others])
    notes = [f"|difference| (white = {scale:.3g})"] * len(others)
    font = _font()
    width = tiles[0].shape[1] - 8
    lines = [_wrapped(text, width, font) for text in captions + notes]
    count = max(len(found) for found in lines)
    top = [_label(tile, found, count, font) for tile, found in zip(tiles, lines)]
    diffs = [_label(heat_map(error, scale), found, count, font)
             for error, found in zip(errors, lines[len(tiles):])]
    blank = np.full_like(top[0], 255)
    rows = [np.concatenate(top, axis=1), np.concatenate([blank] + diffs, axis=1)]
    return np.concatenate(rows, axis=0)
