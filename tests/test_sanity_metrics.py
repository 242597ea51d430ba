"""Lesson 8's data randomization, ROAD, the metric ranking and cue recovery, against
independent computations (dense NumPy solves, scipy, skimage, plain loops)."""
import numpy as np
import pytest

import course_helpers as ch
from course_helpers import sanity


# --------------------------------------------------------------------------- ROAD imputation
def _dense_imputation(image, mask):
    """Every removed pixel = the weighted mean of its in-image neighbours, written as one
    dense system over all removed pixels and solved by np.linalg.solve."""
    h, w = mask.shape
    idx = {p: i for i, p in enumerate(zip(*np.nonzero(mask)))}
    a = np.zeros((len(idx), len(idx)))
    b = np.zeros((len(idx), image.shape[-1]))
    for (y, x), i in idx.items():
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dy, dx) == (0, 0) or not (0 <= y + dy < h and 0 <= x + dx < w):
                    continue
                wt = 1 / 12 if dy and dx else 1 / 6
                a[i, i] += wt
                if mask[y + dy, x + dx]:
                    a[i, idx[(y + dy, x + dx)]] -= wt
                else:
                    b[i] += wt * image[y + dy, x + dx]
    out = image.astype(np.float64).copy()
    sol = np.linalg.solve(a, b)
    for (y, x), i in idx.items():
        out[y, x] = sol[i]
    return out


def test_road_imputation_matches_a_dense_solve(rng):
    img = rng.random((7, 6, 3))
    mask = rng.random((7, 6)) < 0.6
    mask[0, 0] = True                      # a corner pixel: only 3 neighbours
    ours = sanity.noisy_linear_impute(img, mask, noise=0.0)
    np.testing.assert_allclose(ours, _dense_imputation(img, mask), atol=1e-6)
    np.testing.assert_array_equal(ours[~mask], img[~mask].astype(np.float32))


def test_road_imputation_is_exact_on_linear_images_and_adds_seeded_noise(rng):
    yy, xx = np.mgrid[:12, :10]
    ramp = np.stack([0.02 * yy + 0.03 * xx] * 3, -1)     # a linear image is its neighbours' mean
    mask = np.zeros((12, 10), bool)
    mask[3:9, 2:7] = True
    np.testing.assert_allclose(sanity.noisy_linear_impute(ramp, mask, noise=0), ramp, atol=1e-6)
    a = sanity.noisy_linear_impute(ramp, mask, noise=0.05, seed=3)
    b = sanity.noisy_linear_impute(ramp, mask, noise=0.05, seed=3)
    np.testing.assert_array_equal(a, b)
    diff = (a - ramp)[mask]
    assert 0.03 < diff.std() < 0.07 and np.all(a[~mask] == ramp[~mask].astype(np.float32))
    gray = sanity.noisy_linear_impute(ramp[..., 0], mask, noise=0)
    assert gray.shape == (12, 10)


def test_road_imputation_errors(rng):
    img = rng.random((5, 5, 3))
    with pytest.raises(ValueError, match="every pixel"):
        sanity.noisy_linear_impute(img, np.ones((5, 5), bool))
    with pytest.raises(ValueError, match="mask has shape"):
        sanity.noisy_linear_impute(img, np.ones((4, 5), bool))
    with pytest.raises(ValueError, match="noise"):
        sanity.noisy_linear_impute(img, np.zeros((5, 5), bool), noise=-1)


