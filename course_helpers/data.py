"""Images for every lesson: generated shapes with masks, real photos, and an image loader.

* :func:`make_shapes` draws the data set that ``course-cnn`` learns (lessons 2, 3.3, 3.5, 8).
* :func:`sample_images` returns real photos that ship with scikit-image and scikit-learn.
* :func:`load_image` turns a path, a PIL image or an array into float32 RGB in [0, 1].
* :func:`photo_set`: a few hundred labelled ImageNet photos (Imagenette's validation images),
  once fetched where there is internet (``python -m course_helpers.data --fetch photos``;
  ``ch.photos`` does the fetching).

Everything else here works offline.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from . import photos as _photos  # (standard library only: the fetching)

#: The shape classes of the generated data set, in label order.
SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "star", "ring")

#: scikit-image photos used as backgrounds for the generated shapes.
TEXTURE_NAMES = ("brick", "grass", "gravel")

_SUPERSAMPLE = 3  # sub-pixel samples per axis when drawing a shape (anti-aliasing)


# --------------------------------------------------------------------------- loading images
def load_image(source, size=None) -> np.ndarray:
    """Return ``source`` as a float32 RGB array in [0, 1], shape (H, W, 3).  Used in every lesson.

    ``source`` may be a file path, a PIL image or an array: grayscale (H, W) or (H, W, 1), RGB,
    RGBA (composited over white), uint8 (0..255) or float (0..1; 0..255 is rescaled).
    ``size``: an int gives a centre-cropped square of that side; a pair ``(h, w)`` resizes to it.
    """
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"No image file at {str(path)!r}: check the path and spelling.")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im.load()
                source = im.copy()
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(
                f"Could not read {str(path)!r} as an image ({err}). Use a PNG or JPEG file."
            ) from None
    if type(source).__module__.startswith("PIL."):
        im = source
        if im.mode not in ("RGB", "RGBA", "L", "LA"):
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        source = np.asarray(im)
    arr = np.asarray(source)
    if arr.dtype == object or arr.size == 0:
        raise ValueError(f"Expected an image array, got {type(source).__name__} of shape {arr.shape}.")
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise ValueError("Integer images must hold values 0..255 (uint8).")
        img = arr.astype(np.float32) / 255.0
    elif np.issubdtype(arr.dtype, np.floating):
        img = arr.astype(np.float32)
        if not np.all(np.isfinite(img)):
            raise ValueError("The image contains NaN or infinite values; replace them first "
                             "(e.g. np.nan_to_num(image)).")
        lo, hi = float(img.min()), float(img.max())
        if lo < -1e-3:
            raise ValueError(f"Float images must lie in [0, 1] (or 0..255); this one has minimum {lo:.3g}.")
        if hi > 1.0 + 1e-3:
            if hi > 255.0 + 1e-3:
                raise ValueError(f"Float image values go up to {hi:.3g}; expected [0, 1] or 0..255.")
            img = img / 255.0
    else:
        raise ValueError(f"Unsupported image dtype {arr.dtype}.")

    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise ValueError(f"Expected one image of shape (H, W) or (H, W, C); got shape {arr.shape}. "
                         "For a batch, call load_image on each image.")
    channels = img.shape[-1]
    if channels == 1:
        img = np.repeat(img, 3, axis=-1)
    elif channels == 2:  # grey + alpha
        grey, alpha = img[..., :1], img[..., 1:2]
        img = np.repeat(grey * alpha + (1.0 - alpha), 3, axis=-1)
    elif channels == 4:  # RGBA over white
        alpha = img[..., 3:4]
        img = img[..., :3] * alpha + (1.0 - alpha)
    elif channels != 3:
        raise ValueError(f"Expected 1, 3 or 4 channels, got {channels} (shape {arr.shape}).")
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    if size is not None:
        img = resize_image(img, size)
    return np.ascontiguousarray(img)


def resize_image(image: np.ndarray, size) -> np.ndarray:
    """Resize an RGB float image; an int ``size`` centre-crops to a square first.

    Used by :func:`load_image` and :func:`sample_images`.
    """
    from skimage.transform import resize

    if isinstance(size, (int, np.integer)):
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}.")
        h, w = image.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[top:top + side, left:left + side]
        shape = (int(size), int(size))
    else:
        shape = tuple(int(s) for s in size)
        if len(shape) != 2 or min(shape) <= 0:
            raise ValueError(f"size must be an int or a pair (height, width) of positive ints, got {size!r}.")
    if image.shape[:2] == shape:
        return image.astype(np.float32)
    out = resize(image, shape + (image.shape[2],), order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(out, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------- real photos
@functools.lru_cache(maxsize=None)
def _raw_photos():
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    photos = {
        "cat": skdata.chelsea(),
        "coffee": skdata.coffee(),
        "astronaut": skdata.astronaut(),
        "rocket": skdata.rocket(),
    }
    sk = load_sample_images()
    for fname, img in zip(sk.filenames, sk.images):
        photos[Path(fname).stem] = img  # china, flower
    return photos


def sample_images(size: int = 224) -> dict:
    """Real photos as float32 RGB squares of side ``size``: cat, coffee, astronaut, rocket, china, flower.

    They ship inside scikit-image and scikit-learn, so no download is needed.  Lessons 1, 3, 4, 6.
    """
    return {name: load_image(img, size=size) for name, img in _raw_photos().items()}


@functools.lru_cache(maxsize=None)
def _texture(name: str) -> np.ndarray:
    from skimage import data as skdata

    img = getattr(skdata, name)()
    return load_image(img)[..., 0]  # greyscale, float32 in [0, 1]


def textures(size: int = 224) -> dict:
    """The texture photos of scikit-image (brick, grass, gravel) as RGB squares.  Lessons 2, 6."""
    return {name: load_image(_texture(name), size=size) for name in TEXTURE_NAMES}


@functools.lru_cache(maxsize=8)
def _texture_pyramid(size: int):
    """Each texture at a few scales, so that crops of ``size`` pixels show varied detail."""
    from skimage.transform import rescale

    levels = []
    for name in TEXTURE_NAMES:
        tex = _texture(name)
        for factor in (size / 96.0, size / 160.0, size / 256.0):
            levels.append(rescale(tex, factor, anti_aliasing=True).astype(np.float32))
    return levels


# --------------------------------------------------------------------------- generated shapes
def _convex_pieces(kind: str):
    """The shape, in unit size around (0, 0), as a union of convex polygons (CCW vertices)."""
    if kind == "square":
        return [np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * 0.75]
    if kind == "triangle":
        ang = np.deg2rad([90, 210, 330])
        return [np.stack([np.cos(ang), np.sin(ang)], 1)]
    if kind == "cross":
        a, b = 1.0, 0.34
        return [np.array([[-b, -a], [b, -a], [b, a], [-b, a]], float),
                np.array([[-a, -b], [a, -b], [a, b], [-a, b]], float)]
    if kind == "star":
        ang = np.deg2rad(90 + np.arange(10) * 36)
        rad = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
        inner = pts[1::2]
        spikes = [np.stack([pts[(2 * i - 1) % 10], pts[2 * i], pts[2 * i + 1]]) for i in range(5)]
        return [inner] + spikes
    raise ValueError(kind)


def _inside_convex(u, v, verts):
    inside = np.ones(u.shape, bool)
    for (x0, y0), (x1, y1) in zip(verts, np.roll(verts, -1, axis=0)):
        inside &= (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0) >= 0
    return inside


def _shape_coverage(kind, cx, cy, radius, angle, size):
    """Fraction of each pixel covered by the shape (anti-aliased by supersampling)."""
    s = _SUPERSAMPLE
    coords = (np.arange(size * s, dtype=np.float32) + 0.5) / s
    dy, dx = coords[:, None] - cy, coords[None, :] - cx
    if kind in ("circle", "ring"):
        d2 = dx * dx + dy * dy
        inside = d2 <= radius * radius
        if kind == "ring":
            inside &= d2 >= (0.55 * radius) ** 2
    else:
        c, sn = np.cos(angle), np.sin(angle)
        u = (c * dx + sn * dy) / radius  # pixel position in the shape's own frame
        v = (-sn * dx + c * dy) / radius
        inside = np.zeros((size * s, size * s), bool)
        for piece in _convex_pieces(kind):
            inside |= _inside_convex(u, v, piece)
    return inside.reshape(size, s, size, s).mean(axis=(1, 3), dtype=np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    levels = _texture_pyramid(size)
    tex = levels[rng.integers(len(levels))]
    top = rng.integers(tex.shape[0] - size + 1)
    left = rng.integers(tex.shape[1] - size + 1)
    patch = tex[top:top + size, left:left + size]
    patch = np.rot90(patch, rng.integers(4))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    lo, hi = patch.min(), patch.max()
    patch = (patch - lo) / max(hi - lo, 1e-6)
    dark = rng.uniform(0.0, 0.6, 3)
    light = np.clip(dark + rng.uniform(0.15, 0.5, 3), 0, 1)
    return (dark + (light - dark) * patch[..., None]).astype(np.float32)


def make_shapes(n: int, seed: int = 0, size: int = 64, classes=None):
    """Generate ``n`` images of coloured shapes on real texture backgrounds.

    Returns ``(images, labels, masks)``: float32 (n, size, size, 3) in [0, 1], int64 labels
    indexing :data:`SHAPE_CLASSES`, and bool (n, size, size) masks of the shape's pixels.
    Colour, size, position and rotation are random; the background (a crop of a scikit-image
    texture photo with a random tint) is drawn independently of the label.  Same seed, same
    images.  Used to train ``course-cnn`` and in lessons 2, 3.3, 3.5 and 8.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    if int(size) < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}.")
    size = int(size)
    if classes is None:
        classes = np.arange(len(SHAPE_CLASSES))
    classes = np.asarray(classes, dtype=np.int64)
    if classes.size == 0 or classes.min() < 0 or classes.max() >= len(SHAPE_CLASSES):
        raise ValueError(f"classes must index SHAPE_CLASSES (0..{len(SHAPE_CLASSES) - 1}).")
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.float32)
    masks = np.empty((n, size, size), bool)
    labels = classes[rng.integers(len(classes), size=n)] if n else np.zeros(0, np.int64)
    for i in range(n):
        kind = SHAPE_CLASSES[labels[i]]
        bg = _background(rng, size)
        radius = rng.uniform(0.2, 0.36) * size
        margin = radius + 1
        cx, cy = rng.uniform(margin, size - margin, 2)
        angle = rng.uniform(0, 2 * np.pi)
        alpha = _shape_coverage(kind, cx, cy, radius, angle, size)[..., None]
        mean_bg = bg.mean(axis=(0, 1))
        for _ in range(20):  # a colour that stands out from this background
            colour = rng.uniform(0, 1, 3)
            if np.abs(colour - mean_bg).mean() > 0.3:
                break
        shade = 1.0 + rng.uniform(-0.15, 0.15) * np.linspace(-1, 1, size)[:, None, None]
        fg = np.clip(colour * shade, 0, 1)
        img = bg * (1 - alpha) + fg * alpha
        img += rng.normal(0, 0.02, img.shape)
        images[i] = np.clip(img, 0, 1)
        masks[i] = alpha[..., 0] >= 0.5
    return images, labels.astype(np.int64), masks


