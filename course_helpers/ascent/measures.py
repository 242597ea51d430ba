"""Measures of a feature visualization, and the lesson's table that compares the recipes at
the same step budget (lesson 3.6, "Measured: which recipe wins here?").

* :func:`kept_under_transforms`: how much of its objective an image keeps when it is shifted,
  scaled and rotated a little (the picture of a feature should not hang on one exact pixel
  grid);
* :func:`gram_similarity`: how alike a batch's images are in "style" at a layer (the mean
  pairwise cosine similarity of their Gram matrices), the measure the diversity term lowers;
* :func:`compare_recipes` and :func:`print_comparison`: the table.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import _checks, graph
from . import params as _params
from .loop import DEFAULTS, visualize_filter
from .objectives import (_activation_pair, _batch, _check_objective, _mean_pair_similarity,
                         channel, evaluate)
from .regularizers import high_frequency_share
from .rendering import RENDER_DEFAULTS, render

#: The recipes of the table, in its order: (label, how the image is made).
RECIPES = ("pixel, no blur", "pixel + regularizers", "pixel, robust (Adam)", "fft",
           "fft+decorrelated")


def kept_under_transforms(model, objective, images, n: int = 16, jitter: int = 2,
                          scale=(0.95, 1.05), rotate: float = 5.0, seed: int = 1) -> np.ndarray:
    """Per image, the mean over ``n`` random small transformations (the ones of
    :func:`course_helpers.ascent.params.transform`: a shift of up to ``jitter`` pixels, a
    scale in ``scale``, a rotation of up to ``rotate`` degrees) of objective(transformed) /
    objective(image).  1 means the image keeps all of it.  Lesson 3.6's table."""
    model = _checks.model(model)
    objective = _check_objective(model, objective)
    x = _batch(model, images)
    n = _checks.integer("n", n, low=1)
    jitter, (lo, hi), rotate = _params.check_robustness(jitter, scale, rotate)
    base, _ = evaluate(model, objective, x)
    kept = []
    for t in range(n):
        xt = _params.transform(tf.constant(x), seed, t, jitter, (lo, hi), rotate).numpy()
        kept.append(evaluate(model, objective, xt)[0])
    return np.mean(kept, axis=0) / np.where(np.abs(base) > 1e-6, base, np.nan)


def gram_similarity(model, layer, images) -> float:
    """The mean over pairs of images (i != j) of the cosine similarity of their Gram matrices
    at conv layer ``layer`` (after BN and ReLU): 1 = the same channels fire together in the
    same proportions.  Needs at least 2 images.  Lesson 3.6 (diversity)."""
    model = _checks.model(model)
    x = _batch(model, images)
    if len(x) < 2:
        raise ValueError(f"gram_similarity compares images: pass at least 2, got {len(x)}.")
    act, _ = _activation_pair(model, graph.require_conv(model, layer).name)
    acts = graph.submodel(model, act)(tf.constant(x), training=False)
    return float(_mean_pair_similarity(acts))


def recipe_image(model, layer, index, recipe, steps, seed=0, moves=None):
    """One channel's picture made by one of :data:`RECIPES` in ``steps`` steps (``moves``: the
    jitter, scale and rotate of :func:`render`'s recipes, as checked by :func:`_check_moves`)."""
    recipe = _checks.choice("recipe", recipe, RECIPES)
    if recipe == "pixel, no blur":
        return visualize_filter(model, layer, index, steps=steps, blur_every=0, seed=seed,
                                progress=False).image
    if recipe == "pixel + regularizers":
        return visualize_filter(model, layer, index, steps=steps, jitter=1, seed=seed,
                                progress=False).image
    param = "pixel" if recipe.startswith("pixel") else recipe
    return render(model, channel(layer, index), param=param, steps=steps, seed=seed,
                  **_check_moves(moves)).image


def _check_moves(moves) -> dict:
    """``moves`` (None, or a dict with some of ``jitter``, ``scale``, ``rotate``) as the full
    dict of :func:`render`'s random moves, the missing ones from ``RENDER_DEFAULTS`` (sized for
    course-cnn's 64-pixel images; at 224 pixels lucid uses jitter 8, scale (0.9, 1.1), rotate
    10)."""
    names = ("jitter", "scale", "rotate")
    if moves is None:
        moves = {}
    if not isinstance(moves, dict) or set(moves) - set(names):
        extra = sorted(set(moves) - set(names)) if isinstance(moves, dict) else moves
        raise ValueError(f"moves must be a dict with some of {', '.join(names)} (e.g. "
                         f"dict(jitter=8, scale=(0.9, 1.1), rotate=10)), got {extra!r}.")
    full = {name: moves.get(name, RENDER_DEFAULTS[name]) for name in names}
    jitter, scale, rotate = _params.check_robustness(full["jitter"], full["scale"], full["rotate"])
    return {"jitter": jitter, "scale": scale, "rotate": rotate}


