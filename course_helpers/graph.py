"""The one home of the model's layer graph, used by every lesson module.

A model here is a tf-keras model whose layers read each other's outputs.  This module answers
the questions the lessons ask about that graph:

- :func:`layer`: a layer given by name, index or object; :func:`conv_layer_names`,
  :func:`require_conv`;
- :func:`consumers` (who reads a layer's output) and :func:`chain` (the layers from the input
  to a layer, one after another);
- :func:`keeps_positions` (layers that act on each position alone: batch norm, ReLU, dropout,
  ...) and :func:`activation_layer` (a conv's response after its batch norm and ReLU);
- :func:`receptive_field` and :func:`unit_box` (which input pixels a unit sees), also through
  branches that merge again (ResNet's residual blocks);
- :func:`output_of` (a layer's output tensor in this graph) and :func:`submodel`: a model from
  the input to some layers' outputs, sharing the weights,
  built once per (model, layers) in the package's one sub-model cache.

Only the model's own graph counts: calling one of its layers on another input elsewhere adds
nodes to that layer, and they are ignored here.  Nothing here changes a model.
"""
from __future__ import annotations

import numbers
import weakref

import numpy as np
import tf_keras as keras

#: Layers that act on each position of the grid alone (pointwise or per channel), so they
#: leave receptive fields unchanged.  A custom layer says so with ``keeps_positions = True``.
KEEPS_POSITIONS = (keras.layers.InputLayer, keras.layers.BatchNormalization,
                   keras.layers.LayerNormalization, keras.layers.Activation, keras.layers.ReLU,
                   keras.layers.LeakyReLU, keras.layers.PReLU, keras.layers.ELU,
                   keras.layers.Dropout, keras.layers.SpatialDropout2D,
                   keras.layers.GaussianNoise, keras.layers.GaussianDropout,
                   keras.layers.Rescaling, keras.layers.Normalization)
_POOLS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)

# model -> {(output layer names, several outputs?): keras.Model}.  The one sub-model cache.
_SUBMODELS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------- finding layers
def require_model(value, name: str = "model"):
    """``value`` if it is a loaded tf-keras model, else a TypeError that says
    how to get one (``ch._checks.model``, used by every public function, is this check).

    Catches ``None``, a model's name given as a string, and a model built with Keras 3's
    ``keras`` package (this course and tf-keras-vis use tf-keras, ``import tf_keras``).
    """
    fix = "load one first, e.g. model = ch.models.load_model('course-cnn')"
    if value is None:
        raise TypeError(f"{name} is None: {fix}.")
    if isinstance(value, str):
        raise TypeError(f"{name} must be a loaded model, got the string {value!r}: "
                        f"use ch.models.load_model({value!r}) and pass its result.")
    if not isinstance(value, keras.Model):
        if (type(value).__module__ or "").split(".")[0] == "keras":
            raise TypeError(f"{name} is a Keras 3 model ({type(value).__name__} from the 'keras' "
                            "package); this course works with tf-keras. Build it with "
                            "`import tf_keras as keras` (after `import course_helpers`), or load "
                            "a course model with ch.models.load_model('course-cnn').")
        raise TypeError(f"{name} must be a tf-keras model, got {type(value).__name__} "
                        f"{value!r:.60}: {fix}.")
    return value


