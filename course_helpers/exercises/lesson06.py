"""Exercise checks for lesson 4.1 -- style transfer (notebook 06).

The lesson writes out the Gram matrix, the style loss and one optimization step ("In plain
code"); the exercises go a step further: a Gram matrix that keeps coarse position, a weighted
style loss over two layers, when each start settles, counted from the loss histories, and a
feature inversion with lesson 05's edge-keeping prior.  The checks compute their own reference in
NumPy and never show it.
"""
from __future__ import annotations

import numpy as np

from ._base import is_missing, report, solution_text

__all__ = ["check_edge_keeping_inversion", "check_faster_start", "check_quadrant_gram",
           "check_weighted_style_loss"]


def _reference_gram(f):
    h, w, c = f.shape
    flat = f.reshape(h * w, c).astype(np.float64)
    return flat.T @ flat / (h * w)


def _quadrants(f):
    h, w = f.shape[0] // 2, f.shape[1] // 2
    return [f[:h, :w], f[:h, w:], f[h:, :w], f[h:, w:]]


def _reference_quadrant_gram(f):
    return np.stack([_reference_gram(q) for q in _quadrants(np.asarray(f, np.float64))])


def check_quadrant_gram(my_quadrant_gram) -> bool:
    """Exercise 2: ``my_quadrant_gram(f)`` -> a (4, C, C) array, the Gram matrices of the four
    quadrants of one (H, W, C) feature map (H, W even), in reading order (top-left, top-right,
    bottom-left, bottom-right), each the mean over its quadrant's positions.

    Tried on three random maps against a NumPy reference; then the check confirms that a
    shuffle of all positions changes the result and a shuffle inside each quadrant does not.
    """
    if is_missing(my_quadrant_gram) or not callable(my_quadrant_gram):
        return report(False, hint="Define my_quadrant_gram(f) and pass the function itself.")
    rng = np.random.default_rng(21)
    maps = [rng.normal(size=shape).astype(np.float32) for shape in ((8, 8, 5), (6, 10, 4), (4, 4, 3))]
    for f in maps:
        try:
            got = my_quadrant_gram(f.copy())
            if is_missing(got):
                return report(False, hint="Your function returns nothing yet: return a (4, C, C) array.")
            got = np.asarray(got, dtype=np.float64)
        except Exception as err:  # the learner's code may fail in any way
            return report(False, hint=f"Your function raised {type(err).__name__}: {err} "
                                      f"(f has shape {f.shape}).")
        c = f.shape[-1]
        want = _reference_quadrant_gram(f)
        if got.shape != (4, c, c):
            return report(False, hint=f"For a map of shape {f.shape} return shape (4, {c}, {c}): "
                                      "one C x C Gram matrix per quadrant, stacked (np.stack).")
        if np.allclose(got, want, rtol=1e-4, atol=1e-5):
            continue
        whole = _reference_gram(np.asarray(f, np.float64))
        if all(np.allclose(g, whole, rtol=1e-4, atol=1e-5) for g in got):
            return report(False, hint="All four matrices are the Gram matrix of the whole map: "
                                      "slice the map into its quadrants first (f[:h, :w], ...).")
        n = (f.shape[0] // 2) * (f.shape[1] // 2)
        if np.allclose(got, want * n, rtol=1e-4, atol=1e-4):
            return report(False, hint="Close: divide each quadrant's sum by its number of "
                                      "positions (a mean, as ch.style.gram_matrix does).")
        order = [np.argmin([np.abs(g - w).max() for w in want]) for g in got]
        if sorted(order) == [0, 1, 2, 3] and all(np.allclose(g, want[i], rtol=1e-4, atol=1e-5)
                                                 for g, i in zip(got, order)):
            return report(False, hint="The right four matrices in another order: top-left, "
                                      "top-right, bottom-left, bottom-right (rows first).")
        return report(False, hint=f"For a map of shape {f.shape} your matrices differ. Split the "
                                  "rows and the columns in half, and take the Gram matrix of each "
                                  "of the four pieces.")
    f = maps[0]
    h, w, c = f.shape
    shuffled = f.reshape(h * w, c)[rng.permutation(h * w)].reshape(h, w, c)
    inside = f.copy()
    for q in _quadrants(inside):             # views: shuffle each quadrant in place
        q[...] = q.reshape(-1, c)[rng.permutation(q.shape[0] * q.shape[1])].reshape(q.shape)
    mine = np.asarray(my_quadrant_gram(f.copy()), np.float64)
    if np.allclose(np.asarray(my_quadrant_gram(shuffled), np.float64), mine, atol=1e-5) or not \
            np.allclose(np.asarray(my_quadrant_gram(inside), np.float64), mine, atol=1e-5):
        return report(False, hint="Your matrices are right on the test maps but not on shuffled "
                                  "ones: does your function keep state between calls?")
    return report(True, "Right: shuffling positions across the map now changes your matrices, "
                        "shuffling inside a quadrant still does not. The price: four times the "
                        "numbers, and a style tied to a coarse layout.")


solution_text("quadrant_gram", '''
    def my_quadrant_gram(f):                           # f: (H, W, C), H and W even
        h, w = f.shape[0] // 2, f.shape[1] // 2
        quadrants = [f[:h, :w], f[:h, w:], f[h:, :w], f[h:, w:]]   # reading order
        grams = []
        for q in quadrants:
            flat = q.reshape(-1, q.shape[-1])            # one row per position of the quadrant
            grams.append(flat.T @ flat / len(flat))      # mean over its positions
        return np.stack(grams)                           # (4, C, C)

    ch.exercises.check_quadrant_gram(my_quadrant_gram)
''')


def _settle_step(history, within: float = 0.1) -> int:
    """The first step at which a run's total loss is within ``within`` of its final value."""
    total = np.asarray(history["total"], dtype=np.float64)
    return int(np.argmax(np.abs(total - total[-1]) <= within * abs(total[-1])))


def check_faster_start(answer, from_noise, from_content) -> bool:
    """Exercise 4: which run settles in fewer steps -- the first step at which its total loss is
    within 10% of its own final value -- 'noise', 'content', or 'same' if they tie?

    ``from_noise`` and ``from_content`` are the two histories ``ch.style.style_transfer`` returned;
    the check counts the steps in them."""
    for name, h in (("from_noise", from_noise), ("from_content", from_content)):
        if not isinstance(h, dict) or "total" not in h or len(np.atleast_1d(h["total"])) < 2:
            return report(False, hint=f"{name} must be a history from ch.style.style_transfer "
                                      "(a dict with a 'total' list): check_faster_start(faster, "
                                      "history, from_photo).")
    if is_missing(answer):
        return report(False, hint="Answer 'noise' or 'content' (or 'same' if they tie).")
    answer = str(answer).strip().lower()
    if answer not in ("noise", "content", "same"):
        return report(False, hint="Answer with one of the words 'noise', 'content' or 'same'.")
    n, c = _settle_step(from_noise), _settle_step(from_content)
    right = "noise" if n < c else "content" if c < n else "same"
    if answer == right:
        return report(True, f"Right: from noise the total settles after {n} steps, from the "
                            f"content image after {c}.")
    return report(False, hint="For each run find the first step whose total loss is within 10% "
                              "of that run's last value (np.argmax of a boolean array gives the "
                              "first True), then compare the two step numbers.")


solution_text("faster_start", '''
    def steps_to_settle(h):                  # first step within 10% of the run's final total
        total = np.asarray(h["total"])
        return int(np.argmax(np.abs(total - total[-1]) <= 0.1 * abs(total[-1])))

    n, c = steps_to_settle(history), steps_to_settle(from_photo)
    faster = "noise" if n < c else "content" if c < n else "same"
    ch.exercises.check_faster_start(faster, history, from_photo)
''')


def _layer_errors(model, image, style, layers):
    """Per layer: (||G(image) - G(style)||^2, ||G(style)||^2), Gram matrices in float64 NumPy."""
    import tf_keras as keras

    fm = keras.Model(model.inputs, [model.get_layer(n).output for n in layers])
    outs = fm(np.stack([image, style]), training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    errors, sizes = [], []
    for f in outs:
        g, a = (_reference_gram(np.asarray(x, np.float64)) for x in f)
        errors.append(np.sum((g - a) ** 2))
        sizes.append(np.sum(a ** 2))
    return np.array(errors), np.array(sizes)


def check_weighted_style_loss(my_style_loss, model) -> bool:
    """Exercise 3: ``my_style_loss(image, style, layers, weights)`` returns the weighted *sum*
    over ``layers`` of the relative Gram errors (the lesson's style loss is their plain mean).

    ``image`` and ``style`` are (H, W, 3) arrays in [0, 1] of the same size; ``model`` is the
    feature extractor.  The check tries two pairs of layers and two sets of weights.
    """
    from ..style import default_layers

    if is_missing(my_style_loss) or not callable(my_style_loss):
        return report(False, hint="Define my_style_loss(image, style, layers, weights) and pass "
                                  "the function itself.")
    names = default_layers(model)[1]
    if len(names) < 2:
        return report(False, hint=f"{model.name} has fewer than two style layers.")
    shape = tuple(model.input_shape[1:3])
    hw = shape if None not in shape else (32, 32)
    rng = np.random.default_rng(11)
    image = rng.uniform(0, 1, hw + (3,)).astype(np.float32)
    style = np.clip(0.5 + 0.3 * rng.normal(size=(1, 1, 3)) + 0.1 * rng.normal(size=hw + (3,)),
                    0, 1).astype(np.float32)
    for layers, weights in (([names[0], names[1]], [0.8, 0.2]), ([names[1], names[-1]], [0.3, 2.0])):
        try:
            got = my_style_loss(image.copy(), style.copy(), list(layers), list(weights))
            if is_missing(got):
                return report(False, hint="Your function returns nothing yet: return the loss, "
                                          "one number.")
            got = float(np.asarray(got))
        except Exception as err:  # the learner's code may fail in any way
            return report(False, hint=f"Your function raised {type(err).__name__}: {err}")
        errors, sizes = _layer_errors(model, image, style, layers)
        relative = errors / (sizes + 1e-8)
        if np.isclose(got, np.dot(weights, relative), rtol=1e-3):
            continue
        if np.isclose(got, relative.mean(), rtol=1e-3):
            return report(False, hint="That is the plain mean over the layers: multiply each "
                                      "layer's error by its weight and add them up.")
        if np.isclose(got, np.dot(weights, errors), rtol=1e-3):
            return report(False, hint="Close: divide each layer's squared Gram error by the "
                                      "sum of squares of the style's Gram matrix (a relative error).")
        return report(False, hint=f"For layers {layers} with weights {weights} your loss "
                                  "differs. Per layer: sum of (G - A)^2 over all entries, divided "
                                  "by the sum of A^2; then the weighted sum.")
    return report(True, "Right: a weighted style loss. Try more weight on the shallow layer "
                        "(finer grain) or on the deep one (larger motifs).")


solution_text("weighted_style_loss", '''
    import tensorflow as tf
    import tf_keras as keras

    def gram(f):                                        # f: (1, H, W, C)
        _, h, w, c = f.shape
        flat = tf.reshape(f, (h * w, c))
        return tf.transpose(flat) @ flat / (h * w)

    def my_style_loss(image, style, layers, weights):
        features = keras.Model(extractor.inputs, [extractor.get_layer(n).output for n in layers])
        loss = 0.0
        for f, s, w in zip(features(image[None]), features(style[None]), weights):
            g, a = gram(f), gram(s)
            loss += w * tf.reduce_sum((g - a) ** 2) / (tf.reduce_sum(a ** 2) + 1e-8)
        return float(loss)

    ch.exercises.check_weighted_style_loss(my_style_loss, extractor)
''')


# --------------------------------------------------------------------------- feature inversion
def _reference_tv(x, eps):
    """Lesson 05's total variation in NumPy (float64): sum of sqrt(dy^2 + dx^2 + eps^2) - eps."""
    x = np.asarray(x, np.float64)
    dy = x[:, 1:, :-1, :] - x[:, :-1, :-1, :]
    dx = x[:, :-1, 1:, :] - x[:, :-1, :-1, :]
    return float(np.sum(np.sqrt(dy * dy + dx * dx + eps * eps) - eps))


def _reference_squared(x):
    x = np.asarray(x, np.float64)
    return float(np.mean((x[:, 1:] - x[:, :-1]) ** 2) + np.mean((x[:, :, 1:] - x[:, :, :-1]) ** 2))


def check_edge_keeping_inversion(my_inversion_loss, model, layer="conv2") -> bool:
    """Exercise 1: ``my_inversion_loss(x, image, tv)`` -> a scalar ``tf.Tensor``: the relative
    feature error of ``x`` (1, H, W, 3) against ``image`` (H, W, 3) at ``layer`` (after its batch
    norm and ReLU), plus ``tv`` times lesson 05's total variation of ``x`` (the sum over pixels
    and channels of sqrt(dy^2 + dx^2 + eps^2) - eps, eps = ``ch.ascent.TV_EPS``), differentiable
    with respect to ``x``.  Tried on random images against a NumPy reference."""
    import tensorflow as tf

    from .. import graph
    from ..ascent import TV_EPS

    if is_missing(my_inversion_loss) or not callable(my_inversion_loss):
        return report(False, hint="Define my_inversion_loss(x, image, tv) and pass the function itself.")
    fm = graph.submodel(model, graph.activation_layer(model, layer))
    h, w = (int(n) for n in model.input_shape[1:3])
    rng = np.random.default_rng(6)
    for tv in (0.0, 1e-3, 0.02):
        image = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
        x = tf.constant(np.clip(image + rng.normal(0, 0.2, image.shape), 0, 1)[None].astype(np.float32))
        f = np.asarray(fm(x), np.float64)
        t = np.asarray(fm(image[None]), np.float64)
        feature = np.sum((f - t) ** 2) / np.sum(t ** 2)
        want = feature + tv * _reference_tv(x.numpy(), TV_EPS)
        try:
            with tf.GradientTape() as tape:
                tape.watch(x)
                got = my_inversion_loss(x, image.copy(), tv)
            if is_missing(got):
                return report(False, hint="Your function returns nothing yet: return the loss as a "
                                          "TensorFlow number.")
            grad = tape.gradient(got, x) if tf.is_tensor(got) else None
            got = float(np.asarray(got))
        except Exception as err:  # the learner's code may fail in any way
            return report(False, hint=f"Your function raised {type(err).__name__}: {err}")
        if np.isclose(got, want, rtol=1e-3):
            if grad is None:
                return report(False, hint="The value is right, but TensorFlow cannot take its "
                                          "gradient: compute it with tf operations on x, not NumPy.")
            continue
        if tv == 0.0:
            if np.isclose(got, np.sum((f - t) ** 2), rtol=1e-3):
                return report(False, hint="Close: divide the squared feature error by the sum of "
                                          "squares of the image's features (a relative error).")
            return report(False, hint="With tv=0 your loss should be the content loss of the "
                                      "lesson: the relative error of the layer's features.")
        if np.isclose(got, feature + tv * _reference_squared(x.numpy()), rtol=1e-3):
            return report(False, hint="That is the lesson's squared variation "
                                      "(ch.style.squared_variation); the exercise asks for lesson "
                                      "05's total variation: a square root per pixel, summed.")
        if np.isclose(got, feature + tv * _reference_tv(x.numpy(), 0.0), rtol=1e-3):
            return report(False, hint="Keep eps inside the square root: sqrt(dy^2 + dx^2 + eps^2) - eps.")
        return report(False, hint=f"With tv={tv} your loss differs. The prior: dy and dx are the "
                                  "differences with the pixel below and to the right, both on the "
                                  "crop [:, :-1, :-1]; sum sqrt(dy^2 + dx^2 + eps^2) - eps.")
    return report(True, "Right. Run the inversion with it (tv about 1e-4, the sum is large): the "
                        "edges stay sharper than with squared variation, which blurs them.")


solution_text("edge_keeping_inversion", '''
    import tf_keras as keras

    features = keras.Model(cnn.inputs, cnn.get_layer("conv2_relu").output)   # after BN and ReLU
    eps = ch.ascent.TV_EPS

    def my_inversion_loss(x, image, tv):
        target = features(image[None])
        feature = tf.reduce_sum((features(x) - target) ** 2) / tf.reduce_sum(target ** 2)
        dy = x[:, 1:, :-1, :] - x[:, :-1, :-1, :]      # pixel below minus pixel
        dx = x[:, :-1, 1:, :] - x[:, :-1, :-1, :]      # pixel to the right minus pixel
        prior = tf.reduce_sum(tf.sqrt(dy ** 2 + dx ** 2 + eps ** 2) - eps)
        return feature + tv * prior

    ch.exercises.check_edge_keeping_inversion(my_inversion_loss, cnn)
''')
