"""Lesson 5 — the visualization toolbox: keras-vis, today tf-keras-vis (可视化工具, notebook 07).

The source note uses keras-vis (``visualize_saliency``, ``visualize_activation``).  keras-vis
stopped working with TensorFlow 2; its maintained successor is **tf-keras-vis**.  This package
holds thin wrappers around tf-keras-vis that hide three compatibility workarounds:

* tf-keras-vis needs the Keras 2 API: ``import course_helpers`` first switches TensorFlow to
  tf-keras (``TF_USE_LEGACY_KERAS=1``).
* tf-keras-vis looks for "the last conv layer" with a class test written for Keras 3, which
  tf-keras layers fail; so Grad-CAM and Score-CAM are always told the layer by name
  (``penultimate_layer=name, seek_penultimate_conv_layer=False``).
* Instead of tf-keras-vis's ``ReplaceToLinear`` model modifier (which clones the model and
  switches its softmax off), every visualizer shares ``ch.models.logits_model(model)``, a view
  of the same weights before the softmax, with ``clone=False``.  One model, no copies.

Compute (:mod:`.methods`): :func:`saliency`, :func:`gradcam`, :func:`gradcam_plus_plus`,
:func:`layercam`, :func:`scorecam`, :func:`compare_methods`; (:mod:`.layers`) :func:`cams_by_layer`
at every conv layer, :func:`guided_saliency` (tf-keras-vis's guided backprop),
:func:`guided_modifier_reach`, :func:`relu_layer_twin`; (:mod:`.maximization`) :func:`activation_maximization`.
Draw (:mod:`.plots`): :func:`captioned_overlay`, :func:`plot_comparison`, :func:`plot_maximized`,
:func:`plot_maps`; (:mod:`.layers`) :func:`plot_layer_grid`.  Widget: :func:`kerasvis_explorer`.  All importable from here.
"""
from .maximization import (TqdmProgress, activation_maximization, default_input_modifiers,
                           default_regularizers)
from .methods import (KERAS_VIS_TO_TF_KERAS_VIS, METHODS, Toolbox, cam_layer, compare_methods,
                      gradcam, gradcam_plus_plus, layercam, mapping_table, saliency, scorecam,
                      toolbox)
from .layers import (LAYER_METHODS, cams_by_layer, guided_modifier_reach, guided_saliency,
                     plot_layer_grid, relu_layer_twin)
from .plots import captioned_overlay, kerasvis_explorer, plot_comparison, plot_maps, plot_maximized

__all__ = ["TqdmProgress", "activation_maximization", "default_input_modifiers",
           "default_regularizers", "KERAS_VIS_TO_TF_KERAS_VIS", "METHODS", "Toolbox", "cam_layer",
           "compare_methods", "gradcam", "gradcam_plus_plus", "layercam", "mapping_table", "saliency",
           "scorecam", "toolbox", "captioned_overlay", "kerasvis_explorer", "plot_comparison",
           "plot_maps", "plot_maximized", "LAYER_METHODS", "cams_by_layer", "guided_modifier_reach",
           "guided_saliency", "plot_layer_grid", "relu_layer_twin"]
