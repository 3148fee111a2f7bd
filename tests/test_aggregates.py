"""rliable aggregates of the benchmark reports (issue 12)."""

import numpy as np
import pytest

pytest.importorskip("rliable")

from sb3_bierl.benchmarks import aggregates
from sb3_bierl.benchmarks.aggregates import improvement_probability, iqm_interval


@pytest.fixture(autouse=True)
def few_resamples(monkeypatch):
    """These tests check estimates and the order of the interval's ends: 100 resamples, not 2000 (tens of seconds)"""
    monkeypatch.setattr(aggregates, "BOOTSTRAP_REPS", 100)


def test_iqm_ignores_an_outlier_and_brackets_itself():
    iqm, low, high = iqm_interval([1.0, 2.0, 3.0, 4.0, 100.0])
    assert iqm == pytest.approx(3.0)  # the interquartile mean, not the mean (22)
    assert low <= iqm <= high < 100.0
    assert iqm_interval([7.5]) == (7.5, 7.5, 7.5)
    with pytest.raises(ValueError, match="No value"):
        iqm_interval([])


def test_probability_of_improvement():
    better = np.array([[10.0, 5.0], [11.0, 6.0], [12.0, 7.0]])  # 3 seeds x 2 tasks
    worse = better - 20.0
    assert improvement_probability(better, worse)[0] == 1.0
    assert improvement_probability(worse, better)[0] == 0.0
    assert improvement_probability(better, better)[0] == pytest.approx(0.5)  # ties count half
    with pytest.raises(ValueError, match="same tasks"):
        improvement_probability(better, worse[:, :1])


def test_improvement_rows_per_task_and_over_tasks_on_the_common_seeds():
    from sb3_bierl.benchmarks.aggregates import improvement_rows

    table = {
        ("A", "x"): {0: 2.0, 1: 3.0, 2: 9.0},
        ("A", "y"): {0: 1.0, 1: 1.5},
        ("B", "x"): {0: 0.0, 1: 0.0},
        ("B", "y"): {0: 1.0, 1: 1.0},
    }
    ((x, y, seeds, per_task, (p, low, high)),) = improvement_rows(table, ["A", "B"], [("x", "y"), ("x", "z")])
    assert (x, y, seeds) == ("x", "y", [0, 1])  # seed 2 is not y's; ("x", "z") has no run: left out
    assert per_task == [1.0, 0.0] and p == pytest.approx(0.5) and low <= p <= high
    assert improvement_rows(table, [], [("x", "y")]) == []