def test_road_curve_matches_a_plain_loop(tiny_model, rng):
    img = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    sal = rng.random((16, 16))
    fr = [0.0, 0.25, 0.5, 0.75]
    for order, key in (("morf", -sal.ravel()), ("lerf", sal.ravel())):
        curve = sanity.road_curve(tiny_model, img, 1, sal, fractions=fr, order=order, noise=0.01)
        removed_order = np.argsort(key, kind="stable")
        expected = []
        for i, f in enumerate(fr):
            mask = np.zeros(256, bool)
            mask[removed_order[:int(round(f * 256))]] = True
            x = sanity.noisy_linear_impute(img, mask.reshape(16, 16), noise=0.01, seed=i)
            expected.append(tiny_model.predict(x[None], verbose=0)[0, 1])
        np.testing.assert_allclose(curve.probability, expected, atol=1e-5)
        assert curve.auc == pytest.approx(np.trapezoid(expected, fr) / 0.75, abs=1e-5)
    with pytest.raises(ValueError, match="fractions"):
        sanity.road_curve(tiny_model, img, 1, sal, fractions=[0, 1.0])
    with pytest.raises(ValueError, match="order"):
        sanity.road_curve(tiny_model, img, 1, sal, order="random")


# --------------------------------------------------------------------------- map similarity
def test_ssim_and_spearman_against_their_libraries(rng):
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    a = rng.random((20, 20))
    b = a + 0.3 * rng.random((20, 20))
    assert sanity.ssim(a, a) == pytest.approx(1.0)
    assert sanity.ssim(a, 3 * a + 2) == pytest.approx(1.0)        # scaled to [0, 1] first
    scale = lambda m: (m - m.min()) / (m.max() - m.min())        # noqa: E731
    assert sanity.ssim(a, b) == pytest.approx(
        structural_similarity(scale(a), scale(b), data_range=1.0), abs=1e-5)
    assert sanity.ssim(a, rng.random((20, 20))) < 0.3
    assert sanity.spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel())[0])
    with pytest.raises(ValueError, match="same shape"):
        sanity.ssim(a, a[:10])


def test_shuffle_labels_is_a_seeded_permutation():
    y = np.repeat(np.arange(6), 50)
    s = sanity.shuffle_labels(y, seed=4)
    np.testing.assert_array_equal(np.bincount(s), np.bincount(y))
    np.testing.assert_array_equal(s, sanity.shuffle_labels(y, seed=4))
    assert (s == y).mean() < 0.4 and not np.array_equal(s, sanity.shuffle_labels(y, seed=5))
    with pytest.raises(ValueError, match="1-D"):
        sanity.shuffle_labels(y.reshape(6, 50))


def test_data_randomization_on_the_same_model_and_on_a_different_one(course_model, shapes):
    images, labels, _ = shapes
    methods = {"saliency": lambda m, x, c: ch.saliency.saliency_maps(m, x, c),
               "edges": lambda m, x, c: np.stack([sanity.edge_map(xi) for xi in x])}
    same = sanity.data_randomization(course_model, course_model, images[:3], labels[:3], methods,
                                     progress=False)
    np.testing.assert_allclose(same["spearman"]["saliency"], 1.0, atol=1e-6)
    np.testing.assert_allclose(same["ssim"]["saliency"], 1.0, atol=1e-6)
    other = ch.models.load_model("course-cnn", weights=None)          # untrained
    res = sanity.data_randomization(course_model, other, images[:3], labels[:3], methods,
                                    progress=False)
    np.testing.assert_allclose(res["ssim"]["edges"], 1.0, atol=1e-6)     # no model: the same
    maps = res["maps"]["saliency"]
    assert maps.shape == (2, 3, 64, 64)
    for i in range(3):
        assert res["spearman"]["saliency"][i] == pytest.approx(sanity.spearman(maps[0, i], maps[1, i]))
        assert res["ssim"]["saliency"][i] == pytest.approx(sanity.ssim(maps[0, i], maps[1, i]))
    assert res["ssim"]["saliency"].mean() < 0.9
    with pytest.raises(ValueError, match="one class"):
        sanity.data_randomization(course_model, other, images[:3], labels[:2], methods)


