"""Lesson 2, the pictures: the 2-D map with thumbnails, the grid, neighbours, the explorer.

The numbers they draw come from :mod:`course_helpers.embedding.features`.
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from .. import data as _data
from .. import graph as _graph
from .. import models as _models
from .. import plotting as _plotting
from .. import widgets as _widgets
from .features import (PIXELS, _images, _layer_name, available_methods, cached_embedding,
                       cached_features, grid_assignment, knn_accuracy, nearest_neighbours,
                       penultimate_layer)


def _class_colours(n):
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def plot_embedding(points, labels=None, images=None, class_names=None, thumbs: int = 200,
                   zoom: float = 0.35, title=None, ax=None, seed: int = 0):
    """The 2-D map: one dot per image coloured by class, and image thumbnails at their points.

    ``thumbs`` images (a random subset) are drawn as thumbnails with a frame in their class
    colour; 0 draws dots only.  Lesson 2.  Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    p = np.asarray(points)
    thumbs = _checks.integer("thumbs", thumbs, low=0)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 6.0))
    else:
        fig = ax.figure
    y = np.zeros(len(p), int) if labels is None else np.asarray(labels)
    n_classes = int(y.max()) + 1 if len(y) else 1
    colours = _class_colours(n_classes)
    for c in range(n_classes):
        sel = y == c
        name = class_names[c] if class_names is not None else (f"class {c}" if labels is not None else None)
        ax.scatter(p[sel, 0], p[sel, 1], s=8, color=colours[c], label=name, alpha=0.7)
    if images is not None and thumbs:
        imgs = np.asarray(images)
        pick = np.random.default_rng(seed).choice(len(p), size=min(thumbs, len(p)), replace=False)
        for i in pick:
            box = AnnotationBbox(OffsetImage(imgs[i], zoom=zoom), p[i], frameon=True, pad=0.1,
                                 bboxprops={"edgecolor": colours[y[i]], "linewidth": 1.5})
            ax.add_artist(box)
    if labels is not None:
        ax.legend(fontsize=7, markerscale=2, loc="best", framealpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def grid_mosaic(points, images, grid=None) -> np.ndarray:
    """One picture with each image in its own grid cell (see :func:`grid_assignment`).  Lesson 2."""
    imgs = np.asarray(images, dtype=np.float32)
    cells = grid_assignment(points, grid)
    rows, cols = (cells.max(axis=0) + 1) if grid is None else _checks.size("grid", grid)
    h, w = imgs.shape[1:3]
    canvas = np.ones((rows * h, cols * w, 3), np.float32)
    for (r, c), img in zip(cells, imgs):
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return canvas


def plot_embedding_grid(points, images, grid=None, title=None, size: float = 7.0, cell: int = 64):
    """The CS231n picture: the map with thumbnails snapped to a grid, none overlapping.  Lesson 2.

    ``size`` is the figure's width in inches.  Images larger than ``cell`` pixels are shrunk
    to ``cell`` x ``cell`` first (200 photos of 224 px would make a picture of 3360 px a side,
    most of it never shown)."""
    import matplotlib.pyplot as plt

    size = _checks.number("size", size, positive=True)
    cell = _checks.integer("cell", cell, low=1)
    imgs = np.asarray(images)
    if imgs.ndim == 4 and max(imgs.shape[1:3]) > cell:
        imgs = np.stack([_data.resize_image(im, (cell, cell)) for im in imgs])
    mosaic = grid_mosaic(points, imgs, grid)
    fig, ax = plt.subplots(figsize=(size, size * mosaic.shape[0] / mosaic.shape[1]))
    ax.imshow(mosaic, interpolation="bilinear")
    ax.axis("off")
    ax.set_title(title or f"{len(images)} images snapped to a grid (one per cell)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_neighbours(images, features, query: int, k: int = 8, labels=None, class_names=None,
                    pixel_features=None):
    """A query image with its nearest neighbours in feature space (top row) and in raw-pixel
    space (bottom row).  Green frame = same class as the query, red = another class.  Lesson 2.
    """
    import matplotlib.pyplot as plt

    imgs = np.asarray(_checks.nonempty("images", images, "pass the images the features came from"))
    k = _checks.integer("k", k, low=1)
    pix = imgs.reshape(len(imgs), -1) if pixel_features is None else pixel_features
    rows = [("feature space", nearest_neighbours(features, query, k)),
            ("pixel space", nearest_neighbours(pix, query, k))]
    fig, axes = plt.subplots(2, k + 1, figsize=(1.25 * (k + 1), 3.0))
    for r, (name, idx) in enumerate(rows):
        axes[r, 0].imshow(imgs[query])
        axes[r, 0].set_title("query", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8)
        for j, i in enumerate(idx):
            ax = axes[r, j + 1]
            ax.imshow(imgs[i])
            if labels is not None:
                same = labels[i] == labels[query]
                for s in ax.spines.values():
                    s.set_edgecolor("tab:green" if same else "tab:red")
                    s.set_linewidth(3)
                if class_names is not None:
                    ax.set_title(class_names[labels[i]], fontsize=7)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        if labels is not None:
            share = np.mean(np.asarray(labels)[idx] == labels[query])
            axes[r, 0].set_xlabel(f"{name}: {share:.0%} same class", fontsize=7)
    fig.tight_layout()
    return fig


def plot_layer_comparison(results: dict, labels, class_names=None):
    """Side-by-side maps of :func:`compare_layers`, each titled with its kNN accuracy.  Lesson 2."""
    import matplotlib.pyplot as plt

    n = len(_checks.nonempty("results", results, "pass the output of ch.embedding.compare_layers"))
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8), squeeze=False)
    for ax, (layer, res) in zip(axes[0], results.items()):
        plot_embedding(res["points"], labels, class_names=class_names, ax=ax,
                       title=f"{layer} ({res['dims']}-d): kNN accuracy {res['knn_accuracy']:.2f}")
        if ax is not axes[0, -1]:
            ax.get_legend().remove()
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the explorer
def _unit_square(points) -> np.ndarray:
    """Min-max scale 2-D points into [0, 1] on each axis (a map's coordinates carry no units)."""
    p = np.asarray(points, dtype=np.float64)
    lo, hi = p.min(axis=0), p.max(axis=0)
    return (p - lo) / np.maximum(hi - lo, 1e-12)


