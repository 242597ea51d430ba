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
    with pytest.raises(FileNotFoundError, match="course_helpers.tools.train"):
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
def vgg_layers(name):
    """VGG's layers in the order of Keras's ImageNet files, as (name, kernel shape or None),
    from Simonyan & Zisserman's table 1 (configurations D and E); a kernel comes with a bias."""
    convs = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}[name]
    out, cin = [("input_1", None)], 3
    for b, (n, width) in enumerate(zip(convs, (64, 128, 256, 512, 512)), 1):
        for k in range(1, n + 1):
            out.append((f"block{b}_conv{k}", (3, 3, cin, width)))
            cin = width
        out.append((f"block{b}_pool", None))
    return out + [("flatten", None), ("fc1", (7 * 7 * 512, 4096)), ("fc2", (4096, 4096)),
                  ("predictions", (4096, 1000))]


def write_fake_imagenet_file(path, name, seed):
    """A weights file in the layout of Keras's ImageNet VGG files, written with h5py: every
    layer listed (those without weights too), ``weight_names`` per layer, random values (He
    scaled, so activations stay finite), written in slices to keep the test's memory small."""
    import h5py

    rng = np.random.default_rng(seed)
    layers = vgg_layers(name)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.1.5"
        for lname, kernel in layers:
            g = f.create_group(lname)
            if kernel is None:
                g.attrs["weight_names"] = np.array([], dtype="S1")
                continue
            names = [f"{lname}/kernel:0", f"{lname}/bias:0"]
            g.attrs["weight_names"] = np.array([n.encode() for n in names])
            for wname, shape, std in ((names[0], kernel, np.sqrt(2 / np.prod(kernel[:-1]))),
                                      (names[1], kernel[-1:], 0.05)):
                data = g.create_dataset(wname, shape, dtype="float32")
                rows = max(1, (1 << 22) // int(np.prod(shape[1:])))
                for start in range(0, shape[0], rows):
                    part = (min(rows, shape[0] - start),) + shape[1:]
                    data[start:start + part[0]] = rng.standard_normal(part, np.float32) * std


def stored_weights(path, layer):
    """One layer's weights as the file holds them, read with h5py (not with the course's loader)."""
    import h5py

    with h5py.File(path, "r") as f:
        names = [n.decode() for n in f[layer].attrs["weight_names"]]
        return [f[layer][n][()] for n in names]


@pytest.fixture(scope="module")
def fake_keras_cache(tmp_path_factory):
    """A Keras cache holding VGG16 and VGG19 weights files of the ImageNet files' layout
    (random values), so the ImageNet loading path runs offline.  Returns the cache's home and
    ``{name: path of its file}``."""
    home = tmp_path_factory.mktemp("keras_home")
    (home / "models").mkdir()
    files = {}
    for seed, name in enumerate(("vgg16", "vgg19")):
        files[name] = home / "models" / models._VGG_WEIGHT_FILES[name]
        write_fake_imagenet_file(files[name], name, seed)
    return home, files


def test_vgg_imagenet_path_loads_every_weight_from_the_cache(fake_keras_cache, monkeypatch):
    home, files = fake_keras_cache
    monkeypatch.setenv("KERAS_HOME", str(home))
    assert models.vgg_weights_available("vgg16")
    vgg = models.load_model("vgg16", weights="imagenet")
    with_weights = [layer for layer in vgg.layers if layer.weights]
    assert [layer.name for layer in with_weights] == [n for n, k in vgg_layers("vgg16") if k]
    for layer in with_weights:
        for a, b in zip(layer.weights, stored_weights(files["vgg16"], layer.name)):
            np.testing.assert_array_equal(a.numpy(), b, err_msg=layer.name)
    del vgg, with_weights
    # the style lesson's extractor takes VGG19's conv layers from the same cache, by name
    ch.style.extractors._EXTRACTORS.pop(("vgg19", "imagenet"), None)
    extractor = ch.style.vgg19_extractor()
    try:
        convs = [layer for layer in extractor.layers if layer.weights]
        assert len(convs) == 16
        for layer in convs:
            for a, b in zip(layer.weights, stored_weights(files["vgg19"], layer.name)):
                np.testing.assert_array_equal(a.numpy(), b, err_msg=layer.name)
    finally:
        ch.style.extractors._EXTRACTORS.pop(("vgg19", "imagenet"), None)


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
    home, files = fake_keras_cache
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
    good = files["vgg16"]
    bad = cache / "models" / models._VGG_WEIGHT_FILES["vgg16"]
    bad.write_bytes(good.read_bytes()[: 10_000_000])
    monkeypatch.setenv("KERAS_HOME", str(cache))
    with pytest.raises(RuntimeError, match=r"vgg16_weights.*--fetch vgg16"):
        models.load_model("vgg16")


# --------------------------------------------------------------------------- the course's own VGG
def _describe(model, skip):
    """Each layer after the first ``skip``: name, class, output shape, weight names and shapes,
    and its config without the kernel initializer (the one thing the course changes)."""
    rows = []
    for layer in model.layers[skip:]:
        cfg = layer.get_config()
        cfg.pop("kernel_initializer", None)
        rows.append((layer.name, type(layer), layer.output_shape, cfg,
                     [(w.name, tuple(w.shape)) for w in layer.weights]))
    return rows


@pytest.mark.vgg
@pytest.mark.parametrize("name", ["vgg16", "vgg19"])
def test_course_vgg_has_the_architecture_of_keras_applications(name):
    ours = models.load_model(name, weights=None)
    assert [type(layer) for layer in ours.layers[:2]] == [keras.layers.InputLayer,
                                                          models.ImageNetPreprocess]
    assert ours.input_shape == (None, 224, 224, 3) and ours.name == name
    mine = _describe(ours, skip=2)                  # after our input and preprocessing layers
    inits = [layer.kernel_initializer for layer in ours.layers if hasattr(layer, "kernel")]
    assert all(isinstance(i, keras.initializers.GlorotUniform) for i in inits)
    del ours, inits
    ref = getattr(keras.applications, name.upper())(weights=None, include_top=True)
    theirs = _describe(ref, skip=1)
    del ref
    assert [row[0] for row in mine] == [row[0] for row in theirs]
    for a, b in zip(mine, theirs):
        assert a == b, a[0]


@pytest.mark.vgg
def test_course_vgg16_predicts_what_keras_applications_vgg16_predicts(fake_keras_cache, monkeypatch,
                                                                      rng):
    """The same weights file, loaded by the course (layer by layer) and by Keras itself, and the
    same images, preprocessed by our layer and by Keras's ``preprocess_input``."""
    home, files = fake_keras_cache
    monkeypatch.setenv("KERAS_HOME", str(home))
    x = rng.random((2, 224, 224, 3)).astype(np.float32)

    def run(model, images):
        probe = keras.Model(model.inputs, [model.get_layer("fc2").output, model.output])
        return [out.numpy() for out in probe(images)]

    ours = run(models.load_model("vgg16"), x)
    ref = keras.applications.VGG16(weights=str(files["vgg16"]))
    theirs = run(ref, keras.applications.vgg16.preprocess_input(x * 255.0))
    del ref
    assert np.abs(ours[0]).max() > 0                # the comparison is not between zeros
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


#: Load VGG16 through the ImageNet path and run one image; print the process's peak RSS.
_MEMORY_PROBE = """
import numpy as np
import course_helpers as ch
vgg = ch.models.load_model("vgg16")
vgg.predict(np.random.default_rng(0).random((1, 224, 224, 3)).astype(np.float32), verbose=0)
with open("/proc/self/status") as f:
    print([int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0] * 1024)
"""


@pytest.mark.vgg
@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="needs Linux")
def test_loading_vgg16_and_a_forward_pass_stay_under_binders_2_gb(fake_keras_cache):
    import os
    import subprocess
    import sys

    home, _ = fake_keras_cache
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True,
                         env=dict(os.environ, KERAS_HOME=str(home)), timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    peak = int(out.stdout.split()[-1])     # VmHWM of a fresh process: its own peak
    print(f"VGG16 load + forward pass: peak RSS {peak / 2**20:.0f} MB")
    assert peak < 2 * 2**30, f"{peak / 2**20:.0f} MB"


