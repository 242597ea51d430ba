"""course_helpers.occlusion (lesson 3.4): occlusion maps."""
import numpy as np
import pytest

import course_helpers as ch
from course_helpers import occlusion, occlusion_fast


def occluded_probability(model, image, c, y, x, patch, filler):
    img = image.copy()
    img[y:y + patch, x:x + patch] = filler[y:y + patch, x:x + patch]
    return float(model.predict(img[None], verbose=0)[0, c])


def test_positions_cover_every_pixel():
    assert occlusion.occlusion_positions(16, 6, 4) == [0, 4, 8, 10]
    assert occlusion.occlusion_positions(64, 16, 8) == [0, 8, 16, 24, 32, 40, 48]
    assert occlusion.occlusion_positions(10, 10, 3) == [0]


@pytest.mark.parametrize("patch,stride,fill", [(6, 4, 0.5), (5, 5, "black"), (8, 3, "blur")])
def test_occlusion_matches_a_plain_loop(tiny_model, rng, patch, stride, fill):
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    fast = occlusion.occlusion_map(tiny_model, image, 2, patch=patch, stride=stride, fill=fill,
                                   batch_size=7)
    if fill == "blur":
        from scipy.ndimage import gaussian_filter
        filler = np.stack([gaussian_filter(image[..., k], sigma=patch / 4, mode="nearest")
                           for k in range(3)], -1)
    else:
        filler = np.full_like(image, 0.5 if fill == 0.5 else 0.0)
    starts = list(range(0, 16 - patch + 1, stride))
    if starts[-1] != 16 - patch:
        starts.append(16 - patch)
    slow = [[occluded_probability(tiny_model, image, 2, y, x, patch, filler) for x in starts]
            for y in starts]
    np.testing.assert_allclose(fast, slow, atol=2e-3 if fill == "blur" else 1e-5)


def test_occlusion_on_course_cnn_matches_loop(course_model, shapes):
    image = shapes[0][4]
    fast = occlusion.occlusion_map(course_model, image, int(shapes[1][4]), patch=24, stride=20)
    starts = [0, 20, 40]
    filler = np.full_like(image, 0.5)
    slow = [[occluded_probability(course_model, image, int(shapes[1][4]), y, x, 24, filler)
             for x in starts] for y in starts]
    np.testing.assert_allclose(fast, slow, atol=1e-5)


def test_pixel_map_and_drop(tiny_model, rng):
    values = np.arange(4.0).reshape(2, 2)
    pm = occlusion.pixel_map(values, (10, 10), 6, 4)            # positions 0 and 4
    assert pm[0, 0] == 0 and pm[9, 9] == 3
    assert pm[5, 5] == pytest.approx(values.mean())             # covered by all four
    assert pm[0, 5] == pytest.approx(0.5)                       # covered by (0,0) and (0,1)
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    drop = occlusion.occlusion_drop(tiny_model, image, 1, patch=8, stride=8)
    base = float(tiny_model.predict(image[None], verbose=0)[0, 1])
    probs = occlusion.occlusion_map(tiny_model, image, 1, patch=8, stride=8)
    np.testing.assert_allclose(drop[:8, :8], base - probs[0, 0], atol=1e-5)


def test_occlusion_errors(tiny_model, rng):
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="larger than the image"):
        occlusion.occlusion_map(tiny_model, image, 0, patch=17)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        occlusion.occlusion_map(tiny_model, image, 0, patch=4, stride=0)
    with pytest.raises(ValueError, match="between 0 and 2"):
        occlusion.occlusion_map(tiny_model, image, 3, patch=4)
    with pytest.raises(ValueError, match="class_index 'cat' is not a class name of tiny"):
        occlusion.occlusion_map(tiny_model, image, "cat", patch=4)
    with pytest.raises(TypeError, match="class_index must be a whole number, got float 1.5"):
        occlusion.occlusion_map(tiny_model, image, 1.5, patch=4)
    with pytest.raises(ValueError, match="Unknown fill"):
        occlusion.occlusion_map(tiny_model, image, 0, patch=4, fill="pink")
    with pytest.raises(ValueError, match="NaN"):
        occlusion.occlusion_map(tiny_model, np.full((16, 16, 3), np.nan, np.float32), 0, patch=4)


def test_covering_the_shape_hurts_more_than_covering_background(course_model):
    x, y, masks = ch.data.make_shapes(ch.scaled(40, 12), seed=11)
    on, off = [], []
    for img, label, mask in zip(x, y, masks):
        drop = occlusion.occlusion_drop(course_model, img, int(label), patch=12, stride=4)
        on.append(drop[mask].mean())
        off.append(drop[~mask].mean())
    assert np.mean(on) > np.mean(off) + 0.05


def test_explorer_draws_and_caches(course_model, shapes):
    import matplotlib.pyplot as plt

    box = occlusion.occlusion_explorer(course_model, {"a": shapes[0][0], "b": shapes[0][1]})
    assert box.state["figure"] is not None
    box.children[3].value = "black"
    assert "black" in box.state["figure"]._suptitle.get_text()
    plt.close("all")


