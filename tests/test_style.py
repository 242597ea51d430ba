"""Lesson 4.1 — style transfer: Gram matrices, the optimization, the one-pass network."""
import io
import json
import shutil

import numpy as np
import pytest

import course_helpers as ch
from course_helpers import style as st
from course_helpers.style import extractors, transfer
from course_helpers.tools import stylizer as tool



@pytest.fixture(scope="module")
def extractor():
    return st.offline_extractor()


@pytest.fixture(scope="module")
def pair():
    photos = ch.data.sample_images(48)
    return photos["cat"], st.style_images(48)["flower"]


def _numpy_style_loss(model, image, style, layers):
    """Relative Gram error, computed with NumPy from the raw feature maps."""
    fm = st.feature_model(model, layers)
    total = 0.0
    for fi, fs in zip(fm(image[None]), fm(style[None])):
        fi, fs = np.asarray(fi[0], np.float64), np.asarray(fs[0], np.float64)
        gi = np.einsum("hwc,hwd->cd", fi, fi) / (fi.shape[0] * fi.shape[1])
        gs = np.einsum("hwc,hwd->cd", fs, fs) / (fs.shape[0] * fs.shape[1])
        total += ((gi - gs) ** 2).sum() / (gs ** 2).sum()
    return total / len(layers)


# --------------------------------------------------------------------------- Gram matrix
def test_gram_matrix_matches_numpy(rng):
    f = rng.normal(size=(2, 5, 7, 4)).astype(np.float32)
    want = np.stack([x.reshape(-1, 4).T @ x.reshape(-1, 4) / 35 for x in f.astype(np.float64)])
    np.testing.assert_allclose(st.gram_matrix(f).numpy(), want, rtol=1e-5, atol=1e-6)
    loop = np.zeros((4, 4))
    for i in range(5):
        for j in range(7):
            loop += np.outer(f[0, i, j], f[0, i, j])
    np.testing.assert_allclose(st.gram_matrix(f[0]).numpy(), loop / 35, rtol=1e-5, atol=1e-6)


def test_gram_matrix_forgets_positions(rng):
    f = rng.normal(size=(6, 6, 3)).astype(np.float32)
    shuffled = f.reshape(36, 3)[rng.permutation(36)].reshape(6, 6, 3)
    np.testing.assert_allclose(st.gram_matrix(f).numpy(), st.gram_matrix(shuffled).numpy(),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="features must be"):
        st.gram_matrix(np.zeros((4, 4)))


def test_style_loss_matches_numpy(extractor, pair):
    content, style = pair
    layers = st.default_layers(extractor)[1]
    want = _numpy_style_loss(extractor, content, style, layers)
    assert st.style_loss(content, style, model=extractor) == pytest.approx(want, rel=1e-3)
    assert st.style_loss(style, style, model=extractor) == pytest.approx(0.0, abs=1e-6)


def test_content_loss_matches_numpy(extractor, pair):
    content, style = pair
    layer = st.default_layers(extractor)[0]
    fm = st.feature_model(extractor, [layer])
    a, b = (np.asarray(fm(x[None]), np.float64) for x in (style, content))
    want = ((a - b) ** 2).sum() / (b ** 2).sum()
    assert st.content_loss(style, content, model=extractor) == pytest.approx(want, rel=1e-4)
    assert st.content_loss(content, content, model=extractor) == pytest.approx(0.0, abs=1e-7)
    batch = st.content_loss(np.stack([style, content]), content, model=extractor)
    np.testing.assert_allclose(batch, [want, 0.0], rtol=1e-4, atol=1e-7)


