"""Benchmark rows of lesson 05's adversarial examples (``ch.adversarial``), in run.py's format.

One step of the targeted attack against G, one compiled gradient call of one image
(``ch.saliency.gradient_function``, TensorFlow's own forward and backward pass), timed in the
same rounds: the attack is gradient ascent on a class score, so a step should cost about one
gradient call (target: at most 1.2 G).  A step is the time of a ``STEPS``-step attack divided by
``STEPS``, its set-up (checks, the projection) spread over the steps, as run.py times gradient
ascent.  Also the redraw of the adversarial explorer from cache (target < 100 ms).

    python benchmarks/bench_adversarial.py            # prints the rows
    rows(repeats) -> list of run.Row                  # what benchmarks/run.py merges
"""
from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/run.py: timing machinery and the Row format)
from run import Row, ch, np, tf  # noqa: E402

STEPS = 20          # the default attack: 20 steps at 8/255


def attack_rows(name: str, repeats: int = 3, steps: int = STEPS) -> list:
    """F, G and one attack step for ``name`` ('course-cnn', or 'vgg16' built with weights=None)."""
    if name == "course-cnn":
        model = ch.models.load_model("course-cnn")
        group = "course-cnn · 64 px"
        image = ch.data.make_shapes(1, seed=5)[0][0]
    else:
        model = ch.models.load_model(name, weights=None)
        group = f"{name.upper()} · 224 px"
        image = ch.data.sample_images(224)["cat"]
    image = run._checks.image_for(model, image)
    fwd = run.forward_fn(model)
    one = tf.constant(image[None])
    c = int(np.argmax(fwd(one).numpy()[0]))
    target = (c + 1) % int(model.output_shape[-1])
    grad_fn = ch.saliency.gradient_function(model)
    cls = tf.constant(np.array([target], np.int32))

    def f_calls():
        for _ in range(run.F_CALLS):
            fwd(one).numpy()

    rounds = repeats * (run.SMALL_MODEL_ROUNDS if name == "course-cnn" else 1)
    attack, G, F = run.time_calls(
        [lambda: ch.adversarial.targeted_attack(model, image, target, steps=steps),
         lambda: grad_fn(tf.constant(image[None]), cls)[0].numpy(), f_calls], rounds,
        warm=[lambda: ch.adversarial.targeted_attack(model, image, target, steps=1),
              lambda: grad_fn(tf.constant(image[None]), cls)[0].numpy(), f_calls])
    F /= run.F_CALLS
    return [Row(group, "gradient call, 1 image, timed beside the attack (G)", G, F,
                note="ch.saliency.gradient_function"),
            Row(group, "targeted attack (ch.adversarial), 1 step", attack / steps, F,
                bound=G, bound_name="G", checks=[("bound", 1.2)],
                note=f"a {steps}-step call / {steps}")]


def explorer_rows(repeats: int = 3) -> list:
    """The redraw of ``ch.adversarial.adversarial_explorer`` from cache (target < 100 ms)."""
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 80, "image.interpolation": "nearest",
                                "axes.titlesize": 9})   # as ch.setup_notebook sets them
    model = ch.models.load_model("course-cnn")
    shapes = ch.data.make_shapes(2, seed=3)[0]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        box = ch.adversarial.adversarial_explorer(model, {"shape 0": shapes[0], "shape 1": shapes[1]})
        t = run.widget_redraw(box, "budget", (4, 8), repeats)
    return [Row("widget · lesson 05", "ch.adversarial.adversarial_explorer: change `budget`",
                t["redraw"], None, checks=[("abs", 0.1)], note=f"a {t['png_bytes'] // 1024} KB PNG")]


def rows(repeats: int = 3, models=("course-cnn", "vgg16")) -> list:
    """Every row of this file, in run.py's :class:`run.Row` format."""
    out = []
    for name in models:
        out += attack_rows(name, repeats)
    return out + explorer_rows(repeats)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="course-cnn,vgg16")
    args = parser.parse_args()
    result = rows(args.repeats, tuple(args.models.split(",")))
    print(run.format_table(result))
    for row, target in run.missed(result):
        print(f"MISSED: {row.group} · {row.name}: {target}")
