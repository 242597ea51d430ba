"""Lesson 5 — the visualization toolbox: keras-vis, today tf-keras-vis (可视化工具, notebook 07).

The source note uses keras-vis (``visualize_saliency``, ``visualize_activation``).  keras-vis
stopped working with TensorFlow 2; its maintained successor is **tf-keras-vis**.  This module
holds thin wrappers around tf-keras-vis that hide three compatibility workarounds:

* tf-keras-vis needs the Keras 2 API: ``import course_helpers`` first switches TensorFlow to
  tf-keras (``TF_USE_LEGACY_KERAS=1``).
* tf-keras-vis looks for "the last conv layer" with a class test written for Keras 3, which
  tf-keras layers fail; so Grad-CAM and Score-CAM are always told the layer by name
  (``penultimate_layer=name, seek_penultimate_conv_layer=False``).
* Instead of tf-keras-vis's ``ReplaceToLinear`` model modifier (which clones the model and
  switches its softmax off), every visualizer shares ``ch.models.logits_model(model)``, a view
  of the same weights before the softmax, with ``clone=False``.  One model, no copies.

Compute: :func:`saliency`, :func:`gradcam`, :func:`gradcam_plus_plus`, :func:`scorecam`,
:func:`compare_methods`, :func:`activation_maximization`.  Draw: :func:`captioned_overlay`,
:func:`plot_comparison`, :func:`plot_maximized`.  Widget: :func:`kerasvis_explorer`.
"""
from __future__ import annotations

import contextlib
import weakref

import numpy as np

from . import _checks
from . import models as _models
from . import plotting as _plotting
from . import widgets as _widgets

#: keras-vis call or argument -> tf-keras-vis equivalent -> note.  Shown in notebook 07.
KERAS_VIS_TO_TF_KERAS_VIS = [
    ("`from vis.visualization import visualize_saliency`",
     "`from tf_keras_vis.saliency import Saliency`", "a class: build once, call many times"),
    ("`visualize_saliency(model, layer_idx, filter_indices, seed_input)`",
     "`Saliency(model, clone=False)(score, seed_input)`", "returns a batch of maps in [0, 1]"),
    ("`layer_idx=-1` (+ `utils.apply_modifications` to make it linear)",
     "`model_modifier=ReplaceToLinear()`; here: `ch.models.logits_model(model)`",
     "scores before the softmax"),
    ("`filter_indices=c` (a class or a filter)", "`score=CategoricalScore(c)`",
     "or any function `lambda out: out[:, c]`"),
    ("`backprop_modifier='guided'`", "`model_modifier=GuidedBackpropagation()`",
     "fails Adebayo's sanity check (notebook 08)"),
    ("`grad_modifier='absolute'`", "`gradient_modifier=lambda g: tf.abs(g)`", "the default"),
    ("(no SmoothGrad)", "`Saliency(...)(score, x, smooth_samples=20, smooth_noise=0.2)`", ""),
    ("`visualize_cam(model, layer_idx, filter_indices, seed_input, penultimate_layer_idx)`",
     "`Gradcam(model)(score, x, penultimate_layer=name)`",
     "+ `GradcamPlusPlus`, `Scorecam`, `Layercam`"),
    ("`from vis.visualization import visualize_activation`",
     "`from tf_keras_vis.activation_maximization import ActivationMaximization`", ""),
    ("`visualize_activation(model, layer_idx, filter_indices, ...)`",
     "`ActivationMaximization(model)(score, steps=...)`",
     "a filter: a model cut at that layer + `CategoricalScore(filter)`"),
    ("`input_range=(0, 255)`", "`input_range=(0, 255)`", "same name; (0.0, 1.0) for our models"),
    ("`tv_weight`, `lp_norm_weight`", "`regularizers=[TotalVariation2D(w), Norm(w, p)]`",
     "regularizer objects"),
    ("`input_modifiers=[Jitter(16)]`", "`input_modifiers=[Jitter(8), Rotate2D(3)]`", ""),
    ("`max_iter=200`", "`steps=200`", ""),
    ("`callbacks=[Print()]`", "`callbacks=[Progress()]`", "or our tqdm bar `TqdmProgress()`"),
    ("`utils.draw_text(img, text)`", "(none)", "`ch.plotting.draw_caption(img, text)`"),
    ("`utils.find_layer_idx(model, name)`", "(not needed)", "layers are passed by name"),
]

