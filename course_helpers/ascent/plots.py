"""Plots and the explorer widget of lesson 3.6 (notebook 05)."""
from __future__ import annotations

import numpy as np

from .. import _checks, graph
from .. import models as _models
from .. import plotting as _plotting
from .loop import DEFAULTS, visualize_class, visualize_filter
from .objectives import channel, class_score, neuron
from .rendering import RENDER_DEFAULTS, render
from .regularizers import high_frequency_share


def _show(img):
    return np.clip(img, 0, 1)


def plot_frames(frames, scores, title="The source's algorithm, step by step"):
    """The first frames of plain ascent, each titled with its step and score.  Lesson 3.6.

    Frames are stretched to [0, 1] one by one (the raw ascent leaves the pixel range), so the
    faint first steps are visible.
    """
    tiles = [_plotting.normalize(f) for f in frames]
    titles = [f"step {i}\nscore {s:.1f}" for i, s in enumerate(scores)]
    return _plotting.image_grid(tiles, titles, ncols=len(tiles), size=1.5, suptitle=title)


def plot_ablation(results, title=None):
    """One panel per stage of :func:`ablation`: image, final score, high-frequency share."""
    imgs = [_plotting.normalize(r.image) if i == 0 else _show(r.image)
            for i, (_, r) in enumerate(results)]
    titles = [f"{label}\nscore {r.score:.1f} · HF {high_frequency_share(r.image):.2f}"
              for label, r in results]
    return _plotting.image_grid(imgs, titles, ncols=len(imgs), size=1.9, suptitle=title)


def class_models(model, classes=None, **kwargs):
    """Class model images for ``classes`` (default: all).  Returns (images, histories)."""
    model = _checks.model(model)
    names = _models.class_names(model)
    classes = range(len(names)) if classes is None else classes
    images, hists = [], []
    for c in classes:
        res = visualize_class(model, c, **kwargs)
        images.append(res.image)
        hists.append(res.history)
    return images, hists


def plot_class_models(model, images, histories, classes=None, random_scores=None):
    """All class models in one figure, titled with class name and score.  Lesson 3.6."""
    model = _checks.model(model)
    _checks.nonempty("images", images, "pass the images of ch.ascent.class_models")
    names = _models.class_names(model)
    classes = list(range(len(images))) if classes is None else list(classes)
    titles = []
    for i, (c, h) in enumerate(zip(classes, histories)):
        t = f"{names[c]}\nscore {h[0]:.1f} → {np.max(h):.1f}"
        titles.append(t)
    return _plotting.image_grid([_show(i) for i in images], titles, ncols=min(len(images), 6),
                                size=2.0, suptitle="Class models: what each class score wants to see")


