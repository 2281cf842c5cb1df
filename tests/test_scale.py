"""Scale: the even sample, dask arrays, TIFFs streamed in strips, batches on a cluster."""

import os
import sys

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

import nlmeans
import nlmeans.model.sample
from nlmeans.model.sample import SAMPLE_GRID, SAMPLE_TILE, sample_regions
from nlmeans_cli.main import cli
from test_pipeline import noisy_scene

da = pytest.importorskip("dask.array")  # the [dask] extra; the test extra installs it


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def small_sample(monkeypatch):
    """Images above 120 x 120 pixels are measured on a sample, as 4096² ones are."""
    monkeypatch.setattr(nlmeans.model.sample, "SAMPLE_FROM", 120 * 120)
    monkeypatch.setattr(nlmeans.model.sample, "SAMPLE_TILE", 32)
    monkeypatch.setattr(nlmeans.model.sample, "SAMPLE_GRID", 3)


# --- the even sample ---------------------------------------------------------------------

def test_sample_regions_spread_tiles_from_corner_to_corner():
    regions = sample_regions((5000, 9000), None)
    assert len(regions) == SAMPLE_GRID ** 2
    tops = sorted({r[0].start for r in regions})
    lefts = sorted({r[1].start for r in regions})
    assert tops[0] == 0 and tops[-1] == 5000 - SAMPLE_TILE
    assert lefts[0] == 0 and lefts[-1] == 9000 - SAMPLE_TILE
    assert np.ptp(np.diff(lefts)) <= 1  # evenly spaced
    assert all(r[0].stop - r[0].start == SAMPLE_TILE for r in regions)
    assert sample_regions((4096, 4096), None) is None  # measured whole
    colour = sample_regions((3, 5000, 5000), 0)
    assert colour[0][0] == slice(None) and colour[0][1].stop - colour[0][1].start == SAMPLE_TILE


def test_sample_of_a_volume_is_evenly_spaced_slices():
    regions = sample_regions((100, 2048, 2048), None)
    slices = [r[0].start for r in regions]
    assert len(slices) == 4 and slices[0] == 0 and slices[-1] == 99
    assert all(r[1] == slice(None) for r in regions)


def test_large_images_are_measured_on_the_sample(small_sample):
    image = noisy_scene((200, 260), sigma=12.0, seed=1)
    settings = nlmeans.resolve(image)
    tiles, axis = nlmeans.model.sample.take_sample(image, None)
    assert tiles.shape == (9, 32, 32) and axis is None
    assert settings.sigma == nlmeans.estimate_noise_model(tiles, levels=False).sigma
    assert abs(settings.sigma - 12.0) < 1.5
    assert settings.sigma != nlmeans.estimate_noise_model(image, levels=False).sigma


def test_a_large_colour_image_is_measured_on_its_sample(small_sample):
    image = noisy_scene((200, 150, 3), sigma=10.0, seed=2)
    settings = nlmeans.resolve(image, channel_axis=-1)
    tiles, axis = nlmeans.model.sample.take_sample(image, -1)
    assert tiles.shape == (9, 32, 32, 3) and axis == 3
    assert settings.sigma == nlmeans.estimate_noise_model(tiles, axis, levels=False).sigma


# --- strips --------------------------------------------------------------------------------

class RecordingReader:
    """An array that records the rows each read asks for."""

    def __init__(self, array):
        self.array, self.shape, self.reads = array, array.shape, []

    def __getitem__(self, index):
        self.reads.append(index[0])
        return self.array[index]


@pytest.mark.parametrize("options", [{}, dict(h=15.0), dict(h=15.0, aggregation="patch")])
def test_strips_read_a_strip_and_its_halo(options):
    from nlmeans.runners.strips import iter_strips

    image = noisy_scene((300, 90), seed=3).astype(np.float32)
    settings = nlmeans.resolve(image, **options)
    reader = RecordingReader(image)
    pieces = list(iter_strips(reader, settings, 40, (image.min(), image.max())))
    assert [(start, stop) for start, stop, _ in pieces][:2] == [(0, 40), (40, 80)]
    # Bit for bit: each piece starts at a row where the kernel's sums start afresh.
    np.testing.assert_array_equal(np.concatenate([p for _, _, p in pieces]),
                                  nlmeans.denoise(image, settings=settings))
    assert all(read.start % 16 == 0 for read in reader.reads)
    # The halo, plus at most the rows the sums run over from such a row (15 per
    # pass, twice with patch-wise aggregation) and the rounding down to it.
    extra = sum(15 * (2 if step.aggregation == "patch" else 1) for step in settings.passes)
    for read, (start, stop, _) in zip(reader.reads, pieces):
        assert stop + settings.halo[0] >= read.stop >= min(stop, 300)
        assert start - settings.halo[0] - extra - 15 <= read.start <= start - settings.halo[0] \
            or read.start == 0


