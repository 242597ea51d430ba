"""Regression tests for the engine fixes of the review (issue 16): each fails without its fix.

Every expected value is computed independently (a hand-built Keras sub-model, NumPy) or is the
exact error text naming the argument and its value.
"""
import numpy as np
import pytest
import tf_keras as keras

import course_helpers as ch
from course_helpers import _checks, graph


def _logits(model, x):
    """Class scores read from the 'logits' layer directly (independent path)."""
    return keras.Model(model.inputs, model.get_layer("logits").output)(x).numpy()


@pytest.fixture(scope="module")
def shared_head():
    """A model whose last two layers were first called inside another model, so their node 0
    belongs to that other graph: one ends in a Dense softmax, one in an Activation softmax."""
    keras.utils.set_random_seed(1)
    emb = keras.layers.Dense(5, activation="relu", name="emb")
    head = keras.layers.Dense(3, activation="softmax", name="head")
    logits = keras.layers.Dense(3, name="logits")
    soft = keras.layers.Activation("softmax", name="predictions")
    side = keras.Input((5,))
    keras.Model(side, head(keras.layers.Dense(5, name="other")(side)), name="elsewhere")
    keras.Model(side, soft(logits(side)), name="elsewhere2")
    inp = keras.Input((4, 4, 3))
    x = keras.layers.Flatten(name="flat")(inp)
    x = keras.layers.Dropout(0.5, name="drop")(emb(x))
    dense_model = keras.Model(inp, head(x), name="dense_softmax")
    act_model = keras.Model(inp, soft(logits(x)), name="act_softmax")
    return dense_model, act_model


# --------------------------------------------------------------------------- 1. objective_value
def test_objective_value_converts_uint8_and_other_sizes(tiny_model, rng):
    img = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    u8 = np.round(img * 255).astype(np.uint8)
    want = _logits(tiny_model, (u8 / 255.0).astype(np.float32)[None])[0, 1]
    assert ch.ascent.objective_value(tiny_model, u8, class_index=1) == pytest.approx(want, abs=1e-5)
    both = ch.ascent.objective_value(tiny_model, np.stack([u8, u8]), class_index=1)
    np.testing.assert_allclose(both, [want, want], atol=1e-5)
    big = rng.uniform(0, 1, (32, 32, 3)).astype(np.float32)
    small = ch.data.load_image(big, size=16)
    want = _logits(tiny_model, small[None])[0, 2]
    assert ch.ascent.objective_value(tiny_model, big, class_index=2) == pytest.approx(want, abs=1e-5)
    fm = keras.Model(tiny_model.inputs, tiny_model.get_layer("c1").output)
    channel = fm(small[None]).numpy()[0, :, :, 3].mean()
    got = ch.ascent.objective_value(tiny_model, big, layer="c1", channel=3)
    assert got == pytest.approx(channel, abs=1e-5)


# --------------------------------------------------------------------------- 2. own-graph walks
def test_inputs_of_follows_the_models_own_graph(shared_head):
    dense_model, act_model = shared_head
    assert [lyr.name for lyr in graph.inputs_of(dense_model, "head")] == ["drop"]
    assert [lyr.name for lyr in graph.inputs_of(act_model, -1)] == ["logits"]
    assert ch.embedding.penultimate_layer(dense_model).name == "emb"
    assert ch.embedding.penultimate_layer(act_model).name == "emb"


def test_logits_model_when_the_last_layers_were_called_elsewhere(shared_head, rng):
    dense_model, act_model = shared_head
    x = rng.uniform(0, 1, (5, 4, 4, 3)).astype(np.float32)
    w_e, b_e = dense_model.get_layer("emb").get_weights()
    hidden = np.maximum(x.reshape(5, -1) @ w_e + b_e, 0)
    w, b = dense_model.get_layer("head").get_weights()
    view = ch.models.logits_model(dense_model)
    np.testing.assert_allclose(view(x).numpy(), hidden @ w + b, rtol=1e-5, atol=1e-5)
    assert ch.models.logits_model(dense_model) is view
    w, b = act_model.get_layer("logits").get_weights()
    view = ch.models.logits_model(act_model)
    np.testing.assert_allclose(view(x).numpy(), hidden @ w + b, rtol=1e-5, atol=1e-5)
    assert view is graph.submodel(act_model, "logits")      # the one sub-model cache
    assert ch.models.class_names(view) == ["class 0", "class 1", "class 2"]


