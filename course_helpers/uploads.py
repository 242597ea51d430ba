"""The learner's own pictures: an upload button that feeds a lesson's explorer.

Used in notebooks 01, 03, 04 and 07 ("Your own image") and 06 (``ch.style.upload_widget``).

* :func:`decode_upload` turns the bytes of an uploaded file into float32 RGB in [0, 1] (through
  ``ch.data.load_image`` and ``ch.data.resize_image``), or raises :class:`UploadError` with a
  message a learner can act on: not an image, cut off (truncated), too many pixels (a
  "decompression bomb": a small file that would unpack to gigabytes), too many bytes.
* :func:`upload_files` reads an ``ipywidgets.FileUpload`` value (ipywidgets 8: a tuple of dicts
  with ``name`` and ``content``; ipywidgets 7: a dict {name: {"content": ...}}).
* :func:`upload_explorer` is the widget: a button, a message line and, below, the lesson's
  explorer (``ch.activations.activation_explorer``, ``ch.saliency.saliency_explorer``,
  ``ch.occlusion.occlusion_explorer``, ``ch.kerasvis.kerasvis_explorer`` ...) run on the picture.
  Whatever the file, the widget shows a message, never a traceback.
"""
from __future__ import annotations

import html
import io
import warnings

import numpy as np

from . import _checks
from . import data as _data

#: Largest upload read, in bytes.  Below what JupyterLab carries by default: its server's
#: websocket (tornado's ``websocket_max_message_size``, 10 MiB unless configured) drops a
#: larger message, and the file never reaches the kernel (measured: 9 MB arrives, 12 MB does
#: not, and the button stops working until the page is reloaded).
MAX_BYTES = 9 * 2 ** 20
#: Largest image read, in pixels (width x height): 50 megapixels covers every phone camera;
#: beyond that the picture would take gigabytes of memory once decoded.
MAX_PIXELS = 50_000_000
#: Longest side kept when no size is asked for (``size=None``); larger pictures are shrunk.
MAX_SIDE = 2048
#: The file formats read.  Pillow knows more (EPS would start Ghostscript): these are the
#: formats a browser shows, so an upload that is a picture on screen is read here.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
#: What the upload button offers in the file dialog.
ACCEPT = ".png,.jpg,.jpeg,image/png,image/jpeg"


class UploadError(ValueError):
    """An uploaded file that cannot be used as an image; ``str(err)`` is the learner's message."""


def upload_files(value) -> list:
    """[(file name, bytes)] from an ``ipywidgets.FileUpload``, its ``value``, or a list of
    ``{"name", "content"}`` dicts.  ipywidgets 8's tuple and ipywidgets 7's dict both work."""
    value = getattr(value, "value", value)
    if isinstance(value, dict):   # ipywidgets 7: {name: {"metadata": ..., "content": bytes}}
        value = [dict(item, name=name) for name, item in value.items()]
    files = []
    for item in value or ():
        if not isinstance(item, dict) or "content" not in item:
            raise TypeError(f"Expected an ipywidgets FileUpload value (dicts with 'name' and "
                            f"'content'), got {item!r:.80}.")
        files.append((str(item.get("name") or f"upload {len(files)}"), bytes(item["content"])))
    return files


def _target(size):
    """``size`` as (height, width) of the result, or None."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        side = _checks.size("size", size)
        return side, side
    pair = tuple(size)
    if len(pair) != 2:
        raise ValueError(f"size must be an int or a pair (height, width), got {size!r}.")
    return tuple(_checks.size("size", s) for s in pair)


_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


def _too_many(name: str, width=None, height=None) -> "UploadError":
    size = "has" if width is None else f"is {width:,} x {height:,} pixels,"
    return UploadError(
        f"The uploaded file {name!r} {size} more than the {MAX_PIXELS:,} pixels this course "
        "reads (decoded, it could fill the memory); shrink it first, e.g. to 1000 pixels wide, "
        "and upload it again.")


def _damaged(name: str, fmt, cut: bool) -> "UploadError":
    why = "it is cut off (truncated)" if cut else "its data are damaged"
    return UploadError(f"The uploaded file {name!r} starts like a {fmt} image but {why}, so it "
                       "cannot be read. Upload the file again, or save it again as PNG or JPEG.")


def _open(data: bytes, name: str):
    """The file opened by Pillow (header read, pixels not yet decoded), or an UploadError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many(name) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        fmt = next((f for sig, f in _SIGNATURES.items() if data.startswith(sig)), None)
        if fmt:   # a PNG or JPEG whose header is cut off or broken
            raise _damaged(name, fmt, cut=True) from None
        raise UploadError(f"The uploaded file {name!r} is not an image that can be read (PNG, "
                          "JPEG, GIF, BMP or WebP); upload a PNG or JPEG.") from None


