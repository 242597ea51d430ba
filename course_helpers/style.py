"""Lesson 4.1 — style transfer (风格转移), by optimization and in one pass (notebook 06).

*By optimization* (Gatys, Ecker & Bethge 2016): a fixed network describes an image by its
feature maps.  The **content** of an image is its feature map at one layer; its **style** is
the Gram matrices (channel-by-channel correlations, which forget *where* things are) at
several layers.  Starting from noise, we change the pixels until the image's content matches
the photo and its style matches the painting or texture.

*In one pass* (Johnson, Alahi & Fei-Fei 2016): a small feed-forward network is trained once,
with the same loss, to turn any photo into that style; afterwards one forward pass replaces
hundreds of optimization steps.

Losses here are *relative* errors (squared error divided by the target's energy), so one
``style_weight`` means the same thing on every layer and for every feature extractor.

Train the shipped one-pass network (the only way ``data/style-net.weights.h5`` is made)::

    python -m course_helpers.style train                 # about 10 minutes on 2 CPU cores
    python -m course_helpers.style evaluate              # its style-loss figures
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from . import _fastgrad, config
from . import data as _data
from . import models as _models
from . import plotting as _plotting

#: The shipped one-pass network's name: ``data/style-net.weights.h5`` and ``data/style-net.json``.
STYLIZER_NAME = "style-net"
#: The command that makes it (error messages name it).
TRAIN_COMMAND = "python -m course_helpers.style train"

#: Layer choices of Gatys et al. for VGG19 (content at conv4_2, style at conv1_1 ... conv5_1).
VGG19_LAYERS = ("block4_conv2", ("block1_conv1", "block2_conv1", "block3_conv1",
                                 "block4_conv1", "block5_conv1"))
#: The same roles in :func:`offline_extractor`.
OFFLINE_LAYERS = ("block3_conv1", ("block1_conv1", "block2_conv1", "block3_conv1",
                                   "block4_conv1"))
OFFLINE_NAME = "random-filters"

_EXTRACTORS: dict = {}
_FEATURE_MODELS: dict = {}


# --------------------------------------------------------------------------- feature extractors
class _Centre(keras.layers.Layer):
    """[0, 1] RGB -> roughly zero-mean, unit-variance channels (fixed ImageNet statistics)."""

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

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
    key = ("offline", int(seed), tuple(int(w) for w in widths))
    if key in _EXTRACTORS:
        return _EXTRACTORS[key]
    inputs = keras.Input((None, None, 3), name="image")
    x = _Centre(name="centre")(inputs)
    for b, width in enumerate(widths, start=1):
        x = keras.layers.Conv2D(int(width), 3, padding="same", activation="relu",
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

    The weights are read from the Keras cache's VGG19 file, its conv layers only (nothing is
    downloaded).  ``weights=None`` builds the architecture with random weights (tests).
    """
    key = ("vgg19", weights)
    if key in _EXTRACTORS:
        return _EXTRACTORS[key]
    inputs = keras.Input((None, None, 3), name="image")
    x = _models.ImageNetPreprocess(name="imagenet_preprocess")(inputs)
    conv = keras.applications.VGG19(weights=None, include_top=False, input_tensor=x)
    model = keras.Model(inputs, conv.output, name="vgg19_features")
    if weights == "imagenet":
        # the conv layers straight from the Keras cache (not the whole VGG19: 550 MB less)
        path = _models.keras_cache_dir() / _models._VGG_WEIGHT_FILES["vgg19"]
        if not _models.vgg_weights_available("vgg19"):
            _models.load_model("vgg19")  # raises the clear "not in the Keras cache" error
        _models.load_h5_weights(model, path, by_name=True,
                                fix="delete it and fetch it again with "
                                    "`python -m course_helpers.models --fetch vgg19`")
    elif weights is not None:
        raise ValueError("weights must be 'imagenet' or None.")
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
    names = {layer.name for layer in model.layers}
    for content, style in (VGG19_LAYERS, OFFLINE_LAYERS):
        if content in names and all(s in names for s in style):
            return content, list(style)
    convs = _models.conv_layer_names(model)
    if not convs:
        raise ValueError(f"{model.name} has no Conv2D layers to take features from.")
    content = convs[-2] if len(convs) > 1 else convs[-1]
    return (_models.activation_layer(model, content).name,
            [_models.activation_layer(model, c).name for c in convs])


def _input_hw(model):
    shape = model.inputs[0].shape
    h, w = shape[1], shape[2]
    return None if h is None or w is None else (int(h), int(w))


