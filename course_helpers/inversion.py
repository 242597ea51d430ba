"""Lesson 4.1, first step: feature inversion -- what one layer keeps of an image (notebook 06).

Mahendran & Vedaldi (2015): take an image's feature maps at one layer, then start from noise and
change the pixels until the noise has the same feature maps.  What comes back is what the layer
kept; what is lost, the layer threw away.  The loss is the relative feature error, exactly the
*content loss* of style transfer (:func:`course_helpers.style.content_loss`), plus a smoothness
prior, style transfer's :func:`course_helpers.style.squared_variation` (Mahendran & Vedaldi's
V^beta with beta = 2).

* :func:`invert`: the reconstruction from one conv layer;
* :func:`invert_layers`: every conv layer, with the pixel error (MSE) and the structural
  similarity (SSIM, scikit-image) of each reconstruction against the image;
* :func:`plot_inversion` and :func:`plot_inversion_error`.

The whole optimization (Adam on the pixels, clipping to [0, 1]) is one compiled
``tf.function`` per model and layer, with TensorFlow's own gradients.  Nothing here changes a
model.
"""
from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from . import _checks, graph
from . import plotting as _plotting

#: The default recipe of :func:`invert`.
DEFAULTS = dict(steps=200, tv=0.1, lr=0.05)

#: model -> {layer name: compiled loop}
_LOOPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _loop(model, name):
    per_model = _LOOPS.setdefault(model, {})
    if name in per_model:
        return per_model[name]
    from .style import squared_variation

    features = graph.submodel(model, graph.activation_layer(model, name))
    f32 = tf.float32

    def run(x, target, steps, lr, tv):
        energy = tf.reduce_sum(tf.square(target)) + 1e-8
        m, v = tf.zeros_like(x), tf.zeros_like(x)
        losses = tf.TensorArray(f32, size=steps)
        for t in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.square(features(x, training=False) - target)) / energy
                total = loss + tv * squared_variation(x)[0]
            g = tape.gradient(total, x)
            # Adam (Kingma & Ba 2015) on the pixels, then back into [0, 1]
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            k = tf.cast(t + 1, f32)
            step = lr * (m / (1 - 0.9 ** k)) / (tf.sqrt(v / (1 - 0.999 ** k)) + 1e-8)
            x = tf.clip_by_value(x - step, 0.0, 1.0)
            losses = losses.write(t, loss)
        final = tf.reduce_sum(tf.square(features(x, training=False) - target)) / energy
        return x, tf.concat([losses.stack(), [final]], 0)

    spec = [tf.TensorSpec((1, None, None, 3), f32), tf.TensorSpec(None, f32),
            tf.TensorSpec([], tf.int32), tf.TensorSpec([], f32), tf.TensorSpec([], f32)]
    per_model[name] = (features, tf.function(run, input_signature=spec))
    return per_model[name]


def _run(model, image, layer, steps, tv, lr, seed):
    model = _checks.model(model)
    conv = _checks.conv_layer(model, layer)
    img = _checks.image_for(model, image)
    steps = _checks.integer("steps", steps, low=0)
    tv = _checks.number("tv", tv, low=0, fix="It weighs the smoothness prior; 0 switches it off.")
    lr = _checks.number("lr", lr, positive=True, fix="It is the Adam step size, e.g. 0.05.")
    seed = _checks.integer("seed", seed, low=0)
    features, run = _loop(model, conv.name)
    target = features(img[None], training=False)
    noise = np.random.default_rng(seed).uniform(0, 1, (1,) + img.shape).astype(np.float32)
    x, losses = run(tf.constant(noise), target, tf.constant(steps, tf.int32),
                    tf.constant(lr, tf.float32), tf.constant(tv, tf.float32))
    return img, np.clip(x.numpy()[0], 0.0, 1.0), losses.numpy()


