"""Notebook plumbing: the badge row, the guarded Colab install cell, slide metadata, checks.

The repository's address lives here, once.  When it changes::

    python -m course_helpers.tools.notebooks --repo owner/name     # rewrites every badge and install cell
    python -m course_helpers.tools.notebooks --check               # exit 1 if a notebook disagrees

Lesson notebooks are written with :func:`new_notebook`, so they all share the same first cells.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

#: GitHub ``owner/name`` of the course; badges and the Colab install cell are made from it.
REPOSITORY = "seeing-inside-cnns/seeing-inside-cnns"
BRANCH = "main"
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"

BADGE_MARK = "<!-- badges -->"
SETUP_MARK = "# Colab only: install the course"

_KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
_LANGUAGE_INFO = {"name": "python", "pygments_lexer": "ipython3"}


def colab_url(notebook: str, repo: str = REPOSITORY) -> str:
    """The Colab address of a notebook (badges in every notebook and index.ipynb)."""
    return f"https://colab.research.google.com/github/{repo}/blob/{BRANCH}/notebooks/{notebook}"


def binder_url(notebook: str = "index.ipynb", repo: str = REPOSITORY) -> str:
    """The Binder address that opens a notebook in JupyterLab (badges, README)."""
    return f"https://mybinder.org/v2/gh/{repo}/{BRANCH}?urlpath=lab/tree/notebooks/{notebook}"


def badge_row(notebook: str, repo: str = REPOSITORY) -> str:
    """Markdown for the Colab and Binder badges of one notebook."""
    return (f"{BADGE_MARK}\n"
            f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_url(notebook, repo)}) "
            f"[![Launch on Binder](https://mybinder.org/badge_logo.svg)]({binder_url(notebook, repo)})")


def install_line(repo: str = REPOSITORY, version: str | None = None) -> str:
    """The guarded Colab cell's pip line: installs the course from the repository at the
    release tag of its version, ``v`` + ``course_helpers.__version__`` (e.g. ``@v0.1.0``), so
    Colab runs the code the notebook was written for, not whatever ``main`` holds later.

    The version has one home, ``course_helpers/__init__.py``; it is read from that file's
    source (an ``ast`` parse, so TensorFlow is not imported)."""
    if version is None:
        import ast

        init = Path(__file__).resolve().parents[1] / "__init__.py"
        found = [node.value.value for node in ast.parse(init.read_text()).body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                 and any(getattr(t, "id", None) == "__version__" for t in node.targets)]
        if len(found) != 1:
            raise ValueError(f"{init} should set __version__ = '<version>' once.")
        version = found[0]
    return f'    %pip install -q "course_helpers @ git+https://github.com/{repo}@v{version}"'


def setup_source(extra: str = "", seed: int = 42, repo: str = REPOSITORY) -> str:
    """The one setup cell: guarded Colab install, imports, seeds."""
    src = ("import sys\n"
           f'if "google.colab" in sys.modules:  {SETUP_MARK} (about a minute)\n'
           f"{install_line(repo)}\n\n"
           "import numpy as np\n"
           "import matplotlib.pyplot as plt\n"
           "import course_helpers as ch  # switches TensorFlow to tf-keras: import it first\n\n"
           f"ch.setup_notebook(seed={seed})")
    if extra:
        src += "\n" + extra.strip("\n")
    return src


def _slide(cell, kind):
    cell.setdefault("metadata", {})["slideshow"] = {"slide_type": kind}
    return cell


def new_notebook(filename: str, title: str, subtitle: str, cells, setup_extra: str = ""):
    """Build a lesson notebook: title slide, badges, setup cell, then ``cells``.

    ``cells`` is a list of ``("md" | "code", source)`` or ``(kind, source, options)`` where
    options may hold ``slide`` ('slide', 'subslide', 'fragment', 'skip', '-'), ``tags``.
    A Markdown cell starting with '## ' opens a new slide unless told otherwise.
    """
    import nbformat.v4 as v4

    nb = v4.new_notebook()
    nb.metadata = {"kernelspec": dict(_KERNELSPEC), "language_info": dict(_LANGUAGE_INFO)}
    head = f"# {title}\n\n**{subtitle}**\n\n{badge_row(filename)}"
    nb.cells.append(_slide(v4.new_markdown_cell(head), "slide"))
    setup = v4.new_code_cell(setup_source(setup_extra))
    setup.metadata["tags"] = ["setup"]
    nb.cells.append(_slide(setup, "skip"))
    for item in cells:
        kind, source = item[0], item[1]
        opts = item[2] if len(item) > 2 else {}
        source = source.strip("\n")
        cell = v4.new_markdown_cell(source) if kind == "md" else v4.new_code_cell(source)
        slide = opts.get("slide")
        if slide is None:
            slide = "slide" if kind == "md" and source.startswith("## ") else "-"
        _slide(cell, slide)
        if opts.get("tags"):
            cell.metadata["tags"] = list(opts["tags"])
        nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{Path(filename).stem[:12].replace('_', '-')}-{i:02d}"
    return nb


def write_notebook(nb, filename: str) -> Path:
    """Write ``nb`` into notebooks/ with no outputs and clean metadata."""
    import nbformat

    path = NOTEBOOK_DIR / filename
    clean(nb)
    nbformat.write(nb, str(path))
    return path


CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


def _checked(cell) -> bool:
    return cell["cell_type"] == "code" and CHECK_MARK in cell["source"]


def clean(nb) -> None:
    """The course's output policy: strip outputs, execution counts and stray metadata, except
    the text output of cells marked ``# NBVAL_CHECK_OUTPUT``, which nbval compares."""
    nb.metadata = {"kernelspec": dict(_KERNELSPEC), "language_info": dict(_LANGUAGE_INFO)}
    for cell in nb.cells:
        keep = {k: v for k, v in cell.get("metadata", {}).items() if k in ("slideshow", "tags")}
        cell["metadata"] = keep
        if cell["cell_type"] == "code":
            if _checked(cell):
                cell["outputs"] = [o for o in cell.get("outputs", [])
                                   if o.get("output_type") == "stream" and o.get("name") == "stdout"]
            else:
                cell["outputs"] = []
            # nbval compares only cells that were run: a marked cell with output keeps count 1
            cell["execution_count"] = 1 if cell["outputs"] else None


