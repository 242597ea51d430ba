"""Checks for lesson 2 — the last-layer embedding (notebook 02)."""
from __future__ import annotations

import numpy as np

from ._base import is_missing, report

__all__ = ["check_nearest_neighbours", "check_best_layer"]


def check_nearest_neighbours(answer, features, query: int, k: int) -> bool:
    """Are ``answer`` the indices of the k images closest to image ``query`` in ``features``?"""
    if is_missing(answer):
        return report(False, hint="Replace ... with your array of k indices.")
    try:
        got = [int(i) for i in np.asarray(answer).ravel()]
    except (TypeError, ValueError):
        return report(False, hint="Answer with an array or list of integer indices.")
    if len(got) != k:
        return report(False, hint=f"Expected {k} indices, got {len(got)}.")
    if int(query) in got:
        return report(False, hint="The query is its own nearest neighbour (distance 0): leave it out.")
    from ..embedding import nearest_neighbours

    right = nearest_neighbours(features, query, k)
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    d = np.sqrt(((f - f[query]) ** 2).sum(1))
    same = set(got) == set(int(i) for i in right) or np.allclose(np.sort(d[got]), np.sort(d[right]))
    return report(same, right="Right: these are the k closest images by Euclidean distance.",
                  hint="Compute the distance from features[query] to every row (np.linalg.norm with "
                       "axis=1), sort with np.argsort, and skip the query itself.")


def check_best_layer(answer, results: dict) -> bool:
    """Which layer's 2-D map separates the classes best (``results`` from compare_layers)?"""
    if is_missing(answer):
        return report(False, hint="Replace ... with a layer name.")
    if answer not in results:
        return report(False, hint=f"Answer with one of the compared layers: {', '.join(results)}.")
    best = max(results, key=lambda name: results[name]["knn_accuracy"])
    return report(answer == best,
                  right="Right: the deeper the layer, the more its features are about the class.",
                  hint="Compare the kNN accuracies in the titles of the maps: higher means the "
                       "classes separate better.")
