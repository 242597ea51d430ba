"""Checks for notebook 08 (the closing lesson, 黑盒)."""
from __future__ import annotations

import numpy as np

from ._base import call_learner, is_missing, report, solution_text

__all__ = ["check_shortcut_cue", "check_blurred_deletion", "check_signed_data_test"]


def check_shortcut_cue(corner, class_name) -> bool:
    """Exercise 8.1: where is the cue that ``shortcut-cnn`` uses, and which class does it give?

    ``corner``: 'top-left', 'top-right', 'bottom-left' or 'bottom-right'; ``class_name``: one
    of ``ch.data.SHAPE_CLASSES``.
    """
    from ..data import SHAPE_CLASSES
    from ..sanity import CORNERS, SHORTCUT_CLASS

    if is_missing(corner) or is_missing(class_name):
        return report(False, hint="Replace both ... with your answers (two strings).")
    corner = str(corner).strip().lower().replace(" ", "-")
    class_name = str(class_name).strip().lower()
    if corner not in CORNERS:
        return report(False, hint=f"corner must be one of {', '.join(CORNERS)}.")
    if class_name not in SHAPE_CLASSES:
        return report(False, hint=f"class_name must be one of {', '.join(SHAPE_CLASSES)}.")
    good_corner = corner == "top-left"
    good_class = class_name == SHAPE_CLASSES[SHORTCUT_CLASS]
    if good_corner and good_class:
        return report(True, "Right: the maps gave the shortcut away.")
    if good_corner:
        return report(False, hint="Right corner. For the class: on which class's images do the "
                                  "maps light up in that corner?")
    if good_class:
        return report(False, hint="Right class. Now look where the maps of that class are "
                                  "brightest, away from the shape.")
    return report(False, hint="Look at the maps of each class: for one class they light up "
                              "away from the shape, always at the same place.")


solution_text("shortcut_cue", '''
    # In the grid of maps, the ring columns light up in one corner, away from the shape.
    my_corner = "top-left"
    my_class = "ring"
    ch.exercises.check_shortcut_cue(my_corner, my_class)
''')


def check_blurred_deletion(fn, model, image, class_index, saliency, steps: int = 16) -> bool:
    """Exercise 8.2: ``fn(model, image, class_index, saliency, steps)`` returns the deletion
    curve's probabilities (``steps + 1`` values, from no pixel to every pixel deleted) when a
    deleted pixel takes the value of a blurred copy of the image
    (``skimage.filters.gaussian(image, sigma=5, channel_axis=-1)``) instead of black."""
    from ..sanity import deletion_curve, insertion_curve

    got, hint = call_learner(fn, model, image, class_index, saliency, steps, returns="the probabilities")
    if hint:
        return report(False, hint=hint)
    try:
        got = np.asarray(got, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return report(False, hint="Return one probability per step, as a list or an array.")
    if got.shape != (steps + 1,):
        return report(False, hint=f"Expected {steps + 1} probabilities (0 pixels deleted, then "
                                  f"{steps} steps up to all of them); got {got.size}.")

    def same(curve):
        return np.allclose(got, curve.probability, atol=1e-4)

    if same(deletion_curve(model, image, class_index, saliency, steps, baseline="blur")):
        return report(True, "Right: the same curve as ch.sanity.deletion_curve(..., "
                            "baseline='blur'). Compare its area with the black baseline's.")
    if same(deletion_curve(model, image, class_index, saliency, steps, baseline=0.0)):
        return report(False, hint="That is the black baseline of the lesson: replace the deleted "
                                  "pixels by the blurred copy's pixels at the same places.")
    if same(insertion_curve(model, image, class_index, saliency, steps, baseline="blur")):
        return report(False, hint="That curve starts from the blurred image and puts pixels "
                                  "back (insertion). Deletion starts from the image itself.")
    if np.allclose(got[::-1], deletion_curve(model, image, class_index, saliency, steps,
                                             baseline="blur").probability, atol=1e-4):
        return report(False, hint="Your curve runs backwards: start with nothing deleted.")
    return report(False, hint="Not the same curve. Sort the pixels by the map, largest first "
                              "(np.argsort(-saliency.ravel(), kind='stable')), and at each step "
                              "delete round(k / steps * H * W) of them.")


solution_text("blurred_deletion", '''
    from skimage.filters import gaussian

    def my_deletion(model, image, label, saliency, steps=16):
        blurred = gaussian(image, sigma=5, channel_axis=-1)      # detail gone, colours kept
        h, w = saliency.shape
        order = np.argsort(-saliency.ravel(), kind="stable")     # most salient pixel first
        probs = []
        for k in np.round(np.linspace(0, h * w, steps + 1)).astype(int):
            deleted = image.reshape(h * w, 3).copy()
            deleted[order[:k]] = blurred.reshape(h * w, 3)[order[:k]]
            probs.append(float(model(deleted.reshape(1, h, w, 3))[0, label]))
        return probs

    ch.exercises.check_blurred_deletion(my_deletion, model, image, label, smap)
''')


def _signed_maps(model, images, labels):
    from ..saliency import input_gradient

    return input_gradient(model, images, labels).sum(axis=-1)


def check_signed_data_test(fn, model, shuffled, images, labels) -> bool:
    """Exercise 8.3: ``fn(model, shuffled, images, labels)`` returns, for each image, the
    Spearman rank correlation between the two networks' *signed* maps: the gradient of the true
    class's score summed over R, G, B, with no absolute value."""
    from ..sanity import spearman

    got, hint = call_learner(fn, model, shuffled, images, labels, returns="the correlations")
    if hint:
        return report(False, hint=hint)
    try:
        got = np.asarray(got, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return report(False, hint="Return one correlation per image, as a list or an array.")
    if got.shape != (len(images),):
        return report(False, hint=f"Expected {len(images)} correlations (one per image); got "
                                  f"{got.size}.")
    real, rand = _signed_maps(model, images, labels), _signed_maps(shuffled, images, labels)
    want = np.array([spearman(a, b) for a, b in zip(real, rand)])
    if np.allclose(got, want, atol=1e-4):
        return report(True, "Right. Compare their mean with the saliency row of the table, "
                            "which used absolute values.")
    from ..saliency import saliency_maps

    a, b = saliency_maps(model, images, labels), saliency_maps(shuffled, images, labels)
    if np.allclose(got, [spearman(x, y) for x, y in zip(a, b)], atol=1e-4):
        return report(False, hint="Those are the absolute-value saliency maps of the lesson: "
                                  "sum the raw gradient over the colour channels instead.")
    return report(False, hint="Not the same numbers. For each network: "
                              "ch.saliency.input_gradient(network, images, labels) summed over "
                              "the last axis; then ch.sanity.spearman of the two maps, image by "
                              "image.")


solution_text("signed_data_test", '''
    def my_signed_test(model, shuffled, images, labels):
        real = ch.saliency.input_gradient(model, images, labels).sum(axis=-1)     # signed
        rand = ch.saliency.input_gradient(shuffled, images, labels).sum(axis=-1)
        return [ch.sanity.spearman(a, b) for a, b in zip(real, rand)]

    ch.exercises.check_signed_data_test(my_signed_test, model, shuffled, shapes40[0], shapes40[1])
''')