# --------------------------------------------------------------------------- the photo set
#: The photo set's ten class names, in label order (``ch.photos.CLASSES`` has their WordNet ids).
PHOTO_CLASSES = tuple(name for _, name, _ in _photos.CLASSES)
#: The ImageNet class index of each photo-set class (the output unit of VGG16 or ResNet50).
PHOTO_IMAGENET_INDEX = tuple(index for _, _, index in _photos.CLASSES)


class PhotoSet(tuple):
    """``(images, labels, imagenet)`` from :func:`photo_set`, also by name, with ``paths``."""

    def __new__(cls, images, labels, imagenet, paths):
        self = super().__new__(cls, (images, labels, imagenet))
        self.paths = paths
        return self

    images = property(lambda self: self[0])
    labels = property(lambda self: self[1])
    imagenet = property(lambda self: self[2])
    class_names = PHOTO_CLASSES


def photo_set_available() -> bool:
    """True when the photo set is in the cache (guards lessons' ImageNet parts; no network)."""
    return _photos.available()


def fetch_photo_set() -> None:
    """Download the photo set into the cache where there is internet, with a notice and a
    progress bar (about 99 MB, once).  The same as ``python -m course_helpers.data --fetch
    photos``; does nothing when it is already there."""
    _photos.fetch()


