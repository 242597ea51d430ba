"""The losses of style transfer: Gram matrices, the style loss, the content loss, smoothness.

Losses here are *relative* errors (squared error divided by the target's energy), so one
``style_weight`` means the same thing on every layer and for every feature extractor.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from .. import data as _data
from .extractors import (_check_layers, _input_hw, _listify, default_layers, feature_model,
                         resolve_model)


def gram_matrix(features):
    """Channel correlations of feature maps: G[c, d] = mean over positions of F_c * F_d.

    ``features`` is (H, W, C) or a batch (B, H, W, C); the result is (C, C) or (B, C, C), a
    ``tf.Tensor`` (call ``.numpy()`` for an array).  Dividing by H*W makes images of different
    sizes comparable.  Lesson 4.1.

    Written out in lesson 06, "In plain code: Gram matrix and style loss".
    """
    f = tf.convert_to_tensor(features)
    if not f.dtype.is_floating:
        f = tf.cast(f, tf.float32)
    if f.shape.rank not in (3, 4):
        raise ValueError(f"features must be (H, W, C) or (B, H, W, C), got shape {tuple(f.shape)}.")
    single = f.shape.rank == 3
    if single:
        f = f[None]
    shape = tf.shape(f)
    flat = tf.reshape(f, [shape[0], shape[1] * shape[2], shape[3]])
    g = tf.matmul(flat, flat, transpose_a=True) / tf.cast(shape[1] * shape[2], f.dtype)
    return g[0] if single else g


def _relative(err_sq_sum, target_sq_sum):
    return err_sq_sum / (target_sq_sum + 1e-8)


def _style_terms(feats, target_grams):
    """Per layer: ||G(image) - G(style)||^2 / ||G(style)||^2, for each image of the batch."""
    terms = []
    for f, a in zip(feats, target_grams):
        g = gram_matrix(f)
        terms.append(_relative(tf.reduce_sum(tf.square(g - a), axis=[-2, -1]),
                               tf.reduce_sum(tf.square(a), axis=[-2, -1])))
    return tf.add_n(terms) / len(terms)


def _content_term(f, target):
    return _relative(tf.reduce_sum(tf.square(f - target), axis=[1, 2, 3]),
                     tf.reduce_sum(tf.square(target), axis=[1, 2, 3]))


def squared_variation(images):
    """Mean squared difference between neighbouring pixels, down plus across (smaller =
    smoother), one value per image of a batch (a ``tf.Tensor``).  Lesson 4.1.

    The smoothness term that ``tv_weight`` weighs in :func:`style_transfer` and in the one-pass
    network's training.  It is the *squared* cousin of total variation; the total variation of
    the course (an edge-preserving image prior, the square root of the squared differences) is
    :func:`course_helpers.ascent.total_variation`.
    """
    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape.rank == 3:
        x = x[None]
    dy = tf.reduce_mean(tf.square(x[:, 1:] - x[:, :-1]), axis=[1, 2, 3])
    dx = tf.reduce_mean(tf.square(x[:, :, 1:] - x[:, :, :-1]), axis=[1, 2, 3])
    return dx + dy


def _as_image(image, what):
    if isinstance(image, (str, Path)) or type(image).__module__.startswith("PIL."):
        return _data.load_image(image)
    arr = np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"The {what} image must be one image (H, W, 3); got shape {arr.shape}.")
    return _data.load_image(arr)  # grey/RGBA/uint8 -> float RGB in [0, 1], NaN -> error


def _batch_and_target(image, target, model, what):
    """(batch at the working size, was one image, target image at that size)."""
    single = isinstance(image, (str, Path)) or np.ndim(image) in (2, 3)
    arr = None if single else np.asarray(image)
    if single:
        batch = _as_image(image, "input")[None]
    elif arr.ndim == 4 and arr.dtype.kind == "f" and np.all(np.isfinite(arr)):
        batch = arr.astype(np.float32)   # a float batch is used as it is
    else:
        batch = np.stack([_as_image(b, "input") for b in arr])
    hw = tuple(_input_hw(model) or batch.shape[1:3])
    if batch.shape[1:3] != hw:
        batch = np.stack([_data.resize_image(b, hw) for b in batch])
    return batch, single, _data.resize_image(_as_image(target, what), hw)


def style_loss(image, style, style_layers=None, model=None) -> float:
    """The style loss of ``image`` against ``style`` (0 = same Gram matrices).  Lesson 4.1.

    Mean over ``style_layers`` of the relative Gram error
    ||G(image) - G(style)||^2 / ||G(style)||^2.  The style image is resized to the image's
    size first; an image batch gives one loss per image (an array).

    Written out in lesson 06, "In plain code: Gram matrix and style loss".
    """
    model = resolve_model(model)
    style_layers = default_layers(model)[1] if style_layers is None else style_layers
    style_layers = [style_layers] if isinstance(style_layers, str) else list(style_layers)
    _, style_layers = _check_layers(model, style_layers[0] if style_layers else "", style_layers)
    batch, single, style = _batch_and_target(image, style, model, "style")
    fm = feature_model(model, style_layers)
    targets = [gram_matrix(f) for f in _listify(fm(style[None], training=False))]
    losses = _style_terms(_listify(fm(batch, training=False)), targets).numpy()
    return float(losses[0]) if single else losses


def content_loss(image, content, content_layer=None, model=None) -> float:
    """The content loss of ``image`` against ``content`` (0 = same features).  Lesson 4.1.

    The relative feature error ||F(image) - F(content)||^2 / ||F(content)||^2 at
    ``content_layer`` (default: :func:`default_layers`).  An image batch gives one loss per
    image (an array).
    """
    model = resolve_model(model)
    layer = default_layers(model)[0] if content_layer is None else content_layer
    layer, _ = _check_layers(model, layer, [layer])
    batch, single, content = _batch_and_target(image, content, model, "content")
    fm = feature_model(model, [layer])
    losses = _content_term(fm(batch, training=False), fm(content[None], training=False)).numpy()
    return float(losses[0]) if single else losses
