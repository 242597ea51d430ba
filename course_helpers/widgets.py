"""Shared widget plumbing: a cache for slider-independent work and an ``interact`` helper.

Every lesson's explorer (``ch.filters.kernel_explorer``, ``ch.occlusion.occlusion_explorer`` ...)
is built with :func:`interactive_plot`: a plain drawing function plus controls.  Expensive,
slider-independent results (activations of a layer, features of an image set) go through
:func:`cached`, so that moving a slider only redraws.
"""
from __future__ import annotations

import hashlib
import io
import weakref
from collections import OrderedDict

import numpy as np

_CACHE: "OrderedDict" = OrderedDict()
_CACHE_MAX = 32
_MODEL_IDS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_NEXT_ID = [0]


def model_key(model) -> str:
    """A stable id for a model object, valid while it lives (ids of freed objects are not
    reused): ``"model#3"``, a string so it is never mistaken for a channel or class number."""
    try:
        return _MODEL_IDS[model]
    except KeyError:
        _NEXT_ID[0] += 1
        _MODEL_IDS[model] = f"model#{_NEXT_ID[0]}"
        return _MODEL_IDS[model]
    except TypeError:
        return f"model@{id(model)}"


#: :func:`array_key` hashes this many leading bytes exactly (blake2b), the rest by blocks.
_KEY_HEAD = 1 << 20
_KEY_BLOCK = 4096            # uint64 words (32 KB) per block sum


def array_key(arr) -> str:
    """A short content hash of an array, cheap next to any network pass (about 10 ms for 200
    photos of 224 px, 120 MB).

    blake2b of the shape, the dtype, the first MB of bytes, and the sums (modulo 2**64) of the
    8-byte words in each 32 KB block of the rest: changing any value of the array changes the
    key (only a reordering of whole words inside one such block could keep it; the last part
    block is hashed exactly), so a photo
    set edited after its first photos never reuses a cached result.
    """
    a = np.ascontiguousarray(arr)
    raw = a.reshape(-1).view(np.uint8)
    h = hashlib.blake2b(str((a.shape, a.dtype)).encode(), digest_size=12)
    h.update(raw[:_KEY_HEAD])
    rest = raw[_KEY_HEAD:]
    whole = len(rest) // (8 * _KEY_BLOCK) * (8 * _KEY_BLOCK)
    if whole:
        words = rest[:whole].view(np.uint64).reshape(-1, _KEY_BLOCK)
        h.update(words.sum(axis=1, dtype=np.uint64))
    h.update(rest[whole:])        # the last part block, exactly
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


def forget_model(model) -> None:
    """Drop every cached result computed with ``model`` (after changing its weights in place,
    e.g. lesson 8's randomization)."""
    mk = model_key(model)
    for key in [k for k in _CACHE if isinstance(k, tuple) and mk in k]:
        del _CACHE[key]


def clear_cache() -> None:
    """Forget every cached result (e.g. after retraining a model in place)."""
    _CACHE.clear()


class LiveFigure:
    """A figure built once whose changing parts are redrawn in place (blitting).

    An explorer builds its figure (axes, titles, colour bars, layout) on the first draw and
    marks the artists that change with the controls (images, titles, dots) as ``dynamic``.
    The rest is drawn once into a background; :meth:`png` restores that background and draws
    only the dynamic artists, then encodes the picture.  That keeps a redraw from cache
    well under 100 ms where building a new figure with ``plt.subplots`` + ``tight_layout`` +
    rendering took 150-400 ms.  Used by every lesson's explorer.
    """

    def __init__(self, figure, dynamic=()):
        import matplotlib.pyplot as plt
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        plt.close(figure)  # not pyplot's: the inline backend must not show it a second time
        FigureCanvasAgg(figure)
        self.figure = figure
        self.dynamic = []
        self._background = None
        self.add(*dynamic)

    def add(self, *artists):
        """Mark more artists as changing: they are drawn on top of the background each time."""
        for artist in artists:
            artist.set_animated(True)
            self.dynamic.append(artist)
        self._background = None

    def png(self) -> bytes:
        """The current picture as PNG bytes (fast zlib level: it is sent, not stored)."""
        from PIL import Image

        fig = self.figure
        canvas = fig.canvas
        # an image of another aspect ratio moves its axes' box (aspect "equal"); the saved
        # background and the titles' places would be stale then, so draw everything anew
        for ax in {getattr(a, "axes", None) for a in self.dynamic} - {None}:
            before = ax.get_position().bounds
            ax.apply_aspect()
            if ax.get_position().bounds != before:
                self._background = None
        if self._background is None:
            canvas.draw()  # everything except the dynamic artists
            self._background = canvas.copy_from_bbox(fig.bbox)
        else:
            canvas.restore_region(self._background)
        for artist in self.dynamic:
            if artist.get_visible() and artist.figure is fig:
                fig.draw_artist(artist)
        buf = io.BytesIO()
        Image.fromarray(np.asarray(canvas.buffer_rgba())).save(buf, format="png", compress_level=1)
        return buf.getvalue()


