"""Shared fixtures.  The package is imported first so that TensorFlow uses tf-keras."""
import os

os.environ.setdefault("COURSE_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import course_helpers as ch  # noqa: E402,F401


@pytest.fixture(scope="session")
def course_model():
    """The shipped, trained course-cnn."""
    return ch.models.load_model("course-cnn")


@pytest.fixture(scope="session")
def shapes():
    """A small fixed set of generated images, labels and masks."""
    return ch.data.make_shapes(64, seed=123)


@pytest.fixture(scope="session")
def tiny_model():
    """A small untrained CNN (fast for finite differences and brute-force loops)."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(6, 3, padding="valid", activation="tanh", name="c2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(8, activation="tanh", name="fc")(x)
    x = keras.layers.Dense(3, name="logits")(x)
    out = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inp, out, name="tiny")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
