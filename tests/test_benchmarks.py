"""benchmarks/run.py: the timing and table machinery (no timing asserts: machines differ)."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import course_helpers as ch

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = mod   # dataclasses look their module up there
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("bench_run", None)


def test_time_calls_alternates_and_takes_medians(bench, monkeypatch):
    order = []
    clock = iter(np.arange(0.0, 100.0, 1.0))
    monkeypatch.setattr(bench, "_now", lambda: next(clock))
    t = bench.time_calls([lambda: order.append("a"), lambda: order.append("b")], repeats=3, warmup=1)
    assert order == ["a", "b"] * 2 + ["b", "a", "a", "b"]   # warm-up, then each round starts one later
    assert t == [1.0, 1.0]                  # each call spans one tick of the fake clock


def test_row_checks_against_hand_computed_ratios(bench):
    r = bench.Row("m", "saliency", 0.3, unit=0.1, peer="p", peer_seconds=0.9,
                  checks=[("F", 2.5), ("peer", 2.0)])
    assert r.f_ratio == pytest.approx(3.0) and r.speedup == pytest.approx(3.0)
    assert [ok for _, ok in r.results()] == [False, True]
    occ = bench.Row("m", "occlusion", 1.2, bound=1.0, bound_name="n·Fb", checks=[("bound", 1.3)])
    assert occ.results() == [("≤ 1.3 × n·Fb (1.20)", True)]
    assert bench.missed([r, occ]) == [(r, "≤ 2.5 F")]
    sal = bench.Row("m", "saliency", 0.12, bound=0.1, bound_name="G", peer_seconds=0.12,
                    checks=[("bound", 1.15), ("peer", 1.0)])
    assert sal.results() == [("≤ 1.15 × G (1.20)", False), ("faster than peer", False)]
    sal.peer_seconds = 0.13
    assert sal.results()[1] == ("faster than peer", True)


def test_merge_keeps_old_rows_replaces_new_ones_and_drops_obsolete_ones(bench):
    Row = bench.Row
    old = [Row("a", "F: forward", 1.0, measured="d1"), Row("a", "saliency", 3.0, measured="d1"),
           Row("a", "the compiled gradient call alone", 2.0, measured="d1"),
           Row("a", "Grad-CAM", 5.0, measured="d1"), Row("b", "widget", 0.1, measured="d1")]
    new = [Row("a", "F: forward", 1.1, measured="d2"), Row("a", "G: gradient call", 2.1,
                                                              measured="d2"),
           Row("a", "saliency", 2.2, measured="d2")]
    merged = bench.merge_rows(old, new)
    assert [(r.group, r.name, r.seconds) for r in merged] == [
        ("a", "F: forward", 1.1), ("a", "G: gradient call", 2.1), ("a", "saliency", 2.2),
        ("a", "Grad-CAM", 5.0), ("b", "widget", 0.1)]
    text = bench.write_results("/dev/null", merged)
    assert "not measured again on d2: they come from the run of d1" in text
    assert "| a | Grad-CAM (run of d1) |" in text and "| a | saliency |" in text


def test_table_from_course_cnn_rows(bench, tmp_path):
    rows = bench.bench_model("course-cnn", repeats=1, only=("saliency", "occlusion"),
                             occlusion=(32, 16))
    names = [r.name for r in rows]
    assert names[0].startswith("F:") and "saliency" in names and names[-1].startswith("occlusion")
    g = rows[[n.startswith("G:") for n in names].index(True)]
    sal = rows[names.index("saliency")]
    assert sal.bound == g.seconds > 0 and sal.bound_name == "G"
    assert [t for t, _ in sal.results()] == [f"≤ 1.15 × G ({sal.seconds / g.seconds:.2f})",
                                             "faster than peer"]
    table = bench.format_table(rows)
    lines = table.splitlines()
    assert lines[0] == bench.TABLE_HEADER.splitlines()[0]
    assert len(lines) == 2 + len(rows)
    ncols = lines[0].count("|")
    assert all(line.count("|") == ncols for line in lines)
    assert rows[0].f_ratio == pytest.approx(1.0)
    sal = rows[names.index("saliency")]
    assert sal.peer_seconds > 0 and sal.seconds > 0
    out = tmp_path / "RESULTS.md"
    text = bench.write_results(out, rows, [{"notebook": "01_x", "model": "course-cnn", "mb": 900.0,
                                            "how": "test"}], repeats=1)
    assert out.read_text() == text and "| 01_x | course-cnn | 900 MB |" in text
    assert "## Package" in text and "_fastgrad" not in text and "fast=" not in text


def test_package_section_is_computed_from_the_source(bench, monkeypatch):
    from course_helpers.tools import shape

    text = bench.package_section()
    for name in shape.module_files():
        short = name.replace("course_helpers.", "", 1)
        assert f"| {short} |" in text, name
    assert ("no cycles." in text) == (shape.find_cycle(shape.import_graph()) is None)
    largest = max(shape.line_counts().items(), key=lambda kv: kv[1])
    assert f"now `{largest[0]}` ({largest[1]} lines" in text or "not available" in text
    monkeypatch.setattr(shape, "import_graph", lambda pkg=None: {"p.a": {"p.b"}, "p.b": {"p.a"}})
    assert "CYCLE p.a -> p.b -> p.a." in bench.package_section()


def test_the_occlusion_peer_computes_the_same_map(bench, course_model, shapes):
    img = shapes[0][0]
    fast = ch.occlusion.occlusion_map(course_model, img, 2, patch=16, stride=8)
    loop = bench.per_patch_occlusion(course_model, img, 2, patch=16, stride=8)
    np.testing.assert_allclose(fast, loop, atol=1e-5)


def test_widget_redraw_comes_from_the_cache(bench, course_model, shapes):
    box = ch.activations.activation_explorer(course_model, {"a": shapes[0][0], "b": shapes[0][1]})
    bench.widget_redraw(box, "channel", (0, 1), repeats=1)
    before = ch.widgets.cache_info()["entries"]
    t = bench.widget_redraw(box, "channel", (1, 0), repeats=1)
    assert ch.widgets.cache_info()["entries"] == before
    assert set(t) == {"redraw", "png_bytes"} and t["redraw"] > 0
    assert t["png_bytes"] == len(box.state["png"]) > 1000
    with pytest.raises(KeyError, match="channel"):
        bench.widget_redraw(box, "no_such_control", (0, 1))


def test_peak_memory_of_a_child_is_its_own(bench):
    """A child process reports its own peak, not the size of the process that started it."""
    import inspect
    import subprocess

    big = np.ones(200 * 2**20 // 8)          # this process: at least 200 MB more
    code = inspect.getsource(bench._peak_rss) + "print(_peak_rss())"
    child = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout)
    assert bench._peak_rss() >= big.nbytes
    assert 0 < child < 100 * 2**20, child     # a bare Python: tens of MB


def test_integrated_gradients_and_guided_backprop_rows(bench, course_model, shapes):
    rows = bench.bench_model("course-cnn", repeats=1, only=("integrated_gradients", "guided_backprop"))
    by_name = {r.name: r for r in rows}
    ig = by_name[f"integrated gradients, {bench.IG_STEPS} steps"]
    gb = next(r for r in rows if r.name.endswith("(IG's batch)"))
    # the unit's batch is the one integrated_gradients uses: 65 points in 3 batches of <= 22
    assert gb.name.startswith("gradient call, batch of 22,")
    assert ig.bound == pytest.approx(bench.IG_STEPS * gb.seconds) and ig.bound_name == "64·Gb"
    assert [t for t, _ in ig.results()] == [f"≤ 1.1 × 64·Gb ({ig.seconds / ig.bound:.2f})"]
    assert ig.peer_seconds is None
    guided = by_name["guided backprop"]
    assert guided.bound > 0 and guided.bound_name == "G" and guided.peer_seconds > 0
    assert [t for t, _ in guided.results()][0].startswith("≤ 1.2 × G (")
    # the peer is tf-keras-vis's guided backprop, the same numbers as ours (one shared clone)
    vis = ch.kerasvis.layers._guided_visualizer(course_model)
    img, c = shapes[0][1], int(shapes[1][1])
    np.testing.assert_allclose(ch.kerasvis.guided_saliency(course_model, img, c, visualizer=vis),
                               ch.attribution.guided_backprop(course_model, img, c), rtol=1e-4, atol=1e-6)
    assert bench._rank(ig.name) < bench._rank(guided.name) < bench._rank("Grad-CAM")


def _load(name):
    """A file of benchmarks/ as a module (it puts its own folder on the path for ``run``)."""
    spec = importlib.util.spec_from_file_location(name, RUN.parent / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_feature_visualization_rows_are_measured_against_f_and_g(bench):
    """benchmarks/bench_ascent.py and bench_adversarial.py, as run.py calls them (one round)."""
    rows = _load("bench_ascent").rows(1) + _load("bench_adversarial").attack_rows("course-cnn", 1, steps=2)
    names = [r.name for r in rows]
    assert any("fft+decorrelated" in n for n in names) and any("attack" in n for n in names), names
    for r in rows:
        assert r.seconds > 0 and (r.unit is None or r.unit > 0)
        for target, met in r.results():
            assert isinstance(met, bool) and target


def test_imagenet_cells_table_marks_slow_and_failed_cells(bench):
    rows = [{"notebook": "01_x", "model": "vgg16", "cell": 1, "first_line": "IMAGENET_MODEL = 1",
             "seconds": 12.0, "error": ""},
            {"notebook": "01_x", "model": "vgg16", "cell": 2, "first_line": "if ready:",
             "seconds": bench.CELL_SECONDS + 0.5, "error": ""},
            {"notebook": "01_x", "model": "resnet50", "cell": 2, "first_line": "if ready:",
             "seconds": None, "error": "ValueError: x"}]
    lines = bench.format_cells(rows).splitlines()[2:]
    assert [line.rsplit("|", 2)[-2].strip() for line in lines] == ["yes", "**NO**", "**NO**"]
    assert "| 12.0 |" in lines[0] and "| failed |" in lines[2]
    # the table names a cell by its first line past the guard and comments
    assert bench._telling_line("if ready:\n    # VGG16: slow\n    x = f(1)\n") == "x = f(1)"
    assert bench._telling_line("if ready:\n") == "if ready:"
