"""Lesson 1 — first-layer filters, drawn directly (第一层 · 直接可视化), notebook 01.

First-layer kernels see the three colour channels of the input, so each one is a small RGB
picture.  This module pulls them out of a model, scales them for display, measures how smooth
they are, and draws them.
"""
from __future__ import annotations

import numpy as np
import tf_keras as keras

from . import _checks
from . import graph as _graph
from . import models as _models
from . import plotting as _plotting
from . import widgets as _widgets


def first_layer(model):
    """The first Conv2D layer of ``model`` (the one whose kernels are RGB).  Lesson 1."""
    model = _checks.model(model)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            return layer
    raise ValueError(f"{model.name} has no Conv2D layer, so it has no first-layer filters to draw.")


def _conv(model, layer):
    """``layer`` (name, index or layer; default the first conv layer) as a Conv2D layer."""
    return first_layer(model) if layer is None else _graph.require_conv(_checks.model(model), layer)


def first_layer_filters(model, layer=None) -> np.ndarray:
    """The kernels of the first conv layer, shape (k_h, k_w, 3, n_kernels).  Lesson 1.

    ``layer`` may name (or index) another conv layer; it must see exactly 3 input channels,
    because only then is a kernel an RGB picture.

    Written out in lesson 01, "In plain code: first-layer kernels".
    """
    lyr = _conv(model, layer)
    kernel = lyr.get_weights()[0]
    if kernel.ndim != 4:
        raise ValueError(f"Layer {lyr.name!r} has a kernel of shape {kernel.shape}; expected 4-D.")
    if kernel.shape[2] != 3:
        raise ValueError(
            f"Layer {lyr.name!r} has kernels with {kernel.shape[2]} input channels, so they are "
            "not RGB pictures. Only a layer that reads the RGB image (the first conv layer) can be "
            "drawn directly; for deeper layers use lessons 3.2-3.6."
        )
    return kernel.astype(np.float32)


def kernel_tiles(kernels, mode: str = "per_kernel") -> np.ndarray:
    """Kernels as RGB tiles in [0, 1], shape (n, k_h, k_w, 3).  Lesson 1.

    ``mode="per_kernel"`` stretches each kernel to the full range (shows every pattern, hides
    which kernels are strong); ``mode="shared"`` uses one scale for all (shows relative
    strength, weak kernels look flat grey).  Zero maps to grey 0.5 in shared mode.

    Written out in lesson 01, "In plain code: first-layer kernels".
    """
    mode = _checks.choice("mode", mode, ("per_kernel", "shared"))
    k = np.asarray(kernels, dtype=np.float32)
    if k.ndim != 4 or k.shape[2] != 3:
        raise ValueError(f"Expected kernels of shape (k_h, k_w, 3, n), got {k.shape}: use "
                         "ch.filters.rgb_filters(model) (or first_layer_filters) to get them.")
    tiles = np.transpose(k, (3, 0, 1, 2))
    if mode == "per_kernel":
        lo = tiles.min(axis=(1, 2, 3), keepdims=True)
        hi = tiles.max(axis=(1, 2, 3), keepdims=True)
        return (tiles - lo) / np.maximum(hi - lo, 1e-8)
    scale = max(float(np.abs(tiles).max()), 1e-8)
    return 0.5 + 0.5 * tiles / scale


def low_frequency_share(kernels) -> np.ndarray:
    """Per kernel: share of its spectral energy at low spatial frequencies.  Lesson 1.

    Each channel's mean is removed, its 2-D FFT taken, and the energy of the frequencies within
    a radius of k/4 cycles per kernel (k the kernel's size on that axis, the radius at least 1)
    divided by the total.  For 7x7 kernels (course-cnn, ResNet50) these are the waves of at
    most one cycle per kernel on each axis; a 3x3 kernel (VGG) has only waves of 0 or 1 cycle,
    and the radius of 1 keeps the ones along an axis and leaves out the diagonal ones.  Smooth
    edges and blobs score high; pixel noise spreads evenly and scores the share of low
    frequencies among the k*k - 1 that are not the mean (8 of 48 for 7x7, 4 of 8 for 3x3).
    """
    k = np.asarray(kernels, dtype=np.float64)
    if k.ndim != 4:
        raise ValueError(f"Expected kernels of shape (k_h, k_w, c, n), got {k.shape}.")
    kh, kw = k.shape[:2]
    centred = k - k.mean(axis=(0, 1), keepdims=True)
    power = np.abs(np.fft.fft2(centred, axes=(0, 1))) ** 2
    fy = np.fft.fftfreq(kh)[:, None] * kh / max(kh / 4, 1.0)   # in units of the radius
    fx = np.fft.fftfreq(kw)[None, :] * kw / max(kw / 4, 1.0)
    low = (fy ** 2 + fx ** 2 <= 1.0 + 1e-9)[..., None, None]
    total = power.sum(axis=(0, 1, 2))
    share = (power * low).sum(axis=(0, 1, 2)) / np.maximum(total, 1e-20)
    return share.astype(np.float32)


