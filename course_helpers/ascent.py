"""Lesson 3.6 — gradient ascent: what a neuron wants to see (梯度上升), notebook 05.

No input image is needed: start from a plain image, take the gradient of one neuron with
respect to the pixels, add it, repeat.  The image drifts towards what that neuron responds to
most.  This module holds

* the source's algorithm as it is written (:func:`plain_ascent_frames`),
* regularized ascent for a class score (:func:`visualize_class`, Simonyan et al. 2014) and for
  one channel of a conv layer (:func:`visualize_filter`), with the regularizers of Yosinski et
  al. 2015: L2 decay, jitter, Gaussian blur every few steps, pixel clipping, total variation,
* :func:`deep_dream`, the same ascent started from a real photo (the bridge to lesson 4.1),
* measures (:func:`objective_value`, :func:`improvement`, :func:`high_frequency_share`),
  plots and the lesson's explorer widget.

Conventions.  Images live in [0, 1], the models' input range.  "Zero" is literally the black
image; 0.5 (mid-grey) is the *neutral* image, the point L2 decay and small-norm clipping pull
towards.  Class scores are taken before the softmax (:func:`course_helpers.models.logits_model`);
a filter's objective is the mean over positions of one channel of
:func:`course_helpers.models.activation_layer`.  Each ascent step (jitter, gradient,
regularizers, blur, clipping) is one compiled ``tf.function``, cached per model and objective,
so repeated calls never retrace.
"""
from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

from . import _fastgrad
from . import data as _data
from . import models as _models
from . import plotting as _plotting

#: The neutral pixel value: L2 decay and small-norm clipping pull pixels towards it.
NEUTRAL = 0.5

#: The default recipe (used by :func:`visualize_class` and :func:`visualize_filter`).
DEFAULTS = dict(steps=128, lr=0.03, l2=0.2, jitter=0, blur_every=4, blur_sigma=0.5, tv=0.0)

_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_FEATURES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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


# --------------------------------------------------------------------------- validation
def _check_int(name, value, low=0):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}.")
    return int(value)


def _check_float(name, value, positive=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}.") from None
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}. A learning rate is the size of each "
                         "uphill step; a negative one would walk downhill.")
    if not positive and v < 0:
        raise ValueError(f"{name} must be >= 0 (0 switches it off), got {v}.")
    return v


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
    h, w, _ = _input_shape(model)
    if start is None or (isinstance(start, str) and start == "zeros"):
        return np.zeros((h, w, 3), np.float32)
    if isinstance(start, str):
        if start in ("grey", "gray"):
            return np.full((h, w, 3), NEUTRAL, np.float32)
        if start == "random":
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
    idx = _check_int("class_index", class_index, low=-(1 << 30))
    if not 0 <= idx < n:
        raise ValueError(f"class_index {idx} is out of range: {model.name} has {n} classes "
                         f"(0..{n - 1}).")
    return idx


def _channel_unit(model, layer, channel):
    conv = _models.require_conv(model, layer)
    n = int(conv.filters)
    ch_ = _check_int("channel", channel, low=-(1 << 30))
    if not 0 <= ch_ < n:
        raise ValueError(f"channel {ch_} is out of range: layer {conv.name!r} has {n} channels "
                         f"(0..{n - 1}).")
    return conv.name, ch_


# --------------------------------------------------------------------------- objectives
def _feature_model(model, kind, layer=None):
    """(model, reduce): the Keras model whose output the objective reads, and the reduction
    from its output and the unit index to one number per image."""
    per_model = _FEATURES.setdefault(model, {})
    key = (kind, layer)
    if kind == "dream":
        return per_model[key], _mean_all
    if key not in per_model:
        if kind == "class":
            fm = _models.logits_model(model)
        else:
            act = _models.activation_layer(model, layer)
            # The output after the nonlinearity, and (for a separate ReLU layer) its input: the
            # fallback objective while the channel is silent everywhere (see visualize_filter).
            pre = act.input if isinstance(act, (keras.layers.Activation, keras.layers.ReLU)) \
                else act.output
            fm = keras.Model(model.inputs, [act.output, pre], name=f"{model.name}_{layer}_act")
        per_model[key] = fm
    fm = per_model[key]
    if kind == "class":
        return fm, lambda out, unit: tf.gather(out, unit, axis=-1)
    return fm, lambda out, unit: tf.reduce_mean(tf.gather(out[0], unit, axis=-1), axis=[1, 2])


