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


def test_array_key_sees_every_value_of_a_large_photo_set():
    """A change anywhere in 40 photos of 224 px (24 MB) gives a new key, so an edited photo set
    never reuses activations cached for the old one; equal contents give equal keys."""
    rng = np.random.default_rng(0)
    photos = rng.random((40, 224, 224, 3), dtype=np.float32)
    key = widgets.array_key(photos)
    assert widgets.array_key(photos.copy()) == key
    assert widgets.array_key(np.asfortranarray(photos)) == key          # same values, other layout
    for where in [(0, 0, 0, 0), (20, 100, 7, 1), (39, 223, 223, 2)]:   # head, middle block, tail
        edited = photos.copy()
        edited[where] += 1e-3
        assert widgets.array_key(edited) != key, where
    swapped = photos.copy()
    swapped[[30, 31]] = swapped[[31, 30]]                               # two photos trade places
    assert widgets.array_key(swapped) != key
    assert widgets.array_key(photos.reshape(20, 448, 224, 3)) != key      # same bytes, other shape
    assert widgets.array_key(photos.astype(np.float64)) != key


def test_forget_model_drops_only_that_models_results():
    a, b = object.__new__(type("A", (), {})), object.__new__(type("B", (), {}))
    ka, kb = widgets.model_key(a), widgets.model_key(b)
    assert isinstance(ka, str) and ka != kb
    widgets.cached(("t", ka, 3), lambda: 1)
    widgets.cached(("t", kb, 3), lambda: 2)
    widgets.forget_model(a)
    keys = widgets.cache_info()["keys"]
    assert ("t", ka, 3) not in keys and ("t", kb, 3) in keys


def _pixels(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def test_interactive_plot_redraws_on_change_and_keeps_no_pyplot_figures():
    import matplotlib.pyplot as plt

    plt.close("all")
    drawn = []

    def draw(a):
        drawn.append(a)
        fig, ax = plt.subplots()
        ax.plot([0, a])
        return fig

    box = widgets.interactive_plot(draw, a=(1, 5, 1))
    first, first_png = box.state["figure"], box.state["png"]
    slider = box.children[0]
    slider.value = 4
    assert drawn[-1] == 4 and box.state["figure"] is not first
    assert not np.array_equal(_pixels(first_png), _pixels(box.state["png"]))
    assert plt.get_fignums() == []   # rendered by the explorer, never shown twice by pyplot


def _full_redraw(live) -> np.ndarray:
    """The same figure drawn the slow way: every artist, no saved background."""
    for artist in live.dynamic:
        artist.set_animated(False)
    try:
        live.figure.canvas.draw()
        return np.asarray(live.figure.canvas.buffer_rgba()).copy()
    finally:
        for artist in live.dynamic:
            artist.set_animated(True)


def test_live_figure_blitting_equals_a_full_redraw():
    import matplotlib.pyplot as plt

    from course_helpers import plotting

    fig, (a, b) = plt.subplots(1, 2, figsize=(4, 2))
    img = a.imshow(np.zeros((4, 4)), cmap="gray", vmin=0, vmax=1)
    a.axis("off")   # as in the explorers: static parts must not change with the data
    line, = b.plot([0, 1], [0, 1])
    live = widgets.LiveFigure(fig, [img, a.set_title(" "), b])
    pictures = []
    for step in range(3):
        plotting.set_image(img, np.random.default_rng(step).random((4 + step, 6)))
        a.title.set_text(f"step {step}")
        line.set_data([0, 1, 2], [step, 1, -step])
        b.relim()
        b.autoscale_view()
        fast = _pixels(live.png())
        assert np.array_equal(fast, _full_redraw(live)), f"step {step}: blit differs"
        pictures.append(fast)
    assert not np.array_equal(pictures[0], pictures[1])   # the updates really show


def test_explorers_blit_what_a_full_redraw_draws(tiny_model):
    """Every explorer that updates its figure in place draws the same pixels as a full redraw
    of that figure, after its controls moved (no stale artist left in the background)."""
    import contextlib
    import io

    import course_helpers as ch

    photos = {"a": np.random.default_rng(0).random((24, 24, 3)), "b": np.zeros((24, 24, 3))}
    cases = [(ch.filters.kernel_explorer(tiny_model, photos), "kernel", 2),
             (ch.activations.activation_explorer(tiny_model, photos), "channel", 3),
             (ch.patches.top_patches_explorer(tiny_model, photos, k=2), "channel", 1),
             (ch.occlusion.occlusion_explorer(tiny_model, photos), "fill", "black"),
             (ch.saliency.saliency_explorer(tiny_model, photos), "image", "b")]
    for box, name, value in cases:
        control = next(w for w in box.kwargs_widgets if w._kwarg == name)
        before = _pixels(box.state["png"])
        with contextlib.redirect_stdout(io.StringIO()):
            control.value = value
        after = _pixels(box.state["png"])
        live = box.state["live"]
        assert not np.array_equal(before, after), f"{name}: the picture did not change"
        assert np.array_equal(after, _full_redraw(live)), f"{name}: blit differs from a redraw"


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


def test_overlay_reduces_a_raw_gradient_and_says_so():
    import matplotlib.pyplot as plt
    import pytest

    from course_helpers import plotting

    rng = np.random.default_rng(0)
    image = rng.random((8, 8, 3))
    grad = rng.normal(size=(8, 8, 3))
    expected = np.zeros((8, 8))
    for r in range(8):
        for c in range(8):
            expected[r, c] = max(abs(grad[r, c, k]) for k in range(3))
    for raw in (grad, grad[None]):                         # one image, or a batch of one
        with pytest.warns(UserWarning, match=r"\(8, 8, 3\).*largest absolute value.*reduce_channels"):
            ax = plotting.overlay(image, raw)
        np.testing.assert_allclose(ax.images[1].get_array(), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"2-D map \(H, W\), got shape \(8, 8, 5\)"):
        plotting.overlay(image, np.zeros((8, 8, 5)))
    plt.close("all")


def test_image_grid_needs_images():
    import matplotlib.pyplot as plt
    import pytest

    from course_helpers import plotting

    for empty in ([], np.zeros((0, 8, 8, 3))):
        with pytest.raises(ValueError, match="images is empty: pass at least one image"):
            plotting.image_grid(empty)
    with pytest.raises(TypeError, match="ncols must be a whole number"):
        plotting.image_grid([np.zeros((4, 4))], ncols="2")
    fig = plotting.image_grid([np.zeros((4, 4))] * 3, ncols=2.0)
    assert sum(1 for ax in fig.axes if ax.images) == 3
    plt.close("all")
