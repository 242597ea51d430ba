"""course_helpers.models: loading, class names, logits views, VGG paths, errors."""
import time

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import course_helpers as ch
from course_helpers import models


def test_tensorflow_uses_tf_keras():
    assert tf.keras.layers.Dense is keras.layers.Dense  # tf.keras is tf-keras (Keras 2 API)
    assert keras.__version__.startswith("2.")
    assert isinstance(models.load_model("course-cnn"), keras.Model)


def test_course_cnn_is_a_softmax_classifier(course_model, shapes):
    x, y, _ = shapes
    p = course_model.predict(x[:8], verbose=0)
    assert p.shape == (8, len(ch.data.SHAPE_CLASSES))
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    assert models.class_names(course_model) == list(ch.data.SHAPE_CLASSES)
    assert models.class_names("course-cnn") == list(ch.data.SHAPE_CLASSES)
    assert course_model.get_layer(models.EMBEDDING_LAYER).output_shape[-1] >= 32
    first = ch.filters.first_layer(course_model)
    assert first.kernel_size[0] >= 7 and first.kernel.shape[2] == 3


def test_available_models_and_unknown_names():
    names = models.available_models()
    assert {"course-cnn", "vgg16", "vgg19"} <= set(names)
    with pytest.raises(ValueError) as err:
        models.load_model("resnet9000")
    for name in ("course-cnn", "vgg16", "vgg19"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="Available"):
        models.class_names("nope")


def test_logits_view_shares_weights_and_matches_softmax(course_model, shapes):
    x = shapes[0][:6]
    view = models.logits_model(course_model)
    assert models.logits_model(course_model) is view  # built once, then reused
    model_vars = {id(v) for v in course_model.weights}
    assert {id(v) for v in view.weights} <= model_vars  # nothing copied
    z = view.predict(x, verbose=0)
    p = course_model.predict(x, verbose=0)
    np.testing.assert_allclose(tf.nn.softmax(z).numpy(), p, atol=1e-5)
    # a change to the model's weights shows in the view: they are the same variables
    dense = course_model.get_layer("logits")
    old = dense.bias.numpy().copy()
    try:
        dense.bias.assign(old + np.arange(len(old), dtype=np.float32))
        np.testing.assert_allclose(view.predict(x, verbose=0), z + np.arange(len(old)), atol=1e-4)
    finally:
        dense.bias.assign(old)


@pytest.mark.vgg
def test_vgg_architecture_with_random_weights_and_its_logits_view():
    vgg = models.load_model("vgg16", weights=None)
    assert vgg.input_shape == (None, 224, 224, 3)
    assert vgg.output_shape == (None, 1000)
    assert "block1_conv1" in models.conv_layer_names(vgg)
    assert len(models.class_names(vgg)) == 1000 and models.class_names(vgg)[1] == "goldfish"
    x = np.random.default_rng(0).random((1, 224, 224, 3)).astype(np.float32)
    view = models.logits_model(vgg)
    assert {id(v) for v in view.weights} <= {id(v) for v in vgg.weights}
    z = view(x).numpy()
    np.testing.assert_allclose(tf.nn.softmax(z).numpy(), vgg(x).numpy(), rtol=1e-4, atol=1e-6)
    # the preprocessing layer does what tf_keras.applications.vgg16.preprocess_input does
    pre = vgg.get_layer("imagenet_preprocess")(x).numpy()
    ref = keras.applications.vgg16.preprocess_input(x * 255.0)
    np.testing.assert_allclose(pre, ref, atol=1e-3)
    del vgg, view


@pytest.mark.vgg
def test_vgg19_architecture():
    vgg = models.load_model("vgg19", weights=None)
    assert len(models.conv_layer_names(vgg)) == 16


def test_vgg_offline_fails_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache
    t0 = time.time()
    with pytest.raises(RuntimeError) as err:
        models.load_model("vgg16")
    assert time.time() - t0 < 5
    msg = str(err.value)
    assert "course-cnn" in msg and "--fetch" in msg
    assert not models.vgg_weights_available("vgg19")


