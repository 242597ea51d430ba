"""course_helpers.embedding: features, 2-D maps, kNN accuracy, the thumbnail grid (lesson 2)."""
import matplotlib
import numpy as np
import pytest
import tf_keras as keras

import course_helpers as ch
from course_helpers import embedding, widgets


@pytest.fixture(scope="module")
def small_images():
    rng = np.random.default_rng(1)
    return rng.uniform(size=(37, 16, 16, 3)).astype(np.float32)


def test_default_layer_is_the_one_that_feeds_the_classifier(tiny_model, small_images):
    assert embedding.penultimate_layer(tiny_model).name == "fc"
    f = embedding.extract_features(tiny_model, small_images, batch_size=8)
    w, b = tiny_model.get_layer("logits").get_weights()
    z = f @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(p, tiny_model.predict(small_images, verbose=0), atol=1e-5)


def test_features_equal_a_direct_model_call(tiny_model, small_images):
    direct = keras.Model(tiny_model.input, tiny_model.get_layer("fc").output)(small_images).numpy()
    for bs in (1, 8, 64):
        np.testing.assert_allclose(embedding.extract_features(tiny_model, small_images, batch_size=bs),
                                   direct, atol=1e-6)
    conv = keras.Model(tiny_model.input, tiny_model.get_layer("c1").output)(small_images).numpy()
    np.testing.assert_allclose(embedding.extract_features(tiny_model, small_images, "c1"),
                               conv.mean(axis=(1, 2)), atol=1e-6)
    np.testing.assert_allclose(embedding.extract_features(tiny_model, small_images, "c1", pool="flatten"),
                               conv.reshape(len(conv), -1), atol=1e-6)
    pix = embedding.extract_features(tiny_model, small_images, embedding.PIXELS)
    np.testing.assert_array_equal(pix, small_images.reshape(37, -1))


def test_course_cnn_default_is_the_embedding_layer(shapes):
    model = ch.models.build_course_cnn(widths=(4, 4, 4, 8))
    x = shapes[0][:10]
    assert embedding.penultimate_layer(model).name == ch.models.EMBEDDING_LAYER
    direct = keras.Model(model.input, model.get_layer("embedding").output)(x, training=False).numpy()
    np.testing.assert_allclose(embedding.extract_features(model, list(x)), direct, atol=1e-5)


def test_bad_input_gives_clear_errors(tiny_model, small_images):
    for empty in ([], np.zeros((0, 16, 16, 3), np.float32)):
        with pytest.raises(ValueError, match="No images"):
            embedding.extract_features(tiny_model, empty)
    with pytest.raises(ValueError, match="No layer named 'fc7'.*fc"):
        embedding.extract_features(tiny_model, small_images, "fc7")
    bad = small_images.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        embedding.extract_features(tiny_model, bad)
    with pytest.raises(ValueError, match="Unknown method"):
        embedding.embed_2d(np.zeros((10, 3)), "mds")
    with pytest.raises(ValueError, match="2-D array"):
        embedding.embed_2d(np.zeros(10))


