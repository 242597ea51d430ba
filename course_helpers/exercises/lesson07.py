"""Checks for notebook 07 (lesson 5, tf-keras-vis)."""
from __future__ import annotations

import numpy as np

from ._base import call_learner, is_missing, report, solution_text

__all__ = ["check_translated_saliency", "check_gradcam", "check_cam_layer",
           "check_class_similarity"]


def _norm(x):
    x = np.asarray(x, dtype=np.float64)
    return (x - x.min()) / max(x.max() - x.min(), 1e-12)


def check_translated_saliency(my_map, model, image, class_index: int = 2) -> bool:
    """Exercise 7.1: your tf-keras-vis translation of
    ``visualize_saliency(model, layer_idx=-1, filter_indices=2, seed_input=image)``."""
    from .. import kerasvis

    if is_missing(my_map):
        return report(False, hint="Replace ... with the map that your Saliency call returns.")
    arr = np.asarray(my_map, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    want = kerasvis.saliency(model, image, class_index)
    if arr.shape != want.shape:
        return report(False, hint=f"Expected one map of shape {want.shape} (rows, columns); yours "
                                  f"has shape {arr.shape}. keepdims=False drops the colour axis.")
    if not np.all(np.isfinite(arr)):
        return report(False, hint="Your map contains NaN values.")
    if np.abs(_norm(arr) - _norm(want)).max() < 1e-3:
        return report(True, "Right: same map as keras-vis would give.")
    n_classes = int(model.output_shape[-1])
    for c in range(n_classes):
        if c != class_index and np.abs(_norm(arr) - _norm(kerasvis.saliency(model, image, c))).max() < 1e-3:
            return report(False, hint="That is the map of another class: filter_indices of the "
                                      "last layer is the class, so which score object picks it?")
    return report(False, hint="Not the same map. Check that you use the view before the "
                              "softmax (keras-vis made the last layer linear) and no smoothing.")


solution_text("translated_saliency", '''
    # visualize_saliency(model, layer_idx=-1, filter_indices=2, seed_input=image), with the last
    # layer made linear: a Saliency object on the logits view and a score for class 2.
    image = images[0]
    my_map = Saliency(logits, clone=False)(CategoricalScore(2), image[None])[0]
    ch.exercises.check_translated_saliency(my_map, model, image, class_index=2)
''')


def _plain_gradcam(model, image, class_index, layer_name):
    """Grad-CAM at ``layer_name``'s own resolution, written out (the checker's reference)."""
    import tensorflow as tf

    import tf_keras as keras

    from ..models import logits_model

    logits = logits_model(model)
    both = keras.Model(logits.inputs, [logits.get_layer(layer_name).output, logits.output])
    x = tf.constant(np.asarray(image, np.float32)[None])
    with tf.GradientTape() as tape:
        maps, scores = both(x, training=False)
        score = scores[0, class_index]
    grads = tape.gradient(score, maps)[0].numpy()
    weights = grads.mean(axis=(0, 1))
    return np.maximum((maps[0].numpy() * weights).sum(axis=-1), 0)


def check_gradcam(fn, model, image, class_index, layer_name: str = "conv3_relu") -> bool:
    """Exercise 7.2: ``fn(model, image, class_index, layer_name)`` returns Grad-CAM written out,
    at the layer's own resolution (no upsampling): for ``conv3_relu`` of course-cnn, 16x16."""
    got, hint = call_learner(fn, model, image, class_index, layer_name, returns="the map")
    if hint:
        return report(False, hint=hint)
    got = np.squeeze(np.asarray(got, dtype=np.float64))
    want = _plain_gradcam(model, image, class_index, layer_name)
    if got.shape != want.shape:
        return report(False, hint=f"Expected one value per cell of {layer_name}'s feature maps, "
                                  f"shape {want.shape}; yours has shape {got.shape}. Leave out "
                                  "the upsampling, and sum over the channels.")
    if not np.all(np.isfinite(got)):
        return report(False, hint="Your map contains NaN values.")
    if np.abs(_norm(got) - _norm(want)).max() < 1e-3:
        return report(True, "Right: Grad-CAM is a weighted sum of feature maps, then ReLU.")
    if got.min() < 0:
        return report(False, hint="Grad-CAM keeps only the evidence for the class: a ReLU at "
                                  "the end.")
    return report(False, hint="Weigh each channel by the mean of its gradient over the "
                              "positions, sum the weighted maps, then ReLU. Take the gradient "
                              "of the score before the softmax (the logits view).")


solution_text("gradcam", '''
    import tensorflow as tf
    import tf_keras as keras

    def my_gradcam(model, image, class_index, layer_name):
        logits = ch.models.logits_model(model)
        both = keras.Model(logits.inputs, [logits.get_layer(layer_name).output, logits.output])
        x = tf.constant(image[None])
        with tf.GradientTape() as tape:
            maps, scores = both(x)                           # feature maps and class scores
            score = scores[0, class_index]
        grads = tape.gradient(score, maps)[0]                # (h, w, channels)
        weights = tf.reduce_mean(grads, axis=(0, 1))         # one weight per channel
        cam = tf.reduce_sum(maps[0] * weights, axis=-1)      # weighted sum of the maps
        return tf.nn.relu(cam).numpy()

    ch.exercises.check_gradcam(my_gradcam, model, images[0], int(labels[0]), "conv3_relu")
''')


def check_cam_layer(layer_name, model) -> bool:
    """Exercise 7.2: the layer name to give Grad-CAM for the last conv layer's activation."""
    from .. import kerasvis, models

    if is_missing(layer_name):
        return report(False, hint="Replace ... with a layer name (a string).")
    if not isinstance(layer_name, str):
        return report(False, hint="Give the layer's name as a string.")
    names = [lyr.name for lyr in model.layers]
    if layer_name not in names:
        return report(False, hint="There is no such layer: look at [l.name for l in model.layers].")
    want = kerasvis.cam_layer(model)
    if layer_name == want:
        return report(True, "Right: the last conv block's output after batch norm and ReLU.")
    if layer_name in models.conv_layer_names(model):
        return report(False, hint="That is the raw convolution, before batch norm and ReLU; "
                                  "Grad-CAM weighs what the next layers see.")
    return report(False, hint="Grad-CAM needs the last spatial map the classifier sees: "
                              "walk back from 'gap'.")


# --------------------------------------------------------------------------- Exercise 7.3
def _two_top_classes(model, image):
    probs = np.asarray(model(np.asarray(image, np.float32)[None], training=False))[0]
    first, second = np.argsort(-probs)[:2]
    return int(first), int(second)


def _max_abs(attribution):
    return np.abs(np.asarray(attribution, np.float64)).max(axis=-1)


def check_class_similarity(fn, model, images, attribution=None) -> bool:
    """Exercise 7.3: ``fn(model, image, attribution)`` returns the Spearman rank correlation
    between the maps (max |.| over R, G, B) that ``attribution(model, image, class)`` gives for
    the model's two most likely classes of ``image``.  Checked on each of ``images`` with
    ``attribution`` (default: guided backprop) and with the plain gradient."""
    from scipy.stats import pearsonr, spearmanr

    from .. import attribution as _attribution
    from .. import saliency as _saliency

    if is_missing(fn) or not callable(fn):
        return report(False, hint="Write a function (def my_class_similarity(...): ...) and pass "
                                  "the function itself.")

    def gradient(model, image, c):
        return _saliency.input_gradient(model, np.asarray(image)[None], c)[0]

    methods = [attribution or _attribution.guided_backprop, gradient]
    for method in methods:
        for image in list(images)[:3]:
            got, hint = call_learner(fn, model, image, method, returns="one number")
            if hint:
                return report(False, hint=hint)
            try:
                got = float(np.asarray(got, dtype=np.float64).reshape(()))
            except (TypeError, ValueError):
                return report(False, hint="Return one number (a correlation), e.g. "
                                          "float(spearmanr(a, b)[0]).")
            first, second = _two_top_classes(model, image)
            a, b = (_max_abs(method(model, image, c)).ravel() for c in (first, second))
            want = float(spearmanr(a, b)[0])
            if abs(got - want) <= 1e-6:
                continue
            if abs(got - 1.0) <= 1e-9:
                return report(False, hint="A correlation of exactly 1: are both maps of the same "
                                          "class? Take the two most likely classes.")
            if abs(got - float(pearsonr(a, b)[0])) <= 1e-6:
                return report(False, hint="That is Pearson's correlation of the values; the "
                                          "exercise asks for the rank correlation (Spearman).")
            sums = [np.asarray(method(model, image, c), np.float64).sum(-1).ravel()
                    for c in (first, second)]
            if abs(got - float(spearmanr(*sums)[0])) <= 1e-6:
                return report(False, hint="Reduce R, G, B as the course does: the largest "
                                          "absolute value, not the sum.")
            return report(False, hint="Not the same number. Take the model's two most likely "
                                      "classes, one map each (largest |value| over R, G, B), "
                                      "and their Spearman correlation over all pixels.")
    return report(True, "Right. Now compare the numbers of the plain gradient, guided backprop "
                        "and deconvnet: which maps hardly change when the class changes?")


solution_text("class_similarity", '''
    from scipy.stats import spearmanr

    def my_class_similarity(model, image, attribution):
        probs = model(image[None]).numpy()[0]
        first, second = np.argsort(-probs)[:2]                # the two most likely classes
        maps = [np.abs(attribution(model, image, int(c))).max(axis=-1) for c in (first, second)]
        return float(spearmanr(maps[0].ravel(), maps[1].ravel())[0])

    ch.exercises.check_class_similarity(my_class_similarity, model, images)

    def gradient(model, image, c):
        return ch.saliency.input_gradient(model, image[None], c)[0]

    for name, method in (("gradient", gradient), ("guided backprop", ch.attribution.guided_backprop),
                         ("deconvnet", ch.attribution.deconvnet)):
        r = [my_class_similarity(model, im, method) for im in images]
        print(f"{name:16s} mean rank correlation between the top two classes' maps: {np.mean(r):.2f}")
''')