# --- dask arrays ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, chunks", [(np.float32, (64, 50)), (np.uint8, (40, 40)),
                                           (np.float32, (20, 30))])  # chunks below the halo
def test_dask_array_gives_a_lazy_result_equal_to_numpy(dtype, chunks):
    image = noisy_scene((150, 120), seed=4).astype(dtype)
    lazy = nlmeans.denoise(da.from_array(image, chunks=chunks))
    assert isinstance(lazy, da.Array) and lazy.dtype == dtype and lazy.shape == image.shape
    result = lazy.compute(scheduler="threads")
    expected = nlmeans.denoise(image)
    if dtype == np.uint8:
        assert np.abs(result.astype(int) - expected).max() <= 1
        assert np.mean(result != expected) < 0.002
    else:
        np.testing.assert_allclose(result, expected, atol=2e-3 * 255, rtol=0)


def test_dask_colour_chunked_across_channels():
    image = noisy_scene((90, 80, 3), seed=5).astype(np.float32)
    lazy = nlmeans.denoise(da.from_array(image, chunks=(45, 40, 1)), channel_axis=-1)
    np.testing.assert_allclose(lazy.compute(), nlmeans.denoise(image, channel_axis=-1),
                               atol=2e-3 * 255, rtol=0)


def test_dask_volume_and_given_settings():
    volume = noisy_scene((24, 30, 28), seed=6).astype(np.float32)
    settings = nlmeans.resolve(volume)
    lazy = nlmeans.denoise(da.from_array(volume, chunks=(12, 15, 28)), settings=settings)
    np.testing.assert_allclose(lazy.compute(), nlmeans.denoise(volume, settings=settings),
                               atol=2e-3 * 255, rtol=0)


def test_dask_settings_are_the_numpy_settings(small_sample):
    image = noisy_scene((200, 180), seed=7).astype(np.uint16) * 16
    lazy, report = nlmeans.denoise_with_report(da.from_array(image, chunks=(50, 60)),
                                               estimate_error=False)
    assert report.settings == nlmeans.resolve(image)
    with pytest.raises(ValueError, match="SURE"):
        nlmeans.denoise_with_report(da.from_array(image))
    with pytest.raises(ValueError, match="h='sure' needs the whole image"):
        nlmeans.denoise(da.from_array(image), h="sure")


def test_dask_input_errors_are_the_numpy_ones():
    bad = np.zeros((20, 20))
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        nlmeans.denoise(da.from_array(bad, chunks=10))
    with pytest.raises(ValueError, match="channel_axis"):
        nlmeans.denoise(da.zeros((3, 4, 5, 6, 7, 8), chunks=2), channel_axis=-1)
    with pytest.raises(ValueError, match="four spatial axes"):
        nlmeans.denoise(da.zeros((4, 5, 6, 7, 3), chunks=2), channel_axis=-1)


def test_tasks_share_the_cores():
    import threading

    import numba

    from nlmeans.runners.chunked import task_threads

    assert task_threads() is None  # the main thread: tasks one at a time
    seen = []
    worker = threading.Thread(target=lambda: seen.append(task_threads()))
    worker.start()
    worker.join()
    assert seen == [max(1, numba.config.NUMBA_NUM_THREADS // os.cpu_count())]


# --- a TIFF larger than the memory budget, streamed --------------------------------------

def write_tiff(path, image, **options):
    tifffile.imwrite(path, image, photometric="rgb" if image.ndim == 3 else "minisblack",
                     **options)
    return path


@pytest.fixture
def no_base(monkeypatch):
    """Budgets of a few MB for small test images: the process's own memory left out."""
    import nlmeans.runners.outofcore

    monkeypatch.setattr(nlmeans.runners.outofcore, "BASE_BYTES", 0)


@pytest.mark.parametrize("name, shape, dtype, options, budget", [
    ("tiled lzw grey", (700, 600), np.uint8, dict(tile=(128, 128), compression="lzw"), "6M"),
    ("plain strips rgb", (520, 400, 3), np.uint8, {}, "8M"),
    ("float32 deflate", (600, 500), np.float32, dict(compression="zlib"), "5M"),
])
def test_a_tiff_beyond_the_budget_is_streamed(tmp_path, no_base, name, shape, dtype, options,
                                              budget):
    image = noisy_scene(shape, seed=9).astype(dtype)
    source = write_tiff(tmp_path / "big.tif", image, **options)
    out = tmp_path / "out.tif"
    result = run("denoise", source, out, "--max-memory", budget)
    assert result.exit_code == 0, result.output
    assert "streaming it in strips of" in result.stderr
    rows = int(result.stderr.split("strips of ")[1].split()[0])
    assert rows % 16 == 0 and rows < shape[0] / 2  # several strips
    axis = -1 if len(shape) == 3 else None
    with tifffile.TiffFile(out) as tif:
        assert tif.pages[0].is_tiled
        written = tif.asarray()
    assert written.dtype == dtype and written.shape == shape
    np.testing.assert_array_equal(written, nlmeans.denoise(image, channel_axis=axis))
    assert [n for n in os.listdir(tmp_path) if n.startswith(".nlmeans-")] == []
    # Within the default budget, the same file runs in memory.
    again = run("denoise", source, tmp_path / "again.tif")
    assert again.exit_code == 0 and "streaming" not in again.stderr
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "again.tif"), written)


