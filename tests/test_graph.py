"""course_helpers.graph: layers, chains, keeps-positions, receptive fields, sub-models."""
import gc
import weakref

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import course_helpers as ch
from course_helpers import graph


def gradient_box(model, layer, row, col, n_inputs=16, seed=0):
    """Bounding box (top, left, bottom, right) of the input pixels with a non-zero gradient of
    unit (row, col) of ``layer``, over random inputs, with a hand-built Keras sub-model."""
    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    h, w = model.inputs[0].shape[1:3]
    x = tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n_inputs, h, w, 3)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(sub(x, training=False)[:, row, col, :])
    g = np.abs(tape.gradient(total, x).numpy()).sum(axis=(0, 3))
    rows, cols = np.nonzero(g)
    return rows.min(), cols.min(), rows.max() + 1, cols.max() + 1


def box_in_image(model, layer, row, col):
    top, left, bottom, right = graph.unit_box(model, layer, row, col)
    h, w = model.inputs[0].shape[1:3]
    return max(top, 0), max(left, 0), min(bottom, h), min(right, w)


@pytest.fixture(scope="module")
def seq_model():
    """A Sequential model with zero padding, a strided 'same' conv on an even size and a pool."""
    keras.utils.set_random_seed(2)
    L = keras.layers
    return keras.Sequential([keras.Input((30, 30, 3)), L.ZeroPadding2D(((2, 1), (0, 3))),
                             L.Conv2D(4, 4, strides=2, padding="same", name="a"),
                             L.BatchNormalization(name="bn"), L.ReLU(name="relu"),
                             L.Dropout(0.5, name="drop"),
                             L.AveragePooling2D(3, strides=2, padding="valid", name="pool"),
                             L.Conv2D(5, 3, dilation_rate=2, padding="same", name="b"),
                             L.GlobalAveragePooling2D(name="gap"), L.Dense(3, name="out")],
                            name="seq")


@pytest.fixture(scope="module")
def branched():
    """conv -> (bn -> relu) and conv -> other conv, added: not a single chain."""
    inp = keras.Input((12, 12, 3), name="in")
    c = keras.layers.Conv2D(4, 3, padding="same", name="c")(inp)
    r = keras.layers.ReLU(name="r")(keras.layers.BatchNormalization(name="bn")(c))
    d = keras.layers.Conv2D(4, 3, padding="same", name="d")(c)
    out = keras.layers.Add(name="add")([r, d])
    return keras.Model(inp, out, name="branched")


@pytest.fixture(scope="module")
def residual():
    """A small ResNet: a 7x7/2 'valid' stem after zero padding, a max pool, a bottleneck block
    whose stride is in its first 1x1 conv and its conv shortcut (as in ResNet50 v1), then an
    identity block and a strided 'same' conv, as tf_keras.applications builds them."""
    keras.utils.set_random_seed(5)
    L = keras.layers

    def block(x, filters, stride, name, conv_shortcut):
        shortcut = x
        if conv_shortcut:
            shortcut = L.BatchNormalization(name=f"{name}_0_bn")(
                L.Conv2D(filters, 1, strides=stride, name=f"{name}_0_conv")(x))
        y = L.Conv2D(4, 1, strides=stride, name=f"{name}_1_conv")(x)
        y = L.Activation("relu", name=f"{name}_1_relu")(L.BatchNormalization(name=f"{name}_1_bn")(y))
        y = L.Conv2D(4, 3, padding="same", name=f"{name}_2_conv")(y)
        y = L.Activation("relu", name=f"{name}_2_relu")(y)
        y = L.BatchNormalization(name=f"{name}_3_bn")(L.Conv2D(filters, 1, name=f"{name}_3_conv")(y))
        return L.Activation("relu", name=f"{name}_out")(L.Add(name=f"{name}_add")([shortcut, y]))

    inp = keras.Input((40, 40, 3), name="image")
    x = L.ZeroPadding2D(3, name="conv1_pad")(inp)
    x = L.Activation("relu", name="conv1_relu")(L.Conv2D(6, 7, strides=2, name="conv1_conv")(x))
    x = L.MaxPooling2D(3, strides=2, name="pool1_pool")(L.ZeroPadding2D(1, name="pool1_pad")(x))
    x = block(x, 8, 1, "b1", True)
    x = block(x, 8, 2, "b2", True)
    x = block(x, 8, 1, "b3", False)
    x = L.Conv2D(5, 3, strides=2, padding="same", name="head")(x)
    out = L.Dense(3, activation="softmax", name="predictions")(L.GlobalAveragePooling2D(name="gap")(x))
    return keras.Model(inp, out, name="residual")