# --------------------------------------------------------------------------- ranking table
def test_metric_table_scores_and_ranks(course_model, shapes):
    images, labels, masks = shapes
    methods = {"oracle (the mask)": lambda m, x, c: masks[:len(x)].astype(np.float32),
               "random": sanity.random_map}
    rows = sanity.metric_table(course_model, images[:3], labels[:3], methods, steps=8,
                               road_fractions=[0, 0.3, 0.6], progress=False)
    assert [r["method"] for r in rows] == list(methods) and list(rows[0])[1:] == list(sanity.METRICS)
    # each entry is the mean of the per-image curves computed directly
    d = [sanity.deletion_curve(course_model, images[i], labels[i], masks[i], 8, baseline="blur").auc
         for i in range(3)]
    assert rows[0]["deletion (blur)"] == pytest.approx(np.mean(d))
    r = [sanity.road_curve(course_model, images[i], labels[i], masks[i].astype(float),
                           fractions=[0, 0.3, 0.6], order="lerf").auc for i in range(3)]
    assert rows[0]["ROAD least relevant first"] == pytest.approx(np.mean(r))
    ranks = sanity.rank_table(rows)
    for key, (higher_better, _, _) in sanity.METRICS.items():
        better = (rows[0][key] > rows[1][key]) if higher_better else (rows[0][key] < rows[1][key])
        assert ranks[0][key] == (1 if better else 2) and ranks[1][key] == (2 if better else 1)
    assert ranks[0]["deletion (grey)"] == 1 and ranks[0]["insertion (blur)"] == 1
    assert sanity.rank_agreement(rows, "deletion (grey)", "deletion (grey)") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="metrics"):
        sanity.metric_table(course_model, images[:1], labels[:1], methods, metrics=["accuracy"])


def test_rank_table_on_known_numbers():
    rows = [{"method": "a", "deletion (grey)": 0.1, "insertion (grey)": 0.2},
            {"method": "b", "deletion (grey)": 0.3, "insertion (grey)": 0.9},
            {"method": "c", "deletion (grey)": 0.1, "insertion (grey)": 0.5}]
    ranks = sanity.rank_table(rows)
    assert [r["deletion (grey)"] for r in ranks] == [1, 3, 1]      # lower is better; a tie
    assert [r["insertion (grey)"] for r in ranks] == [3, 1, 2]     # higher is better
    from scipy.stats import kendalltau

    assert sanity.rank_agreement(rows, "deletion (grey)", "insertion (grey)") == pytest.approx(
        kendalltau([1, 3, 1], [3, 1, 2])[0])


# --------------------------------------------------------------------------- cue recovery
def test_cue_recovery_counts_peaks_on_the_mark():
    model = ch.models.load_model("shortcut-cnn")
    mask = sanity.shortcut_mask((64, 64))
    methods = {"on the mark": lambda m, x, c: np.repeat(mask[None], len(x), 0).astype(float),
               "far corner": lambda m, x, c: np.repeat(mask[None, ::-1, ::-1], len(x), 0) * 1.0,
               "saliency": lambda m, x, c: ch.saliency.saliency_maps(m, x, c)}
    rec = sanity.cue_recovery(model, methods, n=8)
    assert rec["on the mark"] == 1.0 and rec["far corner"] == 0.0
    hits = sanity.cue_recovery(model, {"saliency": methods["saliency"]}, n=8, per_image=True)
    assert hits["saliency"].shape == (8,) and rec["saliency"] == pytest.approx(hits["saliency"].mean())
    # by hand: the same images, the saliency peak on the mark grown by one pixel
    x, y, _ = ch.data.make_shapes(8, seed=ch.config.EVAL_SEED, classes=[sanity.SHORTCUT_CLASS])
    x = sanity.add_shortcut_mark(x, y)
    maps = ch.saliency.saliency_maps(model, x, y)
    grown = np.zeros((64, 64), bool)
    grown[1:8, 1:8] = True
    by_hand = [grown[np.unravel_index(np.argmax(m), m.shape)] for m in maps]
    # pointing_hit breaks ties by the centroid; the saliency maps have a single maximum
    assert np.mean(by_hand) == pytest.approx(rec["saliency"])