def test_large_kernels_start_at_zero_and_randomizing_them_draws_glorot(monkeypatch):
    """A kernel over LARGE_WEIGHT values is built as zeros (no random draw); re-created from its
    config, as lesson 8 does, its initializer gives properly spread Glorot values."""
    from course_helpers import sanity, vgg, weights

    monkeypatch.setattr(weights, "LARGE_WEIGHT", 1000)
    monkeypatch.setattr(weights, "_CHUNK", 1000)
    inp = keras.Input((60,))
    x = keras.layers.Dense(200, kernel_initializer=vgg.ZerosWhenLarge(seed=1), name="big")(inp)
    out = keras.layers.Dense(4, kernel_initializer=vgg.ZerosWhenLarge(seed=2), name="small")(x)
    model = keras.Model(inp, out)
    assert not model.get_layer("big").kernel.numpy().any()        # 12,000 values: zeros
    small = model.get_layer("small").kernel.numpy()
    assert (small != 0).all() and np.abs(small).max() <= np.sqrt(6 / 204)   # 800: Glorot
    rand = sanity.randomize_layers(model, ["big"], seed=3)          # a clone, from the config
    k = rand.get_layer("big").kernel.numpy()
    limit = np.sqrt(6 / (60 + 200))                                 # Glorot uniform
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.99 * limit
    assert k.std() == pytest.approx(limit / np.sqrt(3), rel=0.03) and (k != 0).mean() > 0.999
    np.testing.assert_array_equal(rand.get_layer("small").kernel.numpy(), small)
    with sanity.randomized(model, ["big"], seed=3) as same:        # in place: the same draw
        np.testing.assert_array_equal(same.get_layer("big").kernel.numpy(), k)
    assert not model.get_layer("big").kernel.numpy().any()         # and restored


