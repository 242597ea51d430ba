"""Lecture decks (`make slides`) that present offline, checked by reading them and in a real browser.

The decks are built once per session from executed notebooks: the copies tests/test_browser.py
keeps in test-artifacts/executed/ when their cells match the notebook (no second full run), else
the notebook runs here in quick mode up to and including its first explorer (the rest of the deck
then shows code without outputs).  Each deck is opened from disk in headless Chromium with the
network blocked (offline context, every request recorded): reveal.js must start, show the number
of slides its title states, move to the next slide, show an explorer's first picture in every
lesson that has an explorer, and nothing may leave the machine.  Screenshots go to
test-artifacts/slides/.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from course_helpers.tools import slides
from test_browser import EXECUTED, _require_browser, source_key

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHOTS = ROOT / "test-artifacts" / "slides"
TIMINGS = {}
EXPLORER_CALL = re.compile(r"_explorer\(")


def _first_explorer(nb):
    return next((i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and EXPLORER_CALL.search(c.source)), None)


def _executed(path):
    """The notebook with outputs: test_browser's copy if current, else run here (quick mode)
    up to and including its first explorer."""
    nb = nbformat.read(str(path), as_version=4)
    kept = EXECUTED / path.name
    if kept.is_file():
        try:
            copy = nbformat.reads(kept.read_text(), as_version=4)
        except Exception:   # a copy from an interrupted run: run the notebook here instead
            copy = None
        if copy is not None and copy.metadata.get("course_source_key") == source_key(
                json.loads(path.read_text())):
            return copy, "kept from test_browser"
    stop = _first_explorer(nb)
    if stop is None:
        return nb, "not executed (no explorer)"
    part = nbformat.from_dict(dict(nb, cells=nb.cells[:stop + 1]))
    try:
        slides.execute(part, path, timeout=600)
    except Exception as err:   # the notebook's own test reports it; the deck check names it
        return nb, f"FAILED to execute: {type(err).__name__}: {str(err)[-300:]}"
    nb.cells[:stop + 1] = part.cells
    return nb, f"executed here up to cell {stop}"


@pytest.fixture(scope="session")
def decks(tmp_path_factory):
    os.environ.setdefault("COURSE_QUICK", "1")
    out = tmp_path_factory.mktemp("decks")
    executed, how = {}, {}
    t0 = time.perf_counter()
    for path in NOTEBOOKS:
        t = time.perf_counter()
        executed[path], how[path.name] = _executed(path)
        TIMINGS[f"execute {path.name} ({how[path.name]})"] = time.perf_counter() - t
    t1 = time.perf_counter()
    written = slides.build_decks(out, notebooks=executed)
    TIMINGS["build all decks"] = time.perf_counter() - t1
    TIMINGS["decks fixture total"] = time.perf_counter() - t0
    print("\n".join(f"{k}: {v:.1f} s" for k, v in TIMINGS.items()))
    return {"dir": out, "decks": dict(zip(NOTEBOOKS, written)), "notebooks": executed, "how": how}


# ---------------------------------------------------------------- reading the decks

class _Refs(HTMLParser):
    """Every address an HTML page loads: script/img/iframe/source/embed src, link href,
    object data, CSS url() and @import (in <style> and style=""), module-script imports."""

    LOADS = {"script": "src", "img": "src", "iframe": "src", "source": "src", "embed": "src",
             "audio": "src", "video": "src", "track": "src", "link": "href", "object": "data"}

    def __init__(self):
        super().__init__()
        self.refs, self.scripts, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.LOADS and attrs.get(self.LOADS[tag]):
            self.refs.append(attrs[self.LOADS[tag]])
        if attrs.get("srcset"):
            self.refs += [part.split()[0] for part in attrs["srcset"].split(",") if part.strip()]
        if attrs.get("style"):
            self.refs += _css_refs(attrs["style"])
        self._in = tag if tag in ("style", "script") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self.refs += _css_refs(data)
        elif self._in == "script":
            self.scripts.append(data)
            self.refs += re.findall(r"""\bimport\b[^'"]*['"]([^'"]+)['"]""", data)


def _css_refs(css):
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)   # comments name web pages, load nothing
    return (re.findall(r"""url\(\s*['"]?([^'")]+)""", css)
            + re.findall(r"""@import\s+['"]([^'"]+)""", css))


def _remote(ref):
    return bool(re.match(r"^\s*(https?:)?//", ref, re.I)) or ref.strip().lower().startswith("ftp:")


def _parse(text):
    p = _Refs()
    p.feed(text)
    return p