def test_streamed_strips_bound_the_memory(tmp_path, no_base):
    """The budget decides the strip height; the reads never exceed a strip and its halo."""
    from nlmeans.runners.outofcore import strip_rows

    settings = nlmeans.resolve(noisy_scene((100, 100), seed=1).astype(np.uint8))
    small = strip_rows(settings, (100000, 4000), 1, 64 * 2**20)
    large = strip_rows(settings, (100000, 4000), 1, 256 * 2**20)
    assert 16 <= small < large and large > 3.5 * small
    assert 4000 * (small + 2 * settings.halo[0]) * 26 <= 64 * 2**20


def test_streaming_refusals_are_one_line_errors(tmp_path, no_base):
    source = write_tiff(tmp_path / "big.tif", noisy_scene((700, 600), seed=10).astype(np.uint8))
    cases = [
        (("--max-memory", "6M"), tmp_path / "o.png", "write a .tif output to stream it"),
        (("--max-memory", "6M", "--h", "sure"), tmp_path / "o.tif", "--h sure"),
        (("--max-memory", "1M"), tmp_path / "o.tif", "too small for strips"),
        (("--max-memory", "6M", "--method", "nlbayes"), tmp_path / "o.tif",
         "needs the whole image in memory"),
    ]
    for args, out, message in cases:
        result = run("denoise", source, out, *args)
        assert result.exit_code == 1, result.output
        assert message in result.stderr and "Traceback" not in result.output
        assert not out.exists()
    bad = run("denoise", source, tmp_path / "o.tif", "--max-memory", "lots")
    assert bad.exit_code == 2 and "is not a size" in bad.stderr


def test_parse_size():
    from nlmeans.runners.outofcore import parse_size

    assert parse_size("300M") == 300 * 2**20 and parse_size("2g") == 2 * 2**30
    assert parse_size("1.5GiB") == int(1.5 * 2**30) and parse_size("4096") == 4096
    for bad in ("", "-1M", "0", "3X"):
        with pytest.raises(ValueError):
            parse_size(bad)


# --- batches on a cluster ------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path):
    import imageio.v3 as iio

    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(4):
        iio.imwrite(inputs / f"img{index}.png",
                    noisy_scene((48, 40), seed=20 + index).astype(np.uint8))
    (inputs / "bad.png").write_bytes(b"not an image")
    return inputs


def test_cluster_batch_equals_the_local_batch(folder, tmp_path):
    import json

    import imageio.v3 as iio

    local = run("batch", folder, tmp_path / "local", "--jobs", "1", "-q")
    cluster = run("batch", folder, tmp_path / "cluster", "--scheduler", "local:2", "--json")
    assert local.exit_code == 1 and cluster.exit_code == 1  # the bad file
    report = json.loads(cluster.stdout)
    assert report["summary"]["done"] == 4 and report["summary"]["failed"] == 1
    failed = [f for f in report["files"] if f["status"] == "failed"]
    assert failed[0]["input"].endswith("bad.png") and "cannot read" in failed[0]["reason"]
    for index in range(4):
        name = f"img{index}.png"
        np.testing.assert_array_equal(iio.imread(tmp_path / "cluster" / name),
                                      iio.imread(tmp_path / "local" / name))
    again = run("batch", folder, tmp_path / "cluster", "--scheduler", "local:2",
                "--skip-existing", "--json")
    assert json.loads(again.stdout)["summary"]["skipped"] == 4