def _check_layers(model, content_layer, style_layers):
    if isinstance(style_layers, str):
        style_layers = [style_layers]
    style_layers = list(style_layers)
    if not style_layers:
        raise ValueError("style_layers is empty: give at least one layer name, e.g. "
                         f"{default_layers(model)[1]}.")
    for name in [content_layer] + style_layers:
        if not isinstance(name, str):
            raise TypeError(f"Layer names must be strings, got {name!r}.")
        _models.get_layer(model, name)  # ValueError listing the valid names
    return content_layer, style_layers


def feature_model(model, layers):
    """A model that returns the outputs of ``layers`` (a list of names), cached.  Lesson 4.1."""
    key = (id(model), tuple(layers))
    if key not in _FEATURE_MODELS:
        outs = [_models.get_layer(model, name).output for name in layers]
        _FEATURE_MODELS[key] = (model, keras.Model(model.inputs, outs))
    return _FEATURE_MODELS[key][1]


# --------------------------------------------------------------------------- losses
def gram_matrix(features):
    """Channel correlations of feature maps: G[c, d] = mean over positions of F_c * F_d.

    ``features`` is (H, W, C) or a batch (B, H, W, C); the result is (C, C) or (B, C, C), a
    ``tf.Tensor`` (call ``.numpy()`` for an array).  Dividing by H*W makes images of different
    sizes comparable.  Lesson 4.1.
    """
    f = tf.convert_to_tensor(features)
    if not f.dtype.is_floating:
        f = tf.cast(f, tf.float32)
    if f.shape.rank not in (3, 4):
        raise ValueError(f"features must be (H, W, C) or (B, H, W, C), got shape {tuple(f.shape)}.")
    single = f.shape.rank == 3
    if single:
        f = f[None]
    shape = tf.shape(f)
    flat = tf.reshape(f, [shape[0], shape[1] * shape[2], shape[3]])
    g = tf.matmul(flat, flat, transpose_a=True) / tf.cast(shape[1] * shape[2], f.dtype)
    return g[0] if single else g


def _relative(err_sq_sum, target_sq_sum):
    return err_sq_sum / (target_sq_sum + 1e-8)


def _style_terms(feats, target_grams):
    """Per layer: ||G(image) - G(style)||^2 / ||G(style)||^2, for each image of the batch."""
    terms = []
    for f, a in zip(feats, target_grams):
        g = gram_matrix(f)
        terms.append(_relative(tf.reduce_sum(tf.square(g - a), axis=[-2, -1]),
                               tf.reduce_sum(tf.square(a), axis=[-2, -1])))
    return tf.add_n(terms) / len(terms)


def _content_term(f, target):
    return _relative(tf.reduce_sum(tf.square(f - target), axis=[1, 2, 3]),
                     tf.reduce_sum(tf.square(target), axis=[1, 2, 3]))


def total_variation(images):
    """Mean squared difference between neighbouring pixels (smaller = smoother).  Lesson 4.1."""
    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape.rank == 3:
        x = x[None]
    dy = tf.reduce_mean(tf.square(x[:, 1:] - x[:, :-1]), axis=[1, 2, 3])
    dx = tf.reduce_mean(tf.square(x[:, :, 1:] - x[:, :, :-1]), axis=[1, 2, 3])
    return dx + dy


def _as_image(image, what):
    if isinstance(image, (str, Path)) or type(image).__module__.startswith("PIL."):
        return _data.load_image(image)
    arr = np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"The {what} image must be one image (H, W, 3); got shape {arr.shape}.")
    return _data.load_image(arr)  # grey/RGBA/uint8 -> float RGB in [0, 1], NaN -> error


def style_loss(image, style, style_layers=None, model=None) -> float:
    """The style loss of ``image`` against ``style`` (0 = same Gram matrices).  Lesson 4.1.

    Mean over ``style_layers`` of the relative Gram error.  The style image is resized to the
    image's size first; an image batch gives one loss per image (an array).
    """
    model = default_extractor() if model is None else model
    style_layers = default_layers(model)[1] if style_layers is None else style_layers
    style_layers = [style_layers] if isinstance(style_layers, str) else list(style_layers)
    _check_layers(model, style_layers[0] if style_layers else "", style_layers)
    batch = np.asarray(image, np.float32)
    single = batch.ndim == 3
    if single:
        batch = _as_image(batch, "input")[None]
    hw = _input_hw(model) or batch.shape[1:3]
    if batch.shape[1:3] != tuple(hw):
        batch = np.stack([_data.resize_image(b, tuple(hw)) for b in batch])
    style = _data.resize_image(_as_image(style, "style"), tuple(hw))
    fm = feature_model(model, style_layers)
    targets = [gram_matrix(f) for f in _listify(fm(style[None], training=False))]
    losses = _style_terms(_listify(fm(batch, training=False)), targets).numpy()
    return float(losses[0]) if single else losses


