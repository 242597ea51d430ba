"""Checks for notebook 07 (lesson 5, tf-keras-vis)."""
from __future__ import annotations

import numpy as np

from ._base import is_missing, report

__all__ = ["check_translated_saliency", "check_cam_layer"]


def _norm(x):
    x = np.asarray(x, dtype=np.float64)
    return (x - x.min()) / max(x.max() - x.min(), 1e-12)


def check_translated_saliency(my_map, model, image, class_index: int = 2) -> bool:
    """Exercise 7.1: your tf-keras-vis translation of
    ``visualize_saliency(model, layer_idx=-1, filter_indices=2, seed_input=image)``."""
    from .. import kerasvis

    if is_missing(my_map):
        return report(False, hint="Replace ... with the map that your Saliency call returns.")
    arr = np.asarray(my_map, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    want = kerasvis.saliency(model, image, class_index)
    if arr.shape != want.shape:
        return report(False, hint=f"Expected one map of shape {want.shape} (rows, columns); yours "
                                  f"has shape {arr.shape}. keepdims=False drops the colour axis.")
    if not np.all(np.isfinite(arr)):
        return report(False, hint="Your map contains NaN values.")
    if np.abs(_norm(arr) - _norm(want)).max() < 1e-3:
        return report(True, "Right: same map as keras-vis would give.")
    n_classes = int(model.output_shape[-1])
    for c in range(n_classes):
        if c != class_index and np.abs(_norm(arr) - _norm(kerasvis.saliency(model, image, c))).max() < 1e-3:
            return report(False, hint="That is the map of another class: filter_indices of the "
                                      "last layer is the class, so which score object picks it?")
    return report(False, hint="Not the same map. Check that you use the view before the "
                              "softmax (keras-vis made the last layer linear) and no smoothing.")


def check_cam_layer(layer_name, model) -> bool:
    """Exercise 7.2: the layer name to give Grad-CAM for the last conv layer's activation."""
    from .. import kerasvis, models

    if is_missing(layer_name):
        return report(False, hint="Replace ... with a layer name (a string).")
    if not isinstance(layer_name, str):
        return report(False, hint="Give the layer's name as a string.")
    names = [lyr.name for lyr in model.layers]
    if layer_name not in names:
        return report(False, hint="There is no such layer: look at [l.name for l in model.layers].")
    want = kerasvis.cam_layer(model)
    if layer_name == want:
        return report(True, "Right: the last conv block's output after batch norm and ReLU.")
    if layer_name in models.conv_layer_names(model):
        return report(False, hint="That is the raw convolution, before batch norm and ReLU; "
                                  "Grad-CAM weighs what the next layers see.")
    return report(False, hint="Grad-CAM needs the last spatial map the classifier sees: "
                              "walk back from 'gap'.")
