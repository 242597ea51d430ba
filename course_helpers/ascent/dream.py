"""DeepDream: the same ascent started from a real photo of any size (the bridge to lesson 4.1)."""
from __future__ import annotations

import tf_keras as keras

from .. import _checks, graph
from .. import data as _data
from .loop import _STEPS, _ascend, _make_step
from .objectives import _mean_all


def _size_free_extractor(model, layer):
    """``model`` from its input up to ``layer``'s activation, rebuilt for any image size.

    The layers from the input to ``layer`` (:func:`course_helpers.graph.chain`) are copies (same config and weights): calling the model's own layers on a new
    input would add graph nodes to them and confuse later look-ups of "the layer after conv X".
    """
    target = graph.activation_layer(model, layer)
    inp = keras.Input((None, None, 3))
    x = inp
    for lyr in graph.chain(model, target):
        copy = lyr.__class__.from_config(lyr.get_config())
        x = copy(x)
        copy.set_weights(lyr.get_weights())
    return keras.Model(inp, x)


def deep_dream(model, image, layer, steps: int = 40, lr: float = 0.02, jitter: int = 8,
               blur_sigma: float = 0.5, blur_every: int = 4, seed: int = 0, progress=None):
    """DeepDream: start from a real photo and amplify everything ``layer`` sees.  Lesson 3.6.

    The objective is the mean activation of all channels of the conv layer ``layer`` (after BN
    and ReLU).  Same step as :func:`visualize_filter` (jitter, normalized gradient, blur, clip
    to [0, 1]); the photo may have any size (the conv layers are reused on it).  Returns
    :class:`AscentResult`.
    """
    model = _checks.model(model)
    conv = graph.require_conv(model, layer)
    img = _data.load_image(image)
    if img.shape[0] < 8 or img.shape[1] < 8:
        raise ValueError(f"The image is {img.shape[0]}x{img.shape[1]}; DeepDream needs at least 8x8.")
    jitter = _checks.integer("jitter", jitter, low=0)
    per_model = _STEPS.setdefault(model, {})
    key = ("dream", conv.name, jitter > 0)
    if key not in per_model:
        # one size-free copy per layer, shared by the jittered and the plain step
        other = per_model.get(("dream", conv.name, not jitter > 0))
        fm = other[0] if other else _size_free_extractor(model, conv.name)
        per_model[key] = (fm, _mean_all, _make_step(fm, _mean_all, jitter > 0))
    return _ascend(model, "dream", conv.name, 0, steps, lr, 0.0, jitter, blur_every, blur_sigma,
                   0.0, seed, None, clip=True, progress=progress, image=img)
