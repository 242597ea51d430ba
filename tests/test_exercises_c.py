"""Exercises of notebooks 05 and 06: each check accepts its registered worked solution
(executed as a learner would run it) and rejects plausible wrong answers."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import course_helpers as ch  # noqa: E402
import tf_keras as keras  # noqa: E402


@pytest.fixture(scope="module")
def course_model():
    return ch.models.load_model("course-cnn")


@pytest.fixture(scope="module")
def extractor():
    # narrow random filters: the same architecture and layer names as the lesson's, faster
    return ch.style.offline_extractor(seed=3, widths=(16, 24, 32, 32))


def run_solution(name, **namespace):
    """Execute the registered solution of ``name``; return its namespace."""
    ns = {"np": np, "ch": ch, "plt": plt, **namespace}
    exec(ch.exercises._base.SOLUTIONS[name], ns)
    plt.close("all")
    return ns


def test_every_exercise_has_a_solution():
    for name in ("jitter_step", "smooth_class_model", "quadrant_gram", "faster_start",
                 "weighted_style_loss"):
        assert name in ch.exercises.solutions()


# ------------------------------------------------------------------ 05
def test_jitter_step(course_model):
    ns = run_solution("jitter_step", model=course_model)
    good = ns["my_jitter_step"]
    assert ch.exercises.check_jitter_step(good, course_model) is True
    logits = ch.models.logits_model(course_model)

    def no_jitter(x, c, lr, shift):
        return good(x, c, lr, (0, 0))

    def shifted_gradient(x, c, lr, shift):  # gradient taken at the shifted image, not rolled back
        xs = tf.roll(x, shift, axis=[1, 2])
        with tf.GradientTape() as tape:
            tape.watch(xs)
            score = logits(xs)[0, c]
        g = tape.gradient(score, xs)
        return x + lr * g / (tf.sqrt(tf.reduce_mean(g ** 2)) + 1e-8)

    def unnormalized(x, c, lr, shift):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = logits(tf.roll(x, shift, axis=[1, 2]))[0, c]
        return x + lr * tape.gradient(score, x)

    def descent(x, c, lr, shift):
        return 2 * x - good(x, c, lr, shift)

    def unanswered(x, c, lr, shift):  # the template's body: `...` returns None
        ...

    for wrong in (no_jitter, shifted_gradient, unnormalized, descent, unanswered, ...):
        assert ch.exercises.check_jitter_step(wrong, course_model) is False


def test_jitter_step_reference_matches_the_package_with_jitter(course_model):
    # the checker's reference step is the package's jittered step for the shift the package drew
    from course_helpers.exercises.lesson05 import _reference_jitter_step

    x = np.full((64, 64, 3), 0.5, np.float32) + np.random.default_rng(2).normal(0, 0.1, (64, 64, 3)).astype(np.float32)
    res = ch.ascent.visualize_class(course_model, 4, steps=1, lr=0.03, l2=0.0, jitter=2,
                                    blur_every=0, tv=0.0, clip=False, start=x, seed=0)
    candidates = [_reference_jitter_step(course_model, x[None], 4, 0.03, (dy, dx)).numpy()[0]
                  for dy in range(-2, 3) for dx in range(-2, 3)]
    step = (res.image - x) / 0.03
    assert any(np.allclose(step, c, atol=1e-3) for c in candidates)


def test_smooth_class_model(course_model):
    ns = run_solution("smooth_class_model", model=course_model)
    settings = ns["my_settings"]
    assert settings["blur_every"] == 0
    assert ch.exercises.check_smooth_class_model(course_model, "ring", settings) is True
    # independent: rerun the ascent, score it from the 'logits' layer, HF with NumPy's FFT
    image = ch.ascent.visualize_class(course_model, "ring", **settings).image
    view = keras.Model(course_model.inputs, course_model.get_layer("logits").output)
    ring = ch.models.class_names(course_model).index("ring")
    refs = [np.zeros((1, 64, 64, 3), np.float32), ch.ascent.start_image(course_model, "random")[None]]
    bar = 10 * max([float(view.predict(r, verbose=0)[0, ring]) for r in refs] + [1.0])
    assert float(view.predict(image[None], verbose=0)[0, ring]) >= bar
    centred = image - image.mean(axis=(0, 1))
    power = np.abs(np.fft.fft2(centred, axes=(0, 1))) ** 2
    f = np.abs(np.fft.fftfreq(64))
    high = np.hypot(f[:, None], f[None, :]) > 0.25             # radial frequency, cycles/pixel
    assert (power * high[..., None]).sum() / power.sum() < 0.05
    # wrong: the package defaults (blur on), blur left out, blur off with nothing instead,
    # an ascent too weak to reach the bar, an image instead of settings, the template
    check = ch.exercises.check_smooth_class_model
    assert check(course_model, "ring", dict(ch.ascent.DEFAULTS)) is False
    assert check(course_model, "ring", dict(steps=64, jitter=3, tv=1.0)) is False
    assert check(course_model, "ring", dict(steps=64, blur_every=0, l2=0.0, jitter=0, tv=0.0)) is False
    assert check(course_model, "ring", dict(steps=2, blur_every=0, lr=0.001)) is False
    assert check(course_model, "ring", image) is False
    assert check(course_model, "ring", ...) is False


# ------------------------------------------------------------------ 06
def test_quadrant_gram():
    ns = run_solution("quadrant_gram")
    good = ns["my_quadrant_gram"]
    check = ch.exercises.check_quadrant_gram
    assert check(good) is True
    # independent: a loop over the four quadrants with ch.style.gram_matrix, and the property
    f = np.random.default_rng(1).normal(size=(6, 8, 3)).astype(np.float32)
    want = [ch.style.gram_matrix(f[r:r + 3, c:c + 4]) for r in (0, 3) for c in (0, 4)]
    np.testing.assert_allclose(good(f), np.stack(want), rtol=1e-4, atol=1e-5)
    flipped = f[::-1, ::-1]                                # every quadrant moves
    assert not np.allclose(good(flipped), good(f), atol=1e-4)
    assert np.allclose(ch.style.gram_matrix(flipped), ch.style.gram_matrix(f), atol=1e-4)

    def whole(f):                                          # the plain Gram matrix, four times
        return np.stack([ch.style.gram_matrix(f)] * 4)

    def summed(f):                                         # a sum, not a mean over positions
        return good(f) * (f.shape[0] // 2) * (f.shape[1] // 2)

    def column_order(f):                                   # quadrants in column order
        return good(f)[[0, 2, 1, 3]]

    def concatenated(f):                                   # (4C, C) instead of (4, C, C)
        return good(f).reshape(-1, f.shape[-1])

    def unanswered(f):
        ...

    for wrong in (whole, summed, column_order, concatenated, unanswered, ...):
        assert check(wrong) is False


def _history(total):
    return {"total": list(total), "content": [0.0] * len(total), "style": list(total)}


def test_faster_start():
    # made-up runs: settled (within 10% of the last value) at step 4 and at step 1
    slow = _history([10, 8, 6, 4, 3.0, 2.9, 2.8])
    quick = _history([5, 3.0, 2.95, 2.9, 2.85, 2.8, 2.8])
    ns = run_solution("faster_start", history=slow, from_photo=quick)
    check = ch.exercises.check_faster_start
    assert ns["faster"] == "content"
    assert check(ns["faster"], slow, quick) is True
    assert check("noise", slow, quick) is False
    # the answer follows the data, not a fixed word
    ns = run_solution("faster_start", history=quick, from_photo=slow)
    assert ns["faster"] == "noise" and check("noise", quick, slow) is True
    assert check("content", quick, slow) is False
    assert check("same", slow, slow) is True and check("content", slow, slow) is False
    # independent count for a real-looking pair: a loop instead of np.argmax
    def settle(total):
        return next(i for i, v in enumerate(total) if abs(v - total[-1]) <= 0.1 * abs(total[-1]))
    assert (settle(slow["total"]), settle(quick["total"])) == (4, 1)
    assert check(..., slow, quick) is False
    assert check("photo", slow, quick) is False
    assert check("content", "content", quick) is False      # histories missing


def test_weighted_style_loss(extractor):
    ns = run_solution("weighted_style_loss", extractor=extractor)
    good = ns["my_style_loss"]
    assert ch.exercises.check_weighted_style_loss(good, extractor) is True

    def plain_mean(image, style, layers, weights):  # the lesson's loss, ignoring the weights
        return ch.style.style_loss(image, style, style_layers=layers, model=extractor)

    def swapped(image, style, layers, weights):
        return good(image, style, layers, weights[::-1])

    assert ch.exercises.check_weighted_style_loss(plain_mean, extractor) is False
    assert ch.exercises.check_weighted_style_loss(swapped, extractor) is False
    assert ch.exercises.check_weighted_style_loss(lambda *args: None, extractor) is False
    assert ch.exercises.check_weighted_style_loss(..., extractor) is False


def test_weighted_style_loss_reference_is_the_package_loss_for_equal_weights(extractor):
    # with weights 1/n the checker's NumPy reference is ch.style.style_loss over those layers
    from course_helpers.exercises.lesson06 import _layer_errors

    rng = np.random.default_rng(4)
    image, style = rng.uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    layers = ch.style.default_layers(extractor)[1][:2]
    errors, sizes = _layer_errors(extractor, image, style, layers)
    want = ch.style.style_loss(image, style, style_layers=layers, model=extractor)
    np.testing.assert_allclose((errors / (sizes + 1e-8)).mean(), want, rtol=1e-4)