def require_integer(name: str, value, low=None, high=None) -> int:
    """``value`` as an int (numpy ints and whole floats such as 3.0 are accepted) within
    [low, high]; else an error naming ``name``, the value and the allowed range
    (``ch._checks.integer``, used by every public function, is this check)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a whole number, got {value!r}.")
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        v = int(value)
    else:
        raise TypeError(f"{name} must be a whole number, got {type(value).__name__} {value!r}.")
    if low is not None and v < low:
        raise ValueError(f"{name} must be at least {low}, got {v}.")
    if high is not None and v > high:
        raise ValueError(f"{name} must be at most {high}, got {v}.")
    return v


def layer(model, layer):
    """The layer of ``model`` given by name, by index into ``model.layers`` (numpy ints and
    negative indices work, as in keras-vis) or as the layer itself; else a clear error."""
    return _layer(model, layer)


def _layer(model, layer):   # (the functions below take an argument named ``layer`` too)
    require_model(model)
    names = [lyr.name for lyr in model.layers]
    if isinstance(layer, keras.layers.Layer):
        if any(layer is lyr for lyr in model.layers):
            return layer
        raise ValueError(f"layer {layer.name!r} is not a layer of {model.name}; pass one of its "
                         f"layers or its name: {', '.join(names)}.")
    if isinstance(layer, str):
        if layer in names:
            return model.layers[names.index(layer)]
        raise ValueError(f"No layer named {layer!r} in {model.name}. Layers: {', '.join(names)}.")
    if isinstance(layer, numbers.Integral) and not isinstance(layer, bool):
        n = len(names)
        if -n <= int(layer) < n:
            return model.layers[int(layer)]
        raise ValueError(f"layer index {int(layer)} is out of range: {model.name} has {n} layers, "
                         f"so use 0 to {n - 1} (or -{n} to -1). Layers: {', '.join(names)}.")
    if (type(layer).__module__ or "").split(".")[0] == "keras":
        raise TypeError(f"layer is a Keras 3 {type(layer).__name__} (from the 'keras' package); "
                        "pass a layer of the tf-keras model, or its name.")
    raise TypeError(f"layer must be a layer name, an index or a layer, got "
                    f"{type(layer).__name__} {layer!r:.60}.")


def conv_layer_names(model) -> list:
    """Names of the model's Conv2D layers, first to last.  Lessons 1, 3, 5, 7."""
    require_model(model)
    return [lyr.name for lyr in model.layers if isinstance(lyr, keras.layers.Conv2D)]


def require_conv(model, layer):
    """The conv layer ``layer`` (name, index or layer) of ``model``, or a ValueError that
    lists the conv layers."""
    lyr = _layer(model, layer)
    if not isinstance(lyr, keras.layers.Conv2D):
        raise ValueError(f"Layer {lyr.name!r} is a {type(lyr).__name__}, not a Conv2D layer. "
                         f"Pick one of the conv layers: {', '.join(conv_layer_names(model))}.")
    return lyr


# --------------------------------------------------------------------------- the graph
def _own_node(model, lyr):
    """The index of ``lyr``'s node that belongs to ``model``'s own graph."""
    if not getattr(model, "_is_graph_network", False):
        raise ValueError(f"{model.name} has no layer graph (a subclassed model, or a Sequential "
                         "model without an input shape): build it from keras.Input.")
    own = model._network_nodes   # keys "<layer name>_ib-<node index>" of the model's nodes
    for i in range(len(lyr._inbound_nodes)):
        if f"{lyr.name}_ib-{i}" in own:
            return i
    raise ValueError(f"layer {lyr.name!r} is not connected in {model.name}'s graph.")


def inputs_of(model, layer) -> list:
    """The layers whose outputs ``layer`` (name, index or layer) reads in ``model``'s own
    graph (not where the layer was also called inside another model)."""
    return _inputs_of(model, _layer(model, layer))


def _inputs_of(model, lyr) -> list:
    node = lyr._inbound_nodes[_own_node(model, lyr)]
    return list(dict.fromkeys(src for src, _, _, _ in node.iterate_inbound()))


def consumers(model) -> dict:
    """Layer name -> names of the layers that read its output, in ``model``'s own graph."""
    require_model(model)
    found: dict = {}
    for lyr in model.layers:
        for src in _inputs_of(model, lyr):
            found.setdefault(src.name, []).append(lyr.name)
    return found


def chain(model, upto=None) -> list:
    """The layers from the input to ``upto`` (default: the model's output), one after another.

    The input layer is left out, so running the layers in turn on an image batch ``x``
    (``for lyr in chain(model, upto): x = lyr(x)``) gives ``upto``'s output.  A ValueError if
    the path is not a single chain (a layer with several inputs, a model with several outputs).
    """
    require_model(model)
    if upto is None:
        if len(model.outputs) != 1:
            raise ValueError(f"{model.name} has {len(model.outputs)} outputs; name the layer to "
                             "follow with upto=.")
        upto = model.outputs[0]._keras_history.layer
    current = _layer(model, upto)
    path = []
    while not isinstance(current, keras.layers.InputLayer):
        path.append(current)
        inbound = _inputs_of(model, current)
        if len(inbound) != 1:
            raise ValueError(f"Layer {current.name!r} reads {len(inbound)} layers; this works "
                             "for a single chain of layers (like course-cnn and VGG) only.")
        current = inbound[0]
    return path[::-1]


