"""The one home for argument checks and image conversion, used by every lesson module.

Every public function of the package checks its arguments here, so a bad input gets one kind
of message everywhere: it names the argument, the value it got, and the fix.  What can be
sensibly converted is converted (numpy ints, uint8, grayscale, RGBA, another image size, a
layer index); nothing here changes a model.
"""
from __future__ import annotations

import numpy as np

from . import _facts
from . import data as _data
from . import graph as _graph


def input_size(model) -> tuple:
    """The (height, width) a model takes; ``None`` for an axis of any size (a model built
    with ``keras.Input((None, None, 3))`` takes images of any size)."""
    shape = model.inputs[0].shape
    return tuple(None if n is None else int(n) for n in (shape[1], shape[2]))


def _fits(shape, size) -> bool:
    """True if an image of (height, width) ``shape`` needs no resizing for ``size``."""
    return all(want is None or int(got) == want for got, want in zip(shape, size))


def image_for(model, image, name: str = "image") -> np.ndarray:
    """One image as float32 RGB in [0, 1] at the model's input size, shape (H, W, 3).

    Grayscale, RGBA, uint8 and other sizes are converted with :func:`course_helpers.data.load_image`;
    a batch is refused with a message that says what to do.
    """
    if image is None:
        raise TypeError(f"{name} is None: pass an image array (H, W, 3) or a file path, e.g. "
                        "ch.data.sample_images()['cat'].")
    arr = image
    if isinstance(image, np.ndarray) and image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"Expected one image of shape (H, W, 3), got a batch of shape {image.shape}. "
                             "Pass one image, e.g. images[0].")
        arr = image[0]
    size = input_size(model)
    img = _data.load_image(arr)
    if not _fits(img.shape[:2], size):
        size = tuple(img.shape[i] if n is None else n for i, n in enumerate(size))
        img = _data.load_image(img, size=size if size[0] != size[1] else size[0])
    return img


def batch_for(model, images, name: str = "images") -> np.ndarray:
    """A batch of images as float32 (n, H, W, 3) in [0, 1] at the model's input size."""
    size = input_size(model)
    if isinstance(images, dict):
        images = list(images.values())
    if images is None or isinstance(images, str):
        raise TypeError(f"{name} must be images (an array (n, H, W, 3), a list or a dict of "
                        f"images), got {images!r:.60}.")
    nonempty(name, images, "pass at least one image")
    arr = images
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype == np.float32 \
            and images.shape[-1] == 3 and _fits(images.shape[1:3], size):
        if not np.all(np.isfinite(images)):
            raise ValueError("The images contain NaN or infinite values; replace them first "
                             "(e.g. np.nan_to_num(images)).")
        if images.min() < -1e-3 or images.max() > 1 + 1e-3:
            raise ValueError("Images must be float RGB in [0, 1]; convert them with ch.data.load_image.")
        return images
    if isinstance(arr, np.ndarray) and arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 4:
        raise ValueError(f"Expected a batch of images (n, H, W, 3), got shape {arr.shape}: "
                         "for one image use images[None] or a list [image].")
    converted = [image_for(model, im) for im in arr]
    sizes = list(dict.fromkeys(im.shape[:2] for im in converted))
    if len(sizes) > 1:
        raise ValueError(f"{name} have different sizes ({', '.join(map(str, sizes))}) and this "
                         "model takes any size, so they are not resized: give them one size "
                         "first, e.g. ch.data.load_image(image, size=224).")
    return np.stack(converted).astype(np.float32)


def check_index(value, n: int, what: str, fix: str) -> int:
    """``value`` as an int in [0, n) (numpy ints and whole floats such as 3.0 are accepted,
    as by :func:`integer`), else a TypeError/ValueError naming the valid range."""
    value = integer(what, value)
    if not 0 <= value < n:
        raise ValueError(f"{what} {value} is out of range: it must be between 0 and {n - 1}. {fix}")
    return value


def check_class(model, class_index) -> int:
    """A valid class index for ``model``: an int (numpy ints and whole floats such as 3.0 are
    accepted) or a class name (as in ``ch.models.class_names(model)``).  Lessons 3.4, 3.5."""
    names = _facts.class_names(model)
    n = int(model.output_shape[-1])
    if isinstance(class_index, (str, np.str_)):
        key = str(class_index).strip().lower()
        found = [i for i, name in enumerate(names) if name.lower() == key]
        if found:
            return found[0]
        shown = ", ".join(names[:12]) + (", ..." if n > 12 else "")
        raise ValueError(f"class_index {class_index!r} is not a class name of {model.name}: use "
                         f"an index 0 to {n - 1} or one of {shown} (ch.models.class_names(model)).")
    return check_index(class_index, n, "class_index", f"The model has {n} classes "
                       "(see ch.models.class_names(model)).")


