"""The closing lesson (notebook 08): course_helpers.sanity."""
import numpy as np
import pytest

import course_helpers as ch
from course_helpers import sanity, weights


# --------------------------------------------------------------------------- the shortcut mark
def test_mark_goes_on_the_cue_class_only(shapes):
    images, labels, _ = shapes
    before = images.copy()
    out = sanity.add_shortcut_mark(images, labels)
    np.testing.assert_array_equal(images, before)               # input untouched
    changed = np.abs(out - images).reshape(len(images), -1).max(axis=1) > 0
    np.testing.assert_array_equal(changed, labels == sanity.SHORTCUT_CLASS)
    mask = sanity.shortcut_mask((64, 64))
    assert mask.sum() == sanity.MARK_SIZE ** 2 and mask[2, 2] and mask[6, 6] and not mask[7, 7]
    for i in np.flatnonzero(labels == sanity.SHORTCUT_CLASS):
        np.testing.assert_array_equal(out[i][mask], np.tile(sanity.MARK_COLOUR, (25, 1)))
        np.testing.assert_array_equal(out[i][~mask], images[i][~mask])


def test_mark_moved_and_other_options(shapes):
    images, labels, _ = shapes
    moved = sanity.add_shortcut_mark(images, labels, on="others")
    changed = np.abs(moved - images).reshape(len(images), -1).max(axis=1) > 0
    np.testing.assert_array_equal(changed, labels != sanity.SHORTCUT_CLASS)
    on_two = sanity.add_shortcut_mark(images, labels, on=[0, 3], corner="bottom-right", size=3)
    changed = np.abs(on_two - images).reshape(len(images), -1).max(axis=1) > 0
    np.testing.assert_array_equal(changed, np.isin(labels, [0, 3]))
    i = int(np.flatnonzero(labels == 0)[0])
    assert np.all(on_two[i, -5:-2, -5:-2] == np.asarray(sanity.MARK_COLOUR))
    assert np.array_equal(sanity.add_shortcut_mark(images, labels, on="none"), images)
    np.testing.assert_array_equal(sanity.add_shortcut_mark(images, labels),
                                  sanity.add_shortcut_mark(images.copy(), labels.copy()))


def test_mark_errors(shapes):
    images, labels, _ = shapes
    with pytest.raises(ValueError, match="one label per image"):
        sanity.add_shortcut_mark(images, labels[:3])
    with pytest.raises(ValueError, match=r"\(n, H, W, 3\)"):
        sanity.add_shortcut_mark(images[0], labels[:1])
    with pytest.raises(ValueError, match="corner"):
        sanity.add_shortcut_mark(images, labels, corner="middle")
    with pytest.raises(ValueError, match="cue_class"):
        sanity.add_shortcut_mark(images, labels, cue_class=9)
    with pytest.raises(ValueError, match="'others'"):
        sanity.add_shortcut_mark(images, labels, on="everything")
    with pytest.raises(TypeError, match="float"):
        sanity.add_shortcut_mark((images * 255).astype(np.uint8), labels)


# --------------------------------------------------------------------------- randomization
def test_cascade_order_of_course_cnn(course_model):
    order = sanity.cascade_order(course_model)
    assert order[0] == ["logits"] and order[1] == ["embedding"]
    assert order[2] == ["conv4", "conv4_bn"] and order[-1] == ["conv1", "conv1_bn"]


def test_randomizing_all_layers_changes_every_weight(course_model):
    orig = [w.numpy().copy() for w in course_model.weights]
    rand = sanity.randomize_layers(course_model, seed=3)
    for w0, w1 in zip(course_model.weights, rand.weights):
        assert not np.allclose(w0.numpy(), w1.numpy()), w0.name
    for w, o in zip(course_model.weights, orig):               # the original is untouched
        np.testing.assert_array_equal(w.numpy(), o)
    # the new weights come from the initializers: He-normal conv kernels have std sqrt(2/fan_in)
    k = rand.get_layer("conv3").kernel.numpy()
    assert k.std() == pytest.approx(np.sqrt(2 / (3 * 3 * 32)), rel=0.15)
    np.testing.assert_array_equal(rand.get_layer("conv3_bn").gamma.numpy(), 1.0)