def test_reveal_comes_from_an_installed_package(decks):
    src = slides.reveal_source()
    assert "site-packages" in str(src) or "dist-packages" in str(src)
    head = (src / "dist" / "reveal.js").read_text()[:200]
    assert re.search(r"reveal\.js 5\.\d", head) and "MIT" in head
    for rel in slides._REVEAL_FILES:
        if (src / rel).is_file():
            assert (decks["dir"] / "reveal.js" / rel).read_bytes() == (src / rel).read_bytes()
    css = (decks["dir"] / "reveal.js" / "dist" / "theme" / "white.css").read_text()
    for ref in _css_refs(css):   # the theme's fonts were copied too
        assert not _remote(ref) and (decks["dir"] / "reveal.js/dist/theme" / ref).exists(), ref


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_deck_loads_nothing_from_the_web(decks, path):
    text = decks["decks"][path].read_text(encoding="utf-8")
    page = _parse(text)
    remote = [r for r in page.refs if _remote(r)]
    assert not remote, f"{path.name}: the deck loads from the web: {remote[:5]}"
    local = [r for r in page.refs if not r.startswith("data:") and not r.startswith("#")]
    for ref in local:
        assert (decks["dir"] / ref).is_file(), f"{path.name}: {ref} is not beside the deck"
    assert "reveal.js/dist/reveal.js" in local
    assert not any(re.search(r"require|jquery|mermaid|html-manager|unpkg|cdnjs", r, re.I)
                   for r in page.refs), "a CDN loader is still in the deck"
    # MathJax: no lesson uses TeX in Markdown, so no deck loads or configures it
    if not slides.has_math(nbformat.read(str(path), as_version=4)):
        assert not any("mathjax" in s.lower() for s in page.scripts), f"{path.name}: MathJax in a script"
        assert not any("mathjax" in r.lower() for r in page.refs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_title_slide_states_the_number_of_slides(path):
    """Counted independently: the <section>s at the second level of the deck's HTML."""
    nb = nbformat.read(str(path), as_version=4)
    body, _ = slides.exporter().from_notebook_node(slides.deck_notebook(nb))

    class Sections(HTMLParser):
        depth, inner = 0, 0

        def handle_starttag(self, tag, attrs):
            if tag == "section":
                self.depth += 1
                self.inner += self.depth == 2

        def handle_endtag(self, tag):
            if tag == "section":
                self.depth -= 1

    counter = Sections()
    counter.feed(body)
    stated = re.search(r"This lecture: (\d+) slides", body)
    assert stated, f"{path.name}: the title slide does not state its number of slides"
    assert int(stated.group(1)) == counter.inner == slides.slide_count(slides.deck_notebook(nb))
    assert counter.inner > 1


def test_speaker_notes_rule_marks_and_is_idempotent():
    import nbformat.v4 as v4

    def md(src, kind="-", tags=()):
        c = v4.new_markdown_cell(src)
        c.metadata = {"slideshow": {"slide_type": kind}, **({"tags": list(tags)} if tags else {})}
        return c

    nb = v4.new_notebook(cells=[
        md("# Title", "slide"), md("Why does this work? Because ..."),
        md("> **Why the course needs two workarounds**"), md("From here on the lesson calls `x`."),
        md("**Hint:** look at the shape."), md("A plain paragraph."), md("## Why the first layer?", "slide"),
        md("Why, but on its own fragment", "fragment"), md("The lecturer says this.", tags=["notes"]),
        v4.new_code_cell("# Why comments in code stay")])
    assert slides.mark_notes(nb) == 5
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    assert kinds == ["slide", "notes", "notes", "notes", "notes", "-", "slide", "fragment", "notes", None]
    assert slides.mark_notes(nb) == 0                  # idempotent
    assert slides.slide_count(nb) == 2
    body, _ = slides.exporter().from_notebook_node(slides.deck_notebook(nb))
    notes = re.findall(r'<aside class="notes">(.*?)</aside>', body, flags=re.S)
    assert len(notes) == 5 and "Because" in notes[0] and "lecturer says" in notes[-1]
    assert "A plain paragraph" not in "".join(notes)


def test_explorer_display_carries_its_first_picture(monkeypatch):
    """The explorer's display holds the live widget and, for pages without a kernel, the PNG of
    its first draw (decoded and compared pixel size by pixel size) plus a caption naming the controls."""
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    import course_helpers as ch

    def draw(alpha, shape):
        fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
        ax.plot(np.arange(5) * alpha, "o" if shape == "dots" else "-")
        return fig

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append((a, k)))
    box = ch.widgets.interactive_plot(draw, alpha=(0, 3, 1), shape=["dots", "line"])
    box._course_shown = False
    shown.clear()
    box._ipython_display_()
    (bundle,), kw = shown[-1]
    assert kw.get("raw") is True
    assert slides.WIDGET_VIEW in bundle
    png = base64.b64decode(bundle["image/png"])
    assert png == box.state["png"]
    assert Image.open(io.BytesIO(png)).size == (150, 100)   # 3 x 2 inches at 50 dpi
    caption = kw["metadata"][slides.EXPLORER_KEY]["caption"]
    assert "alpha" in caption and "shape" in caption
    out = slides._static_output({"output_type": "display_data", "data": bundle,
                                 "metadata": kw["metadata"]})
    assert bundle["image/png"] in out["data"]["text/html"] and "<figcaption>" in out["data"]["text/html"]
    # a widget without a picture (a progress bar, an upload button) has nothing to show offline
    assert slides._static_output({"output_type": "display_data", "metadata": {},
                                  "data": {slides.WIDGET_VIEW: {}, "text/plain": "HBox()"}}) is None