def compare_recipes(model, layers=("conv2", "conv4"), channels=range(4), steps=None,
                    n: int = 16, seed: int = 0, recipes=RECIPES, moves=None) -> list:
    """For each layer and each of ``recipes`` (some of :data:`RECIPES`, in that order), at the
    same ``steps``: the mean over ``channels`` of the high-frequency share, the activation
    reached (the channel's mean activation on its picture) and the share of it kept under
    small random shifts, scales and rotations (:func:`kept_under_transforms`, ``n`` draws).
    ``moves`` (a dict of ``jitter``, ``scale``, ``rotate``; None: ``RENDER_DEFAULTS``, sized
    for 64-pixel images) are the random moves of :func:`render`'s recipes and of the ``kept``
    measure.  Returns dict rows (with the images under ``"images"``).  Lesson 3.6's table; its
    ImageNet part passes only the three recipes of :func:`plot_recipes`, to fit VGG16's step
    cost, and moves sized for 224 pixels."""
    from .. import config

    model = _checks.model(model)
    steps = config.scaled(128, 32) if steps is None else _checks.integer("steps", steps, low=1)
    channels = list(_checks.nonempty("channels", list(channels)))
    recipes = [recipes] if isinstance(recipes, str) else list(recipes)
    chosen = [_checks.choice("recipes", r, RECIPES) for r in
              _checks.nonempty("recipes", recipes, f"choose among {list(RECIPES)}")]
    moves = _check_moves(moves)
    rows = []
    for layer in _checks.conv_layer_names(model, list(layers)):
        for recipe in [r for r in RECIPES if r in chosen]:
            imgs = np.stack([recipe_image(model, layer, c, recipe, steps, seed, moves)
                             for c in channels])
            reached = [float(evaluate(model, channel(layer, c), im)[0][0])
                       for c, im in zip(channels, imgs)]
            kept = [float(kept_under_transforms(model, channel(layer, c), im, n=n, **moves)[0])
                    for c, im in zip(channels, imgs)]
            rows.append({"layer": layer, "recipe": recipe, "steps": steps,
                         "hf": float(np.mean([high_frequency_share(im) for im in imgs])),
                         "reached": float(np.mean(reached)),
                         "kept": float(np.nanmean(kept)) if np.isfinite(kept).any() else np.nan,
                         "images": imgs})
    return rows


def print_comparison(rows) -> None:
    """The table of :func:`compare_recipes`, and per layer which recipe is best on each
    measure (lowest high-frequency share, highest activation, most kept).  The activation is
    also given as a share of the lesson's pixel recipe ("pixel + regularizers"), or, when the
    rows lack it, of ``render``'s pixel recipe ("pixel, robust (Adam)")."""
    rows = _checks.nonempty("rows", list(rows), "pass the rows of ch.ascent.compare_recipes")
    wl = max(6, *(len(r["layer"]) for r in rows))
    names = {r["recipe"] for r in rows}
    reference, short = (("pixel + regularizers", "pixel+reg") if "pixel + regularizers" in names
                        else ("pixel, robust (Adam)", "pixel"))
    print(f"{'layer':{wl}s} {'recipe':22s} {'HF share':>9s} {'activation':>11s} {'vs ' + short:>13s}"
          f" {'kept':>6s}")
    for layer in dict.fromkeys(r["layer"] for r in rows):
        mine = [r for r in rows if r["layer"] == layer]
        ref = next((r["reached"] for r in mine if r["recipe"] == reference), None)
        for r in mine:
            rel = f"{r['reached'] / ref:12.0%}" if ref else f"{'':12s}"
            print(f"{layer:{wl}s} {r['recipe']:22s} {r['hf']:9.3f} {r['reached']:11.2f} {rel} "
                  f"{r['kept']:6.0%}")
        best = {"smoothest": min(mine, key=lambda r: r["hf"]),
                "highest activation": max(mine, key=lambda r: r["reached"]),
                "most kept under transforms": max(mine, key=lambda r: r["kept"])}
        print(f"{layer}: " + "; ".join(f"{k}: {v['recipe']}" for k, v in best.items()))
    print(f"(same budget: {rows[0]['steps']} steps each; pixel recipes: lr {DEFAULTS['lr']}, "
          f"render: Adam lr {RENDER_DEFAULTS['lr']})")
