"""The course's models: the bundled ``course-cnn`` and the ImageNet VGG16/VGG19.

Every model here takes float32 RGB images in [0, 1] and ends in a softmax.  VGG models carry
their ImageNet preprocessing as their first layer, so lessons never preprocess by hand.
Used in every lesson.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import weakref
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from . import config
from .data import SHAPE_CLASSES

COURSE_CNN = "course-cnn"
SHORTCUT_CNN = "shortcut-cnn"
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
# Facts about a model object (its class names, its course name, its logits view), kept outside
# the Keras object so that Keras does not track them as parts of the model.
_INFO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _tag(model, **facts):
    _INFO.setdefault(model, {}).update(facts)
    return model


def _info(model, key, default=None):
    try:
        return _INFO.get(model, {}).get(key, default)
    except TypeError:
        return default


#: Name of the penultimate dense layer of ``course-cnn`` (lesson 2 embeds its output).
EMBEDDING_LAYER = "embedding"


def available_models() -> list:
    """Names accepted by :func:`load_model`.  Lessons: all."""
    names = [COURSE_CNN]
    if _shipped(SHORTCUT_CNN).exists():
        names.append(SHORTCUT_CNN)
    return names + list(_VGG)


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
                                "`python -m course_helpers.train`.")
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
                                    "with `python -m course_helpers.train`.")
        try:
            model.load_weights(str(path))
        except Exception as err:  # h5py raises OSError, Keras ValueError on a bad file
            raise ValueError(f"The weights file {path} is corrupt or does not match the "
                             f"architecture ({err}). Restore it with `git checkout -- data/` "
                             "or retrain with `python -m course_helpers.train`.") from None
    elif weights is not None:
        model.load_weights(str(weights))
    return model


# --------------------------------------------------------------------------- VGG
class ImageNetPreprocess(keras.layers.Layer):
    """[0, 1] RGB -> the 'caffe' input VGG expects (BGR, 0..255, ImageNet mean removed)."""

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, x):
        x = x[..., ::-1] * 255.0
        return x - tf.constant(self.MEAN_BGR, dtype=x.dtype)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights (``$KERAS_HOME/models`` or ``~/.keras/models``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def vgg_weights_available(name: str = "vgg16") -> bool:
    """True when the ImageNet weights of ``name`` are in the Keras cache.  Lessons 1-7."""
    name = name.lower()
    if name not in _VGG:
        raise ValueError(f"Unknown VGG model {name!r}; choose from {sorted(_VGG)}.")
    return (keras_cache_dir() / _VGG_WEIGHT_FILES[name]).is_file()


def _load_vgg(name: str, weights, input_size: int):
    if weights == "default":
        weights = "imagenet"
    if weights == "imagenet" and not vgg_weights_available(name):
        raise RuntimeError(
            f"The ImageNet weights of {name} are not in the Keras cache "
            f"({keras_cache_dir() / _VGG_WEIGHT_FILES[name]}), and this course never downloads "
            f"during a lesson. With internet, fetch them once with "
            f"`python -m course_helpers.models --fetch {name}` (Binder does this for you). "
            f"Offline, use load_model('course-cnn'), which ships with the course."
        )
    if weights not in ("imagenet", None):
        raise ValueError("weights must be 'imagenet', None (random, for tests) or 'default'.")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = ImageNetPreprocess(name="imagenet_preprocess")(inputs)
    builder = getattr(keras.applications, _VGG[name])
    with _large_weights_start_at_zero() as zeroed:
        model = builder(weights=None, input_tensor=x, include_top=True)
    if weights is None:
        _draw_large_weights(model, zeroed)
    else:  # Keras's own loader holds every weight twice at once: 2.4 GB for VGG16
        load_h5_weights(model, keras_cache_dir() / _VGG_WEIGHT_FILES[name],
                        fix=f"delete it and fetch it again with "
                            f"`python -m course_helpers.models --fetch {name}`")
    return _tag(model, class_names=imagenet_class_names(), name=name)


def _h5_names(group, attr: str) -> list:
    """A Keras weights file's list of names (stored whole, or in chunks ``attr0``, ``attr1``)."""
    if attr in group.attrs:
        values = list(group.attrs[attr])
    else:
        values, k = [], 0
        while f"{attr}{k}" in group.attrs:
            values += list(group.attrs[f"{attr}{k}"])
            k += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def load_h5_weights(model, path, fix: str = "save the weights again",
                    by_name: bool = False) -> None:
    """Load a Keras (HDF5) weights file into ``model``, one slice at a time.  Lessons 1-8.

    The same matching as ``model.load_weights``: the layers with weights, in order, each
    layer's trainable weights then its non-trainable ones.  With ``by_name``, each of the
    model's layers takes the file's layer of the same name and the file's other layers are
    ignored; unlike Keras, a model layer the file lacks is an error, not silently skipped.
    Each weight goes from the file into its variable in slices of about 16 MB, so the load
    costs the model's size and no more: Keras's loader reads every weight into memory before
    assigning any, which made loading VGG16's ImageNet weights peak at 2.4 GB, over Binder's
    2 GB.  A missing, truncated or mismatched file gets an error naming the file and ``fix``.
    """
    import h5py

    from . import sanity as _sanity

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at {path}: {fix}.")
    def ordered(layer):   # Keras's order for weights files
        return list(layer.trainable_weights) + list(layer.non_trainable_weights)

    layers = [layer for layer in model.layers if ordered(layer)]
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            names = [n for n in _h5_names(group, "layer_names")
                     if _h5_names(group[n], "weight_names")]
            if by_name:
                missing = [layer.name for layer in layers if layer.name not in names]
                if missing:
                    raise ValueError(f"it has no weights for the layers {missing}")
                names = [layer.name for layer in layers]
            if len(names) != len(layers):
                raise ValueError(f"it has weights for {len(names)} layers, the model has "
                                 f"{len(layers)}")
            for layer, name in zip(layers, names):
                stored = _h5_names(group[name], "weight_names")
                variables = ordered(layer)
                if len(stored) != len(variables):
                    raise ValueError(f"layer {name!r} has {len(stored)} weights, the model's "
                                     f"{layer.name!r} has {len(variables)}")
                for variable, weight in zip(variables, stored):
                    data = group[name][weight]
                    if tuple(data.shape) != tuple(variable.shape):
                        raise ValueError(f"{weight} has shape {tuple(data.shape)}, the model's "
                                         f"{variable.name} has {tuple(variable.shape)}")
                    if data.ndim == 0 or data.size <= LARGE_WEIGHT:
                        variable.assign(data[()])
                    else:
                        _sanity.assign_in_slices(variable, (
                            (rows, data[rows]) for rows in _sanity._row_chunks(tuple(data.shape))))
    except (OSError, KeyError, ValueError, TypeError, tf.errors.OpError) as err:
        raise RuntimeError(f"Cannot load the weights file {path} ({err}): {fix}.") from None


