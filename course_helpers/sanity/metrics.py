"""Measuring explanations on images whose objects are known.  Lesson 8.

:func:`deletion_curve` and :func:`insertion_curve` (Petsiuk et al. 2018), :func:`pointing_game`
(Zhang et al. 2016), combined over methods and images by :func:`evaluate_explanations`; the
two baselines that never look at the model, :func:`random_map` and :func:`centre_map`, and
:func:`worse_than`, the methods a baseline beats.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _checks
from .. import activations as _acts
from .. import plotting as _plotting

def _as_maps(maps, n, shape):
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[None]
    if len(maps) != n:
        raise ValueError(f"A method returned {len(maps)} maps for {n} images.")
    if maps.shape[1:] != tuple(shape):
        maps = np.stack([_plotting.upsample(m, shape) for m in maps])
    return maps



class Curve(NamedTuple):
    """A deletion or insertion curve: fraction of pixels changed, class probability, area."""

    fraction: np.ndarray
    probability: np.ndarray
    auc: float


def _check_map(saliency, shape):
    sal = np.asarray(saliency, dtype=np.float32)
    if sal.ndim != 2:
        raise ValueError(f"Expected a 2-D saliency map, got shape {sal.shape}.")
    if not np.all(np.isfinite(sal)):
        raise ValueError("The saliency map contains NaN or infinite values.")
    if sal.shape != tuple(shape):
        sal = _plotting.upsample(sal, shape)
    return sal


def _baseline(image, baseline):
    if isinstance(baseline, str):
        if baseline != "blur":
            raise ValueError(f"baseline must be a number (a grey level) or 'blur', got {baseline!r}.")
        from skimage.filters import gaussian

        return gaussian(image, sigma=5, channel_axis=-1).astype(np.float32)
    level = _checks.number("baseline", baseline, low=0, high=1,
                           fix="Give a grey level in [0, 1] or 'blur'.")
    return np.full_like(image, level)


def _auc(x, y) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)


def _probabilities(model, batch, class_index, batch_size) -> np.ndarray:
    """``model``'s probability of one class for each image of a small batch (called directly:
    ``model.predict`` builds a data pipeline per call, which costs more than a curve's forward
    passes)."""
    out = [model(batch[i:i + batch_size], training=False).numpy()[:, class_index]
           for i in range(0, len(batch), batch_size)]
    return np.concatenate(out).astype(np.float64)


def _curve(model, image, class_index, saliency, steps, start, end, batch_size):
    _checks.model(model)
    img = _checks.image_for(model, image)
    c = _checks.check_class(model, class_index)
    steps = _checks.integer("steps", steps, low=1)
    # the steps + 1 images of a curve go through in batches of at most 4 photos of 224 px:
    # all 13 of a 12-step VGG16 curve at once would overflow Binder's 2 GB
    batch_size = _checks.batch_limit(img.shape, _checks.integer("batch_size", batch_size, low=1),
                                     _acts.BATCH_PIXELS)
    sal = _check_map(saliency, img.shape[:2])
    a, b = start(img), end(img)
    h, w = img.shape[:2]
    order = np.argsort(-sal.ravel(), kind="stable")          # most important pixel first
    counts = np.round(np.linspace(0, h * w, steps + 1)).astype(int)
    rank = np.empty(h * w, int)
    rank[order] = np.arange(h * w)
    rank = rank.reshape(h, w)
    seq = np.stack([np.where((rank < k)[..., None], b, a) for k in counts]).astype(np.float32)
    prob = _probabilities(model, seq, c, batch_size)
    frac = counts / (h * w)
    return Curve(frac, prob, _auc(frac, prob))


def deletion_curve(model, image, class_index, saliency, steps: int = 16, baseline=0.0,
                   batch_size: int = 64) -> Curve:
    """Petsiuk et al.'s deletion metric: replace the most salient pixels first by ``baseline``
    (a grey level, or ``"blur"``) and follow the class probability.  A good map makes it fall
    fast: a *low* area under the curve.  ``steps + 1`` images go through the network,
    ``batch_size`` at a time (fewer for large images: at most
    ``ch.activations.BATCH_PIXELS`` pixels, 4 photos of 224 px).  Lesson 8.

    Written out in lesson 08, "In plain code: a deletion curve".
    """
    return _curve(model, image, class_index, saliency, steps,
                  start=lambda img: img, end=lambda img: _baseline(img, baseline),
                  batch_size=batch_size)


def insertion_curve(model, image, class_index, saliency, steps: int = 16, baseline="blur",
                    batch_size: int = 64) -> Curve:
    """Petsiuk et al.'s insertion metric: start from a blurred copy and put the original pixels
    back, most salient first.  A good map makes the probability rise fast: a *high* area.
    Batches as in :func:`deletion_curve`.  Lesson 8.

    Written out in lesson 08, "In plain code: a deletion curve".
    """
    return _curve(model, image, class_index, saliency, steps,
                  start=lambda img: _baseline(img, baseline), end=lambda img: img,
                  batch_size=batch_size)


def pointing_game(maps, masks, tolerance: int = 0, per_image: bool = False):
    """Zhang et al.'s pointing game: a hit when the map's maximum lies on the object.

    ``maps`` (H, W) or (n, h, w) (resized to the masks if needed), ``masks`` bool, one per
    map.  Each hit is decided by ``ch.saliency.pointing_hit`` (lesson 3.5's rule: among tied
    maxima, the one nearest their centroid; ``tolerance`` grows the mask by that many
    pixels).  Returns the hit rate, or the hits per image with ``per_image=True``.  Lesson 8.
    """
    from ..saliency import pointing_hit

    masks = np.asarray(masks)
    maps = np.asarray(maps, dtype=np.float32)
    if masks.ndim == 2:
        masks = masks[None]
    if maps.ndim == 2:
        maps = maps[None]
    if masks.ndim != 3 or maps.ndim != 3:
        raise ValueError(f"Expected maps and masks of shape (n, H, W) or (H, W); got "
                         f"{maps.shape} and {masks.shape}.")
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} maps but {len(masks)} masks; give one mask per map.")
    if masks.dtype != bool:
        if not np.isin(masks, (0, 1)).all():
            raise ValueError("Masks must be boolean (True on the object).")
        masks = masks.astype(bool)
    tolerance = _checks.integer("tolerance", tolerance, low=0)
    hits = np.zeros(len(maps), bool)
    for i, (m, mask) in enumerate(zip(maps, masks)):
        if not mask.any():
            raise ValueError(f"Mask {i} is empty: the pointing game needs an object to point at.")
        hits[i] = pointing_hit(_check_map(m, mask.shape), mask, tolerance=int(tolerance))
    return hits if per_image else float(hits.mean())


def evaluate_explanations(model, images, labels, masks, methods: dict, steps: int = 16,
                          progress: bool = True) -> list:
    """Deletion AUC, insertion AUC and pointing game for each method, on images with masks.

    ``methods``: ``{name: f(model, images, classes) -> maps (n, h, w)}``; each method explains
    the true label.  Returns a list of rows ``{"method", "deletion AUC", "insertion AUC",
    "pointing game"}`` (means over the images).  Lesson 8.
    """
    _checks.model(model)
    batch = _checks.batch_for(model, images)
    labels = np.asarray(labels).astype(int)
    masks = np.asarray(masks, bool)
    if len(labels) != len(batch) or len(masks) != len(batch):
        raise ValueError(f"{len(batch)} images, {len(labels)} labels and {len(masks)} masks: "
                         "give one label and one mask per image.")
    rows = []
    items = list(methods.items())
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="methods", leave=False)
    for name, fn in items:
        maps = _as_maps(fn(model, batch, labels), len(batch), batch.shape[1:3])
        dele = [deletion_curve(model, batch[i], labels[i], maps[i], steps).auc for i in range(len(batch))]
        ins = [insertion_curve(model, batch[i], labels[i], maps[i], steps).auc for i in range(len(batch))]
        rows.append({"method": name, "deletion AUC": float(np.mean(dele)),
                     "insertion AUC": float(np.mean(ins)),
                     "pointing game": pointing_game(maps, masks)})
    return rows


def format_table(rows, digits: int = 3) -> str:
    """Rows of dicts as a Markdown table (``IPython.display.Markdown`` shows it).  Lesson 8."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = [f"{r[k]:.{digits}f}" if isinstance(r[k], float) else str(r[k]) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _map_shape(images) -> tuple:
    """(n, h, w) of a batch of images (n, H, W, C) or grayscale images / maps (n, H, W)."""
    if images is None or isinstance(images, (str, dict)):
        raise TypeError(f"images must be an array of images (n, H, W, 3) or (n, H, W), got "
                        f"{images!r:.60}.")
    try:
        arr = images if hasattr(images, "shape") else np.asarray(images)
    except ValueError:
        raise ValueError("images have different sizes: give a batch of one size, e.g. "
                         "ch.data.make_shapes(...)[0] or np.stack(images).") from None
    shape = tuple(arr.shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"Expected a batch of images (n, H, W, 3) or (n, H, W), got shape "
                         f"{shape}: for one image use image[None].")
    if len(shape) == 3 and shape[-1] in (3, 4) and shape[0] > 4:
        raise ValueError(f"Expected a batch of images (n, H, W, 3), got shape {shape}: "
                         "for one image use image[None] or a list [image].")
    if min(shape[:3]) < 1:
        raise ValueError(f"images has shape {shape}: pass at least one image of at least "
                         "one pixel.")
    return int(shape[0]), int(shape[1]), int(shape[2])