def _mean_all(out, unit):
    return tf.reduce_mean(out, axis=[1, 2, 3])


def _pre_activation_mean(out, unit):
    return tf.reduce_mean(tf.gather(out[1], unit, axis=-1), axis=[1, 2])


def objective_value(model, images, class_index=None, layer=None, channel=None) -> np.ndarray:
    """The objective an ascent maximizes, for each of ``images`` (N, H, W, 3) or one image.

    With ``class_index``: the class score before softmax.  With ``layer`` and ``channel``: the
    mean activation of that channel (after BN and ReLU).  Lesson 3.6 uses it to compare the
    start, a random image and the result.
    """
    x = np.asarray(images, dtype=np.float32)
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3) or (H, W, 3), got {np.shape(images)}.")
    if (class_index is None) == (layer is None):
        raise ValueError("Give either class_index, or layer and channel.")
    if class_index is not None:
        fm, reduce = _feature_model(model, "class")
        unit = _class_unit(model, class_index)
    else:
        name, unit = _channel_unit(model, layer, channel)
        fm, reduce = _feature_model(model, "filter", name)
    vals = reduce(fm(tf.constant(x), training=False), unit).numpy()
    return vals[0] if single else vals


def improvement(history, random_value, eps: float = 1e-3) -> float:
    """How many times the result beats the start and a random image.  Lesson 3.6.

    ``max(history) / max(history[0], random_value, eps)``: the result (the best image of the
    run, which the ascent returns) against the stronger of the
    two reference images.  A reference that scores below ``eps`` (near 0 or negative: the neuron
    does not fire for it) sets the floor ``eps`` instead, since a ratio to ~0 means nothing.
    """
    h = np.asarray(history, dtype=np.float64)
    base = max(float(h[0]), float(random_value), float(eps))
    return float(h.max() / base)


def filter_gains(model, layer, images, channels=None, start="grey", seed: int = 0) -> list:
    """For filter pictures ``images`` (one per channel, channels 0, 1, ... by default): the
    channel's mean activation on the start image, on a random image and on its picture, and
    the gain picture / max(start, random).  Prints a small table and returns the rows as
    dicts.  Lesson 3.6."""
    images = np.asarray(images, dtype=np.float32)
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


