"""Incremental occlusion: the accelerated path of :func:`course_helpers.occlusion.occlusion_map`.

Kept apart from the reference loop in ``occlusion.py`` because it is a speed trick, not the
method: the numbers are the same (``tests/test_occlusion.py`` proves it against the full
computation and against single predictions), for about half the work on VGG16 at 224 px
(2.2x in ``benchmarks/RESULTS.md``).

The idea: an occluded copy differs from the image only inside the patch, so the first
layers' output differs only near it.  The first conv blocks are run on a crop around the patch
and their output pasted into the clean image's output; the rest of the network runs as usual
(Krypton: Nakandala et al., SIGMOD 2019).  The crop sizes come from the receptive fields of
the pooling layers (``ch.graph.receptive_field``).
"""
from __future__ import annotations

import weakref

import numpy as np
import tf_keras as keras

from . import _checks
from . import graph as _graph

# model -> {(height, width, patch): plan or None}.  Plans hold compiled functions, not models.
_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _macs(model, layer) -> float:
    """Multiply-adds of one conv or dense layer for one image (0 for other layers)."""
    if isinstance(layer, keras.layers.Conv2D):
        out = _graph.output_of(model, layer).shape
        return float(out[1] * out[2] * np.prod(layer.kernel.shape))
    if isinstance(layer, keras.layers.Dense):
        return float(np.prod(layer.kernel.shape))
    return 0.0


def _plain_conv(layer) -> bool:
    if type(layer) is not keras.layers.Conv2D:
        return False
    k = layer.kernel_size
    return (layer.padding == "same"
            and tuple(layer.strides) == (1, 1) and k[0] == k[1] and k[0] % 2 == 1
            and tuple(layer.dilation_rate) == (1, 1))


def _plain_pool(layer) -> bool:
    if not isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        return False
    p = layer.pool_size
    return layer.padding == "valid" and p[0] == p[1] and tuple(layer.strides) == tuple(p)


def _split_points(model, layers):
    """For each pooling layer that every layer before it allows (same-padded stride-1 convs,
    non-overlapping pools, layers that keep positions), yield ``(index, size, jump, start)``:
    its position in ``layers`` and its receptive field -- candidates for splitting."""
    for i, layer in enumerate(layers):
        if _graph.keeps_positions(layer) or _plain_conv(layer):
            continue
        if not _plain_pool(layer):
            return
        yield (i,) + tuple(_graph.receptive_field(model, layer))


def _axis_plan(length, patch, size, jump, start):
    """The smallest crop (a multiple of ``jump``) that computes, for every patch position, all
    head outputs whose receptive field meets the patch; None if it is not smaller than the
    image.  Returns ``(crop, origin(y), outputs(y))``."""
    n_out = length // jump
    half = (size - 1) / 2

    def outputs(y):
        lo = int(np.ceil((y - start - half) / jump))
        hi = int(np.floor((y + patch - 1 - start + half) / jump))
        return max(lo, 0), min(hi, n_out - 1)

    def exact(u, o, crop):   # is output u computed exactly on the crop [o, o + crop)?
        top, bottom = start + u * jump - half, start + u * jump + half
        return (top >= o or o == 0) and (bottom <= o + crop - 1 or o + crop == length)

    for crop in range(jump, length, jump):
        def origin(y, crop=crop):
            lo, _ = outputs(y)
            want = int(np.floor((start + lo * jump - half) / jump)) * jump
            return int(min(max(want, 0), length - crop))
        if all(exact(u, origin(y), crop) for y in range(length - patch + 1)
               for u in outputs(y)):
            return crop, origin, outputs
    return None


def incremental_plan(model, shape, patch):
    """How to run occlusion incrementally on ``model`` for images of ``shape`` and this patch,
    or None when the full forward pass is as cheap (small images, models that are not a plain
    chain of same-padded stride-1 convs and pools at the bottom).  ``plan["split"]`` names the
    last layer run on crops."""
    model = _checks.model(model)
    key = (int(shape[0]), int(shape[1]), _checks.integer("patch", patch, low=1))
    plans = _PLANS.setdefault(model, {})
    if key in plans:
        return plans[key]
    plan = None
    try:
        layers = _graph.chain(model)
    except ValueError:
        layers = None
    if layers is not None and not (shape[0] % 2 or shape[1] % 2):
        total = sum(_macs(model, layer) for layer in layers)
        best_cost = 0.8 * total          # only worth it if it saves at least 20 %
        for i, size, jump, start in _split_points(model, layers):
            if shape[0] % jump or shape[1] % jump:
                break
            head = sum(_macs(model, layer) for layer in layers[:i + 1])
            axes = [_axis_plan(int(n), int(patch), size, jump, start) for n in shape[:2]]
            if None in axes:
                continue
            cost = head * axes[0][0] * axes[1][0] / (shape[0] * shape[1]) + (total - head)
            if cost < best_cost:
                best_cost, plan = cost, {"index": i, "split": layers[i].name, "jump": jump,
                                         "axes": axes, "saving": 1 - cost / total}
    if plan is not None:
        plan.update(_split_functions(model, layers, plan["index"]))
    plans[key] = plan
    return plan


def _split_functions(model, layers, split):
    """Compiled head (input -> ``layers[split]``, any image size) and tail (the rest).

    The layers are applied to plain tensors inside ``tf.function``: unlike calling them on new
    ``keras.Input`` tensors, that adds no nodes to the model's graph, so ``layer.output`` and
    ``layer.output_shape`` keep working for every other lesson."""
    import tensorflow as tf

    head_layers, tail_layers = layers[:split + 1], layers[split + 1:]

    def run(chain, t):
        for layer in chain:
            t = layer(t, training=False)
        return t

    mid_shape = (None,) + tuple(_graph.output_of(model, layers[split]).shape[1:])
    return {"head": tf.function(lambda t: run(head_layers, t),
                                input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)]),
            "tail": tf.function(lambda t: run(tail_layers, t),
                                input_signature=[tf.TensorSpec(mid_shape, tf.float32)])}


def occlusion_incremental(plan, img, filler, grid, patch, class_index, batch_size):
    """Class probabilities of the occluded copies at ``grid`` (a list of (y, x) corners),
    computed with ``plan``: the same numbers as the reference loop of ``occlusion_map``."""
    (cy, origin_y, outs_y), (cx, origin_x, outs_x) = plan["axes"]
    jump = plan["jump"]
    clean = np.asarray(plan["head"](img[None]))
    out = np.empty(len(grid), np.float32)
    for start in range(0, len(grid), batch_size):
        chunk = grid[start:start + batch_size]
        crops = np.empty((len(chunk), cy, cx, 3), np.float32)
        where = []
        for b, (y, x) in enumerate(chunk):
            oy, ox = origin_y(y), origin_x(x)
            crops[b] = img[oy:oy + cy, ox:ox + cx]
            crops[b, y - oy:y - oy + patch, x - ox:x - ox + patch] = \
                filler[y:y + patch, x:x + patch]
            where.append((oy // jump, ox // jump, outs_y(y), outs_x(x)))
        heads = np.asarray(plan["head"](crops))
        mids = np.repeat(clean, len(chunk), axis=0)
        for b, (vy, vx, (y0, y1), (x0, x1)) in enumerate(where):
            mids[b, y0:y1 + 1, x0:x1 + 1] = heads[b, y0 - vy:y1 + 1 - vy, x0 - vx:x1 + 1 - vx]
        probs = np.asarray(plan["tail"](mids))
        out[start:start + len(chunk)] = probs[:, class_index]
    return out
