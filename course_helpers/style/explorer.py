"""Plots and widgets of lesson 4.1: results, loss curves, the explorer, the learner's uploads."""
from __future__ import annotations

import numpy as np

from .. import _checks, config, graph
from .. import data as _data
from .. import plotting as _plotting
from .. import uploads as _uploads
from .extractors import default_layers, resolve_model
from .losses import _as_image
from .transfer import style_transfer


def plot_result(content, style, image, history=None, title=None):
    """Content, style, result and (optionally) the loss curves.  Lesson 4.1."""
    fig, parts = _result_figure(history is not None)
    _result_update(parts, content, style, image, history, title)
    _plotting.drop_empty_title(fig, title)
    return fig


def _result_figure(with_history: bool):
    """The empty figure of :func:`plot_result`: (figure, the artists that change)."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    n = 4 if with_history else 3
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.2))
    parts = {"images": []}
    for ax, t in zip(axes, ("content", "style", "result")):
        parts["images"].append(ax.imshow(np.zeros((2, 2, 3))))
        ax.set_title(t)
        ax.axis("off")
    if with_history:
        ax = axes[3]
        for key in ("style", "content"):
            ax.semilogy([1, 2], [1, 2], label=f"{key} loss")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.set_title("losses")
        # plain tick labels ("0.01", not mathtext 10^-2): several times cheaper to redraw
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        parts["history"] = ax   # its ticks follow the data: the whole axes is redrawn
    parts["titles"] = [fig.suptitle(" ")]
    fig.tight_layout()
    return fig, parts


def _result_update(parts, content, style, image, history, title):
    for artist, img in zip(parts["images"], (content, style, image)):
        _plotting.set_image(artist, np.clip(img, 0, 1))
    if history is not None:
        ax = parts["history"]
        values = []
        for line, key in zip(ax.lines, ("style", "content")):
            line.set_data(np.arange(len(history[key])), history[key])
            values.append(np.asarray(history[key], float))
        values = np.concatenate(values)
        top = float(np.nanmax(values)) if values.size else 1.0
        # a run started from the content image has a content loss of ~0 at step 0: keep the
        # axis on the range that matters instead of reaching down to 1e-14
        bottom = max(float(np.nanmin(np.where(values > 0, values, np.inf))), 1e-4 * top)
        ax.set_xlim(0, max(len(history["style"]) - 1, 1))
        ax.set_ylim(bottom / 1.5, top * 1.5)
    parts["titles"][0].set_text(title or "")


def plot_convergence(histories: dict, key="total"):
    """Loss curves of several runs on one log axis (e.g. noise vs content start).  Lesson 4.1."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, hist in histories.items():
        ax.semilogy(hist[key], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{key} loss")
    ax.legend()
    fig.tight_layout()
    return fig


def style_explorer(contents: dict, styles: dict, model=None, size=96):
    """Widget for lesson 4.1: content and style image, style weight, content layer, style
    layers and steps; each new setting runs a short optimization (started from the photo),
    cached, so returning to a setting is instant."""
    import ipywidgets as w

    from .. import widgets as _widgets

    model = resolve_model(model)
    contents, styles = (dict(zip(*_checks.names_and_images(_checks.nonempty(
        name, images, "pass a dict {name: image} with at least one image"))))
        for name, images in (("contents", contents), ("styles", styles)))
    size = _checks.integer("size", size, low=8)
    d_content, d_style = default_layers(model)
    layer_names = [graph.activation_layer(model, c).name  # VGG: the conv itself (ReLU inside)
                   for c in graph.conv_layer_names(model)]
    contents = {k: _data.resize_image(_as_image(v, "content"), size) for k, v in contents.items()}
    styles = {k: _data.resize_image(_as_image(v, "style"), size) for k, v in styles.items()}
    view = _widgets.FigureView(lambda: _result_figure(True))   # built once, updated in place

    def draw(content, style, style_weight, content_layer, style_layers, steps):
        if not style_layers:
            style_layers = d_style
        key = ("style_explorer", _widgets.model_key(model), _widgets.array_key(contents[content]),
               _widgets.array_key(styles[style]), style_weight, content_layer,
               tuple(style_layers), steps)   # returning to a setting redraws from the cache
        image, hist = _widgets.cached(key, lambda: style_transfer(
            contents[content], styles[style], steps=steps, style_weight=10 ** style_weight,
            content_layer=content_layer, style_layers=list(style_layers), init="content",
            model=model, progress=False))
        _result_update(view.parts, contents[content], styles[style], image, hist,
                       f"style weight {10 ** style_weight:.3g}, {hist['seconds']:.1f} s")
        return view.live

    return _widgets.interactive_plot(
        draw, content=list(contents), style=list(styles),
        style_weight=w.FloatSlider(value=1.0, min=-1.0, max=3.0, step=0.5,
                                   description="log10 style w."),
        content_layer=w.Dropdown(options=layer_names, value=d_content),
        style_layers=w.SelectMultiple(options=layer_names, value=tuple(d_style), rows=5),
        steps=w.IntSlider(value=config.scaled(60, 10), min=10, max=300, step=10))


def upload_widget():
    """A file-upload button for the learner's own images (``ch.uploads.upload_button``).
    Lesson 4.1."""
    return _uploads.upload_button(multiple=True, description="Your images", accept="image/*")


def uploaded_images(upload, size=None) -> dict:
    """The images in an ``ipywidgets.FileUpload`` as {file name: RGB float array}.  Lesson 4.1.

    Each file goes through ``ch.uploads.decode_upload`` (``ch.data.load_image`` inside); a file
    that is not an image, is truncated or too large raises a ValueError naming it.
    """
    return {name: _uploads.decode_upload(content, size=size, name=name)
            for name, content in _uploads.upload_files(upload)}
