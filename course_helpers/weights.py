"""Moving large weights in and out of a model one slice at a time (VGG under Binder's 2 GB).

VGG16's fc1 kernel alone has 103 M values (411 MB).  Every step that would hold it twice --
Keras's loader, a random draw, a save for later -- goes through here in slices of about 16 MB
instead: :func:`load_h5_weights` reads a Keras weights file layer by layer, :func:`_redraw` fills a
variable from an initializer's distribution, :func:`_save_variable` and :func:`_load_variable`
park a variable on disk.  Used by ``ch.models`` (loading VGG) and ``ch.sanity`` (lesson 8).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from . import _checks

#: Slice size, in values, for moving a large weight (about 16 MB of float32).
_CHUNK = 1 << 22
#: Weights with more values than this (VGG's fc1 and fc2) are loaded and drawn in slices.
LARGE_WEIGHT = 1 << 22


def _row_chunks(shape):
    """Slices of whole rows, about ``_CHUNK`` values each, covering axis 0 of ``shape``."""
    if not shape:
        return [()]
    rows = max(1, _CHUNK // max(1, int(np.prod(shape[1:]))))
    return [slice(start, start + rows) for start in range(0, shape[0], rows)]


def assign_in_slices(variable, pieces) -> None:
    """Assign ``(row slice, values)`` pieces to ``variable`` in turn.  Lessons 1-8 (large weights).

    Each piece is written with TensorFlow's strided-slice assign op on the variable itself:
    ``variable[rows].assign(values)`` would first read the whole variable to slice it (376 MB
    more at the peak of loading VGG16).  A sliced assign also puts a variable in TensorFlow's
    copy-on-read mode for good, and every later read then copies it whole: 411 MB more on each
    VGG16 forward pass for fc1 alone.  So at the end the variable is taken out of that mode again
    with ``tf.raw_ops.DisableCopyOnRead``, an op on this one variable (one the course made),
    which changes nothing else in TensorFlow.
    """
    shape = tuple(int(d) for d in variable.shape)
    try:
        for rows, values in pieces:
            values = tf.convert_to_tensor(values, dtype=variable.dtype)
            if not isinstance(rows, slice):       # a scalar, or the whole variable
                variable.assign(values)
                continue
            start, stop, step = rows.indices(shape[0])
            tf.raw_ops.ResourceStridedSliceAssign(ref=variable.handle, begin=[start], end=[stop],
                                                  strides=[step], value=values)
    finally:   # also after a failed piece: the slices already assigned switched the mode on
        tf.raw_ops.DisableCopyOnRead(resource=variable.handle)


# --------------------------------------------------------------------------- Keras weights files
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

    _checks.model(model)
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
                        assign_in_slices(variable, ((rows, data[rows])
                                                    for rows in _row_chunks(tuple(data.shape))))
    except (OSError, KeyError, ValueError, TypeError, tf.errors.OpError) as err:
        raise RuntimeError(f"Cannot load the weights file {path} ({err}): {fix}.") from None


# --------------------------------------------------------------------------- random draws
def _fans(shape):
    """Keras's fan-in and fan-out of a weight shape (dense or conv kernel)."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def _redraw(variable, init, seed):
    """Assign ``init``'s distribution to ``variable``, seeded.  Small variables call the
    initializer itself; a large one (VGG's dense layers) is drawn slice by slice from the same
    distribution (Keras's VarianceScaling rule on the full shape), so no second full-size
    tensor is ever made: a 400 MB layer needs 16 MB of scratch, not 800 MB."""
    import tf_keras as keras

    shape = tuple(int(d) for d in variable.shape)
    size = int(np.prod(shape)) if shape else 1
    small = size <= min(_CHUNK, LARGE_WEIGHT)   # ch.vgg's initializer gives zeros above
    if small or not isinstance(init, keras.initializers.VarianceScaling):
        variable.assign(init(shape, dtype=variable.dtype))
        return
    # GlorotUniform & co. keep scale/mode/distribution as attributes (not in get_config)
    fan_in, fan_out = _fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out}.get(init.mode, (fan_in + fan_out) / 2.0)
    scale = init.scale / max(1.0, n)
    rng = np.random.default_rng(int(seed))

    def draw(rows):
        part = (len(range(*rows.indices(shape[0]))),) + shape[1:]
        if init.distribution == "uniform":
            limit = np.sqrt(3.0 * scale)
            return rng.uniform(-limit, limit, size=part).astype(np.float32)
        truncated = init.distribution == "truncated_normal"
        values = rng.standard_normal(size=part, dtype=np.float32)
        if truncated:   # re-draw beyond 2 std, as Keras
            out = np.abs(values) > 2
            while out.any():
                values[out] = rng.standard_normal(size=int(out.sum()), dtype=np.float32)
                out = np.abs(values) > 2
        values *= np.float32(np.sqrt(scale) / (0.87962566103423978 if truncated else 1.0))
        return values

    assign_in_slices(variable, ((rows, draw(rows)) for rows in _row_chunks(shape)))


# --------------------------------------------------------------------------- parking on disk
def _save_variable(variable, path):
    """Write a variable's values to ``path`` (raw float32) slice by slice: a 400 MB layer never
    exists twice in memory, and a plain file write (unlike a memory map) adds nothing to the
    process's memory."""
    with open(path, "wb") as f:
        for part in _row_chunks(tuple(variable.shape)):
            f.write(np.ascontiguousarray(variable[part].numpy(), dtype=np.float32).tobytes())


def _load_variable(variable, path):
    """Assign the values :func:`_save_variable` wrote back to ``variable``, slice by slice."""
    shape = tuple(int(d) for d in variable.shape)
    with open(path, "rb") as f:
        if not shape:
            variable.assign(np.fromfile(f, dtype=np.float32, count=1).reshape(()))
            return

        def pieces():
            for part in _row_chunks(shape):
                n_rows = len(range(*part.indices(shape[0])))
                values = np.fromfile(f, dtype=np.float32, count=n_rows * int(np.prod(shape[1:])))
                yield part, values.reshape((n_rows,) + shape[1:])

        assign_in_slices(variable, pieces())
