"""The ascent itself: one compiled step (gradient, regularizers, blur, clipping) and the loop
around it, for a class score (:func:`visualize_class`) and a conv channel
(:func:`visualize_filter`); the source's unregularized version (:func:`plain_ascent_frames`)
and the regularizers added one by one (:func:`ablation`)."""
from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .. import _checks
from .objectives import (NEUTRAL, _channel_unit, _class_unit, _objective, _pre_activation_mean,
                         objective_value, start_image)
from .regularizers import _blur, _total_variation, gaussian_kernel

#: The default recipe (used by :func:`visualize_class` and :func:`visualize_filter`).
DEFAULTS = dict(steps=128, lr=0.03, l2=0.2, jitter=0, blur_every=4, blur_sigma=0.5, tv=0.0)

#: model -> {(kind, layer, jittered): (feature model, reduce, compiled step)}
_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

_LR_FIX = ("A learning rate is the size of each uphill step; a negative one would walk "
           "downhill.")
_OFF = "0 switches it off."


class AscentResult(NamedTuple):
    """What an ascent returns: ``image`` (H, W, 3) in [0, 1] (unless clipping was switched
    off), the image with the highest objective seen (almost always the last one), and
    ``history``, the objective of the image before each step plus the last one (``steps + 1``
    values: ``history[0]`` is the start's; the image's objective is ``history.max()``)."""

    image: np.ndarray
    history: np.ndarray

    @property
    def score(self) -> float:
        """The objective of ``image``: the best value of the run (``history.max()``)."""
        return float(np.max(self.history))


def _make_step(fm, reduce, jittered: bool, fallback=None):
    f32, i32 = tf.float32, tf.int32
    spec = [tf.TensorSpec([1, None, None, 3], f32),  # x
            tf.TensorSpec([], i32),  # unit
            tf.TensorSpec([], i32),  # t (step number)
            tf.TensorSpec([], i32),  # seed
            tf.TensorSpec([], f32),  # lr
            tf.TensorSpec([], f32),  # l2
            tf.TensorSpec([], f32),  # tv
            tf.TensorSpec([], i32),  # jitter (pixels)
            tf.TensorSpec([], i32),  # blur_every
            tf.TensorSpec([None], f32),  # blur kernel (1-D)
            tf.TensorSpec([], f32),  # clip_small (percentile / 100)
            tf.TensorSpec([], tf.bool),  # normalize the objective's gradient
            tf.TensorSpec([], tf.bool)]  # clip to [0, 1]

    def step(x, unit, t, seed, lr, l2, tv, jitter, blur_every, kernel, clip_small, normalize, clip):
        with tf.GradientTape(persistent=fallback is not None) as tape:
            tape.watch(x)
            if jittered:
                # A random circular shift (the same for this seed and step): the objective sees
                # the shifted image, its gradient flows back to the unshifted one.
                shift = tf.random.stateless_uniform([2], seed=tf.stack([seed, t]),
                                                    minval=-jitter, maxval=jitter + 1, dtype=i32)
                xj = tf.roll(x, shift, axis=[1, 2])
                out = fm(tf.concat([x, xj], 0), training=False)
                vals = reduce(out, unit)
                value, target = vals[0], vals[1]
                alt = fallback(out, unit)[1] if fallback is not None else None
            else:
                out = fm(x, training=False)
                value = target = reduce(out, unit)[0]
                alt = fallback(out, unit)[0] if fallback is not None else None
        g = tape.gradient(target, x)
        if fallback is not None:
            # A ReLU silent at every position passes no gradient: climb its input instead.
            g_alt = tape.gradient(alt, x)
            g = tf.cond(tf.reduce_any(tf.not_equal(g, 0.0)), lambda: g, lambda: g_alt)
        if normalize:  # scale-free steps: lr is then roughly "pixel change per step"
            g = g / (tf.sqrt(tf.reduce_mean(tf.square(g))) + 1e-8)
        if tv > 0:
            with tf.GradientTape() as tape2:
                tape2.watch(x)
                penalty = _total_variation(x)
            g = g - tv * tape2.gradient(penalty, x)
        g = g - l2 * (x - NEUTRAL)
        x = x + lr * g
        if blur_every > 0 and (t + 1) % blur_every == 0:
            x = _blur(x, kernel)
        if clip:
            x = tf.clip_by_value(x, 0.0, 1.0)
        if clip_small > 0:
            norm = tf.reshape(tf.norm(x - NEUTRAL, axis=-1), [-1])
            k = tf.cast(tf.math.floor(clip_small * tf.cast(tf.size(norm), f32)), i32)
            k = tf.minimum(k, tf.size(norm) - 1)
            threshold = tf.sort(norm)[k]
            small = tf.norm(x - NEUTRAL, axis=-1, keepdims=True) < threshold
            x = tf.where(small, tf.fill(tf.shape(x), NEUTRAL), x)
        return x, value

    return tf.function(step, input_signature=spec)


