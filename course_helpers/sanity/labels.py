"""Adebayo et al.'s data randomization test: the same network trained on shuffled labels.

``course-cnn-shuffled`` has ``course-cnn``'s architecture, trained by ``python -m
course_helpers.tools.train --variant shuffled-labels`` on shapes whose labels were permuted by
:func:`shuffle_labels`; it memorized them and knows nothing about shapes.  A map that looks the
same on both models explains the image, not what the model learned.
:func:`data_randomization` compares each method's maps on the two models with Spearman rank
correlation and SSIM (structural similarity, Wang et al. 2004).  Lesson 8.
"""
from __future__ import annotations

import numpy as np

from .. import _checks
from ..models import SHUFFLED_CNN  # noqa: F401  (its files: data/course-cnn-shuffled.*)


def shuffle_labels(labels, seed: int = 0) -> np.ndarray:
    """A random permutation of ``labels`` (same class counts, no link to the images).

    Seeded: the same labels and seed give the same permutation.  Used by the training script.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array of class indices, got shape {labels.shape}.")
    seed = _checks.integer("seed", seed, low=0)
    return np.random.default_rng([int(seed), 17]).permutation(labels)


def load_shuffled_model():
    """``course-cnn-shuffled``: course-cnn's architecture with the shipped shuffled-label weights
    (the same as ``ch.models.load_model("course-cnn-shuffled")``)."""
    from .. import config
    from .. import models as _models

    path = config.data_dir() / f"{SHUFFLED_CNN}.weights.h5"
    if not path.is_file() or not (config.data_dir() / f"{SHUFFLED_CNN}.json").is_file():
        raise FileNotFoundError(f"The shuffled-label model is missing ({path}). Make it with "
                                "`python -m course_helpers.tools.train --variant shuffled-labels`.")
    return _models.load_model(SHUFFLED_CNN)


def ssim(a, b) -> float:
    """Structural similarity of two maps, each first scaled to [0, 1] (1 = identical).

    ``skimage.metrics.structural_similarity`` with ``data_range=1``.  A constant map is
    scaled to zeros.  Lesson 8.
    """
    from skimage.metrics import structural_similarity

    from ..plotting import normalize

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"Expected two 2-D maps of the same shape, got {a.shape} and {b.shape}.")
    return float(structural_similarity(normalize(a), normalize(b), data_range=1.0))


def data_randomization(model, shuffled, images, classes, methods: dict,
                       progress: bool = True) -> dict:
    """Each method's maps on ``model`` and on ``shuffled``, and how alike they are.

    ``methods``: ``{name: f(model, images, classes) -> maps (n, h, w)}``; both models explain
    the same ``classes``.  Returns ``{"maps": {name: (2, n, H, W)}, "spearman": {name: (n,)},
    "ssim": {name: (n,)}}`` (per image; take the mean).  Lesson 8.
    """
    from .metrics import _as_maps
    from .randomization import spearman

    _checks.model(model)
    _checks.model(shuffled)
    batch = _checks.batch_for(model, images)
    n, shape = len(batch), batch.shape[1:3]
    classes = np.array([_checks.check_class(model, c) for c in np.atleast_1d(classes)], int)
    if len(classes) == 1 and n > 1:
        classes = np.repeat(classes, n)
    if len(classes) != n:
        raise ValueError(f"classes lists {len(classes)} classes for {n} images: give one class "
                         "for all of them or one per image.")
    if not methods:
        raise ValueError("Give at least one method: {'name': function(model, images, classes)}.")
    items = list(methods.items())
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="methods", leave=False)
    out = {"maps": {}, "spearman": {}, "ssim": {}}
    for name, fn in items:
        real = _as_maps(fn(model, batch, classes), n, shape)
        rand = _as_maps(fn(shuffled, batch, classes), n, shape)
        out["maps"][name] = np.stack([real, rand])
        out["spearman"][name] = np.array([spearman(a, b) for a, b in zip(real, rand)])
        out["ssim"][name] = np.array([ssim(a, b) for a, b in zip(real, rand)])
    return out
