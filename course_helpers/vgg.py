"""VGG16 and VGG19 (Simonyan & Zisserman 2015), built with the course's own code.

The same layers, names, shapes and order as ``tf_keras.applications.VGG16`` / ``VGG19`` with
``include_top=True``, behind an :class:`ImageNetPreprocess` layer, so that the ImageNet weights
file loads into them layer by layer.  The course builds them itself so that the large dense
kernels can start as zeros (:class:`ZerosWhenLarge`) and be filled afterwards slice by slice:
building and loading VGG16 then stays well under Binder's 2 GB.  Used by ``ch.models``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from . import weights as _weights

#: Conv layers per block, and each block's width.
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


class ImageNetPreprocess(keras.layers.Layer):
    """[0, 1] RGB -> the 'caffe' input VGG expects (BGR, 0..255, ImageNet mean removed)."""

    MEAN_BGR = (103.939, 116.779, 123.68)
    keeps_positions = True   # acts on each pixel alone (ch.graph.keeps_positions)

    def call(self, x):
        x = x[..., ::-1] * 255.0
        return x - tf.constant(self.MEAN_BGR, dtype=x.dtype)


@keras.saving.register_keras_serializable(package="course_helpers")
class ZerosWhenLarge(keras.initializers.GlorotUniform):
    """Glorot uniform (Keras's default, as in ``keras.applications``), except that a weight of
    more than ``ch.weights.LARGE_WEIGHT`` values starts as zeros.

    Drawing VGG16's fc1 (103 M values) in one go holds three 411 MB temporaries next to the
    variable; zeros cost one copy.  :func:`build` then fills such a weight slice by slice, from
    the same Glorot rule, or loads it from a weights file.  Re-created from its config (lesson
    8's randomization), it is still Glorot uniform: ``ch.sanity`` draws large weights in slices.
    Registered with Keras's documented serialization registry, so that a layer built with it
    can be re-created from its config (``clone_model``, ``ch.filters.untrained_twin``).
    """

    def __call__(self, shape, dtype=None, **kwargs):
        if int(np.prod(shape)) > _weights.LARGE_WEIGHT:
            return tf.zeros(shape, dtype or tf.float32)
        return super().__call__(shape, dtype, **kwargs)


def build(name: str = "vgg16", weights_file=None, fix: str = "fetch the file again",
          seed: int = 0):
    """VGG16 or VGG19 taking [0, 1] RGB images of 224 x 224, ending in a softmax over 1,000 classes.

    ``weights_file``: a Keras weights file of the ImageNet layout, loaded layer by layer (its
    errors name the file and ``fix``); None gives Glorot-uniform weights seeded by ``seed``.
    """
    if name not in BLOCKS:
        raise ValueError(f"Unknown VGG model {name!r}; choose from {sorted(BLOCKS)}.")
    inputs = keras.Input((224, 224, 3), name="image")
    x = ImageNetPreprocess(name="imagenet_preprocess")(inputs)
    k = 0

    def init():
        nonlocal k
        k += 1
        return ZerosWhenLarge(seed=seed * 100 + k)

    for b, (n, width) in enumerate(zip(BLOCKS[name], WIDTHS), 1):
        for c in range(1, n + 1):
            x = keras.layers.Conv2D(width, 3, activation="relu", padding="same",
                                    kernel_initializer=init(), name=f"block{b}_conv{c}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(4096, activation="relu", kernel_initializer=init(), name="fc1")(x)
    x = keras.layers.Dense(4096, activation="relu", kernel_initializer=init(), name="fc2")(x)
    x = keras.layers.Dense(1000, activation="softmax", kernel_initializer=init(),
                           name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if weights_file is not None:
        _weights.load_h5_weights(model, weights_file, fix=fix)
        return model
    for layer in model.layers:   # the kernels left at zero: drawn now, slice by slice
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and int(np.prod(kernel.shape)) > _weights.LARGE_WEIGHT:
            _weights._redraw(kernel, layer.kernel_initializer, layer.kernel_initializer.seed)
    return model