def dead_fraction(kernels, threshold: float = 0.1) -> float:
    """Share of kernels whose norm is under ``threshold`` x the median norm.  Lesson 1."""
    k = np.asarray(kernels, dtype=np.float64)
    norms = np.sqrt((k.reshape(-1, k.shape[-1]) ** 2).sum(axis=0))
    return float(np.mean(norms < threshold * np.median(norms)))


def smoothness_report(trained_kernels, untrained_kernels) -> dict:
    """The numbers lesson 1 prints: median low-frequency share, its ratio to the untrained
    initialization, and the share of dead kernels."""
    trained = float(np.median(low_frequency_share(trained_kernels)))
    init = float(np.median(low_frequency_share(untrained_kernels)))
    return {
        "median_low_freq_share": trained,
        "untrained_median_low_freq_share": init,
        "smoothness_ratio": trained / max(init, 1e-12),
        "dead_fraction": dead_fraction(trained_kernels),
    }


# --------------------------------------------------------------------------- colour order
def _reverses_channels(model, layer) -> bool:
    """True when the model flips RGB to BGR before ``layer`` (the VGG preprocessing layer)."""
    for lyr in model.layers:
        if lyr is layer:
            return False
        if isinstance(lyr, _models.ImageNetPreprocess):
            return True
    return False


def rgb_filters(model, layer=None) -> np.ndarray:
    """First-layer kernels with their input channels in R, G, B order, for drawing.  Lesson 1.

    Same as :func:`first_layer_filters` except for models that turn the RGB input into BGR
    before the first conv (VGG's Caffe preprocessing): their kernels are flipped back, so
    that a kernel that looks for red is drawn red.

    Written out in lesson 01, "In plain code: first-layer kernels".
    """
    lyr = _conv(model, layer)
    kernels = first_layer_filters(model, lyr)
    return kernels[:, :, ::-1, :].copy() if _reverses_channels(model, lyr) else kernels


def untrained_twin(model):
    """The same architecture with fresh, untrained weights.  Lesson 1 compares the two.

    For ``course-cnn`` this is exactly the network before training (same initializer, scale and
    seed as the training script).  For any other model (VGG16: 138 M weights) only the layers
    up to its first conv are rebuilt with fresh weights: that is all lesson 1 draws, and a
    second full VGG would not fit a 2 GB Binder machine.
    """
    model = _checks.model(model)
    name = _models.model_name(model)
    try:
        meta = _models.model_metadata(name)
    except (FileNotFoundError, ValueError):
        meta = None
    if meta is not None and "architecture" in meta:
        arch, tr = meta["architecture"], meta.get("training", {})
        return _models.build_course_cnn(
            num_classes=len(meta["class_names"]), input_size=arch["input_size"],
            widths=tuple(arch["widths"]), kernel1=arch["kernel1"],
            init_scale=tr.get("init_scale", 1.0), seed=tr.get("seed", 0), name=name)
    first = first_layer(model)
    inputs = keras.Input(model.input_shape[1:])
    x = inputs
    for layer in _graph.chain(model, first):     # input -> first conv, in graph order
        fresh = layer.__class__.from_config(_reseeded(layer.get_config()))  # new weights
        x = fresh(x)
    twin = keras.Model(inputs, x, name=f"{model.name}_untrained_first_layer")
    return _models._tag(twin, name=name, class_names=_models.class_names(model))


