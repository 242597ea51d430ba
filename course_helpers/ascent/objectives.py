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
    return graph.submodel(model, list(_activation_pair(model, layer))), _channel_mean


def _activation_pair(model, layer):
    """(activation layer, the layer whose output feeds its ReLU) of conv layer ``layer``; the
    same layer twice when the ReLU sits inside the conv (VGG)."""
    act = graph.activation_layer(model, layer)
    pre = act
    if isinstance(act, (keras.layers.Activation, keras.layers.ReLU)):
        pre = next(graph.layer(model, src) for src, readers in graph.consumers(model).items()
                   if act.name in readers)
    return act, pre


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


# --------------------------------------------------------------------------- composable objectives
class Objective:
    """What :func:`course_helpers.ascent.render` maximizes: a weighted sum of terms.  Lesson 3.6.

    Build terms with :func:`class_score`, :func:`channel`, :func:`neuron`, :func:`direction` and
    :func:`diversity`; combine them with ``+``, ``-``, a number times an objective and unary
    ``-`` (``-channel("conv4", 3)`` asks for the image that turns channel 3 *off*).  Each term
    gives one number per image of the batch; the objective of a batch is the mean over its
    images of the per-image terms plus the batch terms (diversity).
    """

    def __init__(self, terms):
        self.terms = tuple(terms)   # (weight, kind, layer, params)

    def __add__(self, other):
        if isinstance(other, (int, float)) and other == 0:   # sum([...]) starts from 0
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(self.terms + other.terms)

    __radd__ = __add__

    def __mul__(self, k):
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, float, np.number)):
            return NotImplemented
        k = _checks.number("weight", k)
        return Objective((w * k, kind, layer, p) for w, kind, layer, p in self.terms)

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other)

    def __repr__(self):
        parts = []
        for w, kind, layer, p in self.terms:
            args = ", ".join([repr(layer)] * (layer is not None)
                             + [str(np.round(v, 3).tolist()) if np.ndim(v) else str(v) for v in p])
            parts.append(f"{w:g} * {kind}({args})")
        return " + ".join(parts) if parts else "Objective()"

    @property
    def layers(self) -> list:
        """The conv layers the terms read, in order of first use."""
        return list(dict.fromkeys(layer for _, _, layer, _ in self.terms if layer is not None))

    def key(self) -> tuple:
        """What the compiled step depends on (not the numbers: those are its arguments)."""
        return tuple((kind, layer, tuple(np.shape(v) for v in p))
                     for _, kind, layer, p in self.terms)

    def arguments(self) -> tuple:
        """The terms' numbers as tensors: (weights, per-term params)."""
        weights = tf.constant([w for w, *_ in self.terms], tf.float32)
        return weights, tuple(tuple(tf.constant(v) for v in p) for *_, p in self.terms)


def class_score(class_index) -> Objective:
    """One class score before the softmax (Simonyan et al. 2014)."""
    if isinstance(class_index, str):
        return Objective([(1.0, "class", None, (class_index,))])
    return Objective([(1.0, "class", None, (np.int32(_checks.integer("class_index", class_index)),))])


def channel(layer, index) -> Objective:
    """The mean over positions of one channel of a conv layer (after BN and ReLU)."""
    return Objective([(1.0, "channel", layer, (np.int32(_checks.integer("channel", index)),))])


def neuron(layer, index, row=None, col=None) -> Objective:
    """One unit: channel ``index`` at one position (``row``, ``col``) of the layer's map;
    the centre by default."""
    pos = tuple(-1 if v is None else _checks.integer(name, v, low=0)
                for name, v in (("row", row), ("col", col)))
    return Objective([(1.0, "neuron", layer,
                       (np.int32(_checks.integer("channel", index)), np.int32(pos[0]),
                        np.int32(pos[1])))])


def direction(layer, vector) -> Objective:
    """A direction in the layer's activation space: the mean over positions of the dot
    product of the activation vector with ``vector`` (one number per channel)."""
    v = np.asarray(vector, dtype=np.float32)
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"vector must be a 1-D array of finite numbers, one per channel of "
                         f"the layer; got shape {v.shape}.")
    return Objective([(1.0, "direction", layer, (v,))])


def diversity(layer) -> Objective:
    """Minus the mean pairwise similarity of the images' Gram matrices at ``layer`` (as in
    lucid): adding it (times a weight) pushes the images of a batch apart in *style*, the
    channels that fire together, not only in where things sit.  Needs a batch of k >= 2."""
    return Objective([(1.0, "diversity", layer, ())])


