"""The fixed networks that describe an image for style transfer, and their feature sub-models.

:func:`vgg19_extractor` (Gatys et al.'s network, with ImageNet weights when they are cached),
:func:`offline_extractor` (a seeded network of random filters: the offline stand-in),
:func:`default_extractor` (whichever is available), :func:`default_layers` (the content and
style layers of each) and :func:`feature_model` (the sub-model that returns their outputs).
"""
from __future__ import annotations

import numbers

import numpy as np
import tensorflow as tf
import tf_keras as keras

from .. import _checks, graph
from .. import models as _models
from .. import vgg as _vgg

#: Layer choices of Gatys et al. for VGG19 (content at conv4_2, style at conv1_1 ... conv5_1).
VGG19_LAYERS = ("block4_conv2", ("block1_conv1", "block2_conv1", "block3_conv1",
                                 "block4_conv1", "block5_conv1"))
#: The same roles in :func:`offline_extractor`.
OFFLINE_LAYERS = ("block3_conv1", ("block1_conv1", "block2_conv1", "block3_conv1",
                                   "block4_conv1"))
OFFLINE_NAME = "random-filters"

_EXTRACTORS: dict = {}


class _Centre(keras.layers.Layer):
    """[0, 1] RGB -> roughly zero-mean, unit-variance channels (fixed ImageNet statistics)."""

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)
    keeps_positions = True    # per-pixel: receptive fields pass through (ch.graph)

    def call(self, x):
        return (x - tf.constant(self.MEAN, x.dtype)) / tf.constant(self.STD, x.dtype)


def offline_extractor(seed: int = 0, widths=(96, 192, 384, 384)):
    """A deterministic network of random filters: the offline stand-in for VGG19.  Lesson 4.1.

    Four blocks of a 3x3 convolution with ReLU, separated by 2x average pooling, named like
    VGG's layers (``block1_conv1`` ... ``block4_conv1``).  The filters are random (He-normal,
    seeded), never trained; no weights file is needed.  Gram matrices of wide random-filter
    networks are known to synthesize textures (Ustyuzhaninov et al. 2017; He, Wang & Hopcroft
    2016), because any rich set of local filters measures which local patterns co-occur.  What
    they lack is ImageNet's *learned* vocabulary: no object parts, no preference for strokes
    over pixel noise, so results keep colours and fine texture but not the painterly,
    object-aware restyling that VGG19 gives.
    """
    seed = _checks.integer("seed", seed, low=0)
    widths = tuple(_checks.integer("widths", w, low=1) for w in _checks.nonempty(
        "widths", list(widths), "give the channel count of each block, e.g. (96, 192, 384, 384)"))
    key = ("offline", seed, widths)
    if key in _EXTRACTORS:
        return _EXTRACTORS[key]
    inputs = keras.Input((None, None, 3), name="image")
    x = _Centre(name="centre")(inputs)
    for b, width in enumerate(widths, start=1):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu",
                                kernel_initializer=keras.initializers.HeNormal(seed=seed * 100 + b),
                                bias_initializer="zeros", name=f"block{b}_conv1")(x)
        if b < len(widths):
            x = keras.layers.AveragePooling2D(2, name=f"block{b}_pool")(x)
    model = keras.Model(inputs, x, name="random_filters")
    model.trainable = False
    _models._tag(model, name=OFFLINE_NAME)
    _EXTRACTORS[key] = model
    return model


