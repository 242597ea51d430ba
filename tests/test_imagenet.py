"""ch.imagenet (the ImageNet parts' guard and accuracy) and the stand-ins the tests run them on."""
import numpy as np
import pytest
import tf_keras as keras

import course_helpers as ch
from course_helpers import photos
from course_helpers.tools import stand_ins


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv(photos.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path


def test_ready_says_what_is_missing_and_how_to_fetch_it(empty_caches, capsys):
    assert ch.imagenet.ready("resnet50") is False
    out = capsys.readouterr().out
    assert out.startswith("NOTICE")
    assert "python -m course_helpers.models --fetch resnet50" in out
    assert "python -m course_helpers.data --fetch photos" in out
    assert ch.imagenet.ready("vgg16", photos=False) is False
    out = capsys.readouterr().out
    assert "--fetch vgg16" in out and "--fetch photos" not in out
    assert [cmd for _, cmd in ch.imagenet.missing("vgg16")] == [
        "python -m course_helpers.models --fetch vgg16", "python -m course_helpers.data --fetch photos"]


def test_ready_is_true_with_weights_and_photos_and_prints_nothing(empty_caches, capsys):
    home = empty_caches / "keras" / "models"
    home.mkdir(parents=True)
    (home / ch.models._IMAGENET["resnet50"][0]).write_bytes(b"stand-in")   # only its presence counts
    assert ch.imagenet.ready("resnet50", photos=False) is True
    assert ch.imagenet.ready("resnet50") is False                          # no photos yet
    capsys.readouterr()
    stand_ins.write_photo_set(empty_caches / "cache", per_class=1)
    assert ch.imagenet.ready("resnet50") is True
    assert capsys.readouterr().out == ""
    assert ch.imagenet.missing("resnet50") == []


def test_ready_rejects_an_unknown_model_by_name(empty_caches):
    with pytest.raises(ValueError, match="model_name.*'vgg16'.*'resnet50'"):
        ch.imagenet.ready("alexnet")


@pytest.fixture(scope="module")
def linear_net():
    """A model whose probabilities are known: softmax of a fixed linear map of the mean colour."""
    inp = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inp)
    out = keras.layers.Dense(5, activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out)
    w = np.arange(15, dtype=np.float32).reshape(3, 5) - 7
    model.get_layer("predictions").set_weights([w, np.zeros(5, np.float32)])
    return model, w


def test_predict_and_accuracy_against_numpy(linear_net, rng):
    model, w = linear_net
    x = rng.random((23, 8, 8, 3), dtype=np.float32)
    z = x.mean(axis=(1, 2)) @ w
    expect = np.exp(z - z.max(1, keepdims=True))
    expect /= expect.sum(1, keepdims=True)
    probs = ch.imagenet.predict(model, x, batch_size=4)              # 6 batches, the last short
    np.testing.assert_allclose(probs, expect, rtol=1e-5, atol=1e-6)
    labels = rng.integers(0, 5, 23)
    rank = np.argsort(-expect, axis=1)
    for k in (1, 2, 5):
        by_hand = np.mean([labels[i] in rank[i, :k] for i in range(23)])
        assert ch.imagenet.accuracy(model, x, labels, k=k) == pytest.approx(by_hand)
        assert ch.imagenet.accuracy(None, None, labels, k=k, probabilities=probs) == pytest.approx(by_hand)
    assert ch.imagenet.accuracy(model, x, rank[:, 0]) == 1.0


def test_accuracy_names_bad_labels(linear_net, rng):
    model, _ = linear_net
    x = rng.random((4, 8, 8, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="imagenet_labels has shape"):
        ch.imagenet.accuracy(model, x, [1, 2, 3])
    with pytest.raises(ValueError, match="k"):
        ch.imagenet.accuracy(model, x, [1, 2, 3, 4], k=0)


def test_the_stand_in_photo_set_reads_like_the_real_one(empty_caches):
    folder = stand_ins.write_photo_set(empty_caches / "cache", per_class=3)
    assert folder == photos.photo_dir()
    assert ch.data.photo_set_available()
    ps = ch.data.photo_set(30, size=96, seed=1)
    assert ps.images.shape == (30, 96, 96, 3) and ps.images.dtype == np.float32
    assert 0 <= ps.images.min() and ps.images.max() <= 1 and ps.images.std() > 0.05
    assert np.bincount(ps.labels).tolist() == [3] * 10
    assert ps.imagenet.tolist() == [ch.data.PHOTO_IMAGENET_INDEX[k] for k in ps.labels]


def test_the_switch_line_is_found_and_replaced():
    cells = ['IMAGENET_MODEL = "vgg16"   # or "resnet50"\nready = 1', "if ready:\n    pass"]
    out = stand_ins.switched(cells, "resnet50")
    assert out[0].startswith('IMAGENET_MODEL = "resnet50"   # or "vgg16"') and out[1] == cells[1]
    back = stand_ins.switched(out, "vgg16")            # the comment names the other model
    assert back[0].startswith('IMAGENET_MODEL = "vgg16"   # or "resnet50"')
    with pytest.raises(ValueError, match="IMAGENET_MODEL"):
        stand_ins.switched(["x = 1"], "vgg16")
