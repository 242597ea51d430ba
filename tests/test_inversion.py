"""Feature inversion (lesson 06): reconstructions from one layer's features, checked against
independent computations (style transfer's content loss, NumPy MSE, a by-hand Adam step)."""
import numpy as np
import pytest
import tensorflow as tf

import course_helpers as ch


@pytest.fixture(scope="module")
def held_out():
    """Shapes the model never saw in training (its evaluation seed)."""
    return ch.data.make_shapes(3, seed=ch.config.EVAL_SEED)[0]


@pytest.fixture(scope="module")
def per_layer(course_model, held_out):
    return [ch.inversion.invert_layers(course_model, img, steps=100) for img in held_out]


def test_inversion_error_rises_with_depth(per_layer, course_model):
    convs = ch.graph.conv_layer_names(course_model)
    for result in per_layer:
        assert result["layers"] == convs
        mse, ssim = result["mse"], result["ssim"]
        assert np.argmin(mse) == 0 and np.argmax(mse) == len(convs) - 1, mse
        assert np.argmax(ssim) == 0 and np.argmin(ssim) == len(convs) - 1, ssim
    mean = np.mean([r["mse"] for r in per_layer], axis=0)
    assert np.all(np.diff(mean) > 0), mean          # on average, every layer loses more


def test_errors_are_plain_mse_and_skimage_ssim(per_layer):
    from skimage.metrics import structural_similarity

    r = per_layer[0]
    for rec, mse, ssim in zip(r["images"], r["mse"], r["ssim"]):
        diff = [(float(a) - float(b)) ** 2 for a, b in zip(r["image"].ravel(), rec.ravel())]
        assert mse == pytest.approx(sum(diff) / len(diff), rel=1e-6)
        assert ssim == pytest.approx(structural_similarity(
            r["image"].astype(np.float64), rec.astype(np.float64), channel_axis=-1,
            data_range=1.0), abs=1e-9)


def test_reconstruction_in_range_and_deterministic(course_model, held_out):
    a = ch.inversion.invert(course_model, held_out[0], "conv2", steps=20, seed=3)
    b = ch.inversion.invert(course_model, held_out[0], "conv2", steps=20, seed=3)
    c = ch.inversion.invert(course_model, held_out[0], "conv2", steps=20, seed=4)
    assert a.shape == held_out[0].shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3


def test_feature_loss_decreases_and_is_the_content_loss(course_model, held_out):
    image, layer = held_out[1], "conv3"
    act = ch.graph.activation_layer(course_model, layer).name
    noise = np.random.default_rng(0).uniform(0, 1, image.shape).astype(np.float32)
    history = ch.inversion.feature_loss_history(course_model, image, layer, steps=60)
    # the first value is style transfer's content loss of the start noise (seed 0)
    assert history[0] == pytest.approx(ch.style.content_loss(noise, image, act, model=course_model),
                                       rel=1e-4)
    short = ch.inversion.invert(course_model, image, layer, steps=10)
    long = ch.inversion.invert(course_model, image, layer, steps=60)
    losses = [ch.style.content_loss(x, image, act, model=course_model) for x in (noise, short, long)]
    assert losses[0] > losses[1] > losses[2]
    assert history[-1] == pytest.approx(losses[2], rel=1e-3)
    assert history[-1] < 0.2 * history[0]


def test_one_step_is_a_by_hand_adam_step(course_model, held_out):
    # one step from the seed's noise: Adam's first step is lr * sign(gradient) (m/sqrt(v) = +-1)
    image, layer, lr, tv = held_out[2], "conv1", 0.05, 0.1
    import tf_keras as keras

    act = ch.graph.activation_layer(course_model, layer)
    fm = keras.Model(course_model.inputs, course_model.get_layer(act.name).output)
    noise = np.random.default_rng(0).uniform(0, 1, (1,) + image.shape).astype(np.float32)
    x = tf.constant(noise)
    target = fm(image[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        f = fm(x)
        sv = tf.reduce_mean((x[:, 1:] - x[:, :-1]) ** 2) + tf.reduce_mean((x[:, :, 1:] - x[:, :, :-1]) ** 2)
        loss = tf.reduce_sum((f - target) ** 2) / (tf.reduce_sum(target ** 2) + 1e-8) + tv * sv
    g = tape.gradient(loss, x).numpy()
    want = np.clip(noise - lr * g / (np.abs(g) + 1e-8), 0, 1)[0]
    got = ch.inversion.invert(course_model, image, layer, steps=1, tv=tv, lr=lr)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_any_size_model_and_converted_inputs(held_out):
    extractor = ch.style.offline_extractor(seed=1, widths=(8, 8, 8, 8))
    img = ch.data.sample_images(32)["cat"]
    rec = ch.inversion.invert(extractor, img, "block2_conv1", steps=5)
    assert rec.shape == img.shape
    model = ch.models.load_model("course-cnn")
    as_uint8 = (held_out[0] * 255).round().astype(np.uint8)
    layer_index = [lyr.name for lyr in model.layers].index("conv2")
    rec = ch.inversion.invert(model, as_uint8, layer_index, steps=3)
    assert rec.shape == (64, 64, 3)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(layer="conv9"), ValueError, "conv9"),
    (dict(layer="gap"), ValueError, "gap"),
    (dict(steps=-1), ValueError, "steps"),
    (dict(tv=-0.5), ValueError, "tv"),
    (dict(lr=0), ValueError, "lr"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(image=None), TypeError, "image"),
    (dict(model="course-cnn"), TypeError, "load_model"),
])
def test_bad_input_is_named(course_model, held_out, kwargs, error, words):
    args = dict(model=course_model, image=held_out[0], layer="conv2", steps=2)
    args.update(kwargs)
    weights = [w.copy() for w in course_model.get_weights()]
    with pytest.raises(error, match=words):
        ch.inversion.invert(**args)
    assert all(np.array_equal(a, b) for a, b in zip(weights, course_model.get_weights()))


def test_error_shapes_must_match():
    with pytest.raises(ValueError, match="one shape"):
        ch.inversion.reconstruction_error(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))


def test_plots(per_layer):
    import matplotlib.pyplot as plt

    fig = ch.inversion.plot_inversion(per_layer[0])
    assert len(fig.axes) >= 5
    fig2 = ch.inversion.plot_inversion_error(per_layer[0])
    assert len(fig2.axes[0].lines[0].get_xdata()) == 4
    plt.close("all")
