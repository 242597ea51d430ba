"""The learner's own picture: ch.uploads decodes uploaded bytes and feeds a lesson's explorer.

The widget's callback is driven the way the browser drives it (``FileUpload.set_state`` with
the JSON the front end sends); every bad file must end as a message in the widget, not an
exception.  Expected pixels come from how the test images were drawn, not from the package.
"""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import course_helpers as ch

U = ch.uploads
BLOCK = 16                      # the test picture: a 4 x 4 grid of flat 16-px blocks
COLOURS = np.random.default_rng(5).integers(0, 256, (4, 4, 3)).astype(np.uint8)
RED = np.array([255, 0, 0], np.uint8)


def _picture(margin=32):
    """A 64 x (64 + 2 margin) picture: the grid in the centre square, red margins left and right."""
    grid = np.kron(COLOURS, np.ones((BLOCK, BLOCK, 1), np.uint8))
    side = np.broadcast_to(RED, (grid.shape[0], margin, 3))
    return np.concatenate([side, grid, side], axis=1)


def _encode(arr, fmt="PNG", mode=None, **kw):
    buf = io.BytesIO()
    im = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _front_end(name, content, kind="image/png"):
    """The JSON the browser sends for one uploaded file (ipywidgets 8)."""
    return {"value": [{"name": name, "type": kind, "size": len(content),
                       "content": memoryview(content), "last_modified": 1700000000000}]}


def _block_interiors(image, blocks=4, inset=2):
    """The mean colour of each block's interior (away from the edges the resize blurs)."""
    b = image.shape[0] // blocks
    return np.array([[image[i * b + inset:(i + 1) * b - inset, j * b + inset:(j + 1) * b - inset]
                      .reshape(-1, 3).mean(0) for j in range(blocks)] for i in range(blocks)])


def _png_header_claiming(width, height):
    """A valid little PNG whose IHDR (with its CRC) claims ``width`` x ``height`` pixels."""
    real = _encode(np.zeros((4, 4, 3), np.uint8))
    body = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    return real[:8] + chunk + real[8 + 25:]


class Spy:
    """An explorer stand-in that records what it was given."""

    def __init__(self):
        self.calls = []

    def __call__(self, model, images, **options):
        self.calls.append((model, dict(images), options))
        return "explorer box"


@pytest.fixture
def spy_box(course_model):
    spy = Spy()
    box = U.upload_explorer(spy, course_model, examples={"lesson image": np.zeros((64, 64, 3))})
    return spy, box


# --------------------------------------------------------------------------- decode_upload
@pytest.mark.parametrize("fmt, tol", [("PNG", 1.5 / 255), ("JPEG", 10 / 255)])
def test_decode_crops_the_centre_square_and_resizes(fmt, tol):
    pic = _picture()
    img = U.decode_upload(_encode(pic, fmt, quality=95) if fmt == "JPEG" else _encode(pic, fmt),
                          size=32, name=f"x.{fmt.lower()}")
    assert img.shape == (32, 32, 3) and img.dtype == np.float32
    assert np.abs(_block_interiors(img, inset=1) - COLOURS / 255).max() < tol
    red = np.all(np.abs(img - RED / 255) < 0.1, axis=-1)
    assert not red.any(), "the red margins lie outside the centre square"


