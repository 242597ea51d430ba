"""Lesson 5 (notebook 07), the maps: tf-keras-vis's Saliency, SmoothGrad, Grad-CAM, Grad-CAM++
and Score-CAM on one shared logits view of the model, and the keras-vis -> tf-keras-vis table.

Activation maximization is in :mod:`.maximization`, the drawings and the explorer in :mod:`.plots`.
"""
from __future__ import annotations

import contextlib
import weakref

import numpy as np

from .. import _checks
from .. import graph as _graph
from .. import models as _models
from .. import widgets as _widgets

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
    ("`backprop_modifier='guided'`",
     "`model_modifier=GuidedBackpropagation()` on a clone; here: `ch.attribution.guided_backprop`",
     "the modifier skips `ReLU` layers without a word (below); notebook 08 runs the sanity checks"),
    ("`backprop_modifier='relu'`", "(none); here: `ch.attribution.deconvnet`",
     "the deconvnet rule (below)"),
    ("`grad_modifier='absolute'`", "`gradient_modifier=lambda g: tf.abs(g)`", "the default"),
    ("(no SmoothGrad)", "`Saliency(...)(score, x, smooth_samples=20, smooth_noise=0.2)`", ""),
    ("`visualize_cam(model, layer_idx, filter_indices, seed_input, penultimate_layer_idx)`",
     "`Gradcam(model)(score, x, penultimate_layer=name)`",
     "+ `GradcamPlusPlus`, `Scorecam`, `Layercam` (at every layer, below)"),
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

METHODS = ("Saliency", "SmoothGrad", "Grad-CAM", "Grad-CAM++", "Layer-CAM", "Score-CAM")


def mapping_table() -> str:
    """The keras-vis -> tf-keras-vis table as Markdown.  Lesson 5 (notebook 07) displays it."""
    rows = ["| keras-vis | tf-keras-vis | note |", "|---|---|---|"]
    rows += [f"| {a} | {b} | {c} |" for a, b, c in KERAS_VIS_TO_TF_KERAS_VIS]
    return "\n".join(rows)


# --------------------------------------------------------------------------- one shared toolbox
class Toolbox:
    """tf-keras-vis's visualizers for one model, all built on one shared logits view.

    ``ch.kerasvis.toolbox(model)`` returns the same object every time for the same model.
    It holds the model only by a weak reference (``box.model()``), so a model the learner
    deletes is not kept alive by its toolbox.  Lesson 5.
    """

    def __init__(self, model):
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.layercam import Layercam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.scorecam import Scorecam

        model = _checks.model(model)
        self.model = weakref.ref(model)   # a strong one would keep its toolbox's key alive
        self.logits = _models.logits_model(model)   # shares weights; nothing is copied
        self.saliency = Saliency(self.logits, clone=False)
        self.gradcam = Gradcam(self.logits, clone=False)
        self.gradcam_plus_plus = GradcamPlusPlus(self.logits, clone=False)
        self.layercam = Layercam(self.logits, clone=False)
        self.scorecam = Scorecam(self.logits, clone=False)

    def visualizers(self) -> dict:
        return {"saliency": self.saliency, "gradcam": self.gradcam,
                "gradcam_plus_plus": self.gradcam_plus_plus, "layercam": self.layercam,
                "scorecam": self.scorecam}


_TOOLBOXES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def toolbox(model) -> Toolbox:
    """The :class:`Toolbox` of ``model`` (made once, then reused).  Lesson 5."""
    model = _checks.model(model)
    box = _TOOLBOXES.get(model)
    if box is None:
        box = _TOOLBOXES[model] = Toolbox(model)
    return box


# --------------------------------------------------------------------------- input checks
def _batch(model, images):
    """(batch, single?) from one image (H, W, C) or a batch/list of images."""
    _checks.model(model)
    if isinstance(images, np.ndarray) and images.ndim in (2, 3) and not (
            images.ndim == 3 and images.shape[-1] not in (1, 2, 3, 4)):
        return _checks.image_for(model, images)[None], True
    if images is None:
        raise TypeError("images is None: pass one image (H, W, 3) or a list or batch of images.")
    _checks.nonempty("images", images, "pass one image (H, W, 3) or a list or batch of images, "
                     "e.g. ch.data.make_shapes(4)[0]")
    return _checks.batch_for(model, images), False


def _classes(model, class_index, n) -> list:
    """One valid class index per image; ``class_index`` may be an int, a name or a list."""
    if isinstance(class_index, (list, tuple, np.ndarray)):
        idx = [_checks.check_class(model, c) for c in np.asarray(class_index).tolist()]
        if len(idx) != n:
            raise ValueError(f"Got {len(idx)} class indices for {n} images; give one per image "
                             "or a single int for all.")
        return idx
    return [_checks.check_class(model, class_index)] * n


