"""Lesson 3.4 — occlusion sensitivity (遮挡分析法, notebook 04).

Cover a square of the image, ask the model again, and record the class probability; slide the
square over the whole image.  Where covering makes the probability drop, the model relied on
what was there (Zeiler & Fergus 2014).

Compute: :func:`occlusion_map`, :func:`occlusion_positions`, :func:`pixel_map`.
Draw: :func:`plot_occlusion`.  Widget: :func:`occlusion_explorer`.
The accelerated path for large images (same numbers) lives apart, in ``occlusion_fast.py``.
"""
from __future__ import annotations

import numbers
import weakref

import numpy as np

from . import _checks
from . import models as _models
from . import occlusion_fast as _fast
from . import plotting as _plotting
from . import widgets as _widgets

#: Named fills for the occluding patch (a float in [0, 1] is a grey level).
FILLS = ("grey", "black", "blur")

# model -> its forward pass compiled once (not a sub-model: the model itself, traced).
_PREDICT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

#: At most this many pixels per batch (8 images of 224x224): on a CPU, larger batches of large
#: images run slower per image (VGG16: 64 images of 224 px take ~2x longer each than 8) and
#: need gigabytes of activations.  Small images still go 64 at a time.
BATCH_PIXELS = 8 * 224 * 224


def _predict_fn(model):
    """The model's forward pass compiled once (any batch size): ``f(batch) -> probabilities``.
    Eager calls cost about twice as much per image on a small model (benchmarks/RESULTS.md)."""
    fn = _PREDICT.get(model)
    if fn is None:
        import tensorflow as tf

        h, w = _checks.input_size(model)
        ref = weakref.ref(model)  # the cache must not keep the model alive
        fn = tf.function(lambda x: ref()(x, training=False),
                         input_signature=[tf.TensorSpec((None, h, w, 3), tf.float32)])
        _PREDICT[model] = fn
    return fn


def occlusion_positions(size: int, patch: int, stride: int) -> list:
    """Top (or left) coordinates of the patch along one axis: 0, stride, 2*stride, ..., and a
    last one flush with the border if the steps do not land there, so every pixel gets covered.
    Lesson 3.4."""
    size = _checks.integer("size", size, low=1)
    patch, stride = _check_geometry((size, size), patch, stride)
    pos = list(range(0, size - patch + 1, stride))
    if pos[-1] != size - patch:
        pos.append(size - patch)
    return pos


def _check_geometry(shape, patch, stride):
    """``patch`` and ``stride`` as ints (whole floats such as 16.0 are accepted), else an error."""
    patch = _checks.integer("patch", patch, low=1)
    stride = _checks.integer("stride", stride, low=1)
    h, w = shape
    if patch > min(h, w):
        raise ValueError(f"patch {patch} is larger than the image ({h}x{w}); choose a patch of at "
                         f"most {min(h, w)} pixels.")
    return patch, stride


def fill_image(image, fill, patch: int = 16) -> np.ndarray:
    """What the patch shows: an image-sized array.  ``fill`` is a grey level in [0, 1], 'grey'
    (0.5), 'black' (0.0), 'blur' (the image blurred with sigma = patch/4, so the patch removes
    detail but keeps colour) or an array of the image's shape.  Lesson 3.4."""
    image = np.asarray(image, dtype=np.float32)
    if isinstance(fill, str):
        key = fill.lower()
        if key in ("grey", "gray"):
            return np.full_like(image, 0.5)
        if key == "black":
            return np.zeros_like(image)
        if key in ("blur", "blurred"):
            from skimage.filters import gaussian

            return gaussian(image, sigma=max(patch / 4, 1.0), channel_axis=-1,
                            preserve_range=True).astype(np.float32)
        raise ValueError(f"Unknown fill {fill!r}: use a grey level in [0, 1] or one of {FILLS}.")
    if isinstance(fill, numbers.Real) and not isinstance(fill, bool):
        if not 0 <= fill <= 1:
            raise ValueError(f"A grey-level fill must be in [0, 1], got {fill}.")
        return np.full_like(image, float(fill))
    if fill is None or isinstance(fill, bool):
        raise ValueError(f"Unknown fill {fill!r}: use a grey level in [0, 1] or one of {FILLS}.")
    arr = np.asarray(fill, dtype=np.float32)
    if arr.shape != image.shape:
        raise ValueError(f"An array fill must have the image's shape {image.shape}, got {arr.shape}.")
    return arr


