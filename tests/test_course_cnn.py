"""The shipped course-cnn meets the foundation's bars, and the training script makes it."""
import json

import numpy as np
import pytest

import course_helpers as ch
from course_helpers import config, filters, models
from course_helpers.tools import train


@pytest.fixture(scope="module")
def report():
    return train.evaluate("course-cnn")


def test_accuracy_on_fresh_images(report):
    assert report["eval_images"] == 2000
    assert report["accuracy"] >= 0.97


def test_eval_seed_is_never_used_in_training():
    meta = models.model_metadata("course-cnn")
    seed = meta["training"]["seed"]
    assert config.EVAL_SEED not in (seed, seed + 1)
    assert train.EVAL_SEED == config.EVAL_SEED


def test_first_layer_kernels_are_alive_and_smooth(report):
    assert report["kernel_size"] >= 7
    assert report["dead_fraction"] < 0.10
    assert report["smoothness_ratio"] >= 2.5


def test_weights_file_is_small_and_made_by_the_training_script():
    path = ch.config.data_dir() / "course-cnn.weights.h5"
    assert path.stat().st_size <= 5 * 1024 * 1024
    meta = json.loads((ch.config.data_dir() / "course-cnn.json").read_text())
    # the records name the command that makes them today (course_helpers.tools.train)
    assert meta["made_by"].startswith("python -m course_helpers.tools.train")
    shortcut = json.loads((ch.config.data_dir() / "shortcut-cnn.json").read_text())
    assert shortcut["made_by"].startswith("python -m course_helpers.tools.train --variant shortcut")
    assert meta["training"]["seed"] == train.DEFAULTS["seed"]  # made with the script's defaults


def test_low_frequency_share_against_known_kernels():
    k = 7
    yy, xx = np.mgrid[:k, :k] - k // 2
    smooth = np.exp(-(xx**2 + yy**2) / 8.0) * xx  # an oriented edge detector, smooth
    checker = np.cos(2 * np.pi * 3 * (xx + yy) / k)  # a pure high frequency (3 cycles per kernel)
    kernels = np.stack([np.stack([smooth] * 3, -1), np.stack([checker] * 3, -1)], -1)
    share = filters.low_frequency_share(kernels)
    assert share[0] > 0.9 and share[1] < 1e-6
    # white noise spreads its energy: the expected share is the fraction of low bins
    noise = np.random.default_rng(0).normal(size=(k, k, 3, 4000))
    low_bins = (2 * (k // 4) + 1) ** 2 - 1
    assert abs(np.median(filters.low_frequency_share(noise)) - low_bins / (k * k - 1)) < 0.02


def test_dead_fraction_counts_tiny_kernels():
    k = np.ones((3, 3, 3, 10))
    k[..., :2] *= 0.01
    assert filters.dead_fraction(k) == pytest.approx(0.2)


def test_training_script_runs_and_is_deterministic(tmp_path):
    kw = dict(n_train=128, n_val=32, epochs=1, batch_size=32, widths=(4, 4, 8, 8), seed=3)
    a = train.train(tmp_path / "a", verbose=False, **kw)
    b = train.train(tmp_path / "b", verbose=False, **kw)
    assert (tmp_path / "a" / "course-cnn.weights.h5").is_file()
    meta = json.loads((tmp_path / "a" / "course-cnn.json").read_text())
    assert meta["training"]["n_train"] == 128 and meta["class_names"] == list(ch.data.SHAPE_CLASSES)
    for wa, wb in zip(a["model"].get_weights(), b["model"].get_weights()):
        np.testing.assert_array_equal(wa, wb)
    with pytest.raises(TypeError, match="Unknown training settings"):
        train.train(None, verbose=False, n_epochs=3)
