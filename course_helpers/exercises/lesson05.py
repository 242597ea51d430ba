"""Exercise checks for lesson 3.6 -- gradient ascent (notebook 05).

Each exercise goes a step beyond the lesson's "In plain code: gradient ascent" cell; the checks
compute their own reference with a plain ``tf.GradientTape`` and never show it.
"""
from __future__ import annotations

import numpy as np

from ._base import is_missing, report, solution_text

__all__ = ["check_decorrelated_image", "check_jitter_step", "check_smooth_class_model"]


def _reference_jitter_step(model, x, class_index, lr, shift):
    """x + lr * (normalized gradient, with respect to x, of the score of x rolled by shift)."""
    import tensorflow as tf

    from ..models import logits_model

    logits = logits_model(model)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = logits(tf.roll(x, shift, axis=[1, 2]), training=False)[0, class_index]
    grad = tape.gradient(score, x)
    return grad / (tf.sqrt(tf.reduce_mean(grad ** 2)) + 1e-8)


def check_jitter_step(my_jitter_step, model, class_index: int = 4, lr: float = 0.03) -> bool:
    """Is ``my_jitter_step(x, class_index, lr, shift)`` the lesson's ascent step with jitter?

    ``x`` is one image (1, H, W, 3); ``shift`` is ``(dy, dx)`` in pixels.  The score is read from
    the image rolled by ``shift`` (``tf.roll`` over rows and columns), its gradient taken with
    respect to the unrolled image, divided by its RMS and added (times ``lr``); no decay, no
    clip.  The check tries three shifts on a fixed image.
    """
    import tensorflow as tf

    if is_missing(my_jitter_step) or not callable(my_jitter_step):
        return report(False, hint="Write a function my_jitter_step(x, class_index, lr, shift) "
                                  "and pass the function itself.")
    h, w, _ = model.input_shape[1:]
    x = np.random.default_rng(5).uniform(0.2, 0.8, (1, h, w, 3)).astype(np.float32)
    for shift in ((2, -1), (0, 3), (-3, 0)):
        try:
            got = my_jitter_step(tf.constant(x), class_index, lr, shift)
            if is_missing(got):
                return report(False, hint="Your function returns nothing yet: return the new "
                                          "image, shape (1, H, W, 3).")
            got = np.asarray(got, dtype=np.float32).reshape(x.shape)
        except Exception as err:  # the learner's code: say what went wrong, not the answer
            return report(False, hint=f"Your function raised {type(err).__name__}: {err} "
                                      f"(x has shape {x.shape}; return an image of that shape).")
        step = (got - x) / lr
        want = _reference_jitter_step(model, x, class_index, lr, shift).numpy()
        if np.allclose(step, want, atol=1e-3, rtol=1e-3):
            continue
        if np.allclose(step, -want, atol=1e-3, rtol=1e-3):
            return report(False, hint="Your step makes the score smaller: ascent adds the gradient.")
        if np.allclose(step, 0):
            return report(False, hint="Your image did not change: add lr times the gradient.")
        unshifted = _reference_jitter_step(model, x, class_index, lr, (0, 0)).numpy()
        if np.allclose(step, unshifted, atol=1e-3, rtol=1e-3):
            return report(False, hint="That is the step without jitter: read the score from the "
                                      "shifted image, tf.roll(x, shift, axis=[1, 2]).")
        if np.allclose(step, np.roll(want, shift, axis=(1, 2)), atol=1e-3, rtol=1e-3):
            return report(False, hint="Your gradient is still shifted. Take the gradient with "
                                      "respect to x itself (roll inside the tape), so it lines up "
                                      "with the unshifted image.")
        if _cosine(step, want) > 0.999:
            return report(False, hint="The direction is right but the size is not: divide the "
                                      "gradient by its RMS, as the lesson's ascent_step does.")
        return report(False, hint=f"For shift {shift} your step differs from the jittered step. "
                                  "Use the score before the softmax (ch.models.logits_model).")
    return report(True, "Right: the pattern now has to work wherever it sits. Run it in a loop "
                        "with a new random shift each step and compare with the lesson's picture.")