def test_exercise_check_occlusion_count(capsys):
    # positions 0, 16, ..., 192: 13 per axis
    assert ch.exercises.check_occlusion_count(224, 32, 16, 169)
    assert not ch.exercises.check_occlusion_count(224, 32, 16, 196)
    assert not ch.exercises.check_occlusion_count(224, 32, 16, ...)
    assert "169" not in capsys.readouterr().out.split("❌")[-1]


# --------------------------------------------------------------------------- incremental occlusion
@pytest.fixture(scope="module")
def chain_model():
    """A small VGG-like chain (same-padded 3x3 convs and 2x2 pools, then dense) at 96 px."""
    import tf_keras as keras

    keras.utils.set_random_seed(4)
    layers = keras.layers
    inp = keras.Input((96, 96, 3))
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.AveragePooling2D()(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    out = layers.Dense(5, activation="softmax")(x)
    return keras.Model(inp, out)


@pytest.mark.parametrize("patch,stride,fill", [(8, 8, 0.5), (12, 5, "black"), (20, 16, "blur")])
def test_incremental_occlusion_equals_the_full_computation(chain_model, rng, patch, stride, fill):
    image = rng.uniform(0, 1, (96, 96, 3)).astype(np.float32)
    plan = occlusion_fast.incremental_plan(chain_model, image.shape, patch)
    assert plan is not None and plan["saving"] > 0.2
    assert plan["axes"][0][0] < 96                  # the head runs on a crop, not the image
    fast = occlusion.occlusion_map(chain_model, image, 1, patch, stride, fill, method="incremental")
    full = occlusion.occlusion_map(chain_model, image, 1, patch, stride, fill, method="full")
    np.testing.assert_allclose(fast, full, rtol=1e-5, atol=1e-7)
    # and both equal single predictions at the corners (border padding must match)
    filler = occlusion.fill_image(image, fill, patch)
    ys = occlusion.occlusion_positions(96, patch, stride)
    for i, j in [(0, 0), (-1, -1), (0, -1)]:
        want = occluded_probability(chain_model, image, 1, ys[i], ys[j], patch, filler)
        assert fast[i, j] == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_incremental_occlusion_on_the_vgg16_architecture(rng):
    vgg = ch.models.load_model("vgg16", weights=None)
    image = ch.data.sample_images(224)["cat"]
    plan = occlusion_fast.incremental_plan(vgg, image.shape, 32)
    assert plan is not None and plan["split"] == "block3_pool"
    fast = occlusion.occlusion_map(vgg, image, 3, 32, 64)        # auto: incremental here
    full = occlusion.occlusion_map(vgg, image, 3, 32, 64, method="full")
    np.testing.assert_allclose(fast, full, rtol=1e-4)


def test_incremental_occlusion_refuses_models_it_cannot_split(course_model, rng):
    image = rng.uniform(0, 1, (64, 64, 3)).astype(np.float32)
    assert occlusion_fast.incremental_plan(course_model, image.shape, 16) is None  # 7x7 stride-2 conv1
    with pytest.raises(ValueError, match="method='full'"):
        occlusion.occlusion_map(course_model, image, 0, 16, 8, method="incremental")
    with pytest.raises(ValueError, match="method must be"):
        occlusion.occlusion_map(course_model, image, 0, 16, 8, method="fast")


def test_incremental_occlusion_leaves_the_model_graph_alone(chain_model, rng):
    """Other lessons read layer.output / output_shape: the split must not add graph nodes."""
    image = rng.uniform(0, 1, (96, 96, 3)).astype(np.float32)
    nodes = [len(layer._inbound_nodes) for layer in chain_model.layers]
    occlusion.occlusion_map(chain_model, image, 0, 16, 16, method="incremental")
    assert [len(layer._inbound_nodes) for layer in chain_model.layers] == nodes
    assert chain_model.layers[1].output_shape == (None, 96, 96, 8)


def test_incremental_occlusion_on_a_sequential_model(rng):
    """Sequential models list no InputLayer: the head must still start at the first layer."""
    import tf_keras as keras

    keras.utils.set_random_seed(5)
    layers = keras.layers
    model = keras.Sequential([keras.Input((96, 96, 3)), layers.Rescaling(2.0, offset=-1.0),
                              layers.Conv2D(8, 3, padding="same", activation="relu"),
                              layers.Conv2D(8, 3, padding="same", activation="relu"),
                              layers.MaxPooling2D(),
                              layers.Conv2D(16, 3, padding="same", activation="relu"),
                              layers.MaxPooling2D(), layers.Flatten(),
                              layers.Dense(4, activation="softmax")])
    image = rng.uniform(0, 1, (96, 96, 3)).astype(np.float32)
    fast = occlusion.occlusion_map(model, image, 2, 12, 7, "black", method="incremental")
    full = occlusion.occlusion_map(model, image, 2, 12, 7, "black", method="full")
    np.testing.assert_allclose(fast, full, rtol=1e-5, atol=1e-7)
