"""How the ascent describes its image (the *parameterization*) and the random transformations
each step sees (transformation robustness).  Lesson 3.6, "Parameterizations".

* ``"pixel"``: one free number per pixel and colour;
* ``"fft"``: the image's Fourier coefficients, each scaled by 1 / its frequency, so that a
  step of the same size on every coefficient changes coarse patterns as much as fine ones
  (natural images have about that spectrum; Olah et al., "Feature Visualization", 2017);
* ``"fft+decorrelated"``: the same, in a colour space where the three channels are
  uncorrelated: the free numbers are mixed into R, G, B by :func:`colour_matrix`, the square
  root of the colour covariance of the course's photos.

Every parameterization ends in a sigmoid, so the image is always in (0, 1), and all free
numbers at 0 is the grey image.  :func:`transform` is the random shift, scale and rotation of
one step (a bilinear resampling written with ``tf.gather``, so TensorFlow's own gradient flows
through it).
"""
from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from .. import _checks

#: The parameterizations :func:`course_helpers.ascent.render` accepts.
PARAMS = ("pixel", "fft", "fft+decorrelated")


# --------------------------------------------------------------------------- colour
def photo_pixels(size: int = 64) -> np.ndarray:
    """Every pixel of the course's shipped photos (:func:`course_helpers.data.sample_images`)
    as rows of (R, G, B), float64 (N, 3).  The colour statistics below come from these."""
    from .. import data as _data

    photos = _data.sample_images(_checks.integer("size", size, low=4))
    return np.concatenate([img.reshape(-1, 3) for img in photos.values()]).astype(np.float64)


@functools.lru_cache(maxsize=4)
def _colour_stats(size: int):
    px = photo_pixels(size)
    cov = np.cov(px, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)              # cov = vecs @ diag(vals) @ vecs.T
    sqrt = vecs * np.sqrt(np.maximum(vals, 0))    # sqrt @ sqrt.T = cov
    return cov, sqrt


def colour_covariance(size: int = 64) -> np.ndarray:
    """The 3 x 3 covariance of R, G, B over all pixels of the shipped photos.  Lesson 3.6."""
    return _colour_stats(int(size))[0].copy()


def colour_matrix(size: int = 64, normalized: bool = False) -> np.ndarray:
    """The square root of :func:`colour_covariance`: a 3 x 3 matrix ``M`` with ``M @ M.T`` equal
    to the covariance.  Three uncorrelated numbers of variance 1, mixed by ``M``, have the
    photos' colour covariance.  Its columns are the principal colour directions (the first is
    close to "brightness": R, G and B together), each scaled by its standard deviation.

    ``normalized=True`` divides by the largest column length, as the ascent uses it (the
    brightest direction then has length 1).  Lesson 3.6.

    Written out in lesson 05, "In plain code: decorrelated colour".
    """
    m = _colour_stats(int(size))[1].copy()
    if normalized:
        m = m / np.linalg.norm(m, axis=0).max()
    return m


