"""course_helpers.attribution (lessons 3.5, 5, 8): gradient x input, integrated gradients,
guided backprop, deconvnet, guided Grad-CAM -- each against an independent computation."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import course_helpers as ch
from course_helpers import attribution as attr


# --------------------------------------------------------------------------- small models
def linear_model(rng, size=(6, 5)):
    """logits = flatten(x) @ W + b (softmax on top): the gradient of class c is W[:, c]."""
    inp = keras.Input(size + (3,))
    x = keras.layers.Flatten()(inp)
    x = keras.layers.Dense(4, name="logits")(x)
    model = keras.Model(inp, keras.layers.Activation("softmax", name="predictions")(x))
    w = rng.normal(size=(int(np.prod(size)) * 3, 4)).astype(np.float32)
    model.get_layer("logits").set_weights([w, rng.normal(size=4).astype(np.float32)])
    return model, w


def two_relu_model(rng):
    """Flatten -> Dense(12, relu inside) -> Dense(10) -> ReLU layer -> Dense(3) -> softmax,
    with biases that switch some units off."""
    inp = keras.Input((4, 4, 3))
    x = keras.layers.Flatten()(inp)
    x = keras.layers.Dense(12, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(10, name="fc2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inp, keras.layers.Activation("softmax", name="predictions")(x))
    weights = []
    for name, shape in (("fc1", (48, 12)), ("fc2", (12, 10)), ("logits", (10, 3))):
        w = rng.normal(size=shape).astype(np.float32) / np.sqrt(shape[0])
        b = rng.normal(scale=0.3, size=shape[1]).astype(np.float32)
        model.get_layer(name).set_weights([w, b])
        weights.append((w.astype(np.float64), b.astype(np.float64)))
    return model, weights


def numpy_backward(weights, image, c, rule):
    """The hand-written backward pass of :func:`two_relu_model` with ReLU rule ``rule``."""
    (w1, b1), (w2, b2), (w3, _) = weights
    h1 = image.reshape(-1).astype(np.float64) @ w1 + b1
    h2 = np.maximum(h1, 0) @ w2 + b2

    def through_relu(g, h):
        if rule == "gradient":
            return g * (h > 0)
        if rule == "guided":
            return g * (h > 0) * (g > 0)
        return g * (g > 0)          # deconvnet: the input's sign does not matter

    g = w3[:, c]
    g = w2 @ through_relu(g, h2)
    g = w1 @ through_relu(g, h1)
    return g.reshape(image.shape)


# --------------------------------------------------------------------------- exact results
@pytest.mark.parametrize("baseline", ["black", "grey", "blur", "array"])
def test_integrated_gradients_on_a_linear_model_is_exact(rng, baseline):
    model, w = linear_model(rng)
    image = rng.uniform(0, 1, (6, 5, 3)).astype(np.float32)
    if baseline == "array":
        baseline = rng.uniform(0, 1, (6, 5, 3)).astype(np.float32)
        base = baseline
    elif baseline == "black":
        base = np.zeros_like(image)
    elif baseline == "grey":
        base = np.full_like(image, 0.5)
    else:
        from scipy.ndimage import gaussian_filter

        s = attr.BLUR_SIGMA * 6
        base = gaussian_filter(image.astype(np.float64), (s, s, 0), mode="reflect")
    for c in (0, 3):
        got = attr.integrated_gradients(model, image, c, baseline=baseline, steps=7)
        assert got.dtype == np.float32 and got.shape == image.shape
        np.testing.assert_allclose(got, (image - base) * w[:, c].reshape(image.shape),
                                   rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(attr.gradient_times_input(model, image, 2),
                               image * w[:, 2].reshape(image.shape), rtol=1e-6, atol=1e-7)


def test_trapezoid_weights():
    np.testing.assert_allclose(attr.path_weights(4), [0.125, 0.25, 0.25, 0.25, 0.125])
    assert attr.path_weights(1).tolist() == [0.5, 0.5]


def test_integrated_gradients_equal_a_brute_force_loop(tiny_model, rng):
    """One tape per point of the path, the trapezoid rule written out (tanh model: smooth)."""
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    base = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    logits = keras.Model(tiny_model.inputs, tiny_model.get_layer("logits").output)
    steps, c = 10, 2
    total = np.zeros(image.shape)
    for k in range(steps + 1):
        x = tf.constant((base + k / steps * (image - base))[None])
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = logits(x)[0, c]
        weight = (0.5 if k in (0, steps) else 1.0) / steps
        total += weight * tape.gradient(score, x).numpy()[0]
    got = attr.integrated_gradients(tiny_model, image, c, baseline=base, steps=steps, batch_size=4)
    np.testing.assert_allclose(got, total * (image - base), rtol=1e-4, atol=1e-6)


def test_completeness_on_course_cnn(course_model):
    """Sum of attributions = score(x) - score(baseline) within 2 % at 128 steps, 20 shapes;
    and the gap at 128 steps is smaller than at 4 (the rule converges)."""
    images, labels, _ = ch.data.make_shapes(20, seed=7)
    logits = ch.models.logits_model(course_model)
    base_score = logits(np.zeros((1, 64, 64, 3), np.float32)).numpy()[0]
    scores = logits(images).numpy()
    gaps = {4: [], 128: []}
    for i in range(20):
        c = int(labels[i])
        want = float(scores[i, c]) - float(base_score[c])
        for steps in (gaps if i < 5 else (128,)):
            got = attr.integrated_gradients(course_model, images[i], c, steps=steps).sum(dtype=np.float64)
            gaps[steps].append(abs(got - want) / abs(want))
    assert max(gaps[128]) <= 0.02, gaps[128]
    assert np.mean(gaps[128][:5]) < np.mean(gaps[4])


@pytest.mark.parametrize("rule", ["gradient", "guided", "deconvnet"])
def test_relu_rules_equal_a_numpy_backward_pass(rng, rule):
    model, weights = two_relu_model(rng)
    fn = {"gradient": lambda m, x, c: ch.saliency.input_gradient(m, x[None], c)[0],
          "guided": attr.guided_backprop, "deconvnet": attr.deconvnet}[rule]
    differs = False
    for trial in range(4):
        image = rng.uniform(0, 1, (4, 4, 3)).astype(np.float32)
        for c in range(3):
            want = numpy_backward(weights, image, c, rule)
            got = fn(model, image, c)
            assert got.dtype == np.float32 and got.shape == (4, 4, 3)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
            differs |= not np.allclose(want, numpy_backward(weights, image, c, "gradient"))
    assert differs or rule == "gradient"   # the rules did change something here


def test_written_out_forward_pass_equals_the_model(course_model, shapes):
    """The layer-by-layer pass (ReLU rule "gradient") gives the model's scores and TensorFlow's
    own gradient, on course-cnn (ReLUs in Activation layers and inside Dense)."""
    images, labels = shapes[0][:6], shapes[1][:6].astype(np.int32)
    grads, scores = attr.relu_rule_gradient(course_model, "gradient")(tf.constant(images),
                                                                       tf.constant(labels))
    want = ch.models.logits_model(course_model)(images).numpy()
    np.testing.assert_allclose(scores.numpy(), want[np.arange(6), labels], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads.numpy(), ch.saliency.input_gradient(course_model, images, labels),
                               rtol=1e-4, atol=1e-6)


def test_guided_rules_on_a_conv_net_with_max_pooling(rng):
    """Conv + max-pool + ReLU inside the conv: guided = the plain gradient with every negative
    gradient stopped at each ReLU, checked by hand on a one-conv net."""
    inp = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inp)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inp, keras.layers.Activation("softmax")(x))
    image = rng.uniform(0, 1, (6, 6, 3)).astype(np.float32)
    xt = tf.constant(image[None])
    w3 = model.get_layer("logits").kernel.numpy()
    for c in range(2):
        for rule in ("guided", "deconvnet"):
            with tf.GradientTape() as tape:      # gradient of the conv's pre-activation ...
                tape.watch(xt)
                pre = tf.nn.bias_add(tf.nn.conv2d(xt, model.get_layer("conv").kernel, 1, "SAME"),
                                     model.get_layer("conv").bias)
                act = tf.nn.relu(pre)
                pooled = tf.nn.max_pool2d(act, 2, 2, "VALID")
            # ... with the ReLU's rule applied by hand in NumPy at the conv's output
            g_pool = w3[:, c].reshape(pooled.shape)
            g_act = tape.gradient(pooled, act, output_gradients=tf.constant(g_pool)).numpy()
            mask = (g_act > 0) * ((pre.numpy() > 0) if rule == "guided" else 1)
            with tf.GradientTape() as tape2:
                tape2.watch(xt)
                pre2 = tf.nn.bias_add(tf.nn.conv2d(xt, model.get_layer("conv").kernel, 1, "SAME"),
                                      model.get_layer("conv").bias)
            want = tape2.gradient(pre2, xt, output_gradients=tf.constant(g_act * mask, tf.float32)).numpy()[0]
            got = getattr(attr, "guided_backprop" if rule == "guided" else "deconvnet")(model, image, c)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_guided_gradcam_is_guided_backprop_times_the_cam(course_model, shapes):
    image, c = shapes[0][0], int(shapes[1][0])
    cam = ch.kerasvis.gradcam(course_model, image, c, layer="conv3")
    got = attr.guided_gradcam(course_model, image, c, "conv3")
    np.testing.assert_allclose(got, attr.guided_backprop(course_model, image, c) * cam[..., None],
                               rtol=1e-5, atol=1e-7)
    assert got.dtype == np.float32 and got.shape == (64, 64, 3)
    default = attr.guided_gradcam(course_model, image, c)   # the last conv layer
    np.testing.assert_allclose(default, attr.guided_gradcam(course_model, image, c, "conv4"))


# --------------------------------------------------------------------------- nothing changes
def _layer_state(model):
    return [(lyr.name, type(lyr), lyr.get_config(), getattr(lyr, "activation", None),
             len(lyr._inbound_nodes), len(lyr._outbound_nodes), sorted(vars(lyr)))
            for lyr in model.layers]


def test_model_unchanged_after_calls(shapes):
    model = ch.models.load_model("course-cnn")
    images, labels = shapes[0][:2], shapes[1][:2]
    weights = [w.copy() for w in model.get_weights()]
    state = _layer_state(model)
    plain = ch.saliency.input_gradient(model, images, labels)
    probs = model(images).numpy()
    c = int(labels[0])
    for fn in (attr.gradient_times_input, attr.guided_backprop, attr.deconvnet, attr.guided_gradcam):
        fn(model, images[0], c)
    attr.integrated_gradients(model, images[0], c, baseline="blur", steps=4)
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert _layer_state(model) == state
    np.testing.assert_array_equal(model(images).numpy(), probs)
    np.testing.assert_array_equal(ch.saliency.input_gradient(model, images, labels), plain)
    # a fresh tape on the model itself: TensorFlow's ordinary ReLU gradient, not a guided one
    x = tf.constant(images[:1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = ch.models.logits_model(model)(x)[0, c]
    np.testing.assert_allclose(tape.gradient(score, x).numpy()[0], plain[0], rtol=1e-5, atol=1e-7)
    assert not np.allclose(attr.guided_backprop(model, images[0], c), plain[0])


# --------------------------------------------------------------------------- input conversion and errors
def test_inputs_are_converted(course_model, shapes):
    image, c = shapes[0][0], int(shapes[1][0])
    name = ch.models.class_names(course_model)[c]
    want = attr.guided_backprop(course_model, image, c)
    np.testing.assert_array_equal(attr.guided_backprop(course_model, image, np.int64(c)), want)
    np.testing.assert_array_equal(attr.guided_backprop(course_model, image, name), want)
    np.testing.assert_array_equal(attr.guided_backprop(course_model, image[None], c), want)
    as_uint8 = (image * 255).round().astype(np.uint8)
    np.testing.assert_allclose(attr.deconvnet(course_model, as_uint8, c),
                               attr.deconvnet(course_model, as_uint8.astype(np.float32) / 255, c),
                               rtol=1e-5, atol=1e-7)
    grey = attr.gradient_times_input(course_model, image.mean(-1), c)
    assert grey.shape == (64, 64, 3)
    bigger = attr.integrated_gradients(course_model, np.kron(image, np.ones((2, 2, 1))), c, steps=2)
    assert bigger.shape == (64, 64, 3) and bigger.dtype == np.float32


def test_bad_inputs_have_clear_errors(course_model, shapes):
    image = shapes[0][0]
    with pytest.raises(TypeError, match="model is None"):
        attr.guided_backprop(None, image, 0)
    with pytest.raises(TypeError, match="load_model"):
        attr.deconvnet("course-cnn", image, 0)
    with pytest.raises(ValueError, match="class_index 99 is out of range"):
        attr.guided_backprop(course_model, image, 99)
    with pytest.raises(ValueError, match="not a class name"):
        attr.integrated_gradients(course_model, image, "giraffe")
    with pytest.raises(ValueError, match=r"baseline must be one of 'black', 'grey', 'blur'; got 'white'"):
        attr.integrated_gradients(course_model, image, 0, baseline="white")
    with pytest.raises(TypeError, match="baseline must be one of"):
        attr.integrated_gradients(course_model, image, 0, baseline=0.5)
    with pytest.raises(ValueError, match="steps"):
        attr.integrated_gradients(course_model, image, 0, steps=0)
    with pytest.raises(TypeError, match="image is None"):
        attr.gradient_times_input(course_model, None, 0)
    with pytest.raises(ValueError, match="batch"):
        attr.guided_backprop(course_model, shapes[0][:2], 0)
    with pytest.raises(ValueError, match="conv1, conv2, conv3, conv4"):
        attr.guided_gradcam(course_model, image, 0, "embedding")


def test_a_relu_inside_an_unsupported_layer_is_refused(rng):
    inp = keras.Input((8, 8, 3))
    x = keras.layers.DepthwiseConv2D(3, activation="relu", name="dw")(inp)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    with pytest.raises(ValueError, match="'dw'.*Activation\\('relu'\\)"):
        attr.guided_backprop(model, rng.uniform(0, 1, (8, 8, 3)), 0)


def test_a_nested_block_is_walked_too(rng):
    """The same conv net, once flat and once with its conv block as a nested Sequential model:
    the guided and deconvnet rules reach the ReLU inside the block."""
    def build(nested):
        inp = keras.Input((8, 8, 3))
        conv = keras.layers.Conv2D(3, 3, activation="relu", name="conv")
        pool = keras.layers.MaxPooling2D(2, name="pool")
        x = keras.Sequential([keras.Input((8, 8, 3)), conv, pool], name="block")(inp) if nested \
            else pool(conv(inp))
        x = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(x))
        return keras.Model(inp, keras.layers.Activation("softmax")(x))

    flat, nested = build(False), build(True)
    nested.set_weights(flat.get_weights())
    image = rng.uniform(0, 1, (8, 8, 3)).astype(np.float32)
    plain = ch.saliency.input_gradient(flat, image[None], 1)[0]
    for fn in (attr.guided_backprop, attr.deconvnet):
        want = fn(flat, image, 1)
        assert not np.allclose(want, plain, atol=1e-5)
        np.testing.assert_allclose(fn(nested, image, 1), want, rtol=1e-5, atol=1e-7)
