"""Each lesson's ImageNet part: its shape (one section, one switch, one guard) and a run of it
with either model, in quick mode, on stand-ins of the weights and the photo set (no internet:
``course_helpers.tools.stand_ins``).  Offline the same cells print their notice, which the
notebook run of ``make test`` checks."""
import re
from pathlib import Path

import nbformat
import pytest

import course_helpers as ch  # noqa: F401
from course_helpers.tools import stand_ins

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = ("01_first_layer_filters", "02_last_layer_embedding", "03_middle_layer_activations",
           "04_occlusion_and_saliency", "05_gradient_ascent", "07_keras_vis_tools",
           "08_opening_the_black_box")
CJK = re.compile(r"[\u4e00-\u9fff]")


def path(lesson):
    return NOTEBOOKS / f"{lesson}.ipynb"


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_part_is_one_section_with_one_switch_and_one_guard(lesson):
    nb = nbformat.read(str(path(lesson)), as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if stand_ins.TAG in c.metadata.get("tags", [])]
    assert tagged, f"{lesson} has no cells tagged {stand_ins.TAG!r}"
    first, last = tagged[0], tagged[-1]
    between = [c for c in nb.cells[first:last + 1] if c.cell_type == "code"]
    assert all(stand_ins.TAG in c.metadata.get("tags", []) for c in between), \
        "the part's code cells are contiguous"
    assert not any(c.cell_type == "markdown" and c.source.startswith("## ")
                   for c in nb.cells[first:last + 1]), "the part stays in one section"
    heading = next(c.source.splitlines()[0] for c in reversed(nb.cells[:first])
                   if c.cell_type == "markdown" and c.source.startswith("## "))
    assert CJK.search(heading), heading
    head = nb.cells[first].source
    switch = stand_ins.SWITCH.search(head)
    assert switch and switch.group(1) in ch.imagenet.MODELS, head
    assert re.search(r"^ready = ch\.imagenet\.ready\(IMAGENET_MODEL", head, re.M), head
    for i in tagged[1:]:
        if nb.cells[i].cell_type == "code":
            assert nb.cells[i].source.startswith("if ready:"), nb.cells[i].source[:80]
    others = [c.source for c in nb.cells if c.cell_type == "code"
              and stand_ins.TAG not in c.metadata.get("tags", [])]
    for src in others:      # no ImageNet model outside the part
        assert not re.search(r'load_model\("(vgg16|resnet50)"|vgg_weights_available', src), src[:200]


@pytest.fixture(scope="module")
def stand_in_caches(tmp_path_factory):
    root = tmp_path_factory.mktemp("stand-ins")
    home = stand_ins.write_keras_cache(root / "keras", ("vgg16", "resnet50"))
    cache = root / "cache"
    stand_ins.write_photo_set(cache, per_class=4)
    return home, cache


@pytest.mark.parametrize("model", ch.imagenet.MODELS)
@pytest.mark.parametrize("lesson", LESSONS)
def test_the_part_runs_with_either_model_on_stand_ins(lesson, model, stand_in_caches):
    home, cache = stand_in_caches
    result = stand_ins.run_part(path(lesson), model=model, keras_home=home, cache=cache,
                                quick=True, timeout=600)
    assert result["model"] == model
    failed = [(k, c["error"], c["source"][:80]) for k, c in enumerate(result["cells"]) if c["error"]]
    assert not failed, failed
    assert "NOTICE" not in result["cells"][0]["outputs"], result["cells"][0]["outputs"]
    assert sum(c["images"] for c in result["cells"]) >= 1, "the part draws its pictures"
    # each cell's memory is the most the kernel held while it ran: at most the run's peak
    peaks = [c["peak_mb"] for c in result["cells"]]
    assert all(p is not None and 0 < p <= result["peak_mb"] + 1e-6 for p in peaks), peaks


def test_readme_and_course_map_name_the_lessons_that_start_with_resnet50():
    """README.md and index.ipynb say which parts start with ResNet50: the switches agree."""
    starts = {}
    for lesson in LESSONS:
        head = stand_ins.part_cells(path(lesson))[1][0]     # the part's first cell
        starts[lesson[:2]] = stand_ins.SWITCH.search(head).group(1)
    resnet = sorted(k for k, m in starts.items() if m == "resnet50")
    assert resnet and len(resnet) < len(starts), starts
    said = ", ".join(resnet[:-1]) + " and " + resnet[-1] if len(resnet) > 1 else resnet[0]
    words = ["Lessons", *said.split(), "start", "with", "ResNet50"]
    sentence = re.compile(r"\s+".join(map(re.escape, words)))
    readme = (NOTEBOOKS.parent / "README.md").read_text()
    index = "\n".join(c.source for c in nbformat.read(str(NOTEBOOKS / "index.ipynb"), as_version=4).cells)
    for name, text in (("README.md", readme), ("index.ipynb", index)):
        assert sentence.search(text), f"{name} should say: Lessons {said} start with ResNet50"
