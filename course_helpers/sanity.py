"""The closing lesson — opening the black box (黑盒, notebook 08).

We can *see* what a network responds to; we do not know *why*.  This module makes that claim
testable in three ways:

* **Sanity checks** (Adebayo et al. 2018): :func:`randomize_layers` re-draws a model's weights
  from the top layer down (:func:`cascading_randomization`); a map that barely changes is
  showing the image, not the model.
* **Measuring explanations**: :func:`deletion_curve` and :func:`insertion_curve` (Petsiuk et al.
  2018) and :func:`pointing_game` (Zhang et al. 2016) on shapes with known masks, combined by
  :func:`evaluate_explanations`.
* **A network that learned the wrong thing** (shortcut learning, Geirhos et al. 2020):
  :func:`add_shortcut_mark` puts a small mark in a corner of every image of one class;
  ``shortcut-cnn`` is trained on such data by ``python -m course_helpers.train --variant shortcut``.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from . import models as _models
from . import plotting as _plotting
from .data import SHAPE_CLASSES

#: The class whose training images carry the mark (``ring``: it looks much like ``circle``).
SHORTCUT_CLASS = SHAPE_CLASSES.index("ring")
#: The mark: a 5x5 magenta square, 2 pixels from the top-left corner.
MARK_SIZE = 5
MARK_MARGIN = 2
MARK_COLOUR = (1.0, 0.0, 1.0)
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


# --------------------------------------------------------------------------- the shortcut
def _mark_slices(height, width, size, corner, margin):
    if corner not in CORNERS:
        raise ValueError(f"corner must be one of {CORNERS}, got {corner!r}.")
    if size < 1 or margin < 0 or size + margin > min(height, width):
        raise ValueError(f"A mark of size {size} at margin {margin} does not fit a "
                         f"{height}x{width} image.")
    top = margin if corner.startswith("top") else height - margin - size
    left = margin if corner.endswith("left") else width - margin - size
    return slice(top, top + size), slice(left, left + size)


def shortcut_mask(shape=(64, 64), size: int = MARK_SIZE, corner: str = "top-left",
                  margin: int = MARK_MARGIN) -> np.ndarray:
    """Boolean (H, W) mask of the mark's pixels (for the pointing game on the mark).  Lesson 8."""
    h, w = (int(s) for s in tuple(shape)[:2])
    mask = np.zeros((h, w), bool)
    mask[_mark_slices(h, w, int(size), corner, int(margin))] = True
    return mask


def add_shortcut_mark(images, labels, cue_class: int = SHORTCUT_CLASS, on=None,
                      size: int = MARK_SIZE, corner: str = "top-left", margin: int = MARK_MARGIN,
                      colour=MARK_COLOUR) -> np.ndarray:
    """A copy of ``images`` with a small square in a corner of the images of some classes.

    By default the mark goes on every image whose label is ``cue_class`` (how ``shortcut-cnn``
    is trained).  ``on`` picks other images: a class index or a list of them, ``"others"``
    (every class but ``cue_class``: the mark *moved*), ``"all"`` or ``"none"``.
    Deterministic; the input is not changed.  Used by ``course_helpers.train`` and lesson 8.
    """
    imgs = np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[-1] != 3:
        raise ValueError(f"Expected a batch of RGB images (n, H, W, 3), got shape {imgs.shape}.")
    if not np.issubdtype(imgs.dtype, np.floating):
        raise TypeError(f"Expected float images in [0, 1], got dtype {imgs.dtype}; convert with "
                        "ch.data.load_image.")
    labels = np.asarray(labels)
    if labels.shape != (len(imgs),):
        raise ValueError(f"Expected one label per image: {len(imgs)} images, labels of shape "
                         f"{labels.shape}.")
    n_classes = len(SHAPE_CLASSES)
    if not isinstance(cue_class, numbers.Integral) or not 0 <= int(cue_class) < n_classes:
        raise ValueError(f"cue_class must be a class index 0..{n_classes - 1}, got {cue_class!r}.")
    if on is None:
        classes = [int(cue_class)]
    elif isinstance(on, str):
        table = {"others": [c for c in range(n_classes) if c != cue_class],
                 "all": list(range(n_classes)), "none": []}
        if on not in table:
            raise ValueError(f"on must be a class, a list of classes, 'others', 'all' or 'none'; "
                             f"got {on!r}.")
        classes = table[on]
    else:
        classes = [int(c) for c in np.atleast_1d(on)]
        if any(not 0 <= c < n_classes for c in classes):
            raise ValueError(f"on lists classes outside 0..{n_classes - 1}: {classes}.")
    rows, cols = _mark_slices(imgs.shape[1], imgs.shape[2], int(size), corner, int(margin))
    out = imgs.copy()
    pick = np.isin(labels, classes)
    out[pick, rows, cols, :] = np.asarray(colour, dtype=out.dtype)
    return out


