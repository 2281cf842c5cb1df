"""Image files: pixel types, channels, alpha, palettes, orientation, ICC, volumes, stdin/stdout."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image as PILImage

import nlmeans
from nlmeans.io import (ImageIOError, check_writable, encode, read_bytes, read_image,
                        write_image)
from nlmeans_cli.main import cli

RNG = np.random.default_rng(11)


def run(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def noisy(shape, dtype):
    if np.dtype(dtype).kind == "f":
        return (0.5 + 0.1 * RNG.standard_normal(shape)).astype(dtype)
    top = np.iinfo(dtype).max
    return np.clip(top / 2 + top / 8 * RNG.standard_normal(shape), 0, top).astype(dtype)


@pytest.mark.parametrize("suffix, dtype, channels", [
    (".png", np.uint8, None), (".png", np.uint8, 2), (".png", np.uint8, 3), (".png", np.uint8, 4),
    (".png", np.uint16, None), (".png", np.uint16, 2), (".png", np.uint16, 3),
    (".png", np.uint16, 4),
    (".tif", np.uint8, None), (".tif", np.uint8, 3), (".tif", np.uint16, None),
    (".tif", np.uint16, 3), (".tif", np.uint16, 4), (".tif", np.float32, None),
    (".tif", np.float32, 3), (".bmp", np.uint8, None), (".bmp", np.uint8, 3),
    (".webp", np.uint8, 3),
])
def test_round_trip_keeps_type_and_channels(tmp_path, suffix, dtype, channels):
    shape = (21, 17) if channels is None else (21, 17, channels)
    array = noisy(shape, dtype)
    path = str(tmp_path / f"a{suffix}")
    write_image(path, array, quality=100)
    back = read_image(path).merged()
    assert back.dtype == array.dtype and back.shape == array.shape
    if suffix != ".webp":  # WebP is lossy even at quality 100
        np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_alpha_is_passed_through_untouched(tmp_path, suffix):
    rgba = noisy((20, 22, 4), np.uint16)
    src, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    write_image(str(src), rgba)
    assert run("denoise", src, out, "-q").exit_code == 0
    written = read_image(str(out)).merged()
    np.testing.assert_array_equal(written[..., 3], rgba[..., 3])
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written[..., :3], nlmeans.denoise(rgba[..., :3],
                                                                    channel_axis=-1))


def test_palette_image_becomes_rgb(tmp_path):
    rgb = (RNG.random((16, 16, 3)) * 255).astype(np.uint8)
    palette = PILImage.fromarray(rgb).quantize(16)
    path = tmp_path / "p.png"
    palette.save(path)
    image = read_image(str(path))
    assert image.pixels.shape == (16, 16, 3) and image.pixels.dtype == np.uint8
    np.testing.assert_array_equal(image.pixels, np.asarray(palette.convert("RGB")))


def test_exif_orientation_is_applied(tmp_path):
    """A viewer shows the output as it shows the input: stored rotated + tag."""
    upright = np.zeros((10, 30), np.uint8)
    upright[:, :5] = 255  # a bright left edge
    stored = np.rot90(upright, 1)  # stored turned left; orientation 6 turns it right
    exif = PILImage.Exif()
    exif[0x0112] = 6
    path, out = tmp_path / "o.jpg", tmp_path / "out.png"
    PILImage.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif, quality=100)
    image = read_image(str(path))
    assert image.pixels.shape == upright.shape
    assert image.pixels[:, :3].mean() > 200 and image.pixels[:, -3:].mean() < 50
    assert run("denoise", path, out, "--h", 5, "-q").exit_code == 0
    with PILImage.open(out) as written:
        assert written.size == (30, 10)
        assert written.getexif().get(0x0112) in (None, 1)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_icc_profile_is_carried_over(tmp_path, suffix):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb = noisy((24, 24, 3), np.uint8)
    src, out = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    write_image(str(src), rgb, icc_profile=icc)
    assert read_image(str(src)).icc_profile == icc
    assert run("denoise", src, out, "-q").exit_code == 0
    assert read_image(str(out)).icc_profile == icc


def test_multipage_tiff_page_by_page_and_as_volume(tmp_path):
    stack = noisy((4, 20, 24), np.uint16)
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, stack, photometric="minisblack")
    image = read_image(str(src))
    assert image.is_volume and image.pixels.shape == (4, 20, 24)
    assert run("denoise", src, tmp_path / "pages.tif", "--h", 3000, "-q").exit_code == 0
    pages = tifffile.imread(tmp_path / "pages.tif")
    expected = np.stack([nlmeans.denoise(p, 3000) for p in stack])
    np.testing.assert_array_equal(pages, expected)
    assert run("denoise", src, tmp_path / "vol.tif", "--h", 3000, "--volume", "-q").exit_code == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "vol.tif"),
                                  nlmeans.denoise(stack, 3000))
    result = run("denoise", src, tmp_path / "vol.png", "--h", 3000)
    assert result.exit_code == 1 and "volume can only be written as TIFF" in result.output


def test_float32_tiff_stays_float(tmp_path):
    array = noisy((20, 20), np.float32)
    src, out = tmp_path / "f.tif", tmp_path / "o.tif"
    tifffile.imwrite(src, array)
    assert run("denoise", src, out, "--h", 0.05, "-q").exit_code == 0
    written = tifffile.imread(out)
    assert written.dtype == np.float32
    np.testing.assert_array_equal(written, nlmeans.denoise(array, 0.05))
    result = run("denoise", src, tmp_path / "o.png", "--h", 0.05)
    assert result.exit_code == 1 and "cannot store float32" in result.output


def test_stdin_to_stdout(tmp_path):
    array = noisy((20, 24), np.uint8)
    data = encode(array, "PNG")
    proc = subprocess.run([sys.executable, "-m", "nlmeans_cli.main", "denoise", "-", "-",
                           "--h", "15", "--format", "png", "-q"], input=data,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    result = read_bytes(proc.stdout).pixels
    np.testing.assert_array_equal(result, nlmeans.denoise(array, 15))


def test_jpeg_quality_option(tmp_path):
    array = noisy((64, 64, 3), np.uint8)
    src = tmp_path / "in.png"
    write_image(str(src), array)
    sizes = {}
    for q in (30, 95):
        out = tmp_path / f"q{q}.jpg"
        assert run("denoise", src, out, "--h", 5, "--quality", q, "-q").exit_code == 0
        sizes[q] = out.stat().st_size
    assert sizes[30] < sizes[95]


def test_decode_errors_are_one_line():
    with pytest.raises(ImageIOError, match="cannot read image"):
        read_bytes(b"GIF89a garbage", "x.gif")
    with pytest.raises(ImageIOError, match="empty file"):
        read_bytes(b"", "x.png")
    with pytest.raises(ImageIOError, match="unsupported image shape"):
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, np.zeros((2, 2, 3, 5, 6), np.uint8), photometric="minisblack")
        read_bytes(buffer.getvalue(), "5d.tif")


def test_write_refuses_what_the_format_cannot_hold(tmp_path):
    with pytest.raises(ImageIOError, match="JPEG cannot store uint16"):
        write_image(str(tmp_path / "a.jpg"), np.zeros((4, 4), np.uint16))
    with pytest.raises(ImageIOError, match="cannot store an alpha channel"):
        write_image(str(tmp_path / "a.jpg"), np.zeros((4, 4, 4), np.uint8))
    assert os.listdir(tmp_path) == []


def test_planar_rgb_tiff_is_colour(tmp_path):
    rgb = noisy((3, 12, 14), np.uint8)  # stored as separate colour planes
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", planarconfig="separate")
    image = read_image(str(path))
    assert not image.is_volume and image.pixels.shape == (12, 14, 3)
    np.testing.assert_array_equal(image.pixels, np.moveaxis(rgb, 0, -1))


def test_outputs_get_the_usual_permissions(tmp_path):
    """The atomic write's temp file is private; the output is not: a new file gets
    0666 less the umask, a replaced one keeps its mode."""
    image = RNG.integers(0, 256, (8, 9), dtype=np.uint8)
    old_umask = os.umask(0o022)
    try:
        new = tmp_path / "new.png"
        write_image(str(new), image)
        assert new.stat().st_mode & 0o777 == 0o644
        existing = tmp_path / "existing.png"
        existing.write_bytes(b"old")
        existing.chmod(0o640)
        write_image(str(existing), image)
        assert existing.stat().st_mode & 0o777 == 0o640
        assert read_image(str(existing)).pixels.shape == (8, 9)
    finally:
        os.umask(old_umask)


def _interrupt_as_created(monkeypatch, name):
    """Make os.`name` (open or mkdir) create a temporary path, then raise
    KeyboardInterrupt: Ctrl-C landing the moment the path exists, before the
    caller has its name back."""
    real = getattr(os, name)

    def created_then_interrupted(path, *args, **kwargs):
        result = real(path, *args, **kwargs)
        if os.path.basename(os.fspath(path)).startswith(".nlmeans-"):
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(os, name, created_then_interrupted)


@pytest.mark.parametrize("write", ["image", "check", "tiff frames", "frame folder"])
def test_ctrl_c_as_a_temporary_file_is_created_leaves_nothing(tmp_path, monkeypatch, write):
    """A Ctrl-C at any moment of an atomic write leaves no temporary file (a
    batch interrupted in CI once left one: tempfile.mkstemp names its file only
    once it exists)."""
    from nlmeans.io.video import FolderWriter, TiffWriter

    image = RNG.integers(0, 256, (8, 9), dtype=np.uint8)
    out = str(tmp_path / ("frames" if write == "frame folder" else "out.tif"))
    _interrupt_as_created(monkeypatch, "mkdir" if write == "frame folder" else "open")
    run = {"image": lambda: write_image(out, image),
           "check": lambda: check_writable(out, read_image(_png(tmp_path, image)), "TIFF"),
           "tiff frames": lambda: TiffWriter(out),
           "frame folder": lambda: FolderWriter(out)}[write]
    with pytest.raises(KeyboardInterrupt):
        run()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".nlmeans-")] == []


def test_a_failing_probe_of_the_output_folder_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C between the probe file's creation and its removal."""
    image = read_image(_png(tmp_path, RNG.integers(0, 256, (8, 9), dtype=np.uint8)))
    real_close = os.close

    def interrupted_close(fd):
        real_close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "close", interrupted_close)
    with pytest.raises(KeyboardInterrupt):
        check_writable(str(tmp_path / "out.png"), image, "PNG")
    monkeypatch.undo()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".nlmeans-")] == []


