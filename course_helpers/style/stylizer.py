"""Johnson et al.'s one-pass style network: its architecture, the shipped network, its use.

The network is trained once per style (maintainer tooling: ``python -m
course_helpers.tools.stylizer train``); afterwards one forward pass replaces hundreds of
optimization steps (:func:`speed_comparison` measures it).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from .. import _checks, config
from .. import data as _data
from .. import models as _models
from .losses import _as_image
from .transfer import style_transfer

#: The shipped one-pass network's name: ``data/style-net.weights.h5`` and ``data/style-net.json``.
STYLIZER_NAME = "style-net"
#: The command that makes it (error messages name it).
TRAIN_COMMAND = "python -m course_helpers.tools.stylizer train"


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
    width = _checks.integer("width", width, low=1)
    n_res = _checks.integer("n_res", n_res, low=0)
    seed = _checks.integer("seed", seed, low=0)

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
    net = _checks.model(net, "net")
    arr = np.asarray(images)
    single = arr.ndim in (2, 3)
    batch = [_as_image(arr, "input")] if single else [_as_image(a, "input") for a in arr]
    if not batch:
        raise ValueError("images is empty: pass one image (H, W, 3) or a batch (n, H, W, 3).")
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


def style_images(size: int = 128) -> dict:
    """Style images that ship with the course: scikit-image textures and colourful photo crops.

    ``brick``, ``grass``, ``gravel`` (grey textures) and ``flower``, ``coffee``, ``china``
    (photos: their colours and strokes make vivid styles).  Lesson 4.1.
    """
    size = _checks.integer("size", size, low=8)
    photos = _data.sample_images(size)
    out = dict(_data.textures(size))
    for name in ("flower", "coffee", "china"):
        out[name] = photos[name]
    return out


def stylizer_style_image(record=None) -> np.ndarray:
    """The style image the shipped network was trained on (rebuilt from its record)."""
    record = stylizer_record() if record is None else record
    s = record["settings"]
    return style_images(s["style_size"])[s["style"]]


def speed_comparison(net, content, style, steps=None, model=None, repeats=5) -> dict:
    """Time one forward pass of ``net`` against ``steps`` optimization steps, same image and
    machine.  Prints both and their ratio, returns them.  Lesson 4.1."""
    net = _checks.model(net, "net")
    steps = config.scaled(200, 30) if steps is None else _checks.integer("steps", steps, low=1)
    repeats = _checks.integer("repeats", repeats, low=1)
    content = _as_image(content, "content")
    stylize(net, content)  # warm up (first call builds the graph)
    times = []
    for _ in range(repeats):
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
