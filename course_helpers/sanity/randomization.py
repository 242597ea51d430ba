"""Sanity checks (Adebayo et al. 2018): does a map change when the model's weights do?  Lesson 8.

:func:`randomize_layers` and :func:`randomized` re-draw a model's weights from each layer's own
initializer; :func:`cascading_randomization` does it from the top layer down and follows the
maps.  A map that barely changes is showing the image, not the model.
"""
from __future__ import annotations

import numpy as np

from .. import _checks, graph
from .. import models as _models
from ..weights import _load_variable, _redraw, _save_variable
from .metrics import _as_maps


def cascade_order(model) -> list:
    """Groups of layer names to randomize, from the top (logits) down.  Lesson 8.

    A batch-norm layer goes with the layer before it (``conv4`` + ``conv4_bn``), so each group
    is one step of Adebayo's cascading randomization.
    """
    import tf_keras as keras

    _checks.model(model)
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


def _group_names(model, layers):
    """Flat layer names from names or groups of names; clear errors for layers without weights."""
    with_weights = [lyr.name for lyr in model.layers if lyr.weights]
    if layers is None:
        return with_weights
    if not isinstance(layers, (list, tuple)):
        layers = [layers]          # one layer: a name, an index or the layer itself
    names = []
    for item in layers:            # a group from cascade_order is a list of names
        for one in (item if isinstance(item, (list, tuple)) else [item]):
            lyr = graph.layer(model, one)
            if not lyr.weights:
                raise ValueError(f"Layer {lyr.name!r} has no weights to randomize. Layers "
                                 f"with weights: {', '.join(with_weights)}.")
            names.append(lyr.name)
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

    Written out in lesson 08, "In plain code: randomizing a layer".
    """
    import tf_keras as keras

    _checks.model(model)
    names = _group_names(model, layers)
    from ..vgg import ZerosWhenLarge

    with keras.utils.custom_object_scope({"ZerosWhenLarge": ZerosWhenLarge}):  # VGG's own
        copy = keras.models.clone_model(model)
    for dst, src in zip(copy.weights, model.weights):  # variable by variable: no second full
        dst.assign(src)                                 # copy of VGG's weights in NumPy
    _randomize_in_place(copy, names, seed)
    _models._tag(copy, class_names=_models.class_names(model),
                 name=f"{_models.model_name(model)} (randomized)")
    return copy


class randomized:  # noqa: N801  (used like a function: ``with randomized(model, layers):``)
    """``with ch.sanity.randomized(model, layers, seed):`` -- the same weights as
    :func:`randomize_layers`, but put into ``model`` itself, and the original weights restored
    when the block ends (also after an error).  Lesson 8.

    The original weights of the randomized layers wait in a temporary folder on disk, so a
    VGG16 cascade needs one model's memory instead of two (Binder's 2 GB).  Inside the block,
    :meth:`add` randomizes more layers (the next step of a cascade).  Results cached for the
    model by the explorers are dropped on entry and on exit (they would be stale).

    Written out in lesson 08, "In plain code: randomizing a layer".
    """

    def __init__(self, model, layers=None, seed: int = 0):
        self.model = _checks.model(model)
        self.seed = int(seed)
        self._first = _group_names(model, layers)
        self._saved = {}
        self._folder = None

    def __enter__(self):
        import tempfile

        from .. import widgets

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
        from .. import widgets

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
        from .. import widgets

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


def cascading_randomization(model, images, class_index, methods: dict, seed: int = 0,
                            steps=None, progress: bool = True) -> dict:
    """Adebayo's cascading randomization: the maps after each top-down randomization step.

    ``methods`` maps a name to ``f(model, images, classes) -> maps (n, h, w)``.  ``steps``
    limits the cascade to its first groups (default: all of :func:`cascade_order`).  Returns
    ``{"steps": [...], "maps": {name: (steps + 1, n, H, W)}, "correlation": {name: (steps + 1,)}}``
    where correlation is the mean Spearman rank correlation with the original map.  Lesson 8.
    """
    _checks.model(model)
    batch = _checks.batch_for(model, images)
    n, shape = len(batch), batch.shape[1:3]
    if isinstance(class_index, (list, tuple, np.ndarray)):
        classes = [_checks.check_class(model, c) for c in class_index]
        if len(classes) != n:
            raise ValueError(f"class_index lists {len(classes)} classes for {n} images: give "
                             "one class for all of them or one per image.")
    else:
        classes = [_checks.check_class(model, class_index)] * n
    classes = np.array(classes, dtype=int)
    if not methods:
        raise ValueError("Give at least one method: {'name': function(model, images, classes)}.")
    groups = cascade_order(model)
    if steps is not None:
        groups = groups[:_checks.integer("steps", steps, low=0)]
    labels = ["original"] + [g[0] for g in groups]
    maps = {name: [] for name in methods}
    it = range(len(groups) + 1)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="randomizing", leave=False)
    # one model, randomized in place group by group and restored at the end: the same
    # weights as randomize_layers(model, groups[:k]) at step k, without a copy of the model
    cascade = randomized(model, [], seed=seed)
    with cascade as current:
        for k in it:
            if k:
                cascade.add(groups[k - 1])
            for name, fn in methods.items():
                maps[name].append(_as_maps(fn(current, batch, classes), n, shape))
    out = {"steps": labels, "maps": {}, "correlation": {}}
    for name, seq in maps.items():
        arr = np.stack(seq)
        out["maps"][name] = arr
        out["correlation"][name] = np.array(
            [np.mean([spearman(arr[0, i], arr[k, i]) for i in range(n)]) for k in range(len(arr))])
    return out


def standard_methods(smooth_samples: int = 16, patch: int = 16, stride: int = 8,
                     edges: bool = True) -> dict:
    """The methods lesson 8 tests: ``{name: f(model, images, classes) -> maps}``.

    saliency (lesson 3.5), SmoothGrad and Grad-CAM (tf-keras-vis, lesson 5), occlusion
    (the per-pixel probability drop, lesson 3.4) and, with ``edges``, an edge detector that
    never looks at the model (the control of Adebayo et al.).
    """
    from .. import kerasvis, occlusion, saliency

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


def attribution_methods(ig_steps: int = 32, ig_baseline="black") -> dict:
    """The attribution methods of ``ch.attribution`` in the form lesson 8 tests:
    ``{name: f(model, images, classes) -> maps}``, each map the largest absolute attribution
    over R, G, B (``ch.saliency.reduce_channels``).  Integrated gradients with ``ig_steps``
    steps from ``ig_baseline``.
    """
    from .. import attribution
    from ..saliency import reduce_channels

    def per_image(fn, **kw):
        return lambda m, x, c: reduce_channels(
            np.stack([fn(m, xi, int(ci), **kw) for xi, ci in zip(x, c)]))

    return {
        "gradient x input": per_image(attribution.gradient_times_input),
        "integrated gradients": per_image(attribution.integrated_gradients, steps=ig_steps,
                                          baseline=ig_baseline),
        "guided backprop": per_image(attribution.guided_backprop),
        "deconvnet": per_image(attribution.deconvnet),
        "guided Grad-CAM": per_image(attribution.guided_gradcam),
    }


def all_methods(smooth_samples: int = 16, ig_steps: int = 32, patch: int = 16, stride: int = 8,
                edges: bool = True) -> dict:
    """:func:`standard_methods` and :func:`attribution_methods` together (the edge detector,
    with ``edges``, last): every method lesson 8 puts through its checks."""
    methods = standard_methods(smooth_samples=smooth_samples, patch=patch, stride=stride,
                               edges=False)
    methods.update(attribution_methods(ig_steps=ig_steps))
    if edges:
        methods["edge detector (no model)"] = lambda m, x, c: np.stack([edge_map(xi) for xi in x])
    return methods
