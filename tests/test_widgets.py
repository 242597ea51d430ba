"""Shared widget plumbing: the cache and the explorer box."""
import numpy as np

from course_helpers import widgets


def test_cached_computes_once_per_key():
    calls = []
    key = ("test-cached", 1)
    first = widgets.cached(key, lambda: calls.append(1) or np.arange(3))
    second = widgets.cached(key, lambda: calls.append(1) or np.arange(5))
    assert len(calls) == 1 and second is first
    assert widgets.array_key(np.zeros(3)) != widgets.array_key(np.ones(3))
    assert widgets.array_key(np.zeros(3)) == widgets.array_key(np.zeros(3))


def test_interactive_plot_redraws_on_change_and_closes_old_figures():
    import matplotlib.pyplot as plt

    plt.close("all")
    drawn = []

    def draw(a):
        drawn.append(a)
        fig, ax = plt.subplots()
        ax.plot([0, a])
        return fig

    box = widgets.interactive_plot(draw, a=(1, 5, 1))
    first = box.state["figure"]
    slider = box.children[0]
    slider.value = 4
    assert drawn[-1] == 4 and box.state["figure"] is not first
    assert plt.get_fignums() == [box.state["figure"].number]  # the old figure was closed
    plt.close("all")


def test_explorer_shows_once_in_a_real_kernel(tmp_path):
    """Returned as a cell's last value, the explorer must not be drawn a second time."""
    import nbclient
    import nbformat

    src = ("import course_helpers as ch, matplotlib.pyplot as plt\n"
           "def draw(a):\n    fig, ax = plt.subplots(); ax.plot([0, a]); return fig\n"
           "ch.widgets.interactive_plot(draw, a=(1, 5, 1))")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    outs = nb.cells[0].outputs
    kinds = [o.output_type for o in outs]
    assert kinds.count("display_data") == 1 and "execute_result" not in kinds
    assert "application/vnd.jupyter.widget-view+json" in outs[kinds.index("display_data")]["data"]
    assert not any(o.output_type == "stream" and "cuda" in o.text.lower() for o in outs)