def test_embeddings_are_deterministic_for_a_seed(rng):
    f = rng.normal(size=(60, 20))
    a = embedding.embed_2d(f, "tsne", seed=3, perplexity=10)
    b = embedding.embed_2d(f, "tsne", seed=3, perplexity=10)
    assert a.shape == (60, 2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(embedding.embed_2d(f, "pca", seed=3), embedding.embed_2d(f, "pca", seed=3))


def test_pca_map_is_the_projection_on_the_top_two_components(rng):
    f = rng.normal(size=(50, 6)) * np.array([5, 3, 1, 0.5, 0.2, 0.1])
    pts = embedding.embed_2d(f, "pca")
    centred = f - f.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    ref = centred @ vt[:2].T
    np.testing.assert_allclose(np.abs(pts), np.abs(ref), atol=1e-4)  # up to the sign of an axis


def test_knn_accuracy_matches_a_brute_force_loop(rng):
    pts = rng.normal(size=(80, 2))
    y = (pts[:, 0] + 0.7 * rng.normal(size=80) > 0).astype(int) + (pts[:, 1] > 1)
    for k in (1, 4, 7):
        right = 0
        for i in range(len(pts)):
            d = ((pts - pts[i]) ** 2).sum(1)
            d[i] = np.inf
            votes = np.bincount(y[np.argsort(d)[:k]], minlength=y.max() + 1)
            right += votes.argmax() == y[i]
        assert embedding.knn_accuracy(pts, y, k) == pytest.approx(right / len(pts))
    with pytest.raises(ValueError, match="labels"):
        embedding.knn_accuracy(pts, y[:5])


def test_nearest_neighbours_match_numpy(rng):
    f = rng.normal(size=(30, 5))
    d = np.linalg.norm(f - f[7], axis=1)
    d[7] = np.inf
    assert list(embedding.nearest_neighbours(f, 7, 5)) == list(np.argsort(d)[:5])
    with pytest.raises(ValueError, match="between 0 and 29"):
        embedding.nearest_neighbours(f, 30)


def test_grid_puts_one_image_per_cell(rng):
    pts = rng.normal(size=(150, 2))
    pts[:20] = pts[0]  # many images at one spot must still get separate cells
    cells = embedding.grid_assignment(pts)
    assert cells.shape == (150, 2)
    assert len({tuple(c) for c in cells}) == 150
    assert cells.min() >= 0 and cells.max() < 13  # ceil(sqrt(150)) = 13
    # points that already sit on a lattice stay where they are
    lattice = np.stack(np.meshgrid(np.arange(5), np.arange(4)), -1).reshape(-1, 2).astype(float)
    cells = embedding.grid_assignment(lattice, grid=(4, 5))
    np.testing.assert_array_equal(cells[:, 1], lattice[:, 0])
    np.testing.assert_array_equal(cells[:, 0], 3 - lattice[:, 1])  # high y is the top row
    with pytest.raises(ValueError, match="fewer than"):
        embedding.grid_assignment(pts, grid=(3, 3))
    mosaic = embedding.grid_mosaic(lattice, np.ones((20, 4, 4, 3)), grid=(4, 5))
    assert mosaic.shape == (16, 20, 3) and mosaic.min() == 1


def test_explorer_reuses_features_when_perplexity_moves(tiny_model, small_images):
    y = np.arange(len(small_images)) % 3
    box = embedding.embedding_explorer(tiny_model, small_images, y, layers=["c1", "fc"],
                                       class_names=["a", "b", "c"])
    feature_keys = lambda: [k for k in widgets.cache_info()["keys"] if k[0] == "embedding.features"]
    before = len(feature_keys())
    controls = {c.description: c for c in box.children if hasattr(c, "description")}
    controls["perplexity"].value = 10
    assert box.state["values"]["perplexity"] == 10
    assert len(feature_keys()) == before  # no network pass for a perplexity change
    controls["layer"].value = "c1"
    assert len(feature_keys()) == before + 1
    matplotlib.pyplot.close("all")


def test_explorer_sample_is_a_nested_random_subset():
    """The explorer's images: a fixed random sample, each larger one holding the smaller, so a
    set sorted by class keeps all its classes at any slider position."""
    labels = np.repeat(np.arange(10), 20)                       # 200 photos sorted by class
    small, big = embedding.explorer_sample(200, 50), embedding.explorer_sample(200, 120)
    assert len(small) == 50 and len(set(small)) == 50 and np.all(np.diff(small) > 0)
    assert set(small) <= set(big)
    assert set(labels[small]) == set(range(10))                 # the first 50 hold 5 classes
    np.testing.assert_array_equal(embedding.explorer_sample(200, 50), small)
    np.testing.assert_array_equal(embedding.explorer_sample(200, 200), np.arange(200))
    with pytest.raises(ValueError, match="k"):
        embedding.explorer_sample(10, 11)


def test_explorer_shows_every_class_of_a_sorted_set(tiny_model):
    images = np.random.default_rng(2).uniform(size=(120, 16, 16, 3)).astype(np.float32)
    n = len(images)
    y = np.repeat(np.arange(3), n // 3)                         # sorted by class, like photo_set
    box = embedding.embedding_explorer(tiny_model, images, y, layers=["fc"],
                                       class_names=["a", "b", "c"])
    controls = {c.description: c for c in box.children if hasattr(c, "description")}
    controls["images"].value = controls["images"].min
    k = box.state["values"]["n_images"]
    assert k < n
    dots = [len(c.get_offsets()) for c in box.state["figure"].axes[0].collections[:3]]
    want = np.bincount(y[embedding.explorer_sample(n, k)], minlength=3)
    assert dots == list(want) and min(dots) > 0, (dots, want)
    matplotlib.pyplot.close("all")


def test_thumbnail_canvas_puts_each_image_at_its_point():
    colours = [(1.0, 0.0, 0.0, 1.0), (0.0, 0.0, 1.0, 1.0)]
    imgs = np.stack([np.full((20, 20, 3), 0.25, np.float32), np.full((20, 20, 3), 0.75, np.float32)])
    pts = np.array([[0.0, 1.0], [1.0, 0.0]])   # top-left and bottom-right of the unit square
    canvas = embedding.thumbnail_canvas(pts, imgs, [0, 1], colours, size=110, thumb=10)
    assert canvas.shape == (110, 110, 4)
    lo, hi = embedding.plots._MAP_LIMITS
    for (x, y), img, colour in zip(pts, imgs, colours):
        col = int((x - lo) / (hi - lo) * 110)
        row = int((1 - (y - lo) / (hi - lo)) * 110)
        np.testing.assert_allclose(canvas[row, col, :3], img[0, 0])      # the image at its point
        np.testing.assert_allclose(canvas[row - 5, col - 5, :3], colour[:3])  # its class frame
    assert canvas[..., 3].sum() == 2 * 10 * 10 and canvas[55, 55, 3] == 0   # nothing elsewhere


def test_explorer_views_show_dots_thumbnails_and_grid(tiny_model, small_images):
    y = np.arange(len(small_images)) % 3
    box = embedding.embedding_explorer(tiny_model, small_images, y, layers=["fc"],
                                       class_names=["a", "b", "c"])
    view = next(c for c in box.children if getattr(c, "description", "") == "view")
    ax = box.state["figure"].axes[0]
    shown = sum(len(c.get_offsets()) for c in ax.collections)
    assert shown == box.state["values"]["n_images"]             # one dot per image
    pngs = {}
    for name in ("thumbnails", "grid", "dots"):
        view.value = name
        pngs[name] = box.state["png"]
    assert len(set(pngs.values())) == 3
    assert box.state["figure"].axes[0].images[0].get_visible() is False   # dots: no thumbnails


def test_penultimate_layer_separates_classes_in_2d(course_model):
    x, y, _ = ch.data.make_shapes(1000, seed=7)
    f = embedding.extract_features(course_model, x)
    pts = embedding.embed_2d(f, "tsne", seed=0)
    acc = embedding.knn_accuracy(pts, y, k=5)
    print(f"kNN accuracy of the penultimate layer in 2-D (1000 images): {acc:.3f}")
    assert acc >= 0.90


def test_exercise_checks(rng):
    f = rng.normal(size=(20, 4))
    right = np.argsort(np.linalg.norm(f - f[3], axis=1))[1:6]
    assert ch.exercises.check_nearest_neighbours(right, f, 3, 5)
    assert not ch.exercises.check_nearest_neighbours(np.argsort(np.linalg.norm(f - f[3], axis=1))[:5], f, 3, 5)
    assert not ch.exercises.check_nearest_neighbours(..., f, 3, 5)


def _keras3_model():
    import keras   # Keras 3, not the tf-keras this course uses

    inp = keras.Input((16, 16, 3))
    return keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))