def plot_history(histories, labels, ax=None, title="Objective during the ascent"):
    """Objective against step, one line per run.  Lesson 3.6."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3))
    for h, lab in zip(histories, labels):
        ax.plot(np.arange(len(h)), h, label=str(lab))
    ax.set_xlabel("step")
    ax.set_ylabel("objective")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.figure.tight_layout()
    return ax.figure


# --------------------------------------------------------------------------- explorer
def ascent_explorer(model, steps=None):
    """Widget for lesson 3.6: class or layer/channel, steps, learning rate, each regularizer,
    how the image is described (pixels with the regularizers, or :func:`render`'s pixel / fft /
    fft+decorrelated) and the objective (maximize, minimize, the centre neuron); see
    :func:`explorer_result`.

    The first choice of ``layer`` is the class scores; the others are the conv layers, whose
    ``unit`` is a channel.  Results are cached, so returning to a setting is instant.
    """
    import ipywidgets as w

    from .. import config, widgets

    model = _checks.model(model)
    steps = config.scaled(128, 32) if steps is None else _checks.integer("steps", steps, low=0)
    names = _models.class_names(model)
    convs = graph.conv_layer_names(model)
    sizes = {c: int(graph.layer(model, c).filters) for c in convs}
    layer_w = w.Dropdown(options=["class scores"] + convs, value="class scores", description="layer")
    unit_w = w.IntSlider(value=0, min=0, max=len(names) - 1, description="class/channel")

    def _on_layer(change):
        unit_w.max = len(names) - 1 if change["new"] == "class scores" else sizes[change["new"]] - 1

    layer_w.observe(_on_layer, names="value")

    def draw(layer, unit, steps, lr, l2, jitter, blur_every, blur_sigma, tv, param="pixel + regularizers",
             objective="maximize"):
        key = ("ascent", widgets.model_key(model), layer, unit, steps, lr, l2, jitter, blur_every,
               blur_sigma, tv, param, objective)
        kw = dict(steps=steps, lr=lr, l2=l2, jitter=jitter, blur_every=blur_every,
                  blur_sigma=blur_sigma, tv=tv)
        unit = min(unit, (len(names) if layer == "class scores" else sizes[layer]) - 1)
        res = widgets.cached(key, lambda: explorer_result(model, layer, unit, param, objective, **kw))
        title = (f"class {unit} ({names[unit]})" if layer == "class scores"
                 else f"{layer} channel {unit}")
        if objective != "maximize" or param != "pixel + regularizers":
            title += f" · {objective}, {param}"
        parts = view.parts
        _plotting.set_image(parts["image"], _show(res.image))
        parts["titles"][0].set_text(f"{title}\nHF share {high_frequency_share(res.image):.2f}")
        history = np.asarray(res.history, float)
        ax = parts["history"]
        ax.lines[0].set_data(np.arange(len(history)), history)
        lo, hi = (float(history.min()), float(history.max())) if history.size else (0.0, 1.0)
        pad = 0.05 * max(hi - lo, 1e-6)
        ax.set_xlim(0, max(len(history) - 1, 1))
        ax.set_ylim(lo - pad, hi + pad)
        return view.live

    def build():
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(7, 3.2))
        parts = {"image": a.imshow(np.zeros((2, 2, 3))), "titles": [a.set_title(" \n ")],
                 "history": b}   # its ticks follow the data: the whole axes is redrawn
        a.axis("off")
        b.plot([0, 1], [0, 1], label="objective")
        b.set_xlabel("step")
        b.set_ylabel("objective")
        b.set_title("objective per step")
        fig.tight_layout()
        return fig, parts

    view = widgets.FigureView(build)   # built once, updated in place

    return widgets.interactive_plot(
        draw, layer=layer_w, unit=unit_w,
        steps=w.IntSlider(value=steps, min=0, max=512, step=16, description="steps"),
        lr=w.FloatLogSlider(value=DEFAULTS["lr"], base=10, min=-3, max=0, description="learning rate"),
        l2=w.FloatSlider(value=DEFAULTS["l2"], min=0, max=1, step=0.01, description="L2 decay"),
        jitter=w.IntSlider(value=DEFAULTS["jitter"], min=0, max=8, description="jitter px"),
        blur_every=w.IntSlider(value=DEFAULTS["blur_every"], min=0, max=16, description="blur every"),
        blur_sigma=w.FloatSlider(value=DEFAULTS["blur_sigma"], min=0, max=2, step=0.1,
                                 description="blur σ"),
        tv=w.FloatSlider(value=DEFAULTS["tv"], min=0, max=0.5, step=0.01, description="TV"),
        param=w.Dropdown(options=list(EXPLORER_PARAMS), value=EXPLORER_PARAMS[0],
                         description="image as"),
        objective=w.Dropdown(options=list(EXPLORER_OBJECTIVES), value="maximize",
                             description="objective"),
    )


#: The explorer's image descriptions: the lesson's pixel recipe, then :func:`render`'s.
EXPLORER_PARAMS = ("pixel + regularizers", "pixel", "fft", "fft+decorrelated")
#: The explorer's objectives for the chosen class or channel.
EXPLORER_OBJECTIVES = ("maximize", "minimize", "centre neuron")


def explorer_result(model, layer, unit, param="pixel + regularizers", objective="maximize",
                    **kw):
    """What the explorer draws for one setting (a plain function, tested): ``layer`` is
    ``"class scores"`` or a conv layer, ``unit`` a class or channel.  ``param`` is
    ``"pixel + regularizers"`` (:func:`visualize_class` / :func:`visualize_filter` with the
    sliders' regularizers) or one of :func:`render`'s parameterizations (then only ``steps``
    and ``lr``, as Adam's step size, apply, with render's default robustness).  ``objective``:
    ``"maximize"``, ``"minimize"`` (the negative image) or ``"centre neuron"`` (one unit at
    the centre of the channel's map; for class scores the same as maximize).  Returns an
    object with ``image`` and ``history``."""
    param = _checks.choice("param", param, EXPLORER_PARAMS)
    objective = _checks.choice("objective", objective, EXPLORER_OBJECTIVES)
    if param == "pixel + regularizers" and objective != "minimize":
        if layer == "class scores":
            return visualize_class(model, unit, **kw)
        if objective == "maximize":
            return visualize_filter(model, layer, unit, **kw)
    if layer == "class scores":
        goal = class_score(unit)
    elif objective == "centre neuron":
        goal = neuron(layer, unit)
    else:
        goal = channel(layer, unit)
    goal = -goal if objective == "minimize" else goal
    return render(model, goal, param="pixel" if param == "pixel + regularizers" else param,
                  steps=kw.get("steps", RENDER_DEFAULTS["steps"]),
                  lr=kw.get("lr", RENDER_DEFAULTS["lr"]))


def plot_recipes(rows, recipes=("pixel, robust (Adam)", "fft", "fft+decorrelated")):
    """The pictures of :func:`course_helpers.ascent.compare_recipes`: one row per layer and
    recipe, one column per channel, each titled with its high-frequency share; with one
    channel, one row per layer and the recipes side by side.  Lesson 3.6."""
    rows = _checks.nonempty("rows", list(rows), "pass the rows of ch.ascent.compare_recipes")
    chosen = [r for r in rows if r["recipe"] in recipes]
    _checks.nonempty("recipes", chosen, f"choose among {sorted({r['recipe'] for r in rows})}")
    ncols = len(chosen[0]["images"])
    single = ncols == 1
    if single:
        ncols = len({r["recipe"] for r in chosen})
    tiles, titles = [], []
    for r in chosen:
        for c, img in enumerate(r["images"]):
            tiles.append(_show(img))
            titles.append(f"{r['layer']} · {r['recipe']}\nHF {high_frequency_share(img):.2f}"
                          if c == 0 or single else f"HF {high_frequency_share(img):.2f}")
    return _plotting.image_grid(tiles, titles, ncols=ncols, size=2.6 if single else 1.9,
                                suptitle=f"Same channels, same budget ({chosen[0]['steps']} steps)")
