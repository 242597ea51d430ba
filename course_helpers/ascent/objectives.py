"""What an ascent maximizes: the start image, the objectives (a class score, a channel's mean
activation, a whole layer for DeepDream) and measures of how far a result climbed."""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from .. import _checks, graph
from .. import data as _data
from .. import models as _models

#: The neutral pixel value: L2 decay and small-norm clipping pull pixels towards it.
NEUTRAL = 0.5

_LARGE = 1 << 30


def _input_shape(model):
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(f"{model.name} takes inputs of shape {shape}; gradient ascent here needs "
                         "an RGB image model (H, W, 3).")
    if shape[0] is None or shape[1] is None:
        raise ValueError(f"{model.name} accepts any image size; pass `start=` to fix one.")
    return shape


def start_image(model, start=None, seed: int = 0) -> np.ndarray:
    """The first image of an ascent, float32 (H, W, 3).  Lesson 3.6.

    ``start`` is ``None`` or ``"zeros"`` (all-zero = black, the source's start), ``"grey"``
    (the neutral 0.5 image), ``"random"`` (uniform noise in [0, 1] from ``seed``), or an image
    (any form :func:`course_helpers.data.load_image` takes; it must match the model's size).
    """
    model = _checks.model(model)
    h, w, _ = _input_shape(model)
    if start is None or (isinstance(start, str) and start == "zeros"):
        return np.zeros((h, w, 3), np.float32)
    if isinstance(start, str):
        if start in ("grey", "gray"):
            return np.full((h, w, 3), NEUTRAL, np.float32)
        if start == "random":
            seed = _checks.integer("seed", seed, low=0)
            return np.random.default_rng(seed).uniform(0, 1, (h, w, 3)).astype(np.float32)
        raise ValueError(f"start must be None, 'zeros', 'grey', 'random' or an image; got {start!r}.")
    arr = np.asarray(start)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("The start image contains NaN or infinite values; pass a clean image.")
    img = _data.load_image(arr)
    if img.shape[:2] != (h, w):
        raise ValueError(f"The start image is {img.shape[0]}x{img.shape[1]} but {model.name} takes "
                         f"{h}x{w}; resize it with ch.data.load_image(img, size={h}).")
    return img


def _class_unit(model, class_index):
    n = int(_models.logits_model(model).output_shape[-1])
    if isinstance(class_index, str):
        names = _models.class_names(model)
        if class_index not in names:
            raise ValueError(f"Unknown class {class_index!r}; classes: {', '.join(names[:20])}"
                             + (" ..." if len(names) > 20 else "") + ".")
        return names.index(class_index)
    idx = _checks.integer("class_index", class_index)
    if not 0 <= idx < n:
        raise ValueError(f"class_index {idx} is out of range: {model.name} has {n} classes "
                         f"(0..{n - 1}).")
    return idx


def _channel_unit(model, layer, channel):
    conv = graph.require_conv(model, layer)
    n = int(conv.filters)
    ch_ = _checks.integer("channel", channel)
    if not 0 <= ch_ < n:
        raise ValueError(f"channel {ch_} is out of range: layer {conv.name!r} has {n} channels "
                         f"(0..{n - 1}).")
    return conv.name, ch_


# --------------------------------------------------------------------------- objectives
def _class_score(out, unit):
    return tf.gather(out, unit, axis=-1)


def _channel_mean(out, unit):
    return tf.reduce_mean(tf.gather(out[0], unit, axis=-1), axis=[1, 2])


def _pre_activation_mean(out, unit):
    return tf.reduce_mean(tf.gather(out[1], unit, axis=-1), axis=[1, 2])


def _mean_all(out, unit):
    return tf.reduce_mean(out, axis=[1, 2, 3])


