"""The lessons' ImageNet parts: is everything there, and how well does the model do on the photos?

Each lesson ends with a section that runs on an ImageNet model (VGG16 or ResNet50) and the
photo set (Imagenette's validation photos, ``ch.data.photo_set``).  Neither ships with the
course and no lesson downloads them by itself, so the section starts with one switch and one
guard::

    IMAGENET_MODEL = "vgg16"                  # or "resnet50": the section's one switch
    ready = ch.imagenet.ready(IMAGENET_MODEL)  # False, with a notice saying what is missing

and every later cell of the section starts with ``if ready:``.  Offline nothing else happens:
the lessons' shapes and the shipped photos need no download.
"""
from __future__ import annotations

import numpy as np

from . import _checks
from . import data as _data
from . import models as _models

#: The models an ImageNet part can switch between.
MODELS = ("vgg16", "resnet50")


def missing(model_name: str = "vgg16", photos: bool = True) -> list:
    """What an ImageNet part still needs, as ``[(what, command that fetches it)]``: the model's
    ImageNet weights (not in the Keras cache) and, with ``photos=True``, the photo set.  Empty
    when everything is there.  Touches no network."""
    name = _checks.choice("model_name", model_name, MODELS)
    needed = []
    if not _models.vgg_weights_available(name):
        needed.append((f"the ImageNet weights of {name} (in the Keras cache, {_models.keras_cache_dir()})",
                       f"python -m course_helpers.models --fetch {name}"))
    if photos and not _data.photo_set_available():
        needed.append(("the photo set (Imagenette's validation photos, about 99 MB)",
                       "python -m course_helpers.data --fetch photos"))
    return needed


def ready(model_name: str = "vgg16", photos: bool = True) -> bool:
    """True when an ImageNet part can run: the weights of ``model_name`` ('vgg16' or
    'resnet50') are cached and, with ``photos=True``, so is the photo set.  Otherwise prints a
    notice naming what is missing and the command that fetches it (where there is internet;
    Binder fetches both when it builds), and returns False.  Lessons 01-05, 07, 08 (ImageNet
    parts)."""
    needed = missing(model_name, photos)
    if not needed:
        return True
    lines = ["NOTICE: this section is skipped, because it needs " +
             " and ".join(what for what, _ in needed) + ", and lessons never download by "
             "themselves.", "With internet, fetch them once in a terminal (or with ! in a cell), "
             "then rerun the section:"]
    lines += [f"    {command}" for _, command in needed]
    lines.append("Everything before this section works offline.")
    print("\n".join(lines))
    return False


def predict(model, images, batch_size: int = 4) -> np.ndarray:
    """The model's class probabilities for ``images``, (n, classes), in batches of
    ``batch_size`` (VGG16 at 224 px holds tens of MB of activations per photo in a batch:
    four at a time are as fast per photo as more, and fit in Binder's memory)."""
    model = _checks.model(model)
    batch_size = _checks.integer("batch_size", batch_size, low=1)
    batch = _checks.batch_for(model, images)
    out = [np.asarray(model(batch[s:s + batch_size], training=False))
           for s in range(0, len(batch), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


def accuracy(model, images, imagenet_labels, k: int = 1, probabilities=None) -> float:
    """The share of ``images`` whose ImageNet class (``imagenet_labels``, e.g.
    ``ch.data.photo_set(...).imagenet``) is among the model's top ``k`` predictions: top-1
    accuracy for ``k=1``.  ``probabilities`` (from :func:`predict`) skips the network.
    Lesson 04 (ImageNet part)."""
    k = _checks.integer("k", k, low=1)
    labels = np.asarray(imagenet_labels)
    probs = predict(model, images) if probabilities is None else np.asarray(probabilities)
    if labels.ndim != 1 or len(labels) != len(probs):
        raise ValueError(f"imagenet_labels has shape {labels.shape}, but there are {len(probs)} "
                         "images: give one ImageNet class index per image (photo_set(...).imagenet).")
    if len(labels) == 0:
        raise ValueError("images is empty: give at least one photo.")
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))