class FigureView:
    """An explorer's figure, built on first use by ``build() -> (figure, parts)``.

    ``parts`` is a dict of the artists that change (single artists or lists of them); they
    become the dynamic artists of the :class:`LiveFigure`.  ``view.parts`` to update them,
    ``view.live`` to return from an explorer's draw function.  Every lesson's explorer.
    """

    def __init__(self, build):
        self._build = build
        self._live = None
        self._parts = None

    def _ensure(self):
        if self._live is None:
            figure, parts = self._build()
            dynamic = []
            for value in parts.values():
                dynamic.extend(value if isinstance(value, (list, tuple)) else [value])
            self._parts = parts
            self._live = LiveFigure(figure, dynamic)

    @property
    def parts(self) -> dict:
        self._ensure()
        return self._parts

    @property
    def live(self) -> "LiveFigure":
        self._ensure()
        return self._live


def interactive_plot(draw, **controls):
    """Show ``draw(**values)`` with one control per keyword, redrawn when a control moves.

    ``draw`` returns a :class:`LiveFigure` (an explorer that updates one figure in place) or a
    plain matplotlib figure (built anew each time).  The explorer renders it to a PNG itself,
    so the time of a redraw is the time of the callback.  ``controls`` take ipywidgets
    abbreviations (a list for a dropdown, ``(lo, hi, step)`` for a slider) or widgets.
    Returns the ``ipywidgets.interactive`` box; ``box.state['figure']`` holds the figure of the
    latest draw and ``box.state['png']`` its picture, for tests.  Used by every lesson's explorer.
    """
    from IPython.display import Image, display

    state = {"figure": None, "live": None, "values": None, "png": None}

    def _update(**values):
        result = draw(**values)
        live = result if isinstance(result, LiveFigure) else LiveFigure(result)
        state["png"] = live.png()
        state["figure"], state["live"] = live.figure, live
        state["values"] = values
        display(Image(data=state["png"], format="png"))

    box = _explorer_class()(_update, **controls)  # draws once here
    box.state = state
    for child in box.children:
        if hasattr(child, "continuous_update"):
            child.continuous_update = False
    display(box)
    return box


_EXPLORER = []


def explorer_caption(box) -> str:
    """One line naming an explorer's controls: the caption of its picture in a lecture deck."""
    names = [getattr(w, "description", "") or "" for w in getattr(box, "kwargs_widgets", [])]
    names = [n for n in names if n]
    if not names:
        return "Explorer: run the notebook to move its controls."
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Explorer: in the notebook, change {listed} to redraw."


def static_bundle(box, bundle):
    """An explorer's display: the live widget plus its first picture as ``image/png`` (what a page
    without a kernel shows, e.g. a deck of ``make slides``) and the caption in the metadata."""
    import base64

    data = dict(bundle or {})
    png = getattr(box, "state", {}).get("png")
    if png:
        data["image/png"] = base64.b64encode(png).decode("ascii")
    return data, {"course_explorer": {"caption": explorer_caption(box)}}


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

                data, metadata = static_bundle(self, self._repr_mimebundle_(**kwargs))
                display(data, raw=True, metadata=metadata)

        _EXPLORER.append(Explorer)
    return _EXPLORER[0]
