"""Lesson 3.5 — gradients back to the input: saliency maps (梯度传递, notebook 04).

Instead of differentiating the loss with respect to the weights, differentiate one class score
(before the softmax) with respect to every input pixel.  Each pixel gets three derivatives
(R, G, B); the saliency map keeps the largest absolute one (Simonyan et al. 2014).  SmoothGrad
(Smilkov et al. 2017) averages the absolute gradients of noisy copies of the image.

The gradient is TensorFlow's own (``tf.GradientTape``), compiled once per model with
``tf.function``: the lesson's six lines, plus batching and one cache.

"Does it look at the object?": :func:`object_share` and :func:`pointing_hit` score a map against
an object mask; :func:`localization_scores` runs both methods (saliency and occlusion) over
generated shapes, whose masks are known.

Compute: :func:`input_gradient`, :func:`saliency_map`, :func:`saliency_maps`.
Draw: :func:`plot_saliency`, :func:`plot_localization`.  Widget: :func:`saliency_explorer`.
"""
from __future__ import annotations

import functools
import numbers
import weakref

import numpy as np
import tensorflow as tf

from . import _checks
from . import models as _models
from . import occlusion as _occlusion
from . import plotting as _plotting
from . import widgets as _widgets

_GRADIENT_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

#: At most this many pixels per gradient batch (4 images of 224x224): a gradient keeps every
#: layer's activations for the backward pass, and a VGG16 gradient of 8 such images needs
#: 1.1 GB on top of the model's 1.1 GB, over Binder's 2 GB; 4 at a time cost the same per image.
GRADIENT_BATCH_PIXELS = 4 * 224 * 224


def gradient_function(model):
    """The compiled gradient step for ``model``, built once and cached.  Lessons 3.5, 5.

    ``f(x, classes)`` takes a float32 batch (n, H, W, 3) and int32 class indices (n,) and
    returns ``(gradients, scores)``: d score[i, classes[i]] / d x[i] and the scores, where the
    scores are the model's outputs before softmax (``ch.models.logits_model``).  It is a plain
    ``tf.GradientTape`` under ``tf.function``: TensorFlow's own backward pass.
    """
    _checks.model(model)
    fn = _GRADIENT_FNS.get(model)
    if fn is None:
        logits = _models.logits_model(model)
        h, w = _checks.input_size(model)

        def gradients(x, classes):
            with tf.GradientTape() as tape:
                tape.watch(x)
                scores = logits(x, training=False)
                picked = tf.gather(scores, classes, axis=1, batch_dims=1)
            return tape.gradient(picked, x), picked

        fn = tf.function(gradients, input_signature=[tf.TensorSpec((None, h, w, 3), tf.float32),
                                                     tf.TensorSpec((None,), tf.int32)])
        _GRADIENT_FNS[model] = fn
    return fn


def _classes(model, class_indices, n):
    if isinstance(class_indices, numbers.Integral) and not isinstance(class_indices, bool):
        class_indices = [class_indices] * n
    if isinstance(class_indices, (str, bytes)) or not hasattr(class_indices, "__len__"):
        raise TypeError(f"class_indices must be one class index or one per image, got "
                        f"{class_indices!r}.")
    class_indices = list(class_indices)
    if len(class_indices) != n:
        raise ValueError(f"Got {n} images but {len(class_indices)} class indices: pass one index "
                         "for all images or one per image.")
    return np.array([_checks.check_class(model, c) for c in class_indices], np.int32)


def input_gradient(model, images, class_indices, batch_size: int = 32) -> np.ndarray:
    """d(class score before softmax)/d(pixel) for each image, shape (n, H, W, 3).  Lesson 3.5.

    ``class_indices`` is one index for all images or one per image.  The images go through
    :func:`gradient_function` in batches of ``batch_size`` (fewer for large images:
    at most :data:`GRADIENT_BATCH_PIXELS` pixels).

    Written out in lesson 04, "In plain code: saliency".
    """
    _checks.model(model)
    batch = _checks.batch_for(model, images)
    classes = _classes(model, class_indices, len(batch))
    batch_size = _checks.integer("batch_size", batch_size, low=1)
    batch_size = _checks.batch_limit(batch.shape[1:], batch_size, GRADIENT_BATCH_PIXELS)
    fn = gradient_function(model)
    out = [fn(tf.constant(batch[i:i + batch_size]), tf.constant(classes[i:i + batch_size]))[0]
           for i in range(0, len(batch), batch_size)]
    return np.concatenate([np.asarray(g) for g in out])


