"""Lesson 3.6, continued: fooling images and adversarial examples (notebook 05, cited in 08).

Gradient ascent on a class score, started from a *real* image instead of a plain one, needs only
a change too small to see to make the network answer another class.  This module holds

* :func:`fgsm`, the fast gradient sign method (Goodfellow, Shlens & Szegedy 2015): one step of
  size ``epsilon`` along the sign of the gradient that lowers the class's probability;
* :func:`targeted_attack`, the iterative version (Kurakin et al. 2017; Madry et al. 2018's
  projection; Dong et al. 2018's momentum) that climbs another class's log-probability and
  stays within an L-infinity budget around the image and inside [0, 1];
* :func:`fgsm_success_rate` (the share of images FGSM fools, for each budget) and
  :func:`attack_success` (how many images a targeted attack sends to their target);
* :func:`plot_attack`, :func:`plot_fgsm_curve` and :func:`adversarial_explorer`, the lesson's
  widget (image, target class, budget).

Gradients are TensorFlow's own (``tf.GradientTape``); class scores are taken before the softmax
(:func:`course_helpers.models.logits_model`).  The whole attack loop is one compiled
``tf.function`` per model, so a step costs about one gradient call.  Nothing here changes a
model.
"""
from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from . import _checks
from . import models as _models
from . import plotting as _plotting
from . import widgets as _widgets

#: The course's default L-infinity budget: 8/255, the usual "invisible" change of an 8-bit pixel.
EPSILON = 8 / 255

_BUDGET_FIX = "It is the largest change of a pixel value, e.g. 8/255 (0 leaves the image as it is)."

#: model -> {"fgsm": compiled gradient sign, "attack": compiled loop}
_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _compiled(model, kind):
    per_model = _FNS.setdefault(model, {})
    if kind in per_model:
        return per_model[kind]
    logits = _models.logits_model(model)
    h, w = _checks.input_size(model)
    x_spec = tf.TensorSpec((None, h, w, 3), tf.float32)
    c_spec = tf.TensorSpec((None,), tf.int32)
    if kind == "fgsm":
        def sign_of_loss_gradient(x, classes):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.nn.sparse_softmax_cross_entropy_with_logits(classes, logits(x, training=False))
            return tf.sign(tape.gradient(loss, x))

        fn = tf.function(sign_of_loss_gradient, input_signature=[x_spec, c_spec])
    else:
        def attack(x0, targets, epsilon, step_size, momentum, steps):
            lo = tf.maximum(x0 - epsilon, 0.0)
            hi = tf.minimum(x0 + epsilon, 1.0)
            x, velocity = x0, tf.zeros_like(x0)
            for k in tf.range(steps):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    z = logits(x, training=False)
                    score = -tf.nn.sparse_softmax_cross_entropy_with_logits(targets, z)
                grad = tape.gradient(score, x)
                size = tf.reduce_mean(tf.abs(grad), axis=[1, 2, 3], keepdims=True)
                velocity = momentum * velocity + tf.math.divide_no_nan(grad, size)
                alpha = step_size * tf.cast(steps - k, tf.float32) / tf.cast(steps, tf.float32)
                x = tf.clip_by_value(x + alpha * tf.sign(velocity), lo, hi)
            return x

        scalar = tf.TensorSpec([], tf.float32)
        fn = tf.function(attack, input_signature=[x_spec, c_spec, scalar, scalar, scalar,
                                                  tf.TensorSpec([], tf.int32)])
    per_model[kind] = fn
    return fn


def _project(x, x0, epsilon):
    """``x`` clipped to the L-infinity ball of radius ``epsilon`` around ``x0`` and to [0, 1],
    exactly: checked in float64 after the cast to float32 (a rounding step never leaves it)."""
    x0 = np.asarray(x0, np.float64)
    lo, hi = np.maximum(x0 - epsilon, 0.0), np.minimum(x0 + epsilon, 1.0)
    out = np.clip(np.asarray(x, np.float64), lo, hi).astype(np.float32)
    for bad, towards in ((out > hi, -np.inf), (out < lo, np.inf)):
        out[bad] = np.nextafter(out[bad], np.float32(towards))
    return out


def _budget(epsilon):
    return _checks.number("epsilon", epsilon, low=0, high=1, fix=_BUDGET_FIX)