def _listify(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


# --------------------------------------------------------------------------- optimization
def _positive(name, value, allow_zero=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}.") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {need}, got {value!r}.")
    return v


def style_transfer(content, style, steps=200, content_weight=1.0, style_weight=10.0,
                   tv_weight=0.0, content_layer=None, style_layers=None, init="noise", seed=0,
                   model=None, learning_rate=0.03, size=None, progress=True):
    """Gatys et al.'s style transfer: optimize an image's pixels.  Lesson 4.1.

    Loss = ``content_weight`` x content loss (relative feature error at ``content_layer``)
    + ``style_weight`` x style loss (mean relative Gram error over ``style_layers``)
    + ``tv_weight`` x total variation.  The network (``model``, default
    :func:`default_extractor`) is fixed; Adam changes the pixels, kept in [0, 1].
    ``init="noise"`` starts from seeded white noise as in the original method; ``"content"``
    starts from the photo and converges much faster.  The style image is resized to the
    content image's size (or both to ``size``).  Each step is one compiled TensorFlow function,
    traced once per network and image size and reused by later runs.

    Returns ``(image, history)``: the float32 RGB image and a dict of per-step lists
    ``total``, ``content``, ``style``, ``tv``, plus ``seconds`` (wall time of the loop).
    """
    steps = int(steps) if isinstance(steps, (int, np.integer)) else steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    content_weight = _positive("content_weight", content_weight)
    style_weight = _positive("style_weight", style_weight)
    tv_weight = _positive("tv_weight", tv_weight, allow_zero=True)
    learning_rate = _positive("learning_rate", learning_rate)
    if init not in ("noise", "content"):
        raise ValueError(f"init must be 'noise' or 'content', got {init!r}.")
    model = default_extractor() if model is None else model
    d_content, d_style = default_layers(model)
    content_layer, style_layers = _check_layers(model, content_layer or d_content,
                                                d_style if style_layers is None else style_layers)
    content = _as_image(content, "content")
    style = _as_image(style, "style")
    fixed = _input_hw(model)
    if fixed is not None:
        hw = fixed
    elif size is not None:
        hw = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
    else:
        hw = content.shape[:2]
    content = _data.resize_image(content, tuple(hw)) if content.shape[:2] != tuple(hw) else content
    style = _data.resize_image(style, tuple(hw))  # different sizes: the style follows the content

    fm = feature_model(model, [content_layer] + style_layers)
    outs = _listify(fm(content[None], training=False))
    content_target = tf.constant(outs[0])
    style_targets = [tf.constant(gram_matrix(f)) for f in
                     _listify(fm(style[None], training=False))[1:]]

    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 1, content.shape).astype(np.float32) if init == "noise" else content
    image, step = _style_step(fm, start, content_target, style_targets,
                              (content_weight, style_weight, tv_weight), learning_rate)

    from tqdm.auto import tqdm

    history = {"total": [], "content": [], "style": [], "tv": []}
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=f"style transfer ({init})", unit="step", disable=not progress,
               mininterval=0.5, file=sys.stdout)
    for i in bar:
        vals = [float(v) for v in step()]
        for k, v in zip(history, vals):
            history[k].append(v)
        if i % 10 == 0 or i == steps - 1:
            bar.set_postfix(style=f"{vals[2]:.3g}", content=f"{vals[1]:.3g}")
    bar.close()
    history["seconds"] = time.perf_counter() - t0
    return image[0].numpy(), history


