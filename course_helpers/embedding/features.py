"""Lesson 2, the numbers: feature vectors, 2-D maps, neighbours and kNN accuracy, grid cells.

The drawings and the explorer are in :mod:`course_helpers.embedding.plots`.
"""
from __future__ import annotations

import time

import numpy as np
import tf_keras as keras

from .. import _checks
from .. import graph as _graph
from .. import widgets as _widgets

METHODS = ("tsne", "pca", "umap")
#: Name used for "no network at all": the raw pixels as the feature vector.
PIXELS = "pixels"


# --------------------------------------------------------------------------- features
def penultimate_layer(model):
    """The layer whose output feeds the classifier (dropout skipped).  Lesson 2.

    ``embedding`` for ``course-cnn``, ``fc2`` for VGG16: the "CNN code" of an image.
    """
    model = _checks.model(model)
    dense = [lyr for lyr in model.layers if isinstance(lyr, keras.layers.Dense)]
    if not dense:
        raise ValueError(f"{model.name} has no Dense layer, so it has no penultimate layer; "
                         "pass layer=<name> explicitly.")
    sources = _graph.inputs_of(model, dense[-1])     # in the model's own graph
    while len(sources) == 1 and isinstance(sources[0], (keras.layers.Dropout,
                                                        keras.layers.Activation)):
        sources = _graph.inputs_of(model, sources[0])
    if len(sources) != 1:
        raise ValueError("Could not follow the model back from its last Dense layer; pass layer=<name>.")
    return sources[0]


def _images(model, images, what: str = "extract_features"):
    if images is None or (hasattr(images, "__len__") and len(images) == 0):
        raise ValueError(f"No images given: {what} needs at least one image, e.g. "
                         "ch.data.make_shapes(500)[0].")
    return _checks.batch_for(model, images)


def _layer_name(model, layer):
    """A layer's name (``layer`` a name, an index or a layer); None and "pixels" stay."""
    if layer is None or (isinstance(layer, str) and layer == PIXELS):
        return layer
    return _graph.layer(model, layer).name


#: A batch holds about this many input pixels: 32 images of course-cnn's 64x64, 2 photos of
#: 224x224.  VGG16 is as fast per photo in batches of 2 as of 16, and its activations for 16
#: photos at once take about 0.5 GB more memory.
BATCH_PIXELS = 1 << 17


def _batch_size(x, batch_size):
    """``batch_size``, or for None as many images as hold about :data:`BATCH_PIXELS` pixels."""
    if batch_size is None:
        return _checks.batch_limit(x.shape[1:3], 64, BATCH_PIXELS)
    return _checks.integer("batch_size", batch_size, low=1)


def _pooled(out, pool):
    if out.ndim == 4:
        out = {"avg": lambda a: a.mean(axis=(1, 2)), "max": lambda a: a.max(axis=(1, 2)),
               "flatten": lambda a: a.reshape(len(a), -1)}[pool](out)
    return out.reshape(len(out), -1)


def _features_of(model, x, names, pool, batch_size, progress=False) -> list:
    """The features of the checked batch ``x`` at each layer of ``names``, in ONE pass of the
    network (a sub-model with one output per layer): a list of (n, d) arrays."""
    sub = _graph.submodel(model, list(names) if len(names) > 1 else names[0])
    chunks = [[] for _ in names]
    starts = range(0, len(x), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"features of {', '.join(names)}", unit="batch", leave=False)
    for s in starts:
        outs = sub(x[s:s + batch_size], training=False)
        for chunk, out in zip(chunks, outs if len(names) > 1 else [outs]):
            chunk.append(_pooled(np.asarray(out), pool))
    return [np.concatenate(chunk).astype(np.float32) for chunk in chunks]


def extract_features(model, images, layer=None, batch_size=None, pool: str = "avg",
                     progress: bool = False) -> np.ndarray:
    """Feature vectors of ``images`` at ``layer``, shape (n, d).  Lesson 2.

    ``layer`` defaults to :func:`penultimate_layer`; any layer name (or index) works.  A conv
    layer's output (n, h, w, c) is reduced with ``pool``: ``"avg"`` (mean over positions,
    d = c), ``"max"`` or ``"flatten"`` (d = h*w*c).  ``layer="pixels"`` returns the raw pixels.
    Images are checked and converted like every lesson does (grayscale, uint8, other sizes).
    The sub-model that stops at ``layer`` comes from ``ch.graph.submodel`` (built once).
    ``batch_size`` images go through the network at once; None picks it from the image size
    (32 small shapes, 2 photos of 224 px: few enough for VGG16 on a 2 GB machine).

    Written out in lesson 02, "In plain code: features and t-SNE".
    """
    model = _checks.model(model)
    pool = _checks.choice("pool", pool, ("avg", "max", "flatten"))
    x = _images(model, images)
    batch_size = _batch_size(x, batch_size)
    name = _layer_name(model, layer)
    if name == PIXELS:
        return x.reshape(len(x), -1).copy()
    name = penultimate_layer(model).name if name is None else name
    return _features_of(model, x, [name], pool, batch_size, progress)[0]