def _reseeded(config: dict) -> dict:
    """A layer config whose seeded initializers get another seed, so a rebuilt layer draws
    weights of its own (a model built with weights=None would otherwise be its own twin)."""
    for key, value in config.items():
        if key.endswith("_initializer") and isinstance(value, dict) and \
                isinstance(value.get("config", {}).get("seed"), int):
            value["config"]["seed"] += 7919
    return config


# --------------------------------------------------------------------------- drawing
def _as_kernels(kernels_or_model):
    if isinstance(kernels_or_model, np.ndarray):
        return kernels_or_model.astype(np.float32)
    if kernels_or_model is None or isinstance(kernels_or_model, str) or \
            hasattr(kernels_or_model, "layers"):
        return rgb_filters(_checks.model(kernels_or_model, "kernels_or_model"))
    return np.asarray(kernels_or_model, dtype=np.float32)


def plot_filter_grid(kernels_or_model, mode: str = "per_kernel", ncols: int = 8, size: float = 0.9,
                     title=None, ax=None, numbers: bool = True):
    """Every kernel as an enlarged RGB tile, in one grid.  Lesson 1.

    Accepts a model (its first conv layer is used) or an array (k_h, k_w, 3, n).  ``mode`` is
    the tile normalization of :func:`kernel_tiles`.  Tiles are drawn with nearest-neighbour
    enlargement, so 3x3 VGG kernels show as 3x3 blocks.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    tiles = kernel_tiles(_as_kernels(kernels_or_model), mode)
    size = _checks.number("size", size, positive=True)
    n, kh, kw, _ = tiles.shape
    ncols = min(_checks.integer("ncols", ncols, low=1), n)
    nrows = int(np.ceil(n / ncols))
    pad = 1
    canvas = np.ones((nrows * (kh + pad) + pad, ncols * (kw + pad) + pad, 3), np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        canvas[pad + r * (kh + pad): pad + r * (kh + pad) + kh,
               pad + c * (kw + pad): pad + c * (kw + pad) + kw] = tile
    if ax is None:
        fig, ax = plt.subplots(figsize=(size * ncols, size * nrows + 0.4))
    else:
        fig = ax.figure
    ax.imshow(canvas, interpolation="nearest")
    if numbers and n <= 64:
        for i in range(n):
            r, c = divmod(i, ncols)
            ax.text(pad + c * (kw + pad) - 0.5, pad + r * (kh + pad) - 0.5, str(i), fontsize=6,
                    color="black", va="bottom", ha="left")
    ax.set_title(title or f"{n} kernels of {kh}x{kw}x3 ({mode.replace('_', '-')} scale)", fontsize=9)
    ax.axis("off")
    return fig


def plot_normalizations(kernels_or_model, ncols: int = 8):
    """The same kernels with per-kernel and with shared scaling, side by side.  Lesson 1."""
    import matplotlib.pyplot as plt

    kernels = _as_kernels(kernels_or_model)
    n = kernels.shape[-1]
    ncols = min(_checks.integer("ncols", ncols, low=1), n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(1, 2, figsize=(2 * 0.75 * ncols + 0.6, 0.75 * nrows + 0.8))
    plot_filter_grid(kernels, "per_kernel", ncols, ax=axes[0],
                     title="per-kernel: every pattern visible, strength hidden")
    plot_filter_grid(kernels, "shared", ncols, ax=axes[1],
                     title="shared: strength visible, weak kernels fade to grey")
    fig.tight_layout()
    return fig


def plot_smoothness(trained_kernels, untrained_kernels, ax=None):
    """The smoothness figure: each kernel's low-frequency energy share, trained vs untrained.

    One dot per kernel, the medians as bars, the ratio of medians and the dead-kernel share in
    the title (the numbers of :func:`smoothness_report`).  Lesson 1.
    """
    import matplotlib.pyplot as plt

    rep = smoothness_report(trained_kernels, untrained_kernels)
    shares = [low_frequency_share(untrained_kernels), low_frequency_share(trained_kernels)]
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 3.2))
    else:
        fig = ax.figure
    rng = np.random.default_rng(0)
    for x, (s, colour) in enumerate(zip(shares, ("tab:grey", "tab:blue"))):
        ax.scatter(x + rng.uniform(-0.12, 0.12, len(s)), s, s=14, color=colour, alpha=0.8)
        ax.hlines(np.median(s), x - 0.25, x + 0.25, color="black", lw=2)
    ax.set_xticks([0, 1], ["untrained", "trained"])
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("share of energy at low frequency")
    ax.set_title(f"median ratio {rep['smoothness_ratio']:.1f}x · dead kernels "
                 f"{rep['dead_fraction']:.0%}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_trained_vs_untrained(model, untrained=None, mode: str = "per_kernel", ncols: int = 8):
    """Trained kernels, untrained kernels of the same architecture, and the smoothness figure.

    ``untrained`` defaults to :func:`untrained_twin`.  Lesson 1: training turns noise into
    edges and colour blobs.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    untrained = untrained_twin(model) if untrained is None else untrained
    trained_k, init_k = rgb_filters(model), rgb_filters(_checks.model(untrained, "untrained"))
    n = trained_k.shape[-1]
    ncols = min(_checks.integer("ncols", ncols, low=1), n)
    nrows = int(np.ceil(n / ncols))
    width = 0.7 * ncols
    fig, axes = plt.subplots(1, 3, figsize=(2 * width + 4.2, max(2.6, 0.7 * nrows + 0.9)),
                             gridspec_kw={"width_ratios": [width, width, 3.6]})
    plot_filter_grid(init_k, mode, ncols, ax=axes[0], title="untrained (random start)")
    plot_filter_grid(trained_k, mode, ncols, ax=axes[1], title="trained")
    plot_smoothness(trained_k, init_k, ax=axes[2])
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- one kernel
def _response_model(model, layer):
    """The sub-model from the input to conv ``layer``'s output after BN and ReLU (one cache:
    ``ch.graph.submodel``)."""
    conv = _graph.require_conv(model, layer)
    return _graph.submodel(model, _graph.activation_layer(model, conv.name))