#: Weights with more values than this (VGG's fc1 and fc2) are drawn in slices.
LARGE_WEIGHT = 1 << 22


@contextlib.contextmanager
def _large_weights_start_at_zero():
    """While open, Keras's variance-scaling initializers (VGG's default) give zeros for a
    weight larger than :data:`LARGE_WEIGHT`; the shapes are collected in the yielded list.

    Drawing VGG16's fc1 (103 M values) in one go holds three 411 MB temporaries (the random
    draw, its scaling, its shift) next to the variable: loading VGG16 peaked at 1.86 GB, too
    close to Binder's 2 GB.  Zeros cost one copy; ImageNet weights overwrite them, and
    :func:`_draw_large_weights` fills them from the same distribution, slice by slice.
    """
    cls = keras.initializers.VarianceScaling
    owner = threading.get_ident()
    zeroed = []
    with _INITIALIZER_PATCH:    # one patch at a time; other threads keep the usual draws
        original = cls.__call__

        def call(self, shape, dtype=None, **kwargs):
            size = 1
            for d in shape:
                size *= int(d)
            if size > LARGE_WEIGHT and not kwargs and threading.get_ident() == owner:
                zeroed.append(tuple(int(d) for d in shape))
                return tf.zeros(shape, dtype or tf.float32)
            return original(self, shape, dtype, **kwargs)

        cls.__call__ = call
        try:
            yield zeroed
        finally:
            cls.__call__ = original


_INITIALIZER_PATCH = threading.RLock()


def _draw_large_weights(model, zeroed, seed: int = 0):
    """Random values for the weights :func:`_large_weights_start_at_zero` left at zero, from
    each layer's own initializer rule, drawn slice by slice (``ch.sanity`` re-draws the same
    way), seeded."""
    from . import sanity as _sanity

    todo = list(zeroed)
    for i, layer in enumerate(model.layers):
        init = getattr(layer, "kernel_initializer", None)
        kernel = getattr(layer, "kernel", None)
        shape = tuple(int(d) for d in kernel.shape) if kernel is not None else None
        if shape in todo and isinstance(init, keras.initializers.VarianceScaling):
            todo.remove(shape)
            _sanity._redraw(kernel, init, seed + i)
    if todo:
        raise RuntimeError(f"Weights of shape {todo} were not drawn; please report this.")


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
    Keras cache's ImageNet weights for VGG); ``weights=None`` gives the untrained architecture.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string such as 'course-cnn', got {type(name).__name__}.")
    key = name.strip().lower()
    if key in _VGG:
        return _load_vgg(key, weights, input_size=224)
    if key in (COURSE_CNN, SHORTCUT_CNN) and key in available_models():
        return _load_bundled(key, weights)
    raise ValueError(f"Unknown model {name!r}. Available models: {', '.join(available_models())}.")


