"""Facts about a model object (its class names, its course name, cached views), kept outside
the Keras object so that Keras does not track them as parts of the model.

Written by ``ch.models`` (which tags the models it builds) and read by ``ch.models`` and
``ch._checks`` (class names for :func:`course_helpers._checks.check_class`).
"""
from __future__ import annotations

import weakref

INFO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def tag(model, **facts):
    """Record ``facts`` about ``model``; returns the model."""
    INFO.setdefault(model, {}).update(facts)
    return model


def info(model, key, default=None):
    """One recorded fact about ``model`` (``default`` if none)."""
    try:
        return INFO.get(model, {}).get(key, default)
    except TypeError:
        return default


def class_names(model) -> list:
    """The class labels recorded for ``model``, else ``class 0``, ``class 1``, ..."""
    names = info(model, "class_names")
    if names is None:
        return [f"class {i}" for i in range(int(model.output_shape[-1]))]
    return list(names)
