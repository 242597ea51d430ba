"""course_helpers.filters beyond the metrics of test_course_cnn: tiles, colour order, responses,
plots, the explorer and the errors of lesson 1."""
import matplotlib
import numpy as np
import pytest
import tf_keras as keras

import course_helpers as ch  # noqa: F401  (sets up tf-keras)
from course_helpers import filters, models


def test_per_kernel_tiles_stretch_each_kernel_to_0_1(rng):
    k = rng.normal(size=(5, 5, 3, 6)) * np.array([0.01, 0.1, 1, 10, 100, 3.0])
    tiles = filters.kernel_tiles(k, "per_kernel")
    assert tiles.shape == (6, 5, 5, 3)
    for i in range(6):
        ki = k[..., i]
        np.testing.assert_allclose(tiles[i], (ki - ki.min()) / (ki.max() - ki.min()), atol=1e-5)
        assert tiles[i].min() == pytest.approx(0) and tiles[i].max() == pytest.approx(1)


def test_shared_tiles_keep_relative_strength(rng):
    k = rng.normal(size=(3, 3, 3, 4)) * np.array([1.0, 0.5, 0.1, 2.0])
    tiles = filters.kernel_tiles(k, "shared")
    assert tiles.min() >= 0 and tiles.max() <= 1
    biggest = np.abs(k).max()
    np.testing.assert_allclose(tiles, 0.5 + 0.5 * np.moveaxis(k, -1, 0) / biggest, atol=1e-6)
    spread = [np.ptp(t) for t in tiles]
    assert spread[2] < spread[1] < spread[0] < spread[3]  # weak kernels look flatter
    with pytest.raises(ValueError, match="per_kernel"):
        filters.kernel_tiles(k, "global")
    with pytest.raises(ValueError, match="k_h, k_w, 3"):
        filters.kernel_tiles(k[:, :, :2], "shared")


def test_first_layer_filters_are_the_layer_weights(tiny_model):
    k = filters.first_layer_filters(tiny_model)
    np.testing.assert_array_equal(k, tiny_model.get_layer("c1").kernel.numpy())
    assert k.shape == (3, 3, 3, 4)


def test_bad_layers_give_clear_errors(tiny_model):
    with pytest.raises(ValueError, match="Dense.*not a Conv2D"):
        filters.first_layer_filters(tiny_model, "fc")
    with pytest.raises(ValueError, match="No layer named 'conv9'.*c1"):
        filters.first_layer_filters(tiny_model, "conv9")
    with pytest.raises(ValueError, match="4 input channels"):
        filters.first_layer_filters(tiny_model, "c2")
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Conv2D layer"):
        filters.first_layer_filters(dense_only)
    with pytest.raises(ValueError, match="between 0 and 3"):
        filters.kernel_response(tiny_model, np.zeros((16, 16, 3)), 4)


def test_vgg_style_bgr_kernels_are_drawn_in_rgb_order():
    inp = keras.Input((8, 8, 3))
    x = models.ImageNetPreprocess()(inp)  # RGB -> BGR, as in VGG
    conv = keras.layers.Conv2D(1, 3, padding="same", use_bias=False, name="conv")
    model = keras.Model(inp, conv(x))
    w = np.zeros((3, 3, 3, 1), np.float32)
    w[1, 1, 2, 0] = 1.0  # reads conv input channel 2, which is the image's red channel
    conv.set_weights([w])
    red = np.zeros((1, 8, 8, 3), np.float32)
    red[..., 0] = 1.0
    blue = red[..., ::-1].copy()
    assert float(model(red)[0, 4, 4, 0] - model(blue)[0, 4, 4, 0]) == pytest.approx(255.0)
    rgb = filters.rgb_filters(model)
    assert rgb[1, 1, 0, 0] == 1.0 and rgb[..., 1:, :].sum() == 0  # drawn red
    np.testing.assert_array_equal(filters.first_layer_filters(model), w)  # raw order kept


def _conv_same_numpy(img, w, b):
    kh, kw = w.shape[:2]
    ph, pw = (kh - 1) // 2, (kw - 1) // 2
    pad = np.pad(img, ((ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)))
    out = np.zeros(img.shape[:2])
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            out[i, j] = (pad[i:i + kh, j:j + kw] * w).sum() + b
    return out


def test_kernel_response_matches_a_numpy_convolution(tiny_model, rng):
    img = rng.uniform(size=(16, 16, 3)).astype(np.float32)
    w, b = tiny_model.get_layer("c1").get_weights()
    for k in (0, 3):
        expected = np.tanh(_conv_same_numpy(img, w[..., k], b[k]))
        np.testing.assert_allclose(filters.kernel_response(tiny_model, img, k), expected, atol=1e-5)
    # uint8 and other sizes are converted like everywhere in the course
    u8 = (img * 255).round().astype(np.uint8)
    assert filters.kernel_response(tiny_model, u8, 0).shape == (16, 16)