def _in_pieces(batch, classes, batch_size, run) -> np.ndarray:
    """``run(images, classes)`` on pieces of at most ``batch_size`` images (None: all at once),
    the maps joined.  tf-keras-vis keeps a whole batch's activations for its gradients: for
    VGG16 at 224 px that is about a tenth of a gigabyte per photo."""
    if batch_size is None:
        return run(batch, classes)
    size = _checks.integer("batch_size", batch_size, low=1)
    return np.concatenate([run(batch[s:s + size], classes[s:s + size])
                           for s in range(0, len(batch), size)])


def _imagenet_cam_layer(model):
    """``ch.models.imagenet_layers(model)["cam"]`` for VGG16, VGG19 and ResNet50 (when the
    model has that layer), else None."""
    try:
        name = _models.imagenet_layers(model)["cam"]
    except ValueError:
        return None
    return name if any(lyr.name == name for lyr in model.layers) else None


def cam_layer(model, layer=None) -> str:
    """The layer whose output Grad-CAM/Score-CAM weigh.  By default: for VGG16, VGG19 and
    ResNet50 ``ch.models.imagenet_layers(model)["cam"]`` (ResNet50's ``conv5_block3_out``, the
    last block after its residual sum and ReLU, not the BN before the sum), for any other model
    the last conv's activation.

    A conv layer's name (or index) means its activation (after BN and ReLU,
    ``ch.graph.activation_layer``); any other layer must have a spatial output
    (batch, h, w, channels).  Lesson 5.
    """
    model = _checks.model(model)
    convs = _graph.conv_layer_names(model)
    if layer is None:
        layer = _imagenet_cam_layer(model)
    if layer is None:
        if not convs:
            raise ValueError(f"{model.name} has no Conv2D layer, so Grad-CAM has nothing to weigh.")
        layer = convs[-1]
    lyr = _graph.layer(model, layer)
    if lyr.name in convs:
        lyr = _graph.activation_layer(model, lyr.name)
    shape = tuple(_graph.output_of(model, lyr).shape)
    if len(shape) != 4:
        raise ValueError(f"Layer {lyr.name!r} has output shape {shape}, not a "
                         f"(batch, h, w, channels) map; pick a conv layer: {', '.join(convs)}.")
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
             seed: int = 0, normalize: bool = True, batch_size=None) -> np.ndarray:
    """tf-keras-vis ``Saliency`` (5.1): |d score / d pixel|, max over RGB, scaled to [0, 1].

    ``smooth_samples > 0`` gives SmoothGrad: the average over that many noisy copies, noise
    ``smooth_noise`` x (max - min) of the image.  The score is the class score before the
    softmax.  ``batch_size`` images go through the network at once (None: all; see
    :func:`compare_methods`); SmoothGrad's noise is drawn from ``seed`` for each such piece.
    Returns (H, W) for one image, (n, H, W) for a batch.  Lesson 5.1.
    """
    from tf_keras_vis.utils.scores import CategoricalScore

    batch, single = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    smooth_samples = _checks.integer("smooth_samples", smooth_samples, low=0)
    smooth_noise = _checks.number("smooth_noise", smooth_noise, low=0)
    seed = _checks.integer("seed", seed, low=0)
    vis = toolbox(model).saliency

    def run(piece, piece_classes):
        # tf-keras-vis draws SmoothGrad's noise from NumPy's global generator: seed it for
        # these maps only, and give the learner's own random stream back afterwards
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            out = vis(CategoricalScore(piece_classes), piece, smooth_samples=smooth_samples,
                      smooth_noise=smooth_noise, normalize_map=bool(normalize))
        finally:
            np.random.set_state(state)
        return np.asarray(out, dtype=np.float32).reshape(piece.shape[:3])

    maps = _in_pieces(batch, classes, batch_size, run)
    return maps[0] if single else maps


def gradcam(model, images, class_index, layer=None, plus_plus: bool = False,
            batch_size=None) -> np.ndarray:
    """tf-keras-vis ``Gradcam`` (or ``GradcamPlusPlus``) at ``layer``, upsampled, in [0, 1].

    ``layer`` defaults to the last conv layer's activation (see :func:`cam_layer`); for VGG16
    and ResNet50 pass ``ch.models.imagenet_layers(model)["cam"]``.  ``batch_size`` images go
    through the network at once (None: all).  Returns (H, W) for one image, (n, H, W) for a
    batch.  Lesson 5 (and its ImageNet part).
    """
    from tf_keras_vis.utils.scores import CategoricalScore

    batch, single = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    box = toolbox(model)
    vis = box.gradcam_plus_plus if plus_plus else box.gradcam
    name = cam_layer(model, layer)
    maps = _in_pieces(batch, classes, batch_size, lambda piece, piece_classes: np.asarray(
        vis(CategoricalScore(piece_classes), piece, penultimate_layer=name,
            seek_penultimate_conv_layer=False), dtype=np.float32).reshape(piece.shape[:3]))
    maps = np.nan_to_num(maps)
    return maps[0] if single else maps