def _cosine(a, b):
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


solution_text("jitter_step", '''
    import tensorflow as tf

    logits = ch.models.logits_model(model)

    def my_jitter_step(x, class_index, lr, shift):
        with tf.GradientTape() as tape:
            tape.watch(x)
            shifted = tf.roll(x, shift, axis=[1, 2])      # the image moved by (dy, dx)
            score = logits(shifted)[0, class_index]
        grad = tape.gradient(score, x)                   # lines up with x, not with `shifted`
        grad = grad / (tf.sqrt(tf.reduce_mean(grad ** 2)) + 1e-8)
        return x + lr * grad

    ch.exercises.check_jitter_step(my_jitter_step, model)

    # the loop, with a new random shift of up to 2 pixels each step
    rng = np.random.default_rng(0)
    x = tf.zeros((1, 64, 64, 3))
    for t in range(64):
        x = tf.clip_by_value(my_jitter_step(x, 4, 0.03, rng.integers(-2, 3, size=2)), 0.0, 1.0)
    plt.imshow(x[0]);
''')


_SETTINGS = ("steps", "lr", "l2", "jitter", "tv", "blur_every", "blur_sigma", "seed")


def check_smooth_class_model(model, class_index, settings, max_hf: float = 0.05,
                             max_steps: int = 512) -> bool:
    """Exercise 2: with blur off, do ``settings`` (``visualize_class`` arguments) give a clean,
    strong class model?

    ``settings`` must say ``blur_every=0``; the check runs :func:`ascent.visualize_class` with
    them and passes when the class score is at least 10x max(score of the black image, score of
    a random image, 1) and the high-frequency share is below ``max_hf``.
    """
    from .. import ascent

    if is_missing(settings):
        return report(False, hint="Replace ... with a dict of visualize_class arguments, "
                                  "e.g. dict(steps=64, blur_every=0, l2=0.1).")
    if not isinstance(settings, dict):
        return report(False, hint="Pass a dict of visualize_class arguments (dict(steps=..., "
                                  "blur_every=0, ...)), not the image.")
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        return report(False, hint=f"Unknown or not allowed here: {', '.join(unknown)}. Use only "
                                  f"{', '.join(_SETTINGS)}.")
    if settings.get("blur_every") != 0:
        return report(False, hint="This exercise keeps blur off: put blur_every=0 in your "
                                  "settings (leaving it out means the default, blur every 4 steps).")
    try:
        steps = int(settings.get("steps", ascent.DEFAULTS["steps"]))
    except (TypeError, ValueError):
        return report(False, hint="steps must be a whole number.")
    if steps > max_steps:
        return report(False, hint=f"Keep steps at most {max_steps}: more steps are not the point.")
    try:
        image = ascent.visualize_class(model, class_index, progress=False, **settings).image
    except (TypeError, ValueError) as err:
        return report(False, hint=f"visualize_class refused your settings: {err}")
    score = float(ascent.objective_value(model, image, class_index=class_index))
    refs = [float(ascent.objective_value(model, ascent.start_image(model, s), class_index=class_index))
            for s in ("zeros", "random")]
    bar = 10 * max(refs + [1.0])
    hf = ascent.high_frequency_share(image)
    if score < bar:
        return report(False, hint=f"The score {score:.1f} is below the bar {bar:.1f}: your "
                      "regularizers are so strong that the neuron is barely excited. Weaken one, "
                      "or take more steps.")
    if hf > max_hf:
        return report(False, hint=f"The score is high but the image is noisy (high-frequency "
                      f"share {hf:.3f} > {max_hf}). With blur off, which of the other "
                      "regularizers remove fine pixel patterns, and how strong must they be?")
    return report(True, f"Right: score {score:.1f} (bar {bar:.1f}) with high-frequency share "
                  f"{hf:.3f}, and no blur.")


solution_text("smooth_class_model", '''
    # Jitter (the pattern must work wherever it sits) and a strong total variation (it
    # penalizes differences between neighbours) remove the fine pattern that blur would.
    my_settings = dict(steps=ch.scaled(128, 64), blur_every=0,
                       l2=0.2, jitter=3, tv=1.0)
    ch.exercises.check_smooth_class_model(model, "ring", my_settings)
''')


