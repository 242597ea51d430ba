"""Exercises of lessons 01-03: every check accepts its registered solution and rejects wrong answers.

Each solution is executed as a learner would run it (in a namespace holding the notebook's
variables); the check is then called again on what the solution defined, and must say True.
Wrong answers are the usual slips, worked out independently here.
"""
import numpy as np
import pytest

import course_helpers as ch
from course_helpers.exercises import _base, lesson01, lesson02, lesson03


def run_solution(name, **variables):
    """Exec the worked solution ``name`` with the notebook's variables; return its namespace."""
    namespace = {"np": np, "ch": ch, **variables}
    exec(_base.SOLUTIONS[name], namespace)
    return namespace


def test_every_lesson_a_exercise_has_a_solution():
    for name in ("most_alike", "orientation", "nearest_neighbours", "knn_accuracy",
                 "feature_map_shape", "added_layers", "top_images"):
        assert name in ch.exercises.solutions()
        assert ch.exercises.solution(name).strip()


# --------------------------------------------------------------------------- lesson 01
def _kernel_vectors(model):
    w = model.get_layer("conv1").get_weights()[0]
    return w.reshape(-1, w.shape[-1]).T.astype(np.float64)


def test_most_alike(course_model):
    ns = run_solution("most_alike", model=course_model)
    assert ch.exercises.check_most_alike(course_model, ns["my_pair"])
    assert ch.exercises.check_most_alike(course_model, tuple(reversed(ns["my_pair"])))
    # independent: a double loop over pairs with the cosine written out
    flat = _kernel_vectors(course_model)
    best, pair = -2.0, None
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            cos = flat[i] @ flat[j] / np.sqrt((flat[i] @ flat[i]) * (flat[j] @ flat[j]))
            if cos > best:
                best, pair = cos, (i, j)
    assert set(ns["my_pair"]) == set(pair)
    # wrong: the pair closest by Euclidean distance (depends on size), a kernel with itself, nothing
    dist = {(i, j): np.linalg.norm(flat[i] - flat[j])
            for i in range(len(flat)) for j in range(i + 1, len(flat))}
    closest = min(dist, key=dist.get)
    if set(closest) != set(pair):
        assert not ch.exercises.check_most_alike(course_model, closest)
    assert not ch.exercises.check_most_alike(course_model, (pair[0], pair[0]))
    assert not ch.exercises.check_most_alike(course_model, ...)
    other = next((i, j) for (i, j) in dist if {i, j} != set(pair))
    assert not ch.exercises.check_most_alike(course_model, other)


def test_orientation(course_model):
    ns = run_solution("orientation", model=course_model)
    mine = ns["my_orientation"]
    assert ch.exercises.check_orientation(mine, course_model)
    # independent: a kernel that brightens to the right is 0 degrees, downwards 90
    y, x = np.mgrid[:7, :7].astype(float)
    assert abs(mine(np.stack([x] * 3, -1))) < 1e-6
    assert abs(mine(np.stack([y] * 3, -1)) - 90) < 1e-6
    # wrong: the edge direction (90 degrees off), radians, mirrored, a constant
    assert not ch.exercises.check_orientation(lambda k: (mine(k) + 90) % 180, course_model)
    assert not ch.exercises.check_orientation(lambda k: np.radians(mine(k)), course_model)
    assert not ch.exercises.check_orientation(lambda k: (180 - mine(k)) % 180, course_model)
    assert not ch.exercises.check_orientation(lambda k: 45.0, course_model)
    assert not ch.exercises.check_orientation(..., course_model)
    assert not ch.exercises.check_orientation(lambda k: ..., course_model)   # the empty template


# --------------------------------------------------------------------------- lesson 02
@pytest.fixture(scope="module")
def embedding_inputs(course_model):
    images, labels, _ = ch.data.make_shapes(120, seed=7)
    features = ch.embedding.extract_features(course_model, images)
    pixels = images.reshape(len(images), -1)
    return features, pixels, labels


def test_nearest_neighbours(embedding_inputs):
    features, _, _ = embedding_inputs
    ns = run_solution("nearest_neighbours", features=features)
    assert ch.exercises.check_nearest_neighbours(ns["my_neighbours"], features, 3, 5)
    d = [np.sqrt(((features[i] - features[3]) ** 2).sum()) for i in range(len(features))]
    assert set(ns["my_neighbours"]) == set(np.argsort(d)[1:6])
    assert not ch.exercises.check_nearest_neighbours(np.argsort(d)[:5], features, 3, 5)  # query kept
    assert not ch.exercises.check_nearest_neighbours(np.argsort(d)[-5:], features, 3, 5)  # farthest


def _loop_knn(vectors, labels, k=5):
    """Leave-one-out kNN accuracy with plain loops (ties to the smallest label)."""
    v = np.asarray(vectors, np.float64).reshape(len(vectors), -1)
    right = 0
    for i in range(len(v)):
        d = [np.inf if j == i else np.sqrt(((v[i] - v[j]) ** 2).sum()) for j in range(len(v))]
        votes = np.bincount(labels[np.argsort(d, kind="stable")[:k]], minlength=labels.max() + 1)
        right += int(np.argmax(votes) == labels[i])
    return right / len(v)