def _objective(model, kind, layer=None):
    """(feature model, reduce): the Keras model whose output the objective reads, and the
    reduction from its output and the unit index to one number per image.

    A filter's feature model returns the conv's output after BN and ReLU and, for a separate
    ReLU layer, that layer's input: the fallback objective while the channel is silent
    everywhere (see :func:`visualize_filter`).  Sub-models come from the package's one cache
    (:func:`course_helpers.graph.submodel`).
    """
    if kind == "class":
        return _models.logits_model(model), _class_score
    act = graph.activation_layer(model, layer)
    pre = act
    if isinstance(act, (keras.layers.Activation, keras.layers.ReLU)):
        pre = next(graph.layer(model, src) for src, readers in graph.consumers(model).items()
                   if act.name in readers)
    return graph.submodel(model, [act, pre]), _channel_mean


def objective_value(model, images, class_index=None, layer=None, channel=None) -> np.ndarray:
    """The objective an ascent maximizes, for each of ``images`` (N, H, W, 3) or one image.

    With ``class_index``: the class score before softmax.  With ``layer`` and ``channel``: the
    mean activation of that channel (after BN and ReLU).  Lesson 3.6 uses it to compare the
    start, a random image and the result.
    """
    model = _checks.model(model)
    shape = () if isinstance(images, (dict, list, tuple)) else np.shape(images)
    single = len(shape) == 2 or (len(shape) == 3 and shape[-1] in (3, 4))
    x = _checks.batch_for(model, [images] if single else images)
    if (class_index is None) == (layer is None):
        raise ValueError("Give either class_index, or layer and channel.")
    if class_index is not None:
        fm, reduce = _objective(model, "class")
        unit = _class_unit(model, class_index)
    else:
        name, unit = _channel_unit(model, layer, channel)
        fm, reduce = _objective(model, "filter", name)
    vals = reduce(fm(tf.constant(x), training=False), unit).numpy()
    return vals[0] if single else vals


def improvement(history, random_value, eps: float = 1e-3) -> float:
    """How many times the result beats the start and a random image.  Lesson 3.6.

    ``max(history) / max(history[0], random_value, eps)``: the result (the best image of the
    run, which the ascent returns) against the stronger of the
    two reference images.  A reference that scores below ``eps`` (near 0 or negative: the neuron
    does not fire for it) sets the floor ``eps`` instead, since a ratio to ~0 means nothing.
    """
    h = np.asarray(_checks.nonempty("history", np.ravel(history), "pass the history of a run"),
                   dtype=np.float64)
    eps = _checks.number("eps", eps, positive=True)
    base = max(float(h[0]), _checks.number("random_value", random_value), eps)
    return float(h.max() / base)


def filter_gains(model, layer, images, channels=None, start="grey", seed: int = 0) -> list:
    """For filter pictures ``images`` (one per channel, channels 0, 1, ... by default): the
    channel's mean activation on the start image, on a random image and on its picture, and
    the gain picture / max(start, random).  Prints a small table and returns the rows as
    dicts.  Lesson 3.6."""
    model = _checks.model(model)
    images = np.asarray(_checks.nonempty("images", list(images), "pass one picture per channel"),
                        dtype=np.float32)
    channels = list(range(len(images))) if channels is None else list(channels)
    if len(channels) != len(images):
        raise ValueError(f"{len(images)} pictures but {len(channels)} channels.")
    x0 = start_image(model, start, seed)
    noise = start_image(model, "random", seed)
    rows = []
    for c, img in zip(channels, images):
        s, r, v = (float(np.ravel(objective_value(model, im, layer=layer, channel=c))[0])
                   for im in (x0, noise, img))
        rows.append({"channel": c, "start": s, "random": r, "picture": v,
                     "gain": v / max(s, r, 1e-3)})
    print(f"{layer}: channel  start  random  picture  gain")
    for row in rows:
        print(f"{'':{len(str(layer))}}  {row['channel']:7d} {row['start']:6.2f} {row['random']:7.2f} "
              f"{row['picture']:8.2f} {row['gain']:5.0f}x")
    return rows
