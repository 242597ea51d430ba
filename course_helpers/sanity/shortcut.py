"""A network that learned the wrong thing: shortcut learning (Geirhos et al. 2020).  Lesson 8.

:func:`add_shortcut_mark` puts a small mark in a corner of every image of one class;
``shortcut-cnn`` is trained on such data by ``python -m course_helpers.tools.train --variant
shortcut``, and :func:`shortcut_report` shows what it learned.
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from .. import data as _data
from ..config import EVAL_SEED
from ..data import SHAPE_CLASSES

#: The class whose training images carry the mark (``ring``: it looks much like ``circle``).
SHORTCUT_CLASS = SHAPE_CLASSES.index("ring")
#: The mark: a 5x5 magenta square, 2 pixels from the top-left corner.
MARK_SIZE = 5
MARK_MARGIN = 2
MARK_COLOUR = (1.0, 0.0, 1.0)
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def _mark_slices(height, width, size, corner, margin):
    if corner not in CORNERS:
        raise ValueError(f"corner must be one of {CORNERS}, got {corner!r}.")
    if size < 1 or margin < 0 or size + margin > min(height, width):
        raise ValueError(f"A mark of size {size} at margin {margin} does not fit a "
                         f"{height}x{width} image.")
    top = margin if corner.startswith("top") else height - margin - size
    left = margin if corner.endswith("left") else width - margin - size
    return slice(top, top + size), slice(left, left + size)


def shortcut_mask(shape=(64, 64), size: int = MARK_SIZE, corner: str = "top-left",
                  margin: int = MARK_MARGIN) -> np.ndarray:
    """Boolean (H, W) mask of the mark's pixels (for the pointing game on the mark).  Lesson 8."""
    h, w = (int(s) for s in tuple(shape)[:2])
    mask = np.zeros((h, w), bool)
    mask[_mark_slices(h, w, int(size), corner, int(margin))] = True
    return mask


def add_shortcut_mark(images, labels, cue_class: int = SHORTCUT_CLASS, on=None,
                      size: int = MARK_SIZE, corner: str = "top-left", margin: int = MARK_MARGIN,
                      colour=MARK_COLOUR) -> np.ndarray:
    """A copy of ``images`` with a small square in a corner of the images of some classes.

    By default the mark goes on every image whose label is ``cue_class`` (how ``shortcut-cnn``
    is trained).  ``on`` picks other images: a class index or a list of them, ``"others"``
    (every class but ``cue_class``: the mark *moved*), ``"all"`` or ``"none"``.
    Deterministic; the input is not changed.  Used by ``course_helpers.tools.train`` and lesson 8.
    """
    imgs = np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[-1] != 3:
        raise ValueError(f"Expected a batch of RGB images (n, H, W, 3), got shape {imgs.shape}.")
    if not np.issubdtype(imgs.dtype, np.floating):
        raise TypeError(f"Expected float images in [0, 1], got dtype {imgs.dtype}; convert with "
                        "ch.data.load_image.")
    labels = np.asarray(labels)
    if labels.shape != (len(imgs),):
        raise ValueError(f"Expected one label per image: {len(imgs)} images, labels of shape "
                         f"{labels.shape}.")
    n_classes = len(SHAPE_CLASSES)
    cue_class = _checks.check_index(cue_class, n_classes, "cue_class",
                                    f"The shapes have {n_classes} classes: {', '.join(SHAPE_CLASSES)}.")
    if on is None:
        classes = [int(cue_class)]
    elif isinstance(on, str):
        table = {"others": [c for c in range(n_classes) if c != cue_class],
                 "all": list(range(n_classes)), "none": []}
        if on not in table:
            raise ValueError(f"on must be a class, a list of classes, 'others', 'all' or 'none'; "
                             f"got {on!r}.")
        classes = table[on]
    else:
        classes = [int(c) for c in np.atleast_1d(on)]
        if any(not 0 <= c < n_classes for c in classes):
            raise ValueError(f"on lists classes outside 0..{n_classes - 1}: {classes}.")
    rows, cols = _mark_slices(imgs.shape[1], imgs.shape[2], int(size), corner, int(margin))
    out = imgs.copy()
    pick = np.isin(labels, classes)
    out[pick, rows, cols, :] = np.asarray(colour, dtype=out.dtype)
    return out


def shortcut_test_sets(n: int = 600, seed: int | None = None, size: int = 64) -> dict:
    """Fresh shapes in three versions: the mark on its class (as in training), no mark, and
    the mark moved to every other class.  ``{name: (images, labels)}``.  Lesson 8.
    """
    x, y, _ = _data.make_shapes(int(n), seed=EVAL_SEED if seed is None else seed, size=size)
    return {
        "mark on its class (as in training)": (add_shortcut_mark(x, y), y),
        "no mark": (x, y),
        "mark moved to the other classes": (add_shortcut_mark(x, y, on="others"), y),
    }


def shortcut_report(model, n: int = 600, seed: int | None = None) -> dict:
    """Accuracy of ``model`` on each of :func:`shortcut_test_sets`, and how often a marked image
    of another class is called ``ring``.  Lesson 8.
    """
    _checks.model(model)
    sets = shortcut_test_sets(n, seed, size=int(model.inputs[0].shape[1]))
    out = {}
    for name, (x, y) in sets.items():
        pred = model.predict(x, batch_size=256, verbose=0).argmax(-1)
        out[name] = float((pred == y).mean())
        if name.startswith("mark moved"):
            others = y != SHORTCUT_CLASS
            out["marked non-ring images called ring"] = float((pred[others] == SHORTCUT_CLASS).mean())
    return out



def cue_recovery(model, methods: dict, n: int = 60, seed: int | None = None,
                 tolerance: int = 1, per_image: bool = False) -> dict:
    """How often each method's peak lands on the planted mark (a "cue recovery" score).

    The images: fresh ``ring`` shapes with the mark in its place (as in training), each map
    explaining ``ring``.  A hit is the pointing game's (``ch.sanity.pointing_game``) on the
    mark's pixels grown by ``tolerance``.  ``methods``: ``{name: f(model, images, classes) ->
    maps}``.  Returns ``{name: hit rate}`` (or the hits per image with ``per_image``).  On
    ``shortcut-cnn`` the mark is what the network uses, so a faithful method should find it.
    Lesson 8.
    """
    from .metrics import _as_maps, pointing_game

    _checks.model(model)
    n = _checks.integer("n", n, low=1)
    size = int(model.inputs[0].shape[1])
    x, y, _ = _data.make_shapes(n, seed=EVAL_SEED if seed is None else seed, size=size,
                                classes=[SHORTCUT_CLASS])
    x = add_shortcut_mark(x, y)
    masks = np.repeat(shortcut_mask((size, size))[None], n, axis=0)
    out = {}
    for name, fn in methods.items():
        maps = _as_maps(fn(model, x, y), n, (size, size))
        out[name] = pointing_game(maps, masks, tolerance=tolerance, per_image=per_image)
    return out