# --------------------------------------------------------------------------- spectrum
def frequency_scale(h: int, w: int, decay: float = 1.0) -> np.ndarray:
    """The weight of each coefficient of ``np.fft.rfft2`` of an h x w image: 1 / f**decay, with
    f the frequency in cycles per pixel (floored at 1 / max(h, w), so the mean gets the weight
    of the lowest frequency), times sqrt(h * w) so that unit coefficients give pixel values of
    about 1.  Shape (h, w // 2 + 1)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    return (np.sqrt(h * w) / np.maximum(f, 1.0 / max(h, w)) ** decay).astype(np.float32)


def param_shape(param: str, batch: int, h: int, w: int) -> tuple:
    """The shape of the free numbers for ``param``: the image itself for pixels, (real,
    imaginary) parts of every rfft2 coefficient of every colour for fft."""
    if param == "pixel":
        return (batch, h, w, 3)
    return (batch, 3, h, w // 2 + 1, 2)


def initial_params(param: str, batch: int, h: int, w: int, seed: int = 0, sd: float = 0.01):
    """Small random free numbers (normal, standard deviation ``sd``) from ``seed``: an image
    close to grey with a little noise."""
    rng = np.random.default_rng(_checks.integer("seed", seed, low=0))
    return rng.normal(0.0, sd, param_shape(param, batch, h, w)).astype(np.float32)


def _linear_image(p, param, h, w, scale):
    """The image before the colour mixing and the sigmoid, (B, H, W, 3)."""
    if param == "pixel":
        return p
    spectrum = tf.complex(p[..., 0] * scale, p[..., 1] * scale)     # (B, 3, H, W//2+1)
    img = tf.signal.irfft2d(spectrum, fft_length=[h, w])            # (B, 3, H, W)
    return tf.transpose(img, [0, 2, 3, 1]) / 4.0


def to_image(p, param: str, h: int, w: int, decay: float = 1.0, colour=None):
    """The image (B, H, W, 3) in (0, 1) that the free numbers ``p`` describe (a TensorFlow
    function: the ascent's gradient flows through it).  ``colour`` is the 3 x 3 mixing matrix
    (``"fft+decorrelated"`` uses :func:`colour_matrix` ``(normalized=True)``)."""
    scale = tf.constant(frequency_scale(h, w, decay)) if param != "pixel" else None
    lin = _linear_image(tf.convert_to_tensor(p, tf.float32), param, h, w, scale)
    if param == "fft+decorrelated":
        m = tf.constant(colour_matrix(normalized=True) if colour is None else colour, tf.float32)
        lin = tf.tensordot(lin, tf.transpose(m), 1)
    return tf.sigmoid(lin)


# --------------------------------------------------------------------------- robustness
def _affine(x, s, theta):
    """Resample a batch (B, H, W, C): output pixel p reads the input at the point
    R(-theta) (p - centre) / s + centre (bilinear; edge pixels repeat outside).  Scaling by
    ``s`` > 1 zooms in; ``theta`` (radians) turns the picture anticlockwise on screen."""
    shape = tf.shape(x)
    h, w = shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    yy, xx = tf.meshgrid(tf.range(hf), tf.range(wf), indexing="ij")
    cy, cx = (hf - 1) / 2, (wf - 1) / 2
    c, sn = tf.cos(theta), tf.sin(theta)
    dy, dx = yy - cy, xx - cx
    sy = tf.clip_by_value((c * dy - sn * dx) / s + cy, 0.0, hf - 1)
    sx = tf.clip_by_value((sn * dy + c * dx) / s + cx, 0.0, wf - 1)
    y0, x0 = tf.floor(sy), tf.floor(sx)
    wy, wx = (sy - y0)[..., None], (sx - x0)[..., None]
    y0i, x0i = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1i, x1i = tf.minimum(y0i + 1, h - 1), tf.minimum(x0i + 1, w - 1)
    flat = tf.reshape(x, [shape[0], h * w, shape[3]])

    def at(yi, xi):
        return tf.reshape(tf.gather(flat, tf.reshape(yi * w + xi, [-1]), axis=1),
                          [shape[0], h, w, shape[3]])

    top = at(y0i, x0i) * (1 - wx) + at(y0i, x1i) * wx
    bottom = at(y1i, x0i) * (1 - wx) + at(y1i, x1i) * wx
    return top * (1 - wy) + bottom * wy


def random_transform_values(seed, t, jitter, scale, rotate):
    """The step's random (shift_y, shift_x), scale and angle (radians), drawn from the
    stateless generator with seed (seed, t): the same seed and step give the same values."""
    key = tf.stack([tf.cast(seed, tf.int32), tf.cast(t, tf.int32)])
    shift = tf.random.stateless_uniform([2], seed=key, minval=-jitter, maxval=jitter + 1,
                                        dtype=tf.int32)
    u = tf.random.stateless_uniform([2], seed=key + tf.constant([0, 7919]), dtype=tf.float32)
    s = scale[0] + (scale[1] - scale[0]) * u[0]
    theta = (2.0 * u[1] - 1.0) * rotate * (np.pi / 180.0)
    return shift, s, theta


def transform(x, seed, t, jitter, scale, rotate):
    """Transformation robustness: the image batch ``x`` shifted circularly by up to ``jitter``
    pixels, scaled by a factor in [scale[0], scale[1]] and rotated by up to ``rotate`` degrees
    either way, all random for (seed, t).  The step's objective reads this image."""
    shift, s, theta = random_transform_values(seed, t, jitter, scale, rotate)
    x = tf.roll(x, shift, axis=[1, 2])
    return _affine(x, s, theta)


def check_robustness(jitter, scale, rotate):
    """(jitter, (low, high), rotate) checked: jitter a whole number >= 0, scale factors > 0 with
    low <= high (one number s means (s, s)), rotate >= 0 degrees."""
    jitter = _checks.integer("jitter", jitter, low=0)
    if np.ndim(scale) == 0:
        scale = (scale, scale)
    if len(scale) != 2:
        raise ValueError(f"scale must be a (low, high) pair of factors such as (0.95, 1.05), "
                         f"got {scale!r}.")
    lo = _checks.number("scale", scale[0], positive=True, fix="Use (1, 1) for no scaling.")
    hi = _checks.number("scale", scale[1], positive=True, fix="Use (1, 1) for no scaling.")
    if lo > hi:
        raise ValueError(f"scale must be (low, high) with low <= high, got {scale!r}.")
    rotate = _checks.number("rotate", rotate, low=0, fix="It is the largest angle in degrees; "
                            "0 switches rotation off.")
    return jitter, (lo, hi), rotate