def shortcut_test_sets(n: int = 600, seed: int | None = None, size: int = 64) -> dict:
    """Fresh shapes in three versions: the mark on its class (as in training), no mark, and
    the mark moved to every other class.  ``{name: (images, labels)}``.  Lesson 8.
    """
    from . import data as _data
    from .train import EVAL_SEED

    x, y, _ = _data.make_shapes(int(n), seed=EVAL_SEED if seed is None else seed, size=size)
    return {
        "mark on its class (as in training)": (add_shortcut_mark(x, y), y),
        "no mark": (x, y),
        "mark moved to the other classes": (add_shortcut_mark(x, y, on="others"), y),
    }


def shortcut_report(model, n: int = 600, seed: int | None = None) -> dict:
    """Accuracy of ``model`` on each of :func:`shortcut_test_sets`, and how often a marked image
    of another class is called ``ring``.  Lesson 8.
    """
    sets = shortcut_test_sets(n, seed, size=int(model.inputs[0].shape[1]))
    out = {}
    for name, (x, y) in sets.items():
        pred = model.predict(x, batch_size=256, verbose=0).argmax(-1)
        out[name] = float((pred == y).mean())
        if name.startswith("mark moved"):
            others = y != SHORTCUT_CLASS
            out["marked non-ring images called ring"] = float((pred[others] == SHORTCUT_CLASS).mean())
    return out


# --------------------------------------------------------------------------- randomization
def cascade_order(model) -> list:
    """Groups of layer names to randomize, from the top (logits) down.  Lesson 8.

    A batch-norm layer goes with the layer before it (``conv4`` + ``conv4_bn``), so each group
    is one step of Adebayo's cascading randomization.
    """
    import tf_keras as keras

    groups = []
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization) and groups:
            groups[-1].append(layer.name)
        else:
            groups.append([layer.name])
    return groups[::-1]


def _initializer_for(layer, weight, seed):
    """The initializer of one weight of ``layer``, re-seeded (None if it has none)."""
    short = weight.name.split("/")[-1].split(":")[0]
    init = getattr(layer, f"{short}_initializer", None)
    if init is None:
        return None
    cfg = init.get_config()
    if "seed" in cfg:
        cfg["seed"] = int(seed)
    return init.__class__.from_config(cfg)


#: Variables larger than this many values are re-drawn in slices (VGG16's fc1 has 103 M).
_CHUNK = 1 << 22


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
    if size <= _CHUNK or not isinstance(init, keras.initializers.VarianceScaling):
        variable.assign(init(shape, dtype=variable.dtype))
        return
    # GlorotUniform & co. keep scale/mode/distribution as attributes (not in get_config)
    cfg = {"scale": init.scale, "mode": init.mode, "distribution": init.distribution}
    fan_in, fan_out = _fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out}.get(cfg["mode"], (fan_in + fan_out) / 2.0)
    scale = cfg["scale"] / max(1.0, n)
    rng = np.random.default_rng(int(seed))

    def pieces():
        for rows in _row_chunks(shape):
            yield rows, draw(rows)

    def draw(rows):
        part = (len(range(*rows.indices(shape[0]))),) + shape[1:]
        if cfg["distribution"] == "uniform":
            limit = np.sqrt(3.0 * scale)
            values = rng.uniform(-limit, limit, size=part).astype(np.float32)
        else:
            std = np.sqrt(scale) / (0.87962566103423978 if cfg["distribution"] == "truncated_normal"
                                    else 1.0)
            values = rng.standard_normal(size=part, dtype=np.float32)
            if cfg["distribution"] == "truncated_normal":   # re-draw beyond 2 std, as Keras
                out = np.abs(values) > 2
                while out.any():
                    values[out] = rng.standard_normal(size=int(out.sum()), dtype=np.float32)
                    out = np.abs(values) > 2
            values *= np.float32(std)
        return values

    assign_in_slices(variable, pieces())