def occlusion_map(model, image, class_index, patch: int = 16, stride: int = 8, fill=0.5,
                  batch_size: int = 64, method: str = "auto") -> np.ndarray:
    """Class probability with the patch at each grid position, shape (rows, cols).  Lesson 3.4.

    Entry (i, j) is the model's probability of ``class_index`` when the square of side
    ``patch`` with top-left corner (ys[i], xs[j]) is replaced by ``fill``, where
    ``ys = occlusion_positions(H, patch, stride)`` (likewise xs).  All occluded copies are
    built and predicted in batches of ``batch_size`` (fewer for large images: at most
    :data:`BATCH_PIXELS` pixels), by the model's forward pass compiled once.

    ``method="auto"`` runs the first conv blocks of a large image (VGG16 at 224 px) only on a
    crop around each patch and reuses the rest of the clean image's activations there: the
    same numbers for about half the work (``course_helpers/occlusion_fast.py``).  ``"full"``
    always runs every copy through the whole network (the loop below); ``"incremental"``
    insists on the crop method (an error if the model does not allow it).

    Written out in lesson 04, "In plain code: occlusion".
    """
    _checks.model(model)
    img = _checks.image_for(model, image)
    class_index = _checks.check_class(model, class_index)
    patch, stride = _check_geometry(img.shape[:2], patch, stride)
    batch_size = _checks.batch_limit(img.shape, _checks.integer("batch_size", batch_size, low=1),
                                     BATCH_PIXELS)
    method = _checks.choice("method", method, ("auto", "full", "incremental"))
    filler = fill_image(img, fill, patch)
    ys = occlusion_positions(img.shape[0], patch, stride)
    xs = occlusion_positions(img.shape[1], patch, stride)
    grid = [(y, x) for y in ys for x in xs]

    plan = None if method == "full" else _fast.incremental_plan(model, img.shape, patch)
    if method == "incremental" and plan is None:
        raise ValueError(f"{model.name} cannot run occlusion incrementally for a {patch}-px patch "
                         "(it needs a large image and a plain chain of same-padded convs and "
                         "pools at the bottom); use method='full'.")
    if plan is not None:   # the accelerated path: same numbers, see occlusion_fast.py
        out = _fast.occlusion_incremental(plan, img, filler, grid, patch, class_index, batch_size)
        return out.reshape(len(ys), len(xs))

    # the reference: cover the patch, predict, keep the class probability
    out = np.empty(len(grid), np.float32)
    for start in range(0, len(grid), batch_size):
        chunk = grid[start:start + batch_size]
        batch = np.repeat(img[None], len(chunk), axis=0)
        for b, (y, x) in enumerate(chunk):
            batch[b, y:y + patch, x:x + patch] = filler[y:y + patch, x:x + patch]
        probs = _predict_fn(model)(batch)
        out[start:start + len(chunk)] = np.asarray(probs)[:, class_index]
    return out.reshape(len(ys), len(xs))


def class_probability(model, image, class_index) -> float:
    """The model's probability of ``class_index`` for the unoccluded image.  Lesson 3.4."""
    _checks.model(model)
    img = _checks.image_for(model, image)
    class_index = _checks.check_class(model, class_index)
    return float(np.asarray(model(img[None], training=False))[0, class_index])


def pixel_map(values, shape, patch: int, stride: int) -> np.ndarray:
    """Spread a (rows, cols) occlusion grid back to pixels: each pixel gets the mean of the
    values of all patch positions that covered it.  Lessons 3.4 and 3.5 (object share)."""
    h, w = shape[:2]
    patch, stride = _check_geometry((h, w), patch, stride)
    values = np.asarray(values, dtype=np.float64)
    ys = occlusion_positions(h, patch, stride)
    xs = occlusion_positions(w, patch, stride)
    if values.shape != (len(ys), len(xs)):
        raise ValueError(f"values has shape {values.shape}, but patch {patch} / stride {stride} "
                         f"on a {h}x{w} image gives a {len(ys)}x{len(xs)} grid.")
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            total[y:y + patch, x:x + patch] += values[i, j]
            count[y:y + patch, x:x + patch] += 1
    return (total / count).astype(np.float32)


def occlusion_drop(model, image, class_index, patch: int = 16, stride: int = 8, fill=0.5,
                   batch_size: int = 64) -> np.ndarray:
    """Per pixel: how much the class probability drops, on average, when a patch covers it.
    Positive = the model needs that region.  Lessons 3.4, 3.5."""
    _checks.model(model)
    img = _checks.image_for(model, image)
    probs = occlusion_map(model, img, class_index, patch, stride, fill, batch_size)
    base = class_probability(model, img, class_index)
    return pixel_map(base - probs, img.shape, patch, stride)


