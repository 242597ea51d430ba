"""course_helpers.saliency (lesson 3.5): gradients, SmoothGrad, object localization."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import course_helpers as ch
from course_helpers import saliency


def logits_by_numpy_model(model):
    """Score before softmax, from Keras layers only (independent of saliency's code)."""
    return keras.Model(model.inputs, model.get_layer("logits").output)


def test_gradient_matches_finite_differences(tiny_model, rng):
    image = rng.uniform(0.2, 0.8, (16, 16, 3)).astype(np.float64)
    c = 1
    grad = saliency.input_gradient(tiny_model, image[None].astype(np.float32), c)[0]
    scores = logits_by_numpy_model(tiny_model)
    eps = 1e-3   # small enough that no max-pool choice flips
    idx = np.arange(image.size)
    plus = np.repeat(image.reshape(1, -1), image.size, 0)
    minus = plus.copy()
    plus[idx, idx] += eps
    minus[idx, idx] -= eps
    f = lambda b: scores.predict(b.reshape(-1, 16, 16, 3).astype(np.float32), verbose=0,
                                 batch_size=256)[:, c].astype(np.float64)
    fd = ((f(plus) - f(minus)) / (2 * eps)).reshape(image.shape)
    np.testing.assert_allclose(grad, fd, atol=3e-4, rtol=1e-2)
    # the map is the largest |derivative| over R, G, B
    smap = saliency.saliency_map(tiny_model, image.astype(np.float32), c)
    np.testing.assert_allclose(smap, np.abs(fd).max(-1), atol=3e-4, rtol=1e-2)


def test_gradient_is_of_the_score_before_softmax(tiny_model, rng):
    import tensorflow as tf

    image = rng.uniform(0, 1, (1, 16, 16, 3)).astype(np.float32)
    grad = saliency.input_gradient(tiny_model, image, 0)
    x = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        prob = tiny_model(x)[:, 0]
    gprob = tape.gradient(prob, x).numpy()
    assert not np.allclose(grad, gprob, atol=1e-4)


def linear_model(rng):
    """logits = flatten(x) @ W + b, softmax on top: the input gradient of class c is W[:, c]."""
    inp = keras.Input((6, 5, 3))
    x = keras.layers.Flatten()(keras.layers.Rescaling(1.0)(inp))
    x = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inp, keras.layers.Activation("softmax", name="predictions")(x))
    w = rng.normal(size=(90, 3)).astype(np.float32)
    model.get_layer("logits").set_weights([w, rng.normal(size=3).astype(np.float32)])
    return model, w


def test_exact_on_a_linear_model(rng):
    model, w = linear_model(rng)
    images = rng.uniform(0, 1, (4, 6, 5, 3)).astype(np.float32)
    classes = [0, 2, 1, 2]
    grads = saliency.input_gradient(model, images, classes, batch_size=3)   # two batches
    np.testing.assert_allclose(grads, w[:, classes].T.reshape(4, 6, 5, 3), rtol=1e-6)
    exact = np.abs(w[:, 1].reshape(6, 5, 3)).max(-1)
    np.testing.assert_allclose(saliency.saliency_map(model, images[0], 1), exact, rtol=1e-6)
    # the gradient does not depend on the image, so SmoothGrad gives the same map
    smooth = saliency.saliency_map(model, images[0], 1, smooth_samples=5, batch_size=2)
    np.testing.assert_allclose(smooth, exact, rtol=1e-6)
    np.testing.assert_array_equal(saliency.reduce_channels(grads), np.abs(grads).max(-1))
    fn = saliency.gradient_function(model)
    g, scores = fn(tf.constant(images[:2]), tf.constant([0, 2], tf.int32))
    logits = images[:2].reshape(2, -1) @ w + model.get_layer("logits").get_weights()[1]
    np.testing.assert_allclose(scores.numpy(), logits[[0, 1], [0, 2]], rtol=1e-5)


def test_smoothgrad_matches_tf_keras_vis_on_a_linear_model(rng):
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    model, _ = linear_model(rng)
    image = rng.uniform(0, 1, (6, 5, 3)).astype(np.float32)
    ours = saliency.saliency_map(model, image, 2, smooth_samples=8)
    vis = Saliency(ch.models.logits_model(model), clone=False)
    theirs = vis(CategoricalScore(2), image[None], smooth_samples=8, normalize_map=False)[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_the_gradient_is_tensorflows_own(course_model):
    """The traced gradient call runs TensorFlow's own backward kernels: every conv layer's
    input gradient is a Conv2DBackpropInput (a hand-made backward pass would show forward
    Conv2D ops instead), and its numbers equal a plain eager tape."""
    import tensorflow as tf

    fn = saliency.gradient_function(course_model)
    graph = fn.get_concrete_function().graph
    ops = [op.type for op in graph.get_operations()]
    for f in graph.as_graph_def().library.function:   # the model's layers are called functions
        ops += [node.op for node in f.node_def]
    n_conv = len(ch.models.conv_layer_names(course_model))
    assert ops.count("Conv2DBackpropInput") == n_conv   # conv1 too: the image is watched
    image = ch.data.make_shapes(1, seed=3)[0]
    x = tf.constant(image)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = ch.models.logits_model(course_model)(x, training=False)[0, 1]
    want = tape.gradient(score, x).numpy()
    got, _ = fn(x, tf.constant([1], tf.int32))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)


