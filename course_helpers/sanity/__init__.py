"""The closing lesson -- opening the black box (notebook 08).

We can *see* what a network responds to; we do not know *why*.  This subpackage makes that
claim testable in three ways, one module each:

* **Sanity checks** (Adebayo et al. 2018), :mod:`.randomization`: :func:`randomize_layers` and
  :func:`randomized` re-draw a model's weights, :func:`cascading_randomization` from the top
  layer down; a map that barely changes is showing the image, not the model.
* **Measuring explanations**, :mod:`.metrics`: :func:`deletion_curve` and :func:`insertion_curve`
  (Petsiuk et al. 2018) and :func:`pointing_game` (Zhang et al. 2016) on shapes with known
  masks, combined by :func:`evaluate_explanations`, against the baselines :func:`random_map`
  and :func:`centre_map` (:func:`worse_than` names the methods a baseline beats); ROAD's noisy
  linear imputation (Rong et al. 2022), :mod:`.road`; every method ranked under each metric,
  :mod:`.ranking`.
* **Data randomization** (Adebayo et al. 2018), :mod:`.labels`: ``course-cnn-shuffled`` learned
  shuffled labels (:func:`shuffle_labels`, :func:`load_shuffled_model`);
  :func:`data_randomization` compares maps on it and on ``course-cnn`` (Spearman, :func:`ssim`).
* **A network that learned the wrong thing** (shortcut learning, Geirhos et al. 2020),
  :mod:`.shortcut`: :func:`add_shortcut_mark` puts a small mark in a corner of every image of
  one class; ``shortcut-cnn`` is trained on such data.

:mod:`.plots` draws the results.
"""
from .labels import SHUFFLED_CNN, data_randomization, load_shuffled_model, shuffle_labels, ssim
from .metrics import (METRICS, Curve, centre_map, deletion_curve, evaluate_explanations, format_table,
                      insertion_curve, pointing_game, random_map, worse_than)
from .plots import (plot_curves, plot_map_grid, plot_overlays, plot_randomization,
                    plot_randomization_maps)
from .randomization import (all_methods, attribution_methods, cascade_order,
                            cascading_randomization, edge_map, randomize_layers, randomized,
                            spearman, standard_methods)
from .ranking import metric_table, rank_agreement, rank_table
from .road import imputation_system, noisy_linear_impute, road_curve
from .shortcut import (CORNERS, MARK_COLOUR, MARK_MARGIN, MARK_SIZE, SHORTCUT_CLASS,
                       add_shortcut_mark, cue_recovery, shortcut_mask, shortcut_report,
                       shortcut_test_sets)

__all__ = [
    "Curve", "centre_map", "deletion_curve", "evaluate_explanations", "format_table",
    "insertion_curve", "pointing_game", "random_map", "worse_than", "plot_curves",
    "plot_map_grid", "plot_overlays", "plot_randomization", "plot_randomization_maps",
    "all_methods", "attribution_methods",
    "cascade_order", "cascading_randomization", "edge_map", "randomize_layers", "randomized",
    "spearman", "standard_methods", "CORNERS", "MARK_COLOUR", "MARK_MARGIN", "MARK_SIZE",
    "SHORTCUT_CLASS", "add_shortcut_mark", "cue_recovery", "shortcut_mask", "shortcut_report",
    "shortcut_test_sets", "SHUFFLED_CNN", "data_randomization", "load_shuffled_model",
    "shuffle_labels", "ssim", "METRICS", "metric_table", "rank_agreement", "rank_table",
    "imputation_system", "noisy_linear_impute", "road_curve",
]