def plot_occlusion(image, prob_map, base_prob: float, patch: int, stride: int,
                   class_name: str = "", fill_name: str = ""):
    """The image, the probability map over it, and the drop from the unoccluded probability;
    returns the Figure.  Lesson 3.4."""
    fig, parts = _occlusion_figure()
    _occlusion_update(parts, image, prob_map, base_prob, patch, stride, class_name, fill_name)
    return fig


def _occlusion_figure():
    """The empty figure of :func:`plot_occlusion`: (figure, the artists that change)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    rgb, grey = np.zeros((2, 2, 3)), np.zeros((2, 2))
    parts = {"images": [ax.imshow(rgb) for ax in axes],
             "probs": axes[1].imshow(grey, cmap="viridis", vmin=0, vmax=1, alpha=0.65),
             "drop": axes[2].imshow(grey, cmap="RdBu_r", alpha=0.65),
             "patch": axes[0].add_patch(Rectangle((-0.5, -0.5), 1, 1, fill=False,
                                                  edgecolor="yellow", lw=1.5))}
    fig.colorbar(parts["probs"], ax=axes[1], fraction=0.046, pad=0.04)   # fixed 0..1: static
    parts["colorbar"] = fig.colorbar(parts["drop"], ax=axes[2], fraction=0.046, pad=0.04).ax
    axes[2].set_title("drop in probability (red = needed)")
    for ax in axes:
        ax.axis("off")
    parts["titles"] = [axes[0].set_title(" "), axes[1].set_title(" "), fig.suptitle(" ", fontsize=9)]
    fig.tight_layout()
    return fig, parts


def _occlusion_update(parts, image, prob_map, base_prob, patch, stride, class_name, fill_name):
    image = np.asarray(image)
    probs = pixel_map(prob_map, image.shape, patch, stride)
    drop = base_prob - probs
    lim = max(float(np.abs(drop).max()), 1e-3)
    for artist in parts["images"]:
        _plotting.set_image(artist, image)
    _plotting.set_image(parts["probs"], probs)
    _plotting.set_image(parts["drop"], drop, -lim, lim)
    parts["patch"].set_width(patch)
    parts["patch"].set_height(patch)
    parts["titles"][0].set_text(f"input: p({class_name}) = {base_prob:.2f}")
    parts["titles"][1].set_text(f"p({class_name}) with the patch here")
    parts["titles"][2].set_text(f"patch {patch} px, stride {stride} px, fill {fill_name}  "
                                "(yellow: patch size)")


def occlusion_explorer(model, images, class_index=None):
    """Widget for lesson 3.4: image, patch, stride, fill (grey, black, blurred).

    The class explained is ``class_index`` or, by default, the model's top prediction for the
    chosen image.  Every map is cached, so returning to a setting is instant.
    """
    import ipywidgets as w

    _checks.model(model)
    names, imgs = _checks.names_and_images(images)
    batch = _checks.batch_for(model, imgs)
    labels = _models.class_names(model)
    side = batch.shape[1]
    view = _widgets.FigureView(_occlusion_figure)   # built once, updated in place

    def draw(image, patch, stride, fill):
        i = names.index(image)
        patch = min(patch, side)
        image_key = _widgets.array_key(batch[i])
        predicted = _widgets.cached(("occlusion.predict", _widgets.model_key(model), image_key),
                                    lambda: np.asarray(model(batch[i:i + 1], training=False))[0])
        c = (int(np.argmax(predicted)) if class_index is None
             else _checks.check_class(model, class_index))
        key = ("occlusion", _widgets.model_key(model), image_key, c, patch, stride, fill)
        probs = _widgets.cached(key, lambda: occlusion_map(model, batch[i], c, patch, stride, fill))
        base = float(predicted[c])
        _occlusion_update(view.parts, batch[i], probs, base, patch, stride, labels[c], fill)
        return view.live

    big = side > 100
    return _widgets.interactive_plot(
        draw, image=w.Dropdown(options=names, description="image"),
        patch=w.IntSlider(value=48 if big else 16, min=4, max=side // 2, step=4, description="patch"),
        stride=w.IntSlider(value=24 if big else 4, min=2, max=side // 4, step=2, description="stride"),
        fill=w.Dropdown(options=list(FILLS), value="grey", description="fill"))