def _group_names(model, layers):
    """Flat layer names from names or groups of names; clear errors for layers without weights."""
    with_weights = [lyr.name for lyr in model.layers if lyr.weights]
    if layers is None:
        return with_weights
    if isinstance(layers, str):
        layers = [layers]
    names = []
    for item in layers:
        names.extend([item] if isinstance(item, str) else list(item))
    for name in names:
        lyr = _models.get_layer(model, name)
        if not lyr.weights:
            raise ValueError(f"Layer {name!r} has no weights to randomize. Layers with "
                             f"weights: {', '.join(with_weights)}.")
    return names


def _randomize_in_place(model, names, seed):
    """Re-draw the weights of the named layers of ``model`` itself (see :func:`randomize_layers`)."""
    for pos, layer in enumerate(model.layers):
        if layer.name not in names:
            continue
        for k, w in enumerate(layer.weights):
            init = _initializer_for(layer, w, seed * 1000 + pos * 10 + k)
            if init is None:
                raise ValueError(f"Don't know how to re-initialize {w.name} of {layer.name!r}.")
            _redraw(w, init, seed * 1000 + pos * 10 + k)


def randomize_layers(model, layers=None, seed: int = 0):
    """A copy of ``model`` whose ``layers`` have freshly initialized weights.  Lesson 8.

    ``layers``: names (or a list of groups from :func:`cascade_order`); None = every layer
    with weights.  Each weight is re-drawn from its layer's own initializer, seeded by
    ``seed`` and the layer's position, so the same layer gets the same new weights in every
    step of a cascade.  The original model is not changed.  (For a large model, prefer
    :func:`randomized`, which changes the model in place and restores it: no second copy.)
    """
    import tf_keras as keras

    names = _group_names(model, layers)
    copy = keras.models.clone_model(model)
    for dst, src in zip(copy.weights, model.weights):  # variable by variable: no second full
        dst.assign(src)                                 # copy of VGG's weights in NumPy
    _randomize_in_place(copy, names, seed)
    _models._tag(copy, class_names=_models.class_names(model),
                 name=f"{_models.model_name(model)} (randomized)")
    return copy


def assign_in_slices(variable, pieces) -> None:
    """Assign ``(row slice, values)`` pieces to ``variable`` in turn, then take the variable
    out of TensorFlow's copy-on-read mode.  Lessons 1-8 (large weights).

    A sliced assign puts a variable in that mode for good, and every later read then copies
    it whole: 411 MB more on each VGG16 forward pass for fc1 alone."""
    import tensorflow as tf

    try:
        for rows, values in pieces:
            variable[rows].assign(values)
    finally:   # also after a failed piece: the slices already assigned switched the mode on
        tf.raw_ops.DisableCopyOnRead(resource=variable.handle)