def test_squared_variation_matches_numpy(rng):
    """The smoothness term of style transfer: mean squared neighbour difference, down + across."""
    x = rng.uniform(0, 1, (2, 5, 7, 3))
    want = [((im[1:] - im[:-1]) ** 2).mean() + ((im[:, 1:] - im[:, :-1]) ** 2).mean() for im in x]
    np.testing.assert_allclose(st.squared_variation(x).numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(st.squared_variation(x[0]).numpy(), want[:1], rtol=1e-5)
    with pytest.raises(AttributeError, match="squared_variation"):
        st.total_variation   # one name per idea: total variation is ch.ascent.total_variation


def _keras3_model():
    import keras as keras3

    return keras3.Sequential([keras3.Input((8, 8, 3)), keras3.layers.Conv2D(2, 3)])


@pytest.mark.parametrize("bad, match", [
    (None, "model is None.*load_model"),
    ("vgg19", "string 'vgg19'.*load_model"),
    ("keras3", "Keras 3 model.*tf_keras"),
])
def test_models_are_checked(pair, bad, match):
    content, style = pair
    bad = _keras3_model() if bad == "keras3" else bad
    calls = [lambda: st.default_layers(bad), lambda: st.feature_model(bad, ["block1_conv1"])]
    if bad is not None:   # None means "the default extractor" where a model is optional
        calls += [lambda: st.style_loss(content, style, model=bad),
                  lambda: st.content_loss(content, style, model=bad),
                  lambda: st.style_transfer(content, style, steps=1, model=bad, progress=False)]
    for call in calls:
        with pytest.raises(TypeError, match=match):
            call()
    with pytest.raises(TypeError, match="net" + match[5:] if match.startswith("model") else match):
        st.stylize(bad, content)


def test_layers_by_index_and_odd_types(extractor, pair):
    content, style = pair
    names = st.default_layers(extractor)[1]
    index = [i for i, layer in enumerate(extractor.layers) if layer.name == names[0]][0]
    a = st.style_loss(content, style, style_layers=[np.int64(index)], model=extractor)
    assert a == pytest.approx(st.style_loss(content, style, style_layers=names[:1],
                                            model=extractor), rel=1e-6)
    with pytest.raises(TypeError, match="Layer names must be strings"):
        st.style_loss(content, style, style_layers=[1.5], model=extractor)
    with pytest.raises(TypeError, match="size must be a whole number"):
        st.style_transfer(content, style, steps=1, size="big", model=extractor, progress=False)


# --------------------------------------------------------------------------- optimization
def test_optimization_cuts_style_loss_by_90_percent(extractor, pair):
    content, style = pair
    layers = st.default_layers(extractor)[1]
    image, hist = st.style_transfer(content, style, steps=80, model=extractor, progress=False)
    assert image.shape == content.shape and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert len(hist["style"]) == 80 and hist["seconds"] > 0
    noise = np.random.default_rng(0).uniform(0, 1, content.shape).astype(np.float32)
    start = _numpy_style_loss(extractor, noise, style, layers)
    assert hist["style"][0] == pytest.approx(start, rel=1e-3)  # step 0 sees the seeded noise
    end = _numpy_style_loss(extractor, image, style, layers)
    assert end < 0.1 * start, (start, end)


def test_content_start_converges_faster(extractor, pair):
    content, style = pair
    _, noise = st.style_transfer(content, style, steps=20, model=extractor, progress=False)
    _, photo = st.style_transfer(content, style, steps=20, init="content", model=extractor,
                                 progress=False)
    assert photo["total"][-1] < noise["total"][-1]
    assert photo["content"][0] == pytest.approx(0.0, abs=1e-6)


def test_seed_makes_runs_repeatable(extractor, pair):
    content, style = pair
    a, _ = st.style_transfer(content[:32, :32], style, steps=3, model=extractor, progress=False)
    b, _ = st.style_transfer(content[:32, :32], style, steps=3, model=extractor, progress=False)
    c, _ = st.style_transfer(content[:32, :32], style, steps=3, model=extractor, seed=1,
                             progress=False)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.01



def _eager_style_transfer(model, content, style, steps, content_weight=1.0, style_weight=10.0,
                          tv_weight=0.0, init="noise", seed=0, learning_rate=0.03):
    """The method written out plainly: eager steps, a new Adam, NumPy-style relative errors."""
    import tensorflow as tf
    import tf_keras as keras

    content_layer, style_layers = st.default_layers(model)
    fm = st.feature_model(model, [content_layer] + style_layers)
    content_target = fm(content[None])[0]
    style_grams = [st.gram_matrix(f[0]) for f in fm(style[None])[1:]]
    start = np.random.default_rng(seed).uniform(0, 1, content.shape).astype(np.float32) \
        if init == "noise" else content
    image = tf.Variable(start[None])
    opt = keras.optimizers.Adam(learning_rate)
    totals = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            feats = fm(image)
            c = tf.reduce_sum((feats[0] - content_target) ** 2) / (
                tf.reduce_sum(content_target ** 2) + 1e-8)
            s = tf.add_n([tf.reduce_sum((st.gram_matrix(f[0]) - g) ** 2) /
                          (tf.reduce_sum(g ** 2) + 1e-8)
                          for f, g in zip(feats[1:], style_grams)]) / len(style_grams)
            tv = tf.reduce_mean((image[:, 1:] - image[:, :-1]) ** 2) + \
                tf.reduce_mean((image[:, :, 1:] - image[:, :, :-1]) ** 2)
            total = content_weight * c + style_weight * s + tv_weight * tv
        opt.apply_gradients([(tape.gradient(total, image), image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
        totals.append(float(total))
    return image[0].numpy(), totals


def test_runs_reuse_one_compiled_step_and_start_afresh(extractor, pair):
    """Runs with other settings reuse one traced step (no 1-2 s of tracing each); every run
    still equals the method written out plainly with a fresh optimizer."""
    content, style = pair
    content, style = content[:40, :40], style[:40, :40]
    runs = [dict(steps=3), dict(steps=2, init="content", style_weight=3.0, tv_weight=0.5,
                                learning_rate=0.05, seed=4), dict(steps=3)]
    results = [st.style_transfer(content, style, model=extractor, progress=False, **kw)
               for kw in runs]
    per_model = transfer._STYLE_STEPS[extractor]
    key = [k for k in per_model if k[1] == (40, 40, 3)]
    assert len(key) == 1
    assert per_model[key[0]].step.experimental_get_tracing_count() == 1
    np.testing.assert_array_equal(results[0][0], results[2][0])
    for kw, (image, history) in zip(runs, results):
        ref_image, ref_totals = _eager_style_transfer(extractor, content, style, **kw)
        np.testing.assert_allclose(image, ref_image, atol=2e-5)
        np.testing.assert_allclose(history["total"], ref_totals, rtol=1e-4)


def test_different_sizes_and_odd_inputs_are_handled(extractor, pair):
    content, style = pair
    rect = ch.data.sample_images(64)["coffee"][:40, :56]
    img, _ = st.style_transfer(rect, style, steps=2, model=extractor, progress=False)
    assert img.shape == (40, 56, 3)  # the style image was resized to the content's size
    grey = (content[..., 0] * 255).astype(np.uint8)  # uint8 grey -> RGB float
    img, _ = st.style_transfer(grey, style, steps=1, model=extractor, progress=False)
    assert img.shape == content.shape


@pytest.mark.parametrize("kwargs, match", [
    (dict(style_layers=["block9_conv1"]), "No layer named 'block9_conv1'.*block1_conv1"),
    (dict(content_layer="nope"), "No layer named 'nope'"),
    (dict(style_layers=[]), "style_layers is empty"),
    (dict(steps=0), "steps must be at least 1, got 0"),
    (dict(steps=-5), "steps must be at least 1, got -5"),
    (dict(style_weight=0), "style_weight must be greater than 0"),
    (dict(content_weight=-1), "content_weight must be greater than 0"),
    (dict(tv_weight=-0.1), "tv_weight must be at least 0"),
    (dict(learning_rate=-0.03), "learning_rate must be greater than 0, got -0.03.*Adam"),
    (dict(init="zeros"), "init must be one of 'noise', 'content'; got 'zeros'"),
])
def test_bad_settings_raise_clear_errors(extractor, pair, kwargs, match):
    content, style = pair
    with pytest.raises(ValueError, match=match):
        st.style_transfer(content, style, model=extractor, progress=False,
                          **{"steps": 1, **kwargs})


def test_bad_images_raise_clear_errors(extractor, pair):
    content, style = pair
    bad = content.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        st.style_transfer(bad, style, steps=1, model=extractor, progress=False)
    with pytest.raises(ValueError, match="one image"):
        st.style_transfer(np.stack([content, content]), style, steps=1, model=extractor,
                          progress=False)


def test_offline_extractor_is_deterministic_and_vgg_path_works(pair):
    a = st.offline_extractor(seed=3, widths=(8, 8, 8, 8))
    extractors._EXTRACTORS.clear()
    b = st.offline_extractor(seed=3, widths=(8, 8, 8, 8))
    assert a is not b
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    vgg = st.vgg19_extractor(weights=None)  # architecture only: the same code path as ImageNet
    assert st.default_layers(vgg) == (st.VGG19_LAYERS[0], list(st.VGG19_LAYERS[1]))
    content, style = pair
    img, hist = st.style_transfer(content[:32, :32], style, steps=2, model=vgg, progress=False)
    assert img.shape == (32, 32, 3) and np.isfinite(hist["total"]).all()


def test_course_cnn_can_serve_as_extractor(pair):
    model = ch.models.build_course_cnn()
    content_layer, style_layers = st.default_layers(model)
    assert content_layer == "conv3_relu" and style_layers[0] == "conv1_relu"
    content, style = pair
    img, _ = st.style_transfer(content, style, steps=2, model=model, progress=False)
    assert img.shape == (64, 64, 3)  # a fixed-size model sets the working size


# --------------------------------------------------------------------------- one-pass network
def test_shipped_stylizer_lowers_style_loss_by_half():
    net = st.load_stylizer()
    record = st.stylizer_record()
    assert record["made_by"].startswith(st.TRAIN_COMMAND)
    style = st.stylizer_style_image(record)
    model = st.offline_extractor()
    photos = ch.data.sample_images(96)
    fresh = np.stack([photos[k] for k in ("cat", "astronaut", "rocket")]
                     + list(ch.data.make_shapes(3, seed=999, size=96)[0]))
    out = st.stylize(net, fresh)
    assert out.shape == fresh.shape and out.min() >= 0 and out.max() <= 1
    before = np.array([_numpy_style_loss(model, x, ch.data.resize_image(style, 96),
                                         record["style_layers"]) for x in fresh])
    after = np.array([_numpy_style_loss(model, x, ch.data.resize_image(style, 96),
                                        record["style_layers"]) for x in out])
    assert after.mean() <= 0.5 * before.mean(), (before.mean(), after.mean())


def test_stylize_pads_odd_sizes_and_one_image(pair):
    net = st.build_transform_net(width=4, n_res=1)
    content, _ = pair
    odd = content[:45, :38]
    out = st.stylize(net, odd)
    assert out.shape == odd.shape
    # one image == that image in a batch of one (an independent call path)
    np.testing.assert_allclose(out, st.stylize(net, odd[None])[0], atol=1e-6)


def test_training_script_runs_and_is_deterministic(tmp_path):
    """The command line trains a tiny net for a few steps; the function, same seed, agrees."""
    small = dict(steps=3, n_images=12, size=32, style_size=32, batch_size=2, width=4, n_res=1)
    code = tool.main(["train", "--out", str(tmp_path / "a"), "--name", "tiny", "--steps", "3",
                    "--n-images", "12", "--size", "32", "--style-size", "32",
                    "--batch-size", "2", "--width", "4", "--n-res", "1"])
    assert code == 0 and (tmp_path / "a" / "tiny.weights.h5").is_file()
    meta = json.loads((tmp_path / "a" / "tiny.json").read_text())
    assert meta["settings"]["steps"] == 3 and "--steps 3" in meta["made_by"]
    assert meta["seconds"] > 0 and meta["made_by"].startswith(
        "python -m course_helpers.tools.stylizer train")
    rec = tool.train_stylizer(None, name="tiny", verbose=False, **small)
    net = st.load_stylizer("tiny", folder=tmp_path / "a")
    for wa, wb in zip(rec["net"].get_weights(), net.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        tool.train_stylizer(None, verbose=False, **{**small, "steps": 0})
    with pytest.raises(ValueError, match="Unknown style"):
        tool.train_stylizer(None, verbose=False, **{**small, "style": "monet"})


def test_missing_or_corrupt_stylizer_names_the_retrain_command(tmp_path):
    command = "python -m course_helpers.tools.stylizer train"
    assert st.TRAIN_COMMAND == command
    with pytest.raises(FileNotFoundError, match=command):
        st.load_stylizer(folder=tmp_path)
    shutil.copy(ch.config.data_dir() / "style-net.json", tmp_path / "style-net.json")
    with pytest.raises(FileNotFoundError, match=command):
        st.load_stylizer(folder=tmp_path)
    (tmp_path / "style-net.weights.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(ValueError, match=f"corrupt.*{command}"):
        st.load_stylizer(folder=tmp_path)


# --------------------------------------------------------------------------- widgets
def test_upload_feeds_load_image():
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((10, 12, 4), 200, np.uint8), "RGBA").save(buf, format="PNG")
    fake = [{"name": "mine.png", "content": memoryview(buf.getvalue())}]
    imgs = st.uploaded_images(fake)
    assert list(imgs) == ["mine.png"] and imgs["mine.png"].shape == (10, 12, 3)
    assert imgs["mine.png"].dtype == np.float32
    assert st.uploaded_images(fake, size=8)["mine.png"].shape == (8, 8, 3)
    with pytest.raises(ValueError, match="'notes.txt' is not an image"):
        st.uploaded_images([{"name": "notes.txt", "content": b"hello"}])
    assert st.upload_widget().accept == "image/*"


def test_explorer_draws(extractor, pair):
    content, style = pair
    box = st.style_explorer({"cat": content}, {"flower": style}, model=extractor, size=32)
    assert box.state["figure"] is not None
    assert box.state["values"]["content_layer"] == st.default_layers(extractor)[0]