def keeps_positions(lyr) -> bool:
    """True for a layer that acts on each position alone (batch norm, ReLU, dropout, ...):
    it changes values but not which input pixels a unit sees."""
    return isinstance(lyr, KEEPS_POSITIONS) or getattr(lyr, "keeps_positions", False) is True


def activation_layer(model, layer):
    """The layer whose output is conv layer ``layer``'s response after its BN and nonlinearity.

    ``course-cnn`` writes conv -> batch norm -> ReLU as three layers ('conv3', 'conv3_bn',
    'conv3_relu'); VGG has the ReLU inside the conv.  Lessons 1, 3, 5 and 8 show and maximize
    this output ("brighter = stronger response").  Raises ValueError for a non-conv layer.
    """
    current = require_conv(model, layer)
    readers = consumers(model)
    by_name = {lyr.name: lyr for lyr in model.layers}
    while True:
        nxt = readers.get(current.name, [])
        if len(nxt) != 1 or not keeps_positions(by_name[nxt[0]]):
            return current
        current = by_name[nxt[0]]


# --------------------------------------------------------------------------- receptive fields
def _pair(value, axis):
    return int(value[axis]) if isinstance(value, (tuple, list)) else int(value)


def receptive_field(model, layer):
    """``(size, stride, start)`` of the units of ``layer`` (a conv, a pool, or any layer with a
    grid of positions, such as a residual block's add), in input pixels.

    ``size``: how many input pixels one unit sees (per side); ``stride``: the step between
    neighbouring units; ``start``: the input coordinate of unit (0, 0)'s centre (pixel i has
    centre i; half-integers happen after even-sized pooling).  Unit (i, j) sees rows
    ``start + i*stride - (size-1)/2`` to ``start + i*stride + (size-1)/2`` (some may be padding).

    Walks the graph from the input: each conv or pool of kernel ``k`` (dilated: ``d*(k-1)+1``)
    and stride ``s`` grows ``size`` by ``(k-1) * stride`` and multiplies ``stride`` by ``s``;
    padding moves ``start``.  'same' padding puts the odd pixel after the image, as
    TensorFlow does.  Where branches merge (a residual block's add, a concatenation), a unit
    sees what any branch sees: the box that holds every branch's box.  For non-square
    settings each value is a pair (rows, columns).

    Written out in lesson 03, "In plain code: receptive fields".
    """
    target = _layer(model, layer)
    shape = output_of(model, target).shape
    if len(shape) != 4 or isinstance(target, keras.layers.InputLayer):
        kind = "the input" if isinstance(target, keras.layers.InputLayer) else \
            f"a {type(target).__name__}"
        raise ValueError(f"Layer {target.name!r} is {kind}, not a Conv2D or pooling layer (or "
                         "another layer with a grid of units). Pick one of the conv layers: "
                         f"{', '.join(conv_layer_names(model))}.")
    axes = []
    for axis in (0, 1):
        lo, hi, jump = _extent(model, target, axis, {})
        start = (lo + hi) / 2
        start = int(start) if float(start).is_integer() else float(start)
        axes.append((hi - lo + 1, jump, start))
    if axes[0] == axes[1]:
        return axes[0]
    return tuple((a, b) for a, b in zip(*axes))


_CONVS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
_MERGES = (keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply,
           keras.layers.Average, keras.layers.Maximum, keras.layers.Minimum,
           keras.layers.Concatenate)