def record_checked_outputs(paths=None, timeout: int = 900) -> list:
    """Run notebooks in quick mode and store the output of their ``# NBVAL_CHECK_OUTPUT`` cells
    (everything else stays empty).  ``python -m course_helpers.tools.notebooks --record-checked``."""
    import os

    import nbformat
    from nbclient import NotebookClient

    done = []
    for path in (paths or all_notebooks()):
        path = Path(path)
        nb = nbformat.read(str(path), as_version=4)
        if not any(_checked(c) for c in nb.cells):
            continue
        old = os.environ.get("COURSE_QUICK")
        os.environ["COURSE_QUICK"] = "1"
        try:
            run = nbformat.reads(nbformat.writes(nb), as_version=4)
            NotebookClient(run, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        finally:
            if old is None:
                os.environ.pop("COURSE_QUICK", None)
            else:
                os.environ["COURSE_QUICK"] = old
        for cell, ran in zip(nb.cells, run.cells):
            if _checked(cell):
                cell["outputs"] = ran["outputs"]
        clean(nb)
        nbformat.write(nb, str(path))
        done.append(path)
        print(f"recorded checked outputs of {path.name}")
    return done


def _rewrite(nb, filename: str, repo: str) -> bool:
    changed = False
    for cell in nb.cells:
        src = cell["source"]
        if cell["cell_type"] == "markdown" and BADGE_MARK in src:
            new = re.sub(re.escape(BADGE_MARK) + r"\n[^\n]*", badge_row(filename, repo).replace("\\", r"\\"), src)
        elif cell["cell_type"] == "code" and SETUP_MARK in src:
            new = re.sub(r"^    %pip install -q \"course_helpers @ git\+[^\n]*$", install_line(repo),
                         src, flags=re.M)
        else:
            continue
        if new != src:
            cell["source"] = new
            changed = True
    return changed


def problems(path) -> list:
    """What is wrong with a notebook's badges, install cell, kernelspec or outputs."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    found = []
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        found.append("kernelspec is not python3")
    first = nb.cells[0]["source"] if nb.cells else ""
    if badge_row(path.name) not in first:
        found.append("first cell lacks the badge row for this notebook and repository")
    setups = [c for c in nb.cells if c["cell_type"] == "code" and SETUP_MARK in c["source"]]
    if len(setups) != 1:
        found.append(f"expected one guarded Colab setup cell, found {len(setups)}")
    elif install_line() not in setups[0]["source"] or "google.colab" not in setups[0]["source"]:
        found.append("the Colab install cell does not install from the course repository")
    for cell in nb.cells:
        if cell["cell_type"] != "code":
            continue
        if not _checked(cell) and (cell.get("execution_count") or cell.get("outputs")):
            found.append("stored outputs (the policy: no outputs, except the text of cells "
                         "marked # NBVAL_CHECK_OUTPUT)")
            break
        if _checked(cell) and not cell.get("outputs"):
            found.append("a # NBVAL_CHECK_OUTPUT cell has no stored output to compare "
                         "(run python -m course_helpers.tools.notebooks --record-checked)")
            break
    return found


def all_notebooks() -> list:
    """Every notebook of the course, index.ipynb included, sorted by name."""
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def build_slides(out_dir, paths=None, execute: bool = False, timeout: int = 900) -> list:
    """Write an offline reveal.js deck per notebook into ``out_dir`` (``make slides``), with
    reveal.js copied beside them; see :mod:`course_helpers.tools.slides`.

    Cells tagged as 'skip' slides (the setup cell) are left out of the deck; with ``execute``
    the notebook runs first so the deck shows its figures and explorers' first pictures.
    """
    from .slides import build_decks

    return build_decks(out_dir, paths, execute_first=execute, timeout=timeout)


def main(argv=None) -> int:
    """``python -m course_helpers.tools.notebooks``: rewrite badges, clean, record checked outputs, slides."""
    global REPOSITORY
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", help="new GitHub owner/name: rewrite badges and install cells")
    parser.add_argument("--check", action="store_true", help="report notebooks that disagree")
    parser.add_argument("--clean", action="store_true", help="strip outputs and stray metadata")
    parser.add_argument("--record-checked", action="store_true",
                        help="run notebooks and store the output of # NBVAL_CHECK_OUTPUT cells")
    parser.add_argument("--slides", metavar="DIR", help="write a reveal.js deck per notebook into DIR")
    parser.add_argument("--execute", action="store_true", help="with --slides: run notebooks first")
    args = parser.parse_args(argv)
    import nbformat

    if args.repo:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repo):
            parser.error("--repo takes owner/name, e.g. my-org/seeing-inside-cnns")
        me = Path(__file__)
        text = me.read_text()
        text = re.sub(r'^REPOSITORY = "[^"]*"', f'REPOSITORY = "{args.repo}"', text, flags=re.M)
        me.write_text(text)
        for path in all_notebooks():
            nb = nbformat.read(str(path), as_version=4)
            if _rewrite(nb, path.name, args.repo):
                nbformat.write(nb, str(path))
                print(f"rewrote {path.name}")
        REPOSITORY = args.repo
        readme = ROOT / "README.md"
        if readme.is_file():
            txt = re.sub(r"(colab\.research\.google\.com/github/|mybinder\.org/v2/gh/)[\w.-]+/[\w.-]+",
                         lambda m: m.group(1) + args.repo, readme.read_text())
            readme.write_text(txt)
    if args.clean:
        for path in all_notebooks():
            nb = nbformat.read(str(path), as_version=4)
            clean(nb)
            nbformat.write(nb, str(path))
    if args.record_checked:
        record_checked_outputs()
    if args.slides:
        build_slides(args.slides, execute=args.execute)
    bad = 0
    if args.check or args.repo:
        for path in all_notebooks():
            for p in problems(path):
                print(f"{path.name}: {p}")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