METHODS = ("Saliency", "SmoothGrad", "Grad-CAM", "Grad-CAM++", "Score-CAM")


def mapping_table() -> str:
    """The keras-vis -> tf-keras-vis table as Markdown.  Lesson 5 (notebook 07) displays it."""
    rows = ["| keras-vis | tf-keras-vis | note |", "|---|---|---|"]
    rows += [f"| {a} | {b} | {c} |" for a, b, c in KERAS_VIS_TO_TF_KERAS_VIS]
    return "\n".join(rows)


# --------------------------------------------------------------------------- one shared toolbox
class Toolbox:
    """tf-keras-vis's visualizers for one model, all built on one shared logits view.

    ``ch.kerasvis.toolbox(model)`` returns the same object every time for the same model.
    Lesson 5.
    """

    def __init__(self, model):
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.scorecam import Scorecam

        self.model = model
        self.logits = _models.logits_model(model)   # shares weights; nothing is copied
        self.saliency = Saliency(self.logits, clone=False)
        self.gradcam = Gradcam(self.logits, clone=False)
        self.gradcam_plus_plus = GradcamPlusPlus(self.logits, clone=False)
        self.scorecam = Scorecam(self.logits, clone=False)

    def visualizers(self) -> dict:
        return {"saliency": self.saliency, "gradcam": self.gradcam,
                "gradcam_plus_plus": self.gradcam_plus_plus, "scorecam": self.scorecam}


_TOOLBOXES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def toolbox(model) -> Toolbox:
    """The :class:`Toolbox` of ``model`` (made once, then reused).  Lesson 5."""
    if not hasattr(model, "layers") or not hasattr(model, "inputs"):
        raise TypeError(f"Expected a Keras model, got {type(model).__name__}. "
                        "Load one with ch.models.load_model('course-cnn').")
    box = _TOOLBOXES.get(model)
    if box is None:
        box = _TOOLBOXES[model] = Toolbox(model)
    return box


# --------------------------------------------------------------------------- input checks
def _batch(model, images):
    """(batch, single?) from one image (H, W, C) or a batch/list of images."""
    if isinstance(images, np.ndarray) and images.ndim in (2, 3) and not (
            images.ndim == 3 and images.shape[-1] not in (1, 2, 3, 4)):
        return _checks.image_for(model, images)[None], True
    return _checks.batch_for(model, images), False


def _classes(model, class_index, n) -> list:
    """One valid class index per image; ``class_index`` may be an int, a name or a list."""
    names = _models.class_names(model)

    def one(c):
        if isinstance(c, str):
            if c not in names:
                raise ValueError(f"Unknown class name {c!r}. Classes: {', '.join(names[:20])}"
                                 f"{' ...' if len(names) > 20 else ''}.")
            return names.index(c)
        return _checks.check_class(model, c)

    if isinstance(class_index, (list, tuple, np.ndarray)):
        idx = [one(c) for c in np.asarray(class_index).tolist()]
        if len(idx) != n:
            raise ValueError(f"Got {len(idx)} class indices for {n} images; give one per image "
                             "or a single int for all.")
        return idx
    return [one(class_index)] * n


def cam_layer(model, layer=None) -> str:
    """The layer whose output Grad-CAM/Score-CAM weigh: by default the last conv's activation.

    A conv layer's name means its activation (after BN and ReLU, ``ch.models.activation_layer``);
    any other layer must have a spatial output (batch, h, w, channels).  Lesson 5.
    """
    if layer is None:
        convs = _models.conv_layer_names(model)
        if not convs:
            raise ValueError(f"{model.name} has no Conv2D layer, so Grad-CAM has nothing to weigh.")
        layer = convs[-1]
    lyr = _models.get_layer(model, layer)
    if lyr.name in _models.conv_layer_names(model):
        lyr = _models.activation_layer(model, lyr.name)
    if len(lyr.output.shape) != 4:
        raise ValueError(f"Layer {lyr.name!r} has output shape {tuple(lyr.output.shape)}, not a "
                         f"(batch, h, w, channels) map; pick a conv layer: "
                         f"{', '.join(_models.conv_layer_names(model))}.")
    return lyr.name


