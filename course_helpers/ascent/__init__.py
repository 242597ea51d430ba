"""Lesson 3.6 — gradient ascent: what a neuron wants to see (梯度上升), notebook 05.

No input image is needed: start from a plain image, take the gradient of one neuron with
respect to the pixels, add it, repeat.  The image drifts towards what that neuron responds to
most.  This module holds

* the source's algorithm as it is written (:func:`plain_ascent_frames`),
* regularized ascent for a class score (:func:`visualize_class`, Simonyan et al. 2014) and for
  one channel of a conv layer (:func:`visualize_filter`), with the regularizers of Yosinski et
  al. 2015: L2 decay, jitter, Gaussian blur every few steps, pixel clipping, total variation,
* :func:`deep_dream`, the same ascent started from a real photo (the bridge to lesson 4.1),
  and :func:`deep_dream_octaves` (several weighted layers at several sizes, keras.io's recipe),
* feature visualization as in lucid / Distill (:func:`render`): the image described by its
  pixels, its Fourier coefficients, or those in decorrelated colour (:data:`PARAMS`,
  :func:`colour_matrix`), random shifts, scales and rotations each step, and composable
  objectives (:func:`channel`, :func:`neuron`, :func:`class_score`, :func:`direction`,
  :func:`diversity`, combined with ``+``, ``-``, ``*``),
* measures (:func:`objective_value`, :func:`improvement`, :func:`high_frequency_share`,
  :func:`kept_under_transforms`, :func:`gram_similarity`, the recipe table
  :func:`compare_recipes`), plots and the lesson's explorer widget.

The parts: :mod:`.objectives` (start images, objectives, measures of a result),
:mod:`.regularizers` (blur, total variation, high-frequency share), :mod:`.loop` (the step and
the ascent), :mod:`.params` (parameterizations, colour, transformations), :mod:`.rendering`
(:func:`render`), :mod:`.measures` (the table), :mod:`.dream` (DeepDream) and :mod:`.plots`
(figures and the explorer).

Conventions.  Images live in [0, 1], the models' input range.  "Zero" is literally the black
image; 0.5 (mid-grey) is the *neutral* image, the point L2 decay and small-norm clipping pull
towards.  Class scores are taken before the softmax (:func:`course_helpers.models.logits_model`);
a filter's objective is the mean over positions of one channel of
:func:`course_helpers.graph.activation_layer`.  Each ascent step (jitter, TensorFlow's own
gradient, regularizers, blur, clipping) is one compiled ``tf.function``, cached per model and
objective, so repeated calls never retrace.
"""
from .dream import deep_dream, deep_dream_octaves
from .loop import (DEFAULTS, AscentResult, ablation, plain_ascent_frames, trace_count,
                   visualize_class, visualize_filter)
from .objectives import (NEUTRAL, Objective, channel, class_score, direction, diversity, evaluate,
                         filter_gains, gram_matrices, improvement, neuron, objective_value,
                         start_image)
from .measures import (RECIPES, compare_recipes, gram_similarity, kept_under_transforms,
                       print_comparison, recipe_image)
from .params import PARAMS, colour_covariance, colour_matrix, photo_pixels
from .rendering import RENDER_DEFAULTS, Rendering, render, render_trace_count
from .plots import (ascent_explorer, class_models, plot_ablation, plot_class_models, plot_frames,
                    plot_history, plot_recipes)
from .regularizers import TV_EPS, blur, gaussian_kernel, high_frequency_share, total_variation

__all__ = [
    "Objective", "PARAMS", "RENDER_DEFAULTS", "Rendering", "channel", "class_score",
    "colour_covariance", "colour_matrix", "direction", "diversity", "evaluate", "gram_matrices",
    "neuron", "photo_pixels", "plot_recipes", "render", "render_trace_count", "RECIPES",
    "compare_recipes", "gram_similarity", "kept_under_transforms", "print_comparison", "recipe_image",
    "DEFAULTS", "NEUTRAL", "TV_EPS", "AscentResult", "ablation", "ascent_explorer", "blur",
    "class_models", "deep_dream", "deep_dream_octaves", "filter_gains", "gaussian_kernel",
    "high_frequency_share",
    "improvement", "objective_value", "plain_ascent_frames", "plot_ablation",
    "plot_class_models", "plot_frames", "plot_history", "start_image", "total_variation",
    "trace_count", "visualize_class", "visualize_filter",
]
