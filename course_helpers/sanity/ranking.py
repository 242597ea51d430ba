"""Metrics that can disagree: every method scored by deletion, insertion and ROAD.  Lesson 8.

:func:`metric_table` scores each method's maps with deletion and insertion (Petsiuk et al.
2018) against a grey and a blurred baseline, and with ROAD (Rong et al. 2022, most and least
relevant first); :func:`rank_table` turns the scores into ranks (1 = best under that metric),
and :func:`rank_agreement` says how far two metrics agree (Kendall's tau of their ranks).
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from .metrics import METRICS, _as_maps, deletion_curve, insertion_curve


def score_map(model, image, class_index, saliency, metric: str, steps: int = 16,
              road_fractions=None) -> float:
    """The area under one :data:`METRICS` curve for one image and map."""
    from .road import road_curve

    metric = _checks.choice("metric", metric, list(METRICS))
    _, kind, arg = METRICS[metric]
    if kind == "deletion":
        return deletion_curve(model, image, class_index, saliency, steps, baseline=arg).auc
    if kind == "insertion":
        return insertion_curve(model, image, class_index, saliency, steps, baseline=arg).auc
    return road_curve(model, image, class_index, saliency, fractions=road_fractions, order=arg).auc


def metric_table(model, images, labels, methods: dict, metrics=None, steps: int = 16,
                 road_fractions=None, progress: bool = True) -> list:
    """Rows ``{"method", <metric>: mean area over the images, ...}`` for each method.

    ``methods``: ``{name: f(model, images, classes) -> maps (n, h, w)}``, each explaining the
    true label; ``metrics``: names from :data:`METRICS` (default all).  Lesson 8.
    """

    _checks.model(model)
    batch = _checks.batch_for(model, images)
    labels = np.asarray(labels).astype(int)
    if labels.shape != (len(batch),):
        raise ValueError(f"{len(batch)} images but {labels.size} labels: give one label per image.")
    names = list(METRICS) if metrics is None else [_checks.choice("metrics", m, list(METRICS))
                                                   for m in metrics]
    if not methods:
        raise ValueError("Give at least one method: {'name': function(model, images, classes)}.")
    items = list(methods.items())
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="methods", leave=False)
    rows = []
    for name, fn in items:
        maps = _as_maps(fn(model, batch, labels), len(batch), batch.shape[1:3])
        row = {"method": name}
        for metric in names:
            row[metric] = float(np.mean([score_map(model, batch[i], labels[i], maps[i], metric,
                                                   steps, road_fractions)
                                         for i in range(len(batch))]))
        rows.append(row)
    return rows


def rank_table(rows) -> list:
    """The same rows with each metric's score replaced by the method's rank under it
    (1 = best; ties share the best rank).  Lesson 8."""
    if not rows:
        return []
    from scipy.stats import rankdata

    out = [{"method": r["method"]} for r in rows]
    for key in rows[0]:
        if key == "method":
            continue
        if key not in METRICS:
            raise ValueError(f"Unknown metric column {key!r}; known: {', '.join(METRICS)}.")
        higher_better = METRICS[key][0]
        vals = np.array([r[key] for r in rows], dtype=np.float64)
        ranks = rankdata(-vals if higher_better else vals, method="min").astype(int)
        for o, rk in zip(out, ranks):
            o[key] = int(rk)
    return out


def rank_agreement(rows, first: str, second: str) -> float:
    """Kendall's tau between two metrics' rankings of the methods (1 = the same order,
    -1 = reversed).  Lesson 8."""
    from scipy.stats import kendalltau

    ranks = rank_table(rows)
    for key in (first, second):
        if key not in ranks[0]:
            raise ValueError(f"No column {key!r} in the table; columns: {', '.join(ranks[0])}.")
    return float(kendalltau([r[first] for r in ranks], [r[second] for r in ranks])[0])
