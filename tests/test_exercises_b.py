"""Exercises of notebooks 04, 07 and 08: each check accepts its registered worked solution
(executed as a learner would run it) and rejects plausible wrong answers."""
import numpy as np
import pytest
import tensorflow as tf

import course_helpers as ch


@pytest.fixture(scope="module")
def course_model():
    return ch.models.load_model("course-cnn")


@pytest.fixture(scope="module")
def shape(course_model):
    images, labels, masks = ch.data.make_shapes(4, seed=5)
    return images[0], int(labels[0])


def run_solution(name, **namespace):
    """Execute the registered solution of ``name``; return its namespace."""
    ns = {"np": np, "ch": ch, **namespace}
    exec(ch.exercises._base.SOLUTIONS[name], ns)
    return ns


def test_every_exercise_has_a_solution():
    for name in ("occlusion_scores", "vargrad", "blur_ig", "translated_saliency", "gradcam",
                 "class_similarity", "shortcut_cue", "blurred_deletion"):
        assert name in ch.exercises.solutions()


# ------------------------------------------------------------------ 04
def test_occlusion_scores(course_model, shape):
    image, label = shape
    ns = run_solution("occlusion_scores", model=course_model, image=image, label=label)
    fn = ns["my_occlusion_scores"]
    assert ch.exercises.check_occlusion_scores(fn, course_model, image, label) is True
    probs = lambda m, x, c, p, s: ch.occlusion.occlusion_map(m, x, c, patch=p, stride=s)  # noqa: E731
    assert ch.exercises.check_occlusion_scores(probs, course_model, image, label) is False
    no_flush = lambda m, x, c, p, s: fn(m, x, c, p, s)[:-1, :-1]  # noqa: E731
    assert ch.exercises.check_occlusion_scores(no_flush, course_model, image, label) is False
    assert ch.exercises.check_occlusion_scores(..., course_model, image, label) is False


def test_occlusion_scores_reference_is_the_logit_of_occlusion_map(course_model, shape):
    # the checker's reference, pushed through the softmax, is the package's probability grid
    from course_helpers.exercises.lesson04 import _occluded_outputs

    image, label = shape
    scores = _occluded_outputs(course_model, image, label, 16, 8, ch.models.logits_model(course_model))
    full = ch.models.logits_model(course_model)
    copies = []
    for y in ch.occlusion.occlusion_positions(64, 16, 8):
        for x in ch.occlusion.occlusion_positions(64, 16, 8):
            c = image.copy()
            c[y:y + 16, x:x + 16] = 0.5
            copies.append(c)
    all_scores = full.predict(np.stack(copies), verbose=0)
    probs = tf.nn.softmax(all_scores).numpy()[:, label].reshape(scores.shape)
    np.testing.assert_allclose(scores.ravel(), all_scores[:, label], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs, ch.occlusion.occlusion_map(course_model, image, label), atol=1e-5)


def test_vargrad(course_model, shape):
    image, label = shape
    ns = run_solution("vargrad", model=course_model, image=image, label=label)
    fn = ns["my_vargrad"]
    assert ch.exercises.check_vargrad(fn, course_model, image, label) is True
    smooth = lambda m, x, c, n, noise, seed: ch.saliency.saliency_map(  # noqa: E731
        m, x, c, smooth_samples=n, noise=noise, seed=seed)
    assert ch.exercises.check_vargrad(smooth, course_model, image, label) is False
    std = lambda *a: np.sqrt(fn(*a))  # noqa: E731  (max commutes with sqrt)
    assert ch.exercises.check_vargrad(std, course_model, image, label) is False
    other_seed = lambda m, x, c, n, noise, seed: fn(m, x, c, n, noise, seed + 1)  # noqa: E731
    assert ch.exercises.check_vargrad(other_seed, course_model, image, label) is False
    assert ch.exercises.check_vargrad(lambda *a: 1 / 0, course_model, image, label) is False


def test_vargrad_reference_matches_smoothgrads_noise(course_model, shape):
    # the checker draws the same noise as ch.saliency.saliency_map's SmoothGrad
    from course_helpers.exercises.lesson04 import _noisy_gradients

    image, label = shape
    grads = _noisy_gradients(course_model, image, label, 6, 0.15, 3)
    np.testing.assert_allclose(np.abs(grads).mean(axis=0).max(axis=-1),
                               ch.saliency.saliency_map(course_model, image, label,
                                                        smooth_samples=6, noise=0.15, seed=3),
                               rtol=1e-4, atol=1e-6)


def test_blur_ig(course_model, shape, capsys):
    from scipy.ndimage import gaussian_filter

    image, label = shape
    ns = run_solution("blur_ig", model=course_model, image=image, label=label)
    fn = ns["my_blur_ig"]
    printed = capsys.readouterr().out
    assert printed.count(" steps: gap ") == 6 and "Right" in printed
    check = ch.exercises.check_blur_ig
    assert check(fn, course_model, image, label) is True
    # the package's blur baseline is the exercise's: the two agree
    np.testing.assert_allclose(fn(course_model, image, label, 16),
                               ch.attribution.integrated_gradients(course_model, image, label,
                                                                   baseline="blur", steps=16),
                               rtol=1e-4, atol=1e-6)
    black = lambda m, x, c, steps: ch.attribution.integrated_gradients(m, x, c, steps=steps)  # noqa: E731
    assert check(black, course_model, image, label) is False
    # a blur that mixes the three colour channels is refused
    ns_wrong = {"np": np, "ch": ch, "model": course_model, "image": image, "label": label}
    text = ch.exercises._base.SOLUTIONS["blur_ig"].split("ch.exercises.check")[0]
    exec(text.replace("sigma=(4, 4, 0)", "sigma=4"), ns_wrong)
    assert check(ns_wrong["my_blur_ig"], course_model, image, label) is False
    no_diff = lambda m, x, c, steps: fn(m, x, c, steps) / np.where(  # noqa: E731
        x - gaussian_filter(x, sigma=(4, 4, 0)) == 0, 1, x - gaussian_filter(x, sigma=(4, 4, 0)))
    assert check(no_diff, course_model, image, label) is False
    assert check(lambda *a: ..., course_model, image, label) is False