def test_knn_accuracy(embedding_inputs):
    features, pixels, labels = embedding_inputs
    ns = run_solution("knn_accuracy", features=features, pixels=pixels, labels=labels)
    mine = ns["my_knn_accuracy"]
    assert ch.exercises.check_knn_accuracy(mine, features, pixels, labels)
    assert abs(mine(features, labels) - _loop_knn(features, labels)) < 1e-9
    assert abs(mine(features, labels) - ch.embedding.knn_accuracy(features, labels)) < 0.02

    def keeps_itself(vectors, labels, k=5):            # every image votes for itself
        v = vectors.reshape(len(vectors), -1)
        d = ((v[:, None] - v[None]) ** 2).sum(-1) if v.shape[1] < 200 else \
            np.array([((v - row) ** 2).sum(1) for row in v])
        near = np.argsort(d, axis=1)[:, :k]
        return np.mean([np.bincount(labels[r]).argmax() == y for r, y in zip(near, labels)])

    def mean_share(vectors, labels, k=5):              # no majority vote
        v = vectors.reshape(len(vectors), -1)
        d = np.array([((v - row) ** 2).sum(1) for row in v])
        np.fill_diagonal(d, np.inf)
        near = np.argsort(d, axis=1)[:, :k]
        return np.mean(labels[near] == labels[:, None])

    assert not ch.exercises.check_knn_accuracy(keeps_itself, features, pixels, labels)
    assert not ch.exercises.check_knn_accuracy(mean_share, features, pixels, labels)
    assert not ch.exercises.check_knn_accuracy(lambda v, y, k=5: 0.5, features, pixels, labels)
    assert not ch.exercises.check_knn_accuracy(..., features, pixels, labels)
    assert not ch.exercises.check_knn_accuracy(lambda v, y, k=5: None, features, pixels, labels)


# --------------------------------------------------------------------------- lesson 03
def test_feature_map_shape():
    ns = run_solution("feature_map_shape")
    assert ch.exercises.check_feature_map_shape("conv4", ns["my_shape"], input_size=100)
    # independent: run a 100x100 course-cnn and read the activation's shape
    model = ch.models.build_course_cnn(input_size=100)
    out = model.get_layer("conv4_relu").output_shape[1:]
    assert tuple(ns["my_shape"]) == tuple(out)
    assert not ch.exercises.check_feature_map_shape("conv4", (13, 13, 96), input_size=100)  # rounded up
    assert not ch.exercises.check_feature_map_shape("conv4", (8, 8, 96), input_size=100)    # the 64 answer
    assert not ch.exercises.check_feature_map_shape("conv4", (12, 12, 64), input_size=100)
    # the 64-pixel case still works as before
    assert ch.exercises.check_feature_map_shape("conv3", (16, 16, 64))


def test_added_layers():
    cnn = ch.models.build_course_cnn()   # the notebook's `rf`: receptive fields of course-cnn
    rf = {name: ch.patches.receptive_field(cnn, name) for name in ch.models.conv_layer_names(cnn)}
    ns = run_solution("added_layers", rf=rf)
    assert ch.exercises.check_added_layers(ns["my_size"], ns["my_jump"])
    # independent: the size/jump loop over the layers of the model the check builds
    import tf_keras as keras

    size, jump = 1, 1
    for layer in lesson03._with_added_layers().layers:
        if isinstance(layer, keras.layers.Conv2D):
            size, jump = size + (layer.kernel_size[0] - 1) * jump, jump * layer.strides[0]
        elif isinstance(layer, keras.layers.MaxPooling2D):
            size, jump = size + (layer.pool_size[0] - 1) * jump, jump * layer.strides[0]
    assert (ns["my_size"], ns["my_jump"]) == (size, jump)
    assert not ch.exercises.check_added_layers(41 + 2 * 8, 16)     # old jump used for conv5
    assert not ch.exercises.check_added_layers(81, 8)              # jump not doubled
    assert not ch.exercises.check_added_layers(..., ...)


def test_top_images(course_model):
    shapes, _, _ = ch.data.make_shapes(60, seed=3)
    ns = run_solution("top_images", model=course_model, shapes=shapes)
    mine = ns["my_top_images"]
    assert ch.exercises.check_top_images(mine, course_model, shapes)
    # independent: loop over images, each image's maximum by a Python max
    sub = ch.activations.activation_model(course_model, "conv3")
    maps = sub.predict(shapes, verbose=0)[..., 10]
    best = [max(maps[i].ravel()) for i in range(len(shapes))]
    assert list(mine(course_model, "conv3", 10, shapes, 6)) == sorted(range(len(shapes)),
                                                                       key=lambda i: -best[i])[:6]

    def by_mean(model, layer, channel, images, k):
        m = ch.activations.layer_activations(model, layer, images)[..., channel]
        return np.argsort(-m.mean(axis=(1, 2)))[:k]

    def weakest_first(model, layer, channel, images, k):
        return mine(model, layer, channel, images, k)[::-1]

    assert not ch.exercises.check_top_images(by_mean, course_model, shapes)
    assert not ch.exercises.check_top_images(weakest_first, course_model, shapes)
    assert not ch.exercises.check_top_images(..., course_model, shapes)
    assert not ch.exercises.check_top_images(lambda *args: None, course_model, shapes)