def photo_set(n: int = 200, size: int = 224, seed: int = 0) -> PhotoSet:
    """``n`` labelled ImageNet photos as ``(images, labels, imagenet)``.  Lessons 1-8 (ImageNet).

    ``images``: float32 (n, size, size, 3) in [0, 1], each photo centre-cropped to a square;
    ``labels``: int64 indices into :data:`PHOTO_CLASSES`; ``imagenet``: the matching ImageNet
    class indices.  The ten classes get equal shares (the first ``n % 10`` one more), drawn
    at random by ``seed``; the result is sorted by class.  The photos come from the cache
    (``ch.photos``); if they are not there this fails at once, saying how to fetch them: the
    lessons never download by themselves.  ``.paths`` lists the files.
    """
    from .graph import require_integer

    n = require_integer("n", n, low=1)
    size = require_integer("size", size, low=16)
    seed = require_integer("seed", seed, low=0)
    every = _photos.files()
    by_class = [[p for p, k in every if k == c] for c in range(len(PHOTO_CLASSES))]
    if n > len(every):
        raise ValueError(f"n is {n}, but the photo set holds {len(every)} photos; ask for at "
                         f"most {len(every)}.")
    rng = np.random.default_rng(seed)
    share = [n // len(by_class)] * len(by_class)
    for c in rng.permutation(len(by_class))[:n % len(by_class)]:
        share[c] += 1
    picked = []
    for c, paths in enumerate(by_class):     # a small class lends its share to the others
        take = min(share[c], len(paths))
        picked.append([paths[i] for i in rng.permutation(len(paths))[:take]])
    short = n - sum(map(len, picked))
    for c, paths in enumerate(by_class):
        if short <= 0:
            break
        rest = [p for p in paths if p not in picked[c]]
        picked[c] += rest[:short]
        short -= len(rest[:short])
    paths = [p for group in picked for p in sorted(group)]
    labels = np.array([c for c, group in enumerate(picked) for _ in group], np.int64)
    images = np.stack([load_image(p, size=size) for p in paths]) if paths else \
        np.zeros((0, size, size, 3), np.float32)
    imagenet = np.asarray(PHOTO_IMAGENET_INDEX, np.int64)[labels]
    return PhotoSet(images, labels, imagenet, paths)


def _main(argv=None) -> int:
    """``python -m course_helpers.data --fetch photos``: download the photo set into the cache."""
    import argparse

    parser = argparse.ArgumentParser(description="Download the course's photo set into the cache.")
    parser.add_argument("--fetch", nargs="+", choices=["photos"], required=True)
    parser.parse_args(argv)
    try:
        _photos.fetch()
    except (_photos.PhotoSetError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
