"""Lessons 3.5 and 5 — attributions: which input pixels raise a class score (notebooks 04, 07, 08).

Each function returns the raw attribution of one image: float32 of shape (H, W, 3), on the
image's own scale (pixels in [0, 1]); ``ch.saliency.reduce_channels`` (or a sum over the last
axis) turns it into a map.  The target is always the class score before the softmax
(``ch.models.logits_model``), as for the other methods of the course.

* :func:`gradient_times_input`: the gradient times the image (Shrikumar et al. 2016).
* :func:`integrated_gradients`: the gradient averaged along the straight line from a baseline
  to the image, times (image - baseline) (Sundararajan et al. 2017).  The sum of the
  attributions is close to score(image) - score(baseline) ("completeness").
* :func:`guided_backprop` and :func:`deconvnet`: the gradient with a different backward rule at
  every ReLU (Springenberg et al. 2015; Zeiler & Fergus 2014).
* :func:`guided_gradcam`: guided backprop times the Grad-CAM map (Selvaraju et al. 2017).

Changing the backward rule of ReLUs changes nothing in the model: the forward pass is written
out here layer by layer (:func:`relu_rule_gradient`), and each ReLU in it (in an ``Activation``
or ``ReLU`` layer, or inside a ``Conv2D``/``Dense`` layer) goes through one of this module's own
``tf.custom_gradient`` functions.  Every other layer is called as it is (a capped or leaky
ReLU, such as ``ReLU(6.0)``, keeps its ordinary gradient); a nested model is walked the same
way.  The model, its layers and everyone else's gradients stay as they were.
"""
from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf
import tf_keras as keras

from . import _checks
from . import graph as _graph
from . import models as _models
from . import saliency as _saliency

BASELINES = ("black", "grey", "blur")
#: The "blur" baseline's Gaussian standard deviation, as a fraction of the image's longer side
#: (4 px on course-cnn's 64-px shapes, 14 px at 224 px).
BLUR_SIGMA = 1 / 16
#: The backward rules at a ReLU: ``"gradient"`` (TensorFlow's own: pass where the input was
#: positive), ``"guided"`` (also only where the incoming gradient is positive) and
#: ``"deconvnet"`` (only where the incoming gradient is positive, whatever the input was).
RULES = ("gradient", "guided", "deconvnet")


# --------------------------------------------------------------------------- ReLU backward rules
# TensorFlow's own ReluGrad kernel is dy * (relu output > 0): one fused op, as in the ordinary
# gradient; the guided rule adds a ReLU of its result, the deconvnet rule is a ReLU of dy.
@tf.custom_gradient
def _relu_gradient(x):
    y = tf.nn.relu(x)

    def backward(dy):
        return tf.raw_ops.ReluGrad(gradients=dy, features=y)
    return y, backward


@tf.custom_gradient
def _relu_guided(x):
    y = tf.nn.relu(x)

    def backward(dy):
        return tf.nn.relu(tf.raw_ops.ReluGrad(gradients=dy, features=y))
    return y, backward


@tf.custom_gradient
def _relu_deconvnet(x):
    y = tf.nn.relu(x)

    def backward(dy):
        return tf.nn.relu(dy)
    return y, backward


_RELU = {"gradient": _relu_gradient, "guided": _relu_guided, "deconvnet": _relu_deconvnet}


def _is_relu(fn) -> bool:
    return fn is keras.activations.relu or fn is tf.nn.relu


def _plain_relu_layer(lyr) -> bool:
    if isinstance(lyr, keras.layers.ReLU):
        return (lyr.max_value is None and float(lyr.negative_slope) == 0
                and float(lyr.threshold) == 0)
    return isinstance(lyr, keras.layers.Activation) and _is_relu(lyr.activation)


def _linear_part(lyr, x):
    """A Conv or Dense layer's output before its activation, with its own weights."""
    if type(lyr) in (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D):
        y = lyr.convolution_op(x, lyr.kernel)
        if lyr.use_bias:
            y = tf.nn.bias_add(y, lyr.bias, data_format="NHWC" if lyr.data_format ==
                               "channels_last" or y.shape.rank != 4 else "NCHW")
        return y
    if type(lyr) is keras.layers.Dense:
        y = tf.tensordot(x, lyr.kernel, [[x.shape.rank - 1], [0]]) if x.shape.rank > 2 \
            else tf.matmul(x, lyr.kernel)
        return y + lyr.bias if lyr.use_bias else y
    raise ValueError(f"Layer {lyr.name!r} ({type(lyr).__name__}) has a ReLU inside, and the "
                     "ReLU rules here are written for Conv and Dense layers only: build the "
                     "model with a separate Activation('relu') layer after it.")


def _apply(lyr, inputs, relu, last_linear: bool):
    """One layer on ``inputs`` with ``relu`` for every ReLU in it."""
    if isinstance(lyr, keras.Model):
        return _forward(lyr, inputs, relu, logits=False)
    if _plain_relu_layer(lyr):
        return relu(inputs)
    activation = getattr(lyr, "activation", None)
    if last_linear or _is_relu(activation):
        y = _linear_part(lyr, inputs)
        return y if last_linear else relu(y)
    return lyr(inputs, training=False)


