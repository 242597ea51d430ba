"""Checks for lesson 1 — first-layer filters (notebook 01).

The notebook's exercises: :func:`check_most_alike` (which two kernels are most alike, up to
scale) and :func:`check_orientation` (a kernel's orientation from its gradients).
"""
from __future__ import annotations

import numbers

import numpy as np

from ._base import is_missing, report, solution_text

__all__ = ["check_most_alike", "check_orientation"]


def _kernels(model) -> np.ndarray:
    from ..filters import rgb_filters

    return rgb_filters(model).astype(np.float64)          # (k, k, 3, n)


def _cosines(kernels) -> np.ndarray:
    flat = kernels.reshape(-1, kernels.shape[-1]).T     # one row per kernel
    unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    return unit @ unit.T


def _best_pair(matrix, largest=True) -> set:
    m = np.array(matrix, dtype=np.float64)
    np.fill_diagonal(m, -np.inf if largest else np.inf)
    i, j = np.unravel_index(np.argmax(m) if largest else np.argmin(m), m.shape)
    return {int(i), int(j)}


def check_most_alike(model, pair) -> bool:
    """Exercise 1: the two different first-layer kernels with the largest cosine similarity."""
    if is_missing(pair):
        return report(False, hint="Replace ... with a pair of kernel numbers, e.g. (3, 7).")
    try:
        given = [int(v) for v in np.asarray(pair).ravel()]
    except (TypeError, ValueError):
        return report(False, hint="Answer with two whole numbers, e.g. (3, 7).")
    k = _kernels(model)
    n = k.shape[-1]
    if len(given) != 2 or not all(0 <= v < n for v in given):
        return report(False, hint=f"Give two kernel numbers between 0 and {n - 1}.")
    if given[0] == given[1]:
        return report(False, hint="Every kernel is perfectly alike to itself: leave out the "
                                  "diagonal of the similarity matrix (np.fill_diagonal).")
    cos = _cosines(k)
    if set(given) == _best_pair(cos):
        return report(True, right="Right: after dividing out each kernel's size, these two "
                                  "point in the most similar direction.")
    flat = k.reshape(-1, n).T
    dist = np.linalg.norm(flat[:, None] - flat[None], axis=-1)
    if set(given) == _best_pair(-dist):
        return report(False, hint="That pair is closest by Euclidean distance, which also compares "
                                  "the kernels' sizes. Divide each flattened kernel by its norm first.")
    if set(given) == _best_pair(cos, largest=False):
        return report(False, hint="That pair is the most *opposite* (cosine near -1). You want the "
                                  "largest cosine, not the smallest.")
    if set(given) == _best_pair(np.abs(cos)):
        return report(False, hint="You took |cosine|: a kernel and its negative are opposites "
                                  "here, not alike. Use the signed cosine.")
    return report(False, hint="Flatten each kernel to one vector (w.reshape(-1, n).T), divide "
                              "each row by its norm, take the matrix of dot products and its "
                              "largest entry off the diagonal.")


solution_text("most_alike", '''
    w = model.get_layer("conv1").get_weights()[0]      # (7, 7, 3, 16)
    flat = w.reshape(-1, w.shape[-1]).T                 # (16, 147): one row per kernel
    unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    cos = unit @ unit.T                                 # cosine similarity of every pair
    np.fill_diagonal(cos, -np.inf)                      # a kernel with itself does not count
    my_pair = tuple(int(i) for i in np.unravel_index(np.argmax(cos), cos.shape))
    ch.exercises.check_most_alike(model, my_pair)
''')


# --------------------------------------------------------------------------- orientation
def _orientation(kernel) -> tuple:
    """(angle in degrees in [0, 180), coherence in [0, 1]) from the summed structure tensor."""
    k = np.asarray(kernel, dtype=np.float64)
    k = k[..., None] if k.ndim == 2 else k
    gy, gx = np.gradient(k, axis=(0, 1))
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    angle = np.degrees(0.5 * np.arctan2(2 * jxy, jxx - jyy)) % 180.0
    coherence = np.hypot(jxx - jyy, 2 * jxy) / max(jxx + jyy, 1e-20)
    return float(angle), float(coherence)


def _ramp(angle_deg: float, size: int = 7) -> np.ndarray:
    """An RGB kernel that brightens steadily in direction ``angle_deg`` (from right towards down)."""
    t = np.radians(angle_deg)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    ramp = np.cos(t) * x + np.sin(t) * y
    return np.stack([ramp, 0.5 * ramp, -ramp], axis=-1)


def _gap(a: float, b: float) -> float:
    """Distance between two orientations (degrees, modulo 180)."""
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def check_orientation(my_orientation, model) -> bool:
    """Exercise 2: ``my_orientation(kernel)`` -> the direction (degrees, [0, 180)) in which a
    (k, k, 3) kernel changes most, measured from 'right' towards 'down'."""
    if is_missing(my_orientation) or not callable(my_orientation):
        return report(False, hint="Pass your function itself: check_orientation(my_orientation, model).")
    cases = [(f"a ramp brightening towards {a} degrees", _ramp(a), a, 3.0) for a in (0, 30, 90, 135)]
    kernels = _kernels(model)
    for i in range(kernels.shape[-1]):
        angle, coherence = _orientation(kernels[..., i])
        if coherence > 0.3:        # only kernels with a clear direction
            cases.append((f"kernel {i}", kernels[..., i], angle, 10.0))
    for what, kernel, right, tolerance in cases:
        try:
            got = my_orientation(kernel.copy())
        except Exception as err:   # noqa: BLE001 - the learner's code, report any failure
            return report(False, hint=f"Your function raised {type(err).__name__}: {err}")
        if is_missing(got):
            return report(False, hint="Your function returns nothing yet: fill in its body and "
                                      "return the angle in degrees.")
        if isinstance(got, bool) or not isinstance(got, (numbers.Number, np.number)) \
                or not np.isfinite(float(got)):
            return report(False, hint="Return one number: the angle in degrees.")
        got = float(got)
        if _gap(got, right) <= tolerance:
            continue
        if abs(got) <= np.pi + 1e-9 and _gap(np.degrees(got), right) <= tolerance:
            return report(False, hint="That looks like radians: return degrees (np.degrees).")
        if _gap(got, right + 90) <= tolerance:
            return report(False, hint=f"On {what} you are 90 degrees off: that is the direction "
                                      "*along* the edge, or gx and gy are swapped (np.gradient "
                                      "returns the derivative along rows, i.e. y, first).")
        if _gap(got, -right) <= tolerance:
            return report(False, hint=f"On {what} your angle is mirrored: rows grow downwards, so "
                                      "measure from 'right' towards 'down' and keep gy's sign.")
        return report(False, hint=f"On {what} your angle is off. Sum gx*gx, gy*gy and gx*gy over all "
                                  "pixels and channels; the angle is 0.5 * arctan2(2 Jxy, Jxx - Jyy).")
    return report(True, right="Right: your function finds the direction each kernel changes in "
                              "most. Compare it with the kernels' pictures above.")


solution_text("orientation", '''
    def my_orientation(kernel):
        gy, gx = np.gradient(kernel, axis=(0, 1))      # change along rows (down), columns (right)
        jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()   # all pixels, R, G, B
        return np.degrees(0.5 * np.arctan2(2 * jxy, jxx - jyy)) % 180

    ch.exercises.check_orientation(my_orientation, model)
''')