@contextlib.contextmanager
def _quiet_keras():
    """Hide Keras's progress bar (Score-CAM calls ``model.predict`` without ``verbose=0``)."""
    import tf_keras as keras

    was_on = keras.utils.is_interactive_logging_enabled()
    keras.utils.disable_interactive_logging()
    try:
        yield
    finally:
        if was_on:
            keras.utils.enable_interactive_logging()


# --------------------------------------------------------------------------- attribution maps
def saliency(model, images, class_index, smooth_samples: int = 0, smooth_noise: float = 0.2,
             seed: int = 0, normalize: bool = True) -> np.ndarray:
    """tf-keras-vis ``Saliency`` (5.1): |d score / d pixel|, max over RGB, scaled to [0, 1].

    ``smooth_samples > 0`` gives SmoothGrad: the average over that many noisy copies, noise
    ``smooth_noise`` x (max - min) of the image.  The score is the class score before the
    softmax.  Returns (H, W) for one image, (n, H, W) for a batch.  Lesson 5.1.
    """
    from tf_keras_vis.utils.scores import CategoricalScore

    batch, single = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    if int(smooth_samples) < 0:
        raise ValueError(f"smooth_samples must be >= 0 (0 = plain saliency), got {smooth_samples}.")
    if smooth_noise < 0:
        raise ValueError(f"smooth_noise must be >= 0, got {smooth_noise}.")
    np.random.seed(seed)   # tf-keras-vis draws SmoothGrad's noise from NumPy's global generator
    maps = toolbox(model).saliency(CategoricalScore(classes), batch,
                                   smooth_samples=int(smooth_samples), smooth_noise=float(smooth_noise),
                                   normalize_map=bool(normalize))
    maps = np.asarray(maps, dtype=np.float32)
    return maps[0] if single else maps


def gradcam(model, images, class_index, layer=None, plus_plus: bool = False) -> np.ndarray:
    """tf-keras-vis ``Gradcam`` (or ``GradcamPlusPlus``) at ``layer``, upsampled, in [0, 1].

    ``layer`` defaults to the last conv layer's activation (see :func:`cam_layer`).  Returns
    (H, W) for one image, (n, H, W) for a batch.  Lesson 5.
    """
    from tf_keras_vis.utils.scores import CategoricalScore

    batch, single = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    box = toolbox(model)
    vis = box.gradcam_plus_plus if plus_plus else box.gradcam
    maps = vis(CategoricalScore(classes), batch, penultimate_layer=cam_layer(model, layer),
               seek_penultimate_conv_layer=False)
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    return maps[0] if single else maps


def gradcam_plus_plus(model, images, class_index, layer=None) -> np.ndarray:
    """tf-keras-vis ``GradcamPlusPlus``; see :func:`gradcam`.  Lesson 5."""
    return gradcam(model, images, class_index, layer=layer, plus_plus=True)


def scorecam(model, images, class_index, layer=None, max_n=None, batch_size: int = 64) -> np.ndarray:
    """tf-keras-vis ``Scorecam``: gradient-free; each channel weighted by the class probability
    of the image masked with that channel.  ``max_n`` keeps only that many channels (Faster
    Score-CAM).  Returns (H, W) or (n, H, W) in [0, 1].  Lesson 5.
    """
    from tf_keras_vis.utils.scores import CategoricalScore

    batch, single = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    with _quiet_keras():
        maps = toolbox(model).scorecam(CategoricalScore(classes), batch,
                                       penultimate_layer=cam_layer(model, layer),
                                       seek_penultimate_conv_layer=False, max_N=max_n,
                                       batch_size=int(batch_size))
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    return maps[0] if single else maps


def compare_methods(model, images, class_index, methods=METHODS, layer=None,
                    smooth_samples: int = 20, seed: int = 0) -> dict:
    """Maps of several tf-keras-vis methods for the same images and classes.  Lesson 5.

    Returns ``{method name: maps (n, H, W)}`` with names from :data:`METHODS`; cached, so a
    widget that switches between them computes each once.
    """
    batch, _ = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; choose from {list(METHODS)}.")
    run = {
        "Saliency": lambda: saliency(model, batch, classes),
        "SmoothGrad": lambda: saliency(model, batch, classes, smooth_samples=smooth_samples, seed=seed),
        "Grad-CAM": lambda: gradcam(model, batch, classes, layer=layer),
        "Grad-CAM++": lambda: gradcam_plus_plus(model, batch, classes, layer=layer),
        "Score-CAM": lambda: scorecam(model, batch, classes, layer=layer),
    }
    out = {}
    for name in methods:
        key = ("kerasvis", name, _widgets.model_key(model), _widgets.array_key(batch),
               tuple(classes), layer, smooth_samples, seed)
        out[name] = _widgets.cached(key, run[name])
    return out


