"""Lesson 2 — the last layer, reduced to 2-D (最后一层 · 降维法), notebook 02.

Every image becomes a feature vector at the penultimate layer (128 numbers for ``course-cnn``,
4096 for VGG16).  t-SNE or PCA squeeze the vectors to (x, y); images with similar vectors land
together.  :mod:`.features` extracts the features, embeds them and measures how well the
classes separate (k-nearest-neighbour accuracy in the map); :mod:`.plots` draws the maps and
holds the explorer.  Everything is importable from here: ``ch.embedding.extract_features``.
"""
from .features import (METHODS, PIXELS, available_methods, cached_embedding, cached_features,
                       compare_layers, embed_2d, extract_features, grid_assignment, knn_accuracy,
                       nearest_neighbours, neighbour_agreement, penultimate_layer)
from .plots import (embedding_explorer, explorer_sample, grid_mosaic, plot_embedding, plot_embedding_grid,
                    plot_layer_comparison, plot_neighbours, thumbnail_canvas)

__all__ = ["METHODS", "PIXELS", "available_methods", "cached_embedding", "cached_features",
           "compare_layers", "embed_2d", "extract_features", "grid_assignment", "knn_accuracy",
           "nearest_neighbours", "neighbour_agreement", "penultimate_layer", "embedding_explorer", "explorer_sample",
           "grid_mosaic", "plot_embedding", "plot_embedding_grid", "plot_layer_comparison",
           "plot_neighbours", "thumbnail_canvas"]
