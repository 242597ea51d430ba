"""course_helpers.data: generated shapes, real photos, the image loader."""
import numpy as np
import pytest

from course_helpers import data


def test_make_shapes_types_ranges_and_masks():
    x, y, m = data.make_shapes(40, seed=5, size=48)
    assert x.shape == (40, 48, 48, 3) and x.dtype == np.float32
    assert y.shape == (40,) and np.issubdtype(y.dtype, np.integer)
    assert m.shape == (40, 48, 48) and m.dtype == bool
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) <= set(range(len(data.SHAPE_CLASSES)))
    assert len(data.SHAPE_CLASSES) >= 6
    # every image has an object, and it never fills the frame
    cover = m.mean(axis=(1, 2))
    assert cover.min() > 0.02 and cover.max() < 0.6


def test_mask_marks_the_drawn_shape():
    # The object is one flat colour (up to shading and noise); the background is a texture.
    # So inside the mask pixels are close to their median, much more than outside.
    from scipy.ndimage import binary_erosion

    x, y, m = data.make_shapes(30, seed=9)
    for img, mask in zip(x, m):
        inner = binary_erosion(mask, iterations=2)
        assert inner.sum() >= 10
        fg = img[inner]
        colour = np.median(fg, axis=0)
        spread_in = np.abs(fg - colour).mean()
        outside = np.abs(img[~mask] - colour).mean()
        assert spread_in < 0.12
        assert outside > 2 * spread_in


def test_make_shapes_is_deterministic_and_seeded():
    a = data.make_shapes(10, seed=1)
    b = data.make_shapes(10, seed=1)
    c = data.make_shapes(10, seed=2)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c[0])


def test_classes_are_balanced_and_backgrounds_carry_no_label():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    x, y, m = data.make_shapes(900, seed=11, size=32)
    counts = np.bincount(y, minlength=len(data.SHAPE_CLASSES))
    assert counts.min() > 0.6 * counts.mean()
    # Colour statistics of the background alone must not predict the class.
    feats = []
    for img, mask in zip(x, m):
        bg = img[~mask]
        feats.append(np.concatenate([bg.mean(0), bg.std(0)]))
    score = cross_val_score(LogisticRegression(max_iter=2000), np.array(feats), y, cv=3).mean()
    assert score < 1 / len(data.SHAPE_CLASSES) + 0.08


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        data.make_shapes(-1)
    with pytest.raises(ValueError, match="size"):
        data.make_shapes(2, size=4)


def test_sample_images():
    photos = data.sample_images(size=64)
    for name in ("cat", "coffee", "astronaut", "rocket", "china", "flower"):
        assert photos[name].shape == (64, 64, 3)
        assert photos[name].dtype == np.float32
        assert 0 <= photos[name].min() and photos[name].max() <= 1
        assert photos[name].std() > 0.05  # a real picture, not a blank
    tex = data.textures(size=40)
    assert set(tex) == set(data.TEXTURE_NAMES)


@pytest.mark.parametrize("make", [
    lambda r: r.random((17, 23)),                                   # greyscale, odd size
    lambda r: r.random((17, 23, 1)),
    lambda r: (r.random((17, 23, 3)) * 255).astype(np.uint8),        # uint8
    lambda r: r.random((17, 23, 3)) * 255.0,                         # float 0..255
    lambda r: np.concatenate([r.random((17, 23, 3)), np.ones((17, 23, 1))], -1),  # RGBA
])
def test_load_image_converts_arrays(make, rng):
    img = data.load_image(make(rng))
    assert img.shape == (17, 23, 3) and img.dtype == np.float32
    assert 0 <= img.min() and img.max() <= 1


def test_load_image_values():
    grey = np.array([[0, 128], [255, 64]], np.uint8)
    out = data.load_image(grey)
    np.testing.assert_allclose(out[..., 0], grey / 255.0, atol=1e-6)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    rgba = np.zeros((2, 2, 4), np.float32)
    rgba[..., 0] = 1.0
    rgba[0, 0, 3] = 1.0  # opaque red; the others fully transparent -> white
    out = data.load_image(rgba)
    np.testing.assert_allclose(out[0, 0], [1, 0, 0])
    np.testing.assert_allclose(out[1, 1], [1, 1, 1])


def test_load_image_from_files_and_pil(tmp_path, rng):
    from PIL import Image

    arr = (rng.random((30, 41, 3)) * 255).astype(np.uint8)
    path = tmp_path / "pic.png"
    Image.fromarray(arr).save(path)
    np.testing.assert_allclose(data.load_image(path), arr / 255.0, atol=1e-6)
    np.testing.assert_allclose(data.load_image(str(path)), arr / 255.0, atol=1e-6)
    np.testing.assert_allclose(data.load_image(Image.fromarray(arr)), arr / 255.0, atol=1e-6)
    sq = data.load_image(path, size=16)
    assert sq.shape == (16, 16, 3)
    assert data.load_image(path, size=(10, 20)).shape == (10, 20, 3)


def test_load_image_errors(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        data.load_image(missing)
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="corrupt.png"):
        data.load_image(bad)
    with pytest.raises(ValueError, match="NaN"):
        data.load_image(np.full((4, 4, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="channels"):
        data.load_image(np.zeros((4, 4, 5)))
    with pytest.raises(ValueError, match="shape"):
        data.load_image(np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError):
        data.load_image(np.full((4, 4), -3.0))
