"""Exercise checks for lesson 3.2-3.3 (notebook 03): feature-map shapes and receptive fields."""
from __future__ import annotations

from ._base import is_missing, report

__all__ = ["check_feature_map_shape", "check_receptive_field"]


def _course_cnn():
    from .. import models

    return models.build_course_cnn()


def check_feature_map_shape(layer, shape) -> bool:
    """Exercise 3.2: the shape (h, w, channels) of ``layer``'s maps in course-cnn, worked out
    by hand from the architecture (stride-2 conv1, 2x2 pools, 'same' padding)."""
    if is_missing(shape):
        return report(False, hint="Replace ... with a tuple (height, width, channels).")
    model = _course_cnn()
    from .. import activations

    right = tuple(int(v) for v in activations.activation_model(model, layer).output_shape[1:])
    try:
        given = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        return report(False, hint="Give three whole numbers: (height, width, channels).")
    if given == right:
        return report(True, f"Right: {layer} gives {len(right) and right[-1]} maps of that size.")
    if len(given) != 3:
        return report(False, hint="A feature map stack has three numbers: height, width, channels.")
    if given[2] != right[2]:
        return report(False, hint="Channels = the number of kernels in that conv layer "
                                  "(model.get_layer(name).filters).")
    return report(False, hint="Height and width: 64 pixels in, halved by conv1's stride 2 and by "
                              "each 2x2 pool before this layer; 'same' padding keeps the size.")


def check_receptive_field(layer, size) -> bool:
    """Exercise 3.3: the receptive-field size (pixels per side) of ``layer`` in course-cnn,
    worked out by hand with size += (kernel - 1) * jump, jump *= stride."""
    if is_missing(size):
        return report(False, hint="Replace ... with a whole number of pixels.")
    from .. import patches

    right = patches.receptive_field(_course_cnn(), layer)[0]
    try:
        given = int(size)
    except (TypeError, ValueError):
        return report(False, hint="Give one whole number (pixels along one side).")
    if given == right:
        return report(True, f"Right: one unit of {layer} sees a {right}x{right} square of the input.")
    if given < right:
        return report(False, hint="Too small: did you multiply each kernel's extra reach (k - 1) "
                                  "by the jump (product of the strides before it), and count the "
                                  "pooling layers as 2x2 kernels?")
    return report(False, hint="Too big: the jump is the product of the strides of the layers "
                              "*before* a layer, not including its own stride.")
