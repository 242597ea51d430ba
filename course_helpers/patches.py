"""Lesson 3.3 — back to the original image: top patches (原图外部分析方法, notebook 03).

For one kernel (a channel of a conv layer), scan many images, find the units where it responds
most, and cut out of the original images the piece each of those units sees: its receptive
field.  One row of these crops per kernel is the picture of Zeiler & Fergus (2014).

Compute: :func:`receptive_field`, :func:`unit_box`, :func:`top_patches`,
:func:`channel_class_purity`.  Draw: :func:`plot_top_patches`.  Widget: :func:`top_patches_explorer`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import _checks
from . import activations as _acts
from . import plotting as _plotting
from . import widgets as _widgets
from .graph import receptive_field, unit_box  # noqa: F401  (the lesson's names for them)


def crop_box(image, box, pad_value: float = 0.5) -> np.ndarray:
    """The pixels of ``image`` inside ``box`` (top, left, bottom, right), grey where the box runs
    over the border.  Lesson 3.3.

    Written out in lesson 03, "In plain code: one top patch".
    """
    image = np.asarray(image)
    if len(box) != 4:
        raise ValueError(f"box must be (top, left, bottom, right), got {box!r}.")
    top, left, bottom, right = (_checks.integer("box", v) for v in box)
    h, w = image.shape[:2]
    out = np.full((bottom - top, right - left) + image.shape[2:], pad_value, dtype=image.dtype)
    t, l, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if b > t and r > l:
        out[t - top:b - top, l - left:r - left] = image[t:b, l:r]
    return out


class Patch(NamedTuple):
    """One of the strongest responses of a channel: where, how strong, and what the unit saw."""
    image_index: int
    position: tuple
    activation: float
    crop: np.ndarray
    box: tuple


@dataclass
class TopPatches:
    """Result of :func:`top_patches`, strongest first; ``result[i]`` is a :class:`Patch`."""
    layer: str
    channel: int
    image_index: np.ndarray   # (k,) which image
    position: np.ndarray      # (k, 2) unit row, column in the layer's map
    activation: np.ndarray    # (k,) the channel's activation there
    crops: np.ndarray         # (k, size, size, 3) the receptive field, grey outside the image
    boxes: np.ndarray         # (k, 4) top, left, bottom, right in input pixels

    def __len__(self):
        return len(self.activation)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        return Patch(int(self.image_index[i]), tuple(int(v) for v in self.position[i]),
                     float(self.activation[i]), self.crops[i], tuple(int(v) for v in self.boxes[i]))

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _strongest(act, k, max_per_image):
    """Flat indices of the k largest values of act (n, h, w), at most max_per_image per image."""
    n = act.shape[0]
    flat = act.reshape(n, -1)
    if max_per_image is None:
        order = np.argsort(-flat, axis=None, kind="stable")[:k]
        return np.unravel_index(order, act.shape)
    m = _checks.integer("max_per_image", max_per_image, low=1)
    per = np.argsort(-flat, axis=1, kind="stable")[:, :m]            # (n, m)
    vals = np.take_along_axis(flat, per, axis=1)
    order = np.argsort(-vals, axis=None, kind="stable")[:k]
    img, slot = np.unravel_index(order, vals.shape)
    rows, cols = np.unravel_index(per[img, slot], act.shape[1:])
    return img, rows, cols


def top_patches(model, layer, channel, images, k: int = 9, max_per_image=None,
                batch_size: int = 64, pad_value: float = 0.5, scan=None) -> TopPatches:
    """The ``k`` strongest activations of one channel over ``images``, with their crops.  Lesson 3.3.

    Activations of the whole layer are computed in batches and cached, so asking for another
    channel of the same layer and images is instant.  ``scan`` (a list of channels holding
    ``channel``) computes and caches only those instead: for a big layer over many photos
    (lesson 03's ImageNet part), pass the same list for every channel you look at.
    ``max_per_image=1`` takes at most one unit per image (more varied rows); ``None`` allows
    neighbouring units of one image.  Each crop is the unit's receptive field cut from the
    original image, ``pad_value`` grey where it runs over the border:
    ``crop_box(image, unit_box(model, layer, row, col))``.

    Written out in lesson 03, "In plain code: one top patch".
    """
    _checks.model(model)
    batch = _checks.batch_for(model, images)
    n_channels = int(_acts.activation_model(model, layer).output_shape[-1])
    channel = _acts.check_channel(n_channels, channel)
    scan = _acts.check_channels(n_channels, scan)
    if scan is not None and channel not in scan:
        raise ValueError(f"channel {channel} is not in scan (the channels computed): add it "
                         "to scan, or pass scan=None to compute the whole layer.")
    k = _checks.integer("k", k, low=1)
    acts = _acts.layer_activations(model, layer, batch, batch_size=batch_size, channels=scan)
    act = acts[..., channel if scan is None else scan.index(channel)]
    img, rows, cols = _strongest(act, k, max_per_image)
    boxes = np.array([unit_box(model, layer, r, c) for r, c in zip(rows, cols)], dtype=int)
    crops = np.stack([crop_box(batch[i], b, pad_value) for i, b in zip(img, boxes)]) if len(img) \
        else np.zeros((0, 1, 1, 3), np.float32)
    return TopPatches(layer=_checks.conv_layer(model, layer).name, channel=channel,
                      image_index=np.asarray(img, int), position=np.stack([rows, cols], 1).astype(int),
                      activation=act[img, rows, cols].astype(np.float32), crops=crops, boxes=boxes)


def channel_class_purity(model, layer, images, labels, k: int = 9, channels=None) -> np.ndarray:
    """Per channel: the share of its top-``k`` images (one unit per image) that come from its
    most common class.  Lesson 3.3 measures "deeper layers respond to more semantic content"
    with it (chance is higher than 1/classes; lesson 03 computes it).  ``channels`` (a list)
    scores, computes and caches only those channels, in that order (None: all of them); pass
    the same list as ``scan`` to :func:`top_patches` to reuse the activations."""
    _checks.model(model)
    batch = _checks.batch_for(model, images)
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(batch) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be one class index per image: got {len(batch)} images and "
                         f"labels of shape {labels.shape}, dtype {labels.dtype}.")
    k = _checks.integer("k", k, low=1)
    acts = _acts.layer_activations(model, layer, batch, channels=channels)
    out = []
    for c in range(acts.shape[-1]):
        best = acts[..., c].reshape(len(batch), -1).max(axis=1)
        top = np.argsort(-best, kind="stable")[:k]
        counts = np.bincount(labels[top])
        out.append(counts.max() / len(top))
    return np.asarray(out, dtype=np.float32)


def plot_top_patches(model, layer, channels, images, k: int = 9, max_per_image=1,
                     title: str | None = None, size: float = 0.8, show_values: bool = True,
                     scan=None):
    """One row per channel, its ``k`` favourite crops left to right (Zeiler & Fergus).  Lesson 3.3.

    Returns the Figure; the small numbers are the activations.  ``scan``: as in
    :func:`top_patches` (None computes and caches the whole layer).  Crops larger than
    :data:`DRAW_SIDE` pixels are shrunk (smoothly) for the drawing only.
    """
    import matplotlib.pyplot as plt

    _checks.model(model)
    channels = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
    _checks.nonempty("channels", channels, "pass at least one channel")
    rows = [top_patches(model, layer, c, images, k=k, max_per_image=max_per_image, scan=scan)
            for c in channels]
    first = _shrink(rows[0].crops[0], DRAW_SIDE)
    side = first.shape[0]
    gap = max(2, side // 12)
    tiles = []
    for res in rows:
        for j in range(k):
            tiles.append(_shrink(res.crops[j], DRAW_SIDE) if j < len(res) else np.ones_like(first))
    image = np.clip(_acts.mosaic(tiles, k, gap), 0, 1)
    fig, ax = plt.subplots(figsize=(size * k + 0.6, size * len(rows) + 0.5))
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([(side + gap) * r + side / 2 for r in range(len(rows))])
    ax.set_yticklabels([f"ch {c}" for c in channels], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if show_values and side >= 20:   # numbers would hide tiny crops
        for r, res in enumerate(rows):
            for j in range(len(res)):
                ax.text((side + gap) * j + 1, (side + gap) * r + 1, f"{res.activation[j]:.1f}",
                        fontsize=5.5, color="white", va="top", ha="left",
                        bbox=dict(boxstyle="square,pad=0.1", fc="black", ec="none", alpha=0.6))
    rf = receptive_field(model, layer)[0]
    ax.set_title(title or f"{layer}: top {k} crops per channel ({rf}x{rf} px receptive field)",
                 fontsize=9)
    fig.tight_layout()
    return fig


#: Crops larger than this are shrunk for :func:`plot_top_patches`: a tile is drawn under an
#: inch wide, and four rows of nine 196-px crops (VGG16's block5_conv3) make a mosaic of
#: 4.7 million values whose drawing needs 79 MB (36 MB at 128 px; measured with tracemalloc).
DRAW_SIDE = 128


def _shrink(crop, side: int) -> np.ndarray:
    """``crop`` scaled down (anti-aliased) so that its longer side is ``side``; unchanged if
    it is not larger."""
    from skimage.transform import resize

    h, w = crop.shape[:2]
    if max(h, w) <= side:
        return crop
    scale = side / max(h, w)
    shape = (max(1, round(h * scale)), max(1, round(w * scale))) + crop.shape[2:]
    return resize(np.asarray(crop, np.float32), shape, order=1, anti_aliasing=True,
                  preserve_range=True).astype(np.float32)


def _enlarge(image, side: int) -> np.ndarray:
    """Nearest-neighbour resize of a small crop to ``side`` x ``side`` (pixels stay square)."""
    from skimage.transform import resize

    image = np.asarray(image, dtype=np.float32)
    return resize(image, (side, side) + image.shape[2:], order=0, anti_aliasing=False,
                  preserve_range=True).astype(np.float32)


def top_patches_explorer(model, images, layers=None, k: int = 9, max_per_image=1):
    """Widget for lesson 3.3: pick a conv layer and a channel; see its top patches and where
    they lie in their images.  A layer's activations are computed once, so the channel
    slider is instant."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    _checks.model(model)
    _, imgs = _checks.names_and_images(images)
    batch = _checks.batch_for(model, imgs)
    layers = _checks.conv_layer_names(model, layers)
    k = _checks.integer("k", k, low=1)
    n_ch = {name: int(_acts.activation_model(model, name).output_shape[-1]) for name in layers}
    channel = w.IntSlider(value=0, min=0, max=n_ch[layers[0]] - 1, description="channel")
    layer_box = w.Dropdown(options=layers, value=layers[0], description="layer")
    layer_box.observe(lambda ch: setattr(channel, "max", n_ch[ch["new"]] - 1), names="value")

    side = batch.shape[1]
    gap = max(2, side // 16)

    def build():
        # two mosaics (crops, then their source images), not 2 x k axes: far fewer artists
        fig, axes = plt.subplots(2, 1, figsize=(1.1 * k, 2.6))
        parts = {"crops": axes[0].imshow(np.ones((2, 2, 3)), interpolation="nearest"),
                 "sources": axes[1].imshow(np.ones((side, k * (side + gap) - gap, 3))),
                 "boxes": [axes[1].add_patch(Rectangle((0, 0), 1, 1, fill=False,
                                                       edgecolor="yellow", linewidth=1.2))
                           for _ in range(k)],
                 "labels": [axes[0].text((j + 0.5) / k, 1.02, " ", transform=axes[0].transAxes,
                                         ha="center", va="bottom", fontsize=7)
                            for j in range(k)],
                 "title": fig.suptitle(" ", fontsize=9)}
        for ax in axes:
            ax.axis("off")
        fig.tight_layout(h_pad=1.2)
        return fig, parts

    view = _widgets.FigureView(build)   # built once; a redraw updates mosaics, boxes, labels

    def draw(layer, channel):
        channel = min(channel, n_ch[layer] - 1)
        res = top_patches(model, layer, channel, batch, k=k, max_per_image=max_per_image)
        parts = view.parts
        # crops enlarged (nearest) to the source images' size, so both rows line up
        blank = np.ones(batch.shape[1:], np.float32)
        crops = [np.clip(_enlarge(res.crops[j], side), 0, 1) if j < len(res) else blank
                 for j in range(k)]
        _plotting.set_image(parts["crops"], _acts.mosaic(crops, k, gap))
        sources = [batch[res[j].image_index] if j < len(res) else np.ones_like(batch[0])
                   for j in range(k)]
        _plotting.set_image(parts["sources"], np.clip(_acts.mosaic(sources, k, gap), 0, 1))
        for j in range(k):
            shown = j < len(res)
            parts["boxes"][j].set_visible(shown)
            parts["labels"][j].set_text(f"{res[j].activation:.2f}" if shown else "")
            if shown:
                t, l, b, r = res[j].box
                x0 = j * (side + gap)
                parts["boxes"][j].set_bounds(x0 + l - 0.5, t - 0.5, r - l, b - t)
        size = receptive_field(model, layer)[0]
        parts["title"].set_text(f"{layer} channel {channel}: its top {k} crops ({size} px) "
                                "and their images")
        return view.live

    return _widgets.interactive_plot(draw, layer=layer_box, channel=channel)


def image_tiles(images, size: int, step: int | None = None) -> np.ndarray:
    """Cut each image into square tiles of side ``size`` (every ``step`` pixels, default
    ``size``): many small images from a few big photos, for mining top patches with a
    small-input model.  Lesson 3.3.  ``images``: a list, dict or batch (n, H, W, 3) of
    images, or one image (H, W, 3)."""
    if isinstance(images, np.ndarray) and images.ndim == 3 and images.shape[-1] in (3, 4):
        images = [images]           # one image, not a batch of grayscale ones
    _, images = _checks.names_and_images(images)
    size = _checks.integer("size", size, low=1)
    step = size if step is None else _checks.integer("step", step, low=1)
    out = []
    for img in images:
        img = np.asarray(img, dtype=np.float32)
        h, w = img.shape[:2]
        if h < size or w < size:
            raise ValueError(f"An image of {h}x{w} is smaller than the tile size {size}: "
                             f"use size <= {min(h, w)}.")
        for y in range(0, h - size + 1, step):
            for x in range(0, w - size + 1, step):
                out.append(img[y:y + size, x:x + size])
    return np.stack(out)
