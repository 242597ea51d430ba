"""Lesson 3.2 — internal response: activation maps of a middle layer (内部响应分析法, notebook 03).

Feed one image, pick a conv layer and one of its kernels (a channel), and look at the map that
kernel produces: brighter means a stronger response.  "The activation of conv3" always means
conv3's output after its batch norm and ReLU (``ch.graph.activation_layer``).

Compute: :func:`feature_maps` (one image), :func:`layer_activations` (a batch, cached).
Draw: :func:`plot_feature_map`, :func:`plot_channel_grid`, :func:`mosaic`.
Widget: :func:`activation_explorer`.
"""
from __future__ import annotations

import numpy as np

from . import _checks
from . import graph as _graph
from . import plotting as _plotting
from . import widgets as _widgets


#: At most this many pixels per batch of :func:`layer_activations` (4 images of 224x224).
#: Measured on VGG16 over 40 photos (2 cores): 4 at a time take as long as 8 (5.0 s and 5.1 s
#: to block3_conv3) and need 180 MB less for the first layers' maps; 2 at a time take 8.9 s.
BATCH_PIXELS = 4 * 224 * 224


def activation_model(model, layer):
    """A model from ``model``'s input to conv ``layer``'s activation (after BN+ReLU).  Lessons 3.2, 3.3.

    ``layer`` is a conv layer's name, index or the layer.  The model is
    ``keras.Model(model.inputs, graph.activation_layer(model, layer).output)``: it shares the
    model's weights and is built once (``ch.graph.submodel``'s cache).

    Written out in lesson 03, "In plain code: activation maps".
    """
    conv = _checks.conv_layer(model, layer)
    return _graph.submodel(model, _graph.activation_layer(model, conv))


def feature_maps(model, layer, image) -> np.ndarray:
    """Conv ``layer``'s activation for one image, shape (h, w, channels).  Lesson 3.2.

    ``activation_model(model, layer)(image[None], training=False)[0]``.  ``image`` is converted
    with ``ch.data.load_image`` and resized to the model's input.  Raises ValueError if
    ``layer`` is not a conv layer (the message lists the conv layers).

    Written out in lesson 03, "In plain code: activation maps".
    """
    sub = activation_model(model, layer)
    img = _checks.image_for(model, image)
    return np.asarray(sub(img[None], training=False)[0], dtype=np.float32)


def layer_activations(model, layer, images, batch_size: int = 64, channels=None) -> np.ndarray:
    """Conv ``layer``'s activations for a set of images, shape (n, h, w, channels).  Lessons 3.2, 3.3.

    Runs in batches of ``batch_size`` (fewer for large images: at most :data:`BATCH_PIXELS`
    pixels, 4 images at 224 px) and is cached by (model, layer, images, channels): a second
    call (a channel slider move) computes nothing.

    ``channels`` (a list of channel indices) keeps only those, in that order, and the cache
    holds only them: for big layers over many photos (VGG16's ``block3_conv3`` over 200
    photos is 640 MB for all 256 channels, 80 MB for 32).  None keeps the whole layer.
    """
    sub = activation_model(model, layer)
    batch = _checks.batch_for(model, images)
    batch_size = _checks.integer("batch_size", batch_size, low=1)
    batch_size = _checks.batch_limit(batch.shape[1:], batch_size, BATCH_PIXELS)
    conv = _checks.conv_layer(model, layer).name
    picked = check_channels(int(sub.output_shape[-1]), channels)
    key = ("layer_activations", _widgets.model_key(model), conv, _widgets.array_key(batch))
    if picked is not None:
        key += (picked,)

    def compute():
        from tqdm.auto import tqdm

        starts = range(0, len(batch), int(batch_size))
        # a progress bar for long scans (top patches over many images), silent for small ones
        bar = tqdm(starts, desc=f"scanning {conv}", unit="batch", disable=len(starts) < 8,
                   leave=False)
        parts = []
        for i in bar:
            out = np.asarray(sub(batch[i:i + batch_size], training=False), dtype=np.float32)
            parts.append(out if picked is None else out[..., list(picked)])
        return np.concatenate(parts)

    return _widgets.cached(key, compute)


def check_channels(n: int, channels):
    """``channels`` as a tuple of valid channel indices for a layer of ``n`` channels (None
    stays None: the whole layer), else an error naming the bad one.  Lesson 3.3."""
    if channels is None:
        return None
    if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__"):
        raise TypeError(f"channels must be a list of channel indices (or None for the whole "
                        f"layer), got {channels!r}.")
    _checks.nonempty("channels", channels, "pass at least one channel index, or None for "
                     "the whole layer")
    shown = list(channels)
    return tuple(_checks.check_index(c, n, "channel", f"This layer has {n} channels (in "
                                     f"channels={shown})." if len(shown) <= 12 else
                                     f"This layer has {n} channels (in channels).")
                 for c in channels)


def mosaic(tiles, ncols: int, gap: int = 2, background: float = 1.0) -> np.ndarray:
    """Paste equally sized tiles (n, h, w[, 3]) into one image, ``ncols`` per row, with white
    gaps.  One ``imshow`` of a mosaic draws far faster than a grid of axes.  Lessons 3.2, 3.3."""
    tiles = np.asarray(tiles, dtype=np.float32)
    n, h, w = tiles.shape[:3]
    ncols = _checks.integer("ncols", ncols, low=1)
    nrows = max(1, int(np.ceil(n / ncols)))
    out = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap) + tiles.shape[3:], background,
                  np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[i]
    return out


