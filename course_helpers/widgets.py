"""Shared widget plumbing: a cache for slider-independent work and an ``interact`` helper.

Every lesson's explorer (``ch.filters.kernel_explorer``, ``ch.occlusion.occlusion_explorer`` ...)
is built with :func:`interactive_plot`: a plain drawing function plus controls.  Expensive,
slider-independent results (activations of a layer, features of an image set) go through
:func:`cached`, so that moving a slider only redraws.
"""
from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict

import numpy as np

_CACHE: "OrderedDict" = OrderedDict()
_CACHE_MAX = 32
_MODEL_IDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_NEXT_ID = [0]


def model_key(model) -> int:
    """A stable id for a model object, valid while it lives (ids of freed objects are not reused)."""
    try:
        return _MODEL_IDS[model]
    except KeyError:
        _NEXT_ID[0] += 1
        _MODEL_IDS[model] = _NEXT_ID[0]
        return _NEXT_ID[0]
    except TypeError:
        return id(model)


def array_key(arr) -> str:
    """A short content hash of an array (cheap next to any network pass)."""
    a = np.ascontiguousarray(arr)
    h = hashlib.blake2b(a.view(np.uint8).reshape(-1)[: 1 << 24].tobytes(), digest_size=12)
    h.update(str((a.shape, a.dtype)).encode())
    return h.hexdigest()


def cached(key, compute):
    """Return ``compute()``, remembered under ``key`` (a tuple).  Used by every explorer.

    Keys usually hold :func:`model_key` of the model, a layer name and :func:`array_key` of
    the images, so the same request never reruns the network.
    """
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = compute()
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_MAX:
        _CACHE.popitem(last=False)
    return value


def cache_info() -> dict:
    """How many results are cached (tests use it to prove a slider move computed nothing)."""
    return {"entries": len(_CACHE), "keys": list(_CACHE)}


def clear_cache() -> None:
    """Forget every cached result (e.g. after retraining a model in place)."""
    _CACHE.clear()


def interactive_plot(draw, **controls):
    """Show ``draw(**values)`` with one control per keyword, redrawn when a control moves.

    ``controls`` take ipywidgets abbreviations (a list for a dropdown, ``(lo, hi, step)`` for a
    slider) or widgets.  Returns the ``ipywidgets.interactive`` box; ``box.state['figure']``
    holds the figure of the latest draw, for tests.  Used by every lesson's explorer.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    state = {"figure": None, "values": None}

    def _update(**values):
        if state["figure"] is not None:  # the previous drawing was shown already
            plt.close(state["figure"])
        state["figure"] = draw(**values)
        state["values"] = values

    box = _explorer_class()(_update, **controls)  # draws once here
    box.state = state
    for child in box.children:
        if hasattr(child, "continuous_update"):
            child.continuous_update = False
    display(box)
    return box


_EXPLORER = []


def _explorer_class():
    """An ``interactive`` that shows itself once: the explorer displays itself, and returning it
    as a cell's last value must not draw a second copy (an ``Out[n]`` duplicate)."""
    if not _EXPLORER:
        import ipywidgets as w

        class Explorer(w.interactive):
            _course_shown = False

            def _ipython_display_(self, **kwargs):
                if self._course_shown:
                    return
                self._course_shown = True
                from IPython.display import display

                display(self._repr_mimebundle_(**kwargs), raw=True)

        _EXPLORER.append(Explorer)
    return _EXPLORER[0]
