"""Benchmark rows for lesson 05's feature visualization (``ch.ascent.render``): one step with
each parameterization, in forward passes F of the same model, measured side by side.

    python benchmarks/bench_ascent.py --repeats 3      # prints the rows
    rows(repeats) -> list of benchmarks.run.Row          # for benchmarks/run.py

A step of ``render`` is one forward and backward pass through the model *plus* the image
function (an inverse FFT, the colour mixing, the sigmoid), the random shift, scale and rotation,
and the fallback gradient (a second backward pass through the same tape); it is timed as a whole
``render`` call of :data:`STEPS` steps divided by :data:`STEPS` (its set-up spread over the
steps), after a warm-up that traces each compiled step once.  The lesson's pixel step
(``visualize_filter``) is timed in the same rounds for comparison.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(ROOT / "benchmarks")):
    if p not in sys.path:
        sys.path.insert(0, p)

import course_helpers as ch  # noqa: E402  (before TensorFlow: it selects tf-keras)
import tensorflow as tf  # noqa: E402
from run import F_CALLS, Row, forward_fn, time_calls  # noqa: E402

#: Steps per timed call.
STEPS = 8
#: The channel the rows climb (conv4, the deepest layer of course-cnn).
LAYER, CHANNEL = "conv4", 3


def rows(repeats: int = 3) -> list:
    """One row per parameterization of ``ch.ascent.render`` (and the lesson's pixel step), for
    course-cnn at 64 px, each with F measured in the same rounds."""
    model = ch.models.load_model("course-cnn")
    group = "course-cnn · 64 px"
    image = ch.data.make_shapes(1, seed=5)[0][0]
    fwd = forward_fn(model)
    one = tf.constant(image[None])
    goal = ch.ascent.channel(LAYER, CHANNEL)

    def f_calls():
        for _ in range(F_CALLS):
            fwd(one).numpy()

    def render(param, steps):
        return lambda: ch.ascent.render(model, goal, param=param, steps=steps, progress=False)

    def pixel(steps):
        return lambda: ch.ascent.visualize_filter(model, LAYER, CHANNEL, steps=steps, jitter=1,
                                                  progress=False)

    ours = [render(p, STEPS) for p in ch.ascent.PARAMS] + [pixel(STEPS)]
    warm = [render(p, 1) for p in ch.ascent.PARAMS] + [pixel(1), f_calls]
    t = time_calls(ours + [f_calls], repeats, warm=warm)
    F = t[-1] / F_CALLS
    out = [Row(group, f"render, 1 step, param={p!r}", s / STEPS, F,
               note=f"a {STEPS}-step call / {STEPS}; {LAYER} channel {CHANNEL}")
           for p, s in zip(ch.ascent.PARAMS, t)]
    out.append(Row(group, "visualize_filter (pixel + regularizers), 1 step",
                   t[len(ch.ascent.PARAMS)] / STEPS, F,
                   note=f"a {STEPS}-step call / {STEPS}; for comparison"))
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for row in rows(args.repeats):
        print(f"{row.name:55s} {row.seconds * 1e3:8.2f} ms  {row.f_ratio:6.1f} F   ({row.note})")
