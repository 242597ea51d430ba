"""Gatys et al.'s style transfer by optimization: change the pixels, the network stays fixed."""
from __future__ import annotations

import sys
import time
import weakref

import numpy as np
import tensorflow as tf
import tf_keras as keras

from .. import _checks
from .. import data as _data
from .extractors import _check_layers, _input_hw, _listify, default_layers, feature_model, \
    resolve_model
from .losses import _as_image, _content_term, _style_terms, gram_matrix, squared_variation

_LR_FIX = "It is the size of Adam's steps on the pixels, e.g. 0.03."


def style_transfer(content, style, steps=200, content_weight=1.0, style_weight=10.0,
                   tv_weight=0.0, content_layer=None, style_layers=None, init="noise", seed=0,
                   model=None, learning_rate=0.03, size=None, progress=True):
    """Gatys et al.'s style transfer: optimize an image's pixels.  Lesson 4.1.

    Loss = ``content_weight`` x content loss (relative feature error at ``content_layer``)
    + ``style_weight`` x style loss (mean relative Gram error over ``style_layers``)
    + ``tv_weight`` x :func:`squared_variation` (smoothness).  The network (``model``, default
    :func:`default_extractor`) is fixed; Adam changes the pixels, kept in [0, 1].
    ``init="noise"`` starts from seeded white noise as in the original method; ``"content"``
    starts from the photo and converges much faster.  The style image is resized to the
    content image's size (or both to ``size``).  Each step (forward pass, TensorFlow's own
    gradient with ``tf.GradientTape``, Adam update, clipping) is one compiled ``tf.function``,
    traced once per network and image size and reused by later runs.

    Returns ``(image, history)``: the float32 RGB image and a dict of per-step lists
    ``total``, ``content``, ``style``, ``tv``, plus ``seconds`` (wall time of the loop).

    Written out in lesson 06, "In plain code: one style-transfer step".
    """
    steps = _checks.integer("steps", steps, low=1)
    content_weight = _checks.number("content_weight", content_weight, positive=True)
    style_weight = _checks.number("style_weight", style_weight, positive=True)
    tv_weight = _checks.number("tv_weight", tv_weight, low=0, fix="0 switches it off.")
    learning_rate = _checks.number("learning_rate", learning_rate, positive=True, fix=_LR_FIX)
    seed = _checks.integer("seed", seed, low=0)
    init = _checks.choice("init", init, ["noise", "content"])
    model = resolve_model(model)
    d_content, d_style = default_layers(model)
    content_layer, style_layers = _check_layers(model, content_layer or d_content,
                                                d_style if style_layers is None else style_layers)
    content = _as_image(content, "content")
    style = _as_image(style, "style")
    fixed = _input_hw(model)
    if fixed is not None:
        hw = fixed
    elif size is not None:
        size = _checks.size("size", size, low=4)
        hw = (size, size) if isinstance(size, int) else size
    else:
        hw = content.shape[:2]
    hw = tuple(hw)
    content = _data.resize_image(content, hw) if content.shape[:2] != hw else content
    style = _data.resize_image(style, hw)  # different sizes: the style follows the content

    fm = feature_model(model, [content_layer] + style_layers)
    outs = _listify(fm(content[None], training=False))
    content_target = tf.constant(outs[0])
    style_targets = [tf.constant(gram_matrix(f)) for f in
                     _listify(fm(style[None], training=False))[1:]]

    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 1, content.shape).astype(np.float32) if init == "noise" else content
    image, step = _style_step(model, [content_layer] + style_layers, start, content_target,
                              style_targets, (content_weight, style_weight, tv_weight),
                              learning_rate)

    from tqdm.auto import tqdm

    history = {"total": [], "content": [], "style": [], "tv": []}
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=f"style transfer ({init})", unit="step", disable=not progress,
               mininterval=0.5, file=sys.stdout)
    for i in bar:
        vals = [float(v) for v in step()]
        for k, v in zip(history, vals):
            history[k].append(v)
        if i % 10 == 0 or i == steps - 1:
            bar.set_postfix(style=f"{vals[2]:.3g}", content=f"{vals[1]:.3g}")
    bar.close()
    history["seconds"] = time.perf_counter() - t0
    return image[0].numpy(), history


class _StyleStep:
    """The compiled step of :func:`style_transfer` for one feature model and image size.

    The image, the targets, the loss weights and Adam's state live in variables, so a new run
    assigns them instead of tracing VGG's forward and backward pass again (1-2 s per run).
    """

    def __init__(self, fm, start, content_target, style_targets):
        self.image = tf.Variable(start[None])
        self.content_target = tf.Variable(content_target)
        self.style_targets = [tf.Variable(g) for g in style_targets]
        self.weights = [tf.Variable(0.0) for _ in range(3)]
        self.opt = keras.optimizers.Adam(1.0)
        self.opt.build([self.image])  # its moments exist before tracing: the step traces once
        image, opt = self.image, self.opt

        def step():
            cw, sw, tw = self.weights
            with tf.GradientTape() as tape:
                feats = _listify(fm(image, training=False))
                c = _content_term(feats[0], self.content_target)[0]
                s = _style_terms(feats[1:], self.style_targets)[0]
                t = squared_variation(image)[0]
                total = cw * c + sw * s + tw * t
            grad = tape.gradient(total, image)
            opt.apply_gradients([(grad, image)])
            image.assign(tf.clip_by_value(image, 0.0, 1.0))
            return total, c, s, t

        self.step = tf.function(step)

    def reset(self, start, content_target, style_targets, weights, learning_rate):
        """A fresh run: new start image and targets, Adam's moments and step count at zero."""
        self.image.assign(start[None])
        self.content_target.assign(content_target)
        for var, g in zip(self.style_targets, style_targets):
            var.assign(g)
        for var, w in zip(self.weights, weights):
            var.assign(w)
        for var in self.opt.variables:  # the step count and Adam's two moments
            var.assign(tf.zeros_like(var))
        self.opt.learning_rate = learning_rate


#: extractor -> {(layer names, image shape): _StyleStep}; an entry goes with its extractor.
_STYLE_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _style_step(model, layers, start, content_target, style_targets, weights, learning_rate):
    """(image variable, compiled step) for a run of :func:`style_transfer` on extractor
    ``model`` at ``layers`` (content layer first), reset to ``start``."""
    per_model = _STYLE_STEPS.setdefault(model, {})
    key = (tuple(layers), tuple(start.shape))
    entry = per_model.get(key)
    if entry is None:
        fm = feature_model(model, list(layers))   # from the one sub-model cache
        entry = per_model[key] = _StyleStep(fm, start, content_target, style_targets)
    entry.reset(start, content_target, style_targets, weights, learning_rate)
    return entry.image, entry.step
