"""Benchmarks: every method against its peer and against the forward-pass limit (``make bench``).

Times, side by side in one run, for ``course-cnn`` (64x64) and the VGG16 architecture (224x224,
``weights=None``: timing needs the architecture, not the ImageNet weights):

* F, one compiled forward pass of one image, and the per-image time in a full batch (Fb);
* G, one compiled forward-and-backward gradient call of one image (``ch.saliency.gradient_function``,
  TensorFlow's own gradient), and Gb, its per-image time in SmoothGrad's batch;
* saliency, SmoothGrad (20 samples), integrated gradients (64 steps, against 64 x its batch's
  per-image gradient call), guided backprop (against G), Grad-CAM, occlusion, one
  gradient-ascent step, against tf-keras-vis (Saliency, SmoothGrad, Saliency +
  GuidedBackpropagation, Gradcam, ActivationMaximization) and, for occlusion, a plain
  per-patch loop;
* one style-transfer step and one feed-forward stylization (224 px);
* the redraw of every lesson's widget when its inputs are cached;
* t-SNE of 2,000 points (lesson 2);
* with ``--notebooks``: peak memory of every notebook run in quick mode, and of each lesson's
  ImageNet part in full mode with VGG16 and with ResNet50 (stand-in weights and photos,
  ``course_helpers.tools.stand_ins``), with each of its cells' times (goal: under 60 s).

Each time is the median of ``--repeats`` runs after a warm-up; a method and its peer are run
alternately (ours, peer, ours, peer ...) so that a noisy machine slows both alike.  Results go
to ``benchmarks/RESULTS.md``.

    python benchmarks/run.py                      # timings (about 10 minutes on 2 cores)
    python benchmarks/run.py --notebooks          # + memory of every notebook (about 20 more)
    python benchmarks/run.py --quick --models course-cnn --repeats 1 --out /tmp/r.md
    python benchmarks/run.py --rows saliency,smoothgrad,style   # re-measure these, keep the rest
    python benchmarks/run.py --notebooks --parts-only --skip style,tsne,widgets,methods,featvis
                                                  # only the ImageNet parts (about 25 minutes)
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import course_helpers as ch  # noqa: E402  (before TensorFlow: it selects tf-keras)
from course_helpers import _checks  # noqa: E402
from course_helpers.tools import stand_ins  # noqa: E402  (the stand-ins and the part runner)
import tensorflow as tf  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
#: The memory rows of the last ``--notebooks`` run (reused by runs without ``--notebooks``).
MEMORY_JSON = Path(__file__).resolve().parent / "memory.json"
#: The timing rows of the last full run (``--report-only`` rebuilds RESULTS.md from both).
TIMINGS_JSON = Path(__file__).resolve().parent / "timings.json"
SMOOTH_SAMPLES = 20
ASCENT_STEPS = 8        # steps per timed call; the table shows the time per step
F_CALLS = 3             # back-to-back forward passes per round for each row's F (their mean)
OCCLUSION_BATCH = 64    # occlusion_map's default batch size = the "full batch" of Fb
MEMORY_LIMIT_MB = 2048
#: The package's lines are compared with this commit's (the start of issue 16's work).
LINES_BEFORE_COMMIT = "e4c5acb"
#: course-cnn's method rows take milliseconds: they get this many times more rounds.
SMALL_MODEL_ROUNDS = 3


# --------------------------------------------------------------------------- timing machinery
def _now():
    return time.perf_counter()


def time_calls(fns, repeats: int = 3, warmup: int = 1, warm=None) -> list:
    """Median seconds of each function in ``fns``, run alternately ``repeats`` times after
    ``warmup`` rounds: machine noise then hits all of them alike.

    Each round starts one function later (a, b, c; b, c, a; c, a, b; ...), so no function always
    runs right after the same neighbour (a peer's clean-up, a warm cache), and Python's garbage
    collector is off while the rounds run, as in ``timeit``.  ``warm`` (optional) replaces
    ``fns`` in the warm-up rounds: cheaper calls that build and trace the same compiled
    functions (e.g. fewer samples or patches).
    """
    for _ in range(int(warmup)):
        for fn in (warm or fns):
            fn()
    times = [[] for _ in fns]
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(max(1, int(repeats))):
            for k in [(r + j) % len(fns) for j in range(len(fns))]:
                t0 = _now()
                fns[k]()
                times[k].append(_now() - t0)
    finally:
        if collecting:
            gc.enable()
    return [float(statistics.median(t)) for t in times]


def time_call(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    return time_calls([fn], repeats, warmup)[0]


@dataclass
class Row:
    """One line of the timing table.

    ``seconds`` is our time, ``unit`` the forward-pass time F of the same model and input
    (``seconds / unit`` = forward-pass equivalents), ``peer_seconds`` the peer's time on the
    same model and input.  ``checks`` are the targets: ("F", x) ours <= x F; ("peer", x) peer /
    ours >= x (x = 1: ours faster than the peer); ("bound", x) ours <= x * ``bound``; ("abs", x)
    ours <= x seconds.  ``measured`` is the date of the run that timed the row.
    """

    group: str
    name: str
    seconds: float
    unit: float | None = None
    peer: str = ""
    peer_seconds: float | None = None
    bound: float | None = None
    bound_name: str = ""
    checks: list = field(default_factory=list)
    note: str = ""
    measured: str = ""

    @property
    def f_ratio(self):
        return self.seconds / self.unit if self.unit else None

    @property
    def speedup(self):
        return self.peer_seconds / self.seconds if self.peer_seconds else None

    def results(self) -> list:
        """[(target text, met?)] for each check."""
        out = []
        for kind, x in self.checks:
            if kind == "F":
                out.append((f"≤ {x:g} F", self.f_ratio is not None and self.f_ratio <= x))
            elif kind == "peer":
                if x == 1:
                    out.append(("faster than peer", self.speedup is not None and self.speedup > 1))
                else:
                    out.append((f"≥ {x:g}x faster than peer",
                                self.speedup is not None and self.speedup >= x))
            elif kind == "bound":
                ratio = self.seconds / self.bound if self.bound else float("nan")
                out.append((f"≤ {x:g} × {self.bound_name} ({ratio:.2f})", ratio <= x))
            elif kind == "abs":
                out.append((f"< {_fmt_time(x)}", self.seconds < x))
            else:
                raise ValueError(f"Unknown check {kind!r}.")
        return out


def _fmt_time(s) -> str:
    if s is None:
        return "—"
    if s < 1:
        return f"{1000 * s:.1f} ms" if s < 0.1 else f"{1000 * s:.0f} ms"
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def _fmt_ratio(r, suffix="") -> str:
    if r is None:
        return "—"
    return f"{r:.2f}{suffix}" if r < 10 else f"{r:.0f}{suffix}"


TABLE_HEADER = ("| model · input | what | time | × F | peer | peer time | peer ÷ ours | target | met |\n"
                "|---|---|---:|---:|---|---:|---:|---|:---:|")


def _log_row(row):
    print(f"    {row.group} · {row.name}: {_fmt_time(row.seconds)}"
          + (f" = {row.f_ratio:.2f} F" if row.f_ratio else "")
          + (f", peer {_fmt_time(row.peer_seconds)}" if row.peer_seconds else ""), flush=True)


def format_table(rows) -> str:
    """The timing rows as one Markdown table (see :data:`TABLE_HEADER`); rows older than the
    newest run say which run they come from."""
    lines = [TABLE_HEADER]
    newest = max((r.measured for r in rows if r.measured), default="")
    for r in rows:
        res = r.results()
        target = "; ".join(t for t, _ in res) or "—"
        met = " ".join("yes" if ok else "**NO**" for _, ok in res) or "—"
        notes = [r.note] if r.note else []
        if r.measured and r.measured != newest:
            notes.append(f"run of {r.measured}")
        name = r.name + (f" ({'; '.join(notes)})" if notes else "")
        lines.append(f"| {r.group} | {name} | {_fmt_time(r.seconds)} | {_fmt_ratio(r.f_ratio)} | "
                     f"{r.peer or '—'} | {_fmt_time(r.peer_seconds)} | "
                     f"{_fmt_ratio(r.speedup, 'x')} | {target} | {met} |")
    return "\n".join(lines)


def missed(rows) -> list:
    """(row, target text) of every missed target."""
    return [(r, t) for r in rows for t, ok in r.results() if not ok]


# --------------------------------------------------------------------------- the unit F
_FORWARD: dict = {}


def forward_fn(model):
    """A compiled forward pass of ``model`` (any batch size), made once per model."""
    fn = _FORWARD.get(id(model))
    if fn is None:
        h, w = _checks.input_size(model)
        fn = tf.function(lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec((None, h, w, 3), tf.float32)])
        _FORWARD[id(model)] = (model, fn)
        return fn
    return fn[1]


def forward_times(model, image, batch_size: int = OCCLUSION_BATCH, repeats: int = 3) -> dict:
    """F (one image, compiled) and Fb (per image in a compiled batch of ``batch_size``)."""
    fn = forward_fn(model)
    one = tf.constant(image[None])
    batch = tf.constant(np.repeat(image[None], batch_size, axis=0))
    f1 = time_call(lambda: fn(one).numpy(), repeats=max(5, 3 * repeats), warmup=2)
    fb = time_call(lambda: fn(batch).numpy(), repeats=max(2, repeats), warmup=1)
    return {"F": f1, "batch": fb, "Fb": fb / batch_size, "batch_size": batch_size}


# --------------------------------------------------------------------------- peers
def per_patch_occlusion(model, image, class_index, patch, stride, fill=0.5) -> np.ndarray:
    """The plain loop a user writes first: one occluded copy, one model call, per position."""
    ys = ch.occlusion.occlusion_positions(image.shape[0], patch, stride)
    xs = ch.occlusion.occlusion_positions(image.shape[1], patch, stride)
    out = np.empty((len(ys), len(xs)), np.float32)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            copy = image.copy()
            copy[y:y + patch, x:x + patch] = fill
            out[i, j] = float(model(copy[None], training=False)[0, class_index])
    return out


_PEER_GRADCAM: dict = {}


def kerasvis_gradcam(model, image, class_index, layer):
    """tf-keras-vis Grad-CAM as its README shows it: ``Gradcam(model, ReplaceToLinear())``."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    vis = _PEER_GRADCAM.get(id(model))
    if vis is None:
        vis = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
        _PEER_GRADCAM[id(model)] = vis
    return vis(CategoricalScore([class_index]), image[None], penultimate_layer=layer,
               seek_penultimate_conv_layer=False)


# --------------------------------------------------------------------------- one model
class _LoggedList(list):
    """A list that prints each row appended to it (progress of a long run)."""

    def append(self, row):
        _log_row(row)
        super().append(row)

    def __iadd__(self, rows):
        for r in rows:
            self.append(r)
        return self


METHOD_ROWS = ("saliency", "smoothgrad", "integrated_gradients", "guided_backprop", "gradcam",
               "occlusion", "ascent")
IG_STEPS = 64


def bench_model(name: str, repeats: int = 3, occlusion=(32, 16), image=None, class_index=None,
                peers: bool = True, only=METHOD_ROWS, log: bool = False) -> list:
    """The method rows for one model: ``name`` is 'course-cnn' or 'vgg16' (architecture).

    The two forward-pass rows come first, then the rows named in ``only`` (see
    :data:`METHOD_ROWS`); ``peers=False`` skips the peers' timings.
    """
    unknown = set(only) - set(METHOD_ROWS)
    if unknown:
        raise ValueError(f"Unknown rows {sorted(unknown)}; choose from {METHOD_ROWS}.")
    if name == "course-cnn":
        model = ch.models.load_model("course-cnn")
        group = "course-cnn · 64 px"
        if image is None:
            image = ch.data.make_shapes(1, seed=5)[0][0]
    else:
        model = ch.models.load_model(name, weights=None)
        group = f"{name.upper()} · 224 px"
        if image is None:
            image = ch.data.sample_images(224)["cat"]
    image = _checks.image_for(model, image)
    if class_index is None:
        class_index = int(np.argmax(forward_fn(model)(tf.constant(image[None])).numpy()[0]))
    c = class_index
    fb_size = ch._checks.batch_limit(image.shape, OCCLUSION_BATCH, ch.occlusion.BATCH_PIXELS)
    ft = forward_times(model, image, fb_size, repeats=repeats)
    F = ft["F"]
    rows = _LoggedList() if log else []
    rows += [Row(group, "F: forward pass, 1 image (compiled)", F, F),
            Row(group, f"forward pass, batch of {ft['batch_size']}, per image (Fb)", ft["Fb"], F)]

    fwd = forward_fn(model)
    one_image = tf.constant(image[None])
    full = tf.constant(np.repeat(image[None], ft["batch_size"], axis=0))
    local = {}

    def pair(ours, peer, warm=None, batch=False, unit=None):
        """(ours, peer) medians; F (and Fb with ``batch``, and ``unit()``, e.g. the gradient
        call G, into ``local["unit"]``) is timed in the same rounds, so each row's ratio to F
        or G compares runs made under the same machine load.  F is the mean of
        :data:`F_CALLS` back-to-back passes in each round: one pass alone varied by 1.6x."""
        def f_calls():
            for _ in range(F_CALLS):
                fwd(one_image).numpy()

        units = [f_calls] + ([lambda: fwd(full).numpy()] if batch else []) + \
            ([unit] if unit else [])
        with_peer = peers and peer is not None      # (no peer: a method tf-keras-vis lacks)
        fns = [ours] + ([peer] if with_peer else []) + units
        if warm is not None:
            warm = warm[:1] + (warm[1:] if with_peer else []) + units
        t = time_calls(fns, repeats, warm=warm)
        local["F"] = t[len(fns) - len(units)] / F_CALLS
        if batch:
            local["Fb"] = t[len(fns) - len(units) + 1] / ft["batch_size"]
        if unit:
            local["unit"] = t[-1]
        return t[0], (t[1] if with_peer else None)

    # saliency, SmoothGrad against G, the compiled gradient call they are made of (TensorFlow's
    # own gradient, ch.saliency.gradient_function), and against tf-keras-vis Saliency
    grad_fn = ch.saliency.gradient_function(model)
    if "saliency" in only:
        one, cls = image[None], np.array([c], np.int32)   # NumPy in, NumPy out, as a call makes
        s, p = pair(lambda: ch.saliency.saliency_map(model, image, c),
                    lambda: ch.kerasvis.saliency(model, image, c),
                    unit=lambda: grad_fn(tf.constant(one), tf.constant(cls))[0].numpy())
        G = local["unit"]
        rows.append(Row(group, "G: gradient call, 1 image (compiled forward + backward)", G,
                        local["F"], note="ch.saliency.gradient_function"))
        rows.append(Row(group, "saliency", s, local["F"], "tf-keras-vis Saliency", p,
                        bound=G, bound_name="G", checks=[("bound", 1.15), ("peer", 1.0)]))
    if "smoothgrad" in only:
        m = min(SMOOTH_SAMPLES, ch._checks.batch_limit(image.shape, 32,
                                                       ch.saliency.GRADIENT_BATCH_PIXELS))
        noisy = np.clip(image[None] + np.random.default_rng(0).normal(
            0, 0.15, (m,) + image.shape), 0, 1).astype(np.float32)
        classes = np.array([c] * m, np.int32)
        s, p = pair(lambda: ch.saliency.saliency_map(model, image, c, smooth_samples=SMOOTH_SAMPLES),
                    lambda: ch.kerasvis.saliency(model, image, c,
                                                 smooth_samples=SMOOTH_SAMPLES),
                    warm=[lambda: ch.saliency.saliency_map(model, image, c, smooth_samples=2),
                          lambda: ch.kerasvis.saliency(model, image, c, smooth_samples=2)],
                    unit=lambda: grad_fn(tf.constant(noisy), tf.constant(classes))[0].numpy())
        gb = local["unit"] / m
        rows.append(Row(group, f"gradient call, batch of {m}, per image (Gb)", gb, local["F"],
                        note="SmoothGrad's batch"))
        rows.append(Row(group, f"SmoothGrad, {SMOOTH_SAMPLES} samples", s, local["F"],
                        f"tf-keras-vis Saliency(smooth_samples={SMOOTH_SAMPLES})", p,
                        bound=SMOOTH_SAMPLES * gb, bound_name=f"{SMOOTH_SAMPLES}·Gb",
                        checks=[("bound", 1.1), ("peer", 1.5)]))
    # integrated gradients: steps + 1 gradients in even batches (ch.attribution); its bound is
    # IG_STEPS x the per-image gradient call in the batch it uses.  tf-keras-vis has no IG.
    if "integrated_gradients" in only:
        n = IG_STEPS + 1
        size = ch._checks.batch_limit(image.shape, 32, ch.saliency.GRADIENT_BATCH_PIXELS)
        calls = -(-n // size)
        size = -(-n // calls)                   # as integrated_gradients splits the path
        points = np.repeat(image[None], size, axis=0) * np.linspace(0, 1, size, dtype=np.float32)[
            :, None, None, None]
        classes = np.array([c] * size, np.int32)

        def batch_calls():   # as many back-to-back batch calls as the method makes: a unit
            for _ in range(calls):            # as long as the method, so load hits both alike
                grad_fn(tf.constant(points), tf.constant(classes))[0].numpy()

        s, _ = pair(lambda: ch.attribution.integrated_gradients(model, image, c, steps=IG_STEPS),
                    None, warm=[lambda: ch.attribution.integrated_gradients(model, image, c, steps=2)],
                    unit=batch_calls)
        gb = local["unit"] / (calls * size)
        rows.append(Row(group, f"gradient call, batch of {size}, per image (IG's batch)", gb,
                        local["F"], note=f"integrated gradients' batch, {calls} calls in a row"))
        rows.append(Row(group, f"integrated gradients, {IG_STEPS} steps", s, local["F"],
                        "(tf-keras-vis has none)", bound=IG_STEPS * gb,
                        bound_name=f"{IG_STEPS}·Gb", checks=[("bound", 1.1)],
                        note=f"{n} points, trapezoid rule"))
    # guided backprop: the written-out forward pass with guided ReLUs, against G and
    # tf-keras-vis's Saliency + GuidedBackpropagation (its clone made once, outside the timing)
    if "guided_backprop" in only:
        one, cls = image[None], np.array([c], np.int32)
        vis = ch.kerasvis.layers._guided_visualizer(model) if peers else None
        s, p = pair(lambda: ch.attribution.guided_backprop(model, image, c),
                    lambda: ch.kerasvis.guided_saliency(model, image, c, visualizer=vis),
                    unit=lambda: grad_fn(tf.constant(one), tf.constant(cls))[0].numpy())
        rows.append(Row(group, "guided backprop", s, local["F"],
                        "tf-keras-vis Saliency + GuidedBackpropagation", p, bound=local["unit"],
                        bound_name="G", checks=[("bound", 1.2)] + ([("peer", 1.0)] if peers else [])))
        del vis
    # Grad-CAM: the course calls tf-keras-vis through a shared logits view
    if "gradcam" in only:
        layer = ch.kerasvis.cam_layer(model)
        s, p = pair(lambda: ch.kerasvis.gradcam(model, image, c),
                    lambda: kerasvis_gradcam(model, image, c, layer))
        rows.append(Row(group, "Grad-CAM (ch.kerasvis.gradcam)", s, local["F"],
                        "tf-keras-vis Gradcam + ReplaceToLinear", p,
                        note="the course calls tf-keras-vis: no target"))
    # occlusion
    if "occlusion" in only:
        patch, stride = occlusion
        coarse = max(1, image.shape[0] - patch)   # warm-up: 4 copies, same compiled function
        n = len(ch.occlusion.occlusion_positions(image.shape[0], patch, stride)) * \
            len(ch.occlusion.occlusion_positions(image.shape[1], patch, stride))
        s, p = pair(lambda: ch.occlusion.occlusion_map(model, image, c, patch, stride),
                    lambda: per_patch_occlusion(model, image, c, patch, stride),
                    warm=[lambda: ch.occlusion.occlusion_map(model, image, c, patch, coarse),
                          lambda: per_patch_occlusion(model, image, c, patch, coarse)],
                    batch=True)
        rows.append(Row(group, f"occlusion, patch {patch} stride {stride} ({n} copies)", s,
                        local["F"], "plain per-patch loop", p, bound=n * local["Fb"],
                        bound_name=f"{n}·Fb",
                        checks=[("peer", 1.5), ("bound", 1.3)]))
    # gradient ascent: time per step of a whole call (its set-up spread over the steps)
    if "ascent" in only:
        k = ASCENT_STEPS
        s, p = pair(lambda: ch.ascent.visualize_class(model, c, steps=k, progress=False),
                    lambda: ch.kerasvis.activation_maximization(model, class_index=c, steps=k,
                                                                progress=False),
                    warm=[lambda: ch.ascent.visualize_class(model, c, steps=1, progress=False),
                          lambda: ch.kerasvis.activation_maximization(
                              model, class_index=c, steps=1, progress=False)])
        rows.append(Row(group, "gradient ascent, 1 step", s / k, local["F"],
                        "tf-keras-vis ActivationMaximization, 1 step",
                        None if p is None else p / k, checks=[("peer", 1.0)],
                        note=f"a {k}-step call / {k}"))
    return list(rows)


# --------------------------------------------------------------------------- style transfer
def bench_style(repeats: int = 3, size: int = 224, vgg: bool = True) -> list:
    """One optimization step (offline random-filter extractor and VGG19 architecture) and one
    feed-forward stylization, at ``size`` pixels.  A step is timed as the difference between
    runs of 2 and 2 + k steps (so set-up and tracing cancel out)."""
    content = ch.data.sample_images(size)["cat"]
    style = ch.style.style_images(size)["flower"] if hasattr(ch.style, "style_images") \
        else ch.data.textures(size)["brick"]
    rows = []
    extractors = [("random-filters extractor", ch.style.offline_extractor())]
    if vgg:
        extractors.append(("VGG19 extractor", ch.style.vgg19_extractor(weights=None)))
    k = 3

    def seconds(model, steps):
        return ch.style.style_transfer(content, style, steps=steps, init="content", model=model,
                                       progress=False)[1]["seconds"]

    step_time = None
    for label, model in extractors:
        group = f"style · {label} · {size} px"
        fn = tf.function(lambda x, m=model: m(x, training=False))
        x = tf.constant(content[None])
        F = time_call(lambda: fn(x), repeats=max(3, repeats), warmup=1)
        seconds(model, 1)  # warm-up: builds the feature model
        short, long_ = [], []
        for _ in range(max(1, repeats)):
            short.append(seconds(model, 2))
            long_.append(seconds(model, 2 + k))
        step = max(statistics.median(long_) - statistics.median(short), 1e-9) / k
        rows.append(Row(group, "F: extractor forward pass, 1 image", F, F))
        rows.append(Row(group, "style-transfer step (optimization)", step, F,
                        note="forward + backward + Adam"))
        if step_time is None:
            step_time = step
    net = ch.style.load_stylizer()
    t = time_call(lambda: ch.style.stylize(net, content), repeats=max(3, repeats), warmup=1)
    group = f"style · one-pass network · {size} px"
    rows.append(Row(group, "feed-forward stylization, 1 image", t, None,
                    "1 optimization step (random filters)", step_time,
                    note="peer ÷ ours = steps it replaces, per step"))
    return rows


# --------------------------------------------------------------------------- t-SNE
def bench_tsne(n: int = 2000) -> list:
    """Lesson 2: course-cnn features of ``n`` shapes and their t-SNE (target < 30 s).  Once."""
    model = ch.models.load_model("course-cnn")
    images, _, _ = ch.data.make_shapes(n, seed=7)
    t0 = _now()
    features = ch.embedding.extract_features(model, images)
    t_feat = _now() - t0
    t0 = _now()
    ch.embedding.embed_2d(features, "tsne", seed=0)
    t_tsne = _now() - t0
    group = "course-cnn · 64 px"
    return [Row(group, f"features of {n} images (embedding layer)", t_feat, None, note="1 run"),
            Row(group, f"t-SNE of {n} points (scikit-learn)", t_tsne, None,
                checks=[("abs", 30.0)], note="1 run")]


# --------------------------------------------------------------------------- widgets
def _control(box, name):
    for w in box.kwargs_widgets:
        if getattr(w, "_kwarg", None) == name:
            return w
    raise KeyError(f"No control {name!r}; controls: {[w._kwarg for w in box.kwargs_widgets]}.")


def widget_redraw(box, control: str, values, repeats: int = 3) -> dict:
    """Median seconds of one redraw of ``box`` when ``control`` switches between ``values`` that
    were all visited once before, so every network result comes from the cache.

    A redraw is the box's whole update: the explorer's draw function (updating its figure in
    place, ``ch.widgets.LiveFigure``) and the PNG it renders and sends to the notebook, i.e.
    everything the learner waits for on the Python side.  Also returns the PNG's size.
    """
    w = _control(box, control)
    values = list(values)
    for v in values:           # first visit: computes and caches
        w.value = v
    times = []
    for _ in range(max(1, repeats)):
        for v in values[1:] + values[:1]:
            t0 = _now()
            w.value = v
            times.append(_now() - t0)
    import matplotlib.pyplot as plt

    plt.close("all")
    return {"redraw": float(statistics.median(times)), "png_bytes": len(box.state["png"])}


def widget_specs(model):
    """(lesson, explorer, build(), control, two values) for every lesson's widget."""
    shapes, labels, _ = ch.data.make_shapes(60, seed=3)
    photos64 = ch.data.sample_images(64)
    examples = {f"shape {i}": shapes[i] for i in range(4)}
    small = {k: photos64[k] for k in ("cat", "coffee")}
    specs = [
        ("01", "ch.filters.kernel_explorer", lambda: ch.filters.kernel_explorer(
            model, ch.data.sample_images(128)), "kernel", (0, 1)),
        ("02", "ch.embedding.embedding_explorer", lambda: ch.embedding.embedding_explorer(
            model, shapes, labels), "view", ("dots", "thumbnails")),
        ("03", "ch.activations.activation_explorer", lambda: ch.activations.activation_explorer(
            model, examples), "channel", (0, 1)),
        ("03", "ch.patches.top_patches_explorer", lambda: ch.patches.top_patches_explorer(
            model, shapes), "channel", (0, 1)),
        ("04", "ch.occlusion.occlusion_explorer", lambda: ch.occlusion.occlusion_explorer(
            model, examples), "stride", (4, 8)),
        ("04", "ch.saliency.saliency_explorer", lambda: ch.saliency.saliency_explorer(
            model, examples), "smooth_samples", (0, 10)),
        ("05", "ch.ascent.ascent_explorer", lambda: ch.ascent.ascent_explorer(model, steps=16),
         "unit", (0, 1)),
        ("06", "ch.style.style_explorer", lambda: ch.style.style_explorer(
            small, {"brick": ch.data.textures(64)["brick"]}, size=64), "style_weight", (1.0, 1.5)),
        ("07", "ch.kerasvis.kerasvis_explorer", lambda: ch.kerasvis.kerasvis_explorer(
            model, examples), "method", ("Saliency", "Grad-CAM")),
    ]
    return specs


def bench_widgets(repeats: int = 3, only=None) -> list:
    """The redraw time of each lesson's widget from cache (target < 100 ms)."""
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 80, "image.interpolation": "nearest",
                                "axes.titlesize": 9})   # as ch.setup_notebook sets them
    model = ch.models.load_model("course-cnn")
    rows = []
    for lesson, name, build, control, values in widget_specs(model):
        if only and not any(o in name for o in only):
            continue
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            box = build()
            t = widget_redraw(box, control, values, repeats)
        rows.append(Row(f"widget · lesson {lesson}", f"{name}: change `{control}`",
                        t["redraw"], None, checks=[("abs", 0.1)],
                        note=f"a {t['png_bytes'] // 1024} KB PNG"))
    return rows


# --------------------------------------------------------------------------- memory
MEMORY_HEADER = ("| notebook | model | peak memory | target | met | how |\n"
                 "|---|---|---:|---|:---:|---|")


def format_memory(rows) -> str:
    """Memory rows (dicts: notebook, model, mb, how) as a Markdown table."""
    lines = [MEMORY_HEADER]
    for r in rows:
        ok = r["mb"] is not None and r["mb"] < MEMORY_LIMIT_MB
        mb = "failed" if r["mb"] is None else f"{r['mb']:.0f} MB"
        lines.append(f"| {r['notebook']} | {r['model']} | {mb} | < {MEMORY_LIMIT_MB / 1024:g} GB | "
                     f"{'yes' if ok else '**NO**'} | {r['how']} |")
    return "\n".join(lines)


def _peak_rss() -> int:
    """This process's peak resident memory in bytes.  Linux's ``VmHWM`` belongs to the process
    image: ``ru_maxrss`` of a child started with fork + exec starts at the *parent's* size (a
    benchmark process that has run VGG16 is over 3 GB), so it is used only where there is no
    /proc."""
    import resource

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def notebook_peak_mb(path, timeout: int = 900) -> dict:
    """Run one notebook in quick mode in a fresh kernel; peak RSS of the kernel's process tree
    (psutil, polled every 0.1 s) and the kernel's own ru_maxrss, whichever is larger."""
    code = f"""
import os, resource, sys, threading, time, json
os.environ["COURSE_QUICK"] = "1"; os.environ["MPLBACKEND"] = "Agg"
import nbformat, psutil
from nbclient import NotebookClient
{inspect.getsource(stand_ins._tree_rss)}
nb = nbformat.read({str(path)!r}, as_version=4)
client = NotebookClient(nb, timeout={timeout}, kernel_name="python3",
                        resources={{"metadata": {{"path": {str(Path(path).parent)!r}}}}})
peak = [0]; stop = threading.Event()
def poll():
    while not stop.is_set():
        km = client.km
        pid = getattr(getattr(km, "provisioner", None), "pid", None) if km else None
        if pid:
            try:
                peak[0] = max(peak[0], _tree_rss(pid))
            except psutil.Error:
                pass
        time.sleep(0.1)
t = threading.Thread(target=poll, daemon=True); t.start()
t0 = time.time(); error = ""
try:
    client.execute()
except Exception as e:
    error = type(e).__name__ + ": " + str(e)[:300]
stop.set(); t.join()
kid = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({{"polled": peak[0], "maxrss": kid, "seconds": time.time() - t0, "error": error}}))
"""
    env = dict(os.environ, COURSE_QUICK="1", MPLBACKEND="Agg")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(Path(path).parent), timeout=timeout + 120)
    try:
        res = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"mb": None, "seconds": None, "error": out.stderr[-500:]}
    mb = max(res["polled"], res["maxrss"]) / 2**20
    return {"mb": mb if not res["error"] else mb, "seconds": res["seconds"], "error": res["error"]}