def kernel_response(model, image, kernel: int, layer=None) -> np.ndarray:
    """Response map of one first-layer kernel on one image, shape (h, w).  Lesson 1 (see 3.2).

    The image is converted and resized to the model's input; the map is the output of the
    kernel's conv followed by its batch norm and ReLU (``ch.models.activation_layer``), i.e.
    what the next layer receives.  Bright = the pattern of the kernel is there.
    """
    lyr = _conv(model, layer)
    kernel = _checks.check_index(kernel, lyr.filters, "kernel",
                                 f"Layer {lyr.name!r} has {lyr.filters} kernels.")
    img = _checks.image_for(model, image)
    # all kernels' maps of this image at once, cached: the explorer's kernel slider reuses them
    act = _widgets.cached(("filters.responses", _widgets.model_key(model), lyr.name,
                           _widgets.array_key(img)),
                          lambda: np.asarray(_response_model(model, lyr)(img[None], training=False)))
    return act[0, :, :, kernel]


def plot_kernel(model, kernel: int, image=None, image_name: str = "photo", layer=None):
    """One kernel: its RGB tile, its R, G, B channels, and (with ``image``) its response map.

    Lesson 1's widget draws this.  Channel panels share one symmetric colour scale (red =
    positive weight, blue = negative), so the channels can be compared.  Returns the figure.
    """
    _checks.model(model)
    fig, parts = _kernel_figure(image is not None)
    _kernel_update(parts, model, kernel, image, image_name, layer)
    return fig


def _kernel_figure(with_image: bool):
    """The empty figure of :func:`plot_kernel`: (figure, the artists that change)."""
    import matplotlib.pyplot as plt

    ncol = 4 + (2 if with_image else 0)
    fig, axes = plt.subplots(1, ncol, figsize=(1.9 * ncol, 2.3))
    blank = np.zeros((2, 2))
    parts = {"rgb": axes[0].imshow(np.zeros((2, 2, 3)), interpolation="nearest")}
    for c, name in enumerate("RGB"):
        parts[name] = axes[1 + c].imshow(blank, cmap="RdBu_r", interpolation="nearest")
        axes[1 + c].set_title(f"{name} weights")
    if with_image:
        parts["photo"] = axes[4].imshow(np.zeros((2, 2, 3)))
        parts["response"] = axes[5].imshow(blank, cmap="magma", interpolation="nearest")
        parts["colorbar"] = fig.colorbar(parts["response"], ax=axes[5], fraction=0.046, pad=0.04).ax
    for ax in axes:
        ax.axis("off")
        ax.set_title(ax.get_title() or " ")
    fig.tight_layout()
    parts["titles"] = [axes[0].title] + ([axes[4].title, axes[5].title] if with_image else [])
    return fig, parts


