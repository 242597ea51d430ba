"""Feature visualization with a parameterization, transformation robustness and a composable
objective (:func:`render`): the lucid / Distill recipe next to the lesson's pixel regularizers.

Each step: the free numbers -> the image (:func:`course_helpers.ascent.params.to_image`) -> a
random shift, scale and rotation (:func:`course_helpers.ascent.params.transform`) -> the
model -> the objective; TensorFlow's gradient of the objective with respect to the free
numbers; one Adam step uphill (written out below: no optimizer object, so nothing is stored
between calls).  One compiled ``tf.function`` per model, objective structure and
parameterization.
"""
from __future__ import annotations

import weakref
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .. import _checks
from . import params as _params
from .objectives import _check_objective, _combine, _feature_model, _input_shape

#: The default recipe of :func:`render` (robustness for a 64 px image: small moves).
RENDER_DEFAULTS = dict(steps=128, lr=0.1, jitter=2, scale=(0.95, 1.05), rotate=5.0, decay=1.0)

_BETAS = (0.9, 0.999)
_RENDER_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_EVICTED_TRACES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

#: How many compiled steps :func:`render` keeps per model, the most recently used.  Each holds
#: a traced graph of the model's gradient: for VGG16 about 13 MB, so keeping all the steps of
#: lesson 05's ImageNet part (eight objectives and parameterizations) held about 100 MB more
#: memory before its batch of four images.
RENDER_CACHE_SIZE = 4


class Rendering(NamedTuple):
    """What :func:`render` returns: ``images`` (k, H, W, 3) in (0, 1), and ``history``, the
    batch objective seen by each step (on its transformed images) and, last, the objective of
    the returned images untransformed (``steps + 1`` values)."""

    images: np.ndarray
    history: np.ndarray

    @property
    def image(self) -> np.ndarray:
        """The first (for k = 1: the only) image."""
        return self.images[0]

    @property
    def score(self) -> float:
        """The objective of the returned images (``history[-1]``)."""
        return float(self.history[-1])


def _make_render_step(model, objective, param, h, w, decay):
    run = _feature_model(model, objective)
    colour = _params.colour_matrix(normalized=True)
    b1, b2 = _BETAS

    def objective_of(p, seed, t, jitter, lo, hi, rotate, weights, args, robust):
        x = _params.to_image(p, param, h, w, decay, colour)
        if robust:
            x = _params.transform(x, seed, t, jitter, (lo, hi), rotate)
        acts, logits = run(x)
        value = _combine(objective, weights, args, acts, logits)[0]
        fallback = _combine(objective, weights, args, acts, logits, fallback=True)[0]
        return value, fallback

    def step(p, m, v, t, seed, lr, jitter, lo, hi, rotate, weights, args):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(p)
            value, fallback = objective_of(p, seed, t, jitter, lo, hi, rotate, weights, args, True)
        g = tape.gradient(value, p)
        # a ReLU silent at every position passes no gradient: climb its input meanwhile
        g_alt = tape.gradient(fallback, p)
        g = tf.cond(tf.reduce_any(tf.not_equal(g, 0.0)), lambda: g, lambda: g_alt)
        # Adam, uphill: running means of the gradient and of its square, bias-corrected
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        n = tf.cast(t + 1, tf.float32)
        m_hat, v_hat = m / (1 - b1 ** n), v / (1 - b2 ** n)
        return p + lr * m_hat / (tf.sqrt(v_hat) + 1e-8), m, v, value

    def final(p, weights, args):   # once per call: eager
        return objective_of(p, 0, 0, 0, 1.0, 1.0, 0.0, weights, args, False)[0]

    return tf.function(step), final


def _render_fns(model, objective, param, h, w, decay):
    per_model = _RENDER_STEPS.setdefault(model, {})     # in order of use, oldest first
    key = (objective.key(), param, h, w, float(decay))
    fns = per_model.pop(key, None)
    if fns is None:
        fns = _make_render_step(model, objective, param, h, w, decay)
        while len(per_model) >= RENDER_CACHE_SIZE:     # forget the least recently used
            old_step, _ = per_model.pop(next(iter(per_model)))
            _EVICTED_TRACES[model] = (_EVICTED_TRACES.get(model, 0)
                                      + old_step.experimental_get_tracing_count())
    per_model[key] = fns
    return fns


