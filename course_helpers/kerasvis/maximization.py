"""Lesson 5.2 (notebook 07): tf-keras-vis's ActivationMaximization for a class or a conv filter,
with seeded regularizers and input modifiers and a tqdm progress bar."""
from __future__ import annotations

import numpy as np

from .. import _checks
from .. import graph as _graph
from .. import widgets as _widgets
from .methods import _classes, toolbox


def _progress_callback_class():
    from tf_keras_vis.activation_maximization.callbacks import Callback

    class TqdmProgress(Callback):
        """A tqdm progress bar for ``ActivationMaximization`` that shows the current score.

        The notebook-friendly twin of tf-keras-vis's ``Progress`` callback.  Lesson 5.2.
        """

        def __init__(self, desc="activation maximization"):
            self.desc = desc
            self.bar = None

        def on_begin(self, steps=None, **kwargs):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc=self.desc, leave=False, mininterval=0.5)

        def __call__(self, i, values, grads, scores, model_outputs, **kwargs):
            self.bar.update(1)
            if i % 10 == 0:
                self.bar.set_postfix(score=f"{float(np.mean(scores[0])):.2f}")

        def on_end(self):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return TqdmProgress


def TqdmProgress(desc: str = "activation maximization"):  # noqa: N802 (it builds an object)
    """A tqdm progress-bar callback for tf-keras-vis ``ActivationMaximization``.  Lesson 5.2."""
    return _progress_callback_class()(desc)


def default_regularizers(tv: float = 2.0, l2: float = 1.0):
    """Total variation (smoothness) and an L2 pull towards 0 for [0, 1] images.  Lesson 5.2."""
    from tf_keras_vis.activation_maximization.regularizers import Norm, TotalVariation2D

    tv = _checks.number("tv", tv, low=0)
    l2 = _checks.number("l2", l2, low=0)
    return [TotalVariation2D(weight=tv), Norm(weight=l2, p=2)]


def default_input_modifiers(jitter: int = 2, degree: float = 2.0, seed: int = 0):
    """Random shifts and small rotations, seeded so a run repeats exactly.  Lesson 5.2."""
    from tf_keras_vis.activation_maximization.input_modifiers import Jitter, Rotate2D

    jitter = _checks.integer("jitter", jitter, low=0)
    degree = _checks.number("degree", degree, low=0)

    class SeededJitter(Jitter):
        def __init__(self, jitter, rng):
            super().__init__(jitter=jitter)
            self.rng = rng

        def __call__(self, seed_input):
            import tensorflow as tf

            shift = tuple(int(s) for s in self.rng.integers(-self.jitter, self.jitter + 1, 2))
            return tf.roll(seed_input, shift=shift, axis=(1, 2))

    rng = np.random.default_rng(seed)
    mods = []
    if jitter:
        mods.append(SeededJitter(jitter, rng))
    if degree:
        rot = Rotate2D(degree=degree)
        rot.random_generator = np.random.default_rng(seed + 1)
        mods.append(rot)
    return mods


def _target(model, class_index, layer, filter_index):
    """(the model to maximize on, one class or filter index per image)."""
    if (class_index is None) == (filter_index is None):
        raise ValueError("Give either class_index=... (a class) or layer=... and filter_index=... "
                         "(a kernel of a conv layer), not both and not neither.")
    if class_index is not None:
        if layer is not None:
            raise ValueError("layer= goes with filter_index=; for a class leave layer=None.")
        wanted = list(np.atleast_1d(np.asarray(class_index, dtype=object)))
        return toolbox(model).logits, _classes(model, wanted, len(wanted))
    if layer is None:
        raise ValueError("filter_index needs a conv layer: layer='conv3', for example. "
                         f"Conv layers: {', '.join(_graph.conv_layer_names(model))}.")
    conv = _graph.require_conv(model, layer)
    target = _graph.submodel(model, _graph.activation_layer(model, conv.name))
    n_filters = int(target.output.shape[-1])
    return target, [_checks.check_index(f, n_filters, "filter_index",
                                        f"Layer {conv.name!r} has {n_filters} kernels.")
                    for f in np.atleast_1d(np.asarray(filter_index, dtype=object))]


def activation_maximization(model, class_index=None, layer=None, filter_index=None,
                            steps: int = 200, n: int = 1, input_range=(0.0, 1.0),
                            regularizers="default", input_modifiers="default",
                            learning_rate: float = 0.05, seed: int = 0, progress: bool = True,
                            callbacks=None) -> np.ndarray:
    """tf-keras-vis ``ActivationMaximization`` (5.2): an input that maximizes a class or a filter.

    Give ``class_index`` (a class score before the softmax) *or* ``layer`` and
    ``filter_index`` (a kernel's mean activation after BN+ReLU), like keras-vis's
    ``layer_idx`` and ``filter_indices``; a list of classes or filters makes one image each,
    optimized together.  ``layer`` is a name or an index into ``model.layers``.  Starts from
    grey plus a little seeded noise and takes ``steps`` Adam steps of size ``learning_rate``
    (> 0: the score goes up), clipped to ``input_range``.  ``progress=True`` shows a tqdm bar.
    Returns (n, H, W, 3) float32.  Lesson 5.2.
    """
    import tf_keras as keras
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.utils.scores import CategoricalScore

    model = _checks.model(model)
    steps = _checks.integer("steps", steps, low=1)
    n = _checks.integer("n", n, low=1)
    learning_rate = _checks.number(
        "learning_rate", learning_rate, positive=True,
        fix="The ascent steps along the gradient by learning_rate, so a negative or zero rate "
            "would lower the score or do nothing; use e.g. learning_rate=0.05.")
    lo, hi = (_checks.number("input_range", v) for v in input_range)
    if not lo < hi:
        raise ValueError(f"input_range must be (low, high) with low < high, got {input_range}; "
                         "our models take (0.0, 1.0).")
    target, indices = _target(model, class_index, layer, filter_index)
    if len(indices) > 1:
        if n not in (1, len(indices)):
            raise ValueError(f"{len(indices)} targets but n={n}: one image per target is made, "
                             "so leave n=1.")
        n = len(indices)
    else:
        indices = indices * n
    vis = _widgets.cached(("am", _widgets.model_key(target)),
                          lambda: ActivationMaximization(target, clone=False))
    size = _checks.input_size(model)
    rng = np.random.default_rng(seed)
    start = (lo + hi) / 2 + (hi - lo) * 0.05 * rng.standard_normal((n,) + size + (3,))
    start = np.clip(start, lo, hi).astype(np.float32)
    regs = default_regularizers() if isinstance(regularizers, str) and regularizers == "default" \
        else list(regularizers or [])
    mods = default_input_modifiers(seed=seed) if isinstance(input_modifiers, str) and \
        input_modifiers == "default" else list(input_modifiers or [])
    cbs = list(callbacks or [])
    if progress:
        cbs.append(TqdmProgress())
    out = vis(CategoricalScore(indices), seed_input=start, input_range=(lo, hi),
              input_modifiers=mods, regularizers=regs, steps=steps,
              optimizer=keras.optimizers.Adam(learning_rate=learning_rate), callbacks=cbs)
    return np.asarray(out, dtype=np.float32)
