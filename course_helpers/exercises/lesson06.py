"""Checks for lesson 4.1 — style transfer (notebook 06)."""
from __future__ import annotations

import numpy as np

from ._base import is_missing, report

__all__ = ["check_gram", "check_faster_start", "check_gram_forgets_position"]


def _reference_gram(f):
    h, w, c = f.shape
    flat = f.reshape(h * w, c).astype(np.float64)
    return flat.T @ flat / (h * w)


def check_gram(my_gram) -> bool:
    """Exercise 1: ``my_gram(features)`` takes one (H, W, C) array and returns its (C, C) Gram
    matrix, averaged over the H*W positions."""
    if is_missing(my_gram) or not callable(my_gram):
        return report(False, hint="Define a function my_gram(features) that returns a (C, C) array.")
    rng = np.random.default_rng(6)
    for shape in ((5, 7, 3), (4, 4, 8), (1, 9, 2)):
        f = rng.normal(size=shape).astype(np.float32)
        try:
            got = np.asarray(my_gram(f), dtype=np.float64)
        except Exception as err:  # the learner's code may fail in any way
            return report(False, hint=f"Your function raised {type(err).__name__}: {err}")
        want = _reference_gram(f)
        if got.shape != want.shape:
            return report(False, hint=f"For features of shape {shape} the Gram matrix should be "
                                      f"C x C = {want.shape}, yours is {got.shape}. Flatten the "
                                      "positions first: (H*W, C).")
        if np.allclose(got, want * shape[0] * shape[1], rtol=1e-4, atol=1e-4):
            return report(False, hint="Almost: the course's Gram matrix is an average over "
                                      "positions, not a sum. Divide by the number of positions.")
        if not np.allclose(got, want, rtol=1e-4, atol=1e-4):
            return report(False, hint="The values differ. Each entry (c, d) should be the mean, "
                                      "over positions, of channel c times channel d.")
    return report(True, "Right! Your Gram matrix matches ch.style.gram_matrix.")


def check_faster_start(answer) -> bool:
    """Exercise 2: which start, 'noise' or 'content', reaches a low total loss in fewer steps?"""
    if is_missing(answer):
        return report(False, hint="Answer 'noise' or 'content'.")
    if str(answer).strip().lower() not in ("noise", "content"):
        return report(False, hint="Answer with one of the two words: 'noise' or 'content'.")
    ok = str(answer).strip().lower() == "content"
    return report(ok, "Right: the photo already has the right content, so only the style has to "
                      "move; from noise both must be built.",
                  "Look again at the two curves: which one is lower after the first 20 steps?")


def check_gram_forgets_position(answer) -> bool:
    """Exercise 3: does shuffling an image's pixel positions (the same shuffle for every
    channel of a feature map) change its Gram matrix?  Answer True or False."""
    if is_missing(answer) or not isinstance(answer, (bool, np.bool_)):
        return report(False, hint="Answer True (it changes) or False (it stays the same).")
    return report(not bool(answer),
                  "Right: the Gram matrix sums over positions, so it keeps which features occur "
                  "together and forgets where. That is why it describes style, not content.",
                  "Write the Gram matrix as a sum over positions. Does the order of the terms "
                  "of a sum matter?")
