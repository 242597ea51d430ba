"""Lesson 5 (notebook 07), the pictures: maps over images with captions drawn on them
(keras-vis's ``utils.draw_text`` idea), comparison grids and the explorer."""
from __future__ import annotations

import numpy as np

from .. import _checks
from .. import models as _models
from .. import plotting as _plotting
from .. import widgets as _widgets
from .methods import METHODS, _classes, compare_methods


def captioned_overlay(image, heatmap=None, text: str = "", size: int = 128, alpha: float = 0.5,
                      cmap: str = "jet") -> np.ndarray:
    """``image`` with ``heatmap`` blended in and ``text`` drawn on it, as an RGB array.

    ``heatmap`` is a 2-D map (a raw (H, W, 3) gradient is reduced to max |.| over the channels,
    with a warning).  The picture is enlarged to ``size`` pixels (a whole number; 64.0 is taken as 64) so the
    caption stays legible on 64x64 images (keras-vis's ``utils.draw_text`` idea).  Lesson 5.
    """
    import matplotlib

    size = _checks.integer("size", size, low=8)
    alpha = _checks.number("alpha", alpha, low=0, high=1)
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"Expected an RGB image (H, W, 3), got shape {img.shape}.")
    big = _upsample_rgb(img, size)
    if heatmap is not None:   # a raw (H, W, 3) gradient is reduced as ch.plotting.overlay does
        hm = _plotting.normalize(_plotting.upsample(_plotting._as_map(heatmap), big.shape[:2]))
        colour = matplotlib.colormaps[cmap](hm)[..., :3].astype(np.float32)
        big = (1 - alpha) * big + alpha * colour
    return _plotting.draw_caption(big, text) if text else big


def _upsample_rgb(img, size):
    if img.shape[0] == size and img.shape[1] == size:
        return img
    from skimage.transform import resize

    return np.clip(resize(img, (size, size, 3), order=0 if size >= img.shape[0] else 1,
                          anti_aliasing=size < img.shape[0]), 0, 1).astype(np.float32)


def plot_comparison(images, maps: dict, row_titles=None, size: int = 128):
    """One row per image: the image, then each method's map over it, captions on the pictures.

    ``maps`` is the output of :func:`compare_methods`.  Returns the Figure.  Lesson 5.
    """
    import matplotlib.pyplot as plt

    images = np.asarray(_checks.nonempty("images", images, "pass the images the maps belong to"),
                        dtype=np.float32)
    names = list(_checks.nonempty("maps", maps, "pass the output of ch.kerasvis.compare_methods"))
    if images.ndim == 3:
        images = images[None]
        maps = {k: np.asarray(v)[None] if np.ndim(v) == 2 else v for k, v in maps.items()}
    for k in names:
        if len(maps[k]) != len(images):
            raise ValueError(f"{k}: {len(maps[k])} maps for {len(images)} images.")
    rows, cols = len(images), len(names) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 1.9 * rows), squeeze=False)
    for i in range(rows):
        title = row_titles[i] if row_titles is not None else "input"
        axes[i, 0].imshow(captioned_overlay(images[i], None, str(title), size=size))
        for j, k in enumerate(names, start=1):
            axes[i, j].imshow(captioned_overlay(images[i], maps[k][i], k, size=size))
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout(pad=0.3)
    return fig


def plot_maximized(images, captions, size: int = 128, ncols: int = 6):
    """Activation-maximization results with captions drawn on them.  Lesson 5.2."""
    images = np.asarray(_checks.nonempty("images", images, "pass the output of "
                                         "ch.kerasvis.activation_maximization"), dtype=np.float32)
    if len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images: give one each.")
    tiles = [captioned_overlay(im, None, str(c), size=size) for im, c in zip(images, captions)]
    return _plotting.image_grid(tiles, ncols=ncols, size=1.9)


def plot_maps(images, maps, captions=None, ncols: int = 6, size: int = 128):
    """A grid of maps over their images, a caption drawn on each.  Lesson 5."""
    images = np.asarray(_checks.nonempty("images", images, "pass at least one image"), dtype=np.float32)
    maps = np.asarray(maps, dtype=np.float32)
    if images.ndim == 3:
        images, maps = images[None], maps[None]
    if len(maps) != len(images):
        raise ValueError(f"{len(maps)} maps for {len(images)} images.")
    captions = [""] * len(images) if captions is None else [str(c) for c in captions]
    tiles = [captioned_overlay(im, m, c, size=size) for im, m, c in zip(images, maps, captions)]
    return _plotting.image_grid(tiles, ncols=ncols, size=1.9)


def kerasvis_explorer(model, images, class_index=None):
    """Widget for lesson 5: pick an image, a method and a class; see the map.

    ``images`` is a dict name -> image or a list of images.  ``class_index=None`` explains the
    predicted class; a class (index or name) starts the explorer on that class instead.  Each
    (method, class) is computed once.
    """
    import ipywidgets as w

    model = _checks.model(model)
    names, imgs = _checks.names_and_images(images)
    batch = _checks.batch_for(model, imgs)
    classes = _models.class_names(model)
    pred = model.predict(batch, verbose=0).argmax(-1)
    choice = ["predicted class"] + list(classes[:50])
    start = "predicted class" if class_index is None else classes[_classes(model, class_index, 1)[0]]
    if start not in choice:
        choice.append(start)

    def draw(image, method, explain):
        import matplotlib.pyplot as plt

        i = names.index(image)
        c = int(pred[i]) if explain == "predicted class" else classes.index(explain)
        maps = compare_methods(model, batch[i:i + 1], c, methods=(method,))
        fig, ax = plt.subplots(figsize=(3.4, 3.4))
        ax.imshow(captioned_overlay(batch[i], maps[method][0], f"{method}: {classes[c]}", size=192))
        ax.axis("off")
        return fig

    return _widgets.interactive_plot(draw, image=names, method=list(METHODS),
                                     explain=w.Dropdown(options=choice, value=start,
                                                        description="explain"))