# --------------------------------------------------------------------------- 3. any image size
def test_models_that_take_any_size_keep_the_image_size(rng):
    ex = ch.style.offline_extractor(widths=(4, 4, 4, 4))
    assert _checks.input_size(ex) == (None, None)
    img = rng.uniform(0, 1, (24, 40, 3)).astype(np.float32)
    got = ch.activations.feature_maps(ex, "block1_conv1", img)
    want = keras.Model(ex.inputs, ex.get_layer("block1_conv1").output)(img[None]).numpy()[0]
    assert got.shape == (24, 40, 4)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_array_equal(_checks.batch_for(ex, [img, img]), np.stack([img, img]))
    with pytest.raises(ValueError, match=r"images have different sizes \(\(24, 40\), \(40, 24\)\)"):
        _checks.batch_for(ex, [img, img.transpose(1, 0, 2)])
    inp = keras.Input((None, 16, 3))
    rows = keras.Model(inp, keras.layers.Conv2D(2, 3)(inp))
    assert _checks.input_size(rows) == (None, 16)
    assert _checks.image_for(rows, rng.uniform(0, 1, (24, 40, 3))).shape == (24, 16, 3)


def test_receptive_field_of_a_model_that_takes_any_size():
    ex = ch.style.offline_extractor(widths=(4, 4, 4, 4))
    # input -> _Centre (per pixel) -> 3x3 conv -> 2x2 pool -> 3x3 conv: 1 + 2 + 1 + 2*2 = 8
    assert graph.keeps_positions(ex.layers[1])
    assert graph.receptive_field(ex, "block2_conv1") == (8, 2, 0.5)


# --------------------------------------------------------------------------- 4. one integer rule
def test_whole_floats_are_indices_everywhere(tiny_model, rng):
    img = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(ch.occlusion.occlusion_map(tiny_model, img, 2.0, patch=8),
                                  ch.occlusion.occlusion_map(tiny_model, img, 2, patch=8))
    np.testing.assert_array_equal(ch.saliency.saliency_map(tiny_model, img, 2.0),
                                  ch.saliency.saliency_map(tiny_model, img, 2))
    assert _checks.check_index(3.0, 5, "channel", "") == 3
    assert graph.unit_box(tiny_model, "c2", 1.0, np.int64(2)) == graph.unit_box(tiny_model, "c2", 1, 2)
    with pytest.raises(TypeError, match="row must be a whole number, got float 1.5"):
        graph.unit_box(tiny_model, "c2", 1.5, 2)
    sal = rng.random((16, 16))
    a = ch.sanity.deletion_curve(tiny_model, img, 0, sal, steps=4.0)
    b = ch.sanity.deletion_curve(tiny_model, img, 0, sal, steps=4)
    np.testing.assert_array_equal(a.probability, b.probability)
    with pytest.raises(TypeError, match="steps must be a whole number, got float 1.5"):
        ch.sanity.deletion_curve(tiny_model, img, 0, sal, steps=1.5)
    with pytest.raises(ValueError, match="baseline must be at most 1, got 2.0"):
        ch.sanity.deletion_curve(tiny_model, img, 0, sal, baseline=2)
    mask = np.zeros((1, 16, 16), bool)
    mask[0, 4:8, 4:8] = True
    assert ch.sanity.pointing_game(sal[None], mask, tolerance=1.0) == \
        ch.sanity.pointing_game(sal[None], mask, tolerance=1)
    with pytest.raises(TypeError, match="tolerance must be a whole number, got float 0.5"):
        ch.sanity.pointing_game(sal[None], mask, tolerance=0.5)


def test_add_shortcut_mark_cue_class_rule(shapes):
    images, labels, _ = shapes
    np.testing.assert_array_equal(ch.sanity.add_shortcut_mark(images, labels, cue_class=2.0),
                                  ch.sanity.add_shortcut_mark(images, labels, cue_class=2))
    with pytest.raises(TypeError, match="cue_class must be a whole number, got float 1.5"):
        ch.sanity.add_shortcut_mark(images, labels, cue_class=1.5)


# --------------------------------------------------------------------------- 5. clear errors
@pytest.mark.parametrize("call, error, words", [
    (lambda: ch.occlusion.occlusion_positions(10, 20, 4), ValueError,
     "patch 20 is larger than the image (10x10)"),
    (lambda: ch.occlusion.occlusion_positions(64, 16, 0), ValueError,
     "stride must be at least 1, got 0"),
    (lambda: ch.occlusion.pixel_map(np.zeros((3, 3)), (16, 16), 8, 0), ValueError,
     "stride must be at least 1, got 0"),
    (lambda: ch.occlusion_fast.incremental_plan(None, (64, 64), 8), TypeError,
     "model is None: load one first"),
])
def test_geometry_and_model_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


def test_occlusion_positions_cover_every_pixel():
    for size, patch, stride in [(10, 4, 3), (16, 16, 8), (17, 5, 4)]:
        pos = ch.occlusion.occlusion_positions(size, patch, stride)
        covered = np.zeros(size, bool)
        for p in pos:
            covered[p:p + patch] = True
        assert covered.all() and pos[-1] == size - patch