def check_channel(fmaps_or_count, channel) -> int:
    """``channel`` as a valid index for maps with that many channels, else a clear error."""
    n = fmaps_or_count if isinstance(fmaps_or_count, int) else int(np.shape(fmaps_or_count)[-1])
    return _checks.check_index(channel, n, "channel", f"This layer has {n} channels.")


def plot_feature_map(image, fmaps, channel: int, title: str | None = None):
    """One channel's map next to the image and upsampled over it; returns the Figure.  Lesson 3.2."""
    fig, parts = _feature_map_figure()
    _feature_map_update(parts, image, fmaps, channel, title)
    _plotting.drop_empty_title(fig, title)
    return fig


def _feature_map_figure():
    """The empty figure of :func:`plot_feature_map`: (figure, the artists that change)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    rgb, grey = np.zeros((2, 2, 3)), np.zeros((2, 2))
    parts = {"input": axes[0].imshow(rgb), "map": axes[1].imshow(grey, cmap="gray"),
             "under": axes[2].imshow(rgb),
             "over": axes[2].imshow(grey, cmap="jet", alpha=0.55, vmin=0, vmax=1)}
    parts["colorbar"] = fig.colorbar(parts["map"], ax=axes[1], fraction=0.046, pad=0.04).ax
    axes[0].set_title("input")
    axes[1].set_title("channel 0: 0x0 map\n(max 0.00)")
    axes[2].set_title("upsampled over the image", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(" ")
    fig.tight_layout()
    parts["titles"] = [axes[1].title, fig._suptitle]
    return fig, parts


def _feature_map_update(parts, image, fmaps, channel, title):
    channel = check_channel(fmaps, channel)
    fmap = np.asarray(fmaps)[..., channel]
    image = np.asarray(image)
    _plotting.set_image(parts["input"], image)
    _plotting.set_image(parts["map"], fmap, 0, max(float(fmap.max()), 1e-6))
    _plotting.set_image(parts["under"], image)
    _plotting.set_image(parts["over"], _plotting.upsample(_plotting.normalize(fmap), image.shape))
    parts["titles"][0].set_text(f"channel {channel}: {fmap.shape[0]}x{fmap.shape[1]} map\n"
                                f"(max {fmap.max():.2f})")
    parts["titles"][1].set_text(title or "")


def plot_channel_grid(fmaps, ncols: int = 16, size: float = 0.6, title: str | None = None,
                      shared_scale: bool = True):
    """Every channel of one layer's maps as a grid of small grey images.  Lesson 3.2.

    ``shared_scale=True`` uses one brightness scale for all channels, so silent channels look
    black; ``False`` stretches each channel on its own.  Channel numbers run row by row.
    """
    import matplotlib.pyplot as plt

    fmaps = np.asarray(fmaps, dtype=np.float32)
    if fmaps.ndim != 3:
        raise ValueError(f"Expected maps of shape (h, w, channels), got {fmaps.shape}.")
    tiles = np.moveaxis(fmaps, -1, 0)
    if shared_scale:
        tiles = tiles / max(float(tiles.max()), 1e-6)
    else:
        tiles = _plotting.normalize(tiles, per_item_axes=(1, 2))
    n, h, w = tiles.shape
    ncols = min(ncols, n)
    gap = max(1, h // 8)
    image = mosaic(tiles, ncols, gap, background=1.0)
    nrows = int(np.ceil(n / ncols))
    fig, ax = plt.subplots(figsize=(size * ncols + 0.4, size * nrows + 0.6))
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([(w + gap) * c + w / 2 for c in range(ncols)])
    ax.set_xticklabels([str(c) for c in range(ncols)], fontsize=6)
    ax.set_yticks([(h + gap) * r + h / 2 for r in range(nrows)])
    ax.set_yticklabels([str(r * ncols) for r in range(nrows)], fontsize=6)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title or f"{n} channels", fontsize=9)
    fig.tight_layout()
    return fig


def activation_explorer(model, images, layers=None):
    """Widget for lesson 3.2: pick an image, a conv layer and a channel; see its map.

    Each (image, layer) is computed once and cached, so moving the channel slider only redraws.
    """
    import ipywidgets as w

    _checks.model(model)
    names, imgs = _checks.names_and_images(images)
    batch = _checks.batch_for(model, imgs)
    layers = _checks.conv_layer_names(model, layers)
    channel = w.IntSlider(value=0, min=0,
                          max=int(activation_model(model, layers[0]).output_shape[-1]) - 1,
                          description="channel")

    view = _widgets.FigureView(_feature_map_figure)   # built once, updated in place

    def draw(image, layer, channel):
        acts = layer_activations(model, layer, batch)
        channel = min(channel, acts.shape[-1] - 1)
        i = names.index(image)
        _feature_map_update(view.parts, batch[i], acts[i], channel, f"{image} · {layer}")
        return view.live

    layer_box = w.Dropdown(options=layers, value=layers[0], description="layer")

    def on_layer(change):
        channel.max = int(activation_model(model, change["new"]).output_shape[-1]) - 1

    layer_box.observe(on_layer, names="value")
    return _widgets.interactive_plot(draw, image=w.Dropdown(options=names, description="image"),
                                     layer=layer_box, channel=channel)
