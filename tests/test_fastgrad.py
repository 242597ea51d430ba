"""The faster input gradients (course_helpers._fastgrad) give TensorFlow's own numbers."""
import course_helpers as ch  # noqa: F401  (tf-keras before TensorFlow)

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from course_helpers import _fastgrad, saliency


def _mixed_model(dtype="float32", seed=0):
    """Every kind of layer the fast path treats, and some it must leave alone."""
    keras.utils.set_random_seed(seed)
    L = keras.layers
    kw = dict(dtype=dtype)
    x = inp = keras.Input((12, 12, 3), dtype=dtype)
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="same3", **kw)(x)
    x = L.Conv2D(5, 5, padding="same", activation="tanh", name="same5", **kw)(x)
    x = L.Conv2D(4, (3, 1), padding="valid", name="valid31", **kw)(x)        # 10 x 12
    x = L.Conv2D(4, 2, padding="same", name="even_same", **kw)(x)             # not eligible
    x = L.Conv2D(3, 2, padding="valid", name="valid22", **kw)(x)             # 9 x 11
    x = L.Conv2D(4, (1, 3), padding="valid", name="valid13", **kw)(x)        # 9 x 9
    x = L.Conv2D(6, 1, use_bias=False, name="one_by_one", **kw)(x)
    x = L.Conv2D(6, 3, strides=2, padding="same", name="strided", **kw)(x)    # not eligible
    x = L.MaxPooling2D(name="pool", **kw)(x)
    x = L.Flatten(**kw)(x)
    x = L.Dense(7, activation="relu", name="dense_relu", **kw)(x)
    x = L.Dense(3, name="dense", **kw)(x)
    return keras.Model(inp, x)


def _gradients(model, x, fast):
    def grads(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x, training=False)
            score = tf.reduce_sum(y * tf.constant([1.0, -2.0, 0.5], y.dtype))
        return tape.gradient(score, [x] + model.trainable_variables)

    if fast:
        grads = _fastgrad.traced_with_fast_gradients(model, grads)
    return [g.numpy() for g in tf.function(grads)(tf.constant(x))]


def test_which_layers_take_the_fast_path():
    model = _mixed_model()
    names = sorted(layer.name for layer in _fastgrad.fast_layers(model))
    assert names == ["dense", "dense_relu", "one_by_one", "same3", "same5", "valid13",
                     "valid22", "valid31"]
    assert not _fastgrad.eligible(keras.layers.Conv2DTranspose(2, 3))
    assert not _fastgrad.eligible(keras.layers.DepthwiseConv2D(3))
    assert not _fastgrad.eligible(keras.layers.Conv2D(2, 3, dilation_rate=2))