BAD_MODELS = [(None, r"model is None.*load_model\('course-cnn'\)"),
              ("course-cnn", r"string 'course-cnn'.*ch.models.load_model\('course-cnn'\)"),
              ("keras3", r"Keras 3 model.*tf_keras")]


@pytest.mark.parametrize("bad, message", BAD_MODELS)
def test_a_model_that_is_not_a_loaded_tf_keras_model_is_named(bad, message, small_images):
    bad = _keras3_model() if bad == "keras3" else bad
    calls = [lambda: embedding.extract_features(bad, small_images),
             lambda: embedding.cached_features(bad, small_images),
             lambda: embedding.penultimate_layer(bad),
             lambda: embedding.compare_layers(bad, small_images, np.zeros(37), ["fc"]),
             lambda: embedding.embedding_explorer(bad, small_images, np.zeros(37))]
    for call in calls:
        with pytest.raises(TypeError, match=message):
            call()


def test_a_layer_given_by_index_is_that_layer(tiny_model, small_images):
    fc = [lyr.name for lyr in tiny_model.layers].index("fc")
    for index in (fc, np.int64(fc), fc - len(tiny_model.layers)):
        np.testing.assert_array_equal(embedding.extract_features(tiny_model, small_images, index),
                                      embedding.extract_features(tiny_model, small_images, "fc"))
    with pytest.raises(ValueError, match="layer index 99 is out of range.*0 to 7"):
        embedding.extract_features(tiny_model, small_images, 99)