def render_trace_count(model) -> int:
    """How many times :func:`render`'s compiled steps for ``model`` were traced (those it
    still keeps, :data:`RENDER_CACHE_SIZE`, and those it forgot)."""
    model = _checks.model(model)
    return _EVICTED_TRACES.get(model, 0) + sum(step.experimental_get_tracing_count()
                                               for step, _ in _RENDER_STEPS.get(model, {}).values())


def render(model, objective, param: str = "fft+decorrelated", steps: int = RENDER_DEFAULTS["steps"],
           lr: float = RENDER_DEFAULTS["lr"], batch: int = 1, jitter: int = RENDER_DEFAULTS["jitter"],
           scale=RENDER_DEFAULTS["scale"], rotate: float = RENDER_DEFAULTS["rotate"],
           decay: float = RENDER_DEFAULTS["decay"], seed: int = 0, progress=None) -> Rendering:
    """Feature visualization: ``batch`` images that maximize ``objective``.  Lesson 3.6.

    ``objective`` is built from :func:`course_helpers.ascent.channel`, ``neuron``,
    ``class_score``, ``direction`` and ``diversity`` (combined with ``+``, ``-``, ``*``).
    ``param`` is how the image is described: ``"pixel"``, ``"fft"`` (Fourier coefficients
    weighted by 1 / frequency ** ``decay``) or ``"fft+decorrelated"`` (the same in the photos'
    decorrelated colour space), each through a sigmoid, so the image stays in (0, 1); see
    :mod:`course_helpers.ascent.params`.  Each step the objective sees the images shifted by
    up to ``jitter`` pixels, scaled by a factor in ``scale`` and rotated by up to ``rotate``
    degrees (random, from ``seed`` and the step number: the same seed gives the same images).
    The free numbers start small and random (from ``seed``) and climb by Adam with step size
    ``lr``.  Returns :class:`Rendering` ``(images, history)``.

    Written out in lesson 05, "In plain code: the Fourier parameterization".
    """
    model = _checks.model(model)
    objective = _check_objective(model, objective)
    param = _checks.choice("param", param, _params.PARAMS)
    steps = _checks.integer("steps", steps, low=0)
    lr = _checks.number("lr", lr, positive=True, fix="It is the size of each uphill step.")
    batch = _checks.integer("batch", batch, low=1)
    if batch < 2 and any(kind == "diversity" for _, kind, _, _ in objective.terms):
        raise ValueError("A diversity term compares the images of a batch: pass batch=k with "
                         "k >= 2.")
    jitter, (lo, hi), rotate = _params.check_robustness(jitter, scale, rotate)
    decay = _checks.number("decay", decay, low=0, fix="1 is the spectrum of natural images.")
    seed = _checks.integer("seed", seed, low=0)
    h, w, _ = _input_shape(model)
    step, final = _render_fns(model, objective, param, h, w, decay)
    p = tf.constant(_params.initial_params(param, batch, h, w, seed))
    m = v = tf.zeros_like(p)
    weights, args = objective.arguments()
    consts = [tf.constant(np.int32(seed)), tf.constant(np.float32(lr)),
              tf.constant(np.int32(jitter)), tf.constant(np.float32(lo)),
              tf.constant(np.float32(hi)), tf.constant(np.float32(rotate))]
    bar = None
    if progress or (progress is None and steps >= 200):
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"render ({param})", leave=False)
    history = []
    for t in range(steps):
        p, m, v, value = step(p, m, v, tf.constant(np.int32(t)), *consts, weights, args)
        history.append(float(value))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    history.append(float(final(p, weights, args)))
    images = _params.to_image(p, param, h, w, decay, _params.colour_matrix(normalized=True))
    return Rendering(images.numpy(), np.asarray(history, np.float32))