def test_a_dying_worker_costs_only_its_file(folder, tmp_path):
    from nlmeans_cli.cluster import _cluster_task, run_on_cluster
    from nlmeans_cli.options import denoise_kwargs

    def dies_on_img1(task, settings, threads):
        if task[0].endswith("img1.png"):
            os._exit(1)  # the worker process dies, as on a crash or the OOM killer
        return _cluster_task(task, settings, threads)

    out = tmp_path / "out"
    out.mkdir()
    tasks = [(str(folder / f"img{i}.png"), str(out / f"img{i}.png")) for i in range(4)]
    options = denoise_kwargs("auto", None, None, None, "auto", None, None, None, None, False,
                             "cpu")
    outcomes = run_on_cluster(tasks, "local:2", dict(options=options, volume=False, quality=95,
                                                     fmt=None), False, work=dies_on_img1)
    status = {os.path.basename(o.input): (o.status, o.reason) for o in outcomes}
    assert status["img1.png"] == ("failed", "its worker died twice while denoising it")
    assert all(status[f"img{i}.png"][0] == "done" for i in (0, 2, 3))
    assert sorted(os.listdir(out)) == ["img0.png", "img2.png", "img3.png"]


def test_scheduler_options_are_checked(folder, tmp_path, monkeypatch):
    result = run("batch", folder, tmp_path / "o", "--scheduler", "local:0")
    assert result.exit_code == 2 and "local:N needs" in result.stderr
    result = run("batch", folder, tmp_path / "o", "--scheduler", "local:2", "--jobs", "2")
    assert result.exit_code == 2 and "exclude each other" in result.stderr
    monkeypatch.setitem(sys.modules, "distributed", None)  # not installed
    result = run("batch", folder, tmp_path / "o", "--scheduler", "local:2")
    assert result.exit_code == 1
    assert "pip install 'nlmeans[dask]'" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_batch_keeps_to_numba_num_threads(folder, tmp_path):
    """NUMBA_NUM_THREADS=1 caps the kernel's threads; the batch must not ask for more."""
    import subprocess

    for extra in (["--jobs", "1"], ["--scheduler", "local:1"]):
        out = tmp_path / extra[1].replace(":", "")
        proc = subprocess.run([sys.executable, "-m", "nlmeans_cli.main", "batch", str(folder),
                               str(out), "-q", *extra], capture_output=True, text=True,
                              env=dict(os.environ, NUMBA_NUM_THREADS="1"), timeout=300)
        assert proc.returncode == 1, proc.stderr  # the bad file only
        assert sorted(os.listdir(out)) == [f"img{i}.png" for i in range(4)]


def test_batch_streams_large_tiffs_within_its_share_of_the_budget(tmp_path, no_base,
                                                                  monkeypatch):
    import nlmeans_cli.batch as batch

    inputs = tmp_path / "in"
    inputs.mkdir()
    images = [noisy_scene((700, 600), seed=30 + i).astype(np.uint8) for i in range(2)]
    for index, image in enumerate(images):
        write_tiff(inputs / f"big{index}.tif", image, compression="lzw")
    # 6M is less than one file needs in one piece (11M): streamed.
    result = run("batch", inputs, tmp_path / "out", "--max-memory", "6M", "--jobs", "1", "-q")
    assert result.exit_code == 0, result.output
    for index, image in enumerate(images):
        with tifffile.TiffFile(tmp_path / "out" / f"big{index}.tif") as tif:
            assert tif.pages[0].is_tiled
            np.testing.assert_array_equal(tif.asarray(), nlmeans.denoise(image))
    whole = run("batch", inputs, tmp_path / "whole", "--max-memory", "24M", "--jobs", "1", "-q")
    assert whole.exit_code == 0
    with tifffile.TiffFile(tmp_path / "whole" / "big0.tif") as tif:
        assert not tif.pages[0].is_tiled  # in memory, written as usual
    # Files in flight share the budget.
    shares = []
    monkeypatch.setattr(batch, "_run", lambda *args: shares.append(args[-1]) or [])
    run("batch", inputs, tmp_path / "shared", "--max-memory", "12M", "--jobs", "2", "-q")
    assert shares == [6 * 2**20]


def test_local_cluster_servers_stay_quiet():
    """The workers of --scheduler local:N run without dask's statistical profiler,
    which samples every thread's stack every 10 ms, and every server checks its
    event loop once a second rather than every 20 ms: time taken from the cores
    the workers fill."""
    from nlmeans_cli.cluster import _client

    def profiling(dask_worker):
        import dask

        return dask.config.get("distributed.worker.profile.enabled")

    def tick_ms(dask_worker=None, dask_scheduler=None):
        return (dask_worker or dask_scheduler).periodic_callbacks["tick"].callback_time

    with _client("local:1") as (client, threads):
        assert list(client.run(profiling).values()) == [False]
        assert list(client.run(tick_ms).values()) == [1000]
        assert client.run_on_scheduler(tick_ms) == 1000
        assert threads == max(1, os.cpu_count() or 1)
