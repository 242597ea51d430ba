"""Checks for lesson 2 — the last-layer embedding (notebook 02).

The notebook's exercises: :func:`check_nearest_neighbours` (neighbours in feature space with
NumPy) and :func:`check_knn_accuracy` (the kNN accuracy of whole feature vectors, before any
squeeze to 2-D).
"""
from __future__ import annotations

import numpy as np

from ._base import is_missing, report, solution_text

__all__ = ["check_nearest_neighbours", "check_knn_accuracy"]


def check_nearest_neighbours(answer, features, query: int, k: int) -> bool:
    """Exercise 1: are ``answer`` the indices of the k images closest to image ``query``?"""
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


solution_text("nearest_neighbours", '''
    query, k = 3, 5
    distances = np.linalg.norm(features - features[query], axis=1)   # to every image
    order = np.argsort(distances)                                     # closest first
    my_neighbours = order[order != query][:k]                         # without the query itself
    ch.exercises.check_nearest_neighbours(my_neighbours, features, query, k)
''')


def _knn(vectors, labels, k, leave_out=True, vote=True) -> float:
    """Leave-one-out kNN accuracy by brute force (ties to the smallest label), or variants that
    make a learner's usual slips, for hints."""
    v = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    y = np.asarray(labels).astype(int)
    sq = (v ** 2).sum(1)
    d = sq[:, None] + sq[None] - 2 * v @ v.T
    if leave_out:
        np.fill_diagonal(d, np.inf)
    neighbours = np.argsort(d, axis=1, kind="stable")[:, :k]
    if not vote:
        return float(np.mean(y[neighbours] == y[:, None]))
    guess = np.array([np.bincount(y[row], minlength=y.max() + 1).argmax() for row in neighbours])
    return float(np.mean(guess == y))


def check_knn_accuracy(my_knn_accuracy, features, pixels, labels, k: int = 5) -> bool:
    """Exercise 2: ``my_knn_accuracy(vectors, labels, k)`` -> leave-one-out kNN accuracy.

    Tried on the feature vectors, the raw pixels and a small made-up set, against a brute-force
    computation; right within 0.01 (ties in distance may be broken either way)."""
    if is_missing(my_knn_accuracy) or not callable(my_knn_accuracy):
        return report(False, hint="Pass your function itself: check_knn_accuracy(my_knn_accuracy, ...).")
    rng = np.random.default_rng(0)
    toy_labels = np.repeat(np.arange(3), 20)
    toy = rng.normal(size=(60, 2)) + 1.5 * np.stack([np.cos(toy_labels * 2.1), np.sin(toy_labels * 2.1)], 1)
    n = min(len(features), 300)
    cases = [("the made-up 2-D points", toy, toy_labels),
             ("the features", np.asarray(features)[:n], np.asarray(labels)[:n]),
             ("the pixels", np.asarray(pixels)[:n], np.asarray(labels)[:n])]
    for what, vectors, y in cases:
        try:
            got = my_knn_accuracy(np.array(vectors), np.array(y), k)
        except Exception as err:   # noqa: BLE001 - the learner's code, report any failure
            return report(False, hint=f"Your function raised {type(err).__name__} on {what}: {err}")
        if is_missing(got):
            return report(False, hint="Your function returns nothing yet: fill in its body and "
                                      "return the accuracy.")
        try:
            got = float(got)
        except (TypeError, ValueError):
            return report(False, hint="Return one number: the share of images classified right.")
        if not 0.0 <= got <= 1.0:
            return report(False, hint="An accuracy is a share between 0 and 1.")
        if abs(got - _knn(vectors, y, k)) <= 0.01:
            continue
        if abs(got - _knn(vectors, y, k, leave_out=False)) <= 0.01:
            return report(False, hint=f"On {what}: every image is its own nearest neighbour. Leave "
                                      "it out (set its distance to itself to infinity).")
        if abs(got - _knn(vectors, y, k, vote=False)) <= 0.01:
            return report(False, hint=f"On {what} you return the average share of neighbours with "
                                      "the right class. kNN accuracy asks whether the *majority* "
                                      "of the k neighbours has the right class (np.bincount, argmax).")
        return report(False, hint=f"On {what} the accuracy is off. For each image: distances to all "
                                  "others, the k closest (itself left out), the most common label "
                                  "among them; then the share of images where it is their own.")
    return report(True, right="Right: your kNN accuracy agrees on all three sets. Now compare your "
                              "number for features with the 2-D maps' numbers above, and the one "
                              "for pixels with the pixels map in the layer comparison below.")


solution_text("knn_accuracy", '''
    def my_knn_accuracy(vectors, labels, k=5):
        from scipy.spatial.distance import cdist

        v = vectors.reshape(len(vectors), -1)
        d = cdist(v, v)                                               # distance of every pair
        np.fill_diagonal(d, np.inf)                                   # an image is not its own neighbour
        neighbours = np.argsort(d, axis=1)[:, :k]
        votes = [np.bincount(labels[row]).argmax() for row in neighbours]   # majority label
        return np.mean(np.array(votes) == labels)

    ch.exercises.check_knn_accuracy(my_knn_accuracy, features, pixels, labels)
    print("features:", my_knn_accuracy(features, labels), " pixels:", my_knn_accuracy(pixels, labels))
''')

