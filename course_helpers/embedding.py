"""Lesson 2 — the last layer, reduced to 2-D (最后一层 · 降维法), notebook 02.

Every image becomes a feature vector at the penultimate layer (128 numbers for ``course-cnn``,
4096 for VGG16).  t-SNE or PCA squeeze the vectors to (x, y); images with similar vectors land
together.  This module extracts the features, embeds them, measures how well the classes
separate (k-nearest-neighbour accuracy in the map) and draws the maps.
"""
from __future__ import annotations

import time

import numpy as np
import tf_keras as keras

from . import data as _data
from . import models as _models
from . import plotting as _plotting

METHODS = ("tsne", "pca", "umap")
#: Name used for "no network at all": the raw pixels as the feature vector.
PIXELS = "pixels"


# --------------------------------------------------------------------------- features
def penultimate_layer(model):
    """The layer whose output feeds the classifier (dropout skipped).  Lesson 2.

    ``embedding`` for ``course-cnn``, ``fc2`` for VGG16: the "CNN code" of an image.
    """
    dense = [lyr for lyr in model.layers if isinstance(lyr, keras.layers.Dense)]
    if not dense:
        raise ValueError(f"{model.name} has no Dense layer, so it has no penultimate layer; "
                         "pass layer=<name> explicitly.")
    layer = dense[-1]._inbound_nodes[0].inbound_layers
    while isinstance(layer, (keras.layers.Dropout, keras.layers.Activation)) and \
            not isinstance(layer, keras.layers.InputLayer):
        layer = layer._inbound_nodes[0].inbound_layers
    if isinstance(layer, list):
        raise ValueError("Could not follow the model back from its last Dense layer; pass layer=<name>.")
    return layer


def _images(model, images):
    from . import _checks

    if images is None or (hasattr(images, "__len__") and len(images) == 0):
        raise ValueError("No images given: extract_features needs at least one image, e.g. "
                         "ch.data.make_shapes(500)[0].")
    return _checks.batch_for(model, images)


def extract_features(model, images, layer=None, batch_size: int = 64, pool: str = "avg",
                     progress: bool = False) -> np.ndarray:
    """Feature vectors of ``images`` at ``layer``, shape (n, d).  Lesson 2.

    ``layer`` defaults to :func:`penultimate_layer`; any layer name works.  A conv layer's
    output (n, h, w, c) is reduced with ``pool``: ``"avg"`` (mean over positions, d = c),
    ``"max"`` or ``"flatten"`` (d = h*w*c).  ``layer="pixels"`` returns the raw pixels.
    Images are checked and converted like every lesson does (grayscale, uint8, other sizes).
    """
    if pool not in ("avg", "max", "flatten"):
        raise ValueError(f"pool must be 'avg', 'max' or 'flatten', got {pool!r}.")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    x = _images(model, images)
    if layer == PIXELS:
        return x.reshape(len(x), -1).copy()
    lyr = penultimate_layer(model) if layer is None else _models.get_layer(model, layer)
    from . import widgets

    sub = widgets.cached(("embedding.submodel", widgets.model_key(model), lyr.name),
                         lambda: keras.Model(model.inputs, lyr.output))
    chunks = []
    starts = range(0, len(x), int(batch_size))
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"features of {lyr.name}", unit="batch", leave=False)
    for s in starts:
        out = np.asarray(sub(x[s:s + int(batch_size)], training=False))
        if out.ndim == 4:
            out = {"avg": lambda a: a.mean(axis=(1, 2)), "max": lambda a: a.max(axis=(1, 2)),
                   "flatten": lambda a: a.reshape(len(a), -1)}[pool](out)
        chunks.append(out.reshape(len(out), -1))
    return np.concatenate(chunks).astype(np.float32)


def cached_features(model, images, layer=None, pool: str = "avg") -> np.ndarray:
    """:func:`extract_features`, computed once per (model, layer, images) and then reused.

    The lesson 2 widget calls this, so moving the perplexity slider never reruns the network.
    """
    from . import widgets

    name = layer if isinstance(layer, str) or layer is None else layer.name
    key = ("embedding.features", widgets.model_key(model), name, pool,
           widgets.array_key(np.asarray(images)))
    return widgets.cached(key, lambda: extract_features(model, images, layer, pool=pool,
                                                        progress=True))


