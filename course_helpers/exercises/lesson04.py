"""Exercise checks for lessons 3.4-3.5 (notebook 04): occlusion cost and the saliency rule."""
from __future__ import annotations

import numpy as np

from ._base import is_missing, report

__all__ = ["check_occlusion_count", "check_saliency_rule"]


def check_occlusion_count(image_size, patch, stride, count) -> bool:
    """Exercise 3.4: how many occluded copies does ``occlusion_map`` run for a square image
    of side ``image_size``?"""
    if is_missing(count):
        return report(False, hint="Replace ... with a whole number of images.")
    from ..occlusion import occlusion_positions

    right = len(occlusion_positions(int(image_size), int(patch), int(stride))) ** 2
    try:
        given = int(count)
    except (TypeError, ValueError):
        return report(False, hint="Give one whole number.")
    if given == right:
        return report(True, f"Right: {right} forward passes, one per patch position "
                            "(plus one for the unoccluded image).")
    per_axis = int(round(np.sqrt(max(given, 0))))
    if per_axis * per_axis != given:
        return report(False, hint="The positions form a square grid: count positions along one "
                                  "axis, then square it.")
    return report(False, hint="Along one axis the patch's top edge goes 0, stride, 2*stride, ... "
                              "as long as the patch fits, plus one last position flush with the "
                              "border if the steps miss it (see occlusion_positions).")


def check_saliency_rule(reduce) -> bool:
    """Exercise 3.5: a function that turns gradients (H, W, 3) into a saliency map (H, W) by
    the source's rule."""
    if is_missing(reduce) or not callable(reduce):
        return report(False, hint="Write a function, e.g. def my_rule(g): return ..., and pass it.")
    rng = np.random.default_rng(7)
    g = rng.normal(0, 1, (6, 5, 3)).astype(np.float32)
    right = np.abs(g).max(axis=-1)
    try:
        got = reduce(g)
        if is_missing(got):
            return report(False, hint="Your function still returns ...: make it return the map.")
        got = np.asarray(got, dtype=np.float32)
    except Exception as err:  # the learner's code failed: show why, not the answer
        return report(False, hint=f"Your function raised {type(err).__name__}: {err}")
    if got.shape != right.shape:
        return report(False, hint=f"The map should have one value per pixel: shape {right.shape}, "
                                  f"got {got.shape}. Reduce over the last axis (the channels).")
    if np.allclose(got, right, atol=1e-6):
        return report(True, "Right: one value per pixel, the strongest of its three derivatives.")
    if np.allclose(got, g.max(axis=-1), atol=1e-6):
        return report(False, hint="Close, but a large negative derivative matters as much as a "
                                  "large positive one.")
    return report(False, hint="For each pixel, look at its 3 derivatives (R, G, B) and keep the "
                              "largest in size, ignoring the sign.")