def test_decode_converts_rgba_grey_palette_and_16_bit():
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = (200, 100, 0)
    rgba[..., 3] = 51                                       # alpha 0.2, over white
    got = U.decode_upload(_encode(rgba), size=8)
    a = 51 / 255
    np.testing.assert_allclose(got, np.broadcast_to(np.array([200, 100, 0]) / 255 * a + (1 - a),
                                                    (8, 8, 3)), atol=1e-5)
    grey = np.full((30, 10), 77, np.uint8)
    np.testing.assert_allclose(U.decode_upload(_encode(grey), size=(12, 6)), 77 / 255, atol=1e-5)
    assert U.decode_upload(_encode(grey), size=(12, 6)).shape == (12, 6, 3)
    palette = U.decode_upload(_encode(_picture(), mode="P"), size=64)
    assert np.abs(_block_interiors(palette) - COLOURS / 255).max() < 0.1
    sixteen = np.full((16, 16), 3 * 65535 // 4, np.uint16)
    np.testing.assert_allclose(U.decode_upload(_encode(sixteen), size=4), 0.75, atol=1e-4)


def test_decode_turns_phone_photos_upright_and_shrinks_big_ones():
    arr = np.zeros((40, 80, 3), np.uint8)
    arr[:, :40] = 255                                       # left half white
    exif = Image.Exif()
    exif[0x0112] = 6                                        # "rotate 90 degrees clockwise to view"
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", exif=exif, quality=95)
    upright = U.decode_upload(buf.getvalue())
    assert upright.shape == (80, 40, 3)
    assert upright[:30].mean() > 0.9 and upright[50:].mean() < 0.1   # white half now on top
    big = _encode(np.full((U.MAX_SIDE + 10, 30, 3), 9, np.uint8))
    assert max(U.decode_upload(big).shape[:2]) <= U.MAX_SIDE


@pytest.mark.parametrize("content, pattern", [
    (b"just some notes", r"'f' is not an image that can be read .* upload a PNG or JPEG"),
    (b"", r"'f' is empty \(0 bytes\)"),
    (b"GIF89a" + b"\0" * 5, r"'f' is not an image"),
    (b"\xff\xd8\xff" + b"\0" * 20, r"starts like a JPEG image but it is cut off"),
])
def test_decode_refuses_non_images_with_a_message(content, pattern):
    with pytest.raises(U.UploadError, match=pattern):
        U.decode_upload(content, size=64, name="f")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_decode_refuses_truncated_files(fmt):
    noisy = np.random.default_rng(0).integers(0, 256, (120, 120, 3)).astype(np.uint8)
    data = _encode(noisy, fmt)
    for cut in (len(data) // 2, 60):
        with pytest.raises(U.UploadError, match=f"'cut' starts like a {fmt} image but it is cut off"):
            U.decode_upload(data[:cut], size=64, name="cut")


@pytest.mark.parametrize("width, height", [(9000, 9000), (100_000, 100_000), (U.MAX_PIXELS + 1, 1)])
def test_decode_refuses_too_many_pixels_before_decoding(width, height):
    header = _png_header_claiming(width, height)
    assert len(header) < 200   # a few bytes that would unpack to gigabytes
    with pytest.raises(U.UploadError, match=r"'bomb.png'.*more than the 50,000,000 pixels"):
        U.decode_upload(header, size=64, name="bomb.png")


def test_decode_refuses_too_many_bytes(monkeypatch):
    monkeypatch.setattr(U, "MAX_BYTES", 1000)
    data = _encode(np.random.default_rng(1).integers(0, 256, (40, 40, 3)).astype(np.uint8))
    assert len(data) > 1000
    with pytest.raises(U.UploadError, match=r"'f' is .* MB, more than the .* MB this course reads"):
        U.decode_upload(data, name="f")


def test_upload_files_reads_both_ipywidgets_formats():
    v8 = U.upload_button()
    v8.set_state(_front_end("a.png", b"abc"))
    assert U.upload_files(v8) == [("a.png", b"abc")]
    assert U.upload_files({"b.jpg": {"metadata": {}, "content": b"xy"}}) == [("b.jpg", b"xy")]
    assert U.upload_files(()) == []
    with pytest.raises(TypeError, match="FileUpload value"):
        U.upload_files(["not a file"])


# --------------------------------------------------------------------------- the widget
def test_good_png_and_jpeg_reach_the_explorer_resized(spy_box, course_model):
    spy, box = spy_box
    for name, data in (("mine.png", _encode(_picture())), ("mine.jpg", _encode(_picture(), "JPEG",
                                                                                quality=95))):
        box.upload.set_state(_front_end(name, data))
        model, images, _ = spy.calls[-1]
        assert model is course_model
        assert list(images) == [name, "lesson image"]      # the upload first, then the lesson's
        assert images[name].shape == (64, 64, 3) and images[name].dtype == np.float32
        assert np.abs(_block_interiors(images[name]) - COLOURS / 255).max() < 10 / 255
        assert box.state["ok"] and box.state["message"].startswith(f"{name}: read")
        assert "64 x 64 pixels" in box.state["message"]
        assert box.state["explorer"] == "explorer box"
        assert "course-upload-message" in box.message.value and name in box.message.value
    assert len(spy.calls) == 2


def test_rgba_and_grey_uploads_are_converted(spy_box):
    spy, box = spy_box
    rgba = np.dstack([np.full((50, 70, 3), 10, np.uint8), np.full((50, 70), 255, np.uint8)])
    box.upload.set_state(_front_end("alpha.png", _encode(rgba)))
    np.testing.assert_allclose(spy.calls[-1][1]["alpha.png"], 10 / 255, atol=1e-5)
    box.upload.set_state(_front_end("grey.png", _encode(np.full((90, 90), 128, np.uint8))))
    got = spy.calls[-1][1]["grey.png"]
    assert got.shape == (64, 64, 3)
    np.testing.assert_allclose(got, 128 / 255, atol=1e-5)


@pytest.mark.parametrize("name, content, text", [
    ("notes.txt", b"hello, not a picture", "'notes.txt' is not an image that can be read"),
    ("half.png", _encode(np.random.default_rng(2).integers(0, 256, (80, 80, 3)).astype(np.uint8)
                         )[:3000], "'half.png' starts like a PNG image but it is cut off"),
    ("bomb.png", _png_header_claiming(100_000, 100_000), "'bomb.png' has more than the 50,000,000"),
    ("big.png", _png_header_claiming(8000, 8000), "'big.png' is 8,000 x 8,000 pixels, more than the 50,000,000"),
])
def test_bad_files_show_a_message_and_keep_the_explorer(spy_box, name, content, text):
    spy, box = spy_box
    box.upload.set_state(_front_end("good.png", _encode(_picture())))
    shown = box.state["images"]
    box.upload.set_state(_front_end(name, content))         # must not raise
    assert box.state["ok"] is False and text in box.state["message"]
    assert "upload" in box.state["message"].lower() or "shrink" in box.state["message"]
    assert "color:#b00020" in box.message.value               # shown, in red
    assert "Traceback" not in box.state["message"]
    assert len(spy.calls) == 1 and box.state["images"] is shown   # the explorer is untouched


def test_a_failing_explorer_is_a_message_too(course_model):
    def broken(model, images):
        raise ValueError("no such layer 'conv9'")

    box = U.upload_explorer(broken, course_model)
    box.receive([{"name": "ok.png", "content": _encode(_picture())}])
    assert box.state["ok"] is False
    assert "'ok.png' was read, but the explorer failed" in box.state["message"]
    assert "no such layer 'conv9'" in box.state["message"]


def test_upload_explorer_checks_its_arguments(course_model):
    with pytest.raises(TypeError, match="explorer must be an explorer function"):
        U.upload_explorer("saliency", course_model)
    with pytest.raises(TypeError, match="model"):
        U.upload_explorer(Spy(), None)
    with pytest.raises(TypeError, match="examples must be a dict"):
        U.upload_explorer(Spy(), course_model, examples=[np.zeros((64, 64, 3))])


@pytest.mark.parametrize("explorer, menu", [("filters.kernel_explorer", "photo"),
                                           ("activations.activation_explorer", "image"),
                                           ("saliency.saliency_explorer", "image"),
                                           ("occlusion.occlusion_explorer", "image"),
                                           ("kerasvis.kerasvis_explorer", "image")])
def test_lesson_explorers_draw_the_upload(course_model, explorer, menu):
    """The explorers of the notebooks' "Your own image" sections start on the upload."""
    module, name = explorer.split(".")
    box = U.upload_explorer(getattr(getattr(ch, module), name), course_model)
    pic = _picture()
    box.upload.set_state(_front_end("mine.png", _encode(pic)))
    assert box.state["ok"], box.state["message"]
    inner = box.state["explorer"]
    assert inner.state["values"][menu] == "mine.png"
    assert inner.state["png"][:8] == b"\x89PNG\r\n\x1a\n"
    expected = ch.data.load_image(pic, size=64)              # the explorer's picture is ours
    np.testing.assert_allclose(box.state["images"]["mine.png"], expected, atol=2 / 255)


def test_two_explorers_both_get_the_upload(course_model):
    first, second = Spy(), Spy()
    box = U.upload_explorer((first, second), course_model)
    box.upload.set_state(_front_end("two.png", _encode(_picture())))
    assert box.state["ok"] and "in the explorers below" in box.state["message"]
    assert [list(s.calls[-1][1]) for s in (first, second)] == [["two.png"], ["two.png"]]
    assert box.state["explorers"] == ["explorer box", "explorer box"]
