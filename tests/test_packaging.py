"""The course's promises about packaging, dependencies, notebooks and the package's shape."""
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_helpers.tools import deps, notebooks
from course_helpers.tools.shape import MAX_LINES, find_cycle, import_graph, module_files, patches_in

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "course_helpers"


def test_layout():
    for name in ("notebooks", "course_helpers", "data", "tests", "binder", "benchmarks",
                 "environment.yml", "README.md", "pyproject.toml", "Makefile", ".ci/run", "LICENSE"):
        assert (ROOT / name).exists(), name


def test_generated_environment_files_match_pyproject():
    for rel, text in deps.render().items():
        assert (ROOT / rel).read_text() == text, f"{rel} drifted: run python -m course_helpers.tools.deps --write"


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


# --------------------------------------------------------------------------- the package's shape
def test_cycle_finder_finds_cycles_through_function_level_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import thing\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.a"]
    (pkg / "sub" / "b.py").write_text("import numpy\nfrom .. import c\n")
    (pkg / "c.py").write_text("")
    assert find_cycle(import_graph(pkg)) is None


def test_no_import_cycles_in_the_package():
    graph = import_graph()
    assert "course_helpers.config" in graph and graph["course_helpers._checks"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_over_460_lines():
    long = {str(p.relative_to(ROOT)): n for p in module_files().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these by topic (at most {MAX_LINES} lines each): {long}"


def test_patch_finder_finds_patches():
    bad = ["import tf_keras as keras\nkeras.layers.Conv2D.call = f",
           "from tf_keras.initializers import VarianceScaling as V\nV.__call__ = f",
           "def f(layer):\n    object.__setattr__(layer, 'call', g)",
           "def f(cls):\n    cls.__call__ = g",
           "import tensorflow as tf\ntf.nn.conv2d = g",
           "import tensorflow as tf\nsetattr(tf.keras.layers.Dense, 'call', g)",
           "def f(layer):\n    setattr(layer, '__call__', g)"]
    for src in bad:
        assert patches_in(src), src
    good = ["import tf_keras as keras\nlayer = keras.layers.Dense(3)\nlayer.trainable = False",
            "import tensorflow as tf\nx = tf.constant(1)\nself_name = tf.__version__",
            "setattr(widget, 'max', 3)"]
    for src in good:
        assert not patches_in(src), src


def test_nothing_patches_tensorflow_or_keras():
    found = {str(p.relative_to(ROOT)): lines for p in module_files().values()
             if (lines := patches_in(p.read_text()))}
    assert not found, f"run-time patching of TensorFlow/Keras at (file: lines) {found}"


def test_maintainer_tooling_is_apart_from_the_lessons():
    graph = import_graph()
    tools = {n for n in graph if n == "course_helpers.tools" or n.startswith("course_helpers.tools.")}
    assert {"course_helpers.tools.notebooks", "course_helpers.tools.deps",
            "course_helpers.tools.train"} <= tools
    users = {n: sorted(m & tools) for n, m in graph.items() if n not in tools and m & tools}
    assert not users, f"lesson modules import maintainer tooling: {users}"
    for old in ("notebooks", "deps", "train", "_fastgrad"):
        assert not (PKG / f"{old}.py").exists(), f"course_helpers/{old}.py should be gone"
    import nbformat

    for path in notebooks.all_notebooks():
        nb = nbformat.read(str(path), as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert not re.search(r"course_helpers\.tools|ch\.tools", code), \
            f"{path.name} calls maintainer tooling in a code cell"


def test_every_subpackage_is_installed():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    subpackages = {".".join(p.parent.relative_to(ROOT).parts) for p in PKG.rglob("__init__.py")}
    assert subpackages - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


#: The brief's fixed names: lesson -> method -> package functions whose docstrings point there.
FIXED_NAMES = {
    "01": {"first-layer kernels": ["filters.first_layer_filters", "filters.rgb_filters",
                                   "filters.kernel_tiles"]},
    "02": {"features and t-SNE": ["embedding.extract_features", "embedding.embed_2d"]},
    "03": {"activation maps": ["activations.activation_model", "activations.feature_maps"],
           "receptive fields": ["patches.receptive_field"],
           "one top patch": ["patches.top_patches", "patches.unit_box", "patches.crop_box"]},
    "04": {"occlusion": ["occlusion.occlusion_map"],
           "saliency": ["saliency.saliency_map", "saliency.input_gradient",
                        "saliency.reduce_channels"],
           "SmoothGrad": ["saliency.saliency_map"],
           "gradient × input and integrated gradients": ["attribution.gradient_times_input",
                                                         "attribution.integrated_gradients"]},
    "05": {"gradient ascent": ["ascent.visualize_class", "ascent.visualize_filter"],
           "the Fourier parameterization": ["ascent.render"],
           "decorrelated colour": ["ascent.colour_matrix"],
           "FGSM": ["adversarial.fgsm"],
           "a targeted attack": ["adversarial.targeted_attack"]},
    "06": {"feature inversion": ["inversion.invert"],
           "Gram matrix and style loss": ["style.gram_matrix", "style.style_loss"],
           "one style-transfer step": ["style.style_transfer"]},
    "07": {"guided backprop and deconvnet": ["attribution.guided_backprop", "attribution.deconvnet"],
           "guided Grad-CAM": ["attribution.guided_gradcam"]},
    "08": {"randomizing a layer": ["sanity.randomize_layers", "sanity.randomized"],
           "a deletion curve": ["sanity.deletion_curve", "sanity.insertion_curve"],
           "noisy linear imputation": ["sanity.noisy_linear_impute"]},
}
_FIXED = [(lesson, method, name) for lesson, methods in FIXED_NAMES.items()
          for method, names in methods.items() for name in names]


@pytest.mark.parametrize("lesson, method, name", _FIXED, ids=[f"{n}:{m}" for _, m, n in _FIXED])
def test_package_functions_name_the_lesson_that_writes_them_out(lesson, method, name):
    module, attr = name.rsplit(".", 1)
    fn = getattr(importlib.import_module(f"course_helpers.{module}"), attr)
    doc = " ".join((fn.__doc__ or "").split())
    where = doc.find(f"Written out in lesson {lesson},")
    assert where >= 0 and f'"In plain code: {method}"' in doc[where:], (
        f"ch.{name}'s docstring needs the line: Written out in lesson {lesson}, "
        f'"In plain code: {method}".')
    nb = next((ROOT / "notebooks").glob(f"{lesson}_*.ipynb"))
    assert f"### In plain code: {method}" in nb.read_text(), \
        f"{nb.name} has no heading '### In plain code: {method}'"


def test_colab_installs_the_release_tag_of_the_package_version():
    import tomllib

    import course_helpers

    version = course_helpers.__version__
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pyproject.get("version", version) == version, "pyproject.toml's version != __version__"
    line = notebooks.install_line()
    assert line.endswith(f'@v{version}"') and "@main" not in line
    assert notebooks.install_line("someone/else", "9.9.9").endswith(
        'git+https://github.com/someone/else@v9.9.9"')
    nb = notebooks.new_notebook("99_demo.ipynb", "99 · Demo", "演示", [("md", "## Hi")])
    setup = [c for c in nb.cells if notebooks.SETUP_MARK in c["source"]]
    assert len(setup) == 1 and line in setup[0]["source"]