def _ends(model):
    """(the layer whose output is the class scores, whether that layer's activation is dropped)."""
    _models.logits_model(model)   # its checks: one output, ending in a softmax
    last = model.outputs[0]._keras_history.layer
    if isinstance(last, keras.layers.Dense):
        return last, True
    return _graph.inputs_of(model, last)[0], False


def _forward(model, x, relu, logits: bool = True):
    """The model's forward pass written out layer by layer, ``relu`` at every ReLU.

    With ``logits`` it stops at the class scores before the softmax."""
    if logits:
        end, drop_activation = _ends(model)
    else:
        end, drop_activation = model.outputs[0]._keras_history.layer, False
    needed, todo = set(), [end]
    while todo:                        # the layers the end depends on
        lyr = todo.pop()
        if lyr.name not in needed:
            needed.add(lyr.name)
            if not isinstance(lyr, keras.layers.InputLayer):
                todo.extend(_graph.inputs_of(model, lyr))
    values = {model.inputs[0]._keras_history.layer.name: x}   # (a Sequential's input layer
    for lyr in model.layers:           # is not in its .layers; graph order otherwise)
        if lyr.name not in needed or isinstance(lyr, keras.layers.InputLayer):
            continue
        srcs = [values[src.name] for src in _graph.inputs_of(model, lyr)]
        values[lyr.name] = _apply(lyr, srcs[0] if len(srcs) == 1 else srcs, relu,
                                  last_linear=drop_activation and lyr is end)
    return values[end.name]


_RULE_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def relu_rule_gradient(model, rule: str = "guided"):
    """The compiled step ``f(x, classes) -> (gradients, scores)`` with ReLU backward ``rule``.

    Like ``ch.saliency.gradient_function`` (float32 batch (n, H, W, 3), int32 classes (n,),
    scores before the softmax), but the forward pass is written out layer by layer and every
    ReLU uses ``rule`` (:data:`RULES`) on the way back.  ``rule="gradient"`` gives the ordinary
    gradient (the tests compare it with TensorFlow's).  Built once per (model, rule).
    """
    _checks.model(model)
    rule = _checks.choice("rule", rule, RULES)
    per_model = _RULE_FNS.setdefault(model, {})
    if rule not in per_model:
        _ends(model)
        ref, relu = weakref.ref(model), _RELU[rule]   # the cache holds no strong reference
        h, w = _checks.input_size(model)

        def step(x, classes):
            with tf.GradientTape() as tape:
                tape.watch(x)
                scores = _forward(ref(), x, relu)
                picked = tf.gather(scores, classes, axis=1, batch_dims=1)
            return tape.gradient(picked, x), picked

        per_model[rule] = tf.function(step, input_signature=[
            tf.TensorSpec((None, h, w, 3), tf.float32), tf.TensorSpec((None,), tf.int32)])
    return per_model[rule]


def _one(model, image, class_index):
    _checks.model(model)
    return _checks.image_for(model, image), _checks.check_class(model, class_index)


def _rule_attribution(model, image, class_index, rule):
    img, c = _one(model, image, class_index)
    grad, _ = relu_rule_gradient(model, rule)(tf.constant(img[None]), tf.constant([c], tf.int32))
    return grad.numpy()[0]           # float32, as the model computes


# --------------------------------------------------------------------------- the methods
def gradient_times_input(model, image, class_index) -> np.ndarray:
    """The gradient of the class score times the image, (H, W, 3) float32.  Lesson 3.5.

    Written out in lesson 04, "In plain code: gradient × input and integrated gradients".
    """
    img, c = _one(model, image, class_index)
    grad, _ = _saliency.gradient_function(model)(tf.constant(img[None]), tf.constant([c], tf.int32))
    return (grad.numpy()[0] * img).astype(np.float32)


def baseline_image(model, image, baseline="black") -> np.ndarray:
    """The baseline of :func:`integrated_gradients` for ``image``: ``"black"`` (zeros),
    ``"grey"`` (0.5 everywhere), ``"blur"`` (the image blurred with a Gaussian of
    :data:`BLUR_SIGMA` times its longer side) or an image of its own.  Lesson 3.5."""
    img = _checks.image_for(model, image)
    if isinstance(baseline, str):
        baseline = _checks.choice("baseline", baseline, BASELINES)
        if baseline == "black":
            return np.zeros_like(img)
        if baseline == "grey":
            return np.full_like(img, 0.5)
        from scipy.ndimage import gaussian_filter

        sigma = BLUR_SIGMA * max(img.shape[:2])
        return gaussian_filter(img, sigma=(sigma, sigma, 0), mode="reflect").astype(np.float32)
    if baseline is None or np.isscalar(baseline):
        raise TypeError(f"baseline must be one of {', '.join(map(repr, BASELINES))} or an image "
                        f"of the input's size, got {baseline!r}.")
    base = _checks.image_for(model, baseline, name="baseline")
    if base.shape != img.shape:
        raise ValueError(f"baseline has shape {base.shape} but the image {img.shape}: give them "
                         "one size, e.g. ch.data.load_image(baseline, size=image.shape[0]).")
    return base


