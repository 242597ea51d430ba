"""Set-up shared by every notebook's first cell."""
from __future__ import annotations

import os
import random

import numpy as np

from . import config


def set_seed(seed: int = 42) -> None:
    """Seed Python, NumPy and TensorFlow so that a lesson gives the same pictures twice."""
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def setup_notebook(seed: int = 42, verbose: bool = True) -> dict:
    """Seeds, a quiet matplotlib style and a one-line status.  The setup cell of every notebook.

    This is the one place the course sets process-wide options, and only because a notebook
    asks for it in its first cell: the seeds (Python, NumPy, TensorFlow), matplotlib's
    rcParams, and TensorFlow's inter-op thread pool (2 threads: more fight each other on a
    2-core Binder machine).  The package's functions change no global state.

    Returns the versions it printed, so that a test (or a curious learner) can look at them.
    """
    import matplotlib
    import tensorflow as tf
    import tf_keras

    set_seed(seed)
    matplotlib.rcParams.update({"figure.dpi": 80, "image.interpolation": "nearest",
                                "axes.titlesize": 9, "figure.max_open_warning": 0})
    try:  # fewer threads fight each other on a 2-core Binder machine
        tf.config.threading.set_inter_op_parallelism_threads(2)
    except RuntimeError:
        pass
    info = {
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS"),
        "quick_mode": config.quick_mode(),
        "seed": seed,
    }
    if verbose:
        mode = "quick mode (COURSE_QUICK=1): small step counts" if info["quick_mode"] else "full mode"
        print(f"TensorFlow {info['tensorflow']} with tf-keras {info['tf_keras']} · {mode} · seed {seed}")
    return info