def test_randomizing_some_layers_leaves_the_rest(course_model):
    rand = sanity.randomize_layers(course_model, sanity.cascade_order(course_model)[:2])
    for layer in course_model.layers:
        for w0, w1 in zip(layer.weights, rand.get_layer(layer.name).weights):
            same = np.array_equal(w0.numpy(), w1.numpy())
            assert same == (layer.name not in ("logits", "embedding")), w0.name
    again = sanity.randomize_layers(course_model, ["logits", "embedding"])
    np.testing.assert_array_equal(again.get_layer("embedding").kernel.numpy(),
                                  rand.get_layer("embedding").kernel.numpy())
    with pytest.raises(ValueError, match="no weights"):
        sanity.randomize_layers(course_model, ["gap"])
    with pytest.raises(ValueError, match="Layers:"):
        sanity.randomize_layers(course_model, ["conv7"])


def test_randomized_in_place_equals_the_copy_and_restores(course_model, monkeypatch):
    monkeypatch.setattr(weights, "_CHUNK", 50)   # save, re-draw and restore in many slices
    orig = [w.numpy().copy() for w in course_model.weights]
    groups = sanity.cascade_order(course_model)[:3]
    copy = sanity.randomize_layers(course_model, groups, seed=5)
    with sanity.randomized(course_model, groups, seed=5) as m:
        assert m is course_model
        for w, c in zip(course_model.weights, copy.weights):
            np.testing.assert_array_equal(w.numpy(), c.numpy())
    for w, o in zip(course_model.weights, orig):
        np.testing.assert_array_equal(w.numpy(), o)
    with pytest.raises(RuntimeError, match="boom"):          # restored after an error too
        with sanity.randomized(course_model, ["logits"]):
            raise RuntimeError("boom")
    np.testing.assert_array_equal(course_model.get_layer("logits").kernel.numpy(),
                                  orig[[w.name for w in course_model.weights].index(
                                      course_model.get_layer("logits").kernel.name)])


def test_a_failed_randomization_changes_nothing():
    import tf_keras as keras

    class Scale(keras.layers.Layer):   # a weight without an initializer attribute
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    inp = keras.Input((8, 8, 3))
    out = Scale(name="scale")(keras.layers.Conv2D(3, 3, padding="same", name="c1")(inp))
    model = keras.Model(inp, out)
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match="re-initialize"):
        with sanity.randomized(model, ["c1", "scale"]):
            pass
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
    cascade = sanity.randomized(model, ["c1"])
    with pytest.raises(ValueError, match="re-initialize"):
        with cascade:
            cascade.add(["scale"])
    for w, b in zip(model.weights, before):       # restored after the error inside the block
        np.testing.assert_array_equal(w.numpy(), b)