def check_decorrelated_image(my_decorrelated_image, size: int = 64) -> bool:
    """Exercise 3: is ``my_decorrelated_image(p)`` the image ``render(param="fft+decorrelated")``
    climbs, for free numbers ``p`` of shape (1, 3, size, size // 2 + 1, 2)?  The check tries two
    random ``p`` against :func:`course_helpers.ascent.params.to_image`."""
    import tensorflow as tf

    from ..ascent import params

    if is_missing(my_decorrelated_image) or not callable(my_decorrelated_image):
        return report(False, hint="Write a function my_decorrelated_image(p) and pass the "
                                  "function itself.")
    m = params.colour_matrix(normalized=True)
    raw = params.colour_matrix()
    for seed in (0, 1):
        p = np.random.default_rng(seed).normal(0, 0.5, params.param_shape("fft", 1, size, size))
        p = p.astype(np.float32)
        try:
            got = my_decorrelated_image(tf.constant(p))
            if is_missing(got):
                return report(False, hint="Your function returns nothing yet: return the image, "
                                          f"shape (1, {size}, {size}, 3).")
            got = np.asarray(got, dtype=np.float32).reshape(1, size, size, 3)
        except Exception as err:  # the learner's code: say what went wrong, not the answer
            return report(False, hint=f"Your function raised {type(err).__name__}: {err} "
                                      f"(p has shape {p.shape}; return (1, {size}, {size}, 3)).")
        want = params.to_image(p, "fft+decorrelated", size, size).numpy()
        if np.allclose(got, want, atol=1e-4):
            continue
        lin = params._linear_image(tf.constant(p), "fft", size, size,
                                   tf.constant(params.frequency_scale(size, size))).numpy()
        sig = 1 / (1 + np.exp(-lin))
        wrong = {
            "plain": sig,
            "after": sig @ m.T,
            "transposed": 1 / (1 + np.exp(-(lin @ m))),
            "raw": 1 / (1 + np.exp(-(lin @ raw.T))),
        }
        close = [k for k, v in wrong.items() if np.allclose(got, v, atol=1e-4)]
        if "plain" in close:
            return report(False, hint="That is the fft image of the lesson: the three numbers "
                                      "of each pixel still have to be mixed into R, G, B.")
        if "after" in close:
            return report(False, hint="The order matters: mix the colours first, then squeeze "
                                      "into (0, 1), so the image cannot leave the range.")
        if "transposed" in close:
            return report(False, hint="Nearly: with the colours on the last axis, a pixel's row "
                                      "vector times a matrix multiplies by the matrix's "
                                      "transpose. Which way round does M mix?")
        if "raw" in close:
            return report(False, hint="Right idea; the ascent uses the matrix scaled so that its "
                                      "longest column has length 1 (normalized=True).")
        return report(False, hint="Your image differs from render's. Start from the lesson's "
                                  "fft_image: what changes between the inverse FFT and the "
                                  "sigmoid?")
    return report(True, "Right: the ascent now moves three uncorrelated colour numbers per "
                        "pixel. Render a channel with param='fft' and 'fft+decorrelated' and "
                        "compare the colours.")


solution_text("decorrelated_image", '''
    import tensorflow as tf

    h = w = 64
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    weight = (np.sqrt(h * w) / np.maximum(np.hypot(fy, fx), 1 / max(h, w))).astype(np.float32)
    M = tf.constant(ch.ascent.colour_matrix(normalized=True), tf.float32)

    def my_decorrelated_image(p):
        spectrum = tf.complex(p[..., 0] * weight, p[..., 1] * weight)
        img = tf.signal.irfft2d(spectrum, fft_length=[h, w]) / 4.0
        img = tf.transpose(img, [0, 2, 3, 1])              # (1, h, w, 3): decorrelated colours
        img = tf.tensordot(img, tf.transpose(M), 1)        # each pixel: M @ (its 3 numbers)
        return tf.sigmoid(img)                             # then into (0, 1)

    ch.exercises.check_decorrelated_image(my_decorrelated_image)
''')