def class_names(name_or_model) -> list:
    """The class labels of a model, or of a model name.  Used in every lesson."""
    if isinstance(name_or_model, str):
        key = name_or_model.strip().lower()
        if key in _VGG:
            return imagenet_class_names()
        if key in available_models():
            return list(model_metadata(key)["class_names"])
        raise ValueError(f"Unknown model {name_or_model!r}. Available models: "
                         f"{', '.join(available_models())}.")
    names = _info(name_or_model, "class_names")
    if names is None:
        n = int(name_or_model.output_shape[-1])
        return [f"class {i}" for i in range(n)]
    return list(names)


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
    cached = _info(model, "logits_view")
    if cached is not None:
        return cached
    last = model.layers[-1]
    if isinstance(last, keras.layers.Activation) and last.activation is keras.activations.softmax:
        out = last.input
    elif isinstance(last, keras.layers.Dense) and last.activation is keras.activations.softmax:
        out = _LinearView(last, name=f"{last.name}_linear")(last.input)
    elif isinstance(last, keras.layers.Softmax):
        out = last.input
    else:
        raise ValueError(f"The model's last layer {last.name!r} is not a softmax; "
                         "logits_model needs a classifier that ends in softmax.")
    view = keras.Model(model.inputs, out, name=f"{model.name}_logits")
    _tag(view, class_names=class_names(model), name=model_name(model), logits=True)
    _tag(model, logits_view=view)
    return view


def model_name(model) -> str:
    """The course name of a model ('course-cnn', 'vgg16', ...), or its Keras name."""
    return _info(model, "name", model.name)


def get_layer(model, layer):
    """``model.get_layer`` with an error that lists the valid names.  Used by all lessons."""
    if isinstance(layer, keras.layers.Layer):
        return layer
    if isinstance(layer, int):
        return model.layers[layer]
    try:
        return model.get_layer(layer)
    except ValueError:
        names = [lyr.name for lyr in model.layers]
        raise ValueError(f"No layer named {layer!r} in {model.name}. Layers: {', '.join(names)}.") from None


def conv_layer_names(model) -> list:
    """Names of the model's Conv2D layers, first to last.  Lessons 1, 3, 5, 7."""
    return [lyr.name for lyr in model.layers if isinstance(lyr, keras.layers.Conv2D)]


def require_conv(model, layer):
    """Return the conv layer ``layer`` of ``model``, or raise a ValueError that names the fix."""
    lyr = get_layer(model, layer)
    if not isinstance(lyr, keras.layers.Conv2D):
        raise ValueError(f"Layer {lyr.name!r} is a {type(lyr).__name__}, not a Conv2D layer. "
                         f"Pick one of the conv layers: {', '.join(conv_layer_names(model))}.")
    return lyr


def _fetch_main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Download VGG ImageNet weights into the Keras cache.")
    parser.add_argument("--fetch", nargs="+", choices=sorted(_VGG), required=True)
    args = parser.parse_args(argv)
    for name in args.fetch:
        # only the file (Keras's own loading would hold the weights twice in memory)
        url, md5 = _VGG_URLS[name]
        keras.utils.get_file(_VGG_WEIGHT_FILES[name], url, cache_subdir="models", file_hash=md5,
                             cache_dir=str(keras_cache_dir().parent))
        print(f"{name}: weights in {keras_cache_dir()}")


if __name__ == "__main__":
    _fetch_main()


_POINTWISE = (keras.layers.BatchNormalization, keras.layers.Activation, keras.layers.ReLU,
              keras.layers.LeakyReLU)


def activation_layer(model, layer):
    """The layer whose output is conv layer ``layer``'s response after its BN and nonlinearity.

    ``course-cnn`` writes conv -> batch norm -> ReLU as three layers ('conv3', 'conv3_bn',
    'conv3_relu'); VGG has the ReLU inside the conv.  Lessons 1, 3, 5 and 8 show and maximize
    this output ("brighter = stronger response").  Raises ValueError for a non-conv layer.
    """
    lyr = require_conv(model, layer)
    consumers = _consumers(model)
    current = lyr
    while True:
        nxt = consumers.get(current.name, [])
        if len(nxt) == 1 and isinstance(model.get_layer(nxt[0]), _POINTWISE):
            current = model.get_layer(nxt[0])
        else:
            return current


def _consumers(model) -> dict:
    """Layer name -> names of the layers that read its output, in this model's own graph only
    (calling a layer on another input elsewhere adds nodes that must not count)."""
    cached = _info(model, "consumers")
    if cached is not None:
        return cached
    found: dict = {}

    def inbound_names(spec):
        if isinstance(spec, (list, tuple)):
            if len(spec) >= 3 and isinstance(spec[0], str) and isinstance(spec[1], int):
                yield spec[0]
            else:
                for item in spec:
                    yield from inbound_names(item)
        elif isinstance(spec, dict) and "args" in spec:
            yield from inbound_names(spec["args"])

    for entry in model.get_config()["layers"]:
        for src in set(inbound_names(entry.get("inbound_nodes", []))):
            found.setdefault(src, []).append(entry["name"])
    _tag(model, consumers=found)
    return found
