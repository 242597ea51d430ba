"""The shuffled-label model of lesson 8 (Adebayo et al.'s data randomization): the shipped
weights meet their figures, and the training script makes them deterministically."""
import json

import numpy as np
import pytest

import course_helpers as ch
from course_helpers import config, sanity
from course_helpers.tools import train


@pytest.fixture(scope="module")
def report():
    return train.evaluate(sanity.SHUFFLED_CNN)


def test_shipped_model_memorized_its_shuffled_labels(report):
    assert report["train_images"] == train.defaults("shuffled-labels")["n_train"]
    assert report["train_accuracy"] >= train.SHUFFLED_BARS["train_accuracy"]


def test_shipped_model_is_at_chance_on_fresh_images(report):
    assert report["eval_images"] == config.EVAL_SIZE and report["chance"] == pytest.approx(1 / 6)
    assert abs(report["accuracy"] - 1 / 6) <= train.SHUFFLED_BARS["chance_margin"]


def test_its_training_labels_really_are_shuffled():
    cfg = train.defaults("shuffled-labels")
    x, y, _, yv = train.training_data(cfg, "shuffled-labels")
    _, y_true, _ = ch.data.make_shapes(cfg["n_train"], seed=cfg["seed"])
    np.testing.assert_array_equal(np.bincount(y, minlength=6), np.bincount(y_true, minlength=6))
    assert abs((y == y_true).mean() - 1 / 6) < 0.06          # no more agreement than chance
    model = sanity.load_shuffled_model()
    pred = model.predict(x, batch_size=256, verbose=0).argmax(-1)
    assert abs((pred == y_true).mean() - 1 / 6) < 0.08       # it learned the shuffled ones
    assert ch.models.model_name(model) == sanity.SHUFFLED_CNN
    real = ch.models.load_model("course-cnn")
    assert not np.allclose(real.get_layer("conv1").get_weights()[0],
                           model.get_layer("conv1").get_weights()[0])


def test_record_names_the_command_that_made_it():
    meta = json.loads((config.data_dir() / f"{sanity.SHUFFLED_CNN}.json").read_text())
    assert meta["made_by"] == "python -m course_helpers.tools.train --variant shuffled-labels"
    assert meta["variant"] == "shuffled-labels"
    assert meta["training"] == {**train.defaults("shuffled-labels"),
                                "widths": list(train.DEFAULTS["widths"])}
    assert (config.data_dir() / f"{sanity.SHUFFLED_CNN}.weights.h5").stat().st_size < 2 * 1024 ** 2


def test_evaluate_prints_its_figures(capsys):
    assert train.main(["--variant", "shuffled-labels", "--evaluate"]) == 0
    out = capsys.readouterr().out
    assert "shuffled labels" in out and "(bar: >= 0.9)" in out and "fresh images" in out
    assert train.main(["--evaluate"]) == 0                  # course-cnn's figures, then these
    out = capsys.readouterr().out
    assert out.index("(bar: >= 0.97)") < out.index("course-cnn-shuffled: accuracy")


def test_short_shuffled_training_is_deterministic(tmp_path):
    kw = dict(n_train=48, n_val=16, epochs=3, batch_size=16, widths=(4, 4, 8, 8), seed=5)
    a = train.train(tmp_path / "a", variant="shuffled-labels", verbose=False, **kw)
    b = train.train(tmp_path / "b", variant="shuffled-labels", verbose=False, **kw)
    assert (tmp_path / "a" / f"{sanity.SHUFFLED_CNN}.weights.h5").is_file()
    for wa, wb in zip(a["model"].get_weights(), b["model"].get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert a["train_accuracy"] == b["train_accuracy"]
    meta = json.loads((tmp_path / "a" / f"{sanity.SHUFFLED_CNN}.json").read_text())
    assert "--n-train 48" in meta["made_by"] and "--variant shuffled-labels" in meta["made_by"]
    # the recorded accuracy is the model's own on its shuffled labels, recomputed here
    x, y, _, _ = train.training_data(meta["training"], "shuffled-labels")
    pred = a["model"].predict(x, verbose=0).argmax(-1)
    assert a["train_accuracy"] == pytest.approx((pred == y).mean())


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant must be one of"):
        train.train(None, variant="shuffled", verbose=False)
