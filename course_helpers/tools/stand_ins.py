"""Stand-ins for what only the internet gives, and a runner for the lessons' ImageNet parts.

Maintainer tooling (tests and benchmarks use it; no lesson does).  Here nothing can be
downloaded, so the ImageNet parts are run against

* :func:`write_keras_cache`: a Keras cache holding weights files of the ImageNet files' layout
  (the same layers, names and shapes) with random values, written by tf-keras itself;
* :func:`write_photo_set`: an unpacked photo set in the cache's layout (Imagenette's folders
  and WordNet ids), its photos cut from the photos that ship with scikit-image;

and :func:`run_part` runs one lesson's ImageNet part (the code cells tagged ``imagenet``,
after the lesson's setup cell) in a fresh kernel, with ``IMAGENET_MODEL`` set to the model
asked for, and returns each cell's time and error and the kernel's peak memory.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TAG = "imagenet"
SWITCH = re.compile(r'^IMAGENET_MODEL = "([a-z0-9]+)"', re.M)

#: tf-keras builders of each model's ImageNet layout.
_BUILDERS = {"vgg16": "VGG16", "vgg19": "VGG19", "resnet50": "ResNet50"}


def write_keras_cache(home, names=("vgg16", "resnet50")) -> Path:
    """``home/models`` with a weights file for each of ``names`` under the name Keras gives the
    real one, saved by ``tf_keras.applications.<Model>(weights=None)`` in a separate process
    (so this process does not hold VGG16 twice).  Files already there are kept.  Returns
    ``home`` (use it as ``KERAS_HOME``)."""
    from course_helpers import models

    home = Path(home)
    (home / "models").mkdir(parents=True, exist_ok=True)
    todo = [n for n in names if not (home / "models" / models._IMAGENET[n][0]).is_file()]
    if todo:
        code = ("import sys, course_helpers as ch, tf_keras as keras\n"
                "for name in sys.argv[2:]:\n"
                "    builder = getattr(keras.applications, %r[name])\n"
                "    builder(weights=None).save_weights(\n"
                "        sys.argv[1] + '/models/' + ch.models._IMAGENET[name][0])\n" % _BUILDERS)
        subprocess.run([sys.executable, "-c", code, str(home), *todo], check=True,
                       capture_output=True)
    return home


def write_photo_set(cache, per_class: int = 6, seed: int = 0) -> Path:
    """An unpacked photo set under ``cache`` (use it as ``COURSE_CACHE``): ``per_class`` JPEG
    photos for each of the ten classes, random crops (160 px on the shorter side, like
    Imagenette's) of the scikit-image photos, in the folders and with the manifest that
    ``ch.photos.fetch`` leaves.  Returns the set's folder."""
    from PIL import Image

    from course_helpers import data, photos

    old = os.environ.get(photos.CACHE_ENV)
    os.environ[photos.CACHE_ENV] = str(cache)
    try:
        final = photos.photo_dir()
    finally:
        if old is None:
            os.environ.pop(photos.CACHE_ENV)
        else:
            os.environ[photos.CACHE_ENV] = old
    if (final / photos._MANIFEST).is_file():
        return final
    rng = np.random.default_rng(seed)
    sources = list(data.sample_images(320).values())
    counts = {}
    for wnid, _, _ in photos.CLASSES:
        folder = final / "val" / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            src = sources[rng.integers(len(sources))]
            h, w = 160, int(rng.integers(160, 240))
            top, left = rng.integers(0, 320 - h + 1), rng.integers(0, 320 - w + 1)
            crop = src[top:top + h, left:left + w]
            Image.fromarray((crop * 255).astype(np.uint8)).save(folder / f"{wnid}_{i}.JPEG")
        counts[wnid] = per_class
    (final / photos._MANIFEST).write_text(json.dumps(
        {"url": "stand-in", "sha256": "stand-in", "photos_per_class": counts}, indent=1) + "\n")
    return final


def part_cells(notebook) -> tuple:
    """``(setup source, [sources of the cells tagged 'imagenet'])`` of a lesson notebook."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c.source for c in code if TAG in c.metadata.get("tags", [])]
    return (code[0].source if code else ""), tagged


def switched(sources, model: str) -> list:
    """The cells with the section's switch line set to ``model``; fails if there is none."""
    if not any(SWITCH.search(s) for s in sources):
        raise ValueError('the ImageNet part has no line `IMAGENET_MODEL = "..."` to switch')
    from course_helpers.imagenet import MODELS

    others = [m for m in MODELS if m != model]
    out = []
    for s in sources:
        s = SWITCH.sub(f'IMAGENET_MODEL = "{model}"', s)
        if others:   # the comment names the model one could switch to
            s = re.sub(rf'^(IMAGENET_MODEL = "{model}"\s*# or )"{model}"', rf'\1"{others[0]}"',
                       s, flags=re.M)
        out.append(s)
    return out


def _tree_rss(pid) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_part(notebook, model=None, keras_home=None, cache=None, quick: bool = True,
             timeout: int = 900) -> dict:
    """Run a lesson's ImageNet part in a fresh kernel: its setup cell, then its tagged cells
    (``model`` replaces the switch's value; None keeps the lesson's own).  ``keras_home`` and
    ``cache`` become ``KERAS_HOME`` and ``COURSE_CACHE``; ``quick`` sets ``COURSE_QUICK=1``.

    Returns ``{"cells": [{"seconds", "peak_mb", "error", "outputs", "images", "source"}],
    "peak_mb", "model"}``: the kernel's peak resident memory (its process tree, polled every
    0.1 s) over the run and while each cell ran, each cell's time as the kernel reports it, its
    text output, how many pictures it drew and its error (empty when it ran)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    setup, cells = part_cells(notebook)
    if model is not None:
        cells = switched(cells, model)
    chosen = SWITCH.search("\n".join(cells))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in [setup, *cells]]
    # the inline backend, as in Jupyter: each figure becomes an output the result counts
    env = {"COURSE_QUICK": "1" if quick else "0",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    if keras_home is not None:
        env["KERAS_HOME"] = str(keras_home)
    if cache is not None:
        env["COURSE_CACHE"] = str(cache)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)      # the kernel inherits this process's environment
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(notebook).parent)}})
    samples, stop = [], threading.Event()      # (time, resident bytes) every 0.1 s

    def poll():
        while not stop.is_set():
            pid = getattr(getattr(client.km, "provisioner", None), "pid", None) if client.km else None
            if pid:
                samples.append((time.time(), _tree_rss(pid)))
            time.sleep(0.1)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        client.execute()
    except CellExecutionError:
        pass                    # the failing cell carries its error output
    finally:
        stop.set()
        watcher.join()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    cells = [_cell_result(c) for c in nb.cells[1:]]
    for cell, (start, end) in zip(cells, (_cell_span(c) for c in nb.cells[1:])):
        during = [rss for t, rss in samples if start is not None and start <= t <= end + 0.2]
        if not during and start is not None and samples:   # too quick for a poll: the nearest
            during = [min(samples, key=lambda s: abs(s[0] - start))[1]]
        cell["peak_mb"] = max(during) / 2**20 if during else None   # the most while it ran
    return {"model": chosen.group(1) if chosen else None,
            "peak_mb": max((rss for _, rss in samples), default=0) / 2**20, "cells": cells}


def _cell_span(cell) -> tuple:
    """(start, end) of a run cell in seconds since the epoch, from the kernel's timing."""
    from datetime import datetime

    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None, None
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()   # noqa: E731
    return parse(start), parse(end)


def _cell_result(cell) -> dict:
    start, end = _cell_span(cell)
    seconds = None if start is None else end - start
    text, error, images = [], "", 0
    for out in cell.get("outputs", []):
        images += "image/png" in out.get("data", {})
        if out.output_type == "stream":
            text.append(out.text)
        elif out.output_type == "error":
            error = f"{out.ename}: {out.evalue}"
        elif "text/plain" in out.get("data", {}):
            text.append(out["data"]["text/plain"])
    if seconds is None and not error:
        error = "not run (an earlier cell failed)"
    return {"seconds": seconds, "error": error, "outputs": "".join(text), "images": images,
            "source": cell.source}
