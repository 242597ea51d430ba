"""Checks for lesson 1 — first-layer filters (notebook 01)."""
from __future__ import annotations

import numbers

import numpy as np

from ._base import is_missing, report

__all__ = ["check_normalization", "check_second_layer_weights"]


def check_normalization(answer) -> bool:
    """Which tile normalization lets you see which kernels are strong and which are weak?"""
    if is_missing(answer):
        return report(False, hint="Replace ... with 'per_kernel' or 'shared'.")
    if answer not in ("per_kernel", "shared"):
        return report(False, hint="Answer with one of the two mode names: 'per_kernel' or 'shared'.")
    return report(answer == "shared",
                  right="Right: one scale for all kernels keeps their relative strength, so weak "
                        "kernels fade to grey.",
                  hint="Per-kernel scaling stretches every kernel to full contrast. Can a weak "
                       "kernel still look weak after that?")


def check_second_layer_weights(model, answer) -> bool:
    """How many weights (without the bias) does ONE kernel of the second conv layer hold?"""
    if is_missing(answer):
        return report(False, hint="Replace ... with a number.")
    if isinstance(answer, bool) or not isinstance(answer, numbers.Number):
        return report(False, hint="Answer with a number, e.g. 3 * 3 * 7.")
    from ..filters import second_layer

    shape = second_layer(model).kernel.shape  # (k_h, k_w, c_in, c_out)
    right = int(np.prod(shape[:3]))
    if answer == right:
        return report(True, right=f"Right: height x width x {shape[2]} input channels. Far too many "
                                  "channels for one colour picture.")
    if answer == int(np.prod(shape[:2])) * 3:
        return report(False, hint="That would be an RGB kernel. The second layer does not read the "
                                  "image: what does it read, and how many channels does that have?")
    if answer == int(np.prod(shape)):
        return report(False, hint="That counts every kernel of the layer. Just one kernel, please.")
    return report(False, hint="Look at second_layer(model).kernel.shape: (height, width, inputs, "
                              "kernels). Multiply the parts that belong to one kernel.")
