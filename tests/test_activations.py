"""course_helpers.activations (lesson 3.2): feature maps of conv layers."""
import numpy as np
import pytest
import tf_keras as keras

import course_helpers as ch
from course_helpers import activations


def test_feature_maps_match_a_plain_keras_submodel(course_model, shapes):
    img = shapes[0][5]
    for layer in ("conv1", "conv3"):
        fm = activations.feature_maps(course_model, layer, img)
        relu = course_model.get_layer(f"{layer}_relu")
        sub = keras.Model(course_model.inputs, relu.output)
        np.testing.assert_allclose(fm, sub.predict(img[None], verbose=0)[0], rtol=1e-5, atol=1e-5)
        assert fm.ndim == 3 and fm.min() >= 0


def test_feature_maps_by_numpy_convolution(tiny_model, rng):
    img = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    fm = activations.feature_maps(tiny_model, "c1", img)
    kernel, bias = tiny_model.get_layer("c1").get_weights()
    padded = np.pad(img, ((1, 1), (1, 1), (0, 0)))
    ref = np.zeros((16, 16, 4))
    for i in range(16):
        for j in range(16):
            ref[i, j] = np.tensordot(padded[i:i + 3, j:j + 3], kernel, axes=3) + bias
    np.testing.assert_allclose(fm, np.tanh(ref), atol=1e-5)


def test_feature_maps_accepts_uint8_gray_and_other_sizes(course_model, shapes):
    img = shapes[0][0]
    ref = activations.feature_maps(course_model, "conv2", img)
    u8 = (img * 255).round().astype(np.uint8)
    np.testing.assert_allclose(activations.feature_maps(course_model, "conv2", u8), ref, atol=0.05)
    gray = activations.feature_maps(course_model, "conv2", img.mean(-1))
    assert gray.shape == ref.shape == (32, 32, 32)
    big = ch.data.sample_images(100)["cat"]
    assert activations.feature_maps(course_model, "conv4", big).shape == (8, 8, 96)


def test_feature_maps_errors(course_model, shapes):
    img = shapes[0][0]
    with pytest.raises(ValueError, match="not a Conv2D.*conv1, conv2, conv3, conv4"):
        activations.feature_maps(course_model, "embedding", img)
    with pytest.raises(ValueError, match="No layer named"):
        activations.feature_maps(course_model, "conv7", img)
    with pytest.raises(ValueError, match="batch"):
        activations.feature_maps(course_model, "conv1", shapes[0][:3])
    bad = img.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        activations.feature_maps(course_model, "conv1", bad)
    fm = activations.feature_maps(course_model, "conv1", img)
    with pytest.raises(ValueError, match="between 0 and 15"):
        activations.plot_feature_map(img, fm, 16)


def test_layer_activations_batched_equals_one_by_one_and_is_cached(course_model, shapes):
    x = shapes[0][:10]
    ch.widgets.clear_cache()
    acts = activations.layer_activations(course_model, "conv2", x, batch_size=4)
    one = np.stack([activations.feature_maps(course_model, "conv2", im) for im in x])
    np.testing.assert_allclose(acts, one, rtol=1e-4, atol=1e-5)
    assert ch.widgets.cache_info()["entries"] == 1
    again = activations.layer_activations(course_model, "conv2", x.copy(), batch_size=4)
    assert again is acts and ch.widgets.cache_info()["entries"] == 1


def test_layer_activations_of_some_channels_are_those_of_the_whole_layer(course_model, shapes):
    x = shapes[0][:12]
    ch.widgets.clear_cache()
    whole = activations.layer_activations(course_model, "conv3", x)
    some = activations.layer_activations(course_model, "conv3", x, channels=[7, 0, 7, 63])
    np.testing.assert_array_equal(some, whole[..., [7, 0, 7, 63]])
    # the cache holds the small array under its own key, and hands it back
    assert ch.widgets.cache_info()["entries"] == 2
    assert activations.layer_activations(course_model, "conv3", x, channels=(7, 0, 7, 63)) is some
    with pytest.raises(ValueError, match="channel 64 is out of range.*64 channels"):
        activations.layer_activations(course_model, "conv3", x, channels=[1, 64])
    with pytest.raises(ValueError, match="channels is empty"):
        activations.layer_activations(course_model, "conv3", x, channels=[])
    with pytest.raises(TypeError, match="channels must be a list"):
        activations.layer_activations(course_model, "conv3", x, channels=5)


def test_layer_activations_of_large_images_run_in_small_batches(monkeypatch, rng):
    keras.utils.set_random_seed(0)
    inp = keras.Input((224, 224, 3))
    out = keras.layers.Conv2D(2, 3, strides=8, padding="same", activation="relu", name="c")(inp)
    model = keras.Model(inp, out)
    seen = []
    real = activations.activation_model

    def spy(model_, layer):
        sub = real(model_, layer)

        def call(batch, training=False):
            seen.append(len(batch))
            return sub(batch, training=training)
        call.output_shape = sub.output_shape
        return call

    monkeypatch.setattr(activations, "activation_model", spy)
    x = rng.uniform(0, 1, (19, 224, 224, 3)).astype(np.float32)
    ch.widgets.clear_cache()
    acts = activations.layer_activations(model, "c", x, batch_size=64)
    assert seen == [4, 4, 4, 4, 3]     # 64 asked, 4 at 224 px (activations.BATCH_PIXELS)
    ref = real(model, "c")(x, training=False).numpy()
    np.testing.assert_allclose(acts, ref, rtol=1e-5, atol=1e-6)


def test_plots_and_explorer(course_model, shapes):
    import matplotlib.pyplot as plt

    fm = activations.feature_maps(course_model, "conv3", shapes[0][1])
    fig = activations.plot_feature_map(shapes[0][1], fm, 3)
    assert len(fig.axes) >= 3
    grid = activations.plot_channel_grid(fm)
    img = grid.axes[0].images[0].get_array()
    assert img.shape == (4 * 16 + 3 * 2, 16 * 16 + 15 * 2)   # 64 tiles of 16x16, 16 per row
    box = activations.activation_explorer(course_model, {"a": shapes[0][0], "b": shapes[0][1]})
    layer, channel = box.children[1], box.children[2]
    layer.value = "conv4"
    assert channel.max == 95
    channel.value = 90
    assert "channel 90" in box.state["figure"].axes[1].get_title()
    plt.close("all")