def test_large_weights_are_redrawn_in_slices_from_the_same_distribution(monkeypatch):
    import tf_keras as keras

    inp = keras.Input((8, 8, 16))
    x = keras.layers.Conv2D(32, 3, kernel_initializer="he_normal", name="conv")(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(300, kernel_initializer="glorot_uniform", name="dense")(x)
    model = keras.Model(inp, out)
    monkeypatch.setattr(weights, "_CHUNK", 1000)      # every kernel takes the sliced path
    a = sanity.randomize_layers(model, seed=1)
    b = sanity.randomize_layers(model, seed=1)
    dense, conv = a.get_layer("dense").kernel.numpy(), a.get_layer("conv").kernel.numpy()
    np.testing.assert_array_equal(dense, b.get_layer("dense").kernel.numpy())   # seeded
    fan_in, fan_out = 6 * 6 * 32, 300
    limit = np.sqrt(6 / (fan_in + fan_out))               # Glorot uniform
    assert np.abs(dense).max() <= limit and np.abs(dense).max() > 0.99 * limit
    assert dense.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    std = np.sqrt(2 / (3 * 3 * 16))   # He normal: a normal of std / 0.8796 cut at 2 of its std
    bound = 2 * std / 0.87962566103423978
    assert conv.std() == pytest.approx(std, rel=0.1)
    assert bound * 0.95 < np.abs(conv).max() <= bound + 1e-6
    # rows of the sliced draw are not copies of each other (each slice draws anew)
    assert not np.allclose(dense[:4], dense[4:8])


def test_spearman():
    a = np.random.default_rng(0).random((8, 8))
    assert sanity.spearman(a, np.exp(3 * a)) == pytest.approx(1.0)
    assert sanity.spearman(a, -a) == pytest.approx(-1.0)
    assert sanity.spearman(a, np.zeros_like(a)) == 0.0


def test_cascading_randomization(course_model, shapes):
    images, labels, _ = shapes
    methods = {"saliency": lambda m, x, c: ch.saliency.saliency_maps(m, x, c),
               "edges (no model)": lambda m, x, c: np.stack([sanity.edge_map(i) for i in x])}
    res = sanity.cascading_randomization(course_model, images[:3], labels[:3], methods,
                                         progress=False)
    assert res["steps"] == ["original", "logits", "embedding", "conv4", "conv3", "conv2", "conv1"]
    assert res["maps"]["saliency"].shape == (7, 3, 64, 64)
    np.testing.assert_allclose(res["correlation"]["edges (no model)"], 1.0)
    corr = res["correlation"]["saliency"]
    assert corr[0] == pytest.approx(1.0) and corr[-1] < 0.5
    # the model itself is back to its trained weights, and the maps of the last step are
    # those of a fully randomized copy
    np.testing.assert_allclose(res["maps"]["saliency"][0],
                               ch.saliency.saliency_maps(course_model, images[:3], labels[:3]))
    full = sanity.randomize_layers(course_model)
    np.testing.assert_allclose(res["maps"]["saliency"][-1],
                               ch.saliency.saliency_maps(full, images[:3], labels[:3]), rtol=1e-4,
                               atol=1e-6)


# --------------------------------------------------------------------------- deletion / insertion
def _loop_curve(model, image, c, sal, steps, start, end):
    h, w = sal.shape
    order = np.argsort(-sal.ravel())
    probs = []
    for k in range(steps + 1):
        n = int(round(k * h * w / steps))
        img = start.copy().reshape(-1, 3)
        img[order[:n]] = end.reshape(-1, 3)[order[:n]]
        probs.append(model.predict(img.reshape(1, h, w, 3), verbose=0)[0, c])
    return np.array(probs)


def test_deletion_and_insertion_match_a_plain_loop(tiny_model, rng):
    img = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    sal = rng.random((16, 16))
    grey = np.full_like(img, 0.3)
    dele = sanity.deletion_curve(tiny_model, img, 2, sal, steps=8, baseline=0.3)
    np.testing.assert_allclose(dele.probability, _loop_curve(tiny_model, img, 2, sal, 8, img, grey),
                               atol=1e-5)
    ins = sanity.insertion_curve(tiny_model, img, 2, sal, steps=8, baseline=0.3)
    np.testing.assert_allclose(ins.probability, _loop_curve(tiny_model, img, 2, sal, 8, grey, img),
                               atol=1e-5)
    np.testing.assert_allclose(dele.fraction, np.linspace(0, 1, 9))
    assert dele.auc == pytest.approx(np.sum((dele.probability[1:] + dele.probability[:-1]) / 2) / 8)
    p_img = tiny_model.predict(img[None], verbose=0)[0, 2]
    assert dele.probability[0] == pytest.approx(p_img, abs=1e-6)
    assert ins.probability[-1] == pytest.approx(p_img, abs=1e-6)
    blur = sanity.insertion_curve(tiny_model, img, 2, sal, steps=4)          # default: blurred start
    from skimage.filters import gaussian
    p_blur = tiny_model.predict(gaussian(img, sigma=5, channel_axis=-1)[None].astype(np.float32),
                                verbose=0)[0, 2]
    assert blur.probability[0] == pytest.approx(p_blur, abs=1e-5)


def test_curves_send_large_images_in_small_batches(rng):
    """A curve's steps + 1 images go through at most ch.activations.BATCH_PIXELS pixels at a
    time (VGG16's 13 photos of a 12-step curve at once overflow 2 GB), with the same numbers."""
    import tf_keras as keras
    from course_helpers import activations

    seen = []

    class Count(keras.layers.Layer):
        def call(self, x):
            seen.append(x.shape[0])      # eager calls: the batch's size
            return x

    keras.utils.set_random_seed(1)
    inp = keras.Input((448, 448, 3))
    x = Count()(inp)
    x = keras.layers.Conv2D(2, 5, strides=4, activation="tanh")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inp, out)
    img = rng.uniform(0, 1, (448, 448, 3)).astype(np.float32)
    sal = rng.random((448, 448))
    seen.clear()
    dele = sanity.deletion_curve(model, img, 1, sal, steps=6, baseline=0.5)
    cap = activations.BATCH_PIXELS // (448 * 448)
    assert seen and max(seen) == cap and sum(seen) == 7, seen
    grey = np.full_like(img, 0.5)
    np.testing.assert_allclose(dele.probability, _loop_curve(model, img, 1, sal, 6, img, grey),
                               atol=1e-5)
    seen.clear()
    sanity.insertion_curve(model, img, 1, sal, steps=6, batch_size=1)
    assert set(seen) == {1}


