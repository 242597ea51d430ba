"""Bad inputs to the lesson 03/04 functions give errors that name the argument and the value
(course_helpers._checks); what can be converted (a layer index, numpy ints) is converted."""
import numpy as np
import pytest

import course_helpers as ch
from course_helpers import _checks, activations, graph, occlusion, patches


def _keras3_model():
    import keras as keras3

    return keras3.Sequential([keras3.Input((8, 8, 3)), keras3.layers.Conv2D(2, 3)])


BAD_MODELS = [(None, r"model is None.*load_model\('course-cnn'\)"),
              ("course-cnn", r"model must be a loaded model, got the string 'course-cnn'.*"
                             r"load_model\('course-cnn'\)"),
              ("keras3", r"model is a Keras 3 model \(Sequential.*tf_keras")]

IMG = np.full((64, 64, 3), 0.5, np.float32)
CALLS = {
    "activation_model": lambda m: activations.activation_model(m, "conv1"),
    "feature_maps": lambda m: activations.feature_maps(m, "conv1", IMG),
    "layer_activations": lambda m: activations.layer_activations(m, "conv1", IMG[None]),
    "activation_explorer": lambda m: activations.activation_explorer(m, [IMG]),
    "receptive_field": lambda m: patches.receptive_field(m, "conv1"),
    "unit_box": lambda m: patches.unit_box(m, "conv1", 0, 0),
    "top_patches": lambda m: patches.top_patches(m, "conv1", 0, IMG[None]),
    "channel_class_purity": lambda m: patches.channel_class_purity(m, "conv1", IMG[None], [0]),
    "plot_top_patches": lambda m: patches.plot_top_patches(m, "conv1", [0], IMG[None]),
    "top_patches_explorer": lambda m: patches.top_patches_explorer(m, [IMG]),
    "occlusion_map": lambda m: occlusion.occlusion_map(m, IMG, 0),
    "class_probability": lambda m: occlusion.class_probability(m, IMG, 0),
    "occlusion_drop": lambda m: occlusion.occlusion_drop(m, IMG, 0),
    "occlusion_explorer": lambda m: occlusion.occlusion_explorer(m, [IMG]),
    "graph.layer": lambda m: graph.layer(m, 0),
    "graph.chain": lambda m: graph.chain(m),
    "graph.submodel": lambda m: graph.submodel(m, "conv1"),
    "models.get_layer": lambda m: ch.models.get_layer(m, "conv1"),
    "models.activation_layer": lambda m: ch.models.activation_layer(m, "conv1"),
}


@pytest.mark.parametrize("bad, message", BAD_MODELS, ids=[b[0] or "None" for b in BAD_MODELS])
@pytest.mark.parametrize("name", list(CALLS))
def test_not_a_model(name, bad, message):
    bad = _keras3_model() if bad == "keras3" else bad
    with pytest.raises(TypeError, match=message):
        CALLS[name](bad)


def test_a_layer_given_by_index_works(course_model, shapes):
    img = shapes[0][3]
    by_name = activations.feature_maps(course_model, "conv2", img)
    index = [lyr.name for lyr in course_model.layers].index("conv2")
    for spec in (index, np.int64(index), index - len(course_model.layers)):
        np.testing.assert_array_equal(activations.feature_maps(course_model, spec, img), by_name)
    assert patches.receptive_field(course_model, index) == patches.receptive_field(course_model, "conv2")
    res = patches.top_patches(course_model, np.int32(index), 1, shapes[0][:4], k=2)
    assert res.layer == "conv2"
    with pytest.raises(ValueError, match="layer index 99 .* 0 to 19"):
        activations.feature_maps(course_model, 99, img)
    with pytest.raises(ValueError, match="'conv1_bn' is a BatchNormalization, not a Conv2D"):
        activations.feature_maps(course_model, index - 2, img)


@pytest.mark.parametrize("empty", [[], {}, np.zeros((0, 64, 64, 3), np.float32)],
                         ids=["list", "dict", "array"])
def test_empty_image_collections(course_model, empty):
    for call in (lambda: patches.top_patches_explorer(course_model, empty),
                 lambda: activations.activation_explorer(course_model, empty),
                 lambda: occlusion.occlusion_explorer(course_model, empty),
                 lambda: patches.top_patches(course_model, "conv1", 0, empty),
                 lambda: patches.image_tiles(empty, 8)):
        with pytest.raises(ValueError, match="images is empty: pass at least one image"):
            call()