def reduce_channels(gradients) -> np.ndarray:
    """The source's rule: for each pixel, the largest absolute derivative over R, G, B.

    ``gradients`` has shape (..., H, W, 3); the result (..., H, W).

    Written out in lesson 04, "In plain code: saliency".
    """
    gradients = np.asarray(gradients)
    if gradients.ndim < 3 or gradients.shape[-1] != 3:
        raise ValueError(f"gradients must have shape (..., H, W, 3), got {gradients.shape}.")
    return np.abs(gradients).max(axis=-1)


@functools.lru_cache(maxsize=2)
def standard_noise(seed: int, shape: tuple) -> np.ndarray:
    """``np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)``, read-only, kept
    for the last two (seed, shape) pairs.  The same numbers as drawing one copy after another
    (NumPy fills an array in order); kept because on a small model the draws cost about a
    sixth of SmoothGrad's gradient calls, and an explorer asks for the same noise again."""
    draws = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    draws.flags.writeable = False
    return draws


def saliency_map(model, image, class_index, smooth_samples: int = 0, noise: float = 0.15,
                 seed: int = 0, batch_size: int = 32) -> np.ndarray:
    """Saliency of ``class_index`` for one image, shape (H, W), not normalized.  Lesson 3.5.

    The gradient of the class score before softmax with respect to the input, then for each
    pixel the largest absolute value over R, G, B.  With ``smooth_samples > 0`` (SmoothGrad)
    the absolute gradients of that many noisy copies (Gaussian, standard deviation ``noise``
    times the image's value range: ``image + sigma * rng.standard_normal(image.shape,
    dtype=np.float32)`` per copy, ``rng = np.random.default_rng(seed)``) are averaged first, in batches of
    ``batch_size`` (fewer for large images: at most :data:`GRADIENT_BATCH_PIXELS` pixels).

    Written out in lesson 04, "In plain code: saliency" and "In plain code: SmoothGrad".
    """
    _checks.model(model)
    img = _checks.image_for(model, image)
    class_index = _checks.check_class(model, class_index)
    smooth_samples = _checks.integer("smooth_samples", smooth_samples, low=0)
    noise = _checks.number("noise", noise, low=0,
                           fix="It is a fraction of the image's value range, e.g. 0.15.")
    batch_size = _checks.integer("batch_size", batch_size, low=1)
    fn = gradient_function(model)
    if smooth_samples == 0:
        grad, _ = fn(tf.constant(img[None]), tf.constant([class_index], tf.int32))
        return reduce_channels(grad.numpy()[0])  # .numpy() first: an eager slice costs ~0.5 F
    sigma = noise * float(img.max() - img.min())
    draws = standard_noise(_checks.integer("seed", seed), (smooth_samples,) + img.shape)
    total = np.zeros(img.shape, np.float32)
    batch_size = _checks.batch_limit(img.shape, batch_size,  # 4 at a time at 224 px
                                     GRADIENT_BATCH_PIXELS)
    for start in range(0, smooth_samples, batch_size):
        m = min(batch_size, smooth_samples - start)
        noisy = draws[start:start + m] * np.float32(sigma)   # the copies' noise, in float32
        noisy += img
        grad, _ = fn(tf.constant(noisy), tf.constant([class_index] * m, tf.int32))
        total += np.abs(grad.numpy()).sum(axis=0)
    return reduce_channels(total / smooth_samples)