def _png(folder, pixels):
    path = str(folder / "in.png")
    write_image(path, pixels)
    return path


@pytest.mark.parametrize("compression", ["lzw", "jpeg", "zlib"])
def test_compressed_tiffs_are_read(tmp_path, compression):
    """What scanners write: needs imagecodecs, a dependency."""
    import tifffile

    image = (np.random.default_rng(3).random((32, 40, 3)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "scan.tif", image, photometric="rgb", compression=compression)
    read = read_image(str(tmp_path / "scan.tif"))
    assert read.pixels.shape == image.shape
    if compression != "jpeg":  # lossy
        np.testing.assert_array_equal(read.pixels, image)


def test_tiff_pages_of_different_sizes_are_refused(tmp_path):
    import tifffile

    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.zeros((20, 30), np.uint8))
        tif.write(np.zeros((10, 12), np.uint8))
    with pytest.raises(ImageIOError, match="2 images of different sizes"):
        read_image(str(path))


def test_animations_are_refused(tmp_path):
    from PIL import Image as PILImage

    frames = [PILImage.fromarray(np.full((16, 16), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageIOError, match="anim.gif: 2 frames"):
        read_image(str(tmp_path / "anim.gif"))


def test_large_images_pass_the_decompression_bomb_guard(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    PILImage.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)  # as if the image were huge
    assert read_image(str(tmp_path / "big.png")).pixels.shape == (64, 64)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_exif_is_kept_with_the_orientation_reset(tmp_path, suffix):
    """Camera, date and exposure survive denoising; the pixels are turned upright, so
    the orientation becomes 1 (else viewers would turn them again)."""
    image = np.zeros((20, 30, 3), np.uint8)
    image[:5] = 200  # top band, to see the turn
    exif = PILImage.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "Canon", "EOS 5D Mark II", "2026:11:28 10:00:00"
    exif[0x0112] = 6  # rotate 90° clockwise to display
    PILImage.fromarray(image).save(tmp_path / "in.jpg", exif=exif.tobytes(), quality=95)
    result = CliRunner().invoke(cli, ["denoise", str(tmp_path / "in.jpg"),
                                      str(tmp_path / f"out{suffix}"), "--h", "5", "-q"])
    assert result.exit_code == 0, result.output
    with PILImage.open(tmp_path / f"out{suffix}") as out:
        kept = out.getexif()
        assert out.size == (20, 30)  # upright: width and height swapped
    assert (kept[0x010F], kept[0x0110], kept[0x0132]) == ("Canon", "EOS 5D Mark II",
                                                          "2026:11:28 10:00:00")
    assert kept.get(0x0112, 1) == 1


def test_montage_captions_are_whole_and_say_the_slice(monkeypatch):
    """A volume's montage names the slice it shows, and no caption is cut: long
    names wrap over lines that fit the (enlarged) tiles."""
    from nlmeans.io import montage

    shown = []
    real_label = montage._label

    def record(tile, lines, count, font):
        shown.append(lines)
        assert all(font.getlength(line) <= tile.shape[1] - 8 for line in lines)
        return real_label(tile, lines, count, font)

    monkeypatch.setattr(montage, "_label", record)
    volume = np.random.default_rng(1).integers(0, 255, (5, 48, 40), dtype=np.uint8)
    name = "../inputs/a-rather-long-folder-name/volume_with_a_long_name.tif"
    picture = montage.make_montage(name, volume, [("denoised/" + name[3:], volume // 2, 30.0)])
    captions = [" ".join(lines) for lines in shown]
    assert "".join(shown[0]).replace(" ", "") == f"reference:{name}(slice3of5)".replace(" ", "")
    assert captions[1].endswith("(slice 3 of 5): 30.00 dB")
    assert picture.shape[1] >= 2 * 256 and picture.dtype == np.uint8