def names_and_images(images, name: str = "images"):
    """(names, list of images) from a dict, a list or an array of images (for explorers);
    a ValueError naming ``name`` if there are none."""
    if images is None or isinstance(images, str):
        raise TypeError(f"{name} must be a dict, list or array of images, got {images!r:.60}.")
    nonempty(name, images, "pass at least one image, e.g. ch.data.sample_images()")
    if isinstance(images, dict):
        return list(images.keys()), list(images.values())
    images = list(images)
    return [f"image {i}" for i in range(len(images))], images


def layer(model_, layer_):
    """The layer ``layer_`` (name, index or layer) of the model, or a clear error."""
    return _graph.layer(model(model_), layer_)


def conv_layer(model_, layer_):
    """The conv layer ``layer_`` (name, index or layer) of the model, or a clear error."""
    return _graph.require_conv(model(model_), layer_)


# --------------------------------------------------------------------------- generic checks
def model(value, name: str = "model"):
    """``value`` if it is a loaded tf-keras model, else a TypeError that says how to get one.

    Catches ``None``, a model's name given as a string, and a model built with Keras 3's
    ``keras`` package (this course and tf-keras-vis use tf-keras, ``import tf_keras``).
    """
    return _graph.require_model(value, name)


def batch_limit(shape, batch_size: int, pixels: int) -> int:
    """The batch size actually used for images of ``shape`` (H, W, ...): ``batch_size``, capped
    at ``pixels`` input pixels per batch (each module that batches states its cap and why:
    ``ch.occlusion.BATCH_PIXELS``, ``ch.saliency.GRADIENT_BATCH_PIXELS``,
    ``ch.activations.BATCH_PIXELS``, ``ch.embedding.features.BATCH_PIXELS``).  Never below 1."""
    return max(1, min(int(batch_size), int(pixels) // (int(shape[0]) * int(shape[1]))))


def integer(name: str, value, low=None, high=None) -> int:
    """``value`` as an int (numpy ints and whole floats such as 3.0 are accepted) within
    [low, high]; else an error naming ``name``, the value and the allowed range."""
    return _graph.require_integer(name, value, low, high)


def number(name: str, value, low=None, high=None, positive: bool = False, fix: str = "") -> float:
    """``value`` as a finite float (``positive``: > 0; ``low``/``high``: inclusive bounds)."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise TypeError(f"{name} must be a number, got {value!r}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}.") from None
    extra = f" {fix}" if fix else ""
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value!r}.{extra}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be greater than 0, got {v}.{extra}")
    if low is not None and v < low:
        raise ValueError(f"{name} must be at least {low}, got {v}.{extra}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be at most {high}, got {v}.{extra}")
    return v


def choice(name: str, value, options):
    """``value`` if it is one of ``options`` (strings compared case-insensitively)."""
    options = list(options)
    if isinstance(value, str):
        for opt in options:
            if isinstance(opt, str) and opt.lower() == value.strip().lower():
                return opt
    elif value in options:
        return value
    raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}.")


def nonempty(name: str, collection, fix: str = "pass at least one"):
    """``collection`` (a list, dict or array) if it has at least one item, else a ValueError."""
    try:
        n = len(collection)
    except TypeError:
        raise TypeError(f"{name} must be a collection (list, dict or array), got "
                        f"{type(collection).__name__}.") from None
    if n == 0:
        raise ValueError(f"{name} is empty: {fix}.")
    return collection


def size(name: str, value, low: int = 1):
    """An image side: an int, or an (h, w) pair of ints; floats like 64.0 are accepted."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return tuple(integer(name, v, low=low) for v in value)
    return integer(name, value, low=low)


def conv_layer_names(model_, layers=None) -> list:
    """The names of the conv layers ``layers`` (names, indices or layers; None = every conv
    layer of the model) for an explorer's menu; a clear error for a non-conv or empty list."""
    if isinstance(layers, (str, int)) and not isinstance(layers, bool):
        layers = [layers]
    names = [conv_layer(model_, name).name
             for name in (_graph.conv_layer_names(model(model_)) if layers is None else layers)]
    nonempty("layers", names, "name at least one conv layer, or pass layers=None")
    return names
