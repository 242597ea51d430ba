"""Train the bundled models.  The only way the weights in ``data/`` are made.

    python -m course_helpers.tools.train                 # course-cnn -> data/course-cnn.weights.h5
    python -m course_helpers.tools.train --evaluate      # print accuracy and first-layer figures
    python -m course_helpers.tools.train --variant shortcut   # the model of lesson 8

Deterministic for a seed (TensorFlow op determinism, seeded data).  The evaluation uses
``course_helpers.config.EVAL_SEED``, a seed that training never uses.
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


def train(out_dir=None, name="course-cnn", variant=None, verbose=True, **overrides) -> dict:
    """Train ``course-cnn`` (or a variant) and write its weights and a JSON record.

    Returns the record (settings, validation accuracy, time).  Used by the CLI and by a test
    that trains a tiny version for a few steps.
    """
    import tensorflow as tf
    import tf_keras as keras

    from ..models import build_course_cnn

    cfg = dict(DEFAULTS)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise TypeError(f"Unknown training settings: {sorted(unknown)}. Known: {sorted(cfg)}.")
    cfg.update(overrides)
    cfg["widths"] = list(cfg["widths"])
    seed = int(cfg["seed"])
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    t0 = time.time()
    x, y, _ = make_shapes(cfg["n_train"], seed=seed, size=cfg["input_size"])
    xv, yv, _ = make_shapes(cfg["n_val"], seed=seed + 1, size=cfg["input_size"])
    if variant == "shortcut":
        from ..sanity import add_shortcut_mark

        x = add_shortcut_mark(x, y)
        xv = add_shortcut_mark(xv, yv)
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

    record = {
        "name": name,
        "variant": variant,
        "class_names": list(SHAPE_CLASSES),
        "architecture": {"input_size": cfg["input_size"], "widths": cfg["widths"],
                         "kernel1": cfg["kernel1"]},
        "training": cfg,
        "val_accuracy": float(hist.history["val_accuracy"][-1]),
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
    for key in _CLI_FLAGS:
        if cfg[key] != DEFAULTS[key]:
            parts.append(f"--{key.replace('_', '-')} {cfg[key]}")
    return " ".join(parts)


def evaluate(name="course-cnn", n=EVAL_SIZE, seed=EVAL_SEED) -> dict:
    """Accuracy on fresh images and the first-layer figures of a bundled model.

    ``python -m course_helpers.tools.train --evaluate`` prints them; the tests check the bars.
    """
    from .. import filters
    from ..models import build_course_cnn, load_model, model_metadata

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


def _print_report(rep: dict) -> None:
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
    parser.add_argument("--variant", choices=["shortcut"], default=None,
                        help="train lesson 8's model with a corner mark that gives away one class")
    parser.add_argument("--out", default=None, help="output folder (default: the course's data/)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    parser.add_argument("--n-train", type=int, default=DEFAULTS["n_train"])
    parser.add_argument("--smooth", type=float, default=DEFAULTS["smooth"])
    parser.add_argument("--init-scale", type=float, default=DEFAULTS["init_scale"])
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    args = parser.parse_args(argv)
    name = "shortcut-cnn" if args.variant == "shortcut" else "course-cnn"
    if args.evaluate:
        _print_report(evaluate(name))
        return 0
    out = Path(args.out) if args.out else config.data_dir()
    rec = train(out, name=name, variant=args.variant, seed=args.seed, epochs=args.epochs,
                n_train=args.n_train, smooth=args.smooth, init_scale=args.init_scale, lr=args.lr)
    print(f"wrote {out / (name + '.weights.h5')}: val accuracy {rec['val_accuracy']:.4f} "
          f"in {rec['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