#: Lesson 06's VGG19 cell, as the notebook runs it (style transfer is not an "ImageNet part":
#: offline it runs on random filters, so the notebook has no tagged cells; fewer steps, since
#: memory does not grow with steps).  The weights come through the ImageNet loading path, from
#: a Keras cache holding files of the ImageNet files' layout (random values).
VGG_CELLS = {
    "06_style_transfer": ("vgg19", """
extractor = ch.style.vgg19_extractor()
photos = ch.data.sample_images(128); styles = ch.style.style_images(128)
ch.style.style_transfer(photos["cat"], styles["flower"], steps=5, init="noise", model=extractor,
                        progress=False)
net = ch.style.load_stylizer()
ch.style.stylize(net, np.stack([photos[n] for n in ("astronaut", "coffee", "rocket", "china")]))
"""),
}

#: The models each lesson's ImageNet part is run with (its one switch, IMAGENET_MODEL).
PART_MODELS = ("vgg16", "resnet50")
#: Photos per class in the stand-in photo set: more than any part asks for in full mode.
PART_PHOTOS_PER_CLASS = 30
#: The goal for one ImageNet cell in full mode (a lecturer waits for it).
CELL_SECONDS = 60


def vgg_peak_mb(notebook: str, timeout: int = 900, keras_home=None) -> dict:
    """Peak RSS of a fresh process that runs ``VGG_CELLS[notebook]`` (its own ``VmHWM``), its
    Keras cache at ``keras_home`` (``stand_ins.write_keras_cache``)."""
    model, cell = VGG_CELLS[notebook]
    code = ("import os, resource, json, time\nos.environ['MPLBACKEND'] = 'Agg'\n" +
            inspect.getsource(_peak_rss) +
            "import numpy as np\nimport course_helpers as ch\nt0 = time.time()\n" + cell +
            "\nprint(json.dumps({'maxrss': _peak_rss(),"
            " 'seconds': time.time() - t0}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, MPLBACKEND="Agg",
                                  **({"KERAS_HOME": str(keras_home)} if keras_home else {})),
                         cwd=str(ROOT), timeout=timeout)
    try:
        res = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"mb": None, "model": model, "error": out.stderr[-800:]}
    return {"mb": res["maxrss"] / 2**20, "model": model, "seconds": res["seconds"], "error": ""}