def _feature_key(model, name, pool, images) -> tuple:
    return ("embedding.features", _widgets.model_key(model), name, pool,
            _widgets.array_key(np.asarray(images)))


def cached_features(model, images, layer=None, pool: str = "avg", batch_size=None):
    """:func:`extract_features`, computed once per (model, layer, images) and then reused.

    The lesson 2 widget calls this, so moving the perplexity slider never reruns the network.
    ``layer`` may be a list of layers: then the network runs once for all of them that are not
    cached yet, and the result is a list with one array per layer (lesson 2's ImageNet part).
    """
    model = _checks.model(model)
    if isinstance(layer, (list, tuple)):
        names = [_layer_name(model, lyr) for lyr in _checks.nonempty(
            "layer", list(layer), "name at least one layer, or give one layer (not a list)")]
        _cache_in_one_pass(model, images, names, pool, batch_size)
        return [cached_features(model, images, n, pool, batch_size) for n in names]
    name = _layer_name(model, layer)
    if name == PIXELS:      # a read-only view of the images, not a copy (photos: 120 MB for 200)
        return _widgets.cached(_feature_key(model, name, pool, images), lambda: _pixel_view(model, images))
    return _widgets.cached(_feature_key(model, name, pool, images),
                           lambda: extract_features(model, images, name, batch_size=batch_size,
                                                    pool=pool, progress=True))


def _pixel_view(model, images) -> np.ndarray:
    x = _images(model, images)
    view = x.reshape(len(x), -1)
    view.flags.writeable = False
    return view


def _cache_in_one_pass(model, images, names, pool, batch_size) -> None:
    """Put the features of every layer of ``names`` that is not cached yet into the cache,
    running the network once for all of them (not once per layer)."""
    pool = _checks.choice("pool", pool, ("avg", "max", "flatten"))
    cached = set(_widgets.cache_info()["keys"])
    todo = [n for n in dict.fromkeys(names) if n not in (None, PIXELS)
            and _feature_key(model, n, pool, images) not in cached]
    if todo:
        x = _images(model, images)
        for name, f in zip(todo, _features_of(model, x, todo, pool, _batch_size(x, batch_size),
                                              progress=True)):
            _widgets.cached(_feature_key(model, name, pool, images), lambda f=f: f)


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

    Written out in lesson 02, "In plain code: features and t-SNE".
    """
    from threadpoolctl import threadpool_limits

    threads = _checks.integer("threads", threads, low=1)
    with threadpool_limits(threads):
        return _embed_2d(features, method, seed, verbose, **kwargs)


def _embed_2d(features, method, seed, verbose, **kwargs):
    f = np.asarray(features)
    if not np.issubdtype(f.dtype, np.floating):
        f = f.astype(np.float64)
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
        out = _pca(f, 2, seed, **kwargs)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        f = _pca(f, 50, seed) if f.shape[1] > 50 and n > 50 else f.astype(np.float64)
        perplexity = _checks.number("perplexity", kwargs.pop("perplexity", 30.0), positive=True)
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
        out = umap.UMAP(n_components=2, random_state=seed, **kwargs).fit_transform(f.astype(np.float64))
    else:
        raise ValueError(f"Unknown method {method!r}; choose from {', '.join(available_methods())}.")
    if verbose:
        print(f"{method}: {n} points in {time.time() - t0:.1f} s")
    return np.asarray(out, dtype=np.float32)


def _pca(f, n_components, seed, **kwargs) -> np.ndarray:
    """PCA projections (n, n_components) in float64.  With more numbers per image than images
    (photos' pixels: 150528 for 224 px; VGG16's 4096 for a few hundred photos) they come from
    the n x n Gram matrix of the centred features, summed over blocks of columns: the same
    projections as scikit-learn's PCA up to the sign of each axis, without the float64 copies
    of all the features that would need a gigabyte for 200 photos' pixels."""
    n, d = f.shape
    if d <= n or kwargs:
        from sklearn.decomposition import PCA

        return PCA(n_components=n_components, random_state=seed, **kwargs).fit_transform(
            f.astype(np.float64))
    mean = f.mean(axis=0, dtype=np.float64)
    gram = np.zeros((n, n))
    for s in range(0, d, 4096):
        block = f[:, s:s + 4096] - mean[s:s + 4096]          # float64, n x 4096
        gram += block @ block.T
    values, vectors = np.linalg.eigh(gram)                    # ascending
    top = np.argsort(-values, kind="stable")[:n_components]
    out = vectors[:, top] * np.sqrt(np.clip(values[top], 0, None))
    signs = np.sign(out[np.argmax(np.abs(out), axis=0), np.arange(out.shape[1])])
    return out * np.where(signs == 0, 1.0, signs)             # largest entry of each axis > 0