# --------------------------------------------------------------------------- the baselines
def _numpy_bump(h, w):
    """A Gaussian of sigma min(h, w) / 8 at pixel (h // 2, w // 2), one pixel at a time."""
    sigma = min(h, w) / 8
    out = np.empty((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = np.exp(-((y - h // 2) ** 2 + (x - w // 2) ** 2) / (2 * sigma ** 2))
    return out


def test_centre_map_is_the_lessons_gaussian_bump(tiny_model, course_model, shapes):
    images, labels, masks = shapes
    maps = sanity.centre_map(course_model, images[:5], labels[:5])
    assert maps.shape == (5, 64, 64) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, np.broadcast_to(_numpy_bump(64, 64), (5, 64, 64)), atol=1e-7)
    side = 64                                    # lesson 04's one line, as the notebook has it
    yy, xx = np.mgrid[:side, :side]
    lesson = np.exp(-((yy - side // 2) ** 2 + (xx - side // 2) ** 2) / (2 * (side / 8) ** 2))
    np.testing.assert_array_equal(maps[0], lesson.astype(np.float32))
    # one peak of 1 at the centre pixel, symmetric about it, sigma side/8: e^-1/2 at 8 pixels
    m = maps[0]
    assert np.unravel_index(np.argmax(m), m.shape) == (32, 32) and m[32, 32] == 1.0
    assert (m == m.max()).sum() == 1
    np.testing.assert_allclose(m[32, 32 - 8], np.exp(-0.5), rtol=1e-6)
    np.testing.assert_array_equal(m[1:, 1:], m[1:, 1:][::-1, ::-1])   # about (32, 32)
    np.testing.assert_array_equal(m, m.T)
    # the same inputs random_map takes: grayscale (n, H, W), a list, another size (not square)
    gray = np.zeros((3, 16, 16), np.float32)
    np.testing.assert_allclose(sanity.centre_map(tiny_model, gray, [0, 1, 2])[2],
                               _numpy_bump(16, 16), atol=1e-7)
    assert sanity.centre_map(tiny_model, list(images[:2]), labels[:2]).shape == (2, 64, 64)
    wide = sanity.centre_map(tiny_model, np.zeros((1, 12, 20, 3)), [0])[0]
    np.testing.assert_allclose(wide, _numpy_bump(12, 20), atol=1e-7)
    assert np.unravel_index(np.argmax(wide), wide.shape) == (6, 10)
    assert sanity.random_map(tiny_model, list(images[:2]), labels[:2]).shape == (2, 64, 64)


def test_centre_map_is_a_method_of_evaluate_explanations(course_model, shapes):
    images, labels, masks = shapes
    rows = sanity.evaluate_explanations(course_model, images[:3], labels[:3], masks[:3],
                                        {"centre bump": sanity.centre_map}, steps=4, progress=False)
    bump = _numpy_bump(64, 64)
    d = [sanity.deletion_curve(course_model, images[i], labels[i], bump, 4).auc for i in range(3)]
    assert rows[0]["deletion AUC"] == pytest.approx(np.mean(d))
    assert rows[0]["pointing game"] == pytest.approx(np.mean(masks[:3, 32, 32]))


@pytest.mark.parametrize("bad, error, match", [
    (None, TypeError, "images must be an array"),
    ("cat.png", TypeError, "images must be an array"),
    (np.zeros((64, 64, 3)), ValueError, r"one image use image\[None\]"),
    (np.zeros((64, 64)), ValueError, r"got shape \(64, 64\)"),
    (np.zeros((0, 8, 8, 3)), ValueError, "at least one image"),
    ([np.zeros((8, 8, 3)), np.zeros((9, 9, 3))], ValueError, "different sizes"),
])
def test_baseline_maps_refuse_what_is_not_a_batch(tiny_model, bad, error, match):
    for fn in (sanity.centre_map, sanity.random_map):
        with pytest.raises(error, match=match):
            fn(tiny_model, bad, [0])
    with pytest.raises(TypeError, match="model"):
        sanity.centre_map(None, np.zeros((1, 8, 8, 3)), [0])


# --------------------------------------------------------------------------- worse than a baseline
def test_worse_than_on_a_hand_made_table():
    # deletion: lower is better; insertion and the pointing game: higher is better
    rows = [{"method": "a", "deletion AUC": 0.2, "insertion AUC": 0.5, "pointing game": 0.9},
            {"method": "b", "deletion AUC": 0.6, "insertion AUC": 0.8, "pointing game": 0.3},
            {"method": "random map", "deletion AUC": 0.5, "insertion AUC": 0.6,
             "pointing game": 0.3},
            {"method": "c", "deletion AUC": 0.7, "insertion AUC": 0.4, "pointing game": 0.1}]
    assert sanity.worse_than(rows) == {"deletion AUC": ["b", "c"], "insertion AUC": ["a", "c"],
                                       "pointing game": ["c"]}           # b ties: not worse
    assert sanity.worse_than(rows, "a", ["pointing game"]) == {
        "pointing game": ["b", "random map", "c"]}
    assert sanity.worse_than(rows, "c", "deletion AUC") == {"deletion AUC": []}
    # a metric_table: the directions come from ch.sanity.METRICS
    table = [{"method": "x", "deletion (grey)": 0.6, "ROAD least relevant first": 0.7},
             {"method": "random map", "deletion (grey)": 0.5, "ROAD least relevant first": 0.6},
             {"method": "y", "deletion (grey)": 0.4, "ROAD least relevant first": 0.5}]
    chosen = {k: sanity.METRICS[k] for k in ("deletion (grey)", "ROAD least relevant first")}
    assert sanity.METRICS["deletion (grey)"][0] is False
    assert sanity.worse_than(table, "random map", chosen) == {
        "deletion (grey)": ["x"], "ROAD least relevant first": ["y"]}
    assert sanity.worse_than(table, metrics={"deletion (grey)": True}) == {"deletion (grey)": ["y"]}
    # the same answer as lesson 08's loop, written out, on every column of METRICS
    full = [{"method": m, **{k: v for k, v in zip(sanity.METRICS, vals)}}
            for m, vals in [("p", [.1, .9, .2, .8, .3, .7]), ("random map", [.5] * 6),
                            ("q", [.9, .1, .8, .2, .7, .3])]]
    loop = {}
    for metric, (higher, *_) in sanity.METRICS.items():
        loop[metric] = [r["method"] for r in full if r["method"] != "random map"
                        and (r[metric] < .5 if higher else r[metric] > .5)]
    assert sanity.worse_than(full, metrics=sanity.METRICS) == loop
    assert sanity.worse_than(full) == loop                  # the names alone say the directions
    assert sanity.worse_than(table, "random map") == {"deletion (grey)": ["x"],
                                                      "ROAD least relevant first": ["y"]}
    assert sum(map(len, loop.values())) == 6


@pytest.mark.parametrize("kwargs, error, match", [
    ({"baseline": "centre bump"}, ValueError,
     "'centre bump' is not among the methods: a, random map"),
    ({"metrics": ["accuracy"]}, ValueError, "higher 'accuracy' is better: it knows"),
    ({"metrics": {"deletion AUC": "lower"}}, TypeError, "True or False"),
    ({"metrics": ["insertion AUC"]}, ValueError, "no column 'insertion AUC'"),
])
def test_worse_than_errors(kwargs, error, match):
    rows = [{"method": "a", "deletion AUC": 0.2}, {"method": "random map", "deletion AUC": 0.5}]
    with pytest.raises(error, match=match):
        sanity.worse_than(rows, **kwargs)
    with pytest.raises(ValueError, match="more than once"):
        sanity.worse_than(rows + rows[1:])
    with pytest.raises(ValueError, match="non-empty list"):
        sanity.worse_than([])
    with pytest.raises(ValueError, match="finite numbers"):
        sanity.worse_than([{"method": "a", "deletion AUC": float("nan")}, rows[1]])
    with pytest.raises(ValueError, match="no column besides"):
        sanity.worse_than([{"method": "random map"}])