def test_smoothgrad_is_the_mean_of_noisy_absolute_gradients(tiny_model, rng):
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    sg = saliency.saliency_map(tiny_model, image, 2, smooth_samples=6, noise=0.2, seed=5,
                               batch_size=4)
    noise_rng = np.random.default_rng(5)
    sigma = 0.2 * (image.max() - image.min())
    noisy = [image + sigma * noise_rng.standard_normal(image.shape, dtype=np.float32)
             for _ in range(6)]
    scores = logits_by_numpy_model(tiny_model)
    import tensorflow as tf
    grads = []
    for im in noisy:
        x = tf.constant(im[None])
        with tf.GradientTape() as tape:
            tape.watch(x)
            s = scores(x)[0, 2]
        grads.append(np.abs(tape.gradient(s, x).numpy()[0]))
    np.testing.assert_allclose(sg, np.mean(grads, 0).max(-1), rtol=1e-4, atol=1e-6)
    again = saliency.saliency_map(tiny_model, image, 2, smooth_samples=6, noise=0.2, seed=5,
                                  batch_size=4)
    np.testing.assert_array_equal(sg, again)
    other = saliency.saliency_map(tiny_model, image, 2, smooth_samples=6, noise=0.2, seed=6)
    assert not np.allclose(sg, other)


def test_matches_tf_keras_vis(course_model, shapes):
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    image, label = shapes[0][7], int(shapes[1][7])
    ours = saliency.saliency_map(course_model, image, label)
    vis = Saliency(saliency_model := ch.models.logits_model(course_model), clone=False)
    theirs = vis(CategoricalScore(label), image[None], normalize_map=False)[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    assert saliency_model is ch.models.logits_model(course_model)


def test_batch_maps_equal_single_maps_and_fn_is_reused(course_model, shapes):
    x, y = shapes[0][:5], shapes[1][:5]
    maps = saliency.saliency_maps(course_model, x, y)
    for i in range(5):
        np.testing.assert_allclose(maps[i], saliency.saliency_map(course_model, x[i], int(y[i])),
                                   rtol=1e-4, atol=1e-6)
    assert saliency.gradient_function(course_model) is saliency.gradient_function(course_model)
    fn = saliency.gradient_function(course_model)
    assert len(fn._list_all_concrete_functions_for_serialization()) == 1   # no retracing


def test_scores_and_pointing():
    mask = np.zeros((4, 4), bool)
    mask[1:3, 1:3] = True
    m = np.zeros((4, 4))
    m[1, 1], m[0, 0], m[3, 3] = 3.0, 1.0, -5.0
    assert saliency.object_share(m, mask) == pytest.approx(0.75)
    assert saliency.pointing_hit(m, mask)
    m[0, 3] = 4.0
    assert not saliency.pointing_hit(m, mask)
    assert saliency.pointing_hit(m, mask, tolerance=1) is False   # (0, 3) is 1 px diagonal away
    plateau = np.zeros((5, 5))
    plateau[1:4, 0:5] = 1.0
    assert saliency.pointing_point(plateau) == (2, 2)
    with pytest.raises(ValueError, match="same|one shape"):
        saliency.object_share(np.zeros((3, 3)), mask)


def test_saliency_errors(tiny_model, rng):
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="between 0 and 2"):
        saliency.saliency_map(tiny_model, image, 3)
    with pytest.raises(ValueError, match="between 0 and 2"):
        saliency.saliency_map(tiny_model, image, -1)
    with pytest.raises(ValueError, match="smooth_samples"):
        saliency.saliency_map(tiny_model, image, 0, smooth_samples=-2)
    with pytest.raises(TypeError, match="smooth_samples"):
        saliency.saliency_map(tiny_model, image, 0, smooth_samples=2.5)
    with pytest.raises(ValueError, match="noise"):
        saliency.saliency_map(tiny_model, image, 0, smooth_samples=2, noise=float("nan"))
    with pytest.raises(TypeError, match="model"):
        saliency.saliency_map("course-cnn", image, 0)
    with pytest.raises(ValueError, match="2 images but 3 class indices"):
        saliency.input_gradient(tiny_model, np.stack([image, image]), [0, 1, 2])
    with pytest.raises(ValueError, match="H, W, 3"):
        saliency.reduce_channels(np.zeros((4, 4)))
    assert np.array_equal(saliency.saliency_map(tiny_model, image, np.int64(1)),
                          saliency.saliency_map(tiny_model, image, 1))
    with pytest.raises(ValueError, match="NaN"):
        saliency.saliency_map(tiny_model, np.full((16, 16, 3), np.nan, np.float32), 0)
    gray_u8 = (image.mean(-1) * 255).astype(np.uint8)
    assert saliency.saliency_map(tiny_model, gray_u8, 0).shape == (16, 16)