class _StyleStep:
    """The compiled step of :func:`style_transfer` for one feature model and image size.

    The image, the targets, the loss weights and Adam's state live in variables, so a new run
    assigns them instead of tracing VGG's forward and backward pass again (1-2 s per run).
    """

    def __init__(self, fm, start, content_target, style_targets):
        self.image = tf.Variable(start[None])
        self.content_target = tf.Variable(content_target)
        self.style_targets = [tf.Variable(g) for g in style_targets]
        self.weights = [tf.Variable(0.0) for _ in range(3)]
        self.opt = keras.optimizers.Adam(1.0)
        self.opt.build([self.image])  # its moments exist before tracing: the step traces once
        image, opt = self.image, self.opt

        def step():
            cw, sw, tw = self.weights
            with tf.GradientTape() as tape:
                feats = _listify(fm(image, training=False))
                c = _content_term(feats[0], self.content_target)[0]
                s = _style_terms(feats[1:], self.style_targets)[0]
                t = total_variation(image)[0]
                total = cw * c + sw * s + tw * t
            grad = tape.gradient(total, image)
            opt.apply_gradients([(grad, image)])
            image.assign(tf.clip_by_value(image, 0.0, 1.0))
            return total, c, s, t

        # the gradient to the image through faster kernels (course_helpers._fastgrad, same numbers)
        self.step = tf.function(_fastgrad.traced_with_fast_gradients(fm, step))

    def reset(self, start, content_target, style_targets, weights, learning_rate):
        """A fresh run: new start image and targets, Adam's moments and step count at zero."""
        self.image.assign(start[None])
        self.content_target.assign(content_target)
        for var, g in zip(self.style_targets, style_targets):
            var.assign(g)
        for var, w in zip(self.weights, weights):
            var.assign(w)
        for var in self.opt.variables:  # the step count and Adam's two moments
            var.assign(tf.zeros_like(var))
        self.opt.learning_rate = learning_rate


_STYLE_STEPS: dict = {}


def _style_step(fm, start, content_target, style_targets, weights, learning_rate):
    """(image variable, compiled step) for a run of :func:`style_transfer`, reset to ``start``."""
    key = (id(fm), tuple(start.shape))  # fm lives in _FEATURE_MODELS, so its id stays its own
    entry = _STYLE_STEPS.get(key)
    if entry is None:
        entry = _STYLE_STEPS[key] = _StyleStep(fm, start, content_target, style_targets)
    entry.reset(start, content_target, style_targets, weights, learning_rate)
    return entry.image, entry.step


# --------------------------------------------------------------------------- one pass (Johnson)
class _ReflectPad(keras.layers.Layer):
    """Mirror ``pad`` pixels on each side (Johnson et al. pad this way to avoid border artefacts)."""

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, x):
        p = self.pad
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT") if p else x

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