def vgg19_extractor(weights="imagenet"):
    """VGG19's convolutional part for images of any size, with its ImageNet weights.  Lesson 4.1.

    The layers of :mod:`course_helpers.vgg` up to ``block5_pool``, for any input size; the
    weights are read from the Keras cache's VGG19 file, its conv layers only, layer by layer
    (nothing is downloaded).  ``weights=None`` builds the architecture with seeded random
    weights (tests).
    """
    weights = _checks.choice("weights", weights, ["imagenet", None])
    key = ("vgg19", weights)
    if key in _EXTRACTORS:
        return _EXTRACTORS[key]
    inputs = keras.Input((None, None, 3), name="image")
    x = _vgg.ImageNetPreprocess(name="imagenet_preprocess")(inputs)
    for b, (n, width) in enumerate(zip(_vgg.BLOCKS["vgg19"], _vgg.WIDTHS), 1):
        for c in range(1, n + 1):   # VGG19's conv layers, named as in its weights file
            x = keras.layers.Conv2D(width, 3, activation="relu", padding="same",
                                    kernel_initializer=keras.initializers.GlorotUniform(
                                        seed=10 * b + c), name=f"block{b}_conv{c}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    model = keras.Model(inputs, x, name="vgg19_features")
    if weights == "imagenet":
        # the conv layers straight from the Keras cache (not the whole VGG19: 550 MB less)
        path = _models.keras_cache_dir() / _models._VGG_WEIGHT_FILES["vgg19"]
        if not _models.vgg_weights_available("vgg19"):
            _models.load_model("vgg19")  # raises the clear "not in the Keras cache" error
        _models.load_h5_weights(model, path, by_name=True,
                                fix="delete it and fetch it again with "
                                    "`python -m course_helpers.models --fetch vgg19`")
    model.trainable = False
    _models._tag(model, name="vgg19" if weights else "vgg19-random")
    _EXTRACTORS[key] = model
    return model


def default_extractor(verbose: bool = False):
    """VGG19 (ImageNet) when its weights are cached, else :func:`offline_extractor`.  Lesson 4.1."""
    if _models.vgg_weights_available("vgg19"):
        model = vgg19_extractor()
        if verbose:
            print("Feature extractor: VGG19 with ImageNet weights.")
    else:
        model = offline_extractor()
        if verbose:
            print("Feature extractor: VGG19's ImageNet weights are not available offline, so this "
                  "lesson uses a wide network of random filters (ch.style.offline_extractor). "
                  "It reproduces colours and textures but not the object-aware, painterly "
                  "look of ImageNet features.")
    return model


def default_layers(model):
    """``(content_layer, style_layers)`` suited to ``model``.  Lesson 4.1.

    VGG19: Gatys et al.'s conv4_2 and conv1_1 ... conv5_1.  The random-filter network:
    ``block3_conv1`` and all four blocks.  Other models: the second-to-last conv layer for
    content and every conv layer for style.
    """
    model = _checks.model(model)
    names = {layer.name for layer in model.layers}
    for content, style in (VGG19_LAYERS, OFFLINE_LAYERS):
        if content in names and all(s in names for s in style):
            return content, list(style)
    convs = graph.conv_layer_names(model)
    if not convs:
        raise ValueError(f"{model.name} has no Conv2D layers to take features from.")
    content = convs[-2] if len(convs) > 1 else convs[-1]
    return (graph.activation_layer(model, content).name,
            [graph.activation_layer(model, c).name for c in convs])


def resolve_model(model):
    """``model`` checked, or :func:`default_extractor` when it is None."""
    return default_extractor() if model is None else _checks.model(model)


def _input_hw(model):
    shape = model.inputs[0].shape
    h, w = shape[1], shape[2]
    return None if h is None or w is None else (int(h), int(w))


def _layer_name(model, layer):
    """A layer's name; a name, a layer index (numpy ints too) or a Layer is accepted."""
    if isinstance(layer, numbers.Integral) and not isinstance(layer, (bool, np.bool_)):
        layer = int(layer)
    elif not isinstance(layer, (str, keras.layers.Layer)):
        raise TypeError(f"Layer names must be strings (or layer indices), got {layer!r}; "
                        f"e.g. {model.layers[1].name!r}.")
    return graph.layer(model, layer).name


def _check_layers(model, content_layer, style_layers):
    if isinstance(style_layers, (str, keras.layers.Layer)):
        style_layers = [style_layers]
    style_layers = list(style_layers)
    if not style_layers:
        raise ValueError("style_layers is empty: give at least one layer name, e.g. "
                         f"{default_layers(model)[1]}.")
    content_layer = _layer_name(model, content_layer)
    return content_layer, [_layer_name(model, name) for name in style_layers]


def feature_model(model, layers):
    """A model that returns the outputs of ``layers`` (a list of names), cached.  Lesson 4.1.

    Layer indices and layers are accepted too.  It comes from the package's one sub-model
    cache (:func:`course_helpers.graph.submodel`).
    """
    model = _checks.model(model)
    layers = [layers] if isinstance(layers, (str, keras.layers.Layer)) else list(layers)
    names = [_layer_name(model, name) for name in layers]
    return graph.submodel(model, names)


def _listify(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]
