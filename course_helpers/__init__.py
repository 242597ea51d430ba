"""Helpers for the course *Seeing inside CNNs*.

Import this package before TensorFlow: it switches TensorFlow to tf-keras (the Keras 2 API),
which tf-keras-vis needs.  Every lesson's notebook starts with::

    import course_helpers as ch
    ch.setup_notebook(seed=42)
"""
from __future__ import annotations

import os
import sys

__version__ = "0.1.0"


def _require_legacy_keras() -> None:
    """Make TensorFlow use tf-keras; fail clearly if it is too late for that."""
    tf_loaded = "tensorflow" in sys.modules
    flag = os.environ.get("TF_USE_LEGACY_KERAS", "")
    if not tf_loaded:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        return
    if flag.lower() in ("1", "true", "yes"):
        return
    raise ImportError(
        "TensorFlow was imported before course_helpers, so it is using Keras 3, and tf-keras-vis "
        "does not work with Keras 3. Fix: restart the kernel (Kernel > Restart) and run "
        "`import course_helpers` before anything imports TensorFlow, or set the environment "
        "variable TF_USE_LEGACY_KERAS=1 before starting Python."
    )


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up lines ("Could not find cuda drivers ...") hidden.

    Those lines are written to the stderr file descriptor before TensorFlow's logging starts,
    so no setting silences them; on a CPU-only laptop or Binder they only confuse learners.
    Python errors still surface: they are raised, not printed, during the import.
    """
    if "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except (OSError, AttributeError, ValueError):
        import tensorflow  # noqa: F401
        return
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # probes for CUDA now, while its complaint is hidden
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_require_legacy_keras()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's start-up chatter
_import_tensorflow_quietly()

from . import config, data, models, plotting  # noqa: E402
from .config import quick_mode, scaled  # noqa: E402
from .notebook import setup_notebook  # noqa: E402

__all__ = [
    "config",
    "data",
    "models",
    "plotting",
    "quick_mode",
    "scaled",
    "setup_notebook",
]


def __getattr__(name):
    # Lesson modules load on first use (``ch.filters``, ``ch.saliency`` ...), so that
    # ``import course_helpers`` stays quick and a lesson only pays for what it uses.
    import importlib

    if name.startswith("_"):
        raise AttributeError(name)
    try:
        module = importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as err:
        if err.name == f"{__name__}.{name}":
            raise AttributeError(f"module 'course_helpers' has no attribute {name!r}") from None
        raise
    globals()[name] = module
    return module