def test_input_and_weight_gradients_equal_tensorflows_own(rng):
    model = _mixed_model()
    x = rng.random((4, 12, 12, 3)).astype(np.float32)
    ours, theirs = _gradients(model, x, fast=True), _gradients(model, x, fast=False)
    assert len(ours) == len(theirs) == 1 + len(model.trainable_variables)
    assert np.abs(ours[0]).max() > 0
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _op_types(model, fast):
    """The op types of the traced gradient function (before Grappler rewrites anything)."""
    def grads(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(model(x, training=False))
        return tape.gradient(y, x)

    if fast:
        grads = _fastgrad.traced_with_fast_gradients(model, grads)
    graph = tf.function(grads).get_concrete_function(tf.TensorSpec((2, 12, 12, 3))).graph
    return [op.type for op in graph.get_operations()]


def test_the_fast_path_replaces_tensorflows_backward_kernels():
    """Not only equal numbers: the slow kernels are gone from the traced graph, except for the
    two ineligible convolutions (even kernel with "same" padding, stride 2)."""
    model = _mixed_model()
    plain, fast = _op_types(model, fast=False), _op_types(model, fast=True)
    assert plain.count("Conv2DBackpropInput") == 8
    assert fast.count("Conv2DBackpropInput") == 2
    # the 6 eligible convolutions: a flipped kernel and one more forward convolution each
    assert fast.count("Conv2D") == plain.count("Conv2D") + 6
    assert fast.count("ReverseV2") == 6
    # (each custom gradient also builds its kernel's gradient; unused here, Grappler prunes it
    # before the run: TensorFlow's profiler shows no Conv2DBackpropFilter executed)


def test_input_gradient_matches_finite_differences(rng):
    """An independent check, in float64: central differences at a few pixels."""
    model = _mixed_model("float64", seed=1)
    x = rng.random((1, 12, 12, 3))
    grad = _gradients(model, x, fast=True)[0][0]
    weights = np.array([1.0, -2.0, 0.5])
    score = lambda z: float((model(z[None], training=False).numpy()[0] * weights).sum())  # noqa: E731
    eps = 1e-6
    for (i, j, c) in [(0, 0, 0), (5, 7, 1), (11, 11, 2), (3, 10, 0), (8, 2, 2)]:
        up, down = x[0].copy(), x[0].copy()
        up[i, j, c] += eps
        down[i, j, c] -= eps
        assert grad[i, j, c] == pytest.approx((score(up) - score(down)) / (2 * eps),
                                              rel=1e-5, abs=1e-8)


def test_layers_are_restored_after_the_block_and_after_an_error(rng):
    model = _mixed_model()
    x = rng.random((2, 12, 12, 3)).astype(np.float32)
    before = model(x).numpy()
    with _fastgrad.fast_input_gradients(model) as patched:
        assert {layer.name for layer in patched} >= {"same3", "dense"}
        assert "convolution_op" in vars(model.get_layer("same3"))
        np.testing.assert_allclose(model(x).numpy(), before, rtol=1e-6)  # forward unchanged
    with _fastgrad.fast_input_gradients(model):
        with _fastgrad.fast_input_gradients(model) as inner:
            assert inner == []   # already patched: the outer block restores them
        assert "convolution_op" in vars(model.get_layer("same3"))
    with pytest.raises(RuntimeError, match="boom"):
        with _fastgrad.fast_input_gradients(model):
            raise RuntimeError("boom")
    for layer in model.layers:
        assert "convolution_op" not in vars(layer) and "call" not in vars(layer), layer.name
    np.testing.assert_array_equal(model(x).numpy(), before)


def test_dense_on_other_ranks_keeps_its_own_call(rng):
    keras.utils.set_random_seed(2)
    inp = keras.Input((5, 4))
    model = keras.Model(inp, keras.layers.Dense(3, name="d")(inp))   # a rank-3 input: tensordot
    x = rng.random((2, 5, 4)).astype(np.float32)

    def grads(x, fast):
        def g(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(model(x) ** 2)
            return tape.gradient(y, x)
        g = _fastgrad.traced_with_fast_gradients(model, g) if fast else g
        return tf.function(g)(tf.constant(x)).numpy()

    np.testing.assert_allclose(grads(x, True), grads(x, False), rtol=1e-5, atol=1e-7)


def test_nested_models_are_found():
    inner = keras.Sequential([keras.layers.Conv2D(2, 3, padding="same", name="inner_conv")])
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Dense(2, name="outer")(
        keras.layers.Flatten()(inner(inp))))
    assert sorted(layer.name for layer in _fastgrad.fast_layers(model)) == ["inner_conv", "outer"]


def test_vgg16_saliency_gradients_equal_tensorflows_own(rng):
    vgg = ch.models.load_model("vgg16", weights=None)
    x = tf.constant(rng.random((2, 224, 224, 3)).astype(np.float32))
    cls = tf.constant([3, 500], tf.int32)
    fast, plain = saliency.gradient_function(vgg), saliency.gradient_function(vgg, fast=False)
    assert fast is not plain and fast is saliency.gradient_function(vgg, fast=True)
    (g1, s1), (g2, s2) = fast(x, cls), plain(x, cls)
    np.testing.assert_allclose(s1.numpy(), s2.numpy(), rtol=1e-5)
    g1, g2 = g1.numpy(), g2.numpy()
    assert np.abs(g2).max() > 0
    np.testing.assert_allclose(g1, g2, rtol=1e-3, atol=1e-5 * np.abs(g2).max())