def _extent(model, lyr, axis, memo):
    """``(lo, hi, jump)`` along ``axis``: unit u of ``lyr`` sees the input pixels
    ``lo + u*jump`` to ``hi + u*jump`` (inclusive).  ``memo`` holds the layers already done."""
    if lyr.name in memo:
        return memo[lyr.name]
    if isinstance(lyr, keras.layers.InputLayer):
        return memo.setdefault(lyr.name, (0, 0, 1))
    sources = [_extent(model, src, axis, memo) for src in _inputs_of(model, lyr)]
    if isinstance(lyr, _MERGES) and sources:
        if isinstance(lyr, keras.layers.Concatenate) and lyr.axis not in (-1, 3):
            raise ValueError(f"Layer {lyr.name!r} concatenates along axis {lyr.axis}; "
                             "receptive_field knows channel concatenation only.")
        jumps = {j for _, _, j in sources}
        if len(jumps) != 1:
            raise ValueError(f"Layer {lyr.name!r} merges branches of different strides "
                             f"{sorted(jumps)}; their units do not line up.")
        found = (min(lo for lo, _, _ in sources), max(hi for _, hi, _ in sources), jumps.pop())
        return memo.setdefault(lyr.name, found)
    if len(sources) != 1:
        raise ValueError(f"Layer {lyr.name!r} ({type(lyr).__name__}) reads {len(sources)} "
                         "layers and its effect on positions is unknown to receptive_field.")
    lo, hi, jump = sources[0]
    if isinstance(lyr, _CONVS + _POOLS) and not isinstance(lyr, keras.layers.Conv2DTranspose):
        conv = isinstance(lyr, _CONVS)
        k = _pair(lyr.kernel_size if conv else lyr.pool_size, axis)
        s = _pair(lyr.strides, axis)
        k = _pair(lyr.dilation_rate, axis) * (k - 1) + 1 if conv else k
        if lyr.padding == "same" and s == 1:
            pad = (k - 1) // 2          # the same for every input size
        elif lyr.padding == "same":
            n = lyr.get_input_shape_at(_own_node(model, lyr))[1 + axis]
            if n is None:
                raise ValueError(f"receptive_field needs a fixed input size for the "
                                 f"strided 'same'-padded layer {lyr.name!r} (its "
                                 "padding depends on the size).")
            pad = max((-(-int(n) // s) - 1) * s + k - int(n), 0) // 2
        elif lyr.padding == "valid":
            pad = 0
        else:
            raise ValueError(f"Layer {lyr.name!r} uses padding {lyr.padding!r}; only "
                             "'valid' and 'same' are supported.")
        found = (lo - pad * jump, hi + (k - 1 - pad) * jump, jump * s)
    elif isinstance(lyr, keras.layers.ZeroPadding2D):
        shift = lyr.padding[axis][0] * jump
        found = (lo - shift, hi - shift, jump)
    elif keeps_positions(lyr):
        found = (lo, hi, jump)
    else:
        raise ValueError(f"Layer {lyr.name!r} ({type(lyr).__name__}) lies between the "
                         "input and the layer asked about, and its effect on positions is "
                         "unknown to receptive_field.")
    return memo.setdefault(lyr.name, found)


def unit_box(model, layer, row, col):
    """``(top, left, bottom, right)`` of the input pixels unit (row, col) of ``layer`` sees
    (end exclusive; may reach outside the image).

    Written out in lesson 03, "In plain code: one top patch".
    """
    size, stride, start = receptive_field(model, layer)
    if not isinstance(size, tuple):
        size, stride, start = (size, size), (stride, stride), (start, start)
    box = []
    for pos, name, (s, j, t) in ((row, "row", (size[0], stride[0], start[0])),
                                 (col, "col", (size[1], stride[1], start[1]))):
        pos = require_integer(name, pos)
        box.append(int(round(t + pos * j - (s - 1) / 2)))
    top, left = box
    return top, left, top + size[0], left + size[1]


# --------------------------------------------------------------------------- sub-models
def output_of(model, layer):
    """``layer``'s output tensor in ``model``'s own graph (also when the layer has been called
    elsewhere, where ``layer.output`` would fail)."""
    lyr = _layer(model, layer)
    if isinstance(lyr, keras.layers.InputLayer):
        return lyr.output
    return lyr.get_output_at(_own_node(model, lyr))


def submodel(model, layers):
    """``keras.Model(model.inputs, outputs of layers)``: one output for a layer (name, index or
    layer), a list of outputs for a list.  It shares ``model``'s weights, and is built once per
    (model, layers) and reused afterwards (the package's one sub-model cache)."""
    require_model(model)
    several = isinstance(layers, (list, tuple))
    chosen = [_layer(model, lyr) for lyr in (layers if several else [layers])]
    if several and not chosen:
        raise ValueError("layers is an empty list: name at least one layer.")
    key = (tuple(lyr.name for lyr in chosen), several)
    per_model = _SUBMODELS.setdefault(model, {})
    if key not in per_model:
        outputs = [output_of(model, lyr) for lyr in chosen]
        per_model[key] = keras.Model(model.inputs, outputs if several else outputs[0],
                                     name=f"{model.name}_to_{'_'.join(key[0])}"[:120])
    return per_model[key]


def cached_view(model, key: str, build):
    """The model ``build()`` makes from ``model`` (a view that shares its weights, such as
    ``ch.models.logits_model``'s), built once per (model, key) in the same cache as
    :func:`submodel`."""
    per_model = _SUBMODELS.setdefault(require_model(model), {})
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]
