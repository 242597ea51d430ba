"""Exercise 4 of notebook 06 (feature inversion with lesson 05's edge-keeping prior): the check
accepts the registered worked solution, run as a learner runs it, and rejects plausible wrong
answers; the checker's NumPy prior is the package's ch.ascent.total_variation."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import course_helpers as ch  # noqa: E402

check = ch.exercises.check_edge_keeping_inversion


@pytest.fixture(scope="module")
def good(course_model):
    ns = {"np": np, "ch": ch, "tf": tf, "cnn": course_model}
    exec(ch.exercises._base.SOLUTIONS["edge_keeping_inversion"], ns)
    return ns["my_inversion_loss"], ns["features"]


def test_solution_is_accepted(course_model, good):
    assert check(good[0], course_model) is True


def test_reference_prior_is_lesson_05s_total_variation():
    from course_helpers.exercises.lesson06 import _reference_tv

    x = np.random.default_rng(3).uniform(0, 1, (1, 9, 7, 3)).astype(np.float32)
    assert _reference_tv(x, ch.ascent.TV_EPS) == pytest.approx(ch.ascent.total_variation(x[0]),
                                                               rel=1e-5)


def test_wrong_answers_are_rejected(course_model, good):
    loss, features = good

    def squared(x, image, tv):                       # the lesson's prior instead of lesson 05's
        target = features(image[None])
        f = tf.reduce_sum((features(x) - target) ** 2) / tf.reduce_sum(target ** 2)
        return f + tv * ch.style.squared_variation(x)[0]

    def absolute(x, image, tv):                      # features' error not relative
        target = features(image[None])
        return tf.reduce_sum((features(x) - target) ** 2) + tv * 0.0

    def numpy_only(x, image, tv):                    # right value, no gradient
        return tf.constant(float(loss(x, image, tv)))

    def no_eps(x, image, tv):
        target = features(image[None])
        f = tf.reduce_sum((features(x) - target) ** 2) / tf.reduce_sum(target ** 2)
        dy = x[:, 1:, :-1, :] - x[:, :-1, :-1, :]
        dx = x[:, :-1, 1:, :] - x[:, :-1, :-1, :]
        return f + tv * tf.reduce_sum(tf.sqrt(dy ** 2 + dx ** 2 + 1e-12))

    def unanswered(x, image, tv):
        ...

    for wrong in (squared, absolute, numpy_only, no_eps, unanswered, ..., None):
        assert check(wrong, course_model) is False


def test_solution_runs_an_inversion(course_model, good):
    # the worked solution's loss, minimized a few Adam steps, lowers the feature error
    loss = good[0]
    image = ch.data.make_shapes(1, seed=ch.config.EVAL_SEED)[0][0]
    x = tf.Variable(np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32))
    import tf_keras as keras

    opt = keras.optimizers.Adam(0.05)
    first = float(loss(x, image, 0.0))
    for _ in range(15):
        with tf.GradientTape() as tape:
            value = loss(x, image, 1e-4)
        opt.apply_gradients([(tape.gradient(value, x), x)])
        x.assign(tf.clip_by_value(x, 0, 1))
    assert float(loss(x, image, 0.0)) < 0.5 * first