def available_methods() -> list:
    """The embedding methods that work here ('umap' only when umap-learn is installed)."""
    import importlib.util

    return ["tsne", "pca"] + (["umap"] if importlib.util.find_spec("umap") else [])


def cached_embedding(features, method="tsne", seed=0, **kwargs) -> np.ndarray:
    """:func:`embed_2d`, remembered for the same features and settings (the widget's cache)."""
    if method == "tsne":
        kwargs["perplexity"] = float(kwargs.get("perplexity", 30.0))
    key = ("embedding.2d", _widgets.array_key(features), method, seed, tuple(sorted(kwargs.items())))
    return _widgets.cached(key, lambda: embed_2d(features, method, seed, verbose=True, **kwargs))


# --------------------------------------------------------------------------- numbers
def nearest_neighbours(features, query: int, k: int = 8) -> np.ndarray:
    """Indices of the ``k`` vectors closest (Euclidean) to ``features[query]``, itself excluded.

    Lesson 2 compares neighbours in feature space with neighbours in raw-pixel space.
    """
    f = np.asarray(features, dtype=np.float64)
    f = f.reshape(len(f), -1)
    query = _checks.check_index(query, len(f), "query", f"There are {len(f)} images.")
    k = _checks.integer("k", k, low=1, high=len(f) - 1)
    d = ((f - f[query]) ** 2).sum(axis=1)
    d[query] = np.inf
    order = np.argsort(d, kind="stable")
    return order[:k]


def knn_accuracy(points, labels, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of ``labels`` given ``points``.  Lesson 2.

    Each point is classified by the majority label of its ``k`` nearest other points (ties go
    to the smallest label).  1.0 means every point sits among its own class; with C balanced
    classes, chance is a little above 1/C (lesson 02 prints it).  Applied to the 2-D map it
    says how well classes separate.
    """
    from sklearn.neighbors import NearestNeighbors

    p = np.asarray(points, dtype=np.float64)
    p = p.reshape(len(p), -1)
    y = np.asarray(labels).astype(np.int64)
    if len(p) != len(y):
        raise ValueError(f"{len(p)} points but {len(y)} labels.")
    k = _checks.integer("k", k, low=1, high=len(p) - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(p)
    _, idx = nn.kneighbors(p)
    # drop each point itself (it is its own nearest neighbour unless duplicates exist)
    neigh = np.array([[j for j in row if j != i][:k] for i, row in enumerate(idx)])
    votes = np.zeros((len(y), int(y.max()) + 1))
    np.add.at(votes, (np.repeat(np.arange(len(y)), k), y[neigh].ravel()), 1)
    return float(np.mean(votes.argmax(axis=1) == y))


def neighbour_agreement(features, labels, k: int = 8, queries=None) -> float:
    """Average share of a query's ``k`` nearest neighbours that have the query's class.  Lesson 2."""
    y = np.asarray(labels)
    queries = range(len(y)) if queries is None else queries
    return float(np.mean([np.mean(y[nearest_neighbours(features, q, k)] == y[q]) for q in queries]))


def compare_layers(model, images, labels, layers, method: str = "tsne", seed: int = 0, k: int = 5,
                   pool: str = "avg", batch_size=None, **kwargs) -> dict:
    """For each layer: features, 2-D map and kNN accuracy in the map.  Lesson 2.

    Returns ``{layer: {"points": (n, 2), "knn_accuracy": float, "dims": d}}``.  The network
    runs once for all the layers whose features are not cached yet (one sub-model with an
    output per layer, ``batch_size`` images at a time as in :func:`extract_features`), and
    features and maps are cached.  ``pool`` reduces a conv layer's maps as in
    :func:`extract_features`: ``"avg"`` asks what its channels respond to, ``"flatten"`` keeps
    where as well.
    """
    model = _checks.model(model)
    layers = _checks.nonempty("layers", list(layers), "name at least one layer, e.g. ['embedding']")
    _cache_in_one_pass(model, images, [_layer_name(model, lyr) for lyr in layers], pool, batch_size)
    out = {}
    for layer in layers:
        f = cached_features(model, images, layer, pool=pool, batch_size=batch_size)
        pts = cached_embedding(f, method, seed, **kwargs)
        out[layer] = {"points": pts, "knn_accuracy": knn_accuracy(pts, labels, k), "dims": f.shape[1]}
    return out


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
    rows, cols = _checks.size("grid", grid)
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
