"""Input checks shared by lessons 3 and 4: images for a model, layer/channel/class indices."""
from __future__ import annotations

import numbers

import numpy as np

from . import data as _data
from . import models as _models


def input_size(model) -> tuple:
    """The (height, width) a model takes."""
    shape = model.inputs[0].shape
    return int(shape[1]), int(shape[2])


def image_for(model, image) -> np.ndarray:
    """One image as float32 RGB in [0, 1] at the model's input size, shape (H, W, 3).

    Grayscale, RGBA, uint8 and other sizes are converted with :func:`course_helpers.data.load_image`;
    a batch is refused with a message that says what to do.
    """
    arr = image
    if isinstance(image, np.ndarray) and image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"Expected one image of shape (H, W, 3), got a batch of shape {image.shape}. "
                             "Pass one image, e.g. images[0].")
        arr = image[0]
    size = input_size(model)
    img = _data.load_image(arr)
    if img.shape[:2] != size:
        img = _data.load_image(img, size=size if size[0] != size[1] else size[0])
    return img


def batch_for(model, images) -> np.ndarray:
    """A batch of images as float32 (n, H, W, 3) in [0, 1] at the model's input size."""
    size = input_size(model)
    if isinstance(images, dict):
        images = list(images.values())
    arr = images
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype == np.float32 \
            and images.shape[1:] == size + (3,):
        if not np.all(np.isfinite(images)):
            raise ValueError("The images contain NaN or infinite values; replace them first "
                             "(e.g. np.nan_to_num(images)).")
        if images.min() < -1e-3 or images.max() > 1 + 1e-3:
            raise ValueError("Images must be float RGB in [0, 1]; convert them with ch.data.load_image.")
        return images
    if isinstance(arr, np.ndarray) and arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 4:
        raise ValueError(f"Expected a batch of images (n, H, W, 3), got shape {arr.shape}: "
                         "for one image use images[None] or a list [image].")
    out = [image_for(model, im) for im in arr]
    if not out:
        raise ValueError("No images given.")
    return np.stack(out).astype(np.float32)


def check_index(value, n: int, what: str, fix: str) -> int:
    """``value`` as an int in [0, n), else a TypeError/ValueError naming the valid range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an integer, got {type(value).__name__} {value!r}.")
    value = int(value)
    if not 0 <= value < n:
        raise ValueError(f"{what} {value} is out of range: it must be between 0 and {n - 1}. {fix}")
    return value


def check_class(model, class_index) -> int:
    """A valid class index for ``model`` (lessons 3.4, 3.5)."""
    n = int(model.output_shape[-1])
    return check_index(class_index, n, "class_index", f"The model has {n} classes "
                       "(see ch.models.class_names(model)).")


def names_and_images(images):
    """(names, list of images) from a dict, a list or an array of images (for explorers)."""
    if isinstance(images, dict):
        return list(images.keys()), list(images.values())
    images = list(images)
    return [f"image {i}" for i in range(len(images))], images


def conv_layer(model, layer):
    """The conv layer ``layer`` (name or layer) or a clear error."""
    return _models.require_conv(model, layer)