# --------------------------------------------------------------------------- regularizers
def gaussian_kernel(sigma: float) -> np.ndarray:
    """1-D Gaussian weights (sum 1) of radius ``round(3 * sigma)``, at least 1.  Lesson 3.6."""
    sigma = _check_float("blur_sigma", sigma)
    if sigma == 0:
        return np.ones(1, np.float32)
    r = max(1, int(3.0 * sigma + 0.5))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _blur(x, k1d):
    """Separable Gaussian blur of a batch (B, H, W, 3), mirror padding (numpy 'reflect')."""
    r = tf.shape(k1d)[0] // 2
    xp = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    kv = tf.tile(tf.reshape(k1d, [-1, 1, 1, 1]), [1, 1, 3, 1])
    kh = tf.tile(tf.reshape(k1d, [1, -1, 1, 1]), [1, 1, 3, 1])
    xp = tf.nn.depthwise_conv2d(xp, kv, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(xp, kh, [1, 1, 1, 1], "VALID")


def blur(image, sigma: float) -> np.ndarray:
    """The Gaussian blur the ascent applies every ``blur_every`` steps (mirror edges).  Lesson 3.6."""
    x = np.asarray(image, dtype=np.float32)
    batch = x[None] if x.ndim == 3 else x
    out = _blur(tf.constant(batch), tf.constant(gaussian_kernel(sigma))).numpy()
    return out[0] if x.ndim == 3 else out


#: Below this neighbour difference the total-variation penalty is quadratic (smooth), above it
#: it grows linearly like plain TV (the Charbonnier / pseudo-Huber form).
TV_EPS = 0.05


def _total_variation(x):
    """Smoothed isotropic total variation of a batch: sum of sqrt(dy^2 + dx^2 + eps^2) - eps."""
    dy = x[:, 1:, :-1, :] - x[:, :-1, :-1, :]
    dx = x[:, :-1, 1:, :] - x[:, :-1, :-1, :]
    return tf.reduce_sum(tf.sqrt(dy * dy + dx * dx + TV_EPS**2) - TV_EPS)


def total_variation(image) -> float:
    """The total-variation penalty the ascent subtracts (times ``tv``): for each pixel and
    channel, sqrt(dy^2 + dx^2 + eps^2) - eps with its lower and right neighbours, summed.
    Large for noise, small for smooth pictures with few edges.  Lesson 3.6."""
    x = np.asarray(image, dtype=np.float32)
    return float(_total_variation(tf.constant(x[None] if x.ndim == 3 else x)))


def high_frequency_share(image, cutoff: float = 0.25) -> float:
    """Share of an image's (mean-removed) spectral energy above ``cutoff`` cycles/pixel.

    Pixel noise spreads its energy evenly and scores about 0.8; smooth pictures score near 0.
    Lesson 3.6 prints it under every ablation panel to show what each regularizer removes.
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    x = x - x.mean(axis=(0, 1), keepdims=True)
    p = np.abs(np.fft.fft2(x, axes=(0, 1))) ** 2
    fy = np.fft.fftfreq(x.shape[0])[:, None]
    fx = np.fft.fftfreq(x.shape[1])[None, :]
    high = (np.sqrt(fy**2 + fx**2) > cutoff)[..., None]
    total = p.sum()
    return float((p * high).sum() / total) if total > 0 else 0.0


# --------------------------------------------------------------------------- the compiled step
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

    # the gradient to the image through faster kernels (course_helpers._fastgrad, same numbers)
    return tf.function(_fastgrad.traced_with_fast_gradients(fm, step), input_signature=spec)


def _step_fn(model, kind, layer, jittered):
    per_model = _STEPS.setdefault(model, {})
    key = (kind, layer, bool(jittered))
    if key not in per_model:
        fm, reduce = _feature_model(model, kind, layer)
        fallback = _pre_activation_mean if kind == "filter" else None
        per_model[key] = _make_step(fm, reduce, bool(jittered), fallback)
    return per_model[key]


def trace_count(model) -> int:
    """How many times the compiled steps of ``model`` were traced (tests check reuse)."""
    return sum(fn.experimental_get_tracing_count() for fn in _STEPS.get(model, {}).values())


def _ascend(model, kind, layer, unit, steps, lr, l2, jitter, blur_every, blur_sigma, tv, seed,
            start, clip=True, clip_small=0.0, normalize=True, progress=None, image=None,
            keep_best=True):
    steps = _check_int("steps", steps)
    lr = _check_float("lr", lr, positive=True)
    l2 = _check_float("l2", l2)
    tv = _check_float("tv", tv)
    jitter = _check_int("jitter", jitter)
    blur_every = _check_int("blur_every", blur_every)
    kernel = gaussian_kernel(blur_sigma)
    clip_small = _check_float("clip_small", clip_small)
    if clip_small >= 100:
        raise ValueError(f"clip_small is a percentile in [0, 100), got {clip_small}.")
    seed = _check_int("seed", seed)
    x0 = image if image is not None else start_image(model, start, seed)
    step = _step_fn(model, kind, layer, jitter > 0)
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
    fm, reduce = _feature_model(model, kind, layer)
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
                    clip=True, clip_small=0.0, normalize=True, progress=None) -> AscentResult:
    """A class model (Simonyan et al. 2014): the image that maximizes one class score.  Lesson 3.6.

    Each step: shift the image by up to ``jitter`` pixels, take the gradient of the class score
    (before softmax) with respect to the pixels, divide it by its RMS (``normalize``), subtract
    ``tv`` x the total-variation gradient and ``l2`` x (image - 0.5), add ``lr`` x the result;
    every ``blur_every`` steps blur with ``blur_sigma``; clip to [0, 1] (``clip``) and reset the
    ``clip_small`` percent of pixels closest to grey (Yosinski et al.'s small-norm clipping).
    Returns :class:`AscentResult` ``(image, history)``.  ``class_index`` may be a class name.
    """
    unit = _class_unit(model, class_index)
    return _ascend(model, "class", None, unit, steps, lr, l2, jitter, blur_every, blur_sigma, tv,
                   seed, start, clip, clip_small, normalize, progress)


def visualize_filter(model, layer, channel, steps=DEFAULTS["steps"], lr=DEFAULTS["lr"],
                     l2=DEFAULTS["l2"], jitter=DEFAULTS["jitter"], blur_every=DEFAULTS["blur_every"],
                     blur_sigma=DEFAULTS["blur_sigma"], tv=DEFAULTS["tv"], seed=0, start="grey",
                     clip=True, clip_small=0.0, normalize=True, progress=None) -> AscentResult:
    """The image that maximizes the mean activation of one channel of a conv layer.  Lesson 3.6.

    It starts from the neutral grey image (``start="grey"``), not from black as class models
    do: after batch norm, many units fire hard on a flat black image already (they like dark
    regions), so from black they have almost nothing left to gain and the picture says little.

    The same step as :func:`visualize_class`; the objective is the mean over positions of
    channel ``channel`` of the conv layer ``layer`` after its BN and ReLU
    (:func:`course_helpers.models.activation_layer`).  ``layer`` must be a Conv2D layer.
    A ReLU channel that is silent at every position (common on the flat all-zero start) passes
    no gradient; while that is so, the step climbs the ReLU's input (the BN output) instead, as
    tf-keras-vis does when it swaps the last activation for a linear one.
    """
    name, unit = _channel_unit(model, layer, channel)
    return _ascend(model, "filter", name, unit, steps, lr, l2, jitter, blur_every, blur_sigma, tv,
                   seed, start, clip, clip_small, normalize, progress)


def plain_ascent_frames(model, class_index, steps: int = 8, lr: float = 3.0, every: int = 1,
                        start=None):
    """The source's algorithm, exactly, with a frame after every ``every`` steps.  Lesson 3.6.

    Start from the all-zero image; repeat: gradient of the class score (before softmax) with
    respect to the image, added as it is (``x <- x + lr * grad``: no normalization, no
    clipping, no regularizer).  Returns ``(frames, scores)``: frames (n + 1, H, W, 3) starting
    with the start image, and the class score of each frame.
    """
    every = _check_int("every", every, low=1)
    steps = _check_int("steps", steps)
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


# --------------------------------------------------------------------------- DeepDream
def _size_free_extractor(model, layer):
    """``model`` from its input up to ``layer``'s activation, rebuilt for any image size.

    The layers are copies (same config and weights): calling the model's own layers on a new
    input would add graph nodes to them and confuse later look-ups of "the layer after conv X".
    """
    target = _models.activation_layer(model, layer)
    inp = keras.Input((None, None, 3))
    x = inp
    for lyr in model.layers[1:]:
        if isinstance(lyr, keras.layers.InputLayer):
            continue
        copy = lyr.__class__.from_config(lyr.get_config())
        x = copy(x)
        copy.set_weights(lyr.get_weights())
        if lyr is target:
            return keras.Model(inp, x)
    raise ValueError(f"Could not reach layer {layer!r} by walking {model.name}'s layers in order.")


def deep_dream(model, image, layer, steps: int = 40, lr: float = 0.02, jitter: int = 8,
               blur_sigma: float = 0.5, blur_every: int = 4, seed: int = 0, progress=None):
    """DeepDream: start from a real photo and amplify everything ``layer`` sees.  Lesson 3.6.

    The objective is the mean activation of all channels of the conv layer ``layer`` (after BN
    and ReLU).  Same step as :func:`visualize_filter` (jitter, normalized gradient, blur, clip
    to [0, 1]); the photo may have any size (the conv layers are reused on it).  Returns
    :class:`AscentResult`.
    """
    conv = _models.require_conv(model, layer)
    img = _data.load_image(image)
    if img.shape[0] < 8 or img.shape[1] < 8:
        raise ValueError(f"The image is {img.shape[0]}x{img.shape[1]}; DeepDream needs at least 8x8.")
    per_model = _STEPS.setdefault(model, {})
    key = ("dream", conv.name, jitter > 0)
    if key not in per_model:
        fm = _size_free_extractor(model, conv.name)
        per_model[key] = _make_step(fm, _mean_all, jitter > 0)
        _FEATURES.setdefault(model, {})[("dream", conv.name)] = fm
    return _ascend(model, "dream", conv.name, 0, steps, lr, 0.0, jitter, blur_every, blur_sigma,
                   0.0, seed, None, clip=True, progress=progress, image=img)


# --------------------------------------------------------------------------- plots
def _show(img):
    return np.clip(img, 0, 1)


def plot_frames(frames, scores, title="The source's algorithm, step by step"):
    """The first frames of plain ascent, each titled with its step and score.  Lesson 3.6.

    Frames are stretched to [0, 1] one by one (the raw ascent leaves the pixel range), so the
    faint first steps are visible.
    """
    tiles = [_plotting.normalize(f) for f in frames]
    titles = [f"step {i}\nscore {s:.1f}" for i, s in enumerate(scores)]
    return _plotting.image_grid(tiles, titles, ncols=len(tiles), size=1.5, suptitle=title)


def plot_ablation(results, title=None):
    """One panel per stage of :func:`ablation`: image, final score, high-frequency share."""
    imgs = [_plotting.normalize(r.image) if i == 0 else _show(r.image)
            for i, (_, r) in enumerate(results)]
    titles = [f"{label}\nscore {r.score:.1f} · HF {high_frequency_share(r.image):.2f}"
              for label, r in results]
    return _plotting.image_grid(imgs, titles, ncols=len(imgs), size=1.9, suptitle=title)


def class_models(model, classes=None, **kwargs):
    """Class model images for ``classes`` (default: all).  Returns (images, histories)."""
    names = _models.class_names(model)
    classes = range(len(names)) if classes is None else classes
    images, hists = [], []
    for c in classes:
        res = visualize_class(model, c, **kwargs)
        images.append(res.image)
        hists.append(res.history)
    return images, hists


def plot_class_models(model, images, histories, classes=None, random_scores=None):
    """All class models in one figure, titled with class name and score.  Lesson 3.6."""
    names = _models.class_names(model)
    classes = list(range(len(images))) if classes is None else list(classes)
    titles = []
    for i, (c, h) in enumerate(zip(classes, histories)):
        t = f"{names[c]}\nscore {h[0]:.1f} → {np.max(h):.1f}"
        titles.append(t)
    return _plotting.image_grid([_show(i) for i in images], titles, ncols=min(len(images), 6),
                                size=2.0, suptitle="Class models: what each class score wants to see")


def plot_history(histories, labels, ax=None, title="Objective during the ascent"):
    """Objective against step, one line per run.  Lesson 3.6."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3))
    for h, lab in zip(histories, labels):
        ax.plot(np.arange(len(h)), h, label=str(lab))
    ax.set_xlabel("step")
    ax.set_ylabel("objective")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------- explorer
def ascent_explorer(model, steps=None):
    """Widget for lesson 3.6: class or layer/channel, steps, learning rate, each regularizer.

    The first choice of ``layer`` is the class scores; the others are the conv layers, whose
    ``unit`` is a channel.  Results are cached, so returning to a setting is instant.
    """
    import ipywidgets as w

    from . import config, widgets

    steps = steps or config.scaled(128, 32)
    names = _models.class_names(model)
    convs = _models.conv_layer_names(model)
    sizes = {c: int(model.get_layer(c).filters) for c in convs}
    layer_w = w.Dropdown(options=["class scores"] + convs, value="class scores", description="layer")
    unit_w = w.IntSlider(value=0, min=0, max=len(names) - 1, description="class/channel")

    def _on_layer(change):
        unit_w.max = len(names) - 1 if change["new"] == "class scores" else sizes[change["new"]] - 1

    layer_w.observe(_on_layer, names="value")

    def draw(layer, unit, steps, lr, l2, jitter, blur_every, blur_sigma, tv):
        key = ("ascent", widgets.model_key(model), layer, unit, steps, lr, l2, jitter, blur_every,
               blur_sigma, tv)
        kw = dict(steps=steps, lr=lr, l2=l2, jitter=jitter, blur_every=blur_every,
                  blur_sigma=blur_sigma, tv=tv)
        if layer == "class scores":
            unit = min(unit, len(names) - 1)
            res = widgets.cached(key, lambda: visualize_class(model, unit, **kw))
            title = f"class {unit} ({names[unit]})"
        else:
            unit = min(unit, sizes[layer] - 1)
            res = widgets.cached(key, lambda: visualize_filter(model, layer, unit, **kw))
            title = f"{layer} channel {unit}"
        parts = view.parts
        _plotting.set_image(parts["image"], _show(res.image))
        parts["titles"][0].set_text(f"{title}\nHF share {high_frequency_share(res.image):.2f}")
        history = np.asarray(res.history, float)
        ax = parts["history"]
        ax.lines[0].set_data(np.arange(len(history)), history)
        lo, hi = (float(history.min()), float(history.max())) if history.size else (0.0, 1.0)
        pad = 0.05 * max(hi - lo, 1e-6)
        ax.set_xlim(0, max(len(history) - 1, 1))
        ax.set_ylim(lo - pad, hi + pad)
        return view.live

    def build():
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(7, 3.2))
        parts = {"image": a.imshow(np.zeros((2, 2, 3))), "titles": [a.set_title(" \n ")],
                 "history": b}   # its ticks follow the data: the whole axes is redrawn
        a.axis("off")
        b.plot([0, 1], [0, 1], label="objective")
        b.set_xlabel("step")
        b.set_ylabel("objective")
        b.set_title("objective per step")
        fig.tight_layout()
        return fig, parts

    view = widgets.FigureView(build)   # built once, updated in place

    return widgets.interactive_plot(
        draw, layer=layer_w, unit=unit_w,
        steps=w.IntSlider(value=steps, min=0, max=512, step=16, description="steps"),
        lr=w.FloatLogSlider(value=DEFAULTS["lr"], base=10, min=-3, max=0, description="learning rate"),
        l2=w.FloatSlider(value=DEFAULTS["l2"], min=0, max=1, step=0.01, description="L2 decay"),
        jitter=w.IntSlider(value=DEFAULTS["jitter"], min=0, max=8, description="jitter px"),
        blur_every=w.IntSlider(value=DEFAULTS["blur_every"], min=0, max=16, description="blur every"),
        blur_sigma=w.FloatSlider(value=DEFAULTS["blur_sigma"], min=0, max=2, step=0.1,
                                 description="blur σ"),
        tv=w.FloatSlider(value=DEFAULTS["tv"], min=0, max=0.5, step=0.01, description="TV"),
    )
