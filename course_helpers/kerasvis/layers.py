"""Lesson 5 (notebook 07), "which layer should I use?" and guided backprop through tf-keras-vis.

* :func:`cams_by_layer` and :func:`plot_layer_grid`: Grad-CAM (or Layer-CAM) at every conv
  layer, for a grid of images x layers.
* :func:`guided_saliency`: tf-keras-vis's own guided backprop (``Saliency`` with its
  ``GuidedBackpropagation`` model modifier, on a clone of the model), and
  :func:`guided_modifier_reach`, which ReLUs that modifier actually rewrites.  The modifier
  swaps the ``activation`` attribute of layers; a ``keras.layers.ReLU`` layer has none, so it is
  left as it is and the "guided" map is the plain gradient, without a warning.
  :func:`relu_layer_twin` builds the same network with ``ReLU`` layers to show it: there the
  modifier rewrites nothing.
"""
from __future__ import annotations

import numpy as np

from .. import _checks, _facts
from .. import graph as _graph
from .. import widgets as _widgets
from .methods import _batch, _classes, gradcam, layercam
from .plots import captioned_overlay

#: The CAMs :func:`cams_by_layer` can draw at each layer.
LAYER_METHODS = ("Grad-CAM", "Layer-CAM")


# --------------------------------------------------------------------------- which layer?
def cams_by_layer(model, image, class_index, layers=None, method: str = "Grad-CAM") -> dict:
    """``{conv layer name: map (H, W) in [0, 1]}``: ``method`` (:data:`LAYER_METHODS`) at each
    of ``layers`` (default: every conv layer, first to last), for one image.  Cached.  Lesson 5.

    Each map weighs that conv layer's activation (after its BN and ReLU, as
    ``ch.kerasvis.cam_layer`` picks it); early layers have fine grids, the last the coarsest.
    """
    model = _checks.model(model)
    img = _checks.image_for(model, image)
    c = _checks.check_class(model, class_index)
    method = _checks.choice("method", method, LAYER_METHODS)
    names = _checks.conv_layer_names(model, layers)
    run = gradcam if method == "Grad-CAM" else layercam
    out = {}
    for name in names:
        key = ("cams_by_layer", method, _widgets.model_key(model), _widgets.array_key(img), c, name)
        out[name] = _widgets.cached(key, lambda name=name: run(model, img, c, layer=name))
    return out


def plot_layer_grid(model, images, class_indices, layers=None, methods=("Grad-CAM",),
                    size: int = 96, row_titles=None):
    """A grid: one row per (image, method), one column per conv layer, each map over its image
    with the layer's name drawn on it.  Returns the Figure.  Lesson 5."""
    import matplotlib.pyplot as plt

    batch, _ = _batch(model, images)
    classes = _classes(model, class_indices, len(batch))
    methods = [methods] if isinstance(methods, str) else list(methods)
    methods = [_checks.choice("methods", m, LAYER_METHODS)
               for m in _checks.nonempty("methods", methods, f"name one of {LAYER_METHODS}")]
    names = _checks.conv_layer_names(model, layers)
    rows = [(i, m) for i in range(len(batch)) for m in methods]
    fig, axes = plt.subplots(len(rows), len(names) + 1, squeeze=False,
                             figsize=(1.6 * (len(names) + 1), 1.6 * len(rows)))
    for r, (i, m) in enumerate(rows):
        maps = cams_by_layer(model, batch[i], classes[i], names, method=m)
        title = row_titles[i] if row_titles is not None else "input"
        axes[r, 0].imshow(captioned_overlay(batch[i], None, f"{title}\n{m}", size=size))
        for j, name in enumerate(names, start=1):
            axes[r, j].imshow(captioned_overlay(batch[i], maps[name], name, size=size))
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    return fig


# --------------------------------------------------------------------------- guided backprop via tf-keras-vis
def _guided_visualizer(model):
    """tf-keras-vis ``Saliency`` on a clone of ``model`` with its softmax switched off and its
    ReLUs rewritten by ``GuidedBackpropagation`` (the user's model is not touched)."""
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import GuidedBackpropagation, ReplaceToLinear

    return Saliency(model, model_modifier=[ReplaceToLinear(), GuidedBackpropagation()], clone=True)


def guided_saliency(model, images, class_index, visualizer=None) -> np.ndarray:
    """Guided backprop as tf-keras-vis computes it: raw gradients (H, W, 3) for one image,
    (n, H, W, 3) for a batch, with ``GuidedBackpropagation``'s ReLU rule (keras-vis's
    ``backprop_modifier="guided"``).  Compare with ``ch.attribution.guided_backprop``.

    Each call clones the model (so its current weights count); pass ``visualizer`` (from
    ``ch.kerasvis.layers._guided_visualizer``) to reuse one clone.  Lesson 5.
    """
    from tf_keras_vis.utils.scores import CategoricalScore

    batch, single = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    vis = _guided_visualizer(model) if visualizer is None else visualizer
    grads = vis(CategoricalScore(classes), batch, keepdims=True, gradient_modifier=None,
                normalize_map=False)
    grads = np.asarray(grads, dtype=np.float32)
    return grads[0] if single else grads


def _relu_layers(model) -> list:
    import tf_keras as keras

    found = []
    for lyr in model.layers:
        act = getattr(lyr, "activation", None)
        if isinstance(lyr, keras.layers.ReLU) or act is keras.activations.relu:
            found.append(lyr.name)
    return found


def guided_modifier_reach(model) -> dict:
    """``{name of a layer with a ReLU: True if tf-keras-vis's GuidedBackpropagation rewrote
    it}``, measured on a clone (the modifier is run on it and each layer's activation compared
    with the original's).  Lesson 5."""
    model = _checks.model(model)
    vis = _guided_visualizer(model)
    after = {lyr.name: getattr(lyr, "activation", None) for lyr in vis.model.layers}
    before = {lyr.name: getattr(lyr, "activation", None) for lyr in model.layers}
    return {name: after[name] is not before[name] for name in _relu_layers(model)}


def relu_layer_twin(model):
    """The same network and weights with every ReLU written as a ``keras.layers.ReLU()`` layer
    (as many hand-built models are written): an ``Activation("relu")`` layer becomes one,
    and a Conv/Dense layer with a ReLU inside becomes the linear layer followed by one
    (``<name>_relu``).  Same outputs, same gradients.  A new model, built layer by layer along
    the chain of ``model`` (course-cnn, VGG); ``model`` is not changed.  Lesson 5."""
    import tf_keras as keras

    model = _checks.model(model)
    x = inputs = keras.Input(model.input_shape[1:], name=model.layers[0].name)
    for lyr in _graph.chain(model):   # a plain chain of layers, like course-cnn and VGG
        if isinstance(lyr, keras.layers.Activation) and lyr.activation is keras.activations.relu:
            x = keras.layers.ReLU(name=lyr.name)(x)
            continue
        config = lyr.get_config()
        inside = getattr(lyr, "activation", None) is keras.activations.relu
        if inside:
            config["activation"] = "linear"
        new = lyr.__class__.from_config(config)
        x = new(x)
        new.set_weights(lyr.get_weights())
        if inside:
            x = keras.layers.ReLU(name=f"{lyr.name}_relu")(x)
    twin = keras.Model(inputs, x, name=f"{model.name}_relu_layers")
    return _facts.tag(twin, class_names=_facts.class_names(model),
                      name=f"{_facts.info(model, 'name', model.name)}-relu-layers")