# ---------------------------------------------------------------- in the browser, offline

@pytest.fixture(scope="module")
def offline_browser():
    chromium = _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage", "--host-resolver-rules=MAP * ~NOTFOUND"])
        yield browser
        browser.close()


def _explorer_lessons():
    return {p for p in NOTEBOOKS if _first_explorer(nbformat.read(str(p), as_version=4)) is not None}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_deck_presents_offline_in_chromium(decks, offline_browser, path):
    deck = decks["decks"][path]
    context = offline_browser.new_context(viewport={"width": 1280, "height": 800}, offline=True)
    requests, errors = [], []
    context.on("request", lambda r: requests.append(r.url))
    context.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(deck.as_uri())
        page.wait_for_function("() => window.Reveal && Reveal.isReady()")
        total = page.evaluate("() => Reveal.getTotalSlides()")
        stated = int(re.search(r"This lecture: (\d+) slides", page.inner_text(".slides")).group(1))
        assert total == stated > 1, f"{path.name}: reveal.js shows {total} slides, the title says {stated}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{path.stem}_title.png"))
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => Reveal.getIndices().h === 1")
        assert page.evaluate("() => Reveal.getCurrentSlide().innerText") != ""
        shown = "second"
        if path in _explorer_lessons():
            _check_explorer_picture(page, path, decks["how"][path.name])
            shown = "explorer"
        page.screenshot(path=str(SHOTS / f"{path.stem}_{shown}.png"))
        assert not errors, f"{path.name}: script errors: {errors[:3]}"
        left = [u for u in requests if not u.startswith(("file:", "data:"))]
        assert not left, f"{path.name}: requests left the machine: {left[:5]}"
    finally:
        context.close()


def _check_explorer_picture(page, path, how=""):
    assert not how.startswith("FAILED"), f"{path.name}: no outputs for its deck: {how}"
    found = page.evaluate(
        "() => { const f = document.querySelector('figure.course-explorer');"
        " if (!f) return null; const s = f.closest('section');"
        " const i = Reveal.getIndices(s); Reveal.slide(i.h, i.v); return i; }")
    assert found, f"{path.name}: no explorer picture in the deck"
    page.wait_for_function(
        "() => { const img = document.querySelector('section.present figure.course-explorer img');"
        " return img && img.complete && img.naturalWidth > 100; }")
    figure = page.locator("section.present figure.course-explorer").first
    # a long slide scrolls (only the slide, as a lecturer would scroll it)
    figure.evaluate("f => { const s = f.closest('section');"
                    " s.scrollTop += f.getBoundingClientRect().top - s.getBoundingClientRect().top - 40; }")
    page.wait_for_timeout(300)
    box = figure.locator("img").bounding_box()
    assert box and box["width"] > 100 and box["height"] > 30, f"{path.name}: the explorer picture is not shown"
    assert 0 <= box["y"] < 800 - 30, f"{path.name}: the explorer picture is off the screen ({box})"
    caption = figure.locator("figcaption").inner_text()
    assert caption.startswith("Explorer: in the notebook, change"), caption


def test_speaker_view_opens_with_notes(decks, offline_browser):
    """Press S on a slide with notes: reveal.js's speaker window opens and shows them."""
    path = next(p for p in NOTEBOOKS if '<aside class="notes">' in decks["decks"][p].read_text())
    context = offline_browser.new_context(viewport={"width": 1280, "height": 800}, offline=True)
    context.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(decks["decks"][path].as_uri())
        page.wait_for_function("() => window.Reveal && Reveal.isReady()")
        where = page.evaluate(
            "() => { const a = document.querySelector('aside.notes');"
            " const i = Reveal.getIndices(a.closest('section')); Reveal.slide(i.h, i.v);"
            " return Reveal.getSlideNotes(); }")
        assert where and where.strip()
        with context.expect_page() as popup:
            page.keyboard.press("s")
        speaker = popup.value
        speaker.wait_for_function(
            "() => { const n = document.querySelector('.speaker-controls-notes .value');"
            " return n && n.innerText.trim().length > 0; }")
        speaker.screenshot(path=str(SHOTS / "speaker_view.png"))
    finally:
        context.close()

