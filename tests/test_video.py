"""`nlmeans video`: video files, frame folders and TIFF time series in and out."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

import nlmeans
from nlmeans_cli.main import cli

av = pytest.importorskip("av")  # the [video] extra; the test extra installs it


def _scene(frames, height=48, width=64, seed=0, sigma=15.0):
    """A noisy RGB pan: diagonal stripes moving one pixel a frame."""
    rng = np.random.default_rng(seed)
    base = (np.add.outer(np.arange(height), np.arange(width)) * 3 % 256).astype(float)
    clean = np.stack([np.roll(base, t, axis=1) for t in range(frames)])[..., None]
    noisy = clean + rng.normal(0, sigma, (frames, height, width, 3))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _write_video(path, frames, rate=24, rotation=0, audio=True):
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=44100) if audio else None
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if sound is not None:
            tone = np.sin(np.arange(22050) / 44100 * 2 * np.pi * 440).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, 0
            for packet in list(sound.encode(chunk)) + list(sound.encode(None)):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)


def _decoded(path):
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24")
                         for f in container.decode(container.streams.video[0])])


def _no_leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".nlmeans-")]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "in.mp4"
    _write_video(path, _scene(14), rotation=90)
    return path


def test_video_keeps_rate_size_rotation_and_audio(clip, tmp_path):
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(cli, ["video", str(clip), str(out)])
    assert result.exit_code == 0, result.output
    assert "14 frames denoised" in result.output
    with av.open(str(out)) as container, av.open(str(clip)) as source:
        video, original = container.streams.video[0], source.streams.video[0]
        assert video.average_rate == original.average_rate == 24
        assert (video.width, video.height) == (original.width, original.height)
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert container.streams.audio[0].codec_context.name == "aac"
        first = next(container.decode(video))
        assert first.rotation == next(source.decode(original)).rotation == 90
    assert len(_decoded(out)) == 14
    assert _no_leftovers(tmp_path) == []


def test_lossless_output_holds_the_denoised_frames_exactly(clip, tmp_path):
    out = tmp_path / "out.mkv"
    result = CliRunner().invoke(cli, ["video", str(clip), str(out), "--lossless", "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    expected = np.stack(list(nlmeans.denoise_frames(_decoded(clip), channel_axis=-1)))
    np.testing.assert_array_equal(_decoded(out), expected)


def test_frame_folders_in_and_out(clip, tmp_path):
    import imageio.v3 as iio

    frames = tmp_path / "frames"
    frames.mkdir()
    seq = _scene(9)
    for i, frame in enumerate(seq, start=1):  # natural order: 1, 2, ..., 9, not 1, 10, 2
        iio.imwrite(frames / f"f{i}.png", frame)
    out = tmp_path / "clean"
    result = CliRunner().invoke(cli, ["video", str(frames), str(out), "--h", "12"])
    assert result.exit_code == 0, result.output
    names = sorted(os.listdir(out))
    assert names[0] == "frame_000001.png" and len(names) == 9
    got = np.stack([iio.imread(out / name) for name in names])
    expected = nlmeans.denoise(seq, 12, time_axis=0, channel_axis=-1)
    np.testing.assert_array_equal(got, expected)


def test_tiff_time_series_keeps_16_bit_grey(tmp_path):
    rng = np.random.default_rng(2)
    seq = (30000 + 2000 * rng.standard_normal((10, 20, 24))).astype(np.uint16)
    source = tmp_path / "cells.tif"
    tifffile.imwrite(source, seq)
    out = tmp_path / "clean.tif"
    plain = CliRunner().invoke(cli, ["video", str(source), str(out)])
    assert plain.exit_code == 1 and "--time-series" in plain.output
    result = CliRunner().invoke(cli, ["video", str(source), str(out), "--time-series"])
    assert result.exit_code == 0, result.output
    got = tifffile.imread(out)
    assert got.dtype == np.uint16 and got.shape == seq.shape
    np.testing.assert_array_equal(got, nlmeans.denoise(seq, time_axis=0))


@pytest.mark.parametrize("args, message, code", [
    (["{out}"], "already exists", 1),
    (["{dir}/o.avi"], "unsupported output", 1),
    (["{dir}/o.mp4", "--lossless"], "must be a .mkv", 2),
    (["{dir}/o.mp4", "--method", "nlbayes", "--h", "5"], "takes its parameters from sigma", 2),
    (["{dir}/o.mp4", "--device", "cuda"], "runs on the CPU", 2),
    (["{clip}"], "is the INPUT", 1),
])
def test_bad_options_fail_before_any_work(clip, tmp_path, args, message, code):
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep")
    args = [a.format(out=existing, dir=tmp_path, clip=clip) for a in args]
    result = CliRunner().invoke(cli, ["video", str(clip)] + args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert existing.read_bytes() == b"keep"
    assert sorted(os.listdir(tmp_path)) == ["exists.mp4"]


def test_bad_inputs_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    for source, message in ((tmp_path / "missing.mp4", "no such file"),
                            (junk, "cannot read as video"), (tmp_path, "no frame images")):
        result = CliRunner().invoke(cli, ["video", str(source), str(tmp_path / "o.mp4")])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_frames_a_video_cannot_hold_are_refused_before_denoising(tmp_path):
    source = tmp_path / "series.tif"
    tifffile.imwrite(source, np.zeros((6, 8, 8), np.uint16) + 5)
    out = tmp_path / "o.mp4"
    result = CliRunner().invoke(cli, ["video", str(source), str(out), "--time-series"])
    assert result.exit_code == 1 and "8-bit grey or RGB" in result.output
    assert not out.exists() and _no_leftovers(tmp_path) == []


def test_a_frame_of_another_size_fails_without_output(tmp_path):
    import imageio.v3 as iio

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(_scene(12), start=1):
        iio.imwrite(frames / f"{i:03d}.png", frame if i != 11 else frame[:20])
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(cli, ["video", str(frames), str(out)])
    assert result.exit_code == 1 and "first's shape" in result.output
    assert not out.exists() and _no_leftovers(tmp_path) == []


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_leaves_no_output(tmp_path, sig, code):
    source = tmp_path / "long.mp4"
    _write_video(source, _scene(400, 64, 96), audio=False)
    out = tmp_path / "out.mp4"
    process = subprocess.Popen([sys.executable, "-m", "nlmeans_cli.main", "video", str(source),
                                str(out), "--h", "10", "--temporal-radius", "3"],
                               stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    assert process.poll() is None, "finished before it could be interrupted"
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert not out.exists() and _no_leftovers(tmp_path) == []


def test_video_help_lists_only_what_frames_take(tmp_path):
    """--device cuda is refused for frames: not listed in video's help (denoise's
    lists it), and refused with the reason when given."""
    video_help = CliRunner().invoke(cli, ["video", "--help"]).output
    assert "--method" in video_help and "--device" not in video_help
    assert "--temporal-radius" in video_help and "--h" in video_help
    denoise_help = CliRunner().invoke(cli, ["denoise", "--help"]).output
    assert "--method" in denoise_help and "--device" in denoise_help


def test_a_still_image_is_not_a_video(tmp_path):
    import imageio.v3 as iio

    still = tmp_path / "photo.png"
    iio.imwrite(still, _scene(1)[0])
    result = CliRunner().invoke(cli, ["video", str(still), str(tmp_path / "o.mp4")])
    assert result.exit_code == 1 and "a still image, not a video" in result.output
    assert sorted(os.listdir(tmp_path)) == ["photo.png"]


def test_a_temporal_radius_beyond_the_sequence_is_cut_with_a_note(tmp_path):
    import imageio.v3 as iio

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(_scene(4), start=1):
        iio.imwrite(frames / f"f{i}.png", frame)
    results = {}
    for radius in ("100", "3"):
        out = tmp_path / f"clean{radius}"
        result = CliRunner().invoke(cli, ["video", str(frames), str(out), "--h", "12",
                                          "--temporal-radius", radius])
        assert result.exit_code == 0, result.output
        results[radius] = np.stack([iio.imread(out / n) for n in sorted(os.listdir(out))])
    first = CliRunner().invoke(cli, ["video", str(frames), str(tmp_path / "again"), "--h", "12",
                                     "--temporal-radius", "100"])
    assert "--temporal-radius 100 reaches beyond the sequence (4 frames): using 3" in first.stderr
    np.testing.assert_array_equal(results["100"], results["3"])


def test_video_clip_benchmark_runs_and_plots(tmp_path):
    """benchmarks/video_clip.py on a short clip: every method's row, the end-frame
    dip, the per-frame plot."""
    path = tmp_path / "clip.mp4"
    _write_video(path, _scene(5, sigma=0.0), audio=False)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
    try:
        import video_clip
    finally:
        sys.path.pop(0)
    rows = video_clip.main(["--clip", str(path), "--frames", "5", "--sigmas", "20", "--out",
                            str(tmp_path / "out"), "--vbm3d", ""])
    by_method = {r[0]: r for r in rows}
    assert {"noisy", "nlmeans temporal", "nlbayes temporal"} <= set(by_method)
    assert by_method["nlbayes temporal"][2] > by_method["noisy"][2] + 5
    report = (tmp_path / "out" / "video_clip.md").read_text()
    assert "| nlbayes temporal |" in report and "V-BM3D skipped" in report
    assert (tmp_path / "out" / "video_clip_frames.png").stat().st_size > 0


def test_video_clip_benchmark_runs_on_the_made_pan_with_chosen_methods(tmp_path):
    """--made HEIGHT in place of a clip, --methods to pick rows, --name for the files,
    --temporal-radii for rows with a wider window, --grey for the clip's luminance."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
    try:
        import video_clip
    finally:
        sys.path.pop(0)
    rows = video_clip.main(["--made", "36", "--frames", "4", "--sigmas", "20", "--methods",
                            "temporal", "--temporal-radii", "2", "--name", "hd", "--out",
                            str(tmp_path), "--vbm3d", ""])
    assert {r[0] for r in rows} == {"noisy", "nlmeans temporal", "nlbayes temporal",
                                    "nlmeans temporal, no motion", "nlbayes temporal, no motion",
                                    "nlmeans temporal ±2", "nlbayes temporal ±2"}
    report = (tmp_path / "hd.md").read_text()
    assert "4 frames of 64×36 RGB" in report and "--made 36 --frames 4" in report
    assert "--methods temporal --temporal-radii 2 --name hd" in report
    assert (tmp_path / "hd_frames.png").exists()
    rows = video_clip.main(["--made", "36", "--frames", "4", "--sigmas", "20", "--grey",
                            "--methods", "nlbayes temporal", "--name", "grey", "--out",
                            str(tmp_path), "--vbm3d", ""])
    assert {r[0] for r in rows} == {"noisy", "nlbayes temporal", "nlbayes temporal, no motion"}
    report = (tmp_path / "grey.md").read_text()
    assert "4 frames of 64×36 grey" in report and "--grey --methods" in report
