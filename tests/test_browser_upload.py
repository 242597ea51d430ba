"""Your own picture in real JupyterLab (headless Chromium): upload a file into ch.uploads' widget.

The test writes a two-cell notebook under test-artifacts/ (not committed), runs it in the
JupyterLab that tests/test_browser.py starts, clicks the upload button, hands a PNG to the
browser's file dialog and waits for the explorer's picture; then a text file and a file over
the size limit, which must show the widget's message, not an error. Skips without Chromium unless COURSE_REQUIRE_BROWSER=1
(test_browser.py's rule).
"""
from __future__ import annotations

import io
import secrets
import shutil
import time

import nbformat
import numpy as np
import pytest
from PIL import Image

from test_browser import ROOT, _errors, _open, _run_all, _screenshot, lab  # noqa: F401  (lab: fixture)

CELLS = [
    "import course_helpers as ch\n"
    "ch.setup_notebook(seed=0)\n"
    "model = ch.models.load_model('course-cnn')",
    "ch.uploads.upload_explorer(ch.activations.activation_explorer, model)",
]


@pytest.fixture
def upload_notebook(tmp_path):
    folder = ROOT / "test-artifacts" / f"upload-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(folder / "upload.ipynb"))
    good = tmp_path / "my photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (150, 200, 3)).astype(np.uint8)).save(good)
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    # over the widget's limit, under the 10 MiB a default JupyterLab websocket carries
    big = tmp_path / "big.png"
    big.write_bytes(good.read_bytes() + rng.bytes(int(9.5 * 2 ** 20)))
    yield folder.relative_to(ROOT) / "upload.ipynb", good, bad, big
    shutil.rmtree(folder, ignore_errors=True)


def _open_path(lab, rel):
    return _open(lab, rel.name, rel.parent.as_posix())


def _upload(page, path):
    button = page.locator(".course-upload button.widget-upload").first
    button.scroll_into_view_if_needed()
    with page.expect_file_chooser() as chooser:
        button.click()
    chooser.value.set_files(str(path))


def _message(page):
    return page.locator(".course-upload .course-upload-message").first.inner_text()


def _wait_for(page, what, check, timeout_s=60):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if check():
            return
        page.wait_for_timeout(300)
    pytest.fail(f"{what}; message shown: {_message(page)!r}")


def test_upload_a_picture_and_a_bad_file(lab, upload_notebook):  # noqa: F811
    rel, good, bad, big = upload_notebook
    page = _open_path(lab, rel)
    try:
        _run_all(page, rel.name)
        page.wait_for_selector(".course-upload button.widget-upload", timeout=60_000)
        assert "Upload a PNG or JPEG (at most 9 MB)" in _message(page)
        pictures = page.locator(".course-upload .widget-interact img")
        assert pictures.count() == 0

        _upload(page, good)
        _wait_for(page, "the explorer's picture never appeared after the upload",
                  lambda: pictures.count() > 0 and "my photo.png: read" in _message(page))
        src = pictures.first.get_attribute("src") or ""
        assert src.startswith("data:image/png") or src.startswith("blob:"), src[:40]
        menu = page.locator(".course-upload .widget-interact select").first
        assert menu.evaluate("s => s.value") == "my photo.png"

        _upload(page, bad)
        _wait_for(page, "the bad file's message never appeared",
                  lambda: "'notes.txt' is not an image" in _message(page))
        colour = page.locator(".course-upload .course-upload-message").first.evaluate(
            "e => getComputedStyle(e).color")
        assert colour == "rgb(176, 0, 32)"                  # the message is shown in red
        assert pictures.count() > 0, "a bad file must leave the explorer as it was"

        _upload(page, big)
        _wait_for(page, "the too-large file's message never appeared",
                  lambda: "'big.png' is 9." in _message(page)
                  and "MB, more than the 9.0 MB this course reads" in _message(page))
        assert pictures.count() > 0
        assert not _errors(page), "an upload must never show a traceback"
        _screenshot(page, "upload_widget")
    finally:
        page.close()