def _step_fn(model, kind, layer, jittered):
    """(feature model, reduce, compiled step) for ``model``'s objective, built once."""
    per_model = _STEPS.setdefault(model, {})
    key = (kind, layer, bool(jittered))
    if key not in per_model:
        fm, reduce = _objective(model, kind, layer)
        fallback = _pre_activation_mean if kind == "filter" else None
        per_model[key] = (fm, reduce, _make_step(fm, reduce, bool(jittered), fallback))
    return per_model[key]


def trace_count(model) -> int:
    """How many times the compiled steps of ``model`` were traced (tests check reuse)."""
    model = _checks.model(model)
    return sum(entry[2].experimental_get_tracing_count()
               for entry in _STEPS.get(model, {}).values())


def _ascend(model, kind, layer, unit, steps, lr, l2, jitter, blur_every, blur_sigma, tv, seed,
            start, clip=True, clip_small=0.0, normalize=True, progress=None, image=None,
            keep_best=True):
    steps = _checks.integer("steps", steps, low=0)
    lr = _checks.number("lr", lr, positive=True, fix=_LR_FIX)
    l2 = _checks.number("l2", l2, low=0, fix=_OFF)
    tv = _checks.number("tv", tv, low=0, fix=_OFF)
    jitter = _checks.integer("jitter", jitter, low=0)
    blur_every = _checks.integer("blur_every", blur_every, low=0)
    kernel = gaussian_kernel(blur_sigma)
    clip_small = _checks.number("clip_small", clip_small, low=0, fix=_OFF)
    if clip_small >= 100:
        raise ValueError(f"clip_small is a percentile in [0, 100), got {clip_small}.")
    seed = _checks.integer("seed", seed, low=0)
    x0 = image if image is not None else start_image(model, start, seed)
    fm, reduce, step = _step_fn(model, kind, layer, jitter > 0)
    x = tf.constant(x0[None])
    args = [tf.constant(v) for v in (np.int32(unit), np.int32(0), np.int32(seed), np.float32(lr),
                                     np.float32(l2), np.float32(tv), np.int32(jitter),
                                     np.int32(blur_every), kernel, np.float32(clip_small / 100.0),
                                     bool(normalize), bool(clip))]
    history = []
    if progress is None:
        progress = steps >= 200 or x0.shape[0] * x0.shape[1] > 128 * 128
    bar = None
    if progress and steps:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"gradient ascent ({kind} {unit})", leave=False)
    best, best_value = x, -np.inf
    for t in range(steps):
        args[1] = tf.constant(np.int32(t))
        before = x
        x, value = step(x, *args)
        history.append(float(value))          # the objective of ``before``
        if keep_best and history[-1] > best_value:
            best, best_value = before, history[-1]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    history.append(float(reduce(fm(x, training=False), unit)[0]))
    if keep_best and best_value > history[-1]:
        # the regularizers (decay towards grey, blur) can pull a unit that was already near
        # its ceiling back down: return the best image seen, never one worse than the start
        x = best
    return AscentResult(x.numpy()[0], np.asarray(history, np.float32))


# --------------------------------------------------------------------------- public ascent
def visualize_class(model, class_index, steps=DEFAULTS["steps"], lr=DEFAULTS["lr"],
                    l2=DEFAULTS["l2"], jitter=DEFAULTS["jitter"], blur_every=DEFAULTS["blur_every"],
                    blur_sigma=DEFAULTS["blur_sigma"], tv=DEFAULTS["tv"], seed=0, start=None,
                    clip=True, clip_small=0.0, normalize=True, progress=None,
                    keep_best=True) -> AscentResult:
    """A class model (Simonyan et al. 2014): the image that maximizes one class score.  Lesson 3.6.

    Each step: shift the image by up to ``jitter`` pixels, take the gradient of the class score
    (before softmax) with respect to the pixels, divide it by its RMS (``normalize``), subtract
    ``tv`` x the total-variation gradient and ``l2`` x (image - 0.5), add ``lr`` x the result;
    every ``blur_every`` steps blur with ``blur_sigma``; clip to [0, 1] (``clip``) and reset the
    ``clip_small`` percent of pixels closest to grey (Yosinski et al.'s small-norm clipping).
    Returns :class:`AscentResult` ``(image, history)``.  ``class_index`` may be a class name.
    With ``keep_best`` (the default) the image returned is the best one seen, in case the
    regularizers pulled the score down near the end; ``keep_best=False`` returns the last image,
    as the lesson's loop does.  The gradient is TensorFlow's own (``tf.GradientTape``); the whole step is one compiled
    ``tf.function``, traced once per model and objective.

    Written out in lesson 05, "In plain code: gradient ascent".
    """
    model = _checks.model(model)
    unit = _class_unit(model, class_index)
    return _ascend(model, "class", None, unit, steps, lr, l2, jitter, blur_every, blur_sigma, tv,
                   seed, start, clip, clip_small, normalize, progress, keep_best=keep_best)