def test_empty_images_and_bad_sizes_are_named(tiny_model):
    for empty in ([], np.zeros((0, 16, 16, 3), np.float32)):
        with pytest.raises(ValueError, match="No images given: embedding_explorer"):
            embedding.embedding_explorer(tiny_model, empty, [])
    pts = np.array([[0.2, 0.3], [0.8, 0.6]])
    imgs = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    colours = [(1.0, 0.0, 0.0, 1.0)]
    np.testing.assert_array_equal(embedding.thumbnail_canvas(pts, imgs, [0, 0], colours, size=64.0),
                                  embedding.thumbnail_canvas(pts, imgs, [0, 0], colours, size=64))
    for bad in (2.5, "64"):
        with pytest.raises(TypeError, match=f"size must be a whole number, got .*{bad}"):
            embedding.thumbnail_canvas(pts, imgs, [0, 0], colours, size=bad)
    with pytest.raises(ValueError, match="pool must be one of"):
        embedding.extract_features(tiny_model, imgs, pool="mean")


def test_compare_layers_keeps_positions_when_asked(tiny_model, small_images):
    labels = np.arange(37) % 3
    conv = keras.Model(tiny_model.input, tiny_model.get_layer("c1").output)(small_images).numpy()
    for pool, want in (("avg", conv.mean(axis=(1, 2))), ("flatten", conv.reshape(37, -1))):
        res = embedding.compare_layers(tiny_model, small_images, labels, ["c1"], method="pca", pool=pool)
        assert res["c1"]["dims"] == want.shape[1]
        np.testing.assert_allclose(res["c1"]["points"], embedding.embed_2d(want, "pca"), atol=1e-4)
        assert res["c1"]["knn_accuracy"] == embedding.knn_accuracy(res["c1"]["points"], labels)


def test_compare_layers_runs_the_network_once_for_all_its_layers(tiny_model, monkeypatch):
    from course_helpers.embedding import features as feats

    images = np.random.default_rng(5).uniform(size=(23, 16, 16, 3)).astype(np.float32)
    labels = np.arange(23) % 3
    passes, real = [], feats._features_of
    monkeypatch.setattr(feats, "_features_of",
                        lambda model, x, names, *a, **kw: passes.append(list(names)) or
                        real(model, x, names, *a, **kw))
    res = embedding.compare_layers(tiny_model, images, labels, [embedding.PIXELS, "c1", "c2", "fc"],
                                   method="pca", batch_size=4)
    assert passes == [["c1", "c2", "fc"]]              # one pass, three outputs
    for name in ("c1", "c2", "fc"):
        out = keras.Model(tiny_model.input, tiny_model.get_layer(name).output)(images).numpy()
        want = out.mean(axis=(1, 2)) if out.ndim == 4 else out
        assert res[name]["dims"] == want.shape[1]
        np.testing.assert_allclose(res[name]["points"], embedding.embed_2d(want, "pca"), atol=1e-4)
    assert res[embedding.PIXELS]["dims"] == 16 * 16 * 3
    embedding.compare_layers(tiny_model, images, labels, ["c2", "fc"], method="pca")
    assert passes == [["c1", "c2", "fc"]]              # cached: no second pass


