"""Checks for lesson 3 (notebook 03): feature-map shapes, receptive fields, top images.

The notebook's exercises: :func:`check_feature_map_shape` (the maps' shape for another input
size), :func:`check_added_layers` (the receptive field of layers you add) and
:func:`check_top_images` (the images with the strongest unit of a channel, one unit each).
"""
from __future__ import annotations

import numpy as np

from ._base import is_missing, report, solution_text

__all__ = ["check_feature_map_shape", "check_added_layers", "check_top_images"]


def _course_cnn(input_size: int = 64):
    from .. import models

    return models.build_course_cnn(input_size=int(input_size))


def check_feature_map_shape(layer, shape, input_size: int = 64) -> bool:
    """Exercise 3.2: the shape (h, w, channels) of ``layer``'s maps in course-cnn for an
    ``input_size`` x ``input_size`` image, worked out by hand from the architecture."""
    if is_missing(shape):
        return report(False, hint="Replace ... with a tuple (height, width, channels).")
    from .. import activations

    model = _course_cnn(input_size)
    right = tuple(int(v) for v in activations.activation_model(model, layer).output_shape[1:])
    try:
        given = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        return report(False, hint="Give three whole numbers: (height, width, channels).")
    if given == right:
        return report(True, f"Right: {layer} gives {right[-1]} maps of that size.")
    if len(given) != 3:
        return report(False, hint="A feature map stack has three numbers: height, width, channels.")
    if given[2] != right[2]:
        return report(False, hint="Channels = the number of kernels in that conv layer "
                                  "(model.get_layer(name).filters).")
    if given[0] in (right[0] - 1, right[0] + 1):
        return report(False, hint="Off by one: a stride-2 conv with 'same' padding rounds *up* "
                                  "(ceil(n / 2)), a 2x2 pool with 'valid' padding rounds *down* "
                                  "(floor(n / 2)).")
    return report(False, hint=f"Height and width: {input_size} pixels in, then conv1's stride 2 and "
                              "each 2x2 pool before this layer; 'same' padding keeps the size.")


solution_text("feature_map_shape", '''
    import math

    n = math.ceil(100 / 2)   # conv1: stride 2, 'same' padding rounds up -> 50; conv2 keeps it
    n = n // 2               # pool2: 2x2 'valid' rounds down             -> 25; conv3 keeps it
    n = n // 2               # pool3: 2x2 'valid' rounds down             -> 12; conv4 keeps it
    my_shape = (n, n, 96)    # conv4 has 96 kernels
    ch.exercises.check_feature_map_shape("conv4", my_shape, input_size=100)
''')


def _with_added_layers():
    """course-cnn (untrained) up to conv4's activation, then pool4 (2x2) and conv5 (3x3)."""
    import tf_keras as keras

    base = _course_cnn()
    x = keras.layers.MaxPooling2D(2, name="pool4")(base.get_layer("conv4_relu").output)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv5")(x)
    return keras.Model(base.inputs, x)


def check_added_layers(size, jump) -> bool:
    """Exercise 3.3a: receptive-field ``size`` and ``jump`` of ``conv5`` in course-cnn with a 2x2
    pool ``pool4`` and a 3x3 conv ``conv5`` (stride 1, 'same') added after conv4."""
    if is_missing(size) or is_missing(jump):
        return report(False, hint="Replace both ... with whole numbers of pixels.")
    try:
        size, jump = int(size), int(jump)
    except (TypeError, ValueError):
        return report(False, hint="Give two whole numbers: the size and the jump.")
    from .. import patches

    model = _with_added_layers()
    right_size, right_jump, _ = patches.receptive_field(model, "conv5")
    conv4_size, conv4_jump, _ = patches.receptive_field(model, "conv4")
    if (size, jump) == (right_size, right_jump):
        return report(True, "Right: every layer adds (k - 1) x jump to the size, and the pool "
                            "doubles the jump.")
    if jump != right_jump:
        return report(False, hint="The jump: which of the two new layers has a stride other than 1? "
                                  "Multiply conv4's jump by it.")
    if size == conv4_size + 2 * conv4_jump:
        return report(False, hint="conv5's kernel spans 3 units of *its* input, and pool4 has already "
                                  "changed the jump: use the jump after pool4.")
    return report(False, hint="Start from conv4's size and jump (the loop above prints them); "
                              "pool4 adds (2 - 1) x jump, then doubles the jump; conv5 adds "
                              "(3 - 1) x the new jump.")


solution_text("added_layers", '''
    size, jump, _ = rf["conv4"]              # conv4, from the loop above
    size += (2 - 1) * jump; jump *= 2        # pool4: 2x2, stride 2
    size += (3 - 1) * jump                   # conv5: 3x3, stride 1
    my_size, my_jump = size, jump
    ch.exercises.check_added_layers(my_size, my_jump)
''')


def check_top_images(my_top_images, model, images) -> bool:
    """Exercise 3.3b: ``my_top_images(model, layer, channel, images, k)`` -> the indices of the
    k images whose strongest unit of that channel is strongest, strongest first, one per image."""
    if is_missing(my_top_images) or not callable(my_top_images):
        return report(False, hint="Pass your function itself: check_top_images(my_top_images, model, images).")
    from .. import activations, patches

    for layer, channel, k in (("conv3", 10, 6), ("conv2", 3, 5), ("conv4", 0, 8)):
        try:
            got = my_top_images(model, layer, channel, images, k)
            if is_missing(got):
                return report(False, hint="Your function returns nothing yet: fill in its body and "
                                          "return the k image indices.")
            got = [int(i) for i in np.asarray(got).ravel()]
        except Exception as err:   # noqa: BLE001 - the learner's code, report any failure
            return report(False, hint=f"Your function raised {type(err).__name__} for {layer} "
                                      f"channel {channel}: {err}")
        right = [int(i) for i in patches.top_patches(model, layer, channel, images, k=k,
                                                     max_per_image=1).image_index]
        if got == right:
            continue
        if len(got) != k:
            return report(False, hint=f"For k={k} return {k} image indices.")
        if len(set(got)) < len(got):
            return report(False, hint="An image appears twice: take each image's strongest unit "
                                      "first (max over rows and columns), then rank the images.")
        if set(got) == set(right):
            return report(False, hint="The right images, in another order: strongest first "
                                      "(np.argsort of the negated values).")
        acts = activations.layer_activations(model, layer, images)[..., channel]
        if got == [int(i) for i in np.argsort(acts.mean(axis=(1, 2)))[::-1][:k]]:
            return report(False, hint="You ranked images by their mean response; rank them by "
                                      "their single strongest unit (the max).")
        return report(False, hint=f"For {layer} channel {channel} the images differ. Activations "
                                  "after BN + ReLU (the '<layer>_relu' output), the max of each image's "
                                  "map, then the k largest.")
    return report(True, "Right: one strongest unit per image, the images ranked by it.")


solution_text("top_images", '''
    import tf_keras as keras

    def my_top_images(model, layer, channel, images, k):
        sub = keras.Model(model.inputs, model.get_layer(layer + "_relu").output)
        maps = sub.predict(images, verbose=0)[..., channel]   # (n, h, w)
        best = maps.max(axis=(1, 2))                          # each image's strongest unit
        return np.argsort(-best, kind="stable")[:k]           # strongest images first

    ch.exercises.check_top_images(my_top_images, model, shapes)
''')

