"""Train the bundled models.  The only way the weights in ``data/`` are made.

    python -m course_helpers.tools.train                 # course-cnn -> data/course-cnn.weights.h5
    python -m course_helpers.tools.train --evaluate      # accuracy and first-layer figures
                                                         # (and the shuffled-label model's)
    python -m course_helpers.tools.train --variant shortcut   # the model of lesson 8
    python -m course_helpers.tools.train --variant shuffled-labels   # lesson 8's data randomization
    python -m course_helpers.tools.train --variant shuffled-labels --evaluate

Deterministic for a seed (TensorFlow op determinism, seeded data).  The evaluation uses
``course_helpers.config.EVAL_SEED``, a seed that training never uses.

``shuffled-labels`` (Adebayo et al. 2018's data randomization test) trains the same
architecture on a small set of shapes whose labels are permuted at random
(``ch.sanity.shuffle_labels``), for enough epochs to memorize them: high accuracy on its
own shuffled labels, chance on fresh images.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .. import config
from ..config import EVAL_SEED, EVAL_SIZE
from ..data import SHAPE_CLASSES, make_shapes

DEFAULTS = dict(seed=0, n_train=16000, n_val=1000, epochs=7, batch_size=64, lr=0.05,
                smooth=0.02, init_scale=0.1, widths=(16, 32, 64, 96), kernel1=7, input_size=64)

#: Each variant's model name and the settings it changes from :data:`DEFAULTS`.
VARIANTS = {
    None: ("course-cnn", {}),
    "shortcut": ("shortcut-cnn", {}),
    # memorizing random labels: few images, many epochs, no smoothness prior on conv1
    "shuffled-labels": ("course-cnn-shuffled", dict(n_train=512, n_val=250, epochs=150,
                                                    batch_size=32, lr=0.02, smooth=0.0)),
}
#: The bars ``--evaluate`` prints and the tests check for the shuffled-label model.
SHUFFLED_BARS = {"train_accuracy": 0.9, "chance_margin": 0.05}


def defaults(variant=None) -> dict:
    """The settings a variant trains with when nothing is overridden."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {[v for v in VARIANTS if v]} or None, got "
                         f"{variant!r}.")
    cfg = dict(DEFAULTS)
    cfg.update(VARIANTS[variant][1])
    return cfg


def training_data(cfg, variant=None):
    """The training and validation images and labels a run sees (seeded by ``cfg['seed']``).

    For ``shuffled-labels`` the training labels are permuted; the validation labels stay true
    (so validation accuracy is the held-out accuracy on the real task).
    """
    seed = int(cfg["seed"])
    x, y, _ = make_shapes(cfg["n_train"], seed=seed, size=cfg["input_size"])
    xv, yv, _ = make_shapes(cfg["n_val"], seed=seed + 1, size=cfg["input_size"])
    if variant == "shortcut":
        from ..sanity import add_shortcut_mark

        x = add_shortcut_mark(x, y)
        xv = add_shortcut_mark(xv, yv)
    elif variant == "shuffled-labels":
        from ..sanity import shuffle_labels

        y = shuffle_labels(y, seed=seed)
    return x, y, xv, yv


def _progress_callback(epochs, steps_per_epoch):
    import tf_keras as keras
    from tqdm.auto import tqdm

    class TqdmCallback(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs * steps_per_epoch, desc="training", unit="batch",
                            file=sys.stderr, mininterval=1.0)

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}",
                                 val_acc=f"{logs.get('val_accuracy', 0):.3f}")

        def on_train_end(self, logs=None):
            self.bar.close()

    return TqdmCallback()


