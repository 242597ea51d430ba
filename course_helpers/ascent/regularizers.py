"""The regularizers of gradient ascent (Yosinski et al. 2015) and a measure of what they remove.

Gaussian blur (:func:`blur`, :func:`gaussian_kernel`), the total-variation image prior
(:func:`total_variation`) and :func:`high_frequency_share`.  L2 decay, jitter and clipping are
one line each and live in the step itself (:mod:`.loop`).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import _checks

#: Below this neighbour difference the total-variation penalty is quadratic (smooth), above it
#: it grows linearly like plain TV (the Charbonnier / pseudo-Huber form).
TV_EPS = 0.05


def gaussian_kernel(sigma: float) -> np.ndarray:
    """1-D Gaussian weights (sum 1) of radius ``round(3 * sigma)``, at least 1.  Lesson 3.6."""
    sigma = _checks.number("blur_sigma", sigma, low=0, fix="0 switches the blur off.")
    if sigma == 0:
        return np.ones(1, np.float32)
    r = max(1, int(3.0 * sigma + 0.5))
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _blur(x, k1d):
    """Separable Gaussian blur of a batch (B, H, W, 3), mirror padding (numpy 'reflect')."""
    r = tf.shape(k1d)[0] // 2
    xp = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    kv = tf.tile(tf.reshape(k1d, [-1, 1, 1, 1]), [1, 1, 3, 1])
    kh = tf.tile(tf.reshape(k1d, [1, -1, 1, 1]), [1, 1, 3, 1])
    xp = tf.nn.depthwise_conv2d(xp, kv, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(xp, kh, [1, 1, 1, 1], "VALID")


def _as_batch(image, what="image", rgb=True):
    x = np.asarray(image, dtype=np.float32)
    if not rgb and x.ndim == 2:
        x = x[..., None]
    if x.ndim not in (3, 4) or (rgb and x.shape[-1] != 3):
        raise ValueError(f"{what} must be an RGB image (H, W, 3) or a batch (N, H, W, 3), got "
                         f"shape {x.shape}; convert it with ch.data.load_image.")
    return x[None] if x.ndim == 3 else x


def blur(image, sigma: float) -> np.ndarray:
    """The Gaussian blur the ascent applies every ``blur_every`` steps (mirror edges).  Lesson 3.6."""
    batch = _as_batch(image)
    out = _blur(tf.constant(batch), tf.constant(gaussian_kernel(sigma))).numpy()
    return out[0] if np.ndim(image) == 3 else out


def _total_variation(x):
    """Smoothed isotropic total variation of a batch: sum of sqrt(dy^2 + dx^2 + eps^2) - eps."""
    dy = x[:, 1:, :-1, :] - x[:, :-1, :-1, :]
    dx = x[:, :-1, 1:, :] - x[:, :-1, :-1, :]
    return tf.reduce_sum(tf.sqrt(dy * dy + dx * dx + TV_EPS**2) - TV_EPS)


def total_variation(image) -> float:
    """The course's total variation: the image prior the ascent subtracts (times ``tv``).

    For each pixel and channel, sqrt(dy^2 + dx^2 + eps^2) - eps with its lower and right
    neighbours (eps = :data:`TV_EPS`), summed over the image (a batch: over all its images).
    Large for noise, small for smooth pictures with few edges; like plain total variation it
    grows with the height of an edge, not its square, so it keeps edges sharp.  Lesson 3.6.
    (Style transfer's smoothness term, a mean of *squared* differences, is
    :func:`course_helpers.style.squared_variation`.)
    """
    return float(_total_variation(tf.constant(_as_batch(image, rgb=False))))


def high_frequency_share(image, cutoff: float = 0.25) -> float:
    """Share of an image's (mean-removed) spectral energy above ``cutoff`` cycles/pixel.

    Pixel noise spreads its energy evenly and scores about 0.8; smooth pictures score near 0.
    Lesson 3.6 prints it under every ablation panel to show what each regularizer removes.
    """
    cutoff = _checks.number("cutoff", cutoff, low=0, high=0.71,
                            fix="It is a frequency in cycles per pixel, e.g. 0.25.")
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(f"image must be one image (H, W) or (H, W, C), got shape {x.shape}.")
    x = x - x.mean(axis=(0, 1), keepdims=True)
    p = np.abs(np.fft.fft2(x, axes=(0, 1))) ** 2
    fy = np.fft.fftfreq(x.shape[0])[:, None]
    fx = np.fft.fftfreq(x.shape[1])[None, :]
    high = (np.sqrt(fy**2 + fx**2) > cutoff)[..., None]
    total = p.sum()
    return float((p * high).sum() / total) if total > 0 else 0.0