def _telling_line(source: str) -> str:
    """A cell's first line that says what it does: past ``if ready:`` and comments."""
    lines = [ln.strip() for ln in source.strip().splitlines()]
    telling = [ln for ln in lines if ln and ln != "if ready:" and not ln.startswith("#")]
    return (telling or lines or [""])[0]


def bench_parts(paths, keras_home, cache, models=PART_MODELS, log=print) -> tuple:
    """Each lesson's ImageNet part in full mode, once per model, from the stand-in weights and
    photo set (``course_helpers.tools.stand_ins``): memory rows and per-cell timing rows."""

    memory, cells = [], []
    for p in paths:
        if not stand_ins.part_cells(p)[1]:
            continue
        for model in models:
            res = stand_ins.run_part(p, model=model, keras_home=keras_home, cache=cache,
                                     quick=False)
            errors = [c["error"] for c in res["cells"] if c["error"]]
            how = ("the lesson's setup cell and its ImageNet part in full mode in a fresh kernel, "
                   "stand-in weights and photos; kernel process tree")
            if errors:
                how += f"; ERROR {errors[0][:160]}"
            memory.append({"notebook": p.stem, "model": f"{model} (ImageNet part)",
                           "mb": res["peak_mb"], "how": how})
            for k, c in enumerate(res["cells"], 1):
                cells.append({"notebook": p.stem, "model": model, "cell": k,
                              "first_line": _telling_line(c["source"])[:70],
                              "seconds": c["seconds"], "mb": c.get("peak_mb"),
                              "error": c["error"][:200]})
            log(f"  {p.stem} ImageNet part with {model}: {round(res['peak_mb'])} MB, cells "
                f"{[c['seconds'] and round(c['seconds'], 1) for c in res['cells']]} "
                f"{errors[:1]}")
    return memory, cells