_MAP_LIMITS = (-0.05, 1.05)


def thumbnail_canvas(unit_points, images, labels, colours, size: int = 520, thumb: int = 22,
                     n: int = 200, seed: int = 0) -> np.ndarray:
    """One RGBA picture with ``n`` thumbnails (a random subset) framed in their class colour
    at their points in the unit square: what ``plot_embedding`` draws with one artist per image,
    as a single image the explorer can redraw fast.  Images already ``thumb - 2`` pixels wide
    are used as they are (the explorer shrinks its images once); others are shrunk with
    ``ch.data.resize_image``.  ``size`` and ``thumb`` are in pixels.  Lesson 2."""
    size = _checks.size("size", size)
    thumb = _checks.integer("thumb", thumb, low=3, high=size)
    n = _checks.integer("n", n, low=0)
    p = np.asarray(unit_points, dtype=np.float64)
    imgs = np.asarray(images, dtype=np.float32)
    canvas = np.zeros((size, size, 4), np.float32)
    lo, hi = _MAP_LIMITS
    pick = np.random.default_rng(seed).choice(len(p), size=min(n, len(p)), replace=False)
    for i in pick:
        cx = int((p[i, 0] - lo) / (hi - lo) * size)
        cy = int((1 - (p[i, 1] - lo) / (hi - lo)) * size)   # image rows run downwards
        top = min(max(cy - thumb // 2, 0), size - thumb)
        left = min(max(cx - thumb // 2, 0), size - thumb)
        canvas[top:top + thumb, left:left + thumb, :3] = colours[int(labels[i])][:3]
        small = _data.resize_image(imgs[i], (thumb - 2, thumb - 2))
        canvas[top + 1:top + thumb - 1, left + 1:left + thumb - 1, :3] = np.clip(small[..., :3], 0, 1)
        canvas[top:top + thumb, left:left + thumb, 3] = 1.0
    return canvas


def _explorer_map_figure(class_names, colours):
    """The explorer's map: one dot collection per class and one thumbnail image on top."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 6.0))
    dots = [ax.scatter([], [], s=8, color=colours[c], label=class_names[c], alpha=0.7)
            for c in range(len(colours))]
    thumbs = ax.imshow(np.zeros((2, 2, 4)), extent=_MAP_LIMITS + _MAP_LIMITS,
                       interpolation="nearest", zorder=3)
    ax.set_xlim(*_MAP_LIMITS)
    ax.set_ylim(*_MAP_LIMITS)
    ax.set_aspect("auto")
    legend = ax.legend(fontsize=7, markerscale=2, loc="upper right", framealpha=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    title = ax.set_title(" ", fontsize=9)
    fig.tight_layout()
    # the legend is redrawn after the dots and thumbnails, so they never cover it
    return fig, {"dots": dots, "thumbs": thumbs, "legend": legend, "title": title}


def _explorer_grid_figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    mosaic = ax.imshow(np.ones((2, 2, 3)), interpolation="bilinear")
    ax.axis("off")
    title = ax.set_title(" ", fontsize=9)
    fig.tight_layout()
    return fig, {"mosaic": mosaic, "title": title}


def explorer_sample(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Which ``k`` of ``n`` images the embedding explorer shows: the first ``k`` of one fixed
    random order of all ``n`` (from ``seed``), sorted.  So a sample of a set sorted by class
    (``ch.data.photo_set``) holds every class, and moving the images slider up only adds
    images.  Lesson 2."""
    n = _checks.integer("n", n, low=0)
    k = _checks.integer("k", k, low=0, high=n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


def embedding_explorer(model, images, labels, layers=None, class_names=None):
    """Widget for lesson 2: method, perplexity, number of images, layer, view.

    Features are computed once per layer for all images (cached), so only the 2-D embedding
    reruns when a slider moves; each map is cached too.  ``layers`` are names (or indices).
    The images slider shows a fixed random sample of the images (:func:`explorer_sample`),
    not the first ones: a photo set sorted by class would otherwise lose its last classes.
    """
    import ipywidgets as w

    model = _checks.model(model)
    imgs = _images(model, images, "embedding_explorer")
    y = np.asarray(labels)
    if len(y) != len(imgs):
        raise ValueError(f"{len(imgs)} images but {len(y)} labels: give one label per image.")
    if layers is None:
        layers = [PIXELS] + [_graph.activation_layer(model, c).name
                             for c in _graph.conv_layer_names(model)] + [penultimate_layer(model).name]
    layers = [_layer_name(model, lyr) for lyr in _checks.nonempty(
        "layers", list(layers), "name at least one layer, or leave layers=None for all")]
    class_names = class_names or _models.class_names(model)
    n_max = len(imgs)

    colours = _class_colours(int(y.max()) + 1 if len(y) else 1)
    thumbs = np.stack([_data.resize_image(im, (20, 20)) for im in imgs])   # shrunk once
    views = {"map": _widgets.FigureView(lambda: _explorer_map_figure(class_names, colours)),
             "grid": _widgets.FigureView(_explorer_grid_figure)}   # each built once

    def draw(method, perplexity, n_images, layer, view):
        shown = explorer_sample(n_max, n_images)
        f = cached_features(model, imgs, layer)[shown]
        kw = {"perplexity": float(perplexity)} if method == "tsne" else {}
        pts = cached_embedding(f, method, 0, **kw)
        labs = y[shown]
        acc = knn_accuracy(pts, labs)
        title = f"{layer} · {method} · {n_images} images · kNN accuracy {acc:.2f}"
        if view == "grid":
            mosaic = _widgets.cached(("embedding.grid", _widgets.array_key(pts), _widgets.array_key(imgs)),
                                     lambda: grid_mosaic(pts, imgs[shown]))
            parts = views["grid"].parts
            _plotting.set_image(parts["mosaic"], np.clip(mosaic, 0, 1))
            parts["title"].set_text(title)
            return views["grid"].live
        parts = views["map"].parts
        unit = _unit_square(pts)
        for c, dots in enumerate(parts["dots"]):
            dots.set_offsets(unit[labs == c] if np.any(labs == c) else np.empty((0, 2)))
        parts["thumbs"].set_visible(view == "thumbnails")
        if view == "thumbnails":
            parts["thumbs"].set_data(thumbnail_canvas(unit, thumbs[shown], labs, colours))
        parts["title"].set_text(title)
        return views["map"].live

    step = max(1, n_max // 10)
    return _widgets.interactive_plot(
        draw, method=available_methods(),
        perplexity=w.FloatSlider(value=30, min=5, max=50, step=5, description="perplexity"),
        n_images=w.IntSlider(value=min(500, n_max), min=min(50, n_max), max=n_max, step=step,
                             description="images"),
        layer=w.Dropdown(options=layers, value=layers[-1], description="layer"),
        view=["dots", "thumbnails", "grid"])