def train(out_dir=None, name=None, variant=None, verbose=True, **overrides) -> dict:
    """Train ``course-cnn`` (or a variant) and write its weights and a JSON record.

    ``name`` defaults to the variant's model name (:data:`VARIANTS`); settings not given
    come from :func:`defaults`.  Returns the record (settings, validation accuracy, time).
    Used by the CLI and by tests that train tiny versions for a few steps.
    """
    import tensorflow as tf
    import tf_keras as keras

    from ..models import build_course_cnn

    cfg = defaults(variant)
    if name is None:
        name = VARIANTS[variant][0]
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise TypeError(f"Unknown training settings: {sorted(unknown)}. Known: {sorted(cfg)}.")
    cfg.update(overrides)
    cfg["widths"] = list(cfg["widths"])
    seed = int(cfg["seed"])
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    t0 = time.time()
    x, y, xv, yv = training_data(cfg, variant)
    t_data = time.time() - t0

    model = build_course_cnn(num_classes=len(SHAPE_CLASSES), input_size=cfg["input_size"],
                             widths=tuple(cfg["widths"]), kernel1=cfg["kernel1"],
                             smooth=cfg["smooth"], init_scale=cfg["init_scale"], seed=seed,
                             name=name)
    steps = int(np.ceil(len(x) / cfg["batch_size"]))
    schedule = keras.optimizers.schedules.CosineDecay(cfg["lr"], decay_steps=cfg["epochs"] * steps,
                                                      alpha=0.02)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [_progress_callback(cfg["epochs"], steps)] if verbose else []
    hist = model.fit(x, y, batch_size=cfg["batch_size"], epochs=cfg["epochs"],
                     validation_data=(xv, yv), shuffle=True, verbose=0, callbacks=callbacks)
    t_total = time.time() - t0
    extra = {}
    if variant == "shuffled-labels":   # what it memorized, measured without dropout
        pred = model.predict(x, batch_size=256, verbose=0).argmax(-1)
        extra["train_accuracy"] = float((pred == y).mean())

    record = {
        "name": name,
        "variant": variant,
        "class_names": list(SHAPE_CLASSES),
        "architecture": {"input_size": cfg["input_size"], "widths": cfg["widths"],
                         "kernel1": cfg["kernel1"]},
        "training": cfg,
        "val_accuracy": float(hist.history["val_accuracy"][-1]),
        **extra,
        "seconds": round(t_total, 1),
        "seconds_data": round(t_data, 1),
        "made_by": _command_line(variant, cfg),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(out / f"{name}.weights.h5"))
        (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    record["model"] = model
    return record


_CLI_FLAGS = ("seed", "epochs", "n_train", "smooth", "init_scale", "lr")


def _command_line(variant, cfg) -> str:
    """The command that reproduces a run: the script plus every setting that differs from the defaults."""
    parts = ["python -m course_helpers.tools.train"]
    if variant:
        parts.append(f"--variant {variant}")
    base = defaults(variant)
    for key in _CLI_FLAGS:
        if cfg[key] != base[key]:
            parts.append(f"--{key.replace('_', '-')} {cfg[key]}")
    return " ".join(parts)


def evaluate(name="course-cnn", n=EVAL_SIZE, seed=EVAL_SEED) -> dict:
    """Accuracy on fresh images and the first-layer figures of a bundled model.

    ``python -m course_helpers.tools.train --evaluate`` prints them; the tests check the bars.
    """
    from .. import filters
    from ..models import build_course_cnn, load_model, model_metadata

    if name == VARIANTS["shuffled-labels"][0]:
        return evaluate_shuffled(n=n, seed=seed)
    model = load_model(name)
    meta = model_metadata(name)
    x, y, _ = make_shapes(n, seed=seed, size=meta["architecture"]["input_size"])
    if meta.get("variant") == "shortcut":
        from ..sanity import add_shortcut_mark

        x = add_shortcut_mark(x, y)
    pred = model.predict(x, batch_size=256, verbose=0).argmax(-1)
    arch = meta["architecture"]
    tr = meta["training"]
    untrained = build_course_cnn(input_size=arch["input_size"], widths=tuple(arch["widths"]),
                                 kernel1=arch["kernel1"], init_scale=tr["init_scale"],
                                 seed=tr["seed"])
    report = filters.smoothness_report(filters.first_layer_filters(model),
                                       filters.first_layer_filters(untrained))
    report.update({"accuracy": float((pred == y).mean()), "eval_images": int(n), "eval_seed": seed,
                   "kernel_size": int(arch["kernel1"]),
                   "n_kernels": int(arch["widths"][0]), "train_seconds": meta["seconds"]})
    return report


def evaluate_shuffled(n=EVAL_SIZE, seed=EVAL_SEED) -> dict:
    """The shuffled-label model's figures: accuracy on the shuffled labels it was trained on
    (re-made from its record's seed) and on ``n`` fresh images with their true labels.
    """
    from ..models import model_metadata
    from ..sanity import load_shuffled_model

    name = VARIANTS["shuffled-labels"][0]
    model = load_shuffled_model()
    meta = model_metadata(name)
    x, y, _, _ = training_data(meta["training"], "shuffled-labels")
    train_acc = float((model.predict(x, batch_size=256, verbose=0).argmax(-1) == y).mean())
    xf, yf, _ = make_shapes(n, seed=seed, size=meta["architecture"]["input_size"])
    fresh = float((model.predict(xf, batch_size=256, verbose=0).argmax(-1) == yf).mean())
    return {"name": name, "train_accuracy": train_acc, "train_images": int(len(x)),
            "accuracy": fresh, "eval_images": int(n), "eval_seed": seed,
            "chance": 1.0 / len(meta["class_names"]), "epochs": int(meta["training"]["epochs"]),
            "train_seconds": meta["seconds"]}


def _print_shuffled(rep: dict) -> None:
    bars = SHUFFLED_BARS
    print(f"{rep['name']}: accuracy on its {rep['train_images']} training images with their "
          f"shuffled labels: {rep['train_accuracy']:.4f}   (bar: >= {bars['train_accuracy']})")
    print(f"accuracy on {rep['eval_images']} fresh images (seed {rep['eval_seed']}), true labels: "
          f"{rep['accuracy']:.4f}   (bar: chance {rep['chance']:.3f} +- {bars['chance_margin']})")
    print(f"  trained for {rep['epochs']} epochs in {rep['train_seconds']:.0f} s")


def _print_report(rep: dict) -> None:
    if "train_accuracy" in rep:
        _print_shuffled(rep)
        return
    print(f"accuracy on {rep['eval_images']} fresh images (seed {rep['eval_seed']}): "
          f"{rep['accuracy']:.4f}   (bar: >= 0.97)")
    print(f"first layer: {rep['n_kernels']} kernels of {rep['kernel_size']}x{rep['kernel_size']}x3")
    print(f"  dead kernels (norm < 0.1 x median): {rep['dead_fraction']:.1%}   (bar: < 10%)")
    print(f"  median low-frequency energy share: trained {rep['median_low_freq_share']:.3f}, "
          f"untrained {rep['untrained_median_low_freq_share']:.3f}, ratio "
          f"{rep['smoothness_ratio']:.2f}x   (bar: >= 2.5x)")
    print(f"  training took {rep['train_seconds']:.0f} s")


def main(argv=None) -> int:
    """``python -m course_helpers.tools.train``: train a bundled model or print its figures."""
    parser = argparse.ArgumentParser(prog="python -m course_helpers.tools.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluate", action="store_true",
                        help="do not train: print the shipped model's accuracy and kernel figures")
    parser.add_argument("--variant", choices=[v for v in VARIANTS if v], default=None,
                        help="shortcut: lesson 8's model with a corner mark that gives away one "
                             "class; shuffled-labels: the same network memorizing random labels")
    parser.add_argument("--out", default=None, help="output folder (default: the course's data/)")
    for key, kind in (("seed", int), ("epochs", int), ("n_train", int), ("smooth", float),
                      ("init_scale", float), ("lr", float)):
        parser.add_argument(f"--{key.replace('_', '-')}", type=kind, default=None,
                            help="default: the variant's own setting")
    args = parser.parse_args(argv)
    name = VARIANTS[args.variant][0]
    if args.evaluate:
        _print_report(evaluate(name))
        shuffled = VARIANTS["shuffled-labels"][0]
        if args.variant is None and (config.data_dir() / f"{shuffled}.json").is_file():
            print()          # the data-randomization model ships with course-cnn: its figures too
            _print_report(evaluate(shuffled))
        return 0
    out = Path(args.out) if args.out else config.data_dir()
    given = {k: getattr(args, k) for k in _CLI_FLAGS if getattr(args, k) is not None}
    rec = train(out, name=name, variant=args.variant, **given)
    more = (f", accuracy on its shuffled training labels {rec['train_accuracy']:.4f}"
            if "train_accuracy" in rec else "")
    print(f"wrote {out / (name + '.weights.h5')}: val accuracy {rec['val_accuracy']:.4f}{more} "
          f"in {rec['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
