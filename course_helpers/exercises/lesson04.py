"""Exercise checks for lessons 3.4-3.5 (notebook 04): occlusion on the class score, VarGrad,
integrated gradients from a blurred baseline.

Each exercise goes a step beyond the lesson's "In plain code" cells; the checks compute their
own reference (a plain loop, a plain gradient) and never show it.
"""
from __future__ import annotations

import numpy as np

from ._base import call_learner, is_missing, report, solution_text

__all__ = ["check_occlusion_scores", "check_vargrad", "check_blur_ig",
           "check_occlusion_count", "check_saliency_rule"]


def _norm(x):
    x = np.asarray(x, dtype=np.float64)
    return (x - x.min()) / max(x.max() - x.min(), 1e-12)


def _call(fn, *args):
    """Run the learner's function: (result, None) or (None, a hint saying what went wrong)."""
    got, hint = call_learner(fn, *args, returns="the map")
    if hint:
        return None, hint
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return None, "Return a NumPy array (or a tensor: call .numpy() on it)."
    if not np.all(np.isfinite(got)):
        return None, "Your map contains NaN or infinite values."
    return got, None


def _occluded_outputs(model, image, class_index, patch, stride, view):
    """``view``'s output for ``class_index`` with a grey patch at each grid position (a loop)."""
    from ..occlusion import occlusion_positions

    image = np.asarray(image, np.float32)
    ys = occlusion_positions(image.shape[0], patch, stride)
    xs = occlusion_positions(image.shape[1], patch, stride)
    copies = []
    for y in ys:
        for x in xs:
            copy = image.copy()
            copy[y:y + patch, x:x + patch] = 0.5
            copies.append(copy)
    out = view.predict(np.stack(copies), verbose=0)[:, class_index]
    return out.reshape(len(ys), len(xs)).astype(np.float64)


def check_occlusion_scores(fn, model, image, class_index, patch: int = 16, stride: int = 8) -> bool:
    """Exercise 3.4: ``fn(model, image, class_index, patch, stride)`` returns the occlusion grid
    of the class *score before the softmax* (grey patch, 0.5), shape (rows, cols)."""
    from ..models import logits_model

    got, hint = _call(fn, model, image, class_index, patch, stride)
    if hint:
        return report(False, hint=hint)
    want = _occluded_outputs(model, image, class_index, patch, stride, logits_model(model))
    if got.shape != want.shape:
        return report(False, hint=f"Expected one value per patch position, a grid of shape "
                                  f"{want.shape}; yours has shape {got.shape}. Did you add the "
                                  "last position, flush with the border?")
    scale = max(float(np.abs(want).max()), 1.0)
    if np.allclose(got, want, atol=1e-3 * scale):
        return report(True, "Right: the score keeps falling where the probability was stuck "
                            "near 1. Compare the two grids.")
    probs = _occluded_outputs(model, image, class_index, patch, stride, model)
    if np.allclose(got, probs, atol=1e-3):
        return report(False, hint="Those are probabilities (after the softmax). Ask "
                                  "ch.models.logits_model(model) instead of model.")
    if np.allclose(got, np.log(np.clip(probs, 1e-30, None)), atol=1e-2):
        return report(False, hint="That is the log-probability: it still depends on the other "
                                  "classes' scores. Take the class score itself, before softmax.")
    return report(False, hint="Not the same grid. Copy the image for each position, paint the "
                              "patch grey (0.5) and record logits(copy)[0, class_index].")


solution_text("occlusion_scores", '''
    def my_occlusion_scores(model, image, label, patch=16, stride=8):
        logits = ch.models.logits_model(model)       # class scores before the softmax
        size = image.shape[0]
        tops = list(range(0, size - patch + 1, stride))
        if tops[-1] != size - patch:                  # the last position, flush with the border
            tops.append(size - patch)
        scores = np.zeros((len(tops), len(tops)))
        for i, y in enumerate(tops):
            for j, x in enumerate(tops):
                copy = image.copy()
                copy[y:y + patch, x:x + patch] = 0.5
                scores[i, j] = float(logits(copy[None])[0, label])   # before the softmax
        return scores

    ch.exercises.check_occlusion_scores(my_occlusion_scores, model, image, label)
''')