def test_kernel_response_is_after_batch_norm_and_relu(rng):
    model = models.build_course_cnn(widths=(4, 4, 4, 4), seed=1)
    bn = model.get_layer("conv1_bn")
    bn.set_weights([rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4) * 0.1,
                    rng.uniform(0.5, 2, 4)])
    img = rng.uniform(size=(64, 64, 3)).astype(np.float32)
    resp = filters.kernel_response(model, img, 2)
    raw = keras.Model(model.inputs, model.get_layer("conv1").output)(img[None])[0, ..., 2].numpy()
    g, beta, mean, var = (a[2] for a in bn.get_weights())
    expected = np.maximum(g * (raw - mean) / np.sqrt(var + bn.epsilon) + beta, 0)
    assert resp.shape == (32, 32)
    np.testing.assert_allclose(resp, expected, atol=1e-5)


def test_plots_return_figures(tiny_model):
    fig = filters.plot_filter_grid(tiny_model, "shared")
    assert isinstance(fig, matplotlib.figure.Figure)
    fig = filters.plot_trained_vs_untrained(tiny_model, ncols=4)
    assert len(fig.axes) == 3
    fig = filters.plot_second_layer_kernel(tiny_model, kernel=5)
    assert sum(1 for ax in fig.axes if ax.images) == 4  # one slice per input channel of c2
    assert "4 input channels" in fig._suptitle.get_text()
    fig = filters.plot_kernel(tiny_model, 1, np.zeros((16, 16, 3)))
    assert sum(1 for ax in fig.axes if ax.images) == 6
    matplotlib.pyplot.close("all")


def test_untrained_twin_has_same_shapes_and_fresh_weights(tiny_model):
    twin = filters.untrained_twin(tiny_model)
    a, b = filters.first_layer_filters(tiny_model), filters.first_layer_filters(twin)
    assert a.shape == b.shape and not np.allclose(a, b)


def test_kernel_explorer_redraws_on_kernel_change(tiny_model):
    photos = {"zeros": np.zeros((16, 16, 3)), "ones": np.ones((20, 20, 3))}
    box = filters.kernel_explorer(tiny_model, photos)
    first, first_png = box.state["figure"], box.state["png"]
    box.children[0].value = 2
    assert box.state["values"]["kernel"] == 2 and box.state["png"] != first_png
    assert box.state["figure"] is first          # one figure, updated in place
    assert box.state["figure"].axes[0].get_title() == "kernel 2 (RGB)"
    rgb = box.state["figure"].axes[0].images[0].get_array()
    np.testing.assert_allclose(rgb, filters.kernel_tiles(
        filters.rgb_filters(tiny_model)[..., 2:3], "per_kernel")[0])
    with pytest.raises(ValueError, match="photos is empty.*ch.data.sample_images"):
        filters.kernel_explorer(tiny_model, {})
    matplotlib.pyplot.close("all")


def test_untrained_twin_of_vgg_rebuilds_only_the_first_layer():
    import course_helpers as ch

    vgg = ch.models.load_model("vgg16", weights=None)
    twin = filters.untrained_twin(vgg)
    assert twin.count_params() < 10_000  # not a second 138 M-weight network
    assert filters.rgb_filters(twin).shape == filters.rgb_filters(vgg).shape == (3, 3, 3, 64)
    assert not np.allclose(filters.first_layer_filters(twin), filters.first_layer_filters(vgg))
    assert filters._reverses_channels(twin, filters.first_layer(twin))  # keeps the BGR flip


def _keras3_model():
    import keras   # Keras 3, not the tf-keras this course uses

    inp = keras.Input((16, 16, 3))
    return keras.Model(inp, keras.layers.Conv2D(2, 3)(inp))


@pytest.mark.parametrize("bad, message", [
    (None, r"model is None.*load_model\('course-cnn'\)"),
    ("course-cnn", r"string 'course-cnn'.*ch.models.load_model\('course-cnn'\)"),
    ("keras3", r"Keras 3 model.*tf_keras")])