def random_map(model, images, classes, seed: int = 0) -> np.ndarray:
    """A map of random numbers: the baseline every explanation should beat.  Lesson 8.

    Used in lesson 04, "Does it look at the object?", and in lesson 08, "2 · Measuring
    explanations" (the tables of :func:`evaluate_explanations` and ``metric_table``).
    """
    _checks.model(model)
    n, h, w = _map_shape(images)
    return np.random.default_rng(seed).random((n, h, w)).astype(np.float32)


def centre_map(model, images, classes) -> np.ndarray:
    """A round bump at the image centre, the same for every image: the baseline that never
    looks at the model but, on objects that sit near the centre, often points at them.

    A Gaussian of ``sigma = side / 8`` (``side`` the shorter of height and width) centred on
    pixel ``(h // 2, w // 2)``, with peak 1; float32 of shape (n, h, w), one map per image
    (``model`` and ``classes`` are not used beyond the check of ``model``, so it fits
    :func:`evaluate_explanations` as a method, like :func:`random_map`).

    Written out in lesson 04, "Does it look at the object?"; a baseline in lesson 08,
    "2 · Measuring explanations".
    """
    _checks.model(model)
    n, h, w = _map_shape(images)
    yy, xx = np.mgrid[:h, :w]
    sigma = min(h, w) / 8
    bump = np.exp(-((yy - h // 2) ** 2 + (xx - w // 2) ** 2) / (2 * sigma ** 2))
    return np.repeat(bump[None], n, axis=0).astype(np.float32)


#: Whether a higher score is better, for each column of :func:`evaluate_explanations`' rows.
HIGHER_IS_BETTER = {"deletion AUC": False, "insertion AUC": True, "pointing game": True}

#: The columns of ``ch.sanity.metric_table`` (:mod:`.ranking`): each metric's name, whether a
#: higher score is better, and how it is computed (curve kind and baseline or ROAD order).
METRICS = {
    "deletion (grey)": (False, "deletion", 0.5),
    "deletion (blur)": (False, "deletion", "blur"),
    "insertion (grey)": (True, "insertion", 0.5),
    "insertion (blur)": (True, "insertion", "blur"),
    "ROAD most relevant first": (False, "road", "morf"),
    "ROAD least relevant first": (True, "road", "lerf"),
}


def _directions(metrics, columns) -> dict:
    """{column: higher is better} from ``metrics`` (None, names, or a mapping to a bool or to
    a ``METRICS``-style tuple whose first item is the bool)."""
    if metrics is None:
        metrics = [c for c in columns if c != "method"]
    if isinstance(metrics, str):
        metrics = [metrics]
    if isinstance(metrics, dict):
        out = {k: (v[0] if isinstance(v, tuple) else v) for k, v in metrics.items()}
    else:
        known = {**HIGHER_IS_BETTER, **{name: spec[0] for name, spec in METRICS.items()}}
        out = {}
        for m in metrics:
            if m not in known:
                raise ValueError(f"worse_than does not know whether a higher {m!r} is better: "
                                 f"it knows {', '.join(known)}; for another column give "
                                 "metrics={column: True if higher is better}.")
            out[m] = known[m]
    if not out:
        raise ValueError("No metric to compare: the rows have no column besides 'method'.")
    for m, higher in out.items():
        if not isinstance(higher, (bool, np.bool_)):
            raise TypeError(f"metrics[{m!r}] must say whether a higher score is better "
                            f"(True or False), got {higher!r}.")
    return out


def worse_than(rows, baseline: str = "random map", metrics=None) -> dict:
    """The methods that score worse than ``baseline`` under each metric: ``{metric: [methods]}``
    (in the rows' order; a tie is not worse; the baseline's own row is left out).

    ``rows``: a table of :func:`evaluate_explanations` or ``metric_table`` (one dict per method,
    with its ``"method"``).  ``metrics``: the columns to compare, by name (None: every column
    but ``"method"``), the direction of each known from :data:`HIGHER_IS_BETTER` (the columns of
    :func:`evaluate_explanations`) or ``ch.sanity.METRICS`` (those of ``metric_table``, whose
    first entry says whether higher is better); or a dict ``{column: higher_is_better}``.

    Used in lesson 08, "Metrics that can disagree: grey, blur and ROAD" (worse than the random
    map) and "In plain code: a deletion curve" (beaten by the centre bump).
    """
    rows = list(rows) if rows is not None else []
    if not rows or not all(isinstance(r, dict) and "method" in r for r in rows):
        raise ValueError("rows must be a non-empty list of dicts with a 'method' key, e.g. "
                         "ch.sanity.evaluate_explanations(...) or ch.sanity.metric_table(...).")
    names = [r["method"] for r in rows]
    if names.count(baseline) != 1:
        where = "is not among" if baseline not in names else "appears more than once in"
        raise ValueError(f"baseline {baseline!r} {where} the methods: "
                         f"{', '.join(map(str, names))}. Add it to the methods (e.g. "
                         "ch.sanity.random_map) or name its row.")
    base = rows[names.index(baseline)]
    out = {}
    for metric, higher in _directions(metrics, list(rows[0])).items():
        for r in rows:
            if metric not in r:
                raise ValueError(f"Row {r['method']!r} has no column {metric!r}; columns: "
                                 f"{', '.join(r)}.")
            value = r[metric]
            if not isinstance(value, (int, float, np.integer, np.floating)) \
                    or isinstance(value, bool) or not np.isfinite(value):
                raise ValueError(f"{r['method']!r} scores {value!r} under {metric!r}: "
                                 "worse_than compares finite numbers.")
        ref = base[metric]
        out[metric] = [r["method"] for r in rows if r is not base
                       and (r[metric] < ref if higher else r[metric] > ref)]
    return out
