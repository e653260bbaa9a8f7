"""The report's shared styling helpers: log axes a reader can read, zeros placed below the
data, labels of log-spaced values."""

import matplotlib.pyplot as plt
import pytest

from optbench.report import style
from tests.report.figure_checks import labelled_ticks


@pytest.mark.parametrize("values", [(1.2, 2.3), (9.0, 13.0), (0.3, 2.2), (2e-5, 7e-5),
                                    (1e-22, 50.0), (5.0, 5.0001), (1.08, 2.32)])
def test_a_log_axis_labels_three_ticks_over_any_range(values):
    figure, ax = plt.subplots()
    ax.plot([0, 1], values)
    style.log_axis(ax, "y")
    labels = labelled_ticks(ax.yaxis)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    plt.close(figure)


def test_zeros_go_half_a_decade_below_the_smallest_positive_value():
    assert style.zero_floor([0.0, 2.27e-13, 5.0]) == pytest.approx(10 ** -13.5)
    assert style.zero_floor([0.0, float("inf")]) == 1.0


def test_values_are_labelled_without_rounding_into_the_next_decade():
    assert [style.number(v) for v in (9.97, 1e-4, 2.5e-5, 1e12, 2.0)] == [
        "9.97", "10⁻⁴", "2.5×10⁻⁵", "10¹²", "2"]
    assert style.number(9.97, digits=2) == "10¹"
    assert style.tick_labels([1.25, 1.5, 1.75]) == ["1.25", "1.5", "1.75"]
