"""Exercise 8.3 of notebook 08: the check accepts its registered worked solution (executed as
a learner would run it) and rejects plausible wrong answers."""
import numpy as np
import pytest

import course_helpers as ch


@pytest.fixture(scope="module")
def setting():
    model = ch.models.load_model("course-cnn")
    shuffled = ch.sanity.load_shuffled_model()
    images, labels, _ = ch.data.make_shapes(4, seed=40)
    return model, shuffled, (images, labels)


def test_signed_data_test_solution_is_accepted(setting):
    model, shuffled, shapes40 = setting
    ns = {"np": np, "ch": ch, "model": model, "shuffled": shuffled, "shapes40": shapes40}
    exec(ch.exercises._base.SOLUTIONS["signed_data_test"], ns)
    fn = ns["my_signed_test"]
    assert ch.exercises.check_signed_data_test(fn, model, shuffled, *shapes40) is True
    # the correlations themselves, by an independent route: scipy on a tape's gradients
    import tensorflow as tf
    from scipy.stats import spearmanr

    def signed(m, x, y):
        logits = ch.models.logits_model(m)
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            s = tf.gather(logits(xt), y, batch_dims=1)
        return tape.gradient(s, xt).numpy().sum(-1)

    a, b = signed(model, *shapes40), signed(shuffled, *shapes40)
    want = [spearmanr(p.ravel(), q.ravel())[0] for p, q in zip(a, b)]
    np.testing.assert_allclose(fn(model, shuffled, *shapes40), want, atol=1e-3)


def test_signed_data_test_rejects_wrong_answers(setting, capsys):
    model, shuffled, (images, labels) = setting
    check = ch.exercises.check_signed_data_test
    assert check(..., model, shuffled, images, labels) is False

    def absolute(m, s, x, y):   # the lesson's absolute-value maps
        a, b = ch.saliency.saliency_maps(m, x, y), ch.saliency.saliency_maps(s, x, y)
        return [ch.sanity.spearman(p, q) for p, q in zip(a, b)]

    assert check(absolute, model, shuffled, images, labels) is False
    assert "absolute-value" in capsys.readouterr().out
    assert check(lambda m, s, x, y: [1.0] * len(x), model, shuffled, images, labels) is False
    assert check(lambda m, s, x, y: [0.5], model, shuffled, images, labels) is False
    assert check(lambda m, s, x, y: 1 / 0, model, shuffled, images, labels) is False
    assert "ZeroDivisionError" in capsys.readouterr().out