def build_transform_net(width: int = 16, n_res: int = 3, seed: int = 0):
    """Johnson et al.'s image transformation network, small enough for a CPU.  Lesson 4.1.

    9x9 conv -> two stride-2 convs (downsampling) -> ``n_res`` residual blocks -> two
    upsample+conv stages -> 9x9 conv -> sigmoid, with instance normalization.  Fully
    convolutional: it stylizes images of any size (sides are padded to a multiple of 4).
    """
    def init(k):
        return keras.initializers.HeNormal(seed=seed * 1000 + k)

    counter = iter(range(10_000))

    def conv(x, filters, size, strides=1, relu=True, name=None):
        x = _ReflectPad(size // 2, name=f"{name}_pad")(x)  # no dark frame at the borders
        x = keras.layers.Conv2D(filters, size, strides=strides, padding="valid",
                                kernel_initializer=init(next(counter)), name=name)(x)
        x = keras.layers.GroupNormalization(groups=-1, name=f"{name}_in")(x)  # instance norm
        return keras.layers.Activation("relu", name=f"{name}_relu")(x) if relu else x

    inputs = keras.Input((None, None, 3), name="image")
    x = conv(inputs, width, 9, name="down0")
    x = conv(x, 2 * width, 3, strides=2, name="down1")
    x = conv(x, 4 * width, 3, strides=2, name="down2")
    for r in range(n_res):
        y = conv(x, 4 * width, 3, name=f"res{r}_a")
        y = conv(y, 4 * width, 3, relu=False, name=f"res{r}_b")
        x = keras.layers.Add(name=f"res{r}_add")([x, y])
    x = keras.layers.UpSampling2D(2, name="up1_resize")(x)
    x = conv(x, 2 * width, 3, name="up1")
    x = keras.layers.UpSampling2D(2, name="up2_resize")(x)
    x = conv(x, width, 3, name="up2")
    x = _ReflectPad(4, name="rgb_pad")(x)
    x = keras.layers.Conv2D(3, 9, padding="valid", activation="sigmoid",
                            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                            name="rgb")(x)
    return keras.Model(inputs, x, name="style_net")


def stylize(net, images) -> np.ndarray:
    """Stylize one image (H, W, 3) or a batch in ONE forward pass of ``net``.  Lesson 4.1."""
    arr = np.asarray(images)
    single = arr.ndim in (2, 3)
    batch = [_as_image(arr, "input")] if single else [_as_image(a, "input") for a in arr]
    shapes = {b.shape for b in batch}
    if len(shapes) > 1:
        raise ValueError("All images of a batch must have the same size; resize them first "
                         "(ch.data.resize_image).")
    x = np.stack(batch)
    h, w = x.shape[1:3]
    ph, pw = (-h) % 4, (-w) % 4
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect")
    forward = _models._info(net, "forward")
    if forward is None:  # one compiled function per network: no Python overhead per layer
        forward = tf.function(lambda t: net(t, training=False), reduce_retracing=True)
        _models._tag(net, forward=forward)
    out = forward(tf.constant(x)).numpy()[:, :h, :w]
    return out[0] if single else out


def _stylizer_paths(name=STYLIZER_NAME, folder=None):
    folder = config.data_dir() if folder is None else Path(folder)
    return folder / f"{name}.weights.h5", folder / f"{name}.json"


def stylizer_record(name=STYLIZER_NAME, folder=None) -> dict:
    """The training record shipped with the one-pass network (settings, seconds).  Lesson 4.1."""
    _, meta = _stylizer_paths(name, folder)
    if not meta.is_file():
        raise FileNotFoundError(f"The record of the one-pass style network is missing ({meta}). "
                                f"Retrain it with `{TRAIN_COMMAND}`.")
    try:
        return json.loads(meta.read_text())
    except ValueError as err:
        raise ValueError(f"{meta} is not valid JSON ({err}). Restore it with "
                         f"`git checkout -- data/` or retrain with `{TRAIN_COMMAND}`.") from None


def load_stylizer(name=STYLIZER_NAME, folder=None):
    """The trained one-pass style network shipped in ``data/``.  Lesson 4.1.

    Raises a clear error naming the retrain command when the file is missing or corrupt.
    """
    weights, _ = _stylizer_paths(name, folder)
    record = stylizer_record(name, folder)
    if not weights.is_file():
        raise FileNotFoundError(f"The weights of the one-pass style network are missing "
                                f"({weights}). Retrain them with `{TRAIN_COMMAND}`.")
    s = record["settings"]
    net = build_transform_net(width=s["width"], n_res=s["n_res"], seed=s["seed"])
    try:
        net.load_weights(str(weights))
    except Exception as err:  # h5py OSError, Keras ValueError
        raise ValueError(f"The weights file {weights} is corrupt or does not match its record "
                         f"({type(err).__name__}). Restore it with `git checkout -- data/` or "
                         f"retrain with `{TRAIN_COMMAND}`.") from None
    _models._tag(net, name=name, record=record)
    return net


def stylizer_style_image(record=None) -> np.ndarray:
    """The style image the shipped network was trained on (rebuilt from its record)."""
    record = stylizer_record() if record is None else record
    s = record["settings"]
    return style_images(s["style_size"])[s["style"]]


def style_images(size: int = 128) -> dict:
    """Style images that ship with the course: scikit-image textures and colourful photo crops.

    ``brick``, ``grass``, ``gravel`` (grey textures) and ``flower``, ``coffee``, ``china``
    (photos: their colours and strokes make vivid styles).  Lesson 4.1.
    """
    photos = _data.sample_images(size)
    out = dict(_data.textures(size))
    for name in ("flower", "coffee", "china"):
        out[name] = photos[name]
    return out


@functools.lru_cache(maxsize=1)
def _crop_sources():
    """Every shipped photo and texture at 256 px and at 0.6x and 0.35x that size."""
    from skimage.transform import rescale

    sources = list(_data.sample_images(256).values()) + list(_data.textures(256).values())
    return [[rescale(img, f, channel_axis=-1, anti_aliasing=True).astype(np.float32)
             for f in (0.35, 0.6, 1.0)] for img in sources]


def training_images(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Seeded training set of the one-pass network: crops of the shipped photos and textures
    at several scales, and generated shapes (``ch.data.make_shapes``).  Lesson 4.1."""
    rng = np.random.default_rng(seed)
    n_shapes = n // 3
    shapes, _, _ = _data.make_shapes(n_shapes, seed=seed, size=size)
    pyramids = _crop_sources()
    crops = np.empty((n - n_shapes, size, size, 3), np.float32)
    for i in range(len(crops)):
        levels = pyramids[rng.integers(len(pyramids))]
        img = levels[rng.integers(len(levels))]
        top = rng.integers(img.shape[0] - size + 1)
        left = rng.integers(img.shape[1] - size + 1)
        crop = img[top:top + size, left:left + size]
        crops[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
    images = np.concatenate([shapes, crops])
    return np.clip(images[rng.permutation(len(images))], 0, 1)


TRAIN_DEFAULTS = dict(style="flower", style_size=96, size=64, steps=1200, batch_size=4,
                      n_images=1200, lr=2e-3, content_weight=1.0, style_weight=3.0,
                      tv_weight=10.0, width=16, n_res=3, seed=0, extractor=OFFLINE_NAME)


def train_stylizer(out_dir=None, name=STYLIZER_NAME, verbose=True, **overrides) -> dict:
    """Train the one-pass network for one style with the perceptual loss.  Lesson 4.1.

    Content target: the input's own features at the extractor's content layer; style target:
    the style image's Gram matrices.  Deterministic for a seed.  Writes
    ``<name>.weights.h5`` and ``<name>.json`` into ``out_dir`` (when given) and returns the
    record; ``record["net"]`` is the trained network.
    """
    cfg = dict(TRAIN_DEFAULTS)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise TypeError(f"Unknown training settings: {sorted(unknown)}. Known: {sorted(cfg)}.")
    cfg.update(overrides)
    for key in ("steps", "batch_size", "n_images", "size", "width", "n_res"):
        if int(cfg[key]) <= 0:
            raise ValueError(f"{key} must be a positive integer, got {cfg[key]!r}.")
    for key in ("lr", "content_weight", "style_weight"):
        _positive(key, cfg[key])
    _positive("tv_weight", cfg["tv_weight"], allow_zero=True)
    seed = int(cfg["seed"])
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    if cfg["extractor"] == OFFLINE_NAME:
        model = offline_extractor()
    elif cfg["extractor"] == "vgg19":
        model = vgg19_extractor()
    else:
        raise ValueError(f"extractor must be {OFFLINE_NAME!r} or 'vgg19', got {cfg['extractor']!r}.")
    styles = style_images(cfg["style_size"])
    if cfg["style"] not in styles:
        raise ValueError(f"Unknown style {cfg['style']!r}; choose from {sorted(styles)}.")
    style = styles[cfg["style"]]
    content_layer, style_layers = default_layers(model)

    t0 = time.time()
    images = training_images(cfg["n_images"], size=cfg["size"], seed=seed)
    held_out = training_images(16, size=cfg["size"], seed=seed + 10_000)
    fm = feature_model(model, [content_layer] + style_layers)
    # The style is seen at the training size: Gram matrices of the style image at style_size.
    style_targets = [tf.constant(gram_matrix(f))
                     for f in _listify(fm(style[None], training=False))[1:]]
    net = build_transform_net(width=cfg["width"], n_res=cfg["n_res"], seed=seed)
    opt = keras.optimizers.Adam(cfg["lr"])
    cw, sw, tw = (tf.constant(float(cfg[k]), tf.float32)
                  for k in ("content_weight", "style_weight", "tv_weight"))

    @tf.function
    def train_step(x):
        target = _listify(fm(x, training=False))[0]
        with tf.GradientTape() as tape:
            y = net(x, training=True)
            feats = _listify(fm(y, training=False))
            c = tf.reduce_mean(_content_term(feats[0], target))
            s = tf.reduce_mean(_style_terms(feats[1:], style_targets))
            t = tf.reduce_mean(total_variation(y))
            total = cw * c + sw * s + tw * t
        grads = tape.gradient(total, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return total, c, s

    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed + 1)
    bs = int(cfg["batch_size"])
    bar = tqdm(range(int(cfg["steps"])), desc="training style-net", unit="step",
               disable=not verbose, mininterval=2.0, file=sys.stderr)
    order = rng.permutation(len(images))
    pos = 0
    losses = []
    for i in bar:
        if pos + bs > len(order):
            order, pos = rng.permutation(len(images)), 0
        batch = images[order[pos:pos + bs]]
        pos += bs
        total, c, s = (float(v) for v in train_step(tf.constant(batch)))
        losses.append([total, c, s])
        if i % 20 == 0:
            bar.set_postfix(style=f"{s:.3f}", content=f"{c:.3f}")
    bar.close()
    seconds = time.time() - t0

    out = stylize(net, held_out)
    before = style_loss(held_out, style, style_layers, model=model)
    after = style_loss(out, style, style_layers, model=model)
    record = {
        "name": name,
        "what": "Johnson et al. feed-forward style network for one style (lesson 4.1)",
        "settings": cfg,
        "content_layer": content_layer,
        "style_layers": style_layers,
        "held_out_style_loss_input": float(np.mean(before)),
        "held_out_style_loss_output": float(np.mean(after)),
        "final_train_losses": {"total": float(np.mean([l[0] for l in losses[-50:]])),
                               "content": float(np.mean([l[1] for l in losses[-50:]])),
                               "style": float(np.mean([l[2] for l in losses[-50:]]))},
        "parameters": int(net.count_params()),
        "seconds": round(seconds, 1),
        "made_by": f"{TRAIN_COMMAND}" + "".join(
            f" --{k.replace('_', '-')} {v}" for k, v in overrides.items()
            if v != TRAIN_DEFAULTS[k]),
    }
    if out_dir is not None:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        weights, meta = _stylizer_paths(name, folder)
        net.save_weights(str(weights))
        meta.write_text(json.dumps(record, indent=2) + "\n")
    record["net"] = net
    return record


def speed_comparison(net, content, style, steps=None, model=None, repeats=5) -> dict:
    """Time one forward pass of ``net`` against ``steps`` optimization steps, same image and
    machine.  Prints both and their ratio, returns them.  Lesson 4.1."""
    steps = config.scaled(200, 30) if steps is None else steps
    content = _as_image(content, "content")
    stylize(net, content)  # warm up (first call builds the graph)
    times = []
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        stylize(net, content)
        times.append(time.perf_counter() - t0)
    one_pass = float(np.median(times))
    _, hist = style_transfer(content, style, steps=steps, init="content", model=model,
                             progress=False)
    res = {"optimization_seconds": hist["seconds"], "steps": int(steps),
           "one_pass_seconds": one_pass, "speedup": hist["seconds"] / one_pass,
           "size": content.shape[:2]}
    print(f"{res['size'][0]}x{res['size'][1]} image · optimization, {steps} steps: "
          f"{res['optimization_seconds']:.1f} s · one forward pass: "
          f"{1000 * one_pass:.0f} ms · {res['speedup']:.0f}x faster")
    return res


# --------------------------------------------------------------------------- plots and widgets
def plot_result(content, style, image, history=None, title=None):
    """Content, style, result and (optionally) the loss curves.  Lesson 4.1."""
    fig, parts = _result_figure(history is not None)
    _result_update(parts, content, style, image, history, title)
    _plotting.drop_empty_title(fig, title)
    return fig


def _result_figure(with_history: bool):
    """The empty figure of :func:`plot_result`: (figure, the artists that change)."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    n = 4 if with_history else 3
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.2))
    parts = {"images": []}
    for ax, t in zip(axes, ("content", "style", "result")):
        parts["images"].append(ax.imshow(np.zeros((2, 2, 3))))
        ax.set_title(t)
        ax.axis("off")
    if with_history:
        ax = axes[3]
        for key in ("style", "content"):
            ax.semilogy([1, 2], [1, 2], label=f"{key} loss")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.set_title("losses")
        # plain tick labels ("0.01", not mathtext 10^-2): several times cheaper to redraw
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        parts["history"] = ax   # its ticks follow the data: the whole axes is redrawn
    parts["titles"] = [fig.suptitle(" ")]
    fig.tight_layout()
    return fig, parts