def gradcam_plus_plus(model, images, class_index, layer=None, batch_size=None) -> np.ndarray:
    """tf-keras-vis ``GradcamPlusPlus``; see :func:`gradcam`.  Lesson 5."""
    return gradcam(model, images, class_index, layer=layer, plus_plus=True,
                   batch_size=batch_size)


def layercam(model, images, class_index, layer=None, batch_size=None) -> np.ndarray:
    """tf-keras-vis ``Layercam`` (Jiang et al. 2021) at ``layer``, upsampled, in [0, 1].

    Grad-CAM weighs each channel by its gradient averaged over the positions; LayerCAM weighs
    each position of each channel by its own positive gradient, ReLU(sum_k ReLU(dS/dA_k) * A_k),
    which keeps finer detail at early layers.  ``batch_size`` as in :func:`gradcam`.  Returns
    (H, W) or (n, H, W).  Lesson 5.
    """
    from tf_keras_vis.utils.scores import CategoricalScore

    batch, single = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    vis, name = toolbox(model).layercam, cam_layer(model, layer)
    maps = _in_pieces(batch, classes, batch_size, lambda piece, piece_classes: np.asarray(
        vis(CategoricalScore(piece_classes), piece, penultimate_layer=name,
            seek_penultimate_conv_layer=False), dtype=np.float32).reshape(piece.shape[:3]))
    maps = np.nan_to_num(maps)
    return maps[0] if single else maps


def scorecam(model, images, class_index, layer=None, max_n=None, batch_size: int = 64) -> np.ndarray:
    """tf-keras-vis ``Scorecam``: gradient-free; each channel weighted by the class probability
    of the image masked with that channel.  ``max_n`` keeps only that many channels (Faster
    Score-CAM).  Returns (H, W) or (n, H, W) in [0, 1].  Lesson 5.
    """
    from tf_keras_vis.utils.scores import CategoricalScore

    batch, single = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    batch_size = _checks.integer("batch_size", batch_size, low=1)
    max_n = None if max_n is None else _checks.integer("max_n", max_n, low=1)
    with _quiet_keras():
        maps = toolbox(model).scorecam(CategoricalScore(classes), batch,
                                       penultimate_layer=cam_layer(model, layer),
                                       seek_penultimate_conv_layer=False, max_N=max_n,
                                       batch_size=batch_size)
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    return maps[0] if single else maps


def compare_methods(model, images, class_index, methods=METHODS, layer=None,
                    smooth_samples: int = 20, seed: int = 0, batch_size=None) -> dict:
    """Maps of several tf-keras-vis methods for the same images and classes.  Lesson 5.

    ``layer`` is the CAM methods' layer (passed as ``penultimate_layer=`` with
    ``seek_penultimate_conv_layer=False``; default :func:`cam_layer`'s); ``batch_size`` images
    go through the network at once (None: all; 1 keeps VGG16 on photos within Binder's
    memory).  Returns ``{method name: maps (n, H, W)}`` with names from :data:`METHODS`;
    cached, so a widget that switches between them computes each once.
    """
    batch, _ = _batch(model, images)
    classes = _classes(model, class_index, len(batch))
    methods = [methods] if isinstance(methods, str) else list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; choose from {list(METHODS)}.")
    layer = None if layer is None else cam_layer(model, layer)
    if batch_size is not None:
        batch_size = _checks.integer("batch_size", batch_size, low=1)
    per = {"batch_size": batch_size}
    run = {
        "Saliency": lambda: saliency(model, batch, classes, **per),
        "SmoothGrad": lambda: saliency(model, batch, classes, smooth_samples=smooth_samples,
                                       seed=seed, **per),
        "Grad-CAM": lambda: gradcam(model, batch, classes, layer=layer, **per),
        "Grad-CAM++": lambda: gradcam_plus_plus(model, batch, classes, layer=layer, **per),
        "Layer-CAM": lambda: layercam(model, batch, classes, layer=layer, **per),
        "Score-CAM": lambda: _in_pieces(batch, classes, batch_size, lambda piece, piece_classes:
                                        scorecam(model, piece, piece_classes, layer=layer)),
    }
    out = {}
    for name in methods:
        key = ("kerasvis", name, _widgets.model_key(model), _widgets.array_key(batch),
               tuple(classes), layer, smooth_samples, seed, batch_size)
        out[name] = _widgets.cached(key, run[name])
    return out