def visualize_filter(model, layer, channel, steps=DEFAULTS["steps"], lr=DEFAULTS["lr"],
                     l2=DEFAULTS["l2"], jitter=DEFAULTS["jitter"], blur_every=DEFAULTS["blur_every"],
                     blur_sigma=DEFAULTS["blur_sigma"], tv=DEFAULTS["tv"], seed=0, start="grey",
                     clip=True, clip_small=0.0, normalize=True, progress=None,
                     keep_best=True) -> AscentResult:
    """The image that maximizes the mean activation of one channel of a conv layer.  Lesson 3.6.

    It starts from the neutral grey image (``start="grey"``), not from black as class models
    do: after batch norm, many units fire hard on a flat black image already (they like dark
    regions), so from black they have almost nothing left to gain and the picture says little.

    The same step as :func:`visualize_class`; the objective is the mean over positions of
    channel ``channel`` of the conv layer ``layer`` after its BN and ReLU
    (:func:`course_helpers.graph.activation_layer`).  ``layer`` must be a Conv2D layer.
    A ReLU channel that is silent at every position (common on the flat all-zero start) passes
    no gradient; while that is so, the step climbs the ReLU's input (the BN output) instead, as
    tf-keras-vis does when it swaps the last activation for a linear one.  ``keep_best`` as in
    :func:`visualize_class`.

    Written out in lesson 05, "In plain code: gradient ascent".
    """
    model = _checks.model(model)
    name, unit = _channel_unit(model, layer, channel)
    return _ascend(model, "filter", name, unit, steps, lr, l2, jitter, blur_every, blur_sigma, tv,
                   seed, start, clip, clip_small, normalize, progress, keep_best=keep_best)


def plain_ascent_frames(model, class_index, steps: int = 8, lr: float = 3.0, every: int = 1,
                        start=None):
    """The source's algorithm, exactly, with a frame after every ``every`` steps.  Lesson 3.6.

    Start from the all-zero image; repeat: gradient of the class score (before softmax) with
    respect to the image, added as it is (``x <- x + lr * grad``: no normalization, no
    clipping, no regularizer).  Returns ``(frames, scores)``: frames (n + 1, H, W, 3) starting
    with the start image, and the class score of each frame.

    Written out in lesson 05, "The source's algorithm".
    """
    model = _checks.model(model)
    every = _checks.integer("every", every, low=1)
    steps = _checks.integer("steps", steps, low=0)
    unit = _class_unit(model, class_index)
    x = start_image(model, start)
    frames, scores = [x], [float(objective_value(model, x, class_index=unit))]
    done = 0
    while done < steps:
        n = min(every, steps - done)
        res = _ascend(model, "class", None, unit, n, lr, 0.0, 0, 0, 0.0, 0.0, 0, None,
                      clip=False, normalize=False, progress=False, image=x, keep_best=False)
        x = res.image
        frames.append(x)
        scores.append(float(res.history[-1]))
        done += n
    return np.stack(frames), np.asarray(scores, np.float32)


def ablation(model, class_index=None, layer=None, channel=None, steps=DEFAULTS["steps"],
             lr=DEFAULTS["lr"], seed=0, recipe=None):
    """The same neuron with each regularizer added in turn.  Lesson 3.6's ablation grid.

    Returns a list of ``(label, AscentResult)``: plain normalized ascent, then + clip to
    [0, 1], + L2 decay, + jitter, + blur, + total variation, + small-norm clipping (each row
    keeps the ones before).  ``recipe`` overrides the strengths (keys l2, jitter, blur_every,
    blur_sigma, tv, clip_small).
    """
    model = _checks.model(model)
    r = dict(l2=DEFAULTS["l2"], jitter=1, blur_every=DEFAULTS["blur_every"],
             blur_sigma=DEFAULTS["blur_sigma"], tv=0.05, clip_small=20.0)
    r.update(recipe or {})
    stages = [("plain ascent", dict(clip=False)),
              ("+ clip to [0,1]", dict(clip=True)),
              ("+ L2 decay", dict(l2=r["l2"])),
              ("+ jitter", dict(jitter=r["jitter"])),
              ("+ blur", dict(blur_every=r["blur_every"], blur_sigma=r["blur_sigma"])),
              ("+ total variation", dict(tv=r["tv"])),
              ("+ small-norm clip", dict(clip_small=r["clip_small"]))]
    kw = dict(steps=steps, lr=lr, l2=0.0, jitter=0, blur_every=0, blur_sigma=0.0, tv=0.0,
              seed=seed, start=None, clip=False, clip_small=0.0)
    out = []
    for label, change in stages:
        kw.update(change)
        if class_index is not None:
            res = visualize_class(model, class_index, **kw)
        else:
            res = visualize_filter(model, layer, channel, **kw)
        out.append((label, res))
    return out


