"""The course's models: the bundled ``course-cnn`` and the ImageNet VGG16, VGG19 and ResNet50.

Every model here takes float32 RGB images in [0, 1] and ends in a softmax.  The ImageNet models
carry their ImageNet preprocessing as their first layer, so lessons never preprocess by hand;
the course builds VGG itself (``ch.vgg``), takes ResNet50 from ``tf_keras.applications`` behind
the same preprocessing layer, and reads their weights files layer by layer (``ch.weights``), so
that they load in well under Binder's 2 GB.  Used in every lesson.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from . import _checks, _facts, config
from . import graph as _graph
from . import vgg as _vgg
from .data import SHAPE_CLASSES
from .vgg import ImageNetPreprocess  # noqa: F401  (ch.models.ImageNetPreprocess)
from .weights import load_h5_weights  # noqa: F401  (ch.models.load_h5_weights)

COURSE_CNN = "course-cnn"
SHORTCUT_CNN = "shortcut-cnn"
SHUFFLED_CNN = "course-cnn-shuffled"   # trained on shuffled labels (lesson 08)
_VGG = {"vgg16": "VGG16", "vgg19": "VGG19"}
_VGG_WEIGHT_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    "vgg19": "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
}
# Where keras.applications downloads them from, and their MD5 (tf_keras/applications/vgg*.py).
_VGG_URLS = {
    name: ("https://storage.googleapis.com/tensorflow/keras-applications/"
           f"{name}/{_VGG_WEIGHT_FILES[name]}", md5)
    for name, md5 in (("vgg16", "64373286793e3c8b2b4e3219cbf3544b"),
                      ("vgg19", "cbe5617147190e668d6c5d5026f83318"))
}
#: ResNet50 (He et al. 2016) from tf_keras.applications: its weights file, address and MD5
#: (tf_keras/src/applications/resnet.py, WEIGHTS_HASHES).
RESNET50 = "resnet50"
_RESNET_WEIGHT_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
_RESNET_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
               + _RESNET_WEIGHT_FILE, "2cb95161c43110f7111970584f804107")
#: Every ImageNet model: name -> (weights file in the Keras cache, (address, MD5)).
_IMAGENET = {**{name: (_VGG_WEIGHT_FILES[name], _VGG_URLS[name]) for name in _VGG},
             RESNET50: (_RESNET_WEIGHT_FILE, _RESNET_URL)}
# Facts about a model object (its class names, its course name) live in course_helpers._facts.
_INFO, _tag, _info = _facts.INFO, _facts.tag, _facts.info


#: Name of the penultimate dense layer of ``course-cnn`` (lesson 2 embeds its output).
EMBEDDING_LAYER = "embedding"


def available_models() -> list:
    """Names accepted by :func:`load_model`.  Lessons: all."""
    names = [COURSE_CNN]
    names += [name for name in (SHORTCUT_CNN, SHUFFLED_CNN) if _shipped(name).exists()]
    return names + list(_IMAGENET)


def _shipped(name: str) -> Path:
    return config.data_dir() / f"{name}.weights.h5"


def _metadata_path(name: str) -> Path:
    return config.data_dir() / f"{name}.json"


# --------------------------------------------------------------------------- course-cnn
class SmoothKernel(keras.regularizers.Regularizer):
    """Penalty on differences between neighbouring kernel taps (a smoothness prior).

    Unlike plain L2 decay it leaves a kernel's constant part free, so it removes pixel noise
    from first-layer kernels without shrinking useful kernels to nothing.  Used in training.
    """

    def __init__(self, strength: float = 0.0, l2: float = 0.0):
        self.strength = float(strength)
        self.l2 = float(l2)

    def __call__(self, w):
        dy = w[1:, :, :, :] - w[:-1, :, :, :]
        dx = w[:, 1:, :, :] - w[:, :-1, :, :]
        loss = self.strength * (tf.reduce_sum(tf.square(dy)) + tf.reduce_sum(tf.square(dx)))
        if self.l2:
            loss += self.l2 * tf.reduce_sum(tf.square(w))
        return loss

    def get_config(self):
        return {"strength": self.strength, "l2": self.l2}


def build_course_cnn(num_classes: int = len(SHAPE_CLASSES), input_size: int = 64,
                     widths=(16, 32, 64, 96), kernel1: int = 7, smooth: float = 0.0,
                     init_scale: float = 1.0, seed: int = 0, name: str = COURSE_CNN):
    """The architecture of ``course-cnn`` (untrained).  Lesson 1 compares it with the trained one.

    conv1 (``kernel1`` x ``kernel1``, stride 2, RGB kernels) -> conv2 -> pool -> conv3 -> pool
    -> conv4 -> global average -> dense ``embedding`` -> dense ``logits`` -> softmax
    ``predictions``.  Every conv is followed by batch normalization and ReLU.
    """
    if kernel1 < 1 or len(widths) != 4:
        raise ValueError("kernel1 must be >= 1 and widths must list 4 channel counts.")
    init = keras.initializers.VarianceScaling(scale=2.0 * init_scale**2, mode="fan_in",
                                              distribution="truncated_normal", seed=seed)

    def conv(x, filters, size, name, strides=1, reg=None):
        x = keras.layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=False,
                                kernel_initializer=init if name == "conv1" else
                                keras.initializers.HeNormal(seed=seed + len(name) + filters),
                                kernel_regularizer=reg, name=name)(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        return keras.layers.Activation("relu", name=f"{name}_relu")(x)

    inputs = keras.Input((input_size, input_size, 3), name="image")
    reg = SmoothKernel(smooth) if smooth else None
    x = conv(inputs, widths[0], kernel1, "conv1", strides=2, reg=reg)
    x = conv(x, widths[1], 3, "conv2")
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = conv(x, widths[2], 3, "conv3")
    x = keras.layers.MaxPooling2D(2, name="pool3")(x)
    x = conv(x, widths[3], 3, "conv4")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(128, activation="relu", name=EMBEDDING_LAYER,
                           kernel_initializer=keras.initializers.HeNormal(seed=seed + 1))(x)
    x = keras.layers.Dropout(0.3, name="dropout", seed=seed)(x)
    x = keras.layers.Dense(num_classes, name="logits",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2))(x)
    outputs = keras.layers.Activation("softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=name.replace("-", "_"))
    return _tag(model, class_names=list(SHAPE_CLASSES[:num_classes]), name=name)


def model_metadata(name: str = COURSE_CNN) -> dict:
    """The training record shipped next to a bundled model (config, metrics).  Lessons 1, 8."""
    path = _metadata_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"No metadata for {name!r} at {path}. Retrain it with "
                                "`python -m course_helpers.tools.train`.")
    return json.loads(path.read_text())


def _load_bundled(name: str, weights):
    meta = model_metadata(name)
    arch = meta["architecture"]
    model = build_course_cnn(num_classes=len(meta["class_names"]), input_size=arch["input_size"],
                             widths=tuple(arch["widths"]), kernel1=arch["kernel1"], name=name)
    _tag(model, class_names=list(meta["class_names"]))
    if weights == "default":
        path = _shipped(name)
        if not path.is_file():
            raise FileNotFoundError(f"The weights of {name!r} are missing ({path}). Rebuild them "
                                    "with `python -m course_helpers.tools.train`.")
        try:
            model.load_weights(str(path))
        except Exception as err:  # h5py raises OSError, Keras ValueError on a bad file
            raise ValueError(f"The weights file {path} is corrupt or does not match the "
                             f"architecture ({err}). Restore it with `git checkout -- data/` "
                             "or retrain with `python -m course_helpers.tools.train`.") from None
    elif weights is not None:
        if not isinstance(weights, (str, os.PathLike)) or not Path(weights).is_file():
            raise ValueError(f"weights for {name!r} must be 'default' (the shipped weights), None "
                             f"(untrained) or the path of a weights file; got {weights!r}"
                             + (" ('imagenet' is for the ImageNet models: VGG16, VGG19, "
                                "ResNet50)." if weights == "imagenet"
                                else ", which is not a file."))
        try:
            model.load_weights(str(weights))
        except Exception as err:  # h5py raises OSError, Keras ValueError on a bad file
            raise ValueError(f"Cannot load {weights} into {name!r} ({err}): give a weights "
                             f"file saved from {name!r}.") from None
    return model


# --------------------------------------------------------------------------- VGG
def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights (``$KERAS_HOME/models`` or ``~/.keras/models``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def vgg_weights_available(name: str = "vgg16") -> bool:
    """True when the ImageNet weights of ``name`` ('vgg16', 'vgg19' or 'resnet50') are in the
    Keras cache (guards the lessons' ImageNet parts; no network).  Lessons 1-8."""
    name = _checks.choice("name", name, sorted(_IMAGENET))
    return (keras_cache_dir() / _IMAGENET[name][0]).is_file()


def _imagenet_path(name: str, weights):
    """The cached weights file to load (None for ``weights=None``), or a clear error."""
    weights = _checks.choice("weights", weights, ("imagenet", "default", None))
    path = keras_cache_dir() / _IMAGENET[name][0]
    if weights in ("imagenet", "default") and not path.is_file():
        raise RuntimeError(
            f"The ImageNet weights of {name} are not in the Keras cache ({path}), and this "
            f"course never downloads during a lesson. With internet, fetch them once with "
            f"`python -m course_helpers.models --fetch {name}` (Binder does this for you). "
            f"Offline, use load_model('course-cnn'), which ships with the course."
        )
    return None if weights is None else path


def _load_vgg(name: str, weights):
    path = _imagenet_path(name, weights)
    # the course's own VGG, its weights file read layer by layer: Keras's own loader holds
    # every weight twice at once (2.4 GB for VGG16)
    model = _vgg.build(name, path, fix=f"delete it and fetch it again with "
                                     f"`python -m course_helpers.models --fetch {name}`")
    return _tag(model, class_names=imagenet_class_names(), name=name)


def build_resnet50(seed: int | None = 0):
    """tf-keras's ResNet50 (``include_top=True``, untrained) behind :class:`ImageNetPreprocess`:
    [0, 1] RGB images of 224 x 224 in, a softmax over 1,000 classes out.

    The same layers and names as ``tf_keras.applications.ResNet50`` (its preprocessing is
    VGG's 'caffe' one), so the ImageNet weights file loads into it by layer name.  Its conv
    and dense kernels are drawn from their Glorot-uniform initializers seeded by ``seed``, so
    the untrained model is the same every time (``seed=None``: Keras's unseeded draws, for a
    model whose weights are loaded next).  Lessons 1, 7 (ResNet50 beside VGG16).
    """
    inputs = keras.Input((224, 224, 3), name="image")
    x = ImageNetPreprocess(name="imagenet_preprocess")(inputs)
    net = keras.applications.ResNet50(include_top=True, weights=None, input_tensor=x)
    model = keras.Model(inputs, net.output, name=RESNET50)
    for k, layer in enumerate(model.layers if seed is not None else []):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            config = dict(layer.kernel_initializer.get_config(), seed=seed * 1000 + k)
            kernel.assign(type(layer.kernel_initializer).from_config(config)(kernel.shape))
    return model


def _load_resnet(weights):
    path = _imagenet_path(RESNET50, weights)
    model = build_resnet50(seed=None if path is not None else 0)
    if path is not None:   # by name: the file's layers are tf_keras.applications' layers
        load_h5_weights(model, path, by_name=True,
                        fix="delete it and fetch it again with "
                            "`python -m course_helpers.models --fetch resnet50`")
    return _tag(model, class_names=imagenet_class_names(), name=RESNET50)


def imagenet_class_names() -> list:
    """The 1,000 ImageNet class names, shipped in ``data/`` (no download).  Lessons 1-7."""
    path = config.data_dir() / "imagenet_classes.txt"
    names = path.read_text().splitlines()
    if len(names) != 1000:
        raise ValueError(f"{path} should list 1000 class names, found {len(names)}.")
    return names


# --------------------------------------------------------------------------- public API
def load_model(name: str = COURSE_CNN, weights="default"):
    """Load a course model by name; see :func:`available_models`.  Used in every lesson.

    ``weights="default"`` gives the trained model (shipped weights for ``course-cnn``, the
    Keras cache's ImageNet weights for VGG16, VGG19 and ResNet50, also called ``"imagenet"``);
    ``weights=None`` gives the untrained architecture; for ``course-cnn`` it may also be the
    path of a weights file.  A lesson's ImageNet part names its model in one variable, e.g.
    ``IMAGENET_MODEL = "vgg16"`` (or ``"resnet50"``), and :func:`imagenet_layers` gives the
    layers it shows for either.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'course-cnn', got {type(name).__name__}.")
    key = name.strip().lower()
    if key in _VGG:
        return _load_vgg(key, weights)
    if key == RESNET50:
        return _load_resnet(weights)
    if key in (COURSE_CNN, SHORTCUT_CNN, SHUFFLED_CNN) and key in available_models():
        return _load_bundled(key, weights)
    raise ValueError(f"Unknown model {name!r}. Available models: {', '.join(available_models())}.")


#: For each ImageNet model, the layers a lesson's ImageNet part shows (see imagenet_layers).
_IMAGENET_LAYERS = {
    "vgg16": ("block1_conv1", "block3_conv3", "block5_conv3", "block5_conv3", "fc2"),
    "vgg19": ("block1_conv1", "block3_conv4", "block5_conv4", "block5_conv4", "fc2"),
    # ResNet50: a block's 3x3 conv, whose activation is its own ReLU (a block's last 1x1 conv
    # is followed by the residual add, so its BN output is no "response after ReLU"); Grad-CAM
    # weighs the last block's output, the last grid of units before the global average
    RESNET50: ("conv1_conv", "conv3_block4_2_conv", "conv4_block6_2_conv",
               "conv5_block3_out", "avg_pool"),
}


def imagenet_layers(name_or_model) -> dict:
    """The layers an ImageNet part uses, by role, for 'vgg16', 'vgg19' or 'resnet50' (a name
    or a loaded model): ``first`` (the first conv), ``middle`` and ``deep`` (convs for top
    patches and activations), ``cam`` (Grad-CAM's layer: the last grid of units) and
    ``penultimate`` (the features before the classifier, for t-SNE and kNN).  With it a lesson
    switches models in one place::

        IMAGENET_MODEL = "vgg16"          # or "resnet50"
        layers = ch.models.imagenet_layers(IMAGENET_MODEL)

    Lessons 1-8 (ImageNet parts).
    """
    name = name_or_model if isinstance(name_or_model, str) else model_name(name_or_model)
    name = _checks.choice("name_or_model", name, sorted(_IMAGENET_LAYERS))
    return dict(zip(("first", "middle", "deep", "cam", "penultimate"),
                    _IMAGENET_LAYERS[name]))


def class_names(name_or_model) -> list:
    """The class labels of a model, or of a model name.  Used in every lesson."""
    if isinstance(name_or_model, str):
        key = name_or_model.strip().lower()
        if key in _IMAGENET:
            return imagenet_class_names()
        if key in available_models():
            return list(model_metadata(key)["class_names"])
        raise ValueError(f"Unknown model {name_or_model!r}. Available models: "
                         f"{', '.join(available_models())}.")
    _checks.model(name_or_model, "name_or_model")
    return _facts.class_names(name_or_model)


class _LinearView(keras.layers.Layer):
    """Applies a Dense layer's own kernel and bias without its activation (shares weights)."""

    def __init__(self, dense, **kwargs):
        super().__init__(**kwargs)
        self._dense = dense

    def call(self, x):
        y = tf.matmul(x, self._dense.kernel)
        if self._dense.use_bias:
            y = y + self._dense.bias
        return y


def logits_model(model):
    """A view of ``model`` that outputs class scores before the softmax.  Lessons 3.5, 3.6, 5.

    The view shares the model's layers and weights (nothing is copied), so it is cheap even
    for VGG16.  Saliency and gradient ascent use scores before softmax, as Simonyan et al. do.
    """
    _checks.model(model)
    if len(model.outputs) != 1:
        raise ValueError(f"{model.name} has {len(model.outputs)} outputs; logits_model needs a "
                         "classifier with one softmax output.")
    last = model.outputs[0]._keras_history.layer
    softmax = getattr(last, "activation", None) is keras.activations.softmax
    if isinstance(last, keras.layers.Softmax) or (isinstance(last, keras.layers.Activation)
                                                  and softmax):
        view = _graph.submodel(model, _graph.inputs_of(model, last)[0])
    elif isinstance(last, keras.layers.Dense) and softmax:
        def build():
            # the Dense layer's input in the model's own graph, then its kernel and bias
            src = _graph.output_of(model, _graph.inputs_of(model, last)[0])
            out = _LinearView(last, name=f"{last.name}_linear")(src)
            return keras.Model(model.inputs, out, name=f"{model.name}_logits")
        view = _graph.cached_view(model, "logits", build)
    else:
        raise ValueError(f"The model's last layer {last.name!r} is not a softmax; "
                         "logits_model needs a classifier that ends in softmax.")
    if not _info(view, "logits"):
        _tag(view, class_names=class_names(model), name=model_name(model), logits=True)
    return view


def model_name(model) -> str:
    """The course name of a model ('course-cnn', 'vgg16', ...), or its Keras name."""
    _checks.model(model)
    return _info(model, "name", model.name)


# The layer graph has one home, course_helpers.graph; these names stay for existing callers.
from .graph import activation_layer, conv_layer_names, require_conv  # noqa: E402,F401
from .graph import layer as get_layer  # noqa: E402,F401


def _fetch_main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Download ImageNet weights into the Keras cache.")
    parser.add_argument("--fetch", nargs="+", choices=sorted(_IMAGENET), required=True)
    args = parser.parse_args(argv)
    for name in args.fetch:
        # only the file (Keras's own loading would hold the weights twice in memory)
        file, (url, md5) = _IMAGENET[name]
        try:
            keras.utils.get_file(file, url, cache_subdir="models", file_hash=md5,
                                 cache_dir=str(keras_cache_dir().parent))
        except Exception as err:   # Keras raises a bare Exception for a failed download
            import sys

            sys.exit(f"error: the {name} weights were not fetched ({err}). Check the internet "
                     "connection and run this again; offline, the lessons use course-cnn.")
        print(f"{name}: weights in {keras_cache_dir()}")


if __name__ == "__main__":
    _fetch_main()
