"""Offline lecture decks: one reveal.js deck per notebook that presents with no network.

    python -m course_helpers.tools.slides slides/ --execute      # what `make slides` runs
    python -m course_helpers.tools.slides --mark-notes           # apply the speaker-notes rule

What makes a deck work offline:

* reveal.js 5 comes from an installed package (the distribution inside the ``sphinx-revealjs``
  wheel, MIT) and is copied into ``<out>/reveal.js/`` beside the decks; the course's own template
  (below) starts it with two plain ``<script>`` tags, so neither require.js nor jQuery is needed,
  and no widget manager, Mermaid or MathJax is loaded from a CDN;
* every explorer's output is its first picture (the PNG that ``ch.widgets`` puts into the
  explorer's display), shown as a figure whose caption names the controls; other widgets
  (progress bars, upload buttons) have nothing to show without a kernel and are left out;
* pictures in Markdown that live on the web (the Colab and Binder badges) become text links.

Speaker notes: a Markdown cell is a reveal.js note (its slide type is "notes": shown in the
speaker view, press S, not on the slide) when it is tagged ``notes`` or, unless its slide type
says otherwise, when it opens with *Why*, *Hint* or *From here on* (the "why" paragraphs, the
exercise hints, the hand-over from plain code to the package).  :func:`mark_notes` writes that
rule into a notebook; decks apply it to their copy too.  In a deck, a ``###`` section opens a
slide of its own below its ``##`` slide.  Each deck's title slide states its number of slides.
"""
from __future__ import annotations

import argparse
import copy
import html
import re
import shutil
import sys
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
REVEAL_DIR = "reveal.js"
THEME = "white"
EXPLORER_KEY = "course_explorer"      # display metadata that ch.widgets puts on an explorer
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTES_TAG = "notes"
NOTES_OPENINGS = re.compile(r"^\s*(>\s*)?(\*\*|_)?(why\b|hint\b|from here on\b)", re.I)

#: files of the reveal.js distribution a deck loads (paths inside it)
_REVEAL_FILES = ("LICENSE", "dist/reveal.js", "dist/reveal.css", f"dist/theme/{THEME}.css",
                 "dist/theme/fonts/source-sans-pro", "plugin/notes/notes.js")