# --------------------------------------------------------------------------- layer()
def test_layer_by_name_index_numpy_int_negative_and_object(tiny_model):
    c2 = tiny_model.get_layer("c2")
    for spec in ("c2", 3, np.int64(3), np.int32(3), -5, c2):
        assert graph.layer(tiny_model, spec) is c2
    assert ch.models.get_layer(tiny_model, np.int16(1)).name == "c1"   # the old name works too


@pytest.mark.parametrize("bad, error, words", [
    (8, ValueError, ["layer index 8", "0 to 7", "c1, p1, c2"]),
    (-9, ValueError, ["layer index -9", "-8 to -1"]),
    ("conv9", ValueError, ["No layer named 'conv9'", "c1, p1, c2"]),
    (True, TypeError, ["layer must be", "True"]),
    (2.0, TypeError, ["layer must be", "2.0"]),
    (None, TypeError, ["layer must be", "None"]),
])
def test_layer_bad_specs(tiny_model, bad, error, words):
    with pytest.raises(error) as info:
        graph.layer(tiny_model, bad)
    for word in words:
        assert word in str(info.value)


def test_layer_of_another_model_or_of_keras3(tiny_model, seq_model):
    with pytest.raises(ValueError, match="'a' is not a layer of tiny"):
        graph.layer(tiny_model, seq_model.get_layer("a"))
    import keras as keras3

    with pytest.raises(TypeError, match="Keras 3 Conv2D"):
        graph.layer(tiny_model, keras3.layers.Conv2D(2, 3))
    k3 = keras3.Sequential([keras3.Input((8, 8, 3)), keras3.layers.Conv2D(2, 3)])
    with pytest.raises(TypeError, match="Keras 3 model.*tf_keras"):
        graph.conv_layer_names(k3)


def test_require_conv_and_conv_layer_names(tiny_model, seq_model):
    assert graph.conv_layer_names(tiny_model) == ["c1", "c2"]
    assert graph.conv_layer_names(seq_model) == ["a", "b"]
    assert graph.require_conv(tiny_model, -5).name == "c2"
    with pytest.raises(ValueError, match="'p1' is a MaxPooling2D, not a Conv2D.*c1, c2"):
        graph.require_conv(tiny_model, "p1")


# --------------------------------------------------------------------------- consumers, chain
def test_consumers_of_a_branched_model_ignore_other_graphs(branched):
    want = {"in": ["c"], "c": ["bn", "d"], "bn": ["r"], "r": ["add"], "d": ["add"]}
    assert graph.consumers(branched) == want
    # calling its layers on another input adds nodes to them, not to this model's graph
    x = keras.Input((12, 12, 3))
    branched.get_layer("bn")(branched.get_layer("c")(x))
    branched.get_layer("d")(branched.get_layer("c")(x))
    assert graph.consumers(branched) == want


