"""DeepDream: the same ascent started from a real photo of any size (the bridge to lesson 4.1)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf
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


def _size_free_features(model, layers):
    """Like :func:`_size_free_extractor`, with one output per layer of ``layers`` (activations
    after BN and ReLU); the layers must lie on one chain (course-cnn, VGG)."""
    targets = [graph.activation_layer(model, name) for name in layers]
    deepest = max(targets, key=lambda t: len(graph.chain(model, t)))
    inp = keras.Input((None, None, 3))
    x, outs = inp, {}
    for lyr in graph.chain(model, deepest):
        copy = lyr.__class__.from_config(lyr.get_config())
        x = copy(x)
        copy.set_weights(lyr.get_weights())
        outs[lyr.name] = x
    missing = [t.name for t in targets if t.name not in outs]
    if missing:
        raise ValueError(f"Layers {missing} are not on the path to {deepest.name!r}; DeepDream "
                         "with several layers needs them on one chain.")
    return keras.Model(inp, [outs[t.name] for t in targets])


def _dream_loss(feats, weights):
    """keras.io's DeepDream loss: for each layer, weight x the mean square activation, the
    2-pixel border left out (it is shaped by the padding, not the photo)."""
    loss = 0.0
    for act, w in zip(feats, weights):
        inner = act[:, 2:-2, 2:-2, :]
        loss += w * tf.reduce_sum(tf.square(inner)) / tf.cast(tf.size(act), tf.float32)
    return loss


def _resize(x, size):
    return tf.image.resize(x, size, method="bilinear")


def deep_dream_octaves(model, image, layers, octaves: int = 3, octave_scale: float = 1.4,
                       steps: int = 20, lr: float = 0.01, max_loss=None, progress=None):
    """DeepDream with octaves and several weighted layers (keras.io's recipe).  Lesson 3.6.

    ``layers`` maps conv layer names to weights, e.g. ``{"conv2": 1.0, "conv3": 1.5}``; the
    loss is the weighted sum of mean square activations (:func:`_dream_loss`).  The photo is
    processed at ``octaves`` sizes, smallest first, each ``octave_scale`` times the one before;
    at each: ``steps`` steps of size ``lr`` along the gradient divided by its mean absolute
    value (stopping early once the loss passes ``max_loss``), then the image is enlarged to
    the next size and the detail lost by shrinking the photo is added back.  Pixels are
    clipped to [0, 1].  Returns ``(image, losses)``: the dream, the same size as the photo,
    and the loss after every step of every octave.
    """
    model = _checks.model(model)
    img = _data.load_image(image)
    if not isinstance(layers, dict) or not layers:
        raise ValueError(f"layers must be a dict of conv layer -> weight such as "
                         f"{{'conv2': 1.0, 'conv3': 1.5}}, got {layers!r}.")
    names = [graph.require_conv(model, name).name for name in layers]
    weights = [_checks.number(f"weight of {n}", w) for n, w in zip(names, layers.values())]
    octaves = _checks.integer("octaves", octaves, low=1)
    octave_scale = _checks.number("octave_scale", octave_scale, low=1.0)
    steps = _checks.integer("steps", steps, low=0)
    lr = _checks.number("lr", lr, positive=True)
    if max_loss is not None:
        max_loss = _checks.number("max_loss", max_loss, positive=True)
    h, w = img.shape[:2]
    sizes = [(max(8, round(h / octave_scale ** i)), max(8, round(w / octave_scale ** i)))
             for i in range(octaves)][::-1]
    per_model = _STEPS.setdefault(model, {})
    key = ("octaves", tuple(names))
    if key not in per_model:
        fm = _size_free_features(model, names)

        def step(x, wts, lr):
            with tf.GradientTape() as tape:
                tape.watch(x)
                feats = fm(x, training=False)
                loss = _dream_loss(feats if isinstance(feats, list) else [feats], tf.unstack(wts))
            g = tape.gradient(loss, x)
            g = g / tf.maximum(tf.reduce_mean(tf.abs(g)), 1e-6)
            return tf.clip_by_value(x + lr * g, 0.0, 1.0), loss

        per_model[key] = (fm, None, tf.function(step))
    step = per_model[key][2]
    wts, lr_t = tf.constant(weights, tf.float32), tf.constant(lr, tf.float32)
    original = tf.constant(img[None])
    shrunk = _resize(original, sizes[0])
    x = shrunk
    losses = []
    for size in sizes:
        x = _resize(x, size)
        for _ in range(steps):
            x, loss = step(x, wts, lr_t)
            losses.append(float(loss))
            if max_loss is not None and losses[-1] > max_loss:
                break
        # put back the detail that shrinking the photo to this size lost
        lost = _resize(original, size) - _resize(shrunk, size)
        x = tf.clip_by_value(x + lost, 0.0, 1.0)
        shrunk = _resize(original, size)
    return x.numpy()[0], np.asarray(losses, np.float32)