def test_default_batch_keeps_big_photos_few_per_pass(tiny_model, small_images):
    from course_helpers.embedding.features import BATCH_PIXELS, _batch_size

    assert _batch_size(np.zeros((1, 64, 64, 3)), None) == BATCH_PIXELS // 64 ** 2 == 32
    assert _batch_size(np.zeros((1, 224, 224, 3)), None) == BATCH_PIXELS // 224 ** 2 == 2
    assert _batch_size(np.zeros((1, 8, 8, 3)), None) == 64         # at most 64
    assert _batch_size(np.zeros((1, 2000, 2000, 3)), None) == 1
    np.testing.assert_allclose(embedding.extract_features(tiny_model, small_images),
                               embedding.extract_features(tiny_model, small_images, batch_size=1),
                               atol=1e-6)


def test_grid_of_big_photos_is_drawn_from_shrunk_copies(rng):
    pts = rng.normal(size=(9, 2))
    photos = rng.uniform(size=(9, 224, 224, 3)).astype(np.float32)
    fig = embedding.plot_embedding_grid(pts, photos, cell=32)
    assert fig.axes[0].images[0].get_array().shape == (3 * 32, 3 * 32, 3)
    small = np.stack([ch.data.resize_image(p, (32, 32)) for p in photos])
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), embedding.grid_mosaic(pts, small))
    matplotlib.pyplot.close("all")


def test_pca_of_wide_features_matches_scikit_learn_up_to_sign(rng):
    # more numbers per image than images (photos' pixels): the Gram-matrix route of _pca
    from sklearn.decomposition import PCA

    from course_helpers.embedding.features import _pca

    f = (rng.normal(size=(40, 9000)) * rng.uniform(0.1, 3, 9000)).astype(np.float32)
    ours = _pca(f, 5, seed=0)
    ref = PCA(n_components=5, svd_solver="full").fit_transform(f.astype(np.float64))
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    for axis in range(5):    # each axis is the reference's, or its mirror
        assert min(np.abs(ours[:, axis] - ref[:, axis]).max(),
                   np.abs(ours[:, axis] + ref[:, axis]).max()) < 1e-6 * np.abs(ref).max()
    pts = embedding.embed_2d(f, "pca")
    np.testing.assert_allclose(np.abs(pts), np.abs(ref[:, :2]), rtol=1e-4, atol=1e-4)


def test_cached_pixels_are_a_read_only_view_of_the_images(tiny_model):
    images = np.random.default_rng(9).uniform(size=(12, 16, 16, 3)).astype(np.float32)
    pix = embedding.cached_features(tiny_model, images, embedding.PIXELS)
    np.testing.assert_array_equal(pix, images.reshape(12, -1))
    assert np.shares_memory(pix, images) and not pix.flags.writeable
    assert images.flags.writeable                      # the caller's array is untouched


def test_cached_features_of_a_list_of_layers_take_one_pass(tiny_model, monkeypatch):
    from course_helpers.embedding import features as feats

    images = np.random.default_rng(11).uniform(size=(9, 16, 16, 3)).astype(np.float32)
    passes, real = [], feats._features_of
    monkeypatch.setattr(feats, "_features_of",
                        lambda model, x, names, *a, **kw: passes.append(list(names)) or
                        real(model, x, names, *a, **kw))
    got = embedding.cached_features(tiny_model, images, [embedding.PIXELS, "c2", "fc"])
    assert passes == [["c2", "fc"]]
    np.testing.assert_array_equal(got[0], images.reshape(9, -1))
    for name, f in zip(("c2", "fc"), got[1:]):
        out = keras.Model(tiny_model.input, tiny_model.get_layer(name).output)(images).numpy()
        np.testing.assert_allclose(f, out.mean(axis=(1, 2)) if out.ndim == 4 else out, atol=1e-6)
    assert embedding.cached_features(tiny_model, images, "fc") is got[2]     # from the cache
    assert passes == [["c2", "fc"]]
    with pytest.raises(ValueError, match="layer is empty"):
        embedding.cached_features(tiny_model, images, [])