# --------------------------------------------------------------------------- activation maximization
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

    return [TotalVariation2D(weight=tv), Norm(weight=l2, p=2)]


def default_input_modifiers(jitter: int = 2, degree: float = 2.0, seed: int = 0):
    """Random shifts and small rotations, seeded so a run repeats exactly.  Lesson 5.2."""
    from tf_keras_vis.activation_maximization.input_modifiers import Jitter, Rotate2D

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


def activation_maximization(model, class_index=None, layer=None, filter_index=None,
                            steps: int = 200, n: int = 1, input_range=(0.0, 1.0),
                            regularizers="default", input_modifiers="default",
                            learning_rate: float = 0.05, seed: int = 0, progress: bool = True,
                            callbacks=None) -> np.ndarray:
    """tf-keras-vis ``ActivationMaximization`` (5.2): an input that maximizes a class or a filter.

    Give ``class_index`` (a class score before the softmax) *or* ``layer`` and
    ``filter_index`` (a kernel's mean activation after BN+ReLU), like keras-vis's
    ``layer_idx`` and ``filter_indices``; a list of classes or filters makes one image each,
    optimized together.  Starts from grey plus a little seeded noise and
    takes ``steps`` Adam steps of size ``learning_rate``, clipped to ``input_range``.
    ``progress=True`` shows a tqdm bar.  Returns (n, H, W, 3) float32.  Lesson 5.2.
    """
    import tf_keras as keras
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.utils.scores import CategoricalScore

    from . import activations as _activations

    if (class_index is None) == (filter_index is None):
        raise ValueError("Give either class_index=... (a class) or layer=... and filter_index=... "
                         "(a kernel of a conv layer), not both and not neither.")
    if int(steps) < 1 or int(n) < 1:
        raise ValueError(f"steps and n must be >= 1, got steps={steps}, n={n}.")
    lo, hi = (float(v) for v in input_range)
    if not lo < hi:
        raise ValueError(f"input_range must be (low, high) with low < high, got {input_range}.")
    if class_index is not None:
        if layer is not None:
            raise ValueError("layer= goes with filter_index=; for a class leave layer=None.")
        target = toolbox(model).logits
        wanted = list(np.atleast_1d(np.asarray(class_index, dtype=object)))
        indices = _classes(model, wanted, len(wanted))
    else:
        if layer is None:
            raise ValueError("filter_index needs a conv layer: layer='conv3', for example. "
                             f"Conv layers: {', '.join(_models.conv_layer_names(model))}.")
        target = _activations.activation_model(model, layer)
        n_filters = int(target.output.shape[-1])
        indices = [_checks.check_index(f, n_filters, "filter_index",
                                       f"Layer {layer!r} has {n_filters} kernels.")
                   for f in np.atleast_1d(np.asarray(filter_index, dtype=object))]
    if len(indices) > 1:
        if int(n) not in (1, len(indices)):
            raise ValueError(f"{len(indices)} targets but n={n}: one image per target is made.")
        n = len(indices)
    else:
        indices = indices * int(n)
    score = CategoricalScore(indices)
    key = ("am", _widgets.model_key(target))
    vis = _widgets.cached(key, lambda: ActivationMaximization(target, clone=False))
    size = _checks.input_size(model)
    rng = np.random.default_rng(seed)
    start = (lo + hi) / 2 + (hi - lo) * 0.05 * rng.standard_normal((int(n),) + size + (3,))
    start = np.clip(start, lo, hi).astype(np.float32)
    regs = default_regularizers() if isinstance(regularizers, str) and regularizers == "default" \
        else list(regularizers or [])
    mods = default_input_modifiers(seed=seed) if isinstance(input_modifiers, str) and \
        input_modifiers == "default" else list(input_modifiers or [])
    cbs = list(callbacks or [])
    if progress:
        cbs.append(TqdmProgress())
    out = vis(score, seed_input=start, input_range=(lo, hi), input_modifiers=mods,
              regularizers=regs, steps=int(steps),
              optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
              callbacks=cbs)
    return np.asarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- drawing