def test_weights_argument_errors_name_the_fix(course_model, tmp_path):
    with pytest.raises(ValueError, match=r"'imagenet'.*VGG"):
        models.load_model("course-cnn", weights="imagenet")
    with pytest.raises(ValueError, match="not a file"):
        models.load_model("course-cnn", weights=tmp_path / "nope.h5")
    with pytest.raises(ValueError, match="weights must be one of 'imagenet', 'default', None"):
        models.load_model("vgg16", weights="random")
    path = tmp_path / "mine.weights.h5"                  # a path to a weights file loads it
    course_model.save_weights(str(path))
    again = models.load_model("course-cnn", weights=path)
    for a, b in zip(again.weights, course_model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_functions_taking_a_model_refuse_none_names_and_keras3_models(tmp_path):
    import keras as keras3

    k3 = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    calls = {"logits_model": models.logits_model, "model_name": models.model_name,
             "class_names": models.class_names,
             "load_h5_weights": lambda m: models.load_h5_weights(m, tmp_path / "w.h5")}
    for bad, message in ((None, "is None"), ("course-cnn", "load_model"), (k3, "Keras 3")):
        for name, call in calls.items():
            if name == "class_names" and isinstance(bad, str):
                continue                                  # a model's name is fine there
            with pytest.raises(TypeError, match=message):
                call(bad)


# --------------------------------------------------------------------------- ResNet50
@pytest.fixture(scope="module")
def resnet():
    return models.load_model("resnet50", weights=None)


@pytest.mark.vgg
def test_resnet50_is_tf_keras_resnet50_behind_the_preprocessing(resnet, rng):
    ref = keras.applications.ResNet50(weights=None)
    assert resnet.input_shape == (None, 224, 224, 3) and resnet.output_shape == (None, 1000)
    assert [layer.name for layer in resnet.layers[2:]] == [layer.name for layer in ref.layers[1:]]
    assert [w.shape for w in resnet.weights] == [w.shape for w in ref.weights]
    assert models.model_name(resnet) == "resnet50" and models.class_names(resnet)[1] == "goldfish"
    assert models.class_names("resnet50") == models.class_names(resnet)
    assert "resnet50" in models.available_models()
    x = rng.random((2, 224, 224, 3)).astype(np.float32)
    pre = resnet.get_layer("imagenet_preprocess")(x).numpy()
    np.testing.assert_allclose(pre, keras.applications.resnet50.preprocess_input(x * 255.0),
                               atol=1e-3)
    z = models.logits_model(resnet)(x).numpy()
    np.testing.assert_allclose(tf.nn.softmax(z).numpy(), resnet(x).numpy(), rtol=1e-4, atol=1e-6)
    # untrained, but the same every time (seeded); 7x7 RGB first-layer kernels
    again = models.load_model("resnet50", weights=None)
    np.testing.assert_array_equal(again.get_layer("conv1_conv").kernel.numpy(),
                                  resnet.get_layer("conv1_conv").kernel.numpy())
    assert ch.filters.first_layer(resnet).kernel.shape == (7, 7, 3, 64)
    assert len(models.conv_layer_names(resnet)) == 53


@pytest.mark.vgg
def test_resnet50_imagenet_path_loads_a_keras_weights_file_from_the_cache(tmp_path, monkeypatch,
                                                                          resnet, rng):
    import h5py

    # a weights file as Keras writes the ImageNet one: tf_keras's own ResNet50 with its
    # batch-norm statistics and kernels set to random values, saved with save_weights
    ref = keras.applications.ResNet50(weights=None)
    for w in ref.weights:
        low, high = (0.5, 1.5) if ("variance" in w.name or "gamma" in w.name) else (-0.1, 0.1)
        if w.shape.rank == 1:
            w.assign(rng.uniform(low, high, w.shape).astype(np.float32))
    (tmp_path / "models").mkdir()
    path = tmp_path / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    ref.save_weights(str(path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert models.vgg_weights_available("resnet50")
    loaded = models.load_model("resnet50")
    with h5py.File(path, "r") as f:
        for name in ("conv1_conv", "conv3_block2_2_bn", "conv5_block3_3_conv", "predictions"):
            stored = [f[name][n][()] for n in f[name].attrs["weight_names"]]
            for a, b in zip(loaded.get_layer(name).weights, stored):
                np.testing.assert_array_equal(a.numpy(), b, err_msg=name)
    x = rng.random((2, 224, 224, 3)).astype(np.float32)
    want = keras.Model(ref.inputs, ref.get_layer("avg_pool").output)(
        keras.applications.resnet50.preprocess_input(x * 255.0)).numpy()
    got = ch.graph.submodel(loaded, "avg_pool")(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    np.testing.assert_allclose(loaded(x).numpy(), ref(keras.applications.resnet50.preprocess_input(
        x * 255.0)).numpy(), atol=1e-5)
    # a truncated file: a clear error that names the file and how to fetch it again
    path.write_bytes(path.read_bytes()[:5_000_000])
    with pytest.raises(RuntimeError, match=r"resnet50_weights.*--fetch resnet50"):
        models.load_model("resnet50")


def test_resnet50_offline_fails_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    t0 = time.time()
    with pytest.raises(RuntimeError, match=r"resnet50.*--fetch resnet50.*course-cnn"):
        models.load_model("resnet50")
    assert time.time() - t0 < 5
    assert not models.vgg_weights_available("resnet50")
    with pytest.raises(ValueError, match="weights must be one of"):
        models.load_model("resnet50", weights="resnet")


@pytest.mark.vgg
def test_resnet50_receptive_fields_match_gradients_on_shallow_layers(resnet):
    from test_graph import box_in_image, gradient_box

    assert ch.graph.receptive_field(resnet, "conv2_block1_out") == (19, 4, 0)
    for layer in ("conv1_conv", "conv2_block1_0_conv", "conv2_block1_out"):
        h, w = resnet.get_layer(layer).output_shape[1:3]
        for unit in ((0, 0), (h // 2, w // 3), (h - 1, w - 1)):
            assert gradient_box(resnet, layer, *unit, n_inputs=2) == \
                box_in_image(resnet, layer, *unit), (layer, unit)


@pytest.mark.vgg
def test_imagenet_layers_name_the_same_roles_in_every_imagenet_model(resnet):
    layers = models.imagenet_layers(resnet)
    assert layers == models.imagenet_layers("ResNet50 ")
    assert set(layers) == {"first", "middle", "deep", "cam", "penultimate"}
    assert layers["first"] == ch.filters.first_layer(resnet).name
    grids = []
    for role in ("first", "middle", "deep"):
        act = ch.graph.activation_layer(resnet, layers[role])   # a conv, then its ReLU
        assert isinstance(act, keras.layers.Activation) and act.activation.__name__ == "relu"
        grids.append(ch.graph.output_of(resnet, act).shape[1])
    # Grad-CAM's layer: the last grid, the one the global average pool reads
    assert ch.graph.inputs_of(resnet, "avg_pool")[0].name == layers["cam"]
    grids.append(ch.graph.output_of(resnet, layers["cam"]).shape[1])
    assert grids == sorted(grids, reverse=True) and grids[-1] == 7    # deeper, coarser
    assert ch.graph.output_of(resnet, layers["penultimate"]).shape.as_list() == [None, 2048]
    assert ch.graph.inputs_of(resnet, "predictions")[0].name == layers["penultimate"]
    for name in ("vgg16", "vgg19"):      # VGG's layer names, from the course's own builder
        vgg_convs = {f"block{b}_conv{c}" for b, n in enumerate(ch.vgg.BLOCKS[name], 1)
                     for c in range(1, n + 1)}
        roles = models.imagenet_layers(name)
        assert {roles[r] for r in ("first", "middle", "deep", "cam")} <= vgg_convs
        assert roles["cam"] == max(vgg_convs) and roles["penultimate"] == "fc2"
    with pytest.raises(ValueError, match="name_or_model must be one of"):
        models.imagenet_layers("course-cnn")