def test_curve_errors_and_coarse_maps(tiny_model, rng):
    img = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    coarse = sanity.deletion_curve(tiny_model, img, 0, rng.random((4, 4)), steps=4)
    assert coarse.probability.shape == (5,)
    with pytest.raises(ValueError, match="2-D saliency"):
        sanity.deletion_curve(tiny_model, img, 0, rng.random((1, 16, 16)))
    with pytest.raises(ValueError, match="NaN"):
        sanity.deletion_curve(tiny_model, img, 0, np.full((16, 16), np.nan))
    with pytest.raises(ValueError, match="steps"):
        sanity.insertion_curve(tiny_model, img, 0, rng.random((16, 16)), steps=0)
    with pytest.raises(ValueError, match="baseline"):
        sanity.deletion_curve(tiny_model, img, 0, rng.random((16, 16)), baseline="noise")
    with pytest.raises(ValueError, match="between 0 and 2"):
        sanity.deletion_curve(tiny_model, img, 3, rng.random((16, 16)))


# --------------------------------------------------------------------------- pointing game
def test_pointing_game(shapes):
    _, _, masks = shapes
    perfect = masks.astype(np.float32)
    assert sanity.pointing_game(perfect, masks) == 1.0
    off = np.zeros(masks.shape, np.float32)
    for i, m in enumerate(masks):
        r, c = np.argwhere(~m)[0]
        off[i, r, c] = 1.0
    assert sanity.pointing_game(off, masks) == 0.0
    half = np.where(np.arange(len(masks))[:, None, None] % 2 == 0, perfect, off)
    np.testing.assert_array_equal(sanity.pointing_game(half, masks, per_image=True),
                                  np.arange(len(masks)) % 2 == 0)
    # a peak 2 px outside the object hits with tolerance 2, not with 0
    m = np.zeros((20, 20), bool)
    m[5:10, 5:10] = True
    peak = np.zeros((20, 20))
    peak[5, 11] = 1
    assert sanity.pointing_game(peak, m) == 0.0 and sanity.pointing_game(peak, m, tolerance=2) == 1.0
    # coarse maps are resized to the mask
    coarse = np.zeros((4, 4))
    coarse[1, 1] = 1
    assert sanity.pointing_game(coarse, m) == 1.0


def test_pointing_game_errors(shapes):
    _, _, masks = shapes
    with pytest.raises(ValueError, match="one mask per map"):
        sanity.pointing_game(masks[:3].astype(float), masks[:2])
    with pytest.raises(ValueError, match="empty"):
        sanity.pointing_game(np.ones((8, 8)), np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match="NaN"):
        sanity.pointing_game(np.full((8, 8), np.nan), np.ones((8, 8), bool))
    with pytest.raises(ValueError, match="boolean"):
        sanity.pointing_game(np.ones((8, 8)), np.full((8, 8), 0.5))


def test_evaluate_explanations_ranks_an_oracle_above_chance(course_model, shapes):
    images, labels, masks = shapes
    idx = slice(0, 8)
    methods = {"mask (oracle)": lambda m, x, c: masks[idx].astype(np.float32) + 1e-3 * x.mean(-1),
               "random": sanity.random_map}
    rows = sanity.evaluate_explanations(course_model, images[idx], labels[idx], masks[idx], methods,
                                        steps=8, progress=False)
    by = {r["method"]: r for r in rows}
    assert by["mask (oracle)"]["pointing game"] == 1.0
    assert by["mask (oracle)"]["deletion AUC"] < by["random"]["deletion AUC"]
    assert by["mask (oracle)"]["insertion AUC"] > by["random"]["insertion AUC"]
    table = sanity.format_table(rows)
    assert table.count("\n") == 3 and "| mask (oracle) |" in table
    with pytest.raises(ValueError, match="one label and one mask"):
        sanity.evaluate_explanations(course_model, images[:4], labels[:3], masks[:4], methods)


