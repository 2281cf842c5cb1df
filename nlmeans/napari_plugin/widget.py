"""The dock widget: pick an Image layer, its axes, the method and h (or the
automatic mode), see the noise's estimated sigma, run in a worker thread with
a progress bar and a cancel button; the result is a new layer."""

import threading

import numpy as np
from magicgui.widgets import (CheckBox, ComboBox, Container, FloatSpinBox, Label, ProgressBar,
                              PushButton)
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal

from nlmeans.model.parameters import estimate_noise
from nlmeans.napari_plugin.job import (AXES, METHODS, Cancelled, axes_choices, default_axes,
                                       denoise_layer_data, job_axes, noise_text)

# The progress bar's steps: fine enough to move on a long job.
STEPS = 1000


class _Relay(QObject):
    """Carries progress from the kernel's threads to the GUI thread (a queued
    signal: the widgets are touched in the GUI thread only)."""

    progressed = Signal(float)


class DenoiseWidget(Container):
    """Denoise the selected Image layer with nlmeans; the result is a new layer
    with the settings in its metadata (``metadata["nlmeans"]``)."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.layer = ComboBox(label="image", choices=self._image_layers)
        self.axes = ComboBox(label="axes", choices=self._axes_choices)
        self.method = ComboBox(label="method", choices=list(METHODS))
        self.automatic = CheckBox(text="automatic h", value=True)
        self.h = FloatSpinBox(label="h", value=10.0, min=0.001, max=1e9, step=0.5,
                              enabled=False)
        self.sigma = Label(label="noise σ", value="—")
        self.run_button = PushButton(text="Denoise")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(value=0, min=0, max=STEPS, label="progress")
        self.status = Label(value="")
        self.extend([self.layer, self.axes, self.method, self.automatic, self.h, self.sigma,
                     self.run_button, self.cancel_button, self.progress, self.status])
        self.worker = None
        self._cancel = threading.Event()
        self._relay = _Relay()
        self._relay.progressed.connect(self._show_progress)
        self.layer.changed.connect(self._layer_changed)
        self.axes.changed.connect(self._estimate_sigma)
        self.automatic.changed.connect(lambda on: setattr(self.h, "enabled", not on))
        self.run_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self.reset_choices)
        self._layer_changed(self.layer.value)

    def _image_layers(self, _widget=None):
        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    def _axes_choices(self, _widget=None):
        """The layouts the selected layer can take (reset_choices asks again)."""
        layer = self.layer.value
        return [] if layer is None else axes_choices(layer.data.ndim, layer.rgb)

    def _layer_changed(self, layer):
        self.axes.reset_choices()
        if layer is None:
            self.sigma.value = "—"
            return
        labels = tuple(self.viewer.dims.axis_labels)[-layer.ndim:]
        self.axes.value = default_axes(layer.data.ndim, layer.rgb, labels)
        self._estimate_sigma()

    def _estimate_sigma(self, *_):
        """The noise's sigma on the layer's first job (Donoho's estimate, as
        the automatic mode measures it), in the layer's units."""
        layer = self.layer.value
        if layer is None or self.axes.value is None:
            return
        data = np.asarray(layer.data)
        first = data[(0,) * job_axes(data.ndim, self.axes.value, layer.rgb)]
        first = first[0] if AXES[self.axes.value][1] else first  # the first frame
        try:
            sigma = estimate_noise(first, channel_axis=-1 if layer.rgb else None)
        except ValueError as error:
            self.sigma.value = f"cannot estimate: {error}"
            return
        self.sigma.value = f"{float(np.mean(sigma)):.3g}"

    def start(self, *_):
        """Denoise the selected layer in a worker thread (the viewer stays live)."""
        layer = self.layer.value
        if layer is None or self.worker is not None:
            return
        self._cancel.clear()
        options = {"axes": self.axes.value, "rgb": layer.rgb, "method": self.method.value,
                   "h": None if self.automatic.value else float(self.h.value)}
        self.worker = create_worker(denoise_layer_data, np.asarray(layer.data), **options,
                                    progress=self._relay.progressed.emit,
                                    cancelled=self._cancel.is_set, _start_thread=False,
                                    _ignore_errors=True)  # _failed shows them
        self.worker.returned.connect(lambda result: self._add_result(layer, *result))
        self.worker.errored.connect(self._failed)
        self.worker.finished.connect(self._idle)
        self.progress.value = 0
        self.status.value = "denoising..."
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.worker.start()

    def cancel(self, *_):
        """Stop the running job between two of the kernel's tiles."""
        if self.worker is not None:
            self._cancel.set()
            self.status.value = "cancelling..."

    def _show_progress(self, fraction):
        self.progress.value = int(round(min(max(fraction, 0.0), 1.0) * STEPS))

    def _add_result(self, layer, result, summary):
        self.viewer.add_image(result, name=f"{layer.name} (denoised)", rgb=layer.rgb,
                              scale=layer.scale, translate=layer.translate,
                              contrast_limits=layer.contrast_limits,
                              colormap=layer.colormap if not layer.rgb else None,
                              metadata={"nlmeans": summary})
        noise = noise_text(summary)
        self.sigma.value = noise
        self.progress.value = STEPS
        self.status.value = "done"
        show_info(f"nlmeans: {layer.name} denoised ({summary['method']}, "
                  f"{noise if summary['noise'] != 'white' else 'σ ' + noise})")

    def _failed(self, error):
        if isinstance(error, Cancelled):
            self.status.value = "cancelled"
            self.progress.value = 0
            return
        self.status.value = f"error: {error}"
        show_error(f"nlmeans: {error}")

    def _idle(self):
        self.worker = None
        self.run_button.enabled, self.cancel_button.enabled = True, False