def _kernel_update(parts, model, kernel, image, image_name, layer):
    lyr = _conv(model, layer)
    kernels = rgb_filters(model, lyr)
    kernel = _checks.check_index(kernel, kernels.shape[-1], "kernel",
                                 f"Layer {lyr.name!r} has {kernels.shape[-1]} kernels.")
    k = kernels[..., kernel]
    _plotting.set_image(parts["rgb"], kernel_tiles(k[..., None], "per_kernel")[0])
    parts["titles"][0].set_text(f"kernel {kernel} (RGB)")
    lim = float(np.abs(k).max()) or 1.0
    for c, name in enumerate("RGB"):
        _plotting.set_image(parts[name], k[..., c], -lim, lim)
    if image is not None:
        img = _checks.image_for(model, image)
        resp = kernel_response(model, img, kernel, lyr)
        _plotting.set_image(parts["photo"], img)
        parts["titles"][1].set_text(image_name)
        _plotting.set_image(parts["response"], resp, float(resp.min()), max(float(resp.max()), 1e-6))
        parts["titles"][2].set_text(f"response (max {resp.max():.2f})")


def kernel_explorer(model, photos, layer=None):
    """Widget for lesson 1: pick a kernel and a photo; see its channels and its response map.

    ``photos`` is a dict name -> image (e.g. ``ch.data.sample_images()``) or a list of images.
    The figure is built once; a redraw only updates its images and titles.
    """
    model = _checks.model(model)
    names, images = _checks.names_and_images(photos, "photos")
    lyr = _conv(model, layer)
    prepared = {n: _checks.image_for(model, im) for n, im in zip(names, images)}
    view = _widgets.FigureView(lambda: _kernel_figure(True))

    def draw(kernel, photo):
        _kernel_update(view.parts, model, kernel, prepared[photo], photo, lyr)
        return view.live

    return _widgets.interactive_plot(draw, kernel=(0, lyr.filters - 1, 1), photo=names)


# --------------------------------------------------------------------------- why only layer 1
def second_layer(model):
    """The conv layer after the first one (its kernels read feature maps, not RGB).  Lesson 1."""
    names = _graph.conv_layer_names(_checks.model(model))
    if len(names) < 2:
        raise ValueError(f"{model.name} has fewer than two conv layers.")
    return model.get_layer(names[1])


def plot_second_layer_kernel(model, kernel: int = 0, layer=None, ncols: int = 8):
    """One kernel of the second conv layer, one grey slice per input channel.  Lesson 1.

    A second-layer kernel is k x k x C with C = the number of first-layer kernels (16 for
    course-cnn, 64 for VGG16): there is no way to show C channels as one colour picture, which
    is why the rest of the course looks at responses instead of weights.  Returns the figure.
    """
    import matplotlib.pyplot as plt

    lyr = second_layer(model) if layer is None else _graph.require_conv(_checks.model(model), layer)
    w = lyr.get_weights()[0]
    kernel = _checks.check_index(kernel, w.shape[-1], "kernel",
                                 f"Layer {lyr.name!r} has {w.shape[-1]} kernels.")
    k = w[..., kernel]
    c = k.shape[2]
    ncols = min(_checks.integer("ncols", ncols, low=1), c)
    nrows = int(np.ceil(c / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.95 * ncols, 0.95 * nrows + 0.6), squeeze=False)
    lim = float(np.abs(k).max()) or 1.0
    for i, ax in enumerate(axes.flat):
        if i < c:
            ax.imshow(k[:, :, i], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_title(f"in {i}", fontsize=7)
        ax.axis("off")
    fig.suptitle(f"{lyr.name} kernel {kernel}: {k.shape[0]}x{k.shape[1]}x{c} = {k.size} weights, "
                 f"{c} input channels, not 3", fontsize=9)
    fig.tight_layout()
    return fig