def test_randomize_layers_by_index_or_layer_object(tiny_model):
    by_name = ch.sanity.randomize_layers(tiny_model, ["c2"], seed=3)
    for spec in ([3], [tiny_model.layers[3]], tiny_model.layers[3], 3):
        assert tiny_model.layers[3].name == "c2"
        copy = ch.sanity.randomize_layers(tiny_model, spec, seed=3)
        for w, want in zip(copy.weights, by_name.weights):
            np.testing.assert_array_equal(w.numpy(), want.numpy())
    assert not np.allclose(by_name.get_layer("c2").kernel.numpy(),
                           tiny_model.get_layer("c2").kernel.numpy())
    with pytest.raises(ValueError, match="Layer 'p1' has no weights"):
        ch.sanity.randomize_layers(tiny_model, [2])


def test_cascading_randomization_class_names_and_steps(course_model, shapes):
    images = shapes[0][:2]
    names = ch.models.class_names(course_model)
    method = {"logit grad": lambda m, x, c: ch.saliency.saliency_maps(m, x, c)}
    by_name = ch.sanity.cascading_randomization(course_model, images, names[1], method, steps=1,
                                                progress=False)
    by_index = ch.sanity.cascading_randomization(course_model, images, 1, method, steps=1.0,
                                                 progress=False)
    np.testing.assert_array_equal(by_name["maps"]["logit grad"], by_index["maps"]["logit grad"])
    assert len(by_name["steps"]) == 2
    with pytest.raises(ValueError, match="class_index 'unicorn' is not a class name"):
        ch.sanity.cascading_randomization(course_model, images, "unicorn", method, progress=False)
    with pytest.raises(TypeError, match="steps must be a whole number, got float 1.5"):
        ch.sanity.cascading_randomization(course_model, images, 1, method, steps=1.5,
                                          progress=False)


def test_image_tiles_of_one_image_is_the_list_of_one(rng):
    img = rng.uniform(0, 1, (24, 16, 3)).astype(np.float32)
    tiles = ch.patches.image_tiles(img, 8)
    np.testing.assert_array_equal(tiles, ch.patches.image_tiles([img], 8))
    assert tiles.shape == (6, 8, 8, 3)
    np.testing.assert_array_equal(tiles[1], img[0:8, 8:16])


def test_check_class_takes_names_whole_floats_and_numpy_ints(course_model):
    names = ch.models.class_names(course_model)
    assert _checks.check_class(course_model, names[2]) == 2
    assert _checks.check_class(course_model, names[2].upper()) == 2
    assert _checks.check_class(course_model, np.int32(2)) == 2
    assert _checks.check_class(course_model, 2.0) == 2
    with pytest.raises(TypeError, match="class_index must be a whole number, got float 2.5"):
        _checks.check_class(course_model, 2.5)


# --------------------------------------------------------------------------- P2
def test_kerasvis_saliency_leaves_numpys_global_stream_alone(tiny_model, rng):
    img = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    np.random.seed(123)
    want = np.random.random(3)
    np.random.seed(123)
    first = ch.kerasvis.saliency(tiny_model, img, 0, smooth_samples=2, seed=5)
    np.testing.assert_array_equal(np.random.random(3), want)
    np.testing.assert_array_equal(ch.kerasvis.saliency(tiny_model, img, 0, smooth_samples=2,
                                                       seed=5), first)


def test_style_steps_are_kept_per_extractor_and_go_with_it(rng):
    import gc
    import weakref

    from course_helpers.style import transfer

    inp = keras.Input((None, None, 3))
    c1 = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    c2 = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c2")(c1)
    model = keras.Model(inp, c2)
    content, style = rng.uniform(0, 1, (2, 12, 12, 3)).astype(np.float32)
    for _ in range(2):
        ch.style.style_transfer(content, style, steps=1, model=model, content_layer="c2",
                                style_layers=["c1", "c2"], progress=False)
    steps = transfer._STYLE_STEPS[model]
    assert list(steps) == [(("c2", "c1", "c2"), (12, 12, 3))]
    ref = weakref.ref(model)
    del model, steps
    gc.collect()
    assert ref() is None


def test_untrained_twin_follows_the_graph_not_the_layer_list():
    inp = keras.Input((8, 8, 3))
    side = keras.layers.Activation("tanh", name="side")(inp)       # listed before the conv
    conv = keras.layers.Conv2D(2, 3, name="conv")(inp)
    x = keras.layers.Concatenate()([keras.layers.Flatten()(side), keras.layers.Flatten()(conv)])
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    assert [lyr.name for lyr in model.layers[:3]] == [model.layers[0].name, "side", "conv"]
    twin = ch.filters.untrained_twin(model)
    assert [type(lyr) for lyr in twin.layers[1:]] == [keras.layers.Conv2D]
    x = np.random.default_rng(0).uniform(0, 1, (1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(twin(x).numpy(), twin.layers[1](x).numpy(), atol=1e-6)


def test_plumbing_is_not_exported_from_lesson_modules():
    assert not hasattr(ch.sanity, "assign_in_slices")
    from course_helpers import weights

    assert callable(weights.assign_in_slices)
    assert not hasattr(ch.style, "_EXTRACTORS") and not hasattr(ch.style, "_STYLE_STEPS")
