"""Shared drawing helpers: image grids, heatmap overlays, captions.  Used by every lesson."""
from __future__ import annotations

import warnings

import numpy as np

from . import _checks


def _plt():
    import matplotlib.pyplot as plt

    return plt


def normalize(x, per_item_axes=None, eps: float = 1e-8) -> np.ndarray:
    """Min-max scale ``x`` to [0, 1]; with ``per_item_axes``, each item separately.

    Used for kernel tiles (lesson 1), activation maps (3.2) and saliency maps (3.5).
    """
    x = np.asarray(x, dtype=np.float32)
    lo = x.min(axis=per_item_axes, keepdims=per_item_axes is not None)
    hi = x.max(axis=per_item_axes, keepdims=per_item_axes is not None)
    return (x - lo) / np.maximum(hi - lo, eps)


def image_grid(images, titles=None, ncols=8, size=1.6, cmap=None, axes_off=True, suptitle=None,
               vmin=None, vmax=None):
    """Draw a list of images in a grid and return the figure.  Used by every lesson.

    ``size`` is the side of one cell in inches; an empty ``images`` is a ValueError."""
    plt = _plt()
    if images is None or isinstance(images, str):
        raise TypeError(f"images must be a list or array of images, got {images!r:.60}.")
    images = list(images.values()) if isinstance(images, dict) else list(images)
    n = len(_checks.nonempty("images", images, "pass at least one image to draw"))
    size = _checks.number("size", size, positive=True)
    ncols = min(_checks.integer("ncols", ncols, low=1), n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(images):
            img = np.asarray(images[i])
            ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=vmin, vmax=vmax,
                      interpolation="nearest")
            if titles is not None and i < len(titles):
                ax.set_title(str(titles[i]), fontsize=8)
        if axes_off:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def set_image(artist, data, vmin=None, vmax=None):
    """Put new data into an ``imshow`` artist, fitting its extent and axes to the new shape.

    Explorers use it to update a figure in place (``ch.widgets.LiveFigure``).  Every lesson.
    """
    data = np.asarray(data)
    h, w = data.shape[:2]
    artist.set_data(data)
    artist.set_extent((-0.5, w - 0.5, h - 0.5, -0.5))
    if vmin is not None or vmax is not None:
        artist.set_clim(vmin, vmax)
    if artist.axes is not None:
        artist.axes.set_xlim(-0.5, w - 0.5)
        artist.axes.set_ylim(h - 0.5, -0.5)


def drop_empty_title(fig, title) -> None:
    """A figure built with a placeholder ``suptitle`` for in-place updates, drawn once without a
    title: remove the placeholder and lay the figure out again.  Lessons 3.2, 3.5, 4.1."""
    if not title and fig._suptitle is not None:
        fig._suptitle.remove()
        fig._suptitle = None
        fig.tight_layout()


def upsample(heatmap, shape) -> np.ndarray:
    """Resize a 2-D map to ``shape`` (h, w) with bilinear interpolation.  Lessons 3.2, 3.4, 5."""
    from skimage.transform import resize

    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be a 2-D map (h, w), got shape {heatmap.shape}; reduce "
                         "a gradient over its channels first: ch.saliency.reduce_channels(grad).")
    return resize(heatmap, tuple(shape)[:2], order=1, mode="edge", anti_aliasing=False,
                  preserve_range=True).astype(np.float32)


def _as_map(heatmap) -> np.ndarray:
    """``heatmap`` as a 2-D map.  A value per colour channel (a raw input gradient, (H, W, 3))
    becomes its largest absolute value over the channels, with a warning that says so."""
    hm = np.asarray(heatmap, dtype=np.float32)
    while hm.ndim > 2 and hm.shape[0] == 1:   # a batch of one
        hm = hm[0]
    if hm.ndim == 3 and hm.shape[-1] == 1:
        hm = hm[..., 0]
    if hm.ndim == 3 and hm.shape[-1] in (3, 4):
        warnings.warn(f"heatmap has shape {hm.shape}: one value per colour channel (a raw "
                      "gradient?). It is drawn as the largest absolute value over the channels, "
                      "as ch.saliency.reduce_channels does; pass a 2-D map (H, W) to silence "
                      "this warning.", UserWarning, stacklevel=3)
        hm = np.abs(hm).max(axis=-1)
    if hm.ndim != 2:
        raise ValueError(f"heatmap must be a 2-D map (H, W), got shape {hm.shape}.")
    return hm


def overlay(image, heatmap, ax=None, alpha=0.5, cmap="jet", title=None, colorbar=False):
    """Draw ``heatmap`` (any size, upsampled) over ``image``.  Lessons 3.2, 3.4, 3.5, 5.

    A raw (H, W, 3) gradient is reduced to max |.| over R, G, B (the saliency rule,
    ``ch.saliency.reduce_channels``) with a warning, rather than drawn as colours.
    """
    plt = _plt()
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be one image (H, W, 3) or (H, W), got shape {image.shape}.")
    hm = upsample(_as_map(heatmap), image.shape[:2])
    alpha = _checks.number("alpha", alpha, low=0, high=1)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    ax.imshow(image)
    im = ax.imshow(hm, cmap=cmap, alpha=alpha)
    if colorbar:
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def draw_caption(image, text, color=(1.0, 1.0, 1.0)):
    """Return a copy of ``image`` with ``text`` drawn on it (keras-vis's ``utils.draw_text``).

    Lesson 5 uses it to caption activation-maximization images.
    """
    from PIL import Image, ImageDraw

    arr = np.asarray(image, dtype=np.float32)
    pil = Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    fill = tuple(int(c * 255) for c in color)
    draw.rectangle([0, 0, min(pil.width, 7 * len(text) + 6), 13], fill=(0, 0, 0))
    draw.text((3, 1), text, fill=fill)
    return np.asarray(pil, dtype=np.float32) / 255.0
