"""course_helpers.occlusion (lesson 3.4): occlusion maps."""
import numpy as np
import pytest

import course_helpers as ch
from course_helpers import occlusion


def occluded_probability(model, image, c, y, x, patch, filler):
    img = image.copy()
    img[y:y + patch, x:x + patch] = filler[y:y + patch, x:x + patch]
    return float(model.predict(img[None], verbose=0)[0, c])


def test_positions_cover_every_pixel():
    assert occlusion.occlusion_positions(16, 6, 4) == [0, 4, 8, 10]
    assert occlusion.occlusion_positions(64, 16, 8) == [0, 8, 16, 24, 32, 40, 48]
    assert occlusion.occlusion_positions(10, 10, 3) == [0]


@pytest.mark.parametrize("patch,stride,fill", [(6, 4, 0.5), (5, 5, "black"), (8, 3, "blur")])
def test_occlusion_matches_a_plain_loop(tiny_model, rng, patch, stride, fill):
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    fast = occlusion.occlusion_map(tiny_model, image, 2, patch=patch, stride=stride, fill=fill,
                                   batch_size=7)
    if fill == "blur":
        from scipy.ndimage import gaussian_filter
        filler = np.stack([gaussian_filter(image[..., k], sigma=patch / 4, mode="nearest")
                           for k in range(3)], -1)
    else:
        filler = np.full_like(image, 0.5 if fill == 0.5 else 0.0)
    starts = list(range(0, 16 - patch + 1, stride))
    if starts[-1] != 16 - patch:
        starts.append(16 - patch)
    slow = [[occluded_probability(tiny_model, image, 2, y, x, patch, filler) for x in starts]
            for y in starts]
    np.testing.assert_allclose(fast, slow, atol=2e-3 if fill == "blur" else 1e-5)


def test_occlusion_on_course_cnn_matches_loop(course_model, shapes):
    image = shapes[0][4]
    fast = occlusion.occlusion_map(course_model, image, int(shapes[1][4]), patch=24, stride=20)
    starts = [0, 20, 40]
    filler = np.full_like(image, 0.5)
    slow = [[occluded_probability(course_model, image, int(shapes[1][4]), y, x, 24, filler)
             for x in starts] for y in starts]
    np.testing.assert_allclose(fast, slow, atol=1e-5)


def test_pixel_map_and_drop(tiny_model, rng):
    values = np.arange(4.0).reshape(2, 2)
    pm = occlusion.pixel_map(values, (10, 10), 6, 4)            # positions 0 and 4
    assert pm[0, 0] == 0 and pm[9, 9] == 3
    assert pm[5, 5] == pytest.approx(values.mean())             # covered by all four
    assert pm[0, 5] == pytest.approx(0.5)                       # covered by (0,0) and (0,1)
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    drop = occlusion.occlusion_drop(tiny_model, image, 1, patch=8, stride=8)
    base = float(tiny_model.predict(image[None], verbose=0)[0, 1])
    probs = occlusion.occlusion_map(tiny_model, image, 1, patch=8, stride=8)
    np.testing.assert_allclose(drop[:8, :8], base - probs[0, 0], atol=1e-5)


def test_occlusion_errors(tiny_model, rng):
    image = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="larger than the image"):
        occlusion.occlusion_map(tiny_model, image, 0, patch=17)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        occlusion.occlusion_map(tiny_model, image, 0, patch=4, stride=0)
    with pytest.raises(ValueError, match="between 0 and 2"):
        occlusion.occlusion_map(tiny_model, image, 3, patch=4)
    with pytest.raises(TypeError, match="integer"):
        occlusion.occlusion_map(tiny_model, image, "cat", patch=4)
    with pytest.raises(ValueError, match="Unknown fill"):
        occlusion.occlusion_map(tiny_model, image, 0, patch=4, fill="pink")
    with pytest.raises(ValueError, match="NaN"):
        occlusion.occlusion_map(tiny_model, np.full((16, 16, 3), np.nan, np.float32), 0, patch=4)


def test_covering_the_shape_hurts_more_than_covering_background(course_model):
    x, y, masks = ch.data.make_shapes(ch.scaled(40, 12), seed=11)
    on, off = [], []
    for img, label, mask in zip(x, y, masks):
        drop = occlusion.occlusion_drop(course_model, img, int(label), patch=12, stride=4)
        on.append(drop[mask].mean())
        off.append(drop[~mask].mean())
    assert np.mean(on) > np.mean(off) + 0.05


def test_explorer_draws_and_caches(course_model, shapes):
    import matplotlib.pyplot as plt

    box = occlusion.occlusion_explorer(course_model, {"a": shapes[0][0], "b": shapes[0][1]})
    assert box.state["figure"] is not None
    box.children[3].value = "black"
    assert "black" in box.state["figure"]._suptitle.get_text()
    plt.close("all")


def test_exercise_check_occlusion_count(capsys):
    # positions 0, 16, ..., 192: 13 per axis
    assert ch.exercises.check_occlusion_count(224, 32, 16, 169)
    assert not ch.exercises.check_occlusion_count(224, 32, 16, 196)
    assert not ch.exercises.check_occlusion_count(224, 32, 16, ...)
    assert "169" not in capsys.readouterr().out.split("❌")[-1]
