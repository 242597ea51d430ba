"""Faster gradients with respect to a network's input (lessons 3.5, 3.6, 4).

Saliency, gradient ascent and style transfer all need d(output)/d(input image).  On a CPU two
of TensorFlow's backward kernels are much slower than the forward kernels doing the same
arithmetic (measured at VGG16's sizes on 2 cores, see ``benchmarks/RESULTS.md``):

* ``Conv2DBackpropInput``, a convolution's input gradient, is 1.1 to 3 times slower than a
  forward convolution of the same size.  For a stride-1 convolution that gradient *is* a
  forward convolution: the output gradient convolved with the kernel flipped in space and with
  its input and output channels swapped ("same" padding for an odd kernel, "full" padding for
  "valid").
* ``MatMul`` with a transposed weight matrix (a Dense layer's input gradient ``dy @ W.T``) is
  about 5 times slower for a batch of 8 than ``(W @ dy.T).T``, the same numbers.

:func:`fast_input_gradients` makes a model's ``Conv2D`` and ``Dense`` layers compute their
gradients that way while a function is traced.  The forward pass is unchanged; the gradients
are equal up to float rounding (tests/test_fastgrad.py checks them against TensorFlow's own).
"""
from __future__ import annotations

import contextlib
import functools

import tensorflow as tf
import tf_keras as keras

__all__ = ["eligible", "fast_layers", "fast_input_gradients", "traced_with_fast_gradients"]


def eligible(layer) -> bool:
    """True for a layer whose gradients :func:`fast_input_gradients` computes its own way."""
    return _conv_eligible(layer) or type(layer) is keras.layers.Dense


def _conv_eligible(layer) -> bool:
    """True for a plain 2-D convolution whose input gradient is a flipped forward convolution."""
    if type(layer) is not keras.layers.Conv2D:  # subclasses (transposed, depthwise) differ
        return False
    k = tuple(layer.kernel_size)
    return (tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)
            and layer.groups == 1 and layer.data_format == "channels_last"
            and (layer.padding == "valid" or (layer.padding == "same"
                                              and k[0] % 2 == 1 and k[1] % 2 == 1)))


def fast_layers(model) -> list:
    """The eligible ``Conv2D`` and ``Dense`` layers of ``model``, nested models included."""
    found, stack, seen = [], [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if eligible(layer):
            found.append(layer)
        stack.extend(getattr(layer, "layers", []))
    return found


def _flipped_conv(padding: str, x, kernel):
    @tf.custom_gradient
    def conv(x, k):
        y = tf.nn.conv2d(x, k, strides=1, padding=padding)

        def grad(dy):
            flipped = tf.transpose(tf.reverse(k, axis=[0, 1]), [0, 1, 3, 2])
            if padding == "SAME":
                dx = tf.nn.conv2d(dy, flipped, strides=1, padding="SAME")
            else:  # "full" padding: every output position that saw the input pixel
                kh, kw = k.shape[0] - 1, k.shape[1] - 1
                dx = tf.nn.conv2d(tf.pad(dy, [[0, 0], [kh, kh], [kw, kw], [0, 0]]), flipped,
                                  strides=1, padding="VALID")
            dk = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(k),
                                                 out_backprop=dy, strides=[1, 1, 1, 1],
                                                 padding=padding)
            return dx, dk

        return y, grad

    return conv(x, tf.convert_to_tensor(kernel))


@tf.custom_gradient
def _matmul(a, b):
    def grad(dy):
        # (b @ dy.T).T instead of dy @ b.T: TensorFlow's CPU MatMul is slow with b transposed
        return tf.transpose(tf.matmul(b, dy, transpose_b=True)), tf.matmul(a, dy, transpose_a=True)

    return tf.matmul(a, b), grad


def _dense_call(layer, original):
    def call(inputs, *args, **kwargs):
        if (args or kwargs or not isinstance(inputs, tf.Tensor) or inputs.shape.rank != 2
                or inputs.dtype != layer.kernel.dtype):
            return original(inputs, *args, **kwargs)
        outputs = _matmul(inputs, tf.convert_to_tensor(layer.kernel))
        if layer.use_bias:
            outputs = tf.nn.bias_add(outputs, layer.bias)
        if layer.activation is not None:
            outputs = layer.activation(outputs)
        return outputs

    return call


def _conv_op(padding, original):
    def convolution_op(x, kernel):
        if x.shape.rank != 4:   # e.g. an unknown rank: Keras's own op
            return original(x, kernel)
        return _flipped_conv(padding, x, kernel)

    return convolution_op


_PATCHED = ("convolution_op", "call")


@contextlib.contextmanager
def fast_input_gradients(model):
    """While open, ``model``'s eligible layers trace with the faster gradients above.

    Only what is traced (``tf.function``) or run inside the block is affected; the layers are
    restored when it closes, also after an error.
    """
    # a layer already patched by an enclosing block stays that block's to restore
    layers = [layer for layer in fast_layers(model)
              if not any(name in vars(layer) for name in _PATCHED)]
    try:
        for layer in layers:
            # object.__setattr__: an instance attribute shadowing the method, not tracked by Keras
            if type(layer) is keras.layers.Dense:
                object.__setattr__(layer, "call", _dense_call(layer, layer.call))
            else:
                object.__setattr__(layer, "convolution_op",
                                   _conv_op(layer.padding.upper(), layer.convolution_op))
        yield layers
    finally:
        for layer in layers:
            for name in _PATCHED:
                if name in vars(layer):
                    object.__delattr__(layer, name)


def traced_with_fast_gradients(model, fn):
    """``fn`` wrapped so that every trace of it runs inside :func:`fast_input_gradients`.

    Wrap the Python function before handing it to ``tf.function``.
    """
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with fast_input_gradients(model):
            return fn(*args, **kwargs)

    return wrapped