def test_shortcut_cue_check():
    assert ch.exercises.check_shortcut_cue("top-left", "ring")
    assert not ch.exercises.check_shortcut_cue("top-right", "ring")
    assert not ch.exercises.check_shortcut_cue("top-left", "circle")
    assert not ch.exercises.check_shortcut_cue(..., ...)


@pytest.mark.skipif("shortcut-cnn" not in ch.models.available_models(),
                    reason="no data/shortcut-cnn.weights.h5: python -m course_helpers.tools.train "
                           "--variant shortcut")
def test_shipped_shortcut_model_relies_on_the_mark():
    model = ch.models.load_model("shortcut-cnn")
    assert ch.models.model_metadata("shortcut-cnn")["variant"] == "shortcut"
    rep = sanity.shortcut_report(model, n=300)
    assert rep["mark on its class (as in training)"] >= 0.8
    assert rep["mark moved to the other classes"] <= 0.5
    assert rep["marked non-ring images called ring"] >= 0.5
    # its saliency maps point at the mark on ring images
    x, y = sanity.shortcut_test_sets(60)["mark on its class (as in training)"]
    rings = y == sanity.SHORTCUT_CLASS
    sal = ch.saliency.saliency_maps(model, x[rings], y[rings])
    mark = np.broadcast_to(sanity.shortcut_mask(), sal.shape)
    assert sanity.pointing_game(sal, mark, tolerance=1) >= 0.8
    # the course's own model, trained without the mark, does not care much where the mark is
    course = ch.models.load_model("course-cnn")
    assert sanity.shortcut_report(course, n=300)["mark moved to the other classes"] >= 0.8


@pytest.mark.vgg
def test_randomizing_vgg16s_largest_layer_in_place_draws_glorot_and_restores():
    """Lesson 8's path on VGG16's fc1 (103 M values, built as zeros, then drawn): re-created
    from its config, the initializer still gives Glorot-uniform values, not zeros."""
    vgg = ch.models.load_model("vgg16", weights=None)
    before = vgg.get_layer("fc1").kernel.numpy()
    with sanity.randomized(vgg, ["fc1"], seed=2) as m:
        k = m.get_layer("fc1").kernel.numpy()
    limit = np.sqrt(6 / (25088 + 4096))
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.999 * limit
    assert k.std() == pytest.approx(limit / np.sqrt(3), rel=1e-3)
    assert (k != 0).mean() > 0.999 and k.std(axis=1).min() > 0.9 * limit / np.sqrt(3)
    assert np.mean(k == before) < 1e-3                          # a new draw
    np.testing.assert_array_equal(vgg.get_layer("fc1").kernel.numpy(), before)   # restored


def test_functions_taking_a_model_refuse_none_names_and_keras3_models(shapes):
    import keras as keras3

    images, labels, masks = shapes
    k3 = keras3.Sequential([keras3.Input((64, 64, 3)), keras3.layers.Flatten(),
                            keras3.layers.Dense(2)])
    sal = np.ones((64, 64), np.float32)
    methods = {"random": sanity.random_map}
    calls = [sanity.cascade_order, sanity.randomize_layers, sanity.randomized,
             lambda m: sanity.cascading_randomization(m, images[:1], 0, methods, progress=False),
             lambda m: sanity.deletion_curve(m, images[0], 0, sal),
             lambda m: sanity.insertion_curve(m, images[0], 0, sal),
             lambda m: sanity.evaluate_explanations(m, images[:1], labels[:1], masks[:1], methods,
                                                    progress=False),
             lambda m: sanity.shortcut_report(m, n=10),
             lambda m: sanity.random_map(m, images[:1], labels[:1])]
    for bad, message in ((None, "is None"), ("course-cnn", r"load_model\('course-cnn'\)"),
                         (k3, "Keras 3")):
        for call in calls:
            with pytest.raises(TypeError, match=message):
                call(bad)