def _noisy_gradients(model, image, class_index, n, noise, seed):
    """Gradients of the class score for ``n`` noisy copies, drawn as the lesson draws them."""
    import tensorflow as tf

    from ..models import logits_model

    image = np.asarray(image, np.float32)
    sigma = noise * float(image.max() - image.min())
    rng = np.random.default_rng(seed)
    noisy = np.stack([image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
                      for _ in range(n)])
    x = tf.constant(noisy.astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(logits_model(model)(x, training=False)[:, class_index])
    return tape.gradient(score, x).numpy().astype(np.float64)


def check_vargrad(fn, model, image, class_index, n: int = 8, noise: float = 0.15,
                  seed: int = 0) -> bool:
    """Exercise 3.5: ``fn(model, image, class_index, n, noise, seed)`` returns VarGrad, shape
    (H, W): the variance of the gradients over ``n`` noisy copies (noise drawn as in the
    lesson's SmoothGrad cell), then the largest value over R, G, B."""
    got, hint = _call(fn, model, image, class_index, n, noise, seed)
    if hint:
        return report(False, hint=hint)
    grads = _noisy_gradients(model, image, class_index, n, noise, seed)
    image = np.asarray(image)
    if got.shape != image.shape[:2]:
        return report(False, hint=f"Expected one value per pixel, shape {image.shape[:2]}; yours "
                                  f"has shape {got.shape}. Reduce over copies, then channels.")
    scale = float(grads.var(axis=0).max())

    def same(ref):
        return np.allclose(got, ref, rtol=1e-3, atol=1e-4 * scale)

    if same(grads.var(axis=0).max(axis=-1)) or same(grads.var(axis=0, ddof=1).max(axis=-1)):
        return report(True, "Right: VarGrad, the spread of the gradients under noise.")
    if same(np.abs(grads).mean(axis=0).max(axis=-1)):
        return report(False, hint="That is SmoothGrad (the mean of |gradient|). VarGrad keeps "
                                  "how much the gradients vary from copy to copy.")
    if same(grads.std(axis=0).max(axis=-1)) or same(grads.std(axis=0, ddof=1).max(axis=-1)):
        return report(False, hint="That is the standard deviation; VarGrad is its square.")
    if same(grads.var(axis=0).mean(axis=-1)) or same(grads.var(axis=0).sum(axis=-1)):
        return report(False, hint="Close: reduce the three channels by the lesson's rule "
                                  "(the largest value), not by a mean or a sum.")
    from scipy.stats import spearmanr

    if spearmanr(got.ravel(), grads.var(axis=0).max(axis=-1).ravel())[0] > 0.8:
        return report(False, hint="The right kind of map, but not the same numbers: draw the "
                                  "noise as the lesson does (np.random.default_rng(seed), one "
                                  "image + sigma * rng.standard_normal(image.shape, dtype=np.float32) per copy).")
    return report(False, hint="Keep the gradient of every noisy copy (not its absolute value), "
                              "take the variance over the copies, then the largest over R, G, B.")


solution_text("vargrad", '''
    import tensorflow as tf

    def my_vargrad(model, image, label, n=8, noise=0.15, seed=0):
        logits = ch.models.logits_model(model)
        sigma = noise * (image.max() - image.min())
        rng = np.random.default_rng(seed)
        grads = []
        for _ in range(n):
            noisy = tf.constant((image + sigma * rng.standard_normal(image.shape, dtype=np.float32))[None])
            with tf.GradientTape() as tape:
                tape.watch(noisy)
                score = logits(noisy)[0, label]
            grads.append(tape.gradient(score, noisy)[0].numpy())
        return np.var(grads, axis=0).max(axis=-1)    # spread over the copies, then R, G, B

    ch.exercises.check_vargrad(my_vargrad, model, image, label)
''')


def _path_gradients(model, image, baseline, class_index, steps):
    """Gradients of the class score at baseline + k/steps * (image - baseline), k = 0..steps."""
    import tensorflow as tf

    from ..models import logits_model

    alphas = np.linspace(0.0, 1.0, steps + 1)
    path = np.stack([baseline + a * (image - baseline) for a in alphas]).astype(np.float32)
    x = tf.constant(path)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(logits_model(model)(x, training=False)[:, class_index])
    return tape.gradient(score, x).numpy().astype(np.float64)


def check_blur_ig(fn, model, image, class_index, steps: int = 16) -> bool:
    """Exercise 3.5b: ``fn(model, image, class_index, steps)`` returns integrated gradients
    (H, W, 3) from the baseline ``gaussian_filter(image, sigma=(4, 4, 0))`` along the
    straight line, ``steps`` intervals, trapezoid rule."""
    from scipy.ndimage import gaussian_filter

    got, hint = _call(fn, model, image, class_index, steps)
    if hint:
        return report(False, hint=hint)
    image = np.asarray(image, np.float64)
    if got.shape != image.shape:
        return report(False, hint=f"Expected one value per pixel and channel, shape "
                                  f"{image.shape}; yours has shape {got.shape}. Keep R, G, B.")
    blur = gaussian_filter(image, sigma=(4, 4, 0))
    grads = _path_gradients(model, image, blur, class_index, steps)
    trapezoid = np.full(steps + 1, 1.0 / steps)
    trapezoid[[0, -1]] /= 2
    want = (image - blur) * np.tensordot(trapezoid, grads, axes=1)
    scale = float(np.abs(want).max())

    def same(ref):
        return np.allclose(got, ref, rtol=1e-3, atol=1e-4 * scale)

    if same(want):
        return report(True, "Right: integrated gradients from a blurred image. Now measure the "
                            "completeness gap of both baselines for a few step counts.")
    if same(np.tensordot(trapezoid, grads, axes=1)):
        return report(False, hint="Those are the mean gradients along the path: multiply them "
                                  "by (image - baseline).")
    left, right = np.zeros(steps + 1), np.zeros(steps + 1)
    left[:-1], right[1:] = 1.0 / steps, 1.0 / steps
    if same((image - blur) * np.tensordot(left, grads, axes=1)) or \
            same((image - blur) * np.tensordot(right, grads, axes=1)):
        return report(False, hint="Close: use all steps + 1 points with the trapezoid rule "
                                  "(weight 1/steps each, half of that at both ends).")
    black = np.zeros_like(image)
    if same(image * np.tensordot(trapezoid, _path_gradients(model, image, black, class_index,
                                                            steps), axes=1)):
        return report(False, hint="That is the black baseline of the lesson's cell: start the "
                                  "path at the blurred image instead.")
    flat = gaussian_filter(image, sigma=4)
    if same((image - flat) * np.tensordot(
            trapezoid, _path_gradients(model, image, flat, class_index, steps), axes=1)):
        return report(False, hint="Your blur also mixes the three colour channels: blur within "
                                  "each channel, sigma=(4, 4, 0).")
    return report(False, hint="Not the same numbers. Build steps + 1 images on the straight "
                              "line from the blurred copy to the image, take the gradient of "
                              "the class score (before the softmax) at each, average them with "
                              "the trapezoid rule, multiply by (image - baseline).")


solution_text("blur_ig", '''
    import tensorflow as tf
    from scipy.ndimage import gaussian_filter

    def my_blur_ig(model, image, label, steps=16):
        logits = ch.models.logits_model(model)
        baseline = gaussian_filter(image, sigma=(4, 4, 0))     # blur within each channel
        alphas = np.linspace(0, 1, steps + 1, dtype=np.float32)
        path = tf.constant(baseline + alphas[:, None, None, None] * (image - baseline))
        with tf.GradientTape() as tape:
            tape.watch(path)
            path_scores = logits(path)[:, label]
        grads = tape.gradient(path_scores, path).numpy()
        weights = np.full(steps + 1, 1 / steps)
        weights[[0, -1]] /= 2                                  # trapezoid rule
        return (image - baseline) * np.tensordot(weights, grads, axes=1)

    ch.exercises.check_blur_ig(my_blur_ig, model, image, label)

    # completeness: how far the sum is from score(image) - score(baseline), for both baselines
    logits = ch.models.logits_model(model)
    for name, base in (("black", np.zeros_like(image)),
                       ("blur", gaussian_filter(image, sigma=(4, 4, 0)))):
        s = logits(np.stack([image, base]).astype(np.float32)).numpy()[:, label]
        for steps in (8, 16, 64):
            ig = (ch.attribution.integrated_gradients(model, image, label, baseline=name, steps=steps)
                  if name == "black" else my_blur_ig(model, image, label, steps))
            print(f"{name:5s} {steps:3d} steps: gap {abs(ig.sum() - (s[0] - s[1])) / abs(s[0] - s[1]):.2%}")
''')


# --------------------------------------------------------------------------- earlier exercises
# The lesson now writes these out itself ("In plain code: occlusion", "In plain code:
# saliency"); the checks stay for anyone who still calls them.
def check_occlusion_count(image_size, patch, stride, count) -> bool:
    """How many occluded copies does ``occlusion_map`` run for a square image of side
    ``image_size``?"""
    if is_missing(count):
        return report(False, hint="Replace ... with a whole number of images.")
    from ..occlusion import occlusion_positions

    right = len(occlusion_positions(int(image_size), int(patch), int(stride))) ** 2
    try:
        given = int(count)
    except (TypeError, ValueError):
        return report(False, hint="Give one whole number.")
    if given == right:
        return report(True, "Right: one forward pass per patch position.")
    return report(False, hint="Count the positions along one axis (including a last one flush "
                              "with the border), then square it.")


def check_saliency_rule(reduce) -> bool:
    """A function that turns gradients (H, W, 3) into a saliency map (H, W) by the source's rule."""
    if is_missing(reduce) or not callable(reduce):
        return report(False, hint="Write a function, e.g. def my_rule(g): return ..., and pass it.")
    g = np.random.default_rng(7).normal(0, 1, (6, 5, 3)).astype(np.float32)
    got, hint = _call(reduce, g)
    if hint:
        return report(False, hint=hint)
    right = np.abs(g).max(axis=-1)
    if got.shape == right.shape and np.allclose(got, right, atol=1e-6):
        return report(True, "Right: one value per pixel, the strongest of its three derivatives.")
    return report(False, hint="For each pixel keep the largest of its 3 derivatives in size, "
                              "ignoring the sign.")
