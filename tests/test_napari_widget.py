"""The napari widget in a headless viewer (napari's make_napari_viewer fixture,
pytest-qt; the canvas needs an X display: pytest-xvfb starts Xvfb).

Runs where the ``napari-test`` extra is installed (CI installs it); skipped
where napari is not installed, as the OpenCV comparisons are without OpenCV.
Set NLMEANS_NAPARI_SCREENSHOT to a PNG path to keep the docs' screenshot.
"""

import os
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("napari", reason="the napari extra is not installed")
pytest.importorskip("pytestqt", reason="the napari-test extra is not installed")
if not os.environ.get("DISPLAY") and shutil.which("Xvfb") is None:
    pytest.skip("napari's canvas needs an X display (Xvfb) with OpenGL", allow_module_level=True)

import nlmeans  # noqa: E402
from nlmeans.napari_plugin.widget import STEPS, DenoiseWidget  # noqa: E402

from conftest import SAMPLES  # noqa: E402

RNG = np.random.default_rng(3)
TIMEOUT_MS = 120_000  # the first run may compile a kernel (about 20 s)


def docked_widget(viewer):
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="nlmeans")
    return widget


def run_to_end(qtbot, viewer, widget):
    layers = len(viewer.layers)
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert widget.status.value == "done", widget.status.value
    assert len(viewer.layers) == layers + 1
    return viewer.layers[-1]


def test_manifest_names_the_widget():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("nlmeans")
    (widget,) = manifest.contributions.widgets
    (command,) = [c for c in manifest.contributions.commands if c.id == widget.command]
    assert command.python_name == "nlmeans.napari_plugin.widget:DenoiseWidget"


def test_widget_denoises_an_image(make_napari_viewer, qtbot):
    import imageio.v3 as iio

    viewer = make_napari_viewer()
    noisy = iio.imread(os.path.join(SAMPLES, "camera_noisy.png"))
    viewer.add_image(noisy, name="camera")
    widget = docked_widget(viewer)
    assert widget.axes.choices == ("Y, X",) and widget.axes.value == "Y, X"
    assert float(widget.sigma.value) == pytest.approx(nlmeans.estimate_noise(noisy), rel=5e-3)
    result = run_to_end(qtbot, viewer, widget)
    np.testing.assert_array_equal(result.data, nlmeans.denoise(noisy))
    assert widget.progress.value == STEPS
    settings = result.metadata["nlmeans"]
    assert settings["method"] == "NL-means" and settings["mode"] == "auto"
    assert settings["sigma"] == pytest.approx(float(widget.sigma.value), rel=1e-2)
    assert result.name == "camera (denoised)"
    path = os.environ.get("NLMEANS_NAPARI_SCREENSHOT")
    if path:
        viewer.layers["camera"].visible = False
        viewer.window.show()  # on the test's display (Xvfb): the canvas gets its size
        viewer.window.resize(1100, 640)
        qtbot.wait(300)
        viewer.reset_view()
        viewer.screenshot(path, canvas_only=False)


def test_widget_denoises_an_rgb_image_with_h(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    rgb = (RNG.random((40, 48, 3)) * 255).astype(np.uint8)
    viewer.add_image(rgb, name="colour")
    widget = docked_widget(viewer)
    widget.automatic.value = False
    assert widget.h.enabled
    widget.h.value = 20.0
    result = run_to_end(qtbot, viewer, widget)
    assert result.rgb
    np.testing.assert_array_equal(result.data, nlmeans.denoise(rgb, 20.0, channel_axis=-1))
    assert result.metadata["nlmeans"]["h"] == 20.0


def test_widget_says_when_the_noise_grows_with_the_signal(make_napari_viewer, qtbot):
    """Photon noise: the label shows the variance curve that ran, not the
    stabilised image's sigma (about 1)."""
    from test_signal_dependent import photon_noise, scene

    viewer = make_napari_viewer()
    noisy = np.clip(np.rint(photon_noise(scene((90, 60)), 4.0, 4.0, seed=10)), 0, 255)
    viewer.add_image(noisy.astype(np.uint8), name="photons")
    widget = docked_widget(viewer)
    result = run_to_end(qtbot, viewer, widget)
    settings = result.metadata["nlmeans"]
    assert settings["noise"] == "signal-dependent"
    assert widget.sigma.value.startswith("signal-dependent, variance ")
    a, b = settings["variance_curve"][0]
    assert f"{a:.3g}·x + {b:.3g}" in widget.sigma.value


def test_widget_denoises_a_volume_with_nlbayes(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    volume = RNG.random((10, 32, 36)).astype(np.float32) * 100
    viewer.add_image(volume, name="volume", scale=(2.0, 1.0, 1.0))
    widget = docked_widget(viewer)
    assert widget.axes.value == "Z, Y, X"
    widget.method.value = "NL-Bayes"
    result = run_to_end(qtbot, viewer, widget)
    np.testing.assert_array_equal(result.data, nlmeans.denoise(volume, method="nlbayes"))
    np.testing.assert_array_equal(result.scale, (2.0, 1.0, 1.0))


def test_widget_denoises_a_time_series(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    frames = (RNG.random((6, 32, 40)) * 255).astype(np.uint8)
    viewer.add_image(frames, name="frames")
    viewer.dims.axis_labels = ("t", "y", "x")
    widget = docked_widget(viewer)
    assert widget.axes.value == "T, Y, X"
    result = run_to_end(qtbot, viewer, widget)
    np.testing.assert_array_equal(result.data, nlmeans.denoise(frames, time_axis=0))
    assert result.metadata["nlmeans"]["axes"] == "T, Y, X"


def test_viewer_stays_live_and_the_job_cancels(make_napari_viewer, qtbot):
    """A job of several seconds: the GUI thread handles timer events throughout
    and the progress bar moves; Cancel stops it between tiles, adding no layer."""
    from qtpy.QtCore import QTimer

    viewer = make_napari_viewer()
    planes = (RNG.random((300, 256, 256)) * 255).astype(np.uint8)  # long on any machine
    viewer.add_image(planes, name="planes")
    widget = docked_widget(viewer)
    widget.axes.value = "Y, X"  # 300 jobs, one per plane: cancelled long before the end
    widget.method.value = "NL-Bayes"
    ticks, seen = [], set()
    timer = QTimer()
    timer.timeout.connect(lambda: (ticks.append(time.perf_counter()),
                                   seen.add(widget.progress.value)))
    timer.start(20)
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: widget.progress.value > 0, timeout=TIMEOUT_MS)
    start = time.perf_counter()
    qtbot.wait(4000)
    live = [t for t in ticks if t >= start]
    assert widget.worker is not None, "the job ended before the check: make it longer"
    assert len(live) >= 100, f"{len(live)} timer events in 4 s"
    assert max(np.diff(live)) < 0.5
    assert len(seen) >= 3
    widget.cancel_button.native.click()
    clicked = time.perf_counter()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    timer.stop()
    assert time.perf_counter() - clicked < 5
    assert widget.status.value == "cancelled"
    assert len(viewer.layers) == 1 and widget.run_button.enabled
