"""Drawing lesson 8's results: maps side by side, randomization and deletion/insertion curves."""
from __future__ import annotations

import numpy as np

from .. import plotting as _plotting

def plot_randomization(result, ax=None):
    """Spearman correlation with the original map after each randomization step, per method."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7.6, 3.4))
    fig = ax.figure
    x = np.arange(len(result["steps"]))
    for name, corr in result["correlation"].items():
        ax.plot(x, corr, marker="o", label=name)
    ax.set_xticks(x, result["steps"], rotation=30, ha="right")
    ax.set_xlabel("randomized from the top down to ...")
    ax.set_ylabel("Spearman correlation\nwith the original map")
    low = min(float(np.nanmin(c)) for c in result["correlation"].values())
    ax.set_ylim(min(-0.2, low - 0.05), 1.05)
    ax.axhline(0, color="grey", lw=0.8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def plot_map_grid(maps: dict, col_titles=None, cmap: str = "magma", size: float = 1.45):
    """Rows = methods, columns = images (or steps): maps alone, each scaled to its own range.

    ``maps = {method: (n, H, W)}``.  Lesson 8 uses it to show maps without their images.
    """
    import matplotlib.pyplot as plt

    names = list(maps)
    if not names:
        raise ValueError("No maps to draw.")
    cols = len(maps[names[0]])
    fig, axes = plt.subplots(len(names), cols, figsize=(size * cols, (size + 0.05) * len(names)),
                             squeeze=False)
    for r, name in enumerate(names):
        if len(maps[name]) != cols:
            raise ValueError(f"{name}: {len(maps[name])} maps, expected {cols}.")
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(_plotting.normalize(maps[name][c]), cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and col_titles is not None:
                ax.set_title(str(col_titles[c]), fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def plot_overlays(images, maps, titles=None, ncols: int = 6, alpha: float = 0.55):
    """Maps drawn over their images, titles above (so no caption hides a corner).  Lesson 8."""
    import matplotlib.pyplot as plt

    images = np.asarray(images, dtype=np.float32)
    maps = np.asarray(maps, dtype=np.float32)
    if len(maps) != len(images):
        raise ValueError(f"{len(maps)} maps for {len(images)} images.")
    ncols = max(1, min(int(ncols), len(images)))
    rows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(rows, ncols, figsize=(1.7 * ncols, 2.0 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            _plotting.overlay(images[k], _plotting.normalize(maps[k]), ax=ax, alpha=alpha,
                              title=None if titles is None else str(titles[k]))
    fig.tight_layout(pad=0.3)
    return fig


def plot_randomization_maps(result, image_index: int = 0):
    """Rows = methods, columns = randomization steps: the maps of one image.  Lesson 8."""
    maps = {name: arr[:, image_index] for name, arr in result["maps"].items()}
    return plot_map_grid(maps, col_titles=result["steps"])


def _mean_curve(curves, where: str):
    """``curves`` itself if it is one Curve; else the mean of a list of curves with the same
    fractions (one per image): mean probability at each step, mean area (the same number as
    the area under the mean curve, the trapezoid rule being linear)."""
    from .metrics import Curve

    if isinstance(curves, Curve):
        return curves
    curves = list(curves) if isinstance(curves, (list, tuple)) else [curves]
    if not curves or not all(isinstance(c, Curve) for c in curves):
        raise TypeError(f"{where} must be a Curve (ch.sanity.deletion_curve or insertion_curve) "
                        "or a non-empty list of them (one per image), got "
                        f"{[type(c).__name__ for c in curves] or 'an empty list'}.")
    frac = np.asarray(curves[0].fraction, dtype=np.float64)
    if any(np.shape(c.fraction) != frac.shape or not np.allclose(c.fraction, frac) for c in curves):
        raise ValueError(f"{where}: the curves were computed with different steps; compute them "
                         "with the same steps= to average them.")
    return Curve(frac, np.mean([np.asarray(c.probability, np.float64) for c in curves], axis=0),
                 float(np.mean([c.auc for c in curves])))


def plot_curves(curves: dict, title: str = ""):
    """Deletion and insertion curves side by side; ``curves = {method: (deletion, insertion)}``.

    Each of ``deletion`` and ``insertion`` is one Curve, or a list of curves (one per image,
    the same ``steps``), drawn as their mean, the legend giving the mean area.  Lesson 8 (one
    shape; its ImageNet part, the mean over the photos).
    """
    import matplotlib.pyplot as plt

    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict {method: (deletion, insertion)}, e.g. "
                         "{'saliency': (ch.sanity.deletion_curve(...), ch.sanity.insertion_curve(...))}.")
    pairs = {}
    for name, pair in curves.items():
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or hasattr(pair, "auc"):
            raise ValueError(f"curves[{name!r}] must be a pair (deletion, insertion).")
        pairs[name] = (_mean_curve(pair[0], f"curves[{name!r}][0]"),
                       _mean_curve(pair[1], f"curves[{name!r}][1]"))
    fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.0), sharey=True)
    for name, (dele, ins) in pairs.items():
        axes[0].plot(dele.fraction, dele.probability, label=f"{name} ({dele.auc:.2f})")
        axes[1].plot(ins.fraction, ins.probability, label=f"{name} ({ins.auc:.2f})")
    axes[0].set_title("deletion: lower area is better")
    axes[1].set_title("insertion: higher area is better")
    for ax in axes:
        ax.set_xlabel("fraction of pixels changed")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("class probability")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