def saliency_maps(model, images, class_indices, batch_size: int = 32) -> np.ndarray:
    """Plain saliency maps of many images at once, shape (n, H, W).  Lesson 3.5's evaluation."""
    return reduce_channels(input_gradient(model, images, class_indices, batch_size))


# --------------------------------------------------------------------------- does it look at the object?
def _check_pair(heatmap, mask):
    heatmap = np.asarray(heatmap, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if heatmap.shape != mask.shape or heatmap.ndim != 2:
        raise ValueError(f"heatmap {heatmap.shape} and mask {mask.shape} must be 2-D of one shape.")
    if not np.all(np.isfinite(heatmap)):
        raise ValueError("The heatmap contains NaN or infinite values.")
    return heatmap, mask


def object_share(heatmap, mask) -> float:
    """Share of a map's positive mass that lies on the object (``mask`` True).  Lesson 3.5.

    Negative values (e.g. occlusion made the class *more* likely) count as zero.  Compare it
    with ``mask.mean()``, the share a map spread evenly would get.  An all-zero map gives nan.
    """
    heatmap, mask = _check_pair(heatmap, mask)
    pos = np.clip(heatmap, 0, None)
    total = pos.sum()
    return float(pos[mask].sum() / total) if total > 0 else float("nan")


def pointing_point(heatmap) -> tuple:
    """(row, col) of the map's maximum; among tied maxima, the one nearest their centroid."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    top = heatmap.max()
    rows, cols = np.nonzero(heatmap >= top - 1e-9 * max(abs(top), 1e-12))
    if len(rows) == 1:
        return int(rows[0]), int(cols[0])
    cy, cx = rows.mean(), cols.mean()
    k = int(np.argmin((rows - cy) ** 2 + (cols - cx) ** 2))
    return int(rows[k]), int(cols[k])


def pointing_hit(heatmap, mask, tolerance: int = 0) -> bool:
    """The pointing game: is the map's maximum on the object?  Lesson 3.5.

    ``tolerance`` grows the mask by that many pixels first (the original game allows 15 px on
    ImageNet-sized images; the course uses 0 on 64-px shapes).
    """
    heatmap, mask = _check_pair(heatmap, mask)
    if tolerance:
        from scipy.ndimage import binary_dilation

        mask = binary_dilation(mask, iterations=int(tolerance))
    return bool(mask[pointing_point(heatmap)])


def pointing_tolerance(image_side: int) -> int:
    """The pointing game's tolerance scaled to the image: Zhang et al. (2016) allow 15 px on
    224-px images, i.e. 4 px on course-cnn's 64-px shapes.  Lesson 3.5."""
    return int(round(15 * int(image_side) / 224))


def object_region(mask) -> np.ndarray:
    """The object's region for the pointing game: its mask with holes filled (a ring's hole
    belongs to the ring: without it, it would be a disc).  Lesson 3.5."""
    from scipy.ndimage import binary_fill_holes

    return binary_fill_holes(np.asarray(mask, bool))


def localization_scores(model, images, masks, class_indices, patch: int = 12, stride: int = 4,
                        fill=0.5, tolerance=None, progress: bool = False) -> dict:
    """Saliency and occlusion scored against object masks, image by image.  Lesson 3.5.

    Returns arrays of length n:

    * ``saliency_share``, ``occlusion_share``: shares of the map's positive mass on the
      object's pixels (the mask as given);
    * ``saliency_hit``, ``occlusion_hit``: the pointing game as Zhang et al. play it: the
      maximum must fall on the object's region (:func:`object_region`, holes filled) grown by
      ``tolerance`` pixels (default :func:`pointing_tolerance`, 4 px on 64-px images);
    * ``saliency_hit_strict``, ``occlusion_hit_strict``: the maximum on the mask itself, no
      tolerance;
    * ``area``: the object's share of the image, the chance level for the shares.

    The occlusion map is the per-pixel probability drop (``ch.occlusion.occlusion_drop``).
    """
    _checks.model(model)
    batch = _checks.batch_for(model, images)
    masks = np.asarray(masks, dtype=bool)
    if masks.shape != batch.shape[:3]:
        raise ValueError(f"masks must have shape {batch.shape[:3]}, got {masks.shape}.")
    classes = _classes(model, class_indices, len(batch))
    if tolerance is None:
        tolerance = pointing_tolerance(batch.shape[1])
    sal = saliency_maps(model, batch, classes)
    keys = ("saliency_share", "occlusion_share", "saliency_hit", "occlusion_hit",
            "saliency_hit_strict", "occlusion_hit_strict")
    out = {k: [] for k in keys}
    items = range(len(batch))
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="occlusion", leave=False)
    for i in items:
        drop = _occlusion.occlusion_drop(model, batch[i], int(classes[i]), patch, stride, fill,
                                         batch_size=256)
        region = object_region(masks[i])
        for name, m in (("saliency", sal[i]), ("occlusion", drop)):
            out[f"{name}_share"].append(object_share(m, masks[i]))
            out[f"{name}_hit"].append(pointing_hit(m, region, tolerance))
            out[f"{name}_hit_strict"].append(pointing_hit(m, masks[i]))
    result = {k: np.asarray(v) for k, v in out.items()}
    result["area"] = masks.reshape(len(masks), -1).mean(axis=1)
    result["tolerance"] = int(tolerance)
    return result