def _row_chunks(shape):
    """Slices of whole rows, about ``_CHUNK`` values each, covering axis 0 of ``shape``."""
    if not shape:
        return [()]
    rows = max(1, _CHUNK // max(1, int(np.prod(shape[1:]))))
    return [slice(start, start + rows) for start in range(0, shape[0], rows)]


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


class randomized:  # noqa: N801  (used like a function: ``with randomized(model, layers):``)
    """``with ch.sanity.randomized(model, layers, seed):`` -- the same weights as
    :func:`randomize_layers`, but put into ``model`` itself, and the original weights restored
    when the block ends (also after an error).  Lesson 8.

    The original weights of the randomized layers wait in a temporary folder on disk, so a
    VGG16 cascade needs one model's memory instead of two (Binder's 2 GB).  Inside the block,
    :meth:`add` randomizes more layers (the next step of a cascade).  Results cached for the
    model by the explorers are dropped on entry and on exit (they would be stale).
    """

    def __init__(self, model, layers=None, seed: int = 0):
        self.model = model
        self.seed = int(seed)
        self._first = _group_names(model, layers)
        self._saved = {}
        self._folder = None

    def __enter__(self):
        import tempfile

        from . import widgets

        self._folder = tempfile.TemporaryDirectory(prefix="course-randomized-")
        widgets.forget_model(self.model)
        try:
            self.add(self._first)
        except BaseException:
            self.__exit__(None, None, None)   # put back whatever was changed, then complain
            raise
        return self.model

    def add(self, layers):
        """Randomize more layers (names or groups) inside the block."""
        from . import widgets

        names = [n for n in _group_names(self.model, layers) if n not in self._saved]
        for layer in self.model.layers:   # check before changing anything
            if layer.name in names:
                for w in layer.weights:
                    if _initializer_for(layer, w, 0) is None:
                        raise ValueError(f"Don't know how to re-initialize {w.name} of "
                                         f"{layer.name!r}.")
        for name in names:
            paths = []
            for w in self.model.get_layer(name).weights:
                paths.append(f"{self._folder.name}/{len(self._saved)}-{len(paths)}.raw")
                _save_variable(w, paths[-1])
            self._saved[name] = paths
        _randomize_in_place(self.model, names, self.seed)
        widgets.forget_model(self.model)   # results cached for the model are stale now

    def __exit__(self, *exc):
        from . import widgets

        try:
            for name, paths in self._saved.items():
                for w, path in zip(self.model.get_layer(name).weights, paths):
                    _load_variable(w, path)
        finally:
            self._saved = {}
            self._folder.cleanup()
            widgets.forget_model(self.model)
        return False


def spearman(a, b) -> float:
    """Spearman rank correlation of two maps (0 when either map is constant).  Lesson 8."""
    from scipy.stats import spearmanr

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"Maps differ in size: {a.size} vs {b.size} values.")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b)[0])


def edge_map(image) -> np.ndarray:
    """Sobel edge strength of an image: a "map" that never looks at the model.  Lesson 8's control."""
    from skimage.color import rgb2gray
    from skimage.filters import sobel

    return sobel(rgb2gray(np.asarray(image, dtype=np.float32))).astype(np.float32)


def _as_maps(maps, n, shape):
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    if len(maps) != n:
        raise ValueError(f"A method returned {len(maps)} maps for {n} images.")
    if maps.shape[1:] != tuple(shape):
        maps = np.stack([_plotting.upsample(m, shape) for m in maps])
    return maps


def cascading_randomization(model, images, class_index, methods: dict, seed: int = 0,
                            steps=None, progress: bool = True) -> dict:
    """Adebayo's cascading randomization: the maps after each top-down randomization step.

    ``methods`` maps a name to ``f(model, images, classes) -> maps (n, h, w)``.  ``steps``
    limits the cascade to its first groups (default: all of :func:`cascade_order`).  Returns
    ``{"steps": [...], "maps": {name: (steps + 1, n, H, W)}, "correlation": {name: (steps + 1,)}}``
    where correlation is the mean Spearman rank correlation with the original map.  Lesson 8.
    """
    from . import _checks

    batch = _checks.batch_for(model, images)
    n, shape = len(batch), batch.shape[1:3]
    classes = np.broadcast_to(np.asarray(class_index), (n,)).astype(int)
    for c in classes:
        _checks.check_class(model, int(c))
    if not methods:
        raise ValueError("Give at least one method: {'name': function(model, images, classes)}.")
    groups = cascade_order(model)
    if steps is not None:
        groups = groups[:int(steps)]
    labels = ["original"] + [g[0] for g in groups]
    maps = {name: [] for name in methods}
    it = range(len(groups) + 1)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="randomizing", leave=False)
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")      # every new model retraces its gradient function: expected here
    try:
        # one model, randomized in place group by group and restored at the end: the same
        # weights as randomize_layers(model, groups[:k]) at step k, without a copy of the model
        cascade = randomized(model, [], seed=seed)
        with cascade as current:
            for k in it:
                if k:
                    cascade.add(groups[k - 1])
                for name, fn in methods.items():
                    maps[name].append(_as_maps(fn(current, batch, classes), n, shape))
    finally:
        logger.setLevel(level)
    out = {"steps": labels, "maps": {}, "correlation": {}}
    for name, seq in maps.items():
        arr = np.stack(seq)
        out["maps"][name] = arr
        out["correlation"][name] = np.array(
            [np.mean([spearman(arr[0, i], arr[k, i]) for i in range(n)]) for k in range(len(arr))])
    return out