def _shrink_factor(wh, target) -> int:
    """By how much a (width, height) picture can be shrunk before the final resize: it keeps
    at least twice the pixels of ``target`` (height, width) on each axis, so the resize still
    averages; with no target, the longer side to at most ``MAX_SIDE``."""
    width, height = wh
    if target is None:
        return -(-max(width, height) // MAX_SIDE)
    return max(1, int(min(width / (2 * target[1]), height / (2 * target[0]))))


def _pixels(im, name: str, target):
    """Decode the opened image (shrunk on the way when it is much larger than needed)."""
    import struct
    import zlib

    from PIL import Image, ImageOps

    width, height = im.size
    if width * height > MAX_PIXELS:
        raise _too_many(name, width, height)
    if width < 1 or height < 1:
        raise UploadError(f"The uploaded file {name!r} has no pixels ({width} x {height}).")
    factor, fmt = _shrink_factor(im.size, target), im.format
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if fmt == "JPEG" and factor >= 2:   # decode at 1/2, 1/4 or 1/8 scale directly
                im.draft("RGB", (max(1, width // factor), max(1, height // factor)))
            im.load()
            im = ImageOps.exif_transpose(im)      # phone photos: turn them upright
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many(name, width, height) from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error) as err:
        cut = "truncat" in str(err).lower() or isinstance(err, EOFError)
        raise _damaged(name, fmt, cut) from None
    sixteen = im.mode.startswith("I")             # 16-bit PNG: values 0..65535
    if sixteen:
        im = im.convert("I")
    elif im.mode not in ("RGB", "RGBA", "L", "LA"):
        alpha = "A" in im.getbands() or "transparency" in im.info   # palette, CMYK ...
        im = im.convert("RGBA" if alpha else "RGB")
    step = _shrink_factor(im.size, target)
    if step >= 2:
        im = im.reduce(step)
    if sixteen:
        return np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0, 1)
    return im.copy()


def decode_upload(content, size=None, name: str = "upload") -> np.ndarray:
    """The bytes of an uploaded PNG or JPEG as a float32 RGB image in [0, 1].  Notebooks 01-07.

    ``size``: an int gives a centre-cropped square of that side, a pair (height, width) resizes
    to it, ``None`` keeps the picture (shrunk to at most ``MAX_SIDE`` pixels on its longer side).
    Grayscale, RGBA (over white), palette and 16-bit files are converted by
    ``ch.data.load_image``; phone photos are turned upright.  A file that is empty, too big
    (``MAX_BYTES``, ``MAX_PIXELS``), not an image, or truncated raises :class:`UploadError`
    whose text names the file and says what to do.
    """
    name = str(name)
    target = _target(size)
    try:
        data = bytes(content)
    except TypeError:
        raise TypeError(f"content must be the file's bytes, got {type(content).__name__}.") from None
    if not data:
        raise UploadError(f"The uploaded file {name!r} is empty (0 bytes); upload a PNG or JPEG.")
    if len(data) > MAX_BYTES:
        raise UploadError(f"The uploaded file {name!r} is {len(data) / 2 ** 20:.1f} MB, more "
                          f"than the {MAX_BYTES / 2 ** 20:.1f} MB this course reads; shrink it "
                          "first (e.g. save it as a JPEG 1000 pixels wide).")
    with _open(data, name) as im:
        pixels = _pixels(im, name, target)
    try:
        image = _data.load_image(pixels)
    except ValueError as err:
        raise UploadError(f"The uploaded file {name!r} could not be turned into an RGB image "
                          f"({err}). Save it again as PNG or JPEG.") from None
    if target is not None:
        image = _data.resize_image(image, target[0] if target[0] == target[1] else target)
    return image


def model_size(model):
    """The image size for ``model``: its input side (int) or (height, width); 224 for an
    axis of any size."""
    h, w = (n or 224 for n in _checks.input_size(model))
    return h if h == w else (h, w)


def upload_button(multiple: bool = False, description: str = "Your image", accept: str = ACCEPT):
    """An ``ipywidgets.FileUpload`` button for pictures (lesson 4.1's ``ch.style.upload_widget``
    and :func:`upload_explorer` use it)."""
    import ipywidgets as w

    return w.FileUpload(accept=accept, multiple=multiple, description=description)


def _message_html(text: str, ok: bool) -> str:
    colour = "#1a6e1a" if ok else "#b00020"
    return f'<span class="course-upload-message" style="color:{colour}">{html.escape(text)}</span>'


def upload_explorer(explorer, model, examples=None, **options):
    """Upload a PNG or JPEG and see it in a lesson's explorer.  Notebooks 01, 03, 04, 07.

    ``explorer`` is one of the package's explorers (or a tuple of them, drawn one below the
    other), called as ``explorer(model, images, **options)`` with ``images`` = {your file
    name: your picture at the model's input size} followed by ``examples`` (a dict of the
    lesson's images, to compare with), e.g.
    ``ch.uploads.upload_explorer(ch.saliency.saliency_explorer, model)``.

    Returns an ``ipywidgets.VBox``: the button, a message line and the explorer's output.
    ``box.receive(value)`` is the callback the button calls (a FileUpload value, or a list of
    ``{"name", "content"}`` dicts); ``box.state`` holds the latest ``message``, ``images``, the
    ``explorer`` box (the first) and ``explorers``, for tests.  A bad file only changes the message line.
    """
    import ipywidgets as w
    from IPython.display import display

    explorers = tuple(explorer) if isinstance(explorer, (list, tuple)) else (explorer,)
    if not explorers or not all(callable(e) for e in explorers):
        raise TypeError(f"explorer must be an explorer function such as "
                        f"ch.saliency.saliency_explorer (or a tuple of them), got {explorer!r:.60}.")
    _checks.model(model)
    size = model_size(model)
    shown = f"{size} x {size}" if isinstance(size, int) else f"{size[0]} x {size[1]}"
    if examples is not None and not isinstance(examples, dict):
        raise TypeError(f"examples must be a dict {{name: image}} of the lesson's images (or "
                        f"None), got {type(examples).__name__}.")
    examples = dict(examples or {})
    button = upload_button()
    message = w.HTML(_message_html(
        f"Upload a PNG or JPEG (at most {MAX_BYTES / 2 ** 20:.0f} MB): it is cut to a centre "
        f"square, shrunk to {shown} pixels (the model's input) and shown in an explorer below.",
        ok=True))
    output = w.Output()
    state = {"message": None, "images": None, "explorer": None, "explorers": [], "ok": None}

    def say(text, ok):
        state["message"], state["ok"] = text, ok
        message.value = _message_html(text, ok)

    def receive(value):
        try:
            files = upload_files(value)
            if not files:
                return
            name, content = files[-1]
            image = decode_upload(content, size=size, name=name)
        except (UploadError, TypeError) as err:
            return say(str(err), ok=False)
        except Exception as err:   # noqa: BLE001  (a learner sees a message, never a traceback)
            return say(f"The file could not be read ({type(err).__name__}: {err}); upload a "
                       "PNG or JPEG.", ok=False)
        images = {name: image} | {k: v for k, v in examples.items() if k != name}
        output.clear_output(wait=True)
        try:
            with output:
                state["explorers"] = [e(model, images, **options) for e in explorers]
            state["explorer"] = state["explorers"][0]
        except Exception as err:   # noqa: BLE001
            output.clear_output()
            return say(f"{name!r} was read, but the explorer failed on it "
                       f"({type(err).__name__}: {err}).", ok=False)
        state["images"] = images
        say(f"{name}: read, cut to a centre square and shrunk to {shown} pixels (the model's "
            f"input); it is in the explorer{'s' if len(explorers) > 1 else ''} below.", ok=True)

    button.observe(lambda change: receive(change["new"]), names="value")
    box = _box_class()([button, message, output])
    box.add_class("course-upload")
    box.receive, box.state, box.upload, box.message, box.output = (receive, state, button,
                                                                   message, output)
    display(box)
    return box


_BOX = []


def _box_class():
    """A VBox that shows itself once, like the explorers: the widget displays itself, and
    returning it as a cell's last value must not draw a second copy."""
    if not _BOX:
        import ipywidgets as w

        class UploadBox(w.VBox):
            _course_shown = False

            def _ipython_display_(self, **kwargs):
                if self._course_shown:
                    return
                self._course_shown = True
                from IPython.display import display

                display(self._repr_mimebundle_(**kwargs), raw=True)

        _BOX.append(UploadBox)
    return _BOX[0]