# --------------------------------------------------------------------------- 2-D maps
def embed_2d(features, method: str = "tsne", seed: int = 0, verbose: bool = False,
             threads: int = 1, **kwargs) -> np.ndarray:
    """Reduce (n, d) features to (n, 2) points with t-SNE, PCA or UMAP.  Lesson 2.

    t-SNE (scikit-learn) first reduces to 50 dimensions with PCA when d > 50, as is usual;
    ``perplexity`` (default 30) is capped below n/3 and ``max_iter`` defaults to 500 (the map
    has settled by then; scikit-learn's 1000 doubles the time).  ``kwargs`` go to the
    scikit-learn (or umap-learn) class.  The same ``seed`` gives the same map.  ``verbose``
    prints a message while it runs and the time it took.  ``threads`` caps the BLAS/OpenMP
    threads: on a busy shared machine (Binder, Colab) 1 thread is often much faster than 2.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(int(threads)):
        return _embed_2d(features, method, seed, verbose, **kwargs)


def _embed_2d(features, method, seed, verbose, **kwargs):
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must be a 2-D array (n_images, n_features), got shape {f.shape}.")
    n = len(f)
    if n < 3:
        raise ValueError(f"Need at least 3 feature vectors to embed, got {n}.")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values.")
    method = str(method).lower()
    t0 = time.time()
    if method == "pca":
        from sklearn.decomposition import PCA

        out = PCA(n_components=2, random_state=seed, **kwargs).fit_transform(f)
    elif method == "tsne":
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        if f.shape[1] > 50 and n > 50:
            f = PCA(n_components=50, random_state=seed).fit_transform(f)
        perplexity = float(kwargs.pop("perplexity", 30.0))
        perplexity = min(perplexity, max(1.0, (n - 1) / 3.0 - 1e-6))
        kwargs.setdefault("init", "pca")
        kwargs.setdefault("learning_rate", "auto")
        kwargs.setdefault("max_iter", 500)
        if verbose:
            print(f"t-SNE of {n} points (perplexity {perplexity:g}) ...", flush=True)
        out = TSNE(n_components=2, perplexity=perplexity, random_state=seed, **kwargs).fit_transform(f)
    elif method == "umap":
        try:
            import umap
        except ImportError:
            raise ImportError("method='umap' needs the umap-learn package (pip install umap-learn); "
                              "use 'tsne' or 'pca' instead.") from None
        out = umap.UMAP(n_components=2, random_state=seed, **kwargs).fit_transform(f)
    else:
        raise ValueError(f"Unknown method {method!r}; choose from {', '.join(available_methods())}.")
    if verbose:
        print(f"{method}: {n} points in {time.time() - t0:.1f} s")
    return np.asarray(out, dtype=np.float32)


def available_methods() -> list:
    """The embedding methods that work here ('umap' only when umap-learn is installed)."""
    import importlib.util

    return ["tsne", "pca"] + (["umap"] if importlib.util.find_spec("umap") else [])


def cached_embedding(features, method="tsne", seed=0, **kwargs) -> np.ndarray:
    """:func:`embed_2d`, remembered for the same features and settings (the widget's cache)."""
    from . import widgets

    if method == "tsne":
        kwargs["perplexity"] = float(kwargs.get("perplexity", 30.0))
    key = ("embedding.2d", widgets.array_key(features), method, seed, tuple(sorted(kwargs.items())))
    return widgets.cached(key, lambda: embed_2d(features, method, seed, verbose=True, **kwargs))


# --------------------------------------------------------------------------- numbers
def nearest_neighbours(features, query: int, k: int = 8) -> np.ndarray:
    """Indices of the ``k`` vectors closest (Euclidean) to ``features[query]``, itself excluded.

    Lesson 2 compares neighbours in feature space with neighbours in raw-pixel space.
    """
    from . import _checks

    f = np.asarray(features, dtype=np.float64)
    f = f.reshape(len(f), -1)
    query = _checks.check_index(query, len(f), "query", f"There are {len(f)} images.")
    if not 1 <= int(k) < len(f):
        raise ValueError(f"k must be between 1 and {len(f) - 1}, got {k}.")
    d = ((f - f[query]) ** 2).sum(axis=1)
    d[query] = np.inf
    order = np.argsort(d, kind="stable")
    return order[: int(k)]


def knn_accuracy(points, labels, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of ``labels`` given ``points``.  Lesson 2.

    Each point is classified by the majority label of its ``k`` nearest other points (ties go
    to the smallest label).  1.0 means every point sits among its own class; with C balanced
    classes, chance is about 1/C.  Applied to the 2-D map it says how well classes separate.
    """
    from sklearn.neighbors import NearestNeighbors

    p = np.asarray(points, dtype=np.float64)
    p = p.reshape(len(p), -1)
    y = np.asarray(labels).astype(np.int64)
    if len(p) != len(y):
        raise ValueError(f"{len(p)} points but {len(y)} labels.")
    if not 1 <= int(k) < len(p):
        raise ValueError(f"k must be between 1 and {len(p) - 1}, got {k}.")
    nn = NearestNeighbors(n_neighbors=int(k) + 1).fit(p)
    _, idx = nn.kneighbors(p)
    # drop each point itself (it is its own nearest neighbour unless duplicates exist)
    neigh = np.array([[j for j in row if j != i][: int(k)] for i, row in enumerate(idx)])
    votes = np.zeros((len(y), int(y.max()) + 1))
    np.add.at(votes, (np.repeat(np.arange(len(y)), int(k)), y[neigh].ravel()), 1)
    return float(np.mean(votes.argmax(axis=1) == y))


def neighbour_agreement(features, labels, k: int = 8, queries=None) -> float:
    """Average share of a query's ``k`` nearest neighbours that have the query's class.  Lesson 2."""
    y = np.asarray(labels)
    queries = range(len(y)) if queries is None else queries
    return float(np.mean([np.mean(y[nearest_neighbours(features, q, k)] == y[q]) for q in queries]))


# --------------------------------------------------------------------------- grid snapping
def grid_assignment(points, grid=None) -> np.ndarray:
    """Snap 2-D points to the cells of a grid, one image per cell, shape (n, 2) of (row, col).

    The map is scaled to the grid and the assignment that moves points least in total is found
    with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``), so no two images
    share a cell.  ``grid`` = (rows, cols), default the smallest square that fits.  Lesson 2.
    """
    from scipy.optimize import linear_sum_assignment

    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {p.shape}.")
    n = len(p)
    if n == 0:
        raise ValueError("No points to place.")
    if grid is None:
        side = int(np.ceil(np.sqrt(n)))
        grid = (side, side)
    rows, cols = int(grid[0]), int(grid[1])
    if rows * cols < n:
        raise ValueError(f"A {rows}x{cols} grid has {rows * cols} cells, fewer than the {n} images.")
    lo, hi = p.min(axis=0), p.max(axis=0)
    unit = (p - lo) / np.maximum(hi - lo, 1e-12)  # x -> columns, y -> rows (top = high y)
    target = np.stack([(1 - unit[:, 1]) * (rows - 1), unit[:, 0] * (cols - 1)], axis=1)
    cells = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), -1).reshape(-1, 2)
    cost = ((target[:, None, :] - cells[None, :, :]) ** 2).sum(-1)
    r, c = linear_sum_assignment(cost)
    out = np.empty((n, 2), np.int64)
    out[r] = cells[c]
    return out


# --------------------------------------------------------------------------- drawing
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
        pick = np.random.default_rng(seed).choice(len(p), size=min(int(thumbs), len(p)), replace=False)
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
    rows, cols = (cells.max(axis=0) + 1) if grid is None else grid
    h, w = imgs.shape[1:3]
    canvas = np.ones((rows * h, cols * w, 3), np.float32)
    for (r, c), img in zip(cells, imgs):
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    return canvas


def plot_embedding_grid(points, images, grid=None, title=None, size: float = 7.0):
    """The CS231n picture: the map with thumbnails snapped to a grid, none overlapping.  Lesson 2."""
    import matplotlib.pyplot as plt

    mosaic = grid_mosaic(points, images, grid)
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

    imgs = np.asarray(images)
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


def compare_layers(model, images, labels, layers, method: str = "tsne", seed: int = 0, k: int = 5,
                   **kwargs) -> dict:
    """For each layer: features, 2-D map and kNN accuracy in the map.  Lesson 2.

    Returns ``{layer: {"points": (n, 2), "knn_accuracy": float, "dims": d}}``; the network runs
    once per layer and the results are cached.
    """
    out = {}
    for layer in layers:
        f = cached_features(model, images, layer)
        pts = cached_embedding(f, method, seed, **kwargs)
        out[layer] = {"points": pts, "knn_accuracy": knn_accuracy(pts, labels, k), "dims": f.shape[1]}
    return out


def plot_layer_comparison(results: dict, labels, class_names=None):
    """Side-by-side maps of :func:`compare_layers`, each titled with its kNN accuracy.  Lesson 2."""
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8), squeeze=False)
    for ax, (layer, res) in zip(axes[0], results.items()):
        plot_embedding(res["points"], labels, class_names=class_names, ax=ax,
                       title=f"{layer} ({res['dims']}-d): kNN accuracy {res['knn_accuracy']:.2f}")
        if ax is not axes[0, -1]:
            ax.get_legend().remove()
    fig.tight_layout()
    return fig


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
    ``ch.data.resize_image``.  Lesson 2."""
    p = np.asarray(unit_points, dtype=np.float64)
    imgs = np.asarray(images, dtype=np.float32)
    canvas = np.zeros((size, size, 4), np.float32)
    lo, hi = _MAP_LIMITS
    pick = np.random.default_rng(seed).choice(len(p), size=min(int(n), len(p)), replace=False)
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


def embedding_explorer(model, images, labels, layers=None, class_names=None):
    """Widget for lesson 2: method, perplexity, number of images, layer, view.

    Features are computed once per layer for all images (cached), so only the 2-D embedding
    reruns when a slider moves; each map is cached too.
    """
    import ipywidgets as w

    from . import widgets

    imgs = _images(model, images)
    y = np.asarray(labels)
    if len(y) != len(imgs):
        raise ValueError(f"{len(imgs)} images but {len(y)} labels.")
    if layers is None:
        layers = [PIXELS] + [_models.activation_layer(model, c).name
                             for c in _models.conv_layer_names(model)] + [penultimate_layer(model).name]
    class_names = class_names or _models.class_names(model)
    n_max = len(imgs)

    colours = _class_colours(int(y.max()) + 1 if len(y) else 1)
    thumbs = np.stack([_data.resize_image(im, (20, 20)) for im in imgs])   # shrunk once
    views = {"map": widgets.FigureView(lambda: _explorer_map_figure(class_names, colours)),
             "grid": widgets.FigureView(_explorer_grid_figure)}   # each built once

    def draw(method, perplexity, n_images, layer, view):
        f = cached_features(model, imgs, layer)[:n_images]
        kw = {"perplexity": float(perplexity)} if method == "tsne" else {}
        pts = cached_embedding(f, method, 0, **kw)
        acc = knn_accuracy(pts, y[:n_images])
        title = f"{layer} · {method} · {n_images} images · kNN accuracy {acc:.2f}"
        if view == "grid":
            mosaic = widgets.cached(("embedding.grid", widgets.array_key(pts), widgets.array_key(imgs)),
                                    lambda: grid_mosaic(pts, imgs[:n_images]))
            parts = views["grid"].parts
            _plotting.set_image(parts["mosaic"], np.clip(mosaic, 0, 1))
            parts["title"].set_text(title)
            return views["grid"].live
        parts = views["map"].parts
        unit = _unit_square(pts)
        labs = y[:n_images]
        for c, dots in enumerate(parts["dots"]):
            dots.set_offsets(unit[labs == c] if np.any(labs == c) else np.empty((0, 2)))
        parts["thumbs"].set_visible(view == "thumbnails")
        if view == "thumbnails":
            parts["thumbs"].set_data(thumbnail_canvas(unit, thumbs[:n_images], labs, colours))
        parts["title"].set_text(title)
        return views["map"].live

    step = max(1, n_max // 10)
    return widgets.interactive_plot(
        draw, method=available_methods(),
        perplexity=w.FloatSlider(value=30, min=5, max=50, step=5, description="perplexity"),
        n_images=w.IntSlider(value=min(500, n_max), min=min(50, n_max), max=n_max, step=step,
                             description="images"),
        layer=w.Dropdown(options=list(layers), value=list(layers)[-1], description="layer"),
        view=["dots", "thumbnails", "grid"])