def format_cells(rows) -> str:
    """The ImageNet cells' full-mode times as a Markdown table."""
    lines = ["| notebook | model | cell | first line | seconds | peak memory while it ran | "
             "target | met |",
             "|---|---|---:|---|---:|---:|---|:---:|"]
    for r in rows:
        ok = r["seconds"] is not None and not r["error"] and r["seconds"] < CELL_SECONDS
        sec = "failed" if r["seconds"] is None or r["error"] else f"{r['seconds']:.1f}"
        mb = f"{r['mb']:.0f} MB" if r.get("mb") else "—"
        lines.append(f"| {r['notebook']} | {r['model']} | {r['cell']} | `{r['first_line']}` | "
                     f"{sec} | {mb} | < {CELL_SECONDS} s | {'yes' if ok else '**NO**'} |")
    return "\n".join(lines)


def bench_memory(notebooks=None, vgg: bool = True, log=print, parts_only: bool = False) -> tuple:
    """Peak memory rows: each notebook in quick mode (course-cnn), each lesson's ImageNet part
    in full mode with each model, and lesson 06's VGG19 cell; and the ImageNet cells' times.
    ``parts_only``: only the ImageNet parts (their memory rows and cell times)."""

    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if notebooks:
        paths = [p for p in paths if any(n in p.name for n in notebooks)]
    rows, cell_rows = [], []
    scratch = tempfile.TemporaryDirectory(prefix="bench-stand-ins-")
    home = cache = None
    if vgg:
        home = stand_ins.write_keras_cache(Path(scratch.name) / "keras",
                                           ("vgg16", "vgg19", "resnet50"))
        cache = Path(scratch.name) / "cache"
        stand_ins.write_photo_set(cache, per_class=PART_PHOTOS_PER_CLASS)
    for p in paths:
        if parts_only:
            mem, cells = bench_parts([p], home, cache, log=log)
            rows += mem
            cell_rows += cells
            continue
        res = notebook_peak_mb(p)
        how = "notebook run by nbclient, COURSE_QUICK=1; kernel process tree"
        if res.get("error"):
            how += f"; ERROR {res['error'][:120]}"
        rows.append({"notebook": p.stem, "model": "course-cnn", "mb": res["mb"], "how": how})
        log(f"  {p.stem}: {res['mb'] and round(res['mb'])} MB in "
            f"{res.get('seconds') and round(res['seconds'])} s {res.get('error', '')[:200]}")
        if not vgg:
            continue
        mem, cells = bench_parts([p], home, cache, log=log)
        rows += mem
        cell_rows += cells
        if p.stem in VGG_CELLS:
            r = vgg_peak_mb(p.stem, keras_home=home)
            how = ("fresh process: the lesson's VGG cell, the weights loaded through the "
                   "ImageNet path (a Keras-format file of random values), peak RSS")
            if r.get("error"):
                how += f"; ERROR {r['error'][-160:]}"
            rows.append({"notebook": p.stem, "model": f"{r['model'].upper()} (ImageNet path)",
                         "mb": r["mb"], "how": how})
            log(f"  {p.stem} with {r['model']}: {r['mb'] and round(r['mb'])} MB "
                f"{r.get('error', '')[-300:]}")
    scratch.cleanup()
    return rows, cell_rows