def _classes_for(model, classes, n, name):
    """One class index per image: an int (or class name) for all, or a sequence of n."""
    if isinstance(classes, (str, np.str_)) or np.ndim(classes) == 0:
        return np.full(n, _checks.check_class(model, classes), np.int32)
    classes = list(classes)
    if len(classes) != n:
        raise ValueError(f"{name} has {len(classes)} entries for {n} images: give one class per "
                         "image, or one class for all.")
    return np.array([_checks.check_class(model, c) for c in classes], np.int32)


def _images(model, images):
    """(batch, was one image) from one image (H, W, 3) or a batch."""
    arr = images if isinstance(images, (list, tuple, dict)) else np.asarray(images)
    single = not isinstance(arr, (list, tuple, dict)) and arr.ndim in (2, 3)
    batch = _checks.image_for(model, arr)[None] if single else _checks.batch_for(model, arr)
    return batch, single


# --------------------------------------------------------------------------- the attacks
def fgsm(model, image, class_index, epsilon) -> np.ndarray:
    """The fast gradient sign method: one step of size ``epsilon`` away from ``class_index``.

    ``x + epsilon * sign(d loss / d x)``, clipped to [0, 1], where the loss is the
    cross-entropy of ``class_index`` (minus the log of its softmax probability), so the step
    lowers that class's probability as fast as a change of at most ``epsilon`` per pixel value
    can to first order.  ``image`` is one image (H, W, 3) or a batch (then ``class_index`` may
    give one class per image); returns the new image(s), float32.  Goodfellow et al. 2015.

    Written out in lesson 05, "In plain code: FGSM".
    """
    model = _checks.model(model)
    eps = _budget(epsilon)
    batch, single = _images(model, image)
    classes = _classes_for(model, class_index, len(batch), "class_index")
    sign = _compiled(model, "fgsm")(tf.constant(batch), tf.constant(classes)).numpy()
    out = _project(batch + np.float32(eps) * sign, batch, eps)
    return out[0] if single else out


def targeted_attack(model, image, target_class, epsilon=EPSILON, steps: int = 20,
                    step_size=None, momentum=0.9) -> np.ndarray:
    """An iterative attack that makes the model answer ``target_class``.  Lesson 3.6.

    ``steps`` times: take the gradient of the target's log-probability (its score before the
    softmax minus the log-sum-exp of all scores: climbing the target alone lifts the other
    scores too), divide it by its mean absolute value, add it to ``momentum`` times the running
    sum (Dong et al. 2018's momentum, which keeps the direction of earlier steps), step along
    the sign of that sum, then project back into the budget: every pixel value within
    ``epsilon`` of the original image (the L-infinity ball) and within [0, 1].  Step ``k`` (from
    0) has size ``step_size * (1 - k / steps)``: large first, then finer (``step_size``
    defaults to ``epsilon``).  That is gradient ascent on a class score, as in
    :func:`course_helpers.ascent.visualize_class`, started from a real image and held close to
    it; with ``momentum=0`` it is Kurakin et al.'s loop with a shrinking step.  ``image`` is one
    image or a batch (then ``target_class`` may give one class per image); returns the new
    image(s), float32, with ``|new - image| <= epsilon`` and ``0 <= new <= 1`` exactly.  The
    loop is one compiled ``tf.function`` (TensorFlow's own gradients), traced once per model.

    Written out in lesson 05, "In plain code: a targeted attack".
    """
    model = _checks.model(model)
    eps = _budget(epsilon)
    steps = _checks.integer("steps", steps, low=0)
    alpha = eps if step_size is None else _checks.number(
        "step_size", step_size, low=0,
        fix="It is the change of a pixel value in the first step, e.g. 8/255.")
    mu = _checks.number("momentum", momentum, low=0, high=1,
                        fix="It is the weight of the earlier steps' direction, e.g. 0.9 (0: none).")
    batch, single = _images(model, image)
    targets = _classes_for(model, target_class, len(batch), "target_class")
    x = _compiled(model, "attack")(tf.constant(batch), tf.constant(targets), tf.constant(eps, tf.float32),
                                   tf.constant(alpha, tf.float32), tf.constant(mu, tf.float32),
                                   tf.constant(steps, tf.int32))
    out = _project(x.numpy(), batch, eps)
    return out[0] if single else out