def captioned_overlay(image, heatmap=None, text: str = "", size: int = 128, alpha: float = 0.5,
                      cmap: str = "jet") -> np.ndarray:
    """``image`` with ``heatmap`` blended in and ``text`` drawn on it, as an RGB array.

    The picture is enlarged to ``size`` pixels so the caption stays legible on 64x64 images
    (keras-vis's ``utils.draw_text`` idea).  Lesson 5.
    """
    import matplotlib

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"Expected an RGB image (H, W, 3), got shape {img.shape}.")
    big = _upsample_rgb(img, size)
    if heatmap is not None:
        hm = np.asarray(heatmap, dtype=np.float32)
        if hm.ndim != 2:
            raise ValueError(f"Expected a 2-D heatmap, got shape {hm.shape}.")
        hm = _plotting.normalize(_plotting.upsample(hm, big.shape[:2]))
        colour = matplotlib.colormaps[cmap](hm)[..., :3].astype(np.float32)
        big = (1 - alpha) * big + alpha * colour
    return _plotting.draw_caption(big, text) if text else big


def _upsample_rgb(img, size):
    if img.shape[0] == size and img.shape[1] == size:
        return img
    from skimage.transform import resize

    return np.clip(resize(img, (size, size, 3), order=0 if size >= img.shape[0] else 1,
                          anti_aliasing=size < img.shape[0]), 0, 1).astype(np.float32)


def plot_comparison(images, maps: dict, row_titles=None, size: int = 128):
    """One row per image: the image, then each method's map over it, captions on the pictures.

    ``maps`` is the output of :func:`compare_methods`.  Returns the Figure.  Lesson 5.
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
        maps = {k: np.asarray(v)[None] if np.ndim(v) == 2 else v for k, v in maps.items()}
    names = list(maps)
    for k in names:
        if len(maps[k]) != len(images):
            raise ValueError(f"{k}: {len(maps[k])} maps for {len(images)} images.")
    rows, cols = len(images), len(names) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 1.9 * rows), squeeze=False)
    for i in range(rows):
        title = row_titles[i] if row_titles is not None else "input"
        axes[i, 0].imshow(captioned_overlay(images[i], None, str(title), size=size))
        for j, k in enumerate(names, start=1):
            axes[i, j].imshow(captioned_overlay(images[i], maps[k][i], k, size=size))
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    return fig


def plot_maximized(images, captions, size: int = 128, ncols: int = 6):
    """Activation-maximization results with captions drawn on them.  Lesson 5.2."""
    images = np.asarray(images, dtype=np.float32)
    if len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images.")
    tiles = [captioned_overlay(im, None, str(c), size=size) for im, c in zip(images, captions)]
    return _plotting.image_grid(tiles, ncols=ncols, size=1.9)


def plot_maps(images, maps, captions=None, ncols: int = 6, size: int = 128):
    """A grid of maps over their images, a caption drawn on each.  Lesson 5."""
    images = np.asarray(images, dtype=np.float32)
    maps = np.asarray(maps, dtype=np.float32)
    if images.ndim == 3:
        images, maps = images[None], maps[None]
    if len(maps) != len(images):
        raise ValueError(f"{len(maps)} maps for {len(images)} images.")
    captions = [""] * len(images) if captions is None else [str(c) for c in captions]
    tiles = [captioned_overlay(im, m, c, size=size) for im, m, c in zip(images, maps, captions)]
    return _plotting.image_grid(tiles, ncols=ncols, size=1.9)


def kerasvis_explorer(model, images, class_index=None):
    """Widget for lesson 5: pick an image, a method and a class; see the map.

    ``class_index=None`` explains the predicted class.  Each (method, class) is computed once.
    """
    names, imgs = _checks.names_and_images(images)
    batch = _checks.batch_for(model, imgs)
    classes = _models.class_names(model)
    pred = model.predict(batch, verbose=0).argmax(-1)

    def draw(image, method, explain):
        i = names.index(image)
        c = int(pred[i]) if explain == "predicted class" else classes.index(explain)
        maps = compare_methods(model, batch[i:i + 1], c, methods=(method,))
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(3.4, 3.4))
        ax.imshow(captioned_overlay(batch[i], maps[method][0], f"{method}: {classes[c]}", size=192))
        ax.axis("off")
        return fig

    choice = ["predicted class"] + list(classes[:50])
    return _widgets.interactive_plot(draw, image=names, method=list(METHODS), explain=choice)