def summarize_localization(scores: dict) -> dict:
    """Means of :func:`localization_scores` (shares ignore all-zero maps).  Lesson 3.5."""
    return {
        "images": int(len(scores["area"])),
        "object_area": float(np.mean(scores["area"])),
        "saliency_share": float(np.nanmean(scores["saliency_share"])),
        "occlusion_share": float(np.nanmean(scores["occlusion_share"])),
        "saliency_pointing": float(np.mean(scores["saliency_hit"])),
        "occlusion_pointing": float(np.mean(scores["occlusion_hit"])),
        "saliency_pointing_strict": float(np.mean(scores["saliency_hit_strict"])),
        "occlusion_pointing_strict": float(np.mean(scores["occlusion_hit_strict"])),
    }


# --------------------------------------------------------------------------- drawing
def plot_saliency(image, smap, title: str | None = None, mask=None):
    """The image, its saliency map, and the map over the image; returns the Figure.  Lesson 3.5."""
    fig, parts = _saliency_figure()
    _saliency_update(parts, image, smap, title)
    if mask is not None:
        for ax in fig.axes[1:]:
            ax.contour(np.asarray(mask, float), levels=[0.5], colors="cyan", linewidths=0.8)
    _plotting.drop_empty_title(fig, title)
    return fig


def _saliency_figure():
    """The empty figure of :func:`plot_saliency`: (figure, the artists that change)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    rgb, grey = np.zeros((2, 2, 3)), np.zeros((2, 2))
    parts = {"images": [axes[0].imshow(rgb), axes[2].imshow(rgb)],
             "map": axes[1].imshow(grey, cmap="gray", vmin=0, vmax=1),
             "over": axes[2].imshow(grey, cmap="jet", alpha=0.6, vmin=0, vmax=1),
             "peak": axes[2].plot([0], [0], "w+", ms=10, mew=2)[0]}
    axes[0].set_title("input")
    axes[1].set_title("saliency: max |d score / d pixel|")
    axes[2].set_title("over the image", fontsize=9)
    for ax in axes:
        ax.axis("off")
    parts["titles"] = [fig.suptitle(" ", fontsize=10)]
    fig.tight_layout()
    return fig, parts


def _saliency_update(parts, image, smap, title):
    image = np.asarray(image)
    smap = _plotting.normalize(smap)
    for artist in parts["images"]:
        _plotting.set_image(artist, image)
    _plotting.set_image(parts["map"], smap)
    _plotting.set_image(parts["over"], _plotting.upsample(smap, image.shape))
    r, c = pointing_point(smap)
    parts["peak"].set_data([c], [r])
    parts["titles"][0].set_text(title or "")


def plot_localization(model, images, masks, class_indices, n: int = 6, patch: int = 12,
                      stride: int = 4, fill=0.5):
    """For a few shapes: image, saliency and occlusion drop, with the object's outline (cyan)
    and each map's maximum (+, green on the object, red off it).  Lesson 3.5."""
    import matplotlib.pyplot as plt

    _checks.model(model)
    n = _checks.integer("n", n, low=1)
    batch = _checks.batch_for(model, images)[:n]
    masks = np.asarray(masks, bool)[:n]
    if not isinstance(class_indices, numbers.Integral):
        class_indices = list(class_indices)[:len(batch)]
    classes = _classes(model, class_indices, len(batch))
    sal = saliency_maps(model, batch, classes)
    names = _models.class_names(model)
    fig, axes = plt.subplots(3, len(batch), figsize=(1.7 * len(batch), 5.4), squeeze=False)
    for j in range(len(batch)):
        drop = _occlusion.occlusion_drop(model, batch[j], int(classes[j]), patch, stride, fill,
                                         batch_size=256)
        axes[0, j].imshow(batch[j])
        axes[0, j].set_title(names[classes[j]], fontsize=8)
        for row, m, cmap in ((1, sal[j], "gray"), (2, np.clip(drop, 0, None), "inferno")):
            ax = axes[row, j]
            ax.imshow(m, cmap=cmap)
            ax.contour(masks[j].astype(float), levels=[0.5], colors="cyan", linewidths=0.7)
            r, c = pointing_point(m)
            ax.plot(c, r, "+", color="lime" if masks[j][r, c] else "red", ms=9, mew=2)
        for ax in axes[:, j]:
            ax.axis("off")
    axes[1, 0].text(-0.1, 0.5, "saliency", transform=axes[1, 0].transAxes, rotation=90,
                    ha="right", va="center", fontsize=9)
    axes[2, 0].text(-0.1, 0.5, "occlusion\ndrop", transform=axes[2, 0].transAxes, rotation=90,
                    ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def top_classes(model, image, k: int = 5):
    """[(class index, name, probability)] of the model's top-``k`` predictions.  Lesson 3.5."""
    _checks.model(model)
    k = _checks.integer("k", k, low=1)
    img = _checks.image_for(model, image)
    probs = np.asarray(model(img[None], training=False))[0]
    names = _models.class_names(model)
    order = np.argsort(-probs)[:k]
    return [(int(i), names[i], float(probs[i])) for i in order]


def saliency_explorer(model, images, smoothing=(0, 10, 25, 50)):
    """Widget for lesson 3.5: image, class (the top-5 predictions) and SmoothGrad samples."""
    import ipywidgets as w

    _checks.model(model)
    names, imgs = _checks.names_and_images(images)
    batch = _checks.batch_for(model, imgs)

    def options(i):
        return [(f"{name} ({p:.2f})", c) for c, name, p in top_classes(model, batch[i])]

    image_box = w.Dropdown(options=names, description="image")
    first = options(0)
    class_box = w.Dropdown(options=first, value=first[0][1], description="class")

    def on_image(change):
        opts = options(names.index(change["new"]))
        class_box.options = opts
        class_box.value = opts[0][1]

    image_box.observe(on_image, names="value")
    labels = _models.class_names(model)
    view = _widgets.FigureView(_saliency_figure)   # built once, updated in place

    def draw(image, class_index, smooth_samples):
        i = names.index(image)
        key = ("saliency", _widgets.model_key(model), _widgets.array_key(batch[i]), class_index,
               smooth_samples)
        smap = _widgets.cached(key, lambda: saliency_map(model, batch[i], class_index,
                                                         smooth_samples=smooth_samples))
        how = f"SmoothGrad, {smooth_samples} samples" if smooth_samples else "plain gradient"
        _saliency_update(view.parts, batch[i], smap, f"{image}: class {labels[class_index]} ({how})")
        return view.live

    return _widgets.interactive_plot(draw, image=image_box, class_index=class_box,
                                     smooth_samples=w.SelectionSlider(options=list(smoothing),
                                                                      value=smoothing[0],
                                                                      description="smoothing"))