def invert(model, image, layer, steps: int = DEFAULTS["steps"], tv: float = DEFAULTS["tv"],
           seed: int = 0, lr: float = DEFAULTS["lr"]) -> np.ndarray:
    """The image rebuilt from ``image``'s feature maps at the conv layer ``layer``.  Lesson 4.1.

    Start from uniform noise (seeded by ``seed``); ``steps`` Adam steps of size ``lr`` on the
    pixels lower the relative feature error ||F(x) - F(image)||^2 / ||F(image)||^2 (F: the
    layer's output after its batch norm and ReLU, :func:`course_helpers.graph.activation_layer`;
    the content loss of style transfer) plus ``tv`` times
    :func:`course_helpers.style.squared_variation` (a smoothness prior); after each step the
    image is clipped to [0, 1].  Returns the reconstruction, float32 (H, W, 3) in [0, 1].
    Mahendran & Vedaldi 2015.

    Written out in lesson 06, "In plain code: feature inversion".
    """
    return _run(model, image, layer, steps, tv, lr, seed)[1]


def feature_loss_history(model, image, layer, steps: int = DEFAULTS["steps"],
                         tv: float = DEFAULTS["tv"], seed: int = 0,
                         lr: float = DEFAULTS["lr"]) -> np.ndarray:
    """The relative feature error of :func:`invert`'s image before each step, and at the end
    (``steps + 1`` values; the smoothness term not included)."""
    return _run(model, image, layer, steps, tv, lr, seed)[2]


def reconstruction_error(image, reconstruction) -> dict:
    """``{"mse": mean squared pixel error, "ssim": structural similarity}`` of a reconstruction
    against the image (SSIM from scikit-image: 1 = the same structure, near 0 = unrelated)."""
    from skimage.metrics import structural_similarity

    a = np.asarray(image, np.float64)
    b = np.asarray(reconstruction, np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"image and reconstruction must be images of one shape (H, W, 3); got "
                         f"{a.shape} and {b.shape}.")
    win = min(7, *(s if s % 2 else s - 1 for s in a.shape[:2]))
    return {"mse": float(np.mean((a - b) ** 2)),
            "ssim": float(structural_similarity(a, b, channel_axis=-1, data_range=1.0,
                                                win_size=max(3, win)))}


def invert_layers(model, image, layers=None, steps: int = DEFAULTS["steps"],
                  tv: float = DEFAULTS["tv"], seed: int = 0, lr: float = DEFAULTS["lr"]) -> dict:
    """:func:`invert` at each conv layer (default: every one, first to last).  Lesson 4.1.

    Returns ``{"image", "layers", "images" (n, H, W, 3), "mse" (n,), "ssim" (n,)}``: the
    reconstructions and their pixel MSE and SSIM against ``image``, in the order of depth.
    """
    model = _checks.model(model)
    names = _checks.conv_layer_names(model, layers)
    img = _checks.image_for(model, image)
    images = np.stack([invert(model, img, name, steps, tv, seed, lr) for name in names])
    errors = [reconstruction_error(img, rec) for rec in images]
    return {"image": img, "layers": names, "images": images,
            "mse": np.array([e["mse"] for e in errors]),
            "ssim": np.array([e["ssim"] for e in errors])}


def plot_inversion(result, title=None):
    """The image and its reconstruction from each layer side by side, titled with MSE and SSIM
    (``result`` from :func:`invert_layers`).  Returns the Figure."""
    tiles = [result["image"]] + list(result["images"])
    titles = ["original"] + [f"from {n}\nMSE {m:.3f} · SSIM {s:.2f}"
                             for n, m, s in zip(result["layers"], result["mse"], result["ssim"])]
    return _plotting.image_grid(tiles, titles, ncols=len(tiles), size=1.9, suptitle=title)


def plot_inversion_error(result, ax=None):
    """Pixel MSE and SSIM of the reconstructions against depth (``result`` from
    :func:`invert_layers`).  Returns the Figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 3))
    depth = np.arange(1, len(result["layers"]) + 1)
    ax.plot(depth, result["mse"], "o-", color="tab:red", label="pixel MSE (lower = closer)")
    ax.set_xticks(depth, result["layers"])
    ax.set_xlabel("layer (deeper to the right)")
    ax.set_ylabel("pixel MSE", color="tab:red")
    right = ax.twinx()
    right.plot(depth, result["ssim"], "s--", color="tab:blue", label="SSIM (higher = closer)")
    right.set_ylabel("SSIM", color="tab:blue")
    right.set_ylim(-0.05, 1.05)
    ax.set_title("reconstruction error against depth", fontsize=9)
    ax.figure.tight_layout()
    return ax.figure