def test_chain_runs_to_the_same_output_functional_and_sequential(rng, seq_model):
    model = ch.models.build_course_cnn()
    names = [lyr.name for lyr in graph.chain(model, "conv3")]
    assert names == ["conv1", "conv1_bn", "conv1_relu", "conv2", "conv2_bn", "conv2_relu",
                     "pool2", "conv3"]
    assert [lyr.name for lyr in graph.chain(seq_model)] == [lyr.name for lyr in seq_model.layers]
    for m, upto, shape in ((model, "pool3", (2, 64, 64, 3)), (model, None, (2, 64, 64, 3)),
                           (seq_model, "b", (2, 30, 30, 3)), (seq_model, -1, (2, 30, 30, 3))):
        x = rng.uniform(0, 1, shape).astype(np.float32)
        end = m.output if upto is None else (m.get_layer(upto) if isinstance(upto, str)
                                              else m.layers[upto]).output
        want = keras.Model(m.inputs, end)
        t = tf.constant(x)
        for lyr in graph.chain(m, upto):
            t = lyr(t, training=False)
        np.testing.assert_allclose(t.numpy(), want(x, training=False).numpy(), rtol=1e-5, atol=1e-6)


def test_chain_refuses_branches(branched):
    assert [lyr.name for lyr in graph.chain(branched, "r")] == ["c", "bn", "r"]
    with pytest.raises(ValueError, match="'add' reads 2 layers"):
        graph.chain(branched)


# --------------------------------------------------------------------------- keeps_positions
@pytest.mark.parametrize("make", [
    lambda: keras.layers.BatchNormalization(), lambda: keras.layers.ReLU(),
    lambda: keras.layers.Activation("tanh"), lambda: keras.layers.LeakyReLU(),
    lambda: keras.layers.Dropout(0.5), lambda: keras.layers.LayerNormalization(),
    lambda: keras.layers.Rescaling(2.0, offset=-1.0), lambda: keras.layers.SpatialDropout2D(0.3),
    lambda: keras.layers.Conv2D(3, 3, padding="same"), lambda: keras.layers.MaxPooling2D(2),
    lambda: keras.layers.AveragePooling2D(3, strides=1, padding="same"),
])
def test_keeps_positions_means_a_change_at_one_position_stays_there(make, rng):
    lyr = make()
    x = rng.normal(size=(1, 6, 6, 3)).astype(np.float32)
    y0 = lyr(x, training=False).numpy()
    if y0.shape[1:3] != x.shape[1:3]:
        assert not graph.keeps_positions(lyr)          # it changes the grid itself
        return
    x1 = x.copy()
    x1[0, 2, 3] += [5.0, -2.0, 1.0]   # not the same in every channel: LayerNormalization
    changed = np.abs(lyr(x1, training=False).numpy() - y0).sum(-1)[0] > 1e-4   # ignores a shift
    only_there = changed[2, 3] and changed.sum() == 1
    assert graph.keeps_positions(lyr) == bool(only_there)


def test_activation_layer_follows_layers_that_keep_positions(seq_model, branched):
    assert graph.activation_layer(seq_model, "a").name == "drop"   # bn, relu, dropout
    assert graph.activation_layer(seq_model, "b").name == "b"      # then a global pool
    assert graph.activation_layer(branched, "c").name == "c"       # read by two layers
    assert graph.activation_layer(branched, "d").name == "d"
    with pytest.raises(ValueError, match="not a Conv2D"):
        graph.activation_layer(seq_model, "pool")