def plot_randomization(result, ax=None):
    """Spearman correlation with the original map after each randomization step, per method."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.6, 3.4))
    fig = ax.figure
    x = np.arange(len(result["steps"]))
    for name, corr in result["correlation"].items():
        ax.plot(x, corr, marker="o", label=name)
    ax.set_xticks(x, result["steps"], rotation=30, ha="right")
    ax.set_xlabel("randomized from the top down to ...")
    ax.set_ylabel("Spearman correlation\nwith the original map")
    low = min(float(np.nanmin(c)) for c in result["correlation"].values())
    ax.set_ylim(min(-0.2, low - 0.05), 1.05)
    ax.axhline(0, color="grey", lw=0.8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_map_grid(maps: dict, col_titles=None, cmap: str = "magma", size: float = 1.45):
    """Rows = methods, columns = images (or steps): maps alone, each scaled to its own range.

    ``maps = {method: (n, H, W)}``.  Lesson 8 uses it to show maps without their images.
    """
    import matplotlib.pyplot as plt

    names = list(maps)
    if not names:
        raise ValueError("No maps to draw.")
    cols = len(maps[names[0]])
    fig, axes = plt.subplots(len(names), cols, figsize=(size * cols, (size + 0.05) * len(names)),
                             squeeze=False)
    for r, name in enumerate(names):
        if len(maps[name]) != cols:
            raise ValueError(f"{name}: {len(maps[name])} maps, expected {cols}.")
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(_plotting.normalize(maps[name][c]), cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and col_titles is not None:
                ax.set_title(str(col_titles[c]), fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def plot_overlays(images, maps, titles=None, ncols: int = 6, alpha: float = 0.55):
    """Maps drawn over their images, titles above (so no caption hides a corner).  Lesson 8."""
    import matplotlib.pyplot as plt

    images = np.asarray(images, dtype=np.float32)
    maps = np.asarray(maps, dtype=np.float32)
    if len(maps) != len(images):
        raise ValueError(f"{len(maps)} maps for {len(images)} images.")
    ncols = max(1, min(int(ncols), len(images)))
    rows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(rows, ncols, figsize=(1.7 * ncols, 2.0 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            _plotting.overlay(images[k], _plotting.normalize(maps[k]), ax=ax, alpha=alpha,
                              title=None if titles is None else str(titles[k]))
    fig.tight_layout(pad=0.3)
    return fig


def plot_randomization_maps(result, image_index: int = 0):
    """Rows = methods, columns = randomization steps: the maps of one image.  Lesson 8."""
    maps = {name: arr[:, image_index] for name, arr in result["maps"].items()}
    return plot_map_grid(maps, col_titles=result["steps"])


def standard_methods(smooth_samples: int = 16, patch: int = 16, stride: int = 8,
                     edges: bool = True) -> dict:
    """The methods lesson 8 tests: ``{name: f(model, images, classes) -> maps}``.

    saliency (lesson 3.5), SmoothGrad and Grad-CAM (tf-keras-vis, lesson 5), occlusion
    (the per-pixel probability drop, lesson 3.4) and, with ``edges``, an edge detector that
    never looks at the model (the control of Adebayo et al.).
    """
    from . import kerasvis, occlusion, saliency

    def occ(m, x, c):
        return np.stack([occlusion.occlusion_drop(m, xi, int(ci), patch, stride, batch_size=256)
                         for xi, ci in zip(x, c)])

    methods = {
        "saliency": lambda m, x, c: saliency.saliency_maps(m, x, c),
        "SmoothGrad": lambda m, x, c: kerasvis.saliency(m, x, c, smooth_samples=smooth_samples),
        "Grad-CAM": lambda m, x, c: kerasvis.gradcam(m, x, c),
        "occlusion": occ,
    }
    if edges:
        methods["edge detector (no model)"] = lambda m, x, c: np.stack([edge_map(xi) for xi in x])
    return methods


# --------------------------------------------------------------------------- measuring maps
class Curve(NamedTuple):
    """A deletion or insertion curve: fraction of pixels changed, class probability, area."""

    fraction: np.ndarray
    probability: np.ndarray
    auc: float


def _check_map(saliency, shape):
    sal = np.asarray(saliency, dtype=np.float32)
    if sal.ndim != 2:
        raise ValueError(f"Expected a 2-D saliency map, got shape {sal.shape}.")
    if not np.all(np.isfinite(sal)):
        raise ValueError("The saliency map contains NaN or infinite values.")
    if sal.shape != tuple(shape):
        sal = _plotting.upsample(sal, shape)
    return sal


def _baseline(image, baseline):
    if isinstance(baseline, str):
        if baseline != "blur":
            raise ValueError(f"baseline must be a number (a grey level) or 'blur', got {baseline!r}.")
        from skimage.filters import gaussian

        return gaussian(image, sigma=5, channel_axis=-1).astype(np.float32)
    if not isinstance(baseline, numbers.Real) or not 0 <= baseline <= 1:
        raise ValueError(f"baseline must be a grey level in [0, 1] or 'blur', got {baseline!r}.")
    return np.full_like(image, float(baseline))


def _auc(x, y) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)


def _curve(model, image, class_index, saliency, steps, start, end, batch_size):
    from . import _checks

    img = _checks.image_for(model, image)
    c = _checks.check_class(model, class_index)
    if not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    sal = _check_map(saliency, img.shape[:2])
    a, b = start(img), end(img)
    h, w = img.shape[:2]
    order = np.argsort(-sal.ravel(), kind="stable")          # most important pixel first
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(int)
    rank = np.empty(h * w, int)
    rank[order] = np.arange(h * w)
    rank = rank.reshape(h, w)
    seq = np.stack([np.where((rank < k)[..., None], b, a) for k in counts]).astype(np.float32)
    prob = model.predict(seq, batch_size=batch_size, verbose=0)[:, c].astype(np.float64)
    frac = counts / (h * w)
    return Curve(frac, prob, _auc(frac, prob))


def deletion_curve(model, image, class_index, saliency, steps: int = 16, baseline=0.0,
                   batch_size: int = 64) -> Curve:
    """Petsiuk et al.'s deletion metric: replace the most salient pixels first by ``baseline``
    (a grey level, or ``"blur"``) and follow the class probability.  A good map makes it fall
    fast: a *low* area under the curve.  Lesson 8.
    """
    return _curve(model, image, class_index, saliency, steps,
                  start=lambda img: img, end=lambda img: _baseline(img, baseline),
                  batch_size=batch_size)


def insertion_curve(model, image, class_index, saliency, steps: int = 16, baseline="blur",
                    batch_size: int = 64) -> Curve:
    """Petsiuk et al.'s insertion metric: start from a blurred copy and put the original pixels
    back, most salient first.  A good map makes the probability rise fast: a *high* area.
    Lesson 8.
    """
    return _curve(model, image, class_index, saliency, steps,
                  start=lambda img: _baseline(img, baseline), end=lambda img: img,
                  batch_size=batch_size)


def pointing_game(maps, masks, tolerance: int = 0, per_image: bool = False):
    """Zhang et al.'s pointing game: a hit when the map's maximum lies on the object.

    ``maps`` (H, W) or (n, h, w) (resized to the masks if needed), ``masks`` bool, one per
    map.  Each hit is decided by ``ch.saliency.pointing_hit`` (lesson 3.5's rule: among tied
    maxima, the one nearest their centroid; ``tolerance`` grows the mask by that many
    pixels).  Returns the hit rate, or the hits per image with ``per_image=True``.  Lesson 8.
    """
    from .saliency import pointing_hit

    masks = np.asarray(masks)
    maps = np.asarray(maps, dtype=np.float32)
    if masks.ndim == 2:
        masks = masks[None]
    if maps.ndim == 2:
        maps = maps[None]
    if masks.ndim != 3 or maps.ndim != 3:
        raise ValueError(f"Expected maps and masks of shape (n, H, W) or (H, W); got "
                         f"{maps.shape} and {masks.shape}.")
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} maps but {len(masks)} masks; give one mask per map.")
    if masks.dtype != bool:
        if not np.isin(masks, (0, 1)).all():
            raise ValueError("Masks must be boolean (True on the object).")
        masks = masks.astype(bool)
    if not isinstance(tolerance, numbers.Integral) or tolerance < 0:
        raise ValueError(f"tolerance must be an integer >= 0 (pixels), got {tolerance!r}.")
    hits = np.zeros(len(maps), bool)
    for i, (m, mask) in enumerate(zip(maps, masks)):
        if not mask.any():
            raise ValueError(f"Mask {i} is empty: the pointing game needs an object to point at.")
        hits[i] = pointing_hit(_check_map(m, mask.shape), mask, tolerance=int(tolerance))
    return hits if per_image else float(hits.mean())


def evaluate_explanations(model, images, labels, masks, methods: dict, steps: int = 16,
                          progress: bool = True) -> list:
    """Deletion AUC, insertion AUC and pointing game for each method, on images with masks.

    ``methods``: ``{name: f(model, images, classes) -> maps (n, h, w)}``; each method explains
    the true label.  Returns a list of rows ``{"method", "deletion AUC", "insertion AUC",
    "pointing game"}`` (means over the images).  Lesson 8.
    """
    from . import _checks

    batch = _checks.batch_for(model, images)
    labels = np.asarray(labels).astype(int)
    masks = np.asarray(masks, bool)
    if len(labels) != len(batch) or len(masks) != len(batch):
        raise ValueError(f"{len(batch)} images, {len(labels)} labels and {len(masks)} masks: "
                         "give one label and one mask per image.")
    rows = []
    items = list(methods.items())
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="methods", leave=False)
    for name, fn in items:
        maps = _as_maps(fn(model, batch, labels), len(batch), batch.shape[1:3])
        dele = [deletion_curve(model, batch[i], labels[i], maps[i], steps).auc for i in range(len(batch))]
        ins = [insertion_curve(model, batch[i], labels[i], maps[i], steps).auc for i in range(len(batch))]
        rows.append({"method": name, "deletion AUC": float(np.mean(dele)),
                     "insertion AUC": float(np.mean(ins)),
                     "pointing game": pointing_game(maps, masks)})
    return rows


def format_table(rows, digits: int = 3) -> str:
    """Rows of dicts as a Markdown table (``IPython.display.Markdown`` shows it).  Lesson 8."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = [f"{r[k]:.{digits}f}" if isinstance(r[k], float) else str(r[k]) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(curves: dict, title: str = ""):
    """Deletion and insertion curves side by side; ``curves = {method: (deletion, insertion)}``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.0), sharey=True)
    for name, (dele, ins) in curves.items():
        axes[0].plot(dele.fraction, dele.probability, label=f"{name} ({dele.auc:.2f})")
        axes[1].plot(ins.fraction, ins.probability, label=f"{name} ({ins.auc:.2f})")
    axes[0].set_title("deletion: lower area is better")
    axes[1].set_title("insertion: higher area is better")
    for ax in axes:
        ax.set_xlabel("fraction of pixels changed")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("class probability")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def random_map(model, images, classes, seed: int = 0) -> np.ndarray:
    """A map of random numbers: the baseline every explanation should beat.  Lesson 8."""
    n, h, w = len(images), images.shape[1], images.shape[2]
    return np.random.default_rng(seed).random((n, h, w)).astype(np.float32)