def test_a_model_that_is_not_a_loaded_tf_keras_model_is_named(bad, message):
    bad = _keras3_model() if bad == "keras3" else bad
    img = np.zeros((16, 16, 3))
    calls = [lambda: filters.first_layer(bad), lambda: filters.first_layer_filters(bad),
             lambda: filters.rgb_filters(bad), lambda: filters.untrained_twin(bad),
             lambda: filters.kernel_response(bad, img, 0), lambda: filters.plot_kernel(bad, 0),
             lambda: filters.kernel_explorer(bad, [img]), lambda: filters.second_layer(bad),
             lambda: filters.plot_second_layer_kernel(bad), lambda: filters.plot_trained_vs_untrained(bad)]
    for call in calls:
        with pytest.raises(TypeError, match=message):
            call()
    with pytest.raises(TypeError, match=message.replace("model is", "kernels_or_model is")):
        filters.plot_filter_grid(bad)
    matplotlib.pyplot.close("all")


def test_a_layer_given_by_index_is_that_layer(tiny_model, rng):
    c1 = [lyr.name for lyr in tiny_model.layers].index("c1")
    for index in (c1, np.int64(c1)):
        np.testing.assert_array_equal(filters.first_layer_filters(tiny_model, index),
                                      tiny_model.get_layer("c1").kernel.numpy())
    img = rng.uniform(size=(16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(filters.kernel_response(tiny_model, img, 2, layer=c1),
                                  filters.kernel_response(tiny_model, img, 2, layer="c1"))
    with pytest.raises(ValueError, match="Flatten, not a Conv2D.*c1, c2"):
        filters.first_layer_filters(tiny_model, [lyr.name for lyr in tiny_model.layers].index("flat"))
    with pytest.raises(ValueError, match="layer index 40 is out of range"):
        filters.first_layer_filters(tiny_model, 40)


def test_empty_photos_and_bad_counts_are_named(tiny_model):
    for empty in ({}, [], np.zeros((0, 16, 16, 3))):
        with pytest.raises(ValueError, match="photos is empty"):
            filters.kernel_explorer(tiny_model, empty)
    with pytest.raises(TypeError, match="ncols must be a whole number, got float 2.5"):
        filters.plot_filter_grid(tiny_model, ncols=2.5)
    assert len(filters.plot_filter_grid(tiny_model, ncols=2.0).axes) == 1   # 2.0 is taken as 2
    matplotlib.pyplot.close("all")


def _share_by_bins(kernels, low_bins):
    """Low-frequency share computed bin by bin with a plain DFT (no np.fft), for checking."""
    kh, kw, c, n = kernels.shape
    out = []
    for i in range(n):
        low = total = 0.0
        for ch_ in range(c):
            x = kernels[:, :, ch_, i] - kernels[:, :, ch_, i].mean()
            for u in range(kh):
                for v in range(kw):
                    yy, xx = np.mgrid[:kh, :kw]
                    coef = (x * np.exp(-2j * np.pi * (u * yy / kh + v * xx / kw))).sum()
                    power = abs(coef) ** 2
                    total += power
                    low += power * ((u, v) in low_bins)
        out.append(low / total)
    return np.array(out)


def test_low_frequency_share_of_7x7_kernels_is_the_one_cycle_band(rng):
    # 7x7 (course-cnn, ResNet50): the waves of at most one cycle per kernel on each axis
    kernels = rng.normal(size=(7, 7, 3, 5))
    band = {(u, v) for u in (0, 1, 6) for v in (0, 1, 6)}
    np.testing.assert_allclose(filters.low_frequency_share(kernels), _share_by_bins(kernels, band),
                               atol=1e-6)


def test_low_frequency_share_of_vgg_sized_3x3_kernels_is_not_zero(rng):
    # a 3x3 kernel has waves of 0 or 1 cycle only: the axis ones count as low, diagonals not
    kernels = rng.normal(size=(3, 3, 3, 6))
    axis = {(0, 1), (0, 2), (1, 0), (2, 0)}
    share = filters.low_frequency_share(kernels)
    np.testing.assert_allclose(share, _share_by_bins(kernels, axis), atol=1e-6)
    yy, xx = np.mgrid[:3, :3] - 1
    ramp = np.stack([xx + 0.5 * yy] * 3, -1)[..., None].astype(float)      # a smooth edge
    checker = np.stack([(-1.0) ** (xx + yy)] * 3, -1)[..., None]           # pixel-sized noise
    assert filters.low_frequency_share(ramp)[0] == pytest.approx(1.0)
    assert filters.low_frequency_share(checker)[0] < 0.3
    noise = rng.normal(size=(3, 3, 3, 4000))
    assert np.median(filters.low_frequency_share(noise)) == pytest.approx(4 / 8, abs=0.03)
    report = filters.smoothness_report(ramp, noise)    # a number, not 0/0
    assert report["smoothness_ratio"] == pytest.approx(1.0 / np.median(
        filters.low_frequency_share(noise)), rel=1e-6)