# ------------------------------------------------------------------ 07
def test_translated_saliency(course_model):
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    images, labels, _ = ch.data.make_shapes(6, seed=7)
    logits = ch.models.logits_model(course_model)
    ns = run_solution("translated_saliency", model=course_model, images=images, logits=logits,
                      Saliency=Saliency, CategoricalScore=CategoricalScore)
    assert ch.exercises.check_translated_saliency(ns["my_map"], course_model, images[0], 2) is True
    wrong = Saliency(logits, clone=False)(CategoricalScore(3), images[:1])[0]
    assert ch.exercises.check_translated_saliency(wrong, course_model, images[0], 2) is False


def test_gradcam(course_model):
    images, labels, _ = ch.data.make_shapes(6, seed=7)
    ns = run_solution("gradcam", model=course_model, images=images, labels=labels)
    fn = ns["my_gradcam"]
    for i in range(3):
        assert ch.exercises.check_gradcam(fn, course_model, images[i], int(labels[i])) is True
    source = ch.exercises._base.SOLUTIONS["gradcam"]
    assert "tf.nn.relu(cam)" in source
    ns_wrong = {"np": np, "ch": ch}
    exec(source.split("ch.exercises.check")[0].replace("tf.nn.relu(cam)", "cam"), ns_wrong)
    no_relu = ns_wrong["my_gradcam"]
    assert ch.exercises.check_gradcam(no_relu, course_model, images[0], int(labels[0])) is False
    conv4 = lambda m, x, c, layer: fn(m, x, c, "conv4_relu")  # noqa: E731
    assert ch.exercises.check_gradcam(conv4, course_model, images[0], int(labels[0])) is False
    other = lambda m, x, c, layer: fn(m, x, (c + 1) % 6, layer)  # noqa: E731
    assert ch.exercises.check_gradcam(other, course_model, images[0], int(labels[0])) is False


def test_gradcam_reference_agrees_with_tf_keras_vis(course_model):
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.scores import CategoricalScore
    from course_helpers.exercises.lesson07 import _plain_gradcam

    images, labels, _ = ch.data.make_shapes(3, seed=7)
    ours = _plain_gradcam(course_model, images[0], int(labels[0]), "conv4_relu")
    theirs = Gradcam(ch.models.logits_model(course_model), clone=False)(
        CategoricalScore([int(labels[0])]), images[:1], penultimate_layer="conv4_relu",
        seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False)[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * max(ours.max(), 1e-6))


def test_class_similarity(course_model, capsys):
    from scipy.stats import pearsonr

    images, labels, _ = ch.data.make_shapes(6, seed=7)
    ns = run_solution("class_similarity", model=course_model, images=images)
    printed = capsys.readouterr().out
    assert "Right" in printed and printed.count("mean rank correlation") == 3
    fn = ns["my_class_similarity"]
    check = ch.exercises.check_class_similarity
    assert check(fn, course_model, images) is True
    assert check(fn, course_model, images, attribution=ch.attribution.deconvnet) is True

    def same_class(model, image, method):
        return fn(model, image, lambda m, x, c: method(m, x, int(np.argmax(m(x[None])[0]))))

    assert check(same_class, course_model, images) is False

    def pearson(model, image, method):
        first, second = np.argsort(-model(image[None]).numpy()[0])[:2]
        maps = [np.abs(method(model, image, int(c))).max(-1).ravel() for c in (first, second)]
        return float(pearsonr(*maps)[0])

    assert check(pearson, course_model, images) is False
    assert check(..., course_model, images) is False


# ------------------------------------------------------------------ 08
def test_shortcut_cue_solution():
    ns = run_solution("shortcut_cue")
    assert ch.exercises.check_shortcut_cue(ns["my_corner"], ns["my_class"]) is True
    assert ch.exercises.check_shortcut_cue("bottom-right", ns["my_class"]) is False


def test_blurred_deletion(course_model, shape):
    image, label = shape
    smap = ch.saliency.saliency_map(course_model, image, label)
    ns = run_solution("blurred_deletion", model=course_model, image=image, label=label, smap=smap)
    fn = ns["my_deletion"]
    assert ch.exercises.check_blurred_deletion(fn, course_model, image, label, smap) is True
    black = lambda m, x, c, s, k: ch.sanity.deletion_curve(m, x, c, s, k).probability  # noqa: E731
    assert ch.exercises.check_blurred_deletion(black, course_model, image, label, smap) is False
    backwards = lambda *a: fn(*a)[::-1]  # noqa: E731
    assert ch.exercises.check_blurred_deletion(backwards, course_model, image, label, smap) is False
    short = lambda *a: fn(*a)[1:]  # noqa: E731
    assert ch.exercises.check_blurred_deletion(short, course_model, image, label, smap) is False