def _result_update(parts, content, style, image, history, title):
    for artist, img in zip(parts["images"], (content, style, image)):
        _plotting.set_image(artist, np.clip(img, 0, 1))
    if history is not None:
        ax = parts["history"]
        values = []
        for line, key in zip(ax.lines, ("style", "content")):
            line.set_data(np.arange(len(history[key])), history[key])
            values.append(np.asarray(history[key], float))
        values = np.concatenate(values)
        top = float(np.nanmax(values)) if values.size else 1.0
        # a run started from the content image has a content loss of ~0 at step 0: keep the
        # axis on the range that matters instead of reaching down to 1e-14
        bottom = max(float(np.nanmin(np.where(values > 0, values, np.inf))), 1e-4 * top)
        ax.set_xlim(0, max(len(history["style"]) - 1, 1))
        ax.set_ylim(bottom / 1.5, top * 1.5)
    parts["titles"][0].set_text(title or "")


def plot_convergence(histories: dict, key="total"):
    """Loss curves of several runs on one log axis (e.g. noise vs content start).  Lesson 4.1."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, hist in histories.items():
        ax.semilogy(hist[key], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{key} loss")
    ax.legend()
    fig.tight_layout()
    return fig


def style_explorer(contents: dict, styles: dict, model=None, size=96):
    """Widget for lesson 4.1: content and style image, style weight, content layer, style
    layers and steps; each new setting runs a short optimization (started from the photo),
    cached, so returning to a setting is instant."""
    import ipywidgets as w

    from . import widgets as _widgets

    model = default_extractor() if model is None else model
    d_content, d_style = default_layers(model)
    layer_names = [_models.activation_layer(model, c).name  # VGG: the conv itself (ReLU inside)
                   for c in _models.conv_layer_names(model)]
    contents = {k: _data.resize_image(_as_image(v, "content"), size) for k, v in contents.items()}
    styles = {k: _data.resize_image(_as_image(v, "style"), size) for k, v in styles.items()}
    view = _widgets.FigureView(lambda: _result_figure(True))   # built once, updated in place

    def draw(content, style, style_weight, content_layer, style_layers, steps):
        if not style_layers:
            style_layers = d_style
        key = ("style_explorer", _widgets.model_key(model), _widgets.array_key(contents[content]),
               _widgets.array_key(styles[style]), style_weight, content_layer,
               tuple(style_layers), steps)   # returning to a setting redraws from the cache
        image, hist = _widgets.cached(key, lambda: style_transfer(
            contents[content], styles[style], steps=steps, style_weight=10 ** style_weight,
            content_layer=content_layer, style_layers=list(style_layers), init="content",
            model=model, progress=False))
        _result_update(view.parts, contents[content], styles[style], image, hist,
                       f"style weight {10 ** style_weight:.3g}, {hist['seconds']:.1f} s")
        return view.live

    return _widgets.interactive_plot(
        draw, content=list(contents), style=list(styles),
        style_weight=w.FloatSlider(value=1.0, min=-1.0, max=3.0, step=0.5,
                                   description="log10 style w."),
        content_layer=w.Dropdown(options=layer_names, value=d_content),
        style_layers=w.SelectMultiple(options=layer_names, value=tuple(d_style), rows=5),
        steps=w.IntSlider(value=config.scaled(60, 10), min=10, max=300, step=10))


def upload_widget():
    """A file-upload button for the learner's own images.  Lesson 4.1."""
    import ipywidgets as w

    return w.FileUpload(accept="image/*", multiple=True, description="Your images")


