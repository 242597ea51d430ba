"""Lesson 8's curve plot: one curve per method, or the mean of several (the ImageNet part)."""
import matplotlib
import numpy as np
import pytest

import course_helpers as ch

matplotlib.use("Agg")


def _curve(probs):
    probs = np.asarray(probs, np.float64)
    frac = np.linspace(0, 1, len(probs))
    return ch.sanity.Curve(frac, probs, float(np.trapezoid(probs, frac)))


def test_a_list_of_curves_is_drawn_as_its_mean():
    import matplotlib.pyplot as plt

    a, b = _curve([1.0, 0.5, 0.2, 0.0]), _curve([0.8, 0.7, 0.1, 0.1])
    one = _curve([0.2, 0.6, 0.9, 1.0])
    fig = ch.sanity.plot_curves({"m": ([a, b], one)}, title="t")
    left, right = fig.axes[:2]
    (line,) = left.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [0.9, 0.6, 0.15, 0.05])
    np.testing.assert_allclose(line.get_xdata(), a.fraction)
    mean_area = np.trapezoid([0.9, 0.6, 0.15, 0.05], a.fraction)     # area of the mean curve
    assert mean_area == pytest.approx((a.auc + b.auc) / 2)
    assert left.get_legend().get_texts()[0].get_text() == f"m ({mean_area:.2f})"
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), one.probability)
    assert right.get_legend().get_texts()[0].get_text() == f"m ({one.auc:.2f})"
    plt.close(fig)


def test_curves_that_cannot_be_averaged_are_refused():
    a = _curve([1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="different steps"):
        ch.sanity.plot_curves({"m": ([a, _curve([1.0, 0.4, 0.2, 0.0])], a)})
    with pytest.raises(TypeError, match="Curve"):
        ch.sanity.plot_curves({"m": ([], a)})
    with pytest.raises(TypeError, match="Curve"):
        ch.sanity.plot_curves({"m": ([a, 0.3], a)})
    with pytest.raises(ValueError, match="pair"):
        ch.sanity.plot_curves({"m": a})
    with pytest.raises(ValueError, match="non-empty dict"):
        ch.sanity.plot_curves({})
