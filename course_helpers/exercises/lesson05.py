"""Exercise checks for lesson 3.6 — gradient ascent (notebook 05)."""
from __future__ import annotations

import numpy as np

from ._base import is_missing, report

__all__ = ["check_ascent_step", "check_smooth_class_model"]


def check_ascent_step(my_step, model, class_index: int = 2, lr: float = 0.5) -> bool:
    """Is ``my_step(x, class_index, lr)`` one step of the source's algorithm?

    It must return ``x + lr * d score / d x`` with the class score taken before the softmax.
    The check runs it on a fixed image and compares with the course's implementation.
    """
    from .. import ascent

    if is_missing(my_step) or not callable(my_step):
        return report(False, hint="Write a function my_step(x, class_index, lr) and pass it in.")
    x = np.random.default_rng(7).uniform(0.3, 0.7, model.input_shape[1:]).astype(np.float32)
    try:
        got = np.asarray(my_step(x.copy(), class_index, lr), dtype=np.float32)
    except Exception as err:  # the learner's code: say what went wrong, not the answer
        return report(False, hint=f"Your function raised {type(err).__name__}: {err}")
    if got.shape != x.shape:
        return report(False, hint=f"Return the new image with shape {x.shape}, got {got.shape}.")
    ref, _ = ascent.visualize_class(model, class_index, steps=1, lr=lr, start=x, l2=0.0, jitter=0,
                                    blur_every=0, tv=0.0, clip=False, normalize=False)
    step, want = got - x, ref - x
    scale = float(np.abs(want).max()) + 1e-12
    if np.allclose(step, want, atol=1e-3 * scale, rtol=1e-2):
        return report(True, "Right: that is the source's algorithm, one step uphill.")
    if np.allclose(step, -want, atol=1e-3 * scale, rtol=1e-2):
        return report(False, hint="Your step makes the score smaller: ascent adds the gradient.")
    if np.allclose(step, 0):
        return report(False, hint="Your image did not change. Did you add lr times the gradient?")
    cos = float((step * want).sum() / (np.linalg.norm(step) * np.linalg.norm(want) + 1e-12))
    if cos > 0.2:
        return report(False, hint="Close in direction but not equal. Use the score before the "
                      "softmax (ch.models.logits_model) and do not rescale the gradient.")
    return report(False, hint="Not the gradient of the class score. Watch the image with "
                  "tf.GradientTape, read one class score, take tape.gradient(score, image).")


def check_smooth_class_model(model, class_index, image, max_hf: float = 0.05) -> bool:
    """Is ``image`` a clean class model: a strong score and little pixel noise?

    Passes when the class score is at least 10x max(score of the black image, score of a
    random image, 1) and the high-frequency share is below ``max_hf``.
    """
    from .. import ascent

    if is_missing(image):
        return report(False, hint="Run ch.ascent.visualize_class with your settings and pass "
                      "its image.")
    img = np.asarray(image, dtype=np.float32)
    if img.shape != tuple(model.input_shape[1:]):
        return report(False, hint=f"Pass the image only (shape {model.input_shape[1:]}), not "
                      "the (image, history) pair.")
    score = float(ascent.objective_value(model, img, class_index=class_index))
    refs = [float(ascent.objective_value(model, ascent.start_image(model, s), class_index=class_index))
            for s in ("zeros", "random")]
    bar = 10 * max(refs + [1.0])
    hf = ascent.high_frequency_share(img)
    if score < bar:
        return report(False, hint=f"The score {score:.1f} is below the bar {bar:.1f}: your "
                      "regularizers are so strong that the neuron is barely excited. Weaken one, "
                      "or take more steps.")
    if hf > max_hf:
        return report(False, hint=f"The score is high but the image is noisy (high-frequency "
                      f"share {hf:.2f} > {max_hf}). Which regularizers remove fine pixel noise?")
    return report(True, f"Right: score {score:.1f} (bar {bar:.1f}) with high-frequency share "
                  f"{hf:.3f}.")