_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
<style type="text/css">
figure.course-explorer { margin: 0.3em 0; text-align: center; }
figure.course-explorer img { max-width: 100%; }
figure.course-explorer figcaption { font-size: 0.8em; font-style: italic; }
</style>
{%- endblock html_head_css -%}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
(function () {
  // a slide taller than the screen scrolls (what nbconvert's reveal_scroll does, without jQuery)
  function scrollLongSlides() {
    var limit = document.querySelector('.reveal').offsetHeight * 0.95;
    document.querySelectorAll('.reveal .slides section.present section').forEach(function (s) {
      if (s.scrollHeight > limit) {
        s.style.height = 'calc(95vh)';
        s.style.overflowY = 'scroll';
        s.style.marginTop = '20px';
      }
    });
  }
  Reveal.initialize({
    controls: true, progress: true, history: true, slideNumber: 'c/t',
    transition: "{{ resources.reveal.transition | default('slide', true) }}",
    width: {{ resources.reveal.width | default('960', true) }},
    height: {{ resources.reveal.height | default('700', true) }},
    plugins: [RevealNotes]
  }).then(scrollLongSlides);
  Reveal.on('slidechanged', scrollLongSlides);
})();
</script>
{% endblock footer_js %}
"""


def reveal_source() -> Path:
    """The reveal.js distribution of the installed ``sphinx-revealjs`` package."""
    try:
        import sphinx_revealjs
    except ImportError as err:
        raise RuntimeError("decks need reveal.js from the sphinx-revealjs package: "
                           "pip install -e '.[lab]' (or `make install`)") from err
    root = Path(sphinx_revealjs.__file__).parent / "_static" / "revealjs"
    missing = [f for f in _REVEAL_FILES if not (root / f).exists()]
    if missing:
        raise RuntimeError(f"sphinx-revealjs at {root} lacks {missing}: reinstall it "
                           "(pip install --force-reinstall sphinx-revealjs)")
    return root


def copy_reveal(out_dir) -> Path:
    """Copy the reveal.js files a deck needs into ``out_dir/reveal.js`` (present there offline)."""
    src, dest = reveal_source(), Path(out_dir) / REVEAL_DIR
    for rel in _REVEAL_FILES:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if (src / rel).is_dir():
            shutil.copytree(src / rel, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(src / rel, target)
    return dest


def _slide_type(cell) -> str:
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type", "-") or "-"


def is_note(cell) -> bool:
    """The speaker-notes rule (see the module's docstring) for one cell."""
    if cell["cell_type"] != "markdown":
        return False
    kind = _slide_type(cell)
    if kind == "notes" or NOTES_TAG in cell.get("metadata", {}).get("tags", []):
        return True
    return kind == "-" and bool(NOTES_OPENINGS.match(cell["source"]))


def mark_notes(nb) -> int:
    """Give every cell that :func:`is_note` picks the slide type "notes"; how many changed.
    Idempotent: a second call changes nothing."""
    changed = 0
    for cell in nb.cells:
        if is_note(cell) and _slide_type(cell) != "notes":
            cell.setdefault("metadata", {})["slideshow"] = {"slide_type": "notes"}
            changed += 1
    return changed


def slide_count(nb) -> int:
    """How many slides reveal.js shows for ``nb`` (nbconvert's rule: the first cell that is neither
    skipped nor a note opens the first slide, every later "slide" or "subslide" cell one more)."""
    kinds = [_slide_type(c) for c in nb.cells if _slide_type(c) not in ("skip", "notes")]
    return (1 + sum(k in ("slide", "subslide") for k in kinds[1:])) if kinds else 0


_BADGE = re.compile(r"\[!\[([^\]]*)\]\((https?://[^)\s]*)\)\]\(([^)\s]*)\)")
_REMOTE_IMAGE = re.compile(r"!\[([^\]]*)\]\((https?://[^)\s]*)\)")


def _offline_markdown(source: str) -> str:
    """Markdown pictures from the web become links (a badge becomes a link to its target)."""
    source = re.sub(r"(\]\([^)\s]*\)\]\([^)\s]*\))[ \t]+(?=\[!\[)", r"\1 · ", source)  # badge, badge
    source = _BADGE.sub(lambda m: f"[{m.group(1)}]({m.group(3)})", source)
    return _REMOTE_IMAGE.sub(lambda m: f"[{m.group(1) or 'picture'}]({m.group(2)})", source)


def explorer_figure(png_b64: str, caption: str) -> str:
    """HTML of an explorer's first picture with its caption (what a deck shows for it)."""
    text = html.escape(caption)
    return (f'<figure class="course-explorer"><img src="data:image/png;base64,{png_b64}" '
            f'alt="{text}"><figcaption>{text}</figcaption></figure>')


def _static_output(output):
    """A deck's version of one output: explorers become figures, other widgets and stderr go."""
    kind = output.get("output_type")
    if kind == "stream":
        return output if output.get("name") == "stdout" else None
    data = output.get("data", {})
    if kind not in ("display_data", "execute_result") or WIDGET_VIEW not in data:
        return output
    png = data.get("image/png")
    if not png:
        return None
    info = output.get("metadata", {}).get(EXPLORER_KEY, {})
    caption = info.get("caption") or "Explorer: move its controls in the notebook."
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": explorer_figure(png, caption), "text/plain": caption}}


def deck_notebook(nb):
    """A copy of ``nb`` ready for an offline deck: notes marked, a ``###`` section on a slide of
    its own (below its ``##`` slide), widget state and remote pictures gone, explorers shown as
    their first picture, the slide count on the title slide."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    mark_notes(nb)
    for cell in nb.cells:
        if cell["cell_type"] == "markdown":
            cell["source"] = _offline_markdown(cell["source"])
            if _slide_type(cell) == "-" and cell["source"].startswith("### "):
                cell["metadata"]["slideshow"] = {"slide_type": "subslide"}   # a long section splits
        elif cell["cell_type"] == "code":
            cell["outputs"] = [o for o in map(_static_output, cell.get("outputs", [])) if o]
    n = slide_count(nb)
    first = next(c for c in nb.cells if _slide_type(c) not in ("skip", "notes"))
    first["source"] = first["source"].rstrip() + (
        f"\n\n*This lecture: {n} slides* (press S for the speaker view with notes)")
    return nb


def exporter():
    """nbconvert's SlidesExporter with the course's template: local reveal.js, no CDN."""
    import jinja2
    from nbconvert import SlidesExporter

    exp = SlidesExporter(extra_loaders=[jinja2.DictLoader({"course_slides.html.j2": _TEMPLATE})],
                         template_file="course_slides.html.j2")
    exp.reveal_url_prefix = REVEAL_DIR
    exp.reveal_theme = THEME
    exp.reveal_scroll = True
    return exp


def has_math(nb) -> bool:
    """Whether a Markdown cell holds TeX (decks load no MathJax: it would come from a CDN)."""
    return any(c["cell_type"] == "markdown" and re.search(r"\$[^$\n]+\$|\\\(|\\\[|\$\$", c["source"])
               for c in nb.cells)


def execute(nb, path, timeout: int = 900):
    """Run ``nb`` (a notebook read from ``path``) in place in a fresh kernel."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    return nb


def build_decks(out_dir, paths=None, execute_first: bool = False, timeout: int = 900,
                notebooks=None) -> list:
    """Write ``<name>.slides.html`` per notebook into ``out_dir`` and reveal.js beside them.

    ``notebooks`` may give already executed notebook objects (path -> nb) to use instead of
    reading ``paths``; with ``execute_first`` the others run first so decks show their figures.
    """
    import nbformat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_reveal(out_dir)
    exp = exporter()
    given = {Path(p).resolve(): nb for p, nb in (notebooks or {}).items()}
    written = []
    for path in (paths or list(given) or sorted(NOTEBOOK_DIR.glob("*.ipynb"))):
        path = Path(path)
        nb = given.get(path.resolve())
        if nb is None:
            nb = nbformat.read(str(path), as_version=4)
            if execute_first:
                execute(nb, path, timeout)
        if has_math(nb):
            print(f"warning: {path.name} has TeX math; its deck shows it as source text "
                  "(no MathJax offline)")
        body, _ = exp.from_notebook_node(deck_notebook(nb), resources={"metadata": {"name": path.stem}})
        target = out_dir / (path.stem + ".slides.html")
        target.write_text(body, encoding="utf-8")
        written.append(target)
        print(f"wrote {target}")
    return written


def main(argv=None) -> int:
    """``python -m course_helpers.tools.slides``: write decks, or mark speaker notes."""
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", help="folder for the decks (e.g. slides)")
    parser.add_argument("--execute", action="store_true", help="run each notebook first")
    parser.add_argument("--mark-notes", nargs="*", metavar="NOTEBOOK",
                        help="apply the speaker-notes rule to these notebooks (default: all)")
    args = parser.parse_args(argv)
    if args.mark_notes is not None:
        for path in (args.mark_notes or sorted(NOTEBOOK_DIR.glob("*.ipynb"))):
            nb = nbformat.read(str(path), as_version=4)
            n = mark_notes(nb)
            if n:
                nbformat.write(nb, str(path))
            print(f"{Path(path).name}: {n} cell(s) newly marked as speaker notes")
    if args.out:
        build_decks(args.out, execute_first=args.execute)
    elif args.mark_notes is None:
        parser.error("give a folder for the decks, or --mark-notes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