def test_corrupt_or_missing_weights_give_clear_errors(tmp_path, monkeypatch):
    import shutil

    src = ch.config.data_dir()
    shutil.copy(src / "course-cnn.json", tmp_path / "course-cnn.json")
    shutil.copy(src / "imagenet_classes.txt", tmp_path / "imagenet_classes.txt")
    monkeypatch.setattr(ch.config, "data_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="course_helpers.train"):
        models.load_model("course-cnn")
    (tmp_path / "course-cnn.weights.h5").write_bytes(b"garbage" * 100)
    with pytest.raises(ValueError, match="corrupt"):
        models.load_model("course-cnn")


def test_untrained_architecture_and_layer_helpers(course_model):
    un = models.load_model("course-cnn", weights=None)
    assert un.count_params() == course_model.count_params()
    assert models.conv_layer_names(course_model) == ["conv1", "conv2", "conv3", "conv4"]
    with pytest.raises(ValueError, match="conv1"):
        models.get_layer(course_model, "conv9")
    with pytest.raises(ValueError, match="not a Conv2D"):
        models.require_conv(course_model, "embedding")
    with pytest.raises(TypeError):
        models.load_model(3)


def test_tf_keras_vis_saliency_runs_on_the_bundled_model(course_model, shapes):
    """tf-keras-vis works with the course's stack, and agrees with a plain GradientTape."""
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    x, y, _ = shapes
    img, cls = x[:2], [int(y[0]), int(y[1])]
    view = models.logits_model(course_model)
    sal = Saliency(view, clone=False)
    maps = sal(CategoricalScore(cls), img, keepdims=False, normalize_map=False)
    assert maps.shape == (2, 64, 64)
    xt = tf.constant(img)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = view(xt, training=False)
        score = tf.reduce_sum(tf.gather(z, cls, axis=1, batch_dims=0) * tf.eye(2))
    g = tape.gradient(score, xt).numpy()
    np.testing.assert_allclose(maps, np.abs(g).max(-1), rtol=1e-4, atol=1e-6)


def test_activation_layer_follows_bn_and_relu_in_the_models_own_graph():
    model = models.load_model("course-cnn", weights=None)
    # reusing layers on another input adds graph nodes that must not confuse the search
    x = keras.Input((64, 64, 3))
    model.get_layer("conv1_bn")(model.get_layer("conv1")(x))
    names = [models.activation_layer(model, n).name for n in models.conv_layer_names(model)]
    assert names == ["conv1_relu", "conv2_relu", "conv3_relu", "conv4_relu"]
    vgg = models.load_model("vgg16", weights=None)
    assert models.activation_layer(vgg, "block3_conv2").name == "block3_conv2"  # ReLU inside
    with pytest.raises(ValueError, match="not a Conv2D"):
        models.activation_layer(model, "gap")


# --------------------------------------------------------------------------- the ImageNet path
@pytest.fixture(scope="module")
def fake_keras_cache(tmp_path_factory):
    """A Keras cache holding VGG16 and VGG19 weights files written by Keras itself (random
    values, the same layout as the ImageNet files), so the ImageNet loading path runs offline."""
    home = tmp_path_factory.mktemp("keras_home")
    (home / "models").mkdir()
    saved = {}
    for name, builder in (("vgg16", keras.applications.VGG16), ("vgg19", keras.applications.VGG19)):
        keras.utils.set_random_seed(7)
        ref = builder(weights=None)
        ref.save_weights(str(home / "models" / models._VGG_WEIGHT_FILES[name]))
        saved[name] = {layer.name: [w.numpy() for w in layer.weights]
                       for layer in ref.layers if layer.weights}
        del ref
    return home, saved


def test_vgg_imagenet_path_loads_every_weight_from_the_cache(fake_keras_cache, monkeypatch):
    home, saved = fake_keras_cache
    monkeypatch.setenv("KERAS_HOME", str(home))
    assert models.vgg_weights_available("vgg16")
    vgg = models.load_model("vgg16")
    loaded = {layer.name: [w.numpy() for w in layer.weights] for layer in vgg.layers if layer.weights}
    assert loaded.keys() == saved["vgg16"].keys()
    for name, weights in saved["vgg16"].items():
        for a, b in zip(loaded[name], weights):
            np.testing.assert_array_equal(a, b, err_msg=name)
    # the style lesson's extractor takes VGG19's conv layers from the same cache, by name
    ch.style._EXTRACTORS.pop(("vgg19", "imagenet"), None)
    extractor = ch.style.vgg19_extractor()
    try:
        convs = [layer for layer in extractor.layers if layer.weights]
        assert len(convs) == 16
        for layer in convs:
            for a, b in zip(layer.weights, saved["vgg19"][layer.name]):
                np.testing.assert_array_equal(a.numpy(), b, err_msg=layer.name)
    finally:
        ch.style._EXTRACTORS.pop(("vgg19", "imagenet"), None)


def test_random_vgg_weights_are_seeded_and_follow_keras_rule():
    a, b = models.load_model("vgg16", weights=None), models.load_model("vgg16", weights=None)
    fc1a, fc1b = a.get_layer("fc1").kernel.numpy(), b.get_layer("fc1").kernel.numpy()
    np.testing.assert_array_equal(fc1a, fc1b)   # drawn in slices, seeded
    limit = np.sqrt(6.0 / sum(fc1a.shape))        # Glorot uniform on the full shape
    assert np.abs(fc1a).max() <= limit and np.abs(fc1a).max() > 0.999 * limit
    assert fc1a.std() == pytest.approx(limit / np.sqrt(3), rel=1e-3)
    rows = fc1a.std(axis=1)                       # every row drawn: no slice left at zero
    assert rows.min() > 0.9 * limit / np.sqrt(3) and (fc1a != 0).mean() > 0.999
    assert np.abs(fc1a[-1]).max() > 0


def test_own_loader_reads_what_keras_saved_frozen_and_batch_norm_layers_too(tmp_path, rng):
    """Keras's order: each layer's trainable weights, then its non-trainable ones.  For a
    nested block whose first conv is frozen that is not ``layer.weights``'s order."""
    def build(seed):
        keras.utils.set_random_seed(seed)
        block = keras.Sequential([keras.layers.Conv2D(3, 3, name="c"),
                                  keras.layers.BatchNormalization(name="bn")], name="block")
        m = keras.Sequential([keras.Input((6, 6, 2)), block, keras.layers.Flatten(),
                              keras.layers.Dense(4, name="d")])
        block.get_layer("c").trainable = False
        return m

    saved, fresh = build(0), build(1)
    bn = saved.get_layer("block").get_layer("bn")
    bn.moving_mean.assign(rng.random(3).astype(np.float32))
    bn.moving_variance.assign(1 + rng.random(3).astype(np.float32))
    saved.save_weights(str(tmp_path / "w.h5"))
    models.load_h5_weights(fresh, tmp_path / "w.h5")
    for a, b in zip(saved.weights, fresh.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    x = rng.random((2, 6, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(saved(x).numpy(), fresh(x).numpy())


def test_broken_weights_files_get_errors_that_name_file_and_fix(fake_keras_cache, tmp_path,
                                                                monkeypatch):
    home, _ = fake_keras_cache
    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"),
                              keras.layers.Dense(2, name="b")])
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")])
    path = tmp_path / "other.h5"
    other.save_weights(str(path))
    with pytest.raises(RuntimeError, match=r"other\.h5.*weights for 1 layers, the model has 2"):
        models.load_h5_weights(small, path)
    with pytest.raises(RuntimeError, match=r"no weights for the layers \['b'\]"):
        models.load_h5_weights(small, path, by_name=True)
    wide = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="a")])
    with pytest.raises(RuntimeError, match=r"shape \(4, 3\).*\(5, 3\)"):
        models.load_h5_weights(wide, path)
    with pytest.raises(FileNotFoundError, match="No weights file"):
        models.load_h5_weights(small, tmp_path / "nope.h5")
    # a truncated download in the cache: the error names the file and how to fetch it again
    cache = tmp_path / "home"
    (cache / "models").mkdir(parents=True)
    good = home / "models" / models._VGG_WEIGHT_FILES["vgg16"]
    bad = cache / "models" / models._VGG_WEIGHT_FILES["vgg16"]
    bad.write_bytes(good.read_bytes()[: 10_000_000])
    monkeypatch.setenv("KERAS_HOME", str(cache))
    with pytest.raises(RuntimeError, match=r"vgg16_weights.*--fetch vgg16"):
        models.load_model("vgg16")
