"""Maintainer tooling: train (or evaluate) lesson 4.1's one-pass style network.

The only way ``data/style-net.weights.h5`` and ``data/style-net.json`` are made::

    python -m course_helpers.tools.stylizer train        # about 10 minutes on 2 CPU cores
    python -m course_helpers.tools.stylizer evaluate     # its style-loss figures

The lessons only load the result (:func:`course_helpers.style.load_stylizer`).
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from .. import _checks, config
from .. import data as _data
from ..style.extractors import (OFFLINE_NAME, _listify, default_layers, feature_model,
                                offline_extractor, vgg19_extractor)
from ..style.losses import _content_term, _style_terms, gram_matrix, squared_variation, style_loss
from ..style.stylizer import (STYLIZER_NAME, TRAIN_COMMAND, _stylizer_paths, build_transform_net,
                              style_images, stylize, stylizer_record)


@functools.lru_cache(maxsize=1)
def _crop_sources():
    """Every shipped photo and texture at 256 px and at 0.6x and 0.35x that size."""
    from skimage.transform import rescale

    sources = list(_data.sample_images(256).values()) + list(_data.textures(256).values())
    return [[rescale(img, f, channel_axis=-1, anti_aliasing=True).astype(np.float32)
             for f in (0.35, 0.6, 1.0)] for img in sources]


def training_images(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Seeded training set of the one-pass network: crops of the shipped photos and textures
    at several scales, and generated shapes (``ch.data.make_shapes``).  Lesson 4.1."""
    rng = np.random.default_rng(seed)
    n_shapes = n // 3
    shapes, _, _ = _data.make_shapes(n_shapes, seed=seed, size=size)
    pyramids = _crop_sources()
    crops = np.empty((n - n_shapes, size, size, 3), np.float32)
    for i in range(len(crops)):
        levels = pyramids[rng.integers(len(pyramids))]
        img = levels[rng.integers(len(levels))]
        top = rng.integers(img.shape[0] - size + 1)
        left = rng.integers(img.shape[1] - size + 1)
        crop = img[top:top + size, left:left + size]
        crops[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
    images = np.concatenate([shapes, crops])
    return np.clip(images[rng.permutation(len(images))], 0, 1)


TRAIN_DEFAULTS = dict(style="flower", style_size=96, size=64, steps=1200, batch_size=4,
                      n_images=1200, lr=2e-3, content_weight=1.0, style_weight=3.0,
                      tv_weight=10.0, width=16, n_res=3, seed=0, extractor=OFFLINE_NAME)


def train_stylizer(out_dir=None, name=STYLIZER_NAME, verbose=True, **overrides) -> dict:
    """Train the one-pass network for one style with the perceptual loss.  Lesson 4.1.

    Content target: the input's own features at the extractor's content layer; style target:
    the style image's Gram matrices.  Deterministic for a seed.  Writes
    ``<name>.weights.h5`` and ``<name>.json`` into ``out_dir`` (when given) and returns the
    record; ``record["net"]`` is the trained network.
    """
    cfg = dict(TRAIN_DEFAULTS)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise TypeError(f"Unknown training settings: {sorted(unknown)}. Known: {sorted(cfg)}.")
    cfg.update(overrides)
    for key in ("steps", "batch_size", "n_images", "size", "style_size", "width", "n_res"):
        cfg[key] = _checks.integer(key, cfg[key], low=1)
    for key in ("lr", "content_weight", "style_weight"):
        cfg[key] = _checks.number(key, cfg[key], positive=True)
    cfg["tv_weight"] = _checks.number("tv_weight", cfg["tv_weight"], low=0)
    seed = int(cfg["seed"])
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    if cfg["extractor"] == OFFLINE_NAME:
        model = offline_extractor()
    elif cfg["extractor"] == "vgg19":
        model = vgg19_extractor()
    else:
        raise ValueError(f"extractor must be {OFFLINE_NAME!r} or 'vgg19', got {cfg['extractor']!r}.")
    styles = style_images(cfg["style_size"])
    if cfg["style"] not in styles:
        raise ValueError(f"Unknown style {cfg['style']!r}; choose from {sorted(styles)}.")
    style = styles[cfg["style"]]
    content_layer, style_layers = default_layers(model)

    t0 = time.time()
    images = training_images(cfg["n_images"], size=cfg["size"], seed=seed)
    held_out = training_images(16, size=cfg["size"], seed=seed + 10_000)
    fm = feature_model(model, [content_layer] + style_layers)
    # The style is seen at the training size: Gram matrices of the style image at style_size.
    style_targets = [tf.constant(gram_matrix(f))
                     for f in _listify(fm(style[None], training=False))[1:]]
    net = build_transform_net(width=cfg["width"], n_res=cfg["n_res"], seed=seed)
    opt = keras.optimizers.Adam(cfg["lr"])
    cw, sw, tw = (tf.constant(float(cfg[k]), tf.float32)
                  for k in ("content_weight", "style_weight", "tv_weight"))

    @tf.function
    def train_step(x):
        target = _listify(fm(x, training=False))[0]
        with tf.GradientTape() as tape:
            y = net(x, training=True)
            feats = _listify(fm(y, training=False))
            c = tf.reduce_mean(_content_term(feats[0], target))
            s = tf.reduce_mean(_style_terms(feats[1:], style_targets))
            t = tf.reduce_mean(squared_variation(y))
            total = cw * c + sw * s + tw * t
        grads = tape.gradient(total, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return total, c, s

    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed + 1)
    bs = int(cfg["batch_size"])
    bar = tqdm(range(int(cfg["steps"])), desc="training style-net", unit="step",
               disable=not verbose, mininterval=2.0, file=sys.stderr)
    order = rng.permutation(len(images))
    pos = 0
    losses = []
    for i in bar:
        if pos + bs > len(order):
            order, pos = rng.permutation(len(images)), 0
        batch = images[order[pos:pos + bs]]
        pos += bs
        total, c, s = (float(v) for v in train_step(tf.constant(batch)))
        losses.append([total, c, s])
        if i % 20 == 0:
            bar.set_postfix(style=f"{s:.3f}", content=f"{c:.3f}")
    bar.close()
    seconds = time.time() - t0

    out = stylize(net, held_out)
    before = style_loss(held_out, style, style_layers, model=model)
    after = style_loss(out, style, style_layers, model=model)
    record = {
        "name": name,
        "what": "Johnson et al. feed-forward style network for one style (lesson 4.1)",
        "settings": cfg,
        "content_layer": content_layer,
        "style_layers": style_layers,
        "held_out_style_loss_input": float(np.mean(before)),
        "held_out_style_loss_output": float(np.mean(after)),
        "final_train_losses": {"total": float(np.mean([l[0] for l in losses[-50:]])),
                               "content": float(np.mean([l[1] for l in losses[-50:]])),
                               "style": float(np.mean([l[2] for l in losses[-50:]]))},
        "parameters": int(net.count_params()),
        "seconds": round(seconds, 1),
        "made_by": f"{TRAIN_COMMAND}" + "".join(
            f" --{k.replace('_', '-')} {v}" for k, v in overrides.items()
            if v != TRAIN_DEFAULTS[k]),
    }
    if out_dir is not None:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        weights, meta = _stylizer_paths(name, folder)
        net.save_weights(str(weights))
        meta.write_text(json.dumps(record, indent=2) + "\n")
    record["net"] = net
    return record


def main(argv=None) -> int:
    """``python -m course_helpers.tools.stylizer``: train or evaluate the one-pass style network."""
    parser = argparse.ArgumentParser(prog="python -m course_helpers.tools.stylizer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train the one-pass style network (writes data/)")
    tr.add_argument("--out", default=None, help="output folder (default: the course's data/)")
    tr.add_argument("--name", default=STYLIZER_NAME)
    for key, value in TRAIN_DEFAULTS.items():
        tr.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    ev = sub.add_parser("evaluate", help="print the shipped network's style-loss figures")
    ev.add_argument("--name", default=STYLIZER_NAME)
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        rec = stylizer_record(args.name)
        print(json.dumps({k: v for k, v in rec.items() if k != "settings"}, indent=2))
        return 0
    overrides = {k: getattr(args, k) for k in TRAIN_DEFAULTS
                 if getattr(args, k) != TRAIN_DEFAULTS[k]}
    out = Path(args.out) if args.out else config.data_dir()
    rec = train_stylizer(out, name=args.name, **overrides)
    print(f"wrote {out / (args.name + '.weights.h5')} in {rec['seconds']:.0f} s; held-out style "
          f"loss {rec['held_out_style_loss_input']:.3f} (input) -> "
          f"{rec['held_out_style_loss_output']:.3f} (stylized)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