def predict(model, images) -> np.ndarray:
    """The predicted class of each image (argmax of the model's output)."""
    model = _checks.model(model)
    batch, single = _images(model, images)
    pred = np.argmax(np.asarray(model(batch, training=False)), axis=-1)
    return int(pred[0]) if single else pred


def fgsm_success_rate(model, images, labels, epsilons) -> dict:
    """How often FGSM fools the model, for each budget in ``epsilons``.  Lesson 3.6.

    Only the images the model classifies correctly count; for each ``epsilon`` the rate is the
    share of them whose prediction changes after :func:`fgsm` away from their true label.
    Returns ``{"epsilon": array, "rate": array, "images": how many counted}``.
    """
    model = _checks.model(model)
    batch, _ = _images(model, images)
    labels = _classes_for(model, np.asarray(labels).tolist(), len(batch), "labels")
    eps = np.array([_budget(e) for e in _checks.nonempty("epsilons", list(np.ravel(epsilons)),
                                                          "give at least one budget, e.g. [1/255, 8/255]")])
    right = predict(model, batch) == labels
    if not right.any():
        raise ValueError("The model gets none of these images right, so there is nothing to fool: "
                         "pass images it classifies correctly.")
    x, y = batch[right], labels[right]
    rates = [float(np.mean(predict(model, fgsm(model, x, y, e)) != y)) for e in eps]
    return {"epsilon": eps, "rate": np.array(rates), "images": int(right.sum())}


def attack_success(model, images, target_classes, epsilon=EPSILON, steps: int = 20) -> dict:
    """:func:`targeted_attack` on each image: the share that reaches its target, and the largest
    change of a pixel value seen (within ``epsilon``).  Returns a dict with ``rate``, ``hit``
    (a boolean per image), ``max_change`` and the ``adversarial`` images."""
    model = _checks.model(model)
    batch, _ = _images(model, images)
    targets = _classes_for(model, np.ravel(target_classes).tolist() if np.ndim(target_classes)
                           else target_classes, len(batch), "target_classes")
    adv = targeted_attack(model, batch, targets, epsilon, steps)
    hit = predict(model, adv) == targets
    return {"rate": float(hit.mean()), "hit": hit, "adversarial": adv,
            "max_change": float(np.abs(adv.astype(np.float64) - batch).max())}


# --------------------------------------------------------------------------- drawing
def magnified(change, epsilon) -> np.ndarray:
    """A change (image minus original) shown as an image: grey 0.5 for none, 0 and 1 for
    -epsilon and +epsilon."""
    eps = max(_budget(epsilon), 1e-12)
    return np.clip(0.5 + 0.5 * np.asarray(change, np.float32) / eps, 0, 1)


def _attack_figure(with_saliency):
    import matplotlib.pyplot as plt

    rows = 2 if with_saliency else 1
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.7 * rows), squeeze=False)
    rgb, grey = np.zeros((2, 2, 3)), np.zeros((2, 2))
    parts = {"images": [axes[0, k].imshow(rgb) for k in range(3)],
             "titles": [axes[0, k].set_title(" ", fontsize=9) for k in range(3)]}
    if with_saliency:
        parts["maps"] = [axes[1, 0].imshow(grey, cmap="gray", vmin=0, vmax=1),
                         axes[1, 2].imshow(grey, cmap="gray", vmin=0, vmax=1)]
        parts["titles"] += [axes[1, 0].set_title(" ", fontsize=9), axes[1, 2].set_title(" ", fontsize=9)]
        axes[1, 1].text(0.5, 0.5, "saliency of the\npredicted class\n(lesson 3.5)",
                        ha="center", va="center", fontsize=9, transform=axes[1, 1].transAxes)
    for ax in axes.ravel():
        ax.axis("off")
    parts["titles"].append(fig.suptitle(" ", fontsize=10))
    fig.tight_layout()
    return fig, parts


def _describe(model, img):
    probs = np.asarray(model(img[None], training=False))[0]
    c = int(np.argmax(probs))
    return c, f"{_models.class_names(model)[c]} ({probs[c]:.2f})"