def test_other_bad_arguments_name_themselves(course_model, shapes):
    x = shapes[0][:3]
    with pytest.raises(TypeError, match="size must be a whole number, got str '8'"):
        patches.image_tiles(x, "8")
    with pytest.raises(TypeError, match="size must be a whole number, got float 8.5"):
        patches.image_tiles(x, 8.5)
    assert patches.image_tiles(x, 32.0).shape == (12, 32, 32, 3)        # 32.0 is a whole number
    with pytest.raises(ValueError, match="smaller than the tile size 80: use size <= 64"):
        patches.image_tiles(x, 80)
    with pytest.raises(TypeError, match="k must be a whole number, got float 2.5"):
        patches.top_patches(course_model, "conv1", 0, x, k=2.5)
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        patches.top_patches(course_model, "conv1", 0, x, k=0)
    with pytest.raises(ValueError, match="max_per_image must be at least 1, got 0"):
        patches.top_patches(course_model, "conv1", 0, x, max_per_image=0)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        activations.layer_activations(course_model, "conv1", x, batch_size=0)
    with pytest.raises(ValueError, match="layers is empty"):
        activations.activation_explorer(course_model, x, layers=[])
    with pytest.raises(ValueError, match="method must be one of 'auto', 'full', 'incremental'; "
                                         "got 'fast'"):
        occlusion.occlusion_map(course_model, x[0], 0, method="fast")
    with pytest.raises(TypeError, match="images must be .* got None"):
        patches.top_patches(course_model, "conv1", 0, None)


def test_checks_convert_what_they_can(course_model):
    assert _checks.integer("k", np.int64(3)) == 3 and _checks.integer("k", 4.0) == 4
    assert _checks.conv_layer(course_model, np.int8(1)).name == "conv1"
    assert _checks.layer(course_model, -1).name == "predictions"
    assert _checks.model(course_model) is course_model


def test_occlusion_converts_whole_floats_and_names_bad_values(course_model, shapes):
    img = shapes[0][2]
    np.testing.assert_array_equal(occlusion.occlusion_map(course_model, img, 1, 16.0, np.int64(24)),
                                  occlusion.occlusion_map(course_model, img, 1, 16, 24))
    with pytest.raises(TypeError, match="patch must be a whole number, got float 16.5"):
        occlusion.occlusion_map(course_model, img, 1, 16.5)
    with pytest.raises(TypeError, match="stride must be a whole number, got str '8'"):
        occlusion.occlusion_map(course_model, img, 1, 16, "8")
    with pytest.raises(ValueError, match="Unknown fill None"):
        occlusion.occlusion_map(course_model, img, 1, fill=None)
    with pytest.raises(TypeError, match=r"image is None: .*sample_images"):
        occlusion.occlusion_map(course_model, None, 1)
    with pytest.raises(TypeError, match=r"image is None"):
        activations.feature_maps(course_model, "conv1", None)


def test_plot_top_patches_takes_one_channel_as_an_int(course_model, shapes):
    import matplotlib.pyplot as plt

    fig = patches.plot_top_patches(course_model, "conv2", np.int64(3), shapes[0][:6], k=2)
    assert fig.axes[0].get_yticklabels()[0].get_text() == "ch 3"
    plt.close("all")


def test_class_purity_checks_its_labels(course_model, shapes):
    x, y = shapes[0][:5], shapes[1][:5]
    with pytest.raises(ValueError, match=r"labels must be one class index per image: got 5 "
                                         r"images and labels of shape \(4,\)"):
        patches.channel_class_purity(course_model, "conv1", x, y[:4])
    with pytest.raises(ValueError, match="dtype float"):
        patches.channel_class_purity(course_model, "conv1", x, y.astype(float))
    assert patches.channel_class_purity(course_model, "conv1", x, list(y), k=np.int64(3)).shape == (16,)


def test_explorer_layer_lists_accept_names_indices_and_refuse_non_conv(course_model):
    from course_helpers import _checks

    convs = [lyr.name for lyr in course_model.layers if lyr.__class__.__name__ == "Conv2D"]
    assert _checks.conv_layer_names(course_model) == convs
    index = [lyr.name for lyr in course_model.layers].index("conv3")
    assert _checks.conv_layer_names(course_model, index) == ["conv3"]
    assert _checks.conv_layer_names(course_model, ["conv2", index]) == ["conv2", "conv3"]
    with pytest.raises(ValueError, match="conv2_bn"):
        _checks.conv_layer_names(course_model, ["conv2_bn"])
    with pytest.raises(ValueError, match="layers is empty"):
        _checks.conv_layer_names(course_model, [])
