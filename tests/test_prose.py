"""Lessons say only what their outputs show: no measured figure is typed into markdown.

A number a lesson measures is printed by a code cell (or formatted from a variable), and the
prose refers to "the number above".  This test reads every markdown cell and fails on a bare
decimal or percentage, except for the source note's section numbers ("3.5", "Exercise 4.1")
and a short allow-list of figures that are not measurements of this course: published
results, settings the lesson chooses, definitions and versions.  Each entry says why.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# The source note's section numbers (course-outline.md); "3.1" is named because lesson 03
# explains that it does not exist.
SECTIONS = {"3.1", "3.2", "3.3", "3.4", "3.5", "3.6", "4.1", "5.1", "5.2"}

FIGURE = re.compile(r"(?<![\w.\-])(\d+\.\d+(?:\.\d+)*\s?%?|\d+\s?%)(?![\w.]*\d)")
CODE_SPAN = re.compile(r"```.*?```|`[^`\n]*`", re.S)
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
LINK_TARGET = re.compile(r"\]\([^)]*\)")
# "Exercise 8.2", "lesson 3.5", "lessons 3.2–3.5", "(5.1)", "method 3.2", "section 3.1".
REFERENCE = re.compile(r"(?:exercise|lessons?|method|section|§)\s+\d+\.\d+[a-z]?(?:\s*(?:–|-|and|,)\s*\d+\.\d+)*",
                       re.I)

# (notebook prefix, the words around the figure, why it is not a measurement of this course)
ALLOWED = [
    ("01", "0.5 · arctan2", "a constant of the orientation formula the exercise defines"),
    ("02", "1.0 = perfectly separated", "the scale's definition, not a result"),
    ("05", "share below 0.05", "the threshold the exercise sets"),
    ("05", "between 0.95 and 1.05", "the random scale range render uses (a setting)"),
    ("05", "photo by 1.4 twice", "keras.io's octave scale (a setting)"),
    ("06", "within 10% of", "the convergence rule the exercise defines"),
    ("08", "noise (0.01) goes", "ROAD's noise level (a setting)"),
    ("08", "remove the 30% most salient", "the share the plain-code cell removes (a setting)"),
    ("07", "(0.0, 1.0) for our models", "the input range a keras-vis argument takes"),
    ("07", "TensorFlow 2.16", "a version number"),
    ("index", "CC BY 4.0", "the licence's name"),
]


def strip_allowed_contexts(text: str) -> str:
    """Markdown with code, math, comments, link targets and section references removed."""
    for pattern in (CODE_SPAN, MATH, HTML_COMMENT, LINK_TARGET, REFERENCE):
        text = pattern.sub(" ", text)
    return text


def bare_figures(notebook_prefix: str, markdown: str) -> list:
    """The figures in one markdown cell that no rule allows, with their context."""
    text = strip_allowed_contexts(markdown)
    for prefix, words, _why in ALLOWED:
        if notebook_prefix == prefix:
            text = re.sub(r"\s+".join(map(re.escape, words.split())), " ", text)
    found = []
    for m in FIGURE.finditer(text):
        figure = m.group(1).strip()
        if figure in SECTIONS and _is_heading_or_list_number(text, m.start()):
            continue
        if figure in SECTIONS and not figure.endswith("%"):
            # a bare "3.5" in running text names a section of the note, as in "3.2, 3.3"
            continue
        context = text[max(0, m.start() - 40): m.end() + 25].replace("\n", " ")
        found.append(f"{figure!r} in …{context}…")
    return found


def _is_heading_or_list_number(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    return bool(re.match(r"\s*(#+|\*|-|\|)?\s*\**\s*$", text[line_start:pos]))


def _prefix(path: Path) -> str:
    return path.stem.split("_")[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_bare_measured_figures_in_markdown(path):
    nb = nbformat.read(str(path), as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            problems += [f"cell {i}: {p}" for p in bare_figures(_prefix(path), cell.source)]
    assert not problems, (
        f"{path.name} types measured figures into its prose; print them from a code cell and "
        "refer to 'the number above' (or, for a published result, add it to ALLOWED with the "
        "reason):\n  " + "\n  ".join(problems))


def test_allow_list_entries_are_still_used():
    texts = {}
    for path in NOTEBOOKS:
        nb = nbformat.read(str(path), as_version=4)
        texts.setdefault(_prefix(path), []).extend(
            c.source for c in nb.cells if c.cell_type == "markdown")
    def uses(text, words):
        return re.search(r"\s+".join(map(re.escape, words.split())), text) is not None

    stale = [(p, w) for p, w, _ in ALLOWED if not any(uses(t, w) for t in texts.get(p, []))]
    assert not stale, f"allow-list entries that no notebook uses any more (remove them): {stale}"


@pytest.mark.parametrize("markdown, expected", [
    ("The pointing game scores 0.92 here.", ["0.92"]),
    ("About 36% of the units are active.", ["36%"]),
    ("Chance purity is 0.35, conv3 reaches 0.42.", ["0.35", "0.42"]),
    ("It is 3.5 times faster.", []),          # a section number alone reads as one: allowed
    ("See lesson 3.5 and Exercise 8.2.", []),
    ("## 3.4 Occlusion · 遮挡分析法", []),
    ("The value `noise=0.15` is a setting.", []),
    ("Math $\\sigma = 0.15$ stays.", []),
    ("The number above (printed by the cell) says how far.", []),
])
def test_the_rule_on_examples(markdown, expected):
    found = [f.split(" in ")[0].strip("'") for f in bare_figures("xx", markdown)]
    assert found == expected