def uploaded_images(upload, size=None) -> dict:
    """The images in an ``ipywidgets.FileUpload`` as {file name: RGB float array}.  Lesson 4.1.

    Each file goes through ``ch.data.load_image``; a file that is not an image raises a
    ValueError naming it.
    """
    from PIL import Image, UnidentifiedImageError

    value = getattr(upload, "value", upload)
    if isinstance(value, dict):  # ipywidgets 7 style: {name: {"content": ...}}
        value = [dict(v, name=k) for k, v in value.items()]
    out = {}
    for item in value or ():
        name = item.get("name", f"upload{len(out)}")
        try:
            with Image.open(io.BytesIO(bytes(item["content"]))) as im:
                im.load()
                pil = im.copy()
        except (UnidentifiedImageError, OSError):
            raise ValueError(f"The uploaded file {name!r} is not an image that can be read; "
                             "upload a PNG or JPEG.") from None
        out[name] = _data.load_image(pil, size=size)
    return out


# --------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    """``python -m course_helpers.style``: train or evaluate the one-pass style network."""
    parser = argparse.ArgumentParser(prog="python -m course_helpers.style", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train the one-pass style network (writes data/)")
    tr.add_argument("--out", default=None, help="output folder (default: the course's data/)")
    tr.add_argument("--name", default=STYLIZER_NAME)
    for key, value in TRAIN_DEFAULTS.items():
        tr.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    ev = sub.add_parser("evaluate", help="print the shipped network's style-loss figures")
    ev.add_argument("--name", default=STYLIZER_NAME)
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        rec = stylizer_record(args.name)
        print(json.dumps({k: v for k, v in rec.items() if k != "settings"}, indent=2))
        return 0
    overrides = {k: getattr(args, k) for k in TRAIN_DEFAULTS
                 if getattr(args, k) != TRAIN_DEFAULTS[k]}
    out = Path(args.out) if args.out else config.data_dir()
    rec = train_stylizer(out, name=args.name, **overrides)
    print(f"wrote {out / (args.name + '.weights.h5')} in {rec['seconds']:.0f} s; held-out style "
          f"loss {rec['held_out_style_loss_input']:.3f} (input) -> "
          f"{rec['held_out_style_loss_output']:.3f} (stylized)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
