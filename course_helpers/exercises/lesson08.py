"""Checks for notebook 08 (the closing lesson, 黑盒)."""
from __future__ import annotations

from ._base import is_missing, report

__all__ = ["check_shortcut_cue"]


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