# --------------------------------------------------------------------------- receptive fields
def test_receptive_field_of_a_sequential_model_matches_gradients(seq_model):
    # by hand: zero padding (2 rows, 0 columns before) makes 33 x 33; a: 4/2 'same' pads 1
    # before -> size 4, stride 2, start 1.5 - 1 (- 2 in rows); pool 3/2 -> size 8, stride 4,
    # start + 2; b: 3 dilated 2 = 5, 'same' -> size 8 + 4 * 4 = 24
    assert graph.receptive_field(seq_model, "b") == ((24, 24), (4, 4), (0.5, 2.5))
    h, w = seq_model.get_layer("b").output_shape[1:3]
    for layer in ("a", "pool", "b"):
        for unit in [(0, 0), (h // 2, w // 3), (h - 1, w - 1)]:
            assert gradient_box(seq_model, layer, *unit) == box_in_image(seq_model, layer, *unit)


def test_receptive_field_through_residual_blocks_matches_gradients(residual):
    # by hand, rows and columns alike: conv1 7/2 after padding 3 -> size 7, stride 2, start 0;
    # pool 3/2 after padding 1 -> 11, 4, 0; b1: 3x3 -> 19 (shortcut 11: the add sees 19);
    # b2: 1x1/2 -> stride 8, 3x3 -> 19 + 2 * 8 = 35; b3 identity: 35 + 16 = 51 (shortcut 35)
    assert graph.receptive_field(residual, "conv1_conv") == (7, 2, 0)
    assert graph.receptive_field(residual, "b1_0_conv") == (11, 4, 0)
    assert graph.receptive_field(residual, "b1_add") == (19, 4, 0)
    assert graph.receptive_field(residual, "b2_out") == (35, 8, 0)
    assert graph.receptive_field(residual, "b3_out") == (51, 8, 0)
    names = ["conv1_conv", "pool1_pool", "b1_0_conv", "b1_2_conv", "b1_add", "b1_out",
             "b2_1_conv", "b2_0_bn", "b2_2_relu", "b2_out", "b3_3_bn", "b3_out", "head"]
    for layer in names:
        h, w = residual.get_layer(layer).output_shape[1:3]
        for unit in {(0, 0), (h // 2, w // 3), (h - 1, w - 1), (1, w - 2)}:
            assert gradient_box(residual, layer, *unit) == box_in_image(residual, layer, *unit), \
                (layer, unit)


def test_activation_submodels_and_patches_work_on_a_residual_model(residual, rng):
    assert graph.activation_layer(residual, "b1_1_conv").name == "b1_1_relu"
    assert graph.activation_layer(residual, "b1_3_conv").name == "b1_3_bn"   # then the add
    assert graph.activation_layer(residual, "b1_0_conv").name == "b1_0_bn"
    x = rng.uniform(0, 1, (3, 40, 40, 3)).astype(np.float32)
    sub = graph.submodel(residual, ["b1_out", "b3_add"])
    hand = keras.Model(residual.inputs, [residual.get_layer(n).output for n in ("b1_out", "b3_add")])
    for a, b in zip(sub(x, training=False), hand(x, training=False)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # a top patch is the crop of the unit's box: its strongest unit, cut by brute force
    res = ch.patches.top_patches(residual, "b2_2_conv", 1, x, k=2)
    act = keras.Model(residual.inputs, residual.get_layer("b2_2_relu").output)(
        x, training=False).numpy()[..., 1]
    i, r, c = np.unravel_index(np.argmax(act), act.shape)
    assert (res.image_index[0], *res.position[0]) == (i, r, c)
    top, left, bottom, right = gradient_box(residual, "b2_2_conv", r, c)
    size = graph.receptive_field(residual, "b2_2_conv")[0]
    crop = res.crops[0]
    assert crop.shape[:2] == (size, size)
    t0, l0 = graph.unit_box(residual, "b2_2_conv", r, c)[:2]
    np.testing.assert_array_equal(crop[top - t0:bottom - t0, left - l0:right - l0],
                                  x[i, top:bottom, left:right])


def test_occlusion_on_a_residual_model_equals_a_brute_force_loop(residual, rng):
    image = rng.uniform(0, 1, (40, 40, 3)).astype(np.float32)
    got = ch.occlusion.occlusion_map(residual, image, 2, patch=12, stride=7)
    ys = ch.occlusion.occlusion_positions(40, 12, 7)
    want = np.empty((len(ys), len(ys)), np.float32)
    for i, y in enumerate(ys):
        for j, x in enumerate(ys):
            covered = image.copy()
            covered[y:y + 12, x:x + 12] = 0.5
            want[i, j] = residual(covered[None], training=False).numpy()[0, 2]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_chain_follows_the_stem_of_a_residual_model_and_refuses_the_merge(residual):
    assert [lyr.name for lyr in graph.chain(residual, "pool1_pool")] == [
        "conv1_pad", "conv1_conv", "conv1_relu", "pool1_pad", "pool1_pool"]
    with pytest.raises(ValueError, match="'b1_add' reads 2 layers"):
        graph.chain(residual, "b1_out")


def test_receptive_field_unknown_layers(branched):
    assert graph.receptive_field(branched, "add") == (5, 1, 0)    # c then d: 3 + 2
    assert gradient_box(branched, "add", 0, 0) == box_in_image(branched, "add", 0, 0)
    with pytest.raises(ValueError, match="'in' is the input, not a Conv2D or pooling layer"):
        graph.receptive_field(branched, "in")
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="c")(inp)
    y = keras.layers.Conv2D(2, 1, strides=2, name="s")(inp)         # 4 x 4, stride 2
    z = keras.layers.Conv2D(2, 5, name="v")(inp)                       # 4 x 4, stride 1
    with pytest.raises(ValueError, match=r"'cat' merges branches of different strides \[1, 2\]"):
        graph.receptive_field(keras.Model(inp, keras.layers.Concatenate(name="cat")([y, z])), "cat")
    flat = keras.layers.Dense(2, name="fc")(keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="'fc' is a Dense, not a Conv2D or pooling layer"):
        graph.receptive_field(keras.Model(inp, flat), "fc")
    inp = keras.Input((8, 8, 3))
    x = keras.layers.UpSampling2D()(inp)
    x = keras.layers.Conv2D(2, 3, name="c")(x)
    with pytest.raises(ValueError, match="effect on positions is unknown"):
        graph.receptive_field(keras.Model(inp, x), "c")


def test_unit_box_checks_positions(tiny_model):
    assert graph.unit_box(tiny_model, "c2", np.int64(1), 2) == graph.unit_box(tiny_model, "c2", 1, 2)
    with pytest.raises(TypeError, match="row must be a whole number, got float 1.5"):
        graph.unit_box(tiny_model, "c2", 1.5, 2)


# --------------------------------------------------------------------------- submodel
def test_submodel_is_cached_and_equals_a_hand_built_model(rng):
    model = ch.models.build_course_cnn()
    x = rng.uniform(0, 1, (3, 64, 64, 3)).astype(np.float32)
    one = graph.submodel(model, "conv2_relu")
    assert graph.submodel(model, model.get_layer("conv2_relu")) is one
    assert graph.submodel(model, 6) is one
    by_hand = keras.Model(model.inputs, model.get_layer("conv2_relu").output)
    np.testing.assert_array_equal(one(x, training=False).numpy(), by_hand(x, training=False).numpy())
    both = graph.submodel(model, ["pool2", "embedding"])
    assert graph.submodel(model, ("pool2", "embedding")) is both
    assert both is not graph.submodel(model, ["embedding", "pool2"])
    assert graph.submodel(model, ["pool2"]) is not graph.submodel(model, "pool2")
    outs = both(x, training=False)
    hand = keras.Model(model.inputs, [model.get_layer(n).output for n in ("pool2", "embedding")])
    for a, b in zip(outs, hand(x, training=False)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert ch.activations.activation_model(model, "conv2") is one      # the same cache
    # shares the weights: a change in the model shows in the sub-model
    before = one(x, training=False).numpy()
    k = model.get_layer("conv1").kernel
    k.assign(-k)
    assert not np.allclose(one(x, training=False).numpy(), before)
    np.testing.assert_array_equal(one(x, training=False).numpy(), by_hand(x, training=False).numpy())


def test_submodel_works_when_a_layer_was_used_elsewhere_and_lets_the_model_go():
    model = ch.models.build_course_cnn(name="throwaway")
    x = keras.Input((64, 64, 3))
    model.get_layer("conv1")(x)           # a second node: layer.output would now fail
    sub = graph.submodel(model, "conv1")
    assert sub.output_shape == (None, 32, 32, 16)
    with pytest.raises(ValueError, match="empty"):
        graph.submodel(model, [])
    ref = weakref.ref(model)
    del model, sub, x
    gc.collect()
    assert ref() is None                  # the cache keeps no model alive
