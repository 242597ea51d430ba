"""Lesson 05's exercise 3 (decorrelated colour): the check accepts the registered solution,
run as a learner would, and rejects plausible wrong answers with the right hint."""
import numpy as np
import pytest
import tensorflow as tf

import course_helpers as ch
from course_helpers.ascent import params as P


def _solution():
    ns = {"np": np, "ch": ch}
    exec(ch.exercises._base.SOLUTIONS["decorrelated_image"], ns)
    return ns["my_decorrelated_image"]


def test_solution_is_accepted(capsys):
    assert "decorrelated_image" in ch.exercises.solutions()
    assert ch.exercises.check_decorrelated_image(_solution()) is True
    assert "Right" in capsys.readouterr().out


def _lin(p):
    return P._linear_image(p, "fft", 64, 64, tf.constant(P.frequency_scale(64, 64)))


M = ch.ascent.colour_matrix(normalized=True).astype(np.float32)

WRONG = {
    "still have to be mixed": lambda p: tf.sigmoid(_lin(p)),
    "mix the colours first": lambda p: tf.tensordot(tf.sigmoid(_lin(p)), M.T, 1),
    "transpose": lambda p: tf.sigmoid(tf.tensordot(_lin(p), M, 1)),
    "normalized=True": lambda p: tf.sigmoid(tf.tensordot(
        _lin(p), ch.ascent.colour_matrix().T.astype(np.float32), 1)),
    "returns nothing": lambda p: None,
    "raised": lambda p: p[..., 7, :],
}


@pytest.mark.parametrize("hint", list(WRONG))
def test_wrong_answers_are_rejected_with_a_hint(hint, capsys):
    assert ch.exercises.check_decorrelated_image(WRONG[hint]) is False
    assert hint in capsys.readouterr().out


def test_the_reference_is_independent_of_the_package():
    """The solution written with NumPy's FFT conventions equals the package's image."""
    p = np.random.default_rng(2).normal(0, 0.5, P.param_shape("fft", 1, 64, 64)).astype(np.float32)
    fy, fx = np.fft.fftfreq(64)[:, None], np.fft.rfftfreq(64)[None, :]
    scale = 64 / np.maximum(np.hypot(fy, fx), 1 / 64)
    lin = np.fft.irfft2((p[..., 0] + 1j * p[..., 1]) * scale, s=(64, 64)).transpose(0, 2, 3, 1) / 4
    want = 1 / (1 + np.exp(-(lin @ M.T.astype(np.float64))))
    np.testing.assert_allclose(_solution()(tf.constant(p)).numpy(), want, atol=1e-5)