# --------------------------------------------------------------------------- report
def machine() -> str:
    import tf_keras_vis

    try:
        load = os.getloadavg()
        load = f", load average {load[0]:.1f} at the end"
    except OSError:
        load = ""
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
            f"({cpu_model()}){load}; Python {platform.python_version()}, TensorFlow "
            f"{tf.__version__}, tf-keras-vis {tf_keras_vis.__version__}")


def cpu_model() -> str:
    """The CPU's name and whether it has AVX-512 (TensorFlow's convolutions run several times
    faster with it: VGG16's forward pass took 0.11 s on one machine here and 0.45 s on one with
    AVX2 only)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU unknown"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                 if ln.startswith("model name")), "CPU unknown")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines()
                  if ln.startswith("flags")), [])
    return f"{name}, {'AVX-512' if 'avx512f' in flags else 'AVX2, no AVX-512' if 'avx2' in flags else 'no AVX2'}"


def write_results(path, rows, memory_rows=None, repeats=3, seconds=None, extra="", date=None,
                  machine_text=None, cell_rows=None, memory_machine=None) -> str:
    """Write RESULTS.md: how it was measured, the timing table, the missed targets, memory."""
    miss = missed(rows)
    mem_miss = [r for r in (memory_rows or []) if r["mb"] is None or r["mb"] >= MEMORY_LIMIT_MB]
    parts = [
        "# Benchmarks",
        "",
        f"Made by `make bench` (`python benchmarks/run.py{extra}`) on "
        f"{date or time.strftime('%Y-%m-%d')}: {machine_text or machine()}. Every time is the median of {repeats} runs after a warm-up "
        f"({SMALL_MODEL_ROUNDS * repeats} for course-cnn's method rows, which take milliseconds); a method and "
        "its peer ran alternately in the same process, so machine noise hits both alike."
        + (f" The whole run took {seconds / 60:.0f} min." if seconds else ""),
        "",
        "How to read it:",
        "",
        "* **F** is one compiled forward pass of one image through the same model; **× F** is a "
        "time in forward-pass equivalents, which carries over to other machines better than "
        "seconds. **Fb** is the per-image time inside a compiled batch as large as occlusion uses "
        "(64 images of 64 px; 8 of 224 px, `ch.occlusion.BATCH_PIXELS`): batching amortizes the "
        "per-call overhead of small models (Fb < F), while large images gain nothing from it.",
        "* **peer ÷ ours** is how many times faster the course's function is than the peer a user "
        "would otherwise pick (tf-keras-vis on the same model and input, or a plain per-patch "
        "loop for occlusion). Above 1 = the course is faster.",
        "* **G** is one compiled forward-and-backward gradient call of one image "
        "(`ch.saliency.gradient_function`: a plain `tf.GradientTape` under `tf.function`, "
        "TensorFlow's own backward pass), from a NumPy image to NumPy gradients, as every "
        "call of a method makes it (fresh input tensors each call: reusing one tensor object "
        "measured 0.3-0.8 ms faster on course-cnn, which no real call gets); **Gb** is its "
        "per-image time in the batch SmoothGrad "
        "uses (all 20 noisy copies at once at 64 px, 4 at a time at 224 px). Saliency is one G "
        "plus the argument checks and the max over R, G, B (target ≤ 1.15 G); SmoothGrad is 20 "
        "Gb plus the noise (target ≤ 1.1 × 20·Gb). G and Gb are timed in the same rounds as the "
        "method they belong to. Recomputing every occluded copy in full cannot beat "
        "(number of copies) × Fb, the `n·Fb` bound; on VGG16 the course's occlusion goes below "
        "it by running the first conv blocks only on a crop around the patch "
        "(`ch.occlusion.occlusion_map`, same numbers). A gradient-ascent step is timed as a whole call of "
        f"{ASCENT_STEPS} steps divided by {ASCENT_STEPS}, for both, so set-up costs count. A "
        "style-transfer step is the difference between runs of 2 and 5 steps, divided by 3.",
        "* VGG16 and VGG19 in the speed rows are the architectures with random weights "
        "(`weights=None`): offline, the ImageNet weights cannot be had, and speed does not "
        "depend on the weights' values.",
        "* Widget rows: the time from a control change to the new picture, PNG included (the "
        "explorer's whole callback: it updates its one figure in place, `ch.widgets.LiveFigure`, "
        "and renders the PNG the notebook shows), when the values were visited before, so the "
        "network's results come from the cache (`ch.widgets.cached`). Not included: sending "
        "the PNG to the browser (local: about 1 ms per 100 KB).",
        "",
        "## Speed",
        "",
        format_table(rows),
        "",
    ]
    dates = sorted({r.measured for r in rows if r.measured})
    if len(dates) > 1:
        parts += [f"Rows marked *run of* a date were not measured again on {dates[-1]}: they "
                  f"come from the run of {', '.join(dates[:-1])} (`benchmarks/timings.json`).", ""]
    if miss:
        parts += ["Missed targets:", ""] + [f"* {r.group} · {r.name}: {t}" for r, t in miss] + [""]
    else:
        parts += ["Every speed target is met in this run.", ""]
    parts += [SMALL_MODEL_NOTE, "", package_section(), ""]
    if memory_rows:
        parts += [
            "## Peak memory",
            "",
            "*course-cnn rows*: the notebook run top to bottom by nbclient in quick mode "
            "(`COURSE_QUICK=1`) in a fresh kernel; the peak resident memory of the kernel's process "
            "tree (polled every 0.1 s) or the kernel's own `ru_maxrss`, whichever is larger. "
            "Offline, the notebooks skip their ImageNet parts (no ImageNet weights, no photo "
            "set), so these rows measure course-cnn. *ImageNet part rows*: the lesson's setup "
            "cell and its ImageNet part (the cells tagged `imagenet`) in full mode in a fresh "
            "kernel, with the section's switch set to each model, from stand-ins of what only "
            "the internet gives (`course_helpers.tools.stand_ins`): a Keras cache holding "
            "weights files of the ImageNet files' layout with random values, loaded through "
            "the ImageNet path (`ch.models.load_model`, which reads them slice by slice), and "
            f"a photo set of {PART_PHOTOS_PER_CLASS * 10} JPEGs in Imagenette's layout cut from "
            "the shipped photos; the kernel's process tree, polled. Memory and time depend on "
            "the sizes, not on the values. *VGG19 row*: a fresh Python process runs lesson "
            "06's style-transfer cells on VGG19 (`VmHWM`)."
            + (f" The last memory run (rows it re-measured; the others are kept from earlier "
               f"runs) was on: {memory_machine}." if memory_machine else ""),
            "",
            format_memory(memory_rows),
            "",
            "Every notebook stays under 2 GB." if not mem_miss else
            "Over the limit: " + ", ".join(f"{r['notebook']} ({r['model']})" for r in mem_miss),
            "",
        ]
    if cell_rows:
        slow = [r for r in cell_rows if r["seconds"] is None or r["error"]
                or r["seconds"] >= CELL_SECONDS]
        parts += [
            "## ImageNet cells in full mode",
            "",
            "Each cell of each lesson's ImageNet part, timed by the kernel in the runs of the "
            "memory table (full mode, 2 cores, stand-in weights and photos), with the goal a "
            f"lecturer can wait for: under {CELL_SECONDS} s.",
            "",
            format_cells(cell_rows),
            "",
            f"Every ImageNet cell takes under {CELL_SECONDS} s." if not slow else
            "Over the goal: " + ", ".join(f"{r['notebook']} cell {r['cell']} ({r['model']})"
                                          for r in slow),
            "",
        ]
    text = "\n".join(parts)
    Path(path).write_text(text)
    return text


SMALL_MODEL_NOTE = """On course-cnn (64 px) a gradient call takes a few milliseconds, so fixed costs show: the
argument checks, the image conversion and the max over R, G, B (about 0.2 ms together), and for
SmoothGrad the seeded noise. The noise is drawn in float32 (`image + sigma *
rng.standard_normal(...)`, the lesson's from-scratch cell draws the same) and the last two
(seed, shape) draws are kept (`ch.saliency.standard_noise`): drawing 245,760 values took about
2.5 ms of course-cnn's 15 ms, a sixth of the gradient calls. Measured on 2026-12-02, before: with
float64 draws every call, SmoothGrad took 1.21-1.35 x 20*Gb; after: 1.07. G is timed from NumPy
input each call, as every call of a method makes it: one tensor object reused across calls came
out 0.3-0.8 ms faster, which no real call gets."""


def package_section(before_commit: str = LINES_BEFORE_COMMIT) -> str:
    """The "Package" section: lines before and after, the largest module, the import graph
    (``course_helpers.tools.shape``, computed from the source, not typed)."""
    from course_helpers.tools import shape

    s = shape.summary(before_commit)
    lines = ["## Package", ""]
    if "lines_before" in s:
        lines.append(f"* Lines of `course_helpers`: {s['lines_before']:,} in {s['modules_before']} "
                     f"modules at `{before_commit}` (before issue 16), {s['lines']:,} in "
                     f"{s['modules']} modules now, of which {s['lines'] - s['lines_without_tools']:,} "
                     "are maintainer tooling (`course_helpers/tools/`).")
        lines.append(f"* Largest module: before `{s['largest_before'][0]}` "
                     f"({s['largest_before'][1]} lines), now `{s['largest'][0]}` "
                     f"({s['largest'][1]} lines; the limit tested is {shape.MAX_LINES}).")
    else:
        lines.append(f"* Lines of `course_helpers`: {s['lines']:,} in {s['modules']} modules "
                     f"(commit {before_commit} not available for the comparison).")
        lines.append(f"* Largest module: `{s['largest'][0]}` ({s['largest'][1]} lines).")
    lines.append("* Import graph (each module and the package's modules it imports, function-level "
                 "imports included): " + ("no cycles." if not s["cycle"] else
                                          "CYCLE " + " -> ".join(s["cycle"]) + "."))
    lines += ["", "| module | imports |", "|---|---|"]
    short = lambda n: n.replace("course_helpers.", "", 1) if n != "course_helpers" else "course_helpers"
    for name, deps in sorted(s["graph"].items()):
        lines.append(f"| {short(name)} | {', '.join(short(d) for d in sorted(deps)) or '—'} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line
#: Rows of earlier runs that no longer exist (the patched backward pass was removed).
OBSOLETE_ROWS = ("the compiled gradient call alone",)


def saved_rows(saved: dict) -> list:
    """The rows of a ``timings.json``, each dated (``measured``) by its run."""
    rows = []
    for r in saved["rows"]:
        r = {**r, "checks": [tuple(c) for c in r["checks"]]}
        r["measured"] = r.get("measured") or saved.get("date", "")
        rows.append(Row(**r))
    return rows


def _rank(name: str) -> int:
    order = ("F:", "forward pass", "G:", "gradient call", "saliency", "SmoothGrad",
             "integrated gradients", "guided backprop", "Grad-CAM", "occlusion", "gradient ascent")
    return next((k for k, prefix in enumerate(order) if name.startswith(prefix)), len(order))


def merge_rows(old: list, new: list) -> list:
    """``old`` with the rows of ``new`` in place of the same (group, row), obsolete rows
    dropped; within each group in the table's order."""
    fresh = {(r.group, r.name) for r in new}
    kept = [r for r in old if (r.group, r.name) not in fresh
            and not r.name.startswith(OBSOLETE_ROWS)]
    groups = list(dict.fromkeys([r.group for r in old] + [r.group for r in new]))
    out = []
    for g in groups:
        mine = [r for r in kept + new if r.group == g]
        method = any(r.name.startswith("F:") for r in mine) and not g.startswith("style")
        out += sorted(mine, key=lambda r: _rank(r.name)) if method else mine
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (median)")
    parser.add_argument("--models", default="course-cnn,vgg16")
    parser.add_argument("--notebooks", action="store_true",
                        help="also measure the peak memory of every notebook (slow)")
    parser.add_argument("--only-notebooks", nargs="*", default=None,
                        help="with --notebooks: only notebooks whose name contains one of these")
    parser.add_argument("--parts-only", action="store_true",
                        help="with --notebooks: only the lessons' ImageNet parts (memory rows and "
                             "cell times; the other rows are kept from memory.json)")
    parser.add_argument("--skip", default="",
                        help="comma list of: style,tsne,widgets,methods,featvis (render steps, attacks)")
    parser.add_argument("--quick", action="store_true", help="no VGG19 style row, no t-SNE")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite RESULTS.md from timings.json and memory.json, measure nothing")
    parser.add_argument("--rows", default=None,
                        help=f"comma list of rows to re-measure ({','.join(METHOD_ROWS)},style,"
                             "featvis); "
                             "every other row is kept from timings.json")
    args = parser.parse_args(argv)
    if args.report_only:
        saved = json.loads(TIMINGS_JSON.read_text())
        rows = saved_rows(saved)
        memory = json.loads(MEMORY_JSON.read_text()) if MEMORY_JSON.is_file() else {}
        write_results(args.out, rows, memory.get("rows"), saved["repeats"], saved["seconds"],
                      extra=saved["extra"], date=saved["date"], machine_text=saved["machine"],
                      cell_rows=memory.get("cells"), memory_machine=memory.get("machine"))
        print(f"wrote {args.out} from {TIMINGS_JSON.name} and {MEMORY_JSON.name}")
        return 0
    skip = set(filter(None, args.skip.split(",")))
    if args.quick:
        skip |= {"tsne"}
    only = METHOD_ROWS
    if args.rows:
        wanted = set(filter(None, args.rows.split(",")))
        only = tuple(r for r in METHOD_ROWS if r in wanted)
        skip |= ({"tsne", "widgets"} | ({"style", "featvis"} - wanted)
                 | (set() if only else {"methods"}))
        unknown = wanted - set(METHOD_ROWS) - {"style", "featvis"}
        if unknown:
            parser.error(f"--rows: unknown {sorted(unknown)}; choose from "
                         f"{METHOD_ROWS + ('style', 'featvis')}")
    t_start = _now()
    try:
        tf.config.threading.set_inter_op_parallelism_threads(2)
    except RuntimeError:
        pass
    rows = []

    def log(msg):
        print(msg, flush=True)

    if "methods" not in skip:
        for name in filter(None, args.models.split(",")):
            log(f"{name} ...")
            occl = (16, 4) if name == "course-cnn" else (32, 16)
            reps = SMALL_MODEL_ROUNDS * args.repeats if name == "course-cnn" else args.repeats
            new = bench_model(name, reps, occlusion=occl, only=only, log=True)
            rows += new
            log(format_table(new))
    if "style" not in skip:
        log("style ...")
        new = bench_style(args.repeats, vgg=not args.quick)
        rows += new
        log(format_table(new))
    if "tsne" not in skip:
        log("t-SNE ...")
        new = bench_tsne()
        rows += new
        log(format_table(new))
    if "widgets" not in skip:
        log("widgets ...")
        new = bench_widgets(args.repeats)
        rows += new
        log(format_table(new))
    if "featvis" not in skip:
        # lesson 05's rows live beside this file: render's parameterizations, the attack step
        import bench_adversarial
        import bench_ascent

        log("feature visualization and attacks ...")
        new = bench_ascent.rows(args.repeats) + bench_adversarial.rows(
            args.repeats, models=tuple(filter(None, args.models.split(","))))
        rows += new
        log(format_table(new))
    memory_rows = cell_rows = memory_machine = None
    if args.notebooks:
        memory_machine = machine()
        log("notebook memory ...")
        memory_rows, cell_rows = bench_memory(args.only_notebooks, log=log,
                                              parts_only=args.parts_only)
        if (args.only_notebooks or args.parts_only) and MEMORY_JSON.is_file():
            # merge: replace the rows of those notebooks (with --parts-only, their parts' rows)
            old = json.loads(MEMORY_JSON.read_text())
            done = {r["notebook"] for r in cell_rows} | {r["notebook"] for r in memory_rows}
            replaced = (lambda r: r["notebook"] in done and r["model"].endswith("(ImageNet part)")) \
                if args.parts_only else (lambda r: r["notebook"] in done)
            memory_rows = sorted([r for r in old["rows"] if not replaced(r)] + memory_rows,
                                 key=lambda r: r["notebook"])
            cell_rows = sorted([r for r in old.get("cells", []) if r["notebook"] not in done]
                               + cell_rows, key=lambda r: (r["notebook"], r["model"], r["cell"]))
        MEMORY_JSON.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"),
                                           "machine": memory_machine,
                                           "rows": memory_rows, "cells": cell_rows},
                                          indent=1) + "\n")
        if args.parts_only and not rows:      # nothing else measured: keep the timed rows
            return main(["--report-only", "--out", args.out])
    elif MEMORY_JSON.is_file() and Path(args.out) == RESULTS:
        saved = json.loads(MEMORY_JSON.read_text())
        memory_rows, cell_rows = saved["rows"], saved.get("cells")
        memory_machine = saved.get("machine")
        log(f"memory rows from {MEMORY_JSON.name} ({saved['date']}; rerun with --notebooks)")
    extra = (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    seconds = _now() - t_start
    today = time.strftime("%Y-%m-%d")
    for r in rows:
        r.measured = today
    if args.rows and TIMINGS_JSON.is_file():
        rows = merge_rows(saved_rows(json.loads(TIMINGS_JSON.read_text())), rows)
    if Path(args.out) == RESULTS and rows:
        TIMINGS_JSON.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d"), "machine": machine(), "repeats": args.repeats,
            "seconds": seconds, "extra": extra, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    text = write_results(args.out, rows, memory_rows, args.repeats, seconds, extra=extra,
                         cell_rows=cell_rows, memory_machine=memory_machine)
    log(f"wrote {args.out}")
    miss = missed(rows)
    for r, t in miss:
        log(f"MISSED: {r.group} · {r.name}: {t}")
    return 0 if text else 1


if __name__ == "__main__":
    raise SystemExit(main())
