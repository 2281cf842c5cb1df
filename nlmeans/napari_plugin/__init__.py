"""The napari plugin: a dock widget that denoises an Image layer.

``napari.yaml`` (the npe2 manifest, found through the ``napari.manifest`` entry
point) names :class:`~nlmeans.napari_plugin.widget.DenoiseWidget`. The job it
runs, :func:`~nlmeans.napari_plugin.job.denoise_layer_data`, needs neither Qt
nor napari; the widget needs both (``pip install "nlmeans[napari]"``).
"""
