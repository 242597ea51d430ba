"""Course-wide settings: the quick-mode switch and where shipped files live.

Quick mode is switched on by the environment variable ``COURSE_QUICK=1``.  It scales step
counts, image counts and sample sizes down so that tests and CI run every notebook fast; the
code path is the same, only the numbers shrink.
"""
from __future__ import annotations

import os
from pathlib import Path

QUICK_ENV = "COURSE_QUICK"

#: Seed of the 2,000 fresh evaluation images of the bundled models (``python -m
#: course_helpers.tools.train --evaluate``, lesson 8's shortcut test); training uses its
#: ``seed`` and ``seed + 1`` only, never this one.
EVAL_SEED = 20_261_127
EVAL_SIZE = 2000


def data_dir() -> Path:
    """The folder of files that ship with the course (weights, class names): ``data/``.

    In a clone it is the repository's ``data/``; in a pip install (Colab) the same files are
    installed as the package ``course_helpers_data``.
    """
    here = Path(__file__).resolve().parent.parent / "data"
    if (here / "imagenet_classes.txt").is_file():
        return here
    import importlib.util

    spec = importlib.util.find_spec("course_helpers_data")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    raise FileNotFoundError(
        "The course's data files (data/ in the repository) were not found. Reinstall the course "
        "with `pip install -e .` from a clone of the repository."
    )


def quick_mode() -> bool:
    """True when ``COURSE_QUICK`` is set to 1/true/yes.  Used by every lesson."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def scaled(full: int, quick: int | None = None) -> int:
    """``full`` normally, a smaller number in quick mode (``quick``, or a tenth of ``full``).

    Used by every lesson for step counts and sample sizes, e.g. ``steps = ch.scaled(200, 20)``.
    """
    if not quick_mode():
        return int(full)
    if quick is None:
        quick = max(1, int(full) // 10)
    return int(min(full, quick))