def path_weights(steps: int) -> np.ndarray:
    """The trapezoid rule's weights of the ``steps + 1`` points alpha = 0, 1/steps, ..., 1:
    1/steps each, half that at both ends (they sum to 1).  Lesson 3.5."""
    steps = _checks.integer("steps", steps, low=1)
    w = np.full(steps + 1, 1.0 / steps)
    w[[0, -1]] /= 2
    return w


def integrated_gradients(model, image, class_index, baseline="black", steps: int = 64,
                         batch_size: int = 32) -> np.ndarray:
    """Integrated gradients of the class score, (H, W, 3) float32.  Lesson 3.5.

    ``(image - baseline) * mean gradient`` along the straight line ``baseline + alpha * (image
    - baseline)``, alpha from 0 to 1 in ``steps`` intervals, averaged with the trapezoid rule
    (:func:`path_weights`): ``steps + 1`` gradients, computed in batches of at most
    ``batch_size`` (fewer for large images).  ``baseline`` is ``"black"``, ``"grey"``,
    ``"blur"`` or an image (:func:`baseline_image`).  The attributions sum to about
    score(image) - score(baseline); more steps, closer.

    Written out in lesson 04, "In plain code: gradient × input and integrated gradients".
    """
    img, c = _one(model, image, class_index)
    base = baseline_image(model, img, baseline)
    weights = path_weights(steps)
    batch_size = _checks.integer("batch_size", batch_size, low=1)
    batch_size = _checks.batch_limit(img.shape, batch_size, _saliency.GRADIENT_BATCH_PIXELS)
    n = len(weights)
    batches = -(-n // batch_size)
    size = -(-n // batches)            # batches of even size: 65 points -> 22 + 22 + 21
    alphas = np.linspace(0.0, 1.0, n, dtype=np.float32)
    diff = img - base
    total = _path_function(model)(tf.constant(base), tf.constant(diff), tf.constant(alphas),
                                  tf.constant(weights, tf.float32), tf.constant(c, tf.int32),
                                  tf.constant(size, tf.int32)).numpy()
    return (total.astype(np.float64) * diff).astype(np.float32)


_PATH_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _path_function(model):
    """``f(baseline, diff, alphas, weights, class, size) -> sum_k weights[k] * gradient at
    baseline + alphas[k] * diff``: integrated gradients' whole path in batches of ``size``
    points, in one compiled call per image (a loop inside the graph), built once per model
    around ``ch.saliency.gradient_function`` (the same gradient, TensorFlow's own)."""
    fn = _PATH_FNS.get(model)
    if fn is None:
        grad_fn = _saliency.gradient_function(model)
        h, w = _checks.input_size(model)

        def path_sum(base, diff, alphas, weights, c, size):
            total = tf.zeros_like(base)
            for start in tf.range(0, tf.shape(alphas)[0], size):
                a, wt = alphas[start:start + size], weights[start:start + size]
                points = base[None] + a[:, None, None, None] * diff[None]
                grads, _ = grad_fn(points, tf.fill(tf.shape(a), c))
                total += tf.tensordot(wt, grads, axes=1)
            return total

        image = tf.TensorSpec((h, w, 3), tf.float32)
        fn = _PATH_FNS[model] = tf.function(path_sum, input_signature=[
            image, image, tf.TensorSpec((None,), tf.float32), tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((), tf.int32), tf.TensorSpec((), tf.int32)])
    return fn


def guided_backprop(model, image, class_index) -> np.ndarray:
    """Guided backpropagation (Springenberg et al. 2015), (H, W, 3) float32.  Lesson 5.

    The gradient of the class score, except that on the way back every ReLU passes only
    positive gradients, and only where its input was positive.

    Written out in lesson 07, "In plain code: guided backprop and deconvnet".
    """
    return _rule_attribution(model, image, class_index, "guided")


def deconvnet(model, image, class_index) -> np.ndarray:
    """The deconvnet (Zeiler & Fergus 2014) as a backward rule, (H, W, 3) float32.  Lesson 5.

    The gradient of the class score, except that on the way back every ReLU passes the
    positive part of the incoming gradient, wherever its input was (max-pooling still sends
    it to the position that won, Zeiler & Fergus's "switches").

    Written out in lesson 07, "In plain code: guided backprop and deconvnet".
    """
    return _rule_attribution(model, image, class_index, "deconvnet")


def guided_gradcam(model, image, class_index, layer=None) -> np.ndarray:
    """Guided Grad-CAM (Selvaraju et al. 2017): :func:`guided_backprop` times the Grad-CAM map
    of ``layer`` (default: the last conv layer; tf-keras-vis's ``Gradcam``, upsampled to the
    image, in [0, 1]), (H, W, 3) float32.  Lesson 5.

    Written out in lesson 07, "In plain code: guided Grad-CAM".
    """
    from . import kerasvis as _kerasvis

    img, c = _one(model, image, class_index)
    layer = _kerasvis.cam_layer(model, layer)
    cam = _kerasvis.gradcam(model, img, c, layer=layer)
    return (guided_backprop(model, img, c) * cam[..., None]).astype(np.float32)