def _check_objective(model, objective) -> Objective:
    """``objective`` resolved for ``model``: class names to indices; layers, channels,
    positions and direction lengths checked (clear errors naming the value and the range)."""
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be built with ch.ascent.channel, neuron, class_score, "
                        f"direction or diversity (and combined with +, -, *); got "
                        f"{type(objective).__name__} {objective!r}.")
    _checks.nonempty("objective", objective.terms, "add at least one term")
    terms = []
    for w, kind, layer, p in objective.terms:
        if kind == "class":
            p = (np.int32(_class_unit(model, p[0])),)
        else:
            conv = graph.require_conv(model, layer)
            layer = conv.name
            n = int(conv.filters)
            if kind in ("channel", "neuron"):
                _channel_unit(model, layer, p[0])
            if kind == "neuron":
                h, w_ = graph.output_of(model, graph.activation_layer(model, layer)).shape[1:3]
                pos = [(h - 1) // 2 if p[1] < 0 else int(p[1]), (w_ - 1) // 2 if p[2] < 0 else int(p[2])]
                for name, v, top in (("row", pos[0], h), ("col", pos[1], w_)):
                    if v >= top:
                        raise ValueError(f"{name} {v} is out of range: layer {layer!r} has a "
                                         f"{h}x{w_} map (0..{top - 1}).")
                p = (p[0], np.int32(pos[0]), np.int32(pos[1]))
            if kind == "direction" and p[0].size != n:
                raise ValueError(f"The direction has {p[0].size} numbers but layer {layer!r} has "
                                 f"{n} channels; pass one number per channel.")
        terms.append((w, kind, layer, p))
    return Objective(terms)


def gram_matrices(acts):
    """Per image, the channels' Gram matrix of a layer's map (B, H, W, C): (B, C, C), each
    divided by its Frobenius norm (so the dot product of two is a cosine similarity)."""
    b, c = tf.shape(acts)[0], tf.shape(acts)[-1]
    flat = tf.reshape(acts, [b, -1, c])
    grams = tf.matmul(flat, flat, transpose_a=True)
    return tf.math.l2_normalize(grams, axis=[1, 2], epsilon=1e-12)


def _mean_pair_similarity(acts):
    g = tf.reshape(gram_matrices(acts), [tf.shape(acts)[0], -1])
    sims = tf.matmul(g, g, transpose_b=True)
    k = tf.cast(tf.shape(acts)[0], tf.float32)
    return (tf.reduce_sum(sims) - tf.linalg.trace(sims)) / tf.maximum(k * (k - 1), 1.0)


def _term(kind, p, post, pre, logits):
    """One term's value: (B,) for a per-image term, a scalar for a batch term."""
    if kind == "class":
        return tf.gather(logits, p[0], axis=-1)
    act = post if pre is None else pre
    if kind == "channel":
        return tf.reduce_mean(tf.gather(act, p[0], axis=-1), axis=[1, 2])
    if kind == "neuron":
        return act[:, p[1], p[2], p[0]]
    if kind == "direction":
        return tf.reduce_mean(tf.tensordot(act, p[0], 1), axis=[1, 2])
    return -_mean_pair_similarity(post)     # diversity


def _combine(objective, weights, params, outs, logits, fallback=False):
    """(total, per_image): the batch objective and the per-image part (B,)."""
    per_image, batch = 0.0, 0.0
    for i, (_, kind, layer, _) in enumerate(objective.terms):
        post, pre = outs[layer] if layer is not None else (None, None)
        value = weights[i] * _term(kind, params[i], post, pre if fallback else None, logits)
        if kind == "diversity":
            batch = batch + value
        else:
            per_image = per_image + value
    return tf.reduce_mean(per_image) + batch, per_image


def _feature_model(model, objective):
    """One Keras model (cached) giving, for each layer the objective reads, its activation and
    the ReLU's input, then the logits when a class term is present."""
    names = objective.layers
    want_logits = any(kind == "class" for _, kind, _, _ in objective.terms)

    def build():
        outs = []
        for name in names:
            act, pre = _activation_pair(model, name)
            outs += [graph.output_of(model, act), graph.output_of(model, pre)]
        if want_logits:
            outs.append(_models.logits_model(model).outputs[0])
        return keras.Model(model.inputs, outs)

    fm = graph.cached_view(model, f"ascent:{'|'.join(names)}:{want_logits}", build)

    def run(x):
        out = fm(x, training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        acts = {name: (out[2 * i], out[2 * i + 1]) for i, name in enumerate(names)}
        return acts, (out[-1] if want_logits else None)

    return run


def _batch(model, images):
    """``images`` as a checked batch; one image (H, W, 3) becomes a batch of 1."""
    shape = () if isinstance(images, (dict, list, tuple)) else np.shape(images)
    single = len(shape) == 2 or (len(shape) == 3 and shape[-1] in (3, 4))
    return _checks.batch_for(model, [images] if single else images)


def evaluate(model, objective, images):
    """The objective's per-image part for each of ``images`` (B,) and the batch's total (mean
    plus batch terms), as NumPy: ``(per_image, total)``; one image counts as a batch of 1.  Lesson 3.6's tables use it."""
    model = _checks.model(model)
    objective = _check_objective(model, objective)
    x = _batch(model, images)
    acts, logits = _feature_model(model, objective)(tf.constant(x))
    weights, params = objective.arguments()
    total, per_image = _combine(objective, weights, params, acts, logits)
    per_image = tf.broadcast_to(per_image, [x.shape[0]])
    return per_image.numpy(), float(total)