def test_course_cnn_looks_at_the_object(course_model):
    """Pointing game >= 80% for saliency and occlusion, played as Zhang et al. do (object
    region with holes filled, 15 px @ 224 -> 4 px tolerance).  Full mode: 200 images; quick
    mode (the default in tests): 40 images.  Full-mode numbers are in the lesson's report."""
    x, y, masks = ch.data.make_shapes(ch.scaled(200, 40), seed=2024)
    scores = saliency.localization_scores(course_model, x, masks, y)
    summary = saliency.summarize_localization(scores)
    assert scores["tolerance"] == 4
    assert summary["saliency_pointing"] >= 0.8, summary
    assert summary["occlusion_pointing"] >= 0.8, summary
    # both maps put clearly more mass on the object than its area would earn
    assert summary["saliency_share"] > summary["object_area"] + 0.05, summary
    assert summary["occlusion_share"] > summary["object_area"] + 0.2, summary


def test_localization_scores_by_hand(course_model, shapes):
    x, y, masks = shapes[0][:3], shapes[1][:3], shapes[2][:3]
    scores = saliency.localization_scores(course_model, x, masks, y, tolerance=0)
    sal = saliency.saliency_maps(course_model, x, y)
    for i in range(3):
        r, c = np.unravel_index(np.argmax(sal[i]), sal[i].shape)   # maxima are unique here
        assert scores["saliency_hit_strict"][i] == masks[i][r, c]
        assert scores["saliency_share"][i] == pytest.approx(sal[i][masks[i]].sum() / sal[i].sum())
    np.testing.assert_allclose(scores["area"], masks.mean(axis=(1, 2)))


def test_explorer(course_model, shapes):
    import matplotlib.pyplot as plt

    box = saliency.saliency_explorer(course_model, {"a": shapes[0][0], "b": shapes[0][1]})
    image, klass, smooth = box.children[:3]
    assert len(klass.options) == 5
    image.value = "b"
    assert klass.value == saliency.top_classes(course_model, shapes[0][1])[0][0]
    smooth.value = 10
    assert "SmoothGrad, 10" in box.state["figure"]._suptitle.get_text()
    plt.close("all")


def test_exercise_check_saliency_rule():
    assert ch.exercises.check_saliency_rule(lambda g: np.abs(g).max(axis=-1))
    assert not ch.exercises.check_saliency_rule(lambda g: g.max(axis=-1))
    assert not ch.exercises.check_saliency_rule(lambda g: np.abs(g).sum(axis=-1))
    assert not ch.exercises.check_saliency_rule(lambda g: ...)
    assert not ch.exercises.check_saliency_rule(...)


@pytest.mark.vgg
def test_vgg16_maps_match_tf_keras_vis():
    """The benchmark's VGG16 (architecture, random weights): the same map as tf-keras-vis, and
    SmoothGrad the mean of |gradient| over the seeded noisy copies, in batches of 4."""
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    vgg = ch.models.load_model("vgg16", weights=None)
    cat = ch.data.sample_images(224)["cat"]
    ours = saliency.saliency_map(vgg, cat, 281)
    vis = Saliency(ch.models.logits_model(vgg), clone=False)
    theirs = vis(CategoricalScore(281), cat[None], normalize_map=False)[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6 * np.abs(theirs).max())
    smooth = saliency.saliency_map(vgg, cat, 281, smooth_samples=5, seed=1)
    sigma = 0.15 * float(cat.max() - cat.min())   # in float64, as the package computes it
    noise = sigma * np.random.default_rng(1).standard_normal((5,) + cat.shape, dtype=np.float32)
    logits = ch.models.logits_model(vgg)
    total = np.zeros(cat.shape)
    for batch in (noise[:4], noise[4:]):      # the same batches (float sums differ by batch)
        x = tf.constant(cat + batch, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            s = tf.reduce_sum(logits(x)[:, 281])   # images are independent: per-image gradients
        total += np.abs(tape.gradient(s, x).numpy()).sum(0)
    np.testing.assert_allclose(smooth, (total / 5).max(-1), rtol=1e-4,
                               atol=1e-6 * smooth.max())


def test_every_public_function_names_a_bad_model(rng):
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    calls = [lambda m: saliency.saliency_map(m, image, 0),
             lambda m: saliency.input_gradient(m, image[None], 0),
             lambda m: saliency.saliency_maps(m, image[None], 0),
             lambda m: saliency.gradient_function(m),
             lambda m: saliency.top_classes(m, image),
             lambda m: saliency.localization_scores(m, image[None], np.ones((1, 16, 16), bool), 0),
             lambda m: saliency.saliency_explorer(m, {"a": image})]
    for call in calls:
        for bad in (None, "course-cnn"):
            with pytest.raises(TypeError, match="model"):
                call(bad)
