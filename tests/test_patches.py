"""course_helpers.patches (lesson 3.3): receptive fields and top patches."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import course_helpers as ch
from course_helpers import patches
from test_graph import gradient_box as empirical_box   # the brute-force box, written once


def predicted_box_in_image(model, layer, row, col):
    top, left, bottom, right = patches.unit_box(model, layer, row, col)
    h, w = model.inputs[0].shape[1:3]
    return max(top, 0), max(left, 0), min(bottom, h), min(right, w)


def test_course_cnn_receptive_fields_by_hand():
    model = ch.models.build_course_cnn()
    # conv1 7x7/2 'same' on 64 px pads 2 before: unit 0 sees pixels -2..4 (centre 1).
    assert patches.receptive_field(model, "conv1") == (7, 2, 1)
    assert patches.receptive_field(model, "conv2") == (11, 2, 1)
    assert patches.receptive_field(model, "conv3") == (21, 4, 2)
    assert patches.receptive_field(model, "conv4") == (41, 8, 4)


@pytest.mark.parametrize("layer,unit", [("conv1", (5, 7)), ("conv2", (9, 4)),
                                         ("conv3", (6, 8)), ("conv4", (3, 4)), ("conv4", (0, 7))])
def test_receptive_field_matches_gradient_support_course_cnn(layer, unit):
    model = ch.models.build_course_cnn()
    assert empirical_box(model, layer, *unit) == predicted_box_in_image(model, layer, *unit)


def test_receptive_field_matches_gradient_support_tiny(tiny_model):
    # c1 3x3 same -> pool 2 -> c2 3x3 valid: size 8, stride 2, unit 0 centred at 2.5.
    assert patches.receptive_field(tiny_model, "c2") == (8, 2, 2.5)
    for unit in [(0, 0), (2, 3), (5, 5)]:
        assert empirical_box(tiny_model, "c2", *unit) == predicted_box_in_image(tiny_model, "c2", *unit)


def test_receptive_field_with_stride_dilation_valid_and_same():
    keras.utils.set_random_seed(1)
    inp = keras.Input((41, 37, 3))
    x = keras.layers.Conv2D(4, 5, strides=2, padding="valid", activation="tanh", name="a")(inp)
    x = keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same", activation="tanh", name="b")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="p")(x)
    x = keras.layers.Conv2D(4, (3, 2), strides=(1, 2), padding="same", activation="tanh", name="c")(x)
    model = keras.Model(inp, x)
    size, stride, start = patches.receptive_field(model, "c")
    assert size == (25, 21) and stride == (4, 8)   # by hand: 5 -> 13 -> 17 -> 25 (rows) / 21 (cols)
    h, w = model.get_layer("c").output_shape[1:3]
    for unit in [(0, 0), (h // 2, w // 2), (h - 1, w - 1), (3, 1)]:
        assert empirical_box(model, "c", *unit, n_inputs=24) == predicted_box_in_image(model, "c", *unit)


def test_receptive_field_of_a_pooling_layer_and_by_index(tiny_model):
    # c1 3x3 same -> pool 2: size 4, stride 2, unit 0 centred at 0.5
    assert patches.receptive_field(tiny_model, "p1") == (4, 2, 0.5)
    assert patches.receptive_field(tiny_model, 2) == patches.receptive_field(tiny_model, "p1")
    for unit in [(0, 0), (3, 5), (7, 7)]:
        assert empirical_box(tiny_model, "p1", *unit) == predicted_box_in_image(tiny_model, "p1", *unit)


def test_receptive_field_bad_layers(tiny_model):
    with pytest.raises(ValueError, match="not a Conv2D or pooling layer.*c1, c2"):
        patches.receptive_field(tiny_model, "flat")
    with pytest.raises(ValueError, match="c1, c2"):
        patches.receptive_field(tiny_model, "fc")
    with pytest.raises(ValueError, match="No layer named"):
        patches.receptive_field(tiny_model, "conv9")


def test_vgg16_receptive_field_of_last_conv():
    vgg = ch.models.load_model("vgg16", weights=None)
    assert patches.receptive_field(vgg, "block5_conv3")[:2] == (196, 16)   # published value


def test_top_patches_are_the_strongest_units_with_true_crops(tiny_model, rng):
    images = rng.uniform(0, 1, (10, 16, 16, 3)).astype(np.float32)
    res = patches.top_patches(tiny_model, "c2", 3, images, k=7)
    # independent activations: a plain Keras sub-model, image by image
    sub = keras.Model(tiny_model.inputs, tiny_model.get_layer("c2").output)
    acts = np.stack([sub.predict(im[None], verbose=0)[0, ..., 3] for im in images])
    expected = np.sort(acts.ravel())[::-1][:7]
    np.testing.assert_allclose(res.activation, expected, rtol=1e-5, atol=1e-6)
    size = 8
    for p in res:
        assert acts[p.image_index][p.position] == pytest.approx(p.activation, abs=1e-6)
        assert p.crop.shape == (size, size, 3)
        # crop = the image around the unit centre 2.5 + 2*pos, grey outside
        padded = np.pad(images[p.image_index], ((8, 8), (8, 8), (0, 0)), constant_values=0.5)
        top, left = 2 * p.position[0] - 1, 2 * p.position[1] - 1
        np.testing.assert_array_equal(p.crop, padded[top + 8:top + 16, left + 8:left + 16])


def test_crop_is_all_the_unit_sees(course_model, shapes):
    """Scramble every pixel outside a top patch's box: the unit's activation must not change."""
    x = shapes[0][:24]
    rng = np.random.default_rng(3)
    res = patches.top_patches(course_model, "conv3", 11, x, k=5)
    sub = ch.activations.activation_model(course_model, "conv3")
    for p in res:
        img = x[p.image_index]
        noisy = rng.uniform(0, 1, img.shape).astype(np.float32)
        t, l, b, r = p.box
        t, l = max(t, 0), max(l, 0)
        noisy[t:b, l:r] = img[t:b, l:r]
        both = sub(np.stack([img, noisy]), training=False).numpy()[:, p.position[0], p.position[1], 11]
        np.testing.assert_allclose(both, p.activation, rtol=1e-4, atol=1e-5)
        # the crop holds exactly those pixels, grey where the box leaves the image
        bt, bl = p.box[0], p.box[1]
        b, r = min(b, 64), min(r, 64)
        np.testing.assert_array_equal(p.crop[t - bt:b - bt, l - bl:r - bl], img[t:b, l:r])
        outside = np.ones(p.crop.shape[:2], bool)
        outside[t - bt:b - bt, l - bl:r - bl] = False
        assert np.all(p.crop[outside] == 0.5)


def test_max_per_image_and_cache(course_model, shapes):
    x = shapes[0][:32]
    ch.widgets.clear_cache()
    one = patches.top_patches(course_model, "conv4", 2, x, k=9, max_per_image=1)
    assert len(set(one.image_index.tolist())) == 9
    assert np.all(np.diff(one.activation) <= 0)
    entries = ch.widgets.cache_info()["entries"]
    patches.top_patches(course_model, "conv4", 50, x, k=9)     # another channel: no new work
    assert ch.widgets.cache_info()["entries"] == entries


def test_top_patches_of_a_scan_are_those_of_the_whole_layer(course_model, shapes):
    x = shapes[0][:40]
    ch.widgets.clear_cache()
    scan = [3, 50, 17]
    for c in scan:
        whole = patches.top_patches(course_model, "conv4", c, x, k=6, max_per_image=1)
        part = patches.top_patches(course_model, "conv4", c, x, k=6, max_per_image=1, scan=scan)
        np.testing.assert_array_equal(part.image_index, whole.image_index)
        np.testing.assert_array_equal(part.position, whole.position)
        np.testing.assert_array_equal(part.activation, whole.activation)
        np.testing.assert_array_equal(part.crops, whole.crops)
        assert part.channel == c
    # two cache entries: the whole layer (96 channels) and the scan (3), nothing per channel
    sizes = sorted(ch.widgets.cached(key, None).shape[-1] for key in ch.widgets.cache_info()["keys"])
    assert sizes == [3, 96]
    with pytest.raises(ValueError, match="channel 4 is not in scan"):
        patches.top_patches(course_model, "conv4", 4, x, scan=scan)
    # purity of the same channels: the same numbers as from the whole layer, from the scan's cache
    y = shapes[1][:40]
    whole = patches.channel_class_purity(course_model, "conv4", x, y)
    part = patches.channel_class_purity(course_model, "conv4", x, y, channels=scan)
    np.testing.assert_array_equal(part, whole[scan])
    assert ch.widgets.cache_info()["entries"] == 2
    fig = patches.plot_top_patches(course_model, "conv4", [50, 3], x, k=4, scan=scan)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["ch 50", "ch 3"]
    assert ch.widgets.cache_info()["entries"] == 2
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_large_crops_are_shrunk_for_drawing_only(rng):
    keras.utils.set_random_seed(2)
    inp = keras.Input((160, 160, 3))
    x = inp
    for i in range(3):      # receptive field 9 + 8 * 4 + 8 * 16 = 169 px, larger than DRAW_SIDE
        x = keras.layers.Conv2D(2, 9, strides=4, padding="same", activation="relu", name=f"c{i}")(x)
    model = keras.Model(inp, x)
    images = rng.uniform(0, 1, (5, 160, 160, 3)).astype(np.float32)
    res = patches.top_patches(model, "c2", 1, images, k=3, max_per_image=1)
    assert res.crops.shape[1:] == (169, 169, 3)           # the crops themselves keep every pixel
    fig = patches.plot_top_patches(model, "c2", [1], images, k=3)
    drawn = fig.axes[0].images[0].get_array()
    side, gap = patches.DRAW_SIDE, max(2, patches.DRAW_SIDE // 12)
    assert drawn.shape == (side, 3 * side + 2 * gap, 3)
    for j in range(3):      # each tile is its crop, smaller: the same mean colour
        tile = np.asarray(drawn[:, j * (side + gap):j * (side + gap) + side])
        np.testing.assert_allclose(tile.mean(axis=(0, 1)), res.crops[j].mean(axis=(0, 1)), atol=0.01)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_top_patches_bad_input(tiny_model, rng):
    images = rng.uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="between 0 and 5"):
        patches.top_patches(tiny_model, "c2", 6, images)
    with pytest.raises(TypeError, match="channel must be a whole number, got float 1.5"):
        patches.top_patches(tiny_model, "c2", 1.5, images)
    with pytest.raises(ValueError, match="not a Conv2D"):
        patches.top_patches(tiny_model, "flat", 0, images)
    bad = images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        patches.top_patches(tiny_model, "c2", 0, bad)


def test_deeper_channels_are_more_class_selective(course_model):
    x, y, _ = ch.data.make_shapes(300, seed=7)       # cheap: one pass of 300 small images
    shallow = patches.channel_class_purity(course_model, "conv1", x, y)
    deep = patches.channel_class_purity(course_model, "conv4", x, y)
    assert shallow.shape == (16,) and deep.shape == (96,)
    # brute force for one channel: rank images by their strongest conv4 unit
    acts = ch.activations.feature_maps
    best = np.array([acts(course_model, "conv4", im)[..., 5].max() for im in x])
    top = np.argsort(-best, kind="stable")[:9]
    assert deep[5] == pytest.approx(np.bincount(y[top]).max() / 9)
    assert deep.mean() > shallow.mean() + 0.15       # measured: 0.62 vs 0.32, chance ~0.3


def test_exercise_checks_lesson03(capsys):
    assert ch.exercises.check_feature_map_shape("conv3", (16, 16, 64))
    assert not ch.exercises.check_feature_map_shape("conv3", (32, 32, 64))
    out = capsys.readouterr().out
    assert "(16, 16, 64)" not in out
