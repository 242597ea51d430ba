"""Lesson 5 (notebook 07): the tf-keras-vis wrappers in course_helpers.kerasvis."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.ndimage import zoom

import course_helpers as ch
from course_helpers import kerasvis


def _norm(x):
    x = np.asarray(x, dtype=np.float64)
    return (x - x.min()) / (x.max() - x.min() + 1e-7)


def test_tf_keras_vis_saliency_equals_course_saliency_map(course_model, shapes):
    images, labels, _ = shapes
    for i in range(3):
        ours = ch.saliency.saliency_map(course_model, images[i], int(labels[i]))
        theirs = kerasvis.saliency(course_model, images[i], int(labels[i]), normalize=False)
        assert theirs.shape == ours.shape == (64, 64)
        assert np.abs(_norm(theirs) - _norm(ours)).max() <= 1e-5
        # and the normalized map tf-keras-vis returns is the same picture
        np.testing.assert_allclose(kerasvis.saliency(course_model, images[i], int(labels[i])),
                                   _norm(ours), atol=1e-5)


def test_saliency_matches_finite_differences(tiny_model, rng):
    img = rng.uniform(0.2, 0.8, (16, 16, 3)).astype(np.float32)
    raw = kerasvis.saliency(tiny_model, img, 1, normalize=False)
    logits = ch.models.logits_model(tiny_model)
    eps = 1e-2
    for (r, c) in [(0, 0), (3, 7), (8, 8), (15, 2)]:
        grads = []
        for ch_ in range(3):
            up, down = img.copy(), img.copy()
            up[r, c, ch_] += eps
            down[r, c, ch_] -= eps
            f = logits(np.stack([up, down]).astype(np.float32)).numpy()[:, 1].astype(np.float64)
            grads.append((f[0] - f[1]) / (2 * eps))
        assert raw[r, c] == pytest.approx(np.max(np.abs(grads)), rel=2e-2, abs=1e-4)


def test_toolbox_shares_one_model_and_does_not_clone(tiny_model):
    box = kerasvis.toolbox(tiny_model)
    assert kerasvis.toolbox(tiny_model) is box
    view = ch.models.logits_model(tiny_model)
    for vis in box.visualizers().values():
        assert vis.model is view
    assert box.saliency.model.layers[1].kernel is tiny_model.layers[1].kernel


def test_gradcam_matches_numpy_formula(tiny_model, rng):
    imgs = rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    classes = [0, 2]
    got = kerasvis.gradcam(tiny_model, imgs, classes, layer="c2")
    # independent: activations and gradients by a GradientTape, weighting and upsampling in NumPy
    logits = ch.models.logits_model(tiny_model)
    sub = tf.keras.Model(logits.inputs, [logits.get_layer("c2").output, logits.output])
    x = tf.constant(imgs)
    with tf.GradientTape() as tape:
        act, out = sub(x)
        score = tf.stack([out[0, 0], out[1, 2]])
    grad = tape.gradient(score, act).numpy()
    act = act.numpy()
    for i in range(2):
        w = grad[i].mean(axis=(0, 1))
        cam = np.maximum((act[i] * w).sum(-1), 0)
        cam = zoom(cam, (16 / cam.shape[0], 16 / cam.shape[1]), order=1)
        np.testing.assert_allclose(got[i], _norm(cam), atol=1e-4)


def test_cam_layer_default_and_errors(course_model):
    assert kerasvis.cam_layer(course_model) == "conv4_relu"
    assert kerasvis.cam_layer(course_model, "conv3") == "conv3_relu"
    with pytest.raises(ValueError, match="conv1, conv2, conv3, conv4"):
        kerasvis.cam_layer(course_model, "embedding")
    with pytest.raises(ValueError, match="Layers:"):
        kerasvis.cam_layer(course_model, "conv9")


def test_cams_and_scorecam_shapes_and_range(course_model, shapes):
    images, labels, _ = shapes
    maps = kerasvis.compare_methods(course_model, images[:2], labels[:2], smooth_samples=4)
    assert list(maps) == list(kerasvis.METHODS)
    for name, m in maps.items():
        assert m.shape == (2, 64, 64), name
        assert np.all(np.isfinite(m)) and m.min() >= 0 and m.max() <= 1 + 1e-6, name
    # SmoothGrad is seeded: the same seed gives the same map, another seed another one
    a = kerasvis.saliency(course_model, images[0], int(labels[0]), smooth_samples=4, seed=1)
    b = kerasvis.saliency(course_model, images[0], int(labels[0]), smooth_samples=4, seed=2)
    assert not np.allclose(a, maps["SmoothGrad"][0])
    assert not np.allclose(a, b)


def test_bad_inputs_give_clear_errors(course_model, shapes):
    images, _, _ = shapes
    with pytest.raises(ValueError, match="between 0 and 5"):
        kerasvis.saliency(course_model, images[0], 6)
    with pytest.raises(ValueError, match="one per image"):
        kerasvis.gradcam(course_model, images[:3], [0, 1])
    with pytest.raises(ValueError, match="class_index 'dog' is not a class name of course_cnn"):
        kerasvis.gradcam(course_model, images[0], "dog")
    with pytest.raises(ValueError, match="NaN"):
        kerasvis.saliency(course_model, np.full((64, 64, 3), np.nan, np.float32), 0)
    with pytest.raises(ValueError, match="smooth_samples"):
        kerasvis.saliency(course_model, images[0], 0, smooth_samples=-1)
    with pytest.raises(ValueError, match="Unknown method"):
        kerasvis.compare_methods(course_model, images[:1], 0, methods=("LIME",))
    with pytest.raises(TypeError, match=r"string 'course-cnn'.*ch.models.load_model\('course-cnn'\)"):
        kerasvis.toolbox("course-cnn")
    # uint8 and grayscale images are converted, class names accepted
    u8 = (images[0] * 255).astype(np.uint8)
    np.testing.assert_allclose(kerasvis.gradcam(course_model, u8, "circle"),
                               kerasvis.gradcam(course_model, images[0], 0), atol=0.02)
    assert kerasvis.saliency(course_model, images[0].mean(-1), 0).shape == (64, 64)


def test_activation_maximization_raises_the_score(course_model):
    logits = ch.models.logits_model(course_model)
    start_score = logits(np.full((1, 64, 64, 3), 0.5, np.float32)).numpy()[0, 3]
    img = kerasvis.activation_maximization(course_model, class_index=3, steps=25, progress=False)
    assert img.shape == (1, 64, 64, 3) and img.min() >= 0 and img.max() <= 1
    assert logits(img).numpy()[0, 3] > start_score + 1.0
    again = kerasvis.activation_maximization(course_model, class_index=3, steps=25, progress=False)
    np.testing.assert_allclose(img, again, atol=1e-5)         # seeded jitter, rotation, start

    act = ch.activations.activation_model(course_model, "conv3")
    before = act(np.full((1, 64, 64, 3), 0.5, np.float32)).numpy()[..., 7].mean()
    filt = kerasvis.activation_maximization(course_model, layer="conv3", filter_index=7, steps=25,
                                            progress=False)
    assert act(filt).numpy()[..., 7].mean() > before


def test_activation_maximization_errors(course_model):
    with pytest.raises(ValueError, match="either class_index"):
        kerasvis.activation_maximization(course_model, class_index=1, filter_index=2, layer="conv2")
    with pytest.raises(ValueError, match="out of range"):
        kerasvis.activation_maximization(course_model, layer="conv2", filter_index=99)
    with pytest.raises(ValueError, match="needs a conv layer"):
        kerasvis.activation_maximization(course_model, filter_index=2)
    with pytest.raises(ValueError, match="not a Conv2D"):
        kerasvis.activation_maximization(course_model, layer="embedding", filter_index=2)


def test_progress_callback_counts_steps(tiny_model):
    bar = kerasvis.TqdmProgress()
    kerasvis.activation_maximization(tiny_model, class_index=0, steps=7, progress=False,
                                     callbacks=[bar], input_modifiers=None)
    assert bar.bar is None          # closed at the end
    seen = []

    class Count(type(bar)):
        def __call__(self, i, *args, **kwargs):
            seen.append(i)

    kerasvis.activation_maximization(tiny_model, class_index=0, steps=7, progress=False,
                                     callbacks=[Count()])
    assert seen == list(range(7))


def test_captions_are_drawn_on_the_pictures(shapes):
    img = shapes[0][0]
    plain = kerasvis.captioned_overlay(img, None, "", size=128)
    cap = kerasvis.captioned_overlay(img, None, "Grad-CAM", size=128)
    assert plain.shape == cap.shape == (128, 128, 3)
    diff = np.abs(cap - plain).max(-1) > 1.0 / 255          # draw_caption rounds to 8 bits
    assert diff[:14].any() and not diff[20:].any()          # only the caption strip changed
    hm = np.zeros((8, 8))
    hm[0, 0] = 1
    over = kerasvis.captioned_overlay(img, hm, "", size=128)
    assert np.abs(over - plain)[:16, :16].mean() > np.abs(over - plain)[-16:, -16:].mean()
    with pytest.raises(ValueError, match=r"2-D map \(H, W\), got shape \(2, 8, 8\)"):
        kerasvis.captioned_overlay(img, np.zeros((2, 8, 8)))


def test_plots_and_table(course_model, shapes):
    images, labels, _ = shapes
    maps = kerasvis.compare_methods(course_model, images[:2], labels[:2],
                                    methods=("Saliency", "Grad-CAM"))
    fig = kerasvis.plot_comparison(images[:2], maps)
    assert len(fig.axes) == 2 * 3
    fig2 = kerasvis.plot_maximized(images[:3], ["a", "b", "c"])
    assert len([a for a in fig2.axes if a.images]) == 3
    table = kerasvis.mapping_table()
    for name in ("visualize_saliency", "visualize_activation", "filter_indices", "input_range",
                 "draw_text", "CategoricalScore", "Gradcam"):
        assert name in table


def test_explorer_caches_maps(course_model, shapes):
    images = {f"shape {i}": shapes[0][i] for i in range(2)}
    ch.widgets.clear_cache()      # a full cache would evict one entry per new one
    box = kerasvis.kerasvis_explorer(course_model, images)
    assert box.state["figure"] is not None
    before = ch.widgets.cache_info()["entries"]
    box.children[1].value = "Grad-CAM"
    box.children[1].value = "Saliency"          # computed already: no new entry
    after = ch.widgets.cache_info()["entries"]
    assert after == before + 1


def test_exercise_checks(course_model, shapes):
    img = shapes[0][0]
    right = kerasvis.saliency(course_model, img, 2)
    assert ch.exercises.check_translated_saliency(right, course_model, img)
    assert not ch.exercises.check_translated_saliency(kerasvis.saliency(course_model, img, 1),
                                                      course_model, img)
    assert not ch.exercises.check_translated_saliency(..., course_model, img)
    assert ch.exercises.check_cam_layer("conv4_relu", course_model)
    assert not ch.exercises.check_cam_layer("conv4", course_model)


def _keras3_model():
    import keras   # Keras 3, not the tf-keras this course uses

    inp = keras.Input((64, 64, 3))
    return keras.Model(inp, keras.layers.Dense(6)(keras.layers.Flatten()(inp)))


@pytest.mark.parametrize("bad, message", [
    (None, r"model is None.*load_model\('course-cnn'\)"),
    ("course-cnn", r"string 'course-cnn'.*ch.models.load_model\('course-cnn'\)"),
    ("keras3", r"Keras 3 model.*tf_keras")])
def test_a_model_that_is_not_a_loaded_tf_keras_model_is_named(bad, message, shapes):
    bad = _keras3_model() if bad == "keras3" else bad
    img = shapes[0][0]
    calls = [lambda: kerasvis.toolbox(bad), lambda: kerasvis.cam_layer(bad),
             lambda: kerasvis.saliency(bad, img, 0), lambda: kerasvis.gradcam(bad, img, 0),
             lambda: kerasvis.gradcam_plus_plus(bad, img, 0), lambda: kerasvis.scorecam(bad, img, 0),
             lambda: kerasvis.compare_methods(bad, img[None], 0),
             lambda: kerasvis.activation_maximization(bad, class_index=0, steps=1, progress=False),
             lambda: kerasvis.kerasvis_explorer(bad, [img])]
    for call in calls:
        with pytest.raises(TypeError, match=message):
            call()


def test_a_non_positive_learning_rate_is_refused_not_minimized(tiny_model):
    for bad in (-0.05, 0):
        with pytest.raises(ValueError, match=rf"learning_rate must be greater than 0, got "
                                             rf"{float(bad)}.*lower the score.*learning_rate=0.05"):
            kerasvis.activation_maximization(tiny_model, class_index=0, learning_rate=bad,
                                             steps=2, progress=False)
    with pytest.raises(TypeError, match="learning_rate must be a number, got '0.05'"):
        kerasvis.activation_maximization(tiny_model, class_index=0, learning_rate="0.05", steps=2)


def test_a_layer_given_by_index_is_that_layer(tiny_model, course_model):
    c1 = [lyr.name for lyr in tiny_model.layers].index("c1")
    run = lambda layer: kerasvis.activation_maximization(tiny_model, layer=layer, filter_index=1,
                                                         steps=3, progress=False)
    np.testing.assert_array_equal(run(c1), run("c1"))
    np.testing.assert_array_equal(run(np.int32(c1)), run("c1"))
    conv3 = [lyr.name for lyr in course_model.layers].index("conv3")
    assert kerasvis.cam_layer(course_model, conv3) == "conv3_relu"
    with pytest.raises(ValueError, match="layer index 99 is out of range"):
        kerasvis.cam_layer(course_model, 99)


def test_sizes_are_whole_numbers_and_explorers_need_images(course_model, shapes):
    img = shapes[0][0]
    np.testing.assert_array_equal(kerasvis.captioned_overlay(img, None, "a", size=64.0),
                                  kerasvis.captioned_overlay(img, None, "a", size=64))
    for bad in (2.5, "64"):
        with pytest.raises(TypeError, match=f"size must be a whole number, got .*{bad}"):
            kerasvis.captioned_overlay(img, None, "a", size=bad)
    for empty in ({}, [], np.zeros((0, 64, 64, 3), np.float32)):
        with pytest.raises(ValueError, match="images is empty"):
            kerasvis.kerasvis_explorer(course_model, empty)
    with pytest.raises(ValueError, match="images is empty"):
        kerasvis.saliency(course_model, [], 0)
    with pytest.raises(ValueError, match="images is empty"):
        kerasvis.plot_maximized([], [])


def test_captioned_overlay_reduces_a_raw_gradient_like_overlay(shapes, rng):
    img = shapes[0][0]
    grad = rng.normal(size=(64, 64, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="reduce_channels"):
        got = kerasvis.captioned_overlay(img, grad, "g", size=64)
    reduced = np.max(np.abs(grad), axis=-1)
    np.testing.assert_allclose(got, kerasvis.captioned_overlay(img, reduced, "g", size=64), atol=1e-6)


# --------------------------------------------------------------------------- Layer-CAM, every layer, guided backprop
def _numpy_cam(model, imgs, classes, layer, kind):
    """Grad-CAM or Layer-CAM by a GradientTape on a Keras sub-model, weighting, ReLU and
    upsampling in NumPy/SciPy, then scaled to [0, 1] (independent of tf-keras-vis)."""
    logits = ch.models.logits_model(model)
    sub = tf.keras.Model(logits.inputs, [logits.get_layer(layer).output, logits.output])
    x = tf.constant(imgs)
    with tf.GradientTape() as tape:
        act, out = sub(x)
        score = tf.gather(out, classes, axis=1, batch_dims=1)
    grad, act = tape.gradient(score, act).numpy(), act.numpy()
    cams = []
    for i in range(len(imgs)):
        if kind == "Grad-CAM":
            cam = (act[i] * grad[i].mean(axis=(0, 1))).sum(-1)
        else:
            cam = (act[i] * np.maximum(grad[i], 0)).sum(-1)
        cam = zoom(np.maximum(cam, 0), (imgs.shape[1] / cam.shape[0], imgs.shape[2] / cam.shape[1]),
                   order=1)
        cams.append(_norm(cam))
    return np.array(cams)


def test_layercam_matches_numpy_formula(tiny_model, rng):
    imgs = rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    got = kerasvis.layercam(tiny_model, imgs, [0, 2], layer="c2")
    np.testing.assert_allclose(got, _numpy_cam(tiny_model, imgs, [0, 2], "c2", "Layer-CAM"), atol=1e-4)
    # it is not Grad-CAM: the per-position weights change the map
    assert np.abs(got - _numpy_cam(tiny_model, imgs, [0, 2], "c2", "Grad-CAM")).max() > 1e-2


@pytest.mark.parametrize("method", ["Grad-CAM", "Layer-CAM"])
def test_cams_at_every_conv_layer(course_model, shapes, method):
    image, c = shapes[0][3], int(shapes[1][3])
    maps = kerasvis.cams_by_layer(course_model, image, c, method=method)
    assert list(maps) == ["conv1", "conv2", "conv3", "conv4"]
    for name, got in maps.items():
        want = _numpy_cam(course_model, image[None], [c], f"{name}_relu", method)[0]
        assert got.shape == (64, 64)
        np.testing.assert_allclose(got, want, atol=2e-3)
    assert list(kerasvis.cams_by_layer(course_model, image, c, layers=[1, "conv3"])) == ["conv1", "conv3"]


def test_layer_grid_plot_and_errors(course_model, shapes):
    images, labels, _ = shapes
    fig = kerasvis.plot_layer_grid(course_model, images[:2], labels[:2],
                                   methods=("Grad-CAM", "Layer-CAM"), layers=["conv2", "conv4"])
    assert len([a for a in fig.axes if a.images]) == 4 * 3
    with pytest.raises(ValueError, match="methods must be one of 'Grad-CAM', 'Layer-CAM'"):
        kerasvis.plot_layer_grid(course_model, images[:1], 0, methods=("LIME",))
    with pytest.raises(ValueError, match="not a Conv2D layer"):
        kerasvis.cams_by_layer(course_model, images[0], 0, layers=["embedding"])
    with pytest.raises(ValueError, match="class_index 9 is out of range"):
        kerasvis.cams_by_layer(course_model, images[0], 9)


def _relu_net(kind):
    import tf_keras as keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((12, 12, 3))
    inside = "relu" if kind == "inside" else None
    relu = (lambda n: keras.layers.ReLU(name=n)) if kind == "layers" else (lambda n: (lambda t: t))
    x = relu("r1")(keras.layers.Conv2D(6, 3, activation=inside, name="c1")(inp))
    x = keras.layers.MaxPooling2D(2)(x)
    x = relu("r2")(keras.layers.Conv2D(6, 3, activation=inside, name="c2")(x))
    x = keras.layers.Flatten()(x)
    x = relu("r3")(keras.layers.Dense(10, activation=inside, name="fc")(x))
    x = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inp, keras.layers.Activation("softmax")(x))


def test_tf_keras_vis_guided_backprop_equals_ours_where_it_rewrites_the_relus(course_model, shapes, rng):
    for model, image, c in ((course_model, shapes[0][0], int(shapes[1][0])),
                            (_relu_net("inside"), rng.uniform(0, 1, (12, 12, 3)), 1)):
        theirs = kerasvis.guided_saliency(model, image, c)
        ours = ch.attribution.guided_backprop(model, image, c)
        assert theirs.shape == ours.shape and theirs.dtype == np.float32
        np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-6)
        assert all(kerasvis.guided_modifier_reach(model).values())


def test_tf_keras_vis_guided_backprop_silently_skips_relu_layers(course_model, shapes, rng):
    """The finding of lesson 07: GuidedBackpropagation rewrites layers' ``activation``; a
    ``keras.layers.ReLU`` layer has none, so it keeps the plain gradient, with no warning."""
    model = _relu_net("layers")
    image = rng.uniform(0, 1, (12, 12, 3)).astype(np.float32)
    plain = ch.saliency.input_gradient(model, image[None], 1)[0]
    theirs = kerasvis.guided_saliency(model, image, 1)
    ours = ch.attribution.guided_backprop(model, image, 1)
    np.testing.assert_allclose(theirs, plain, rtol=1e-5, atol=1e-7)      # nothing was guided
    assert not np.allclose(ours, plain, atol=1e-4)
    np.testing.assert_allclose(ours, ch.attribution.guided_backprop(_relu_net("inside"), image, 1),
                               rtol=1e-4, atol=1e-6)                       # same net, ReLUs inside
    assert kerasvis.guided_modifier_reach(model) == {"r1": False, "r2": False, "r3": False}
    # course-cnn written with ReLU layers: same scores, nothing rewritten, nothing guided
    twin = kerasvis.relu_layer_twin(course_model)
    assert [lyr.name for lyr in twin.layers if type(lyr).__name__ == "ReLU"] == [
        "conv1_relu", "conv2_relu", "conv3_relu", "conv4_relu", "embedding_relu"]
    img, c = shapes[0][0], int(shapes[1][0])
    np.testing.assert_allclose(twin(shapes[0][:4]).numpy(), course_model(shapes[0][:4]).numpy(),
                               atol=1e-6)
    assert not any(kerasvis.guided_modifier_reach(twin).values())
    ours = ch.attribution.guided_backprop(course_model, img, c)
    np.testing.assert_allclose(ch.attribution.guided_backprop(twin, img, c), ours, rtol=1e-4, atol=1e-6)
    plain = ch.saliency.input_gradient(course_model, img[None], c)[0]
    np.testing.assert_allclose(kerasvis.guided_saliency(twin, img, c), plain, rtol=1e-4, atol=1e-6)
    assert course_model.get_layer("embedding").activation is tf.keras.activations.relu   # untouched


def test_the_modifier_without_a_clone_rewrites_the_model_itself():
    """Why ch.kerasvis.guided_saliency always clones: with clone=False the modifier replaces the
    activations of the model it is given, for every later use of that model."""
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.model_modifiers import GuidedBackpropagation

    model = _relu_net("inside")
    before = model.get_layer("c1").activation
    Saliency(model, model_modifier=GuidedBackpropagation(), clone=False)
    assert model.get_layer("c1").activation is not before


def test_guided_saliency_leaves_the_model_as_it_was(rng):
    model = _relu_net("inside")
    before = [(lyr.name, getattr(lyr, "activation", None)) for lyr in model.layers]
    weights = [w.copy() for w in model.get_weights()]
    image = rng.uniform(0, 1, (12, 12, 3)).astype(np.float32)
    plain = ch.saliency.input_gradient(model, image[None], 0)
    kerasvis.guided_saliency(model, image, 0)
    assert [(lyr.name, getattr(lyr, "activation", None)) for lyr in model.layers] == before
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    np.testing.assert_array_equal(ch.saliency.input_gradient(model, image[None], 0), plain)


def test_notebook_07_shows_the_current_keras_vis_table():
    import nbformat
    from pathlib import Path

    nb = nbformat.read(str(Path(__file__).resolve().parents[1] / "notebooks" /
                           "07_keras_vis_tools.ipynb"), as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert kerasvis.mapping_table() in text
    assert "fails Adebayo" not in text          # a claim no lesson showed


def test_maps_in_pieces_are_each_image_on_its_own(course_model, shapes):
    """batch_size=1 sends one image at a time: every map is the map of that image alone (the
    ImageNet parts use it to keep VGG16's gradients small), and SmoothGrad's noise comes from
    the seed for each piece, so an image's map no longer depends on its neighbours."""
    images, labels, _ = shapes
    x, c = images[:3], [int(k) for k in labels[:3]]
    for method in (kerasvis.gradcam, kerasvis.gradcam_plus_plus, kerasvis.layercam):
        alone = np.stack([method(course_model, x[i], c[i]) for i in range(3)])
        for size in (1, 2):
            np.testing.assert_allclose(method(course_model, x, c, batch_size=size), alone,
                                       atol=1e-5, err_msg=f"{method.__name__} {size}")
        np.testing.assert_allclose(method(course_model, x, c), alone, atol=1e-5)
    smooth = kerasvis.saliency(course_model, x, c, smooth_samples=3, seed=4, batch_size=1)
    alone = np.stack([kerasvis.saliency(course_model, x[i], c[i], smooth_samples=3, seed=4)
                      for i in range(3)])
    np.testing.assert_allclose(smooth, alone, atol=1e-6)
    whole = kerasvis.saliency(course_model, x, c, smooth_samples=3, seed=4)
    assert not np.allclose(whole, alone, atol=1e-3)   # a whole batch draws its noise at once
    maps = kerasvis.compare_methods(course_model, x, c, methods=("Saliency", "Grad-CAM", "Score-CAM"),
                                    batch_size=2)
    for name, fn in [("Saliency", kerasvis.saliency), ("Grad-CAM", kerasvis.gradcam),
                     ("Score-CAM", kerasvis.scorecam)]:
        np.testing.assert_allclose(maps[name], np.stack([fn(course_model, x[i], c[i]) for i in range(3)]),
                                   atol=1e-5, err_msg=name)
    for bad in (0, -1, 1.5):
        with pytest.raises((ValueError, TypeError), match="batch_size"):
            kerasvis.gradcam(course_model, x, c, batch_size=bad)
        with pytest.raises((ValueError, TypeError), match="batch_size"):
            kerasvis.compare_methods(course_model, x, c, methods=("Grad-CAM",), batch_size=bad)


def test_a_toolbox_does_not_keep_its_model_alive(shapes):
    import gc
    import weakref

    images, labels, _ = shapes
    net = ch.models.load_model("course-cnn")
    box = kerasvis.toolbox(net)
    kerasvis.gradcam(net, images[:2], labels[:2])
    assert box.model() is net
    alive = weakref.ref(net)
    del net
    gc.collect()
    assert alive() is None, "the toolbox (or its cache) still holds the deleted model"
    assert box.model() is None


def test_cam_layer_of_an_imagenet_model_is_its_imagenet_cam_layer():
    """ResNet50's default is its last block's output (after the residual sum and ReLU), not the
    BN before the sum that "the last conv's activation" would give."""
    net = ch.models.load_model("resnet50", weights=None)
    want = ch.models.imagenet_layers(net)["cam"]
    assert want == "conv5_block3_out"
    assert kerasvis.cam_layer(net) == want
    last_conv = ch.models.conv_layer_names(net)[-1]
    assert kerasvis.cam_layer(net, last_conv) != want      # an explicit layer is kept as asked
    x = np.random.default_rng(0).random((1, 224, 224, 3)).astype(np.float32)
    np.testing.assert_allclose(kerasvis.gradcam(net, x, 3), kerasvis.gradcam(net, x, 3, layer=want),
                               atol=1e-6)