def _attack_update(model, parts, image, adv, epsilon, maps=None, title="", described=None):
    (c0, before), (c1, after) = described or (_describe(model, image), _describe(model, adv))
    change = adv.astype(np.float32) - image
    for artist, data in zip(parts["images"], (image, magnified(change, epsilon), adv)):
        _plotting.set_image(artist, data)
    texts = [f"original: {before}",
             f"change x{0.5 / max(epsilon, 1e-12):.0f} (max {np.abs(change).max() * 255:.1f}/255)",
             f"adversarial: {after}"]
    if maps is not None:
        for artist, m in zip(parts["maps"], maps):
            _plotting.set_image(artist, _plotting.normalize(m))
        texts += [f"saliency: {_models.class_names(model)[c0]}",
                  f"saliency: {_models.class_names(model)[c1]}"]
    for t, text in zip(parts["titles"], texts + [title]):
        t.set_text(text)
    return c0, c1


def plot_attack(model, image, adversarial, epsilon=EPSILON, saliency=True, title=None):
    """The image, its (magnified) change and the adversarial image, with both predictions; with
    ``saliency``, the saliency map (:func:`course_helpers.saliency.saliency_map`) of each image's
    predicted class underneath.  Returns the Figure.  Lesson 3.6."""
    from . import saliency as _saliency

    model = _checks.model(model)
    image = _checks.image_for(model, image)
    adv = _checks.image_for(model, adversarial, "adversarial")
    fig, parts = _attack_figure(bool(saliency))
    maps = None
    if saliency:
        maps = [_saliency.saliency_map(model, x, _describe(model, x)[0]) for x in (image, adv)]
    _attack_update(model, parts, image, adv, _budget(epsilon), maps, title or "")
    _plotting.drop_empty_title(fig, title)
    return fig


def plot_fgsm_curve(curve, ax=None, label=None):
    """FGSM's success rate against the budget (x axis in steps of 1/255).  Lesson 3.6."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(np.asarray(curve["epsilon"]) * 255, np.asarray(curve["rate"]) * 100, "o-", label=label)
    ax.set_xlabel("budget epsilon (x 1/255 of the pixel range)")
    ax.set_ylabel("images fooled (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"FGSM on {curve['images']} correctly classified images", fontsize=9)
    ax.grid(alpha=0.3)
    if label:
        ax.legend(fontsize=8)
    return ax.figure


def adversarial_explorer(model, images, budgets=(1, 2, 4, 8, 16), steps: int = 20):
    """Widget for lesson 3.6: an image, a target class and a budget (in 1/255); shows the
    targeted attack (:func:`targeted_attack`) as :func:`plot_attack` does, without saliency.
    Each attack is cached, so revisiting a setting only redraws."""
    import ipywidgets as w

    model = _checks.model(model)
    names, imgs = _checks.names_and_images(images)
    batch = _checks.batch_for(model, imgs)
    budgets = [_checks.integer("budgets", b, low=0, high=255) for b in
               _checks.nonempty("budgets", list(budgets), "give budgets in 1/255, e.g. (1, 4, 8)")]
    steps = _checks.integer("steps", steps, low=0)
    labels = _models.class_names(model)
    view = _widgets.FigureView(lambda: _attack_figure(False))

    def draw(image, target, budget):
        i = names.index(image)
        eps = budget / 255
        key = ("attack", _widgets.model_key(model), _widgets.array_key(batch[i]), target, budget, steps)
        def compute():
            adv = targeted_attack(model, batch[i], target, eps, steps)
            return adv, (_describe(model, batch[i]), _describe(model, adv))

        adv, described = _widgets.cached(key, compute)
        _, got = _attack_update(model, view.parts, batch[i], adv, eps, title=" ",
                                described=described)
        view.parts["titles"][-1].set_text(f"target {labels[target]}, budget {budget}/255, {steps} "
                                          f"steps: {'reached' if got == target else 'not reached'}")
        return view.live

    return _widgets.interactive_plot(
        draw, image=w.Dropdown(options=names, description="image"),
        target=w.Dropdown(options=[(n, k) for k, n in enumerate(labels)], value=0, description="target"),
        budget=w.SelectionSlider(options=budgets, value=budgets[-1] if 8 not in budgets else 8,
                                 description="budget /255"))
