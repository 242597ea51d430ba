"""The course's promises about packaging, dependencies and notebooks."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_helpers import deps, notebooks

ROOT = Path(__file__).resolve().parent.parent


def test_layout():
    for name in ("notebooks", "course_helpers", "data", "tests", "binder", "benchmarks",
                 "environment.yml", "README.md", "pyproject.toml", "Makefile", ".ci/run", "LICENSE"):
        assert (ROOT / name).exists(), name


def test_generated_environment_files_match_pyproject():
    for rel, text in deps.render().items():
        assert (ROOT / rel).read_text() == text, f"{rel} drifted: run python -m course_helpers.deps --write"


def test_every_dependency_appears_in_environment_and_binder():
    env = (ROOT / "environment.yml").read_text()
    binder = (ROOT / "binder" / "requirements.txt").read_text()
    for req in deps.requirements(("lab",)):
        assert req in env and req in binder


def test_dependencies_are_ranges_not_exact_pins():
    for req in deps.requirements(("lab", "test")):
        assert "==" not in req, req
        assert re.search(r"[<>~]", req), f"{req} has no version range"


def test_package_is_installed_not_path_hacked():
    out = subprocess.run([sys.executable, "-m", "pip", "show", "course_helpers"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "Name: course_helpers" in out.stdout
    for path in list(ROOT.glob("notebooks/*.ipynb")) + list(ROOT.glob("tests/*.py")):
        if path.name == "test_packaging.py":
            continue
        assert "sys.path.insert" not in path.read_text() and "sys.path.append" not in path.read_text()


def test_make_test_is_what_ci_and_readme_run():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", make, re.M) and re.search(r"^lab:", make, re.M)


def test_licences_are_stated():
    lic = (ROOT / "LICENSE").read_text()
    readme = (ROOT / "README.md").read_text()
    for text in (lic, readme):
        assert "MIT" in text and "CC BY 4.0" in text


def test_data_readme_lists_every_shipped_file():
    listed = (ROOT / "data" / "README.md").read_text()
    for path in (ROOT / "data").iterdir():
        if path.name in ("README.md",) or path.name.startswith(".") or path.name == "__pycache__":
            continue
        assert f"`{path.name}`" in listed, f"data/README.md does not say where {path.name} came from"


@pytest.mark.parametrize("path", notebooks.all_notebooks(), ids=lambda p: p.name)
def test_notebook_badges_setup_cell_and_clean_metadata(path):
    assert notebooks.problems(path) == []


def test_notebook_rewrite_command_changes_badges_and_install_cell(tmp_path):
    import nbformat

    nb = notebooks.new_notebook("99_demo.ipynb", "99 · Demo", "演示", [("md", "## Hi")])
    assert notebooks._rewrite(nb, "99_demo.ipynb", "someone/else")
    text = nbformat.writes(nb)
    assert "someone/else" in text and notebooks.REPOSITORY not in text
    assert notebooks.badge_row("99_demo.ipynb", "someone/else") in nb.cells[0]["source"]


def test_every_lesson_of_the_outline_has_its_notebook():
    names = {p.name for p in notebooks.all_notebooks()}
    assert "index.ipynb" in names
    index = (ROOT / "notebooks" / "index.ipynb").read_text()
    for name in sorted(names - {"index.ipynb"}):
        assert name in index, f"index.ipynb does not link {name}"


def test_slide_metadata_and_decks(tmp_path):
    import nbformat

    paths = notebooks.all_notebooks()
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
        assert kinds[0] == "slide", f"{path.name}: the title cell should open the deck"
        assert all(kinds), f"{path.name}: every cell needs slide metadata"
        setup = [c for c in nb.cells if notebooks.SETUP_MARK in c.source]
        assert setup[0].metadata["slideshow"]["slide_type"] == "skip"
    decks = notebooks.build_slides(tmp_path, paths=paths, execute=False)
    assert len(decks) == len(paths)
    for deck in decks:
        html = deck.read_text()
        assert "reveal" in html.lower() and "<section" in html
        assert notebooks.SETUP_MARK not in html  # the setup cell is skipped in slides
