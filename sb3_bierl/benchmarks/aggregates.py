"""
Cross-seed and cross-task aggregates with rliable (Agarwal et al. 2021, "Deep Reinforcement Learning at the
Edge of the Statistical Precipice"): the interquartile mean with a 95% stratified-bootstrap interval, and the
probability of improvement. ``pip install ".[benchmark]"`` in a checkout of sb3-bierl (rliable, arch<8).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

#: Bootstrap resamples of the intervals (read at each call: a test may lower it)
BOOTSTRAP_REPS = 2000


def interval_estimates(
    data: Mapping[str, Any], metric: Callable[..., Any], reps: int | None = None, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    rliable's ``get_interval_estimates``, reproducible: the same data and seed give the same intervals.
    rliable's stratified bootstrap draws its resamples from NumPy's global generator whatever ``random_state``
    it is given (rliable 1.2 with arch 7), so the global generator is seeded here.

    :param data: Name -> ``(n_runs, n_tasks)`` scores, or a tuple of such arrays (e.g. ``(x, y)`` for
        ``metrics.probability_of_improvement``)
    :param metric: An rliable metric (or a function of the scores returning an array of metrics)
    :param reps: Bootstrap resamples (None: :data:`BOOTSTRAP_REPS`)
    :param seed: Seed of the bootstrap
    :return: The point estimates and the 95% intervals (``(2, ...)``: low, high) by name
    """
    from rliable import library as rly

    np.random.seed(seed)
    return rly.get_interval_estimates(dict(data), metric, reps=BOOTSTRAP_REPS if reps is None else reps)


def iqm_interval(values: Sequence[float], reps: int | None = None, seed: int = 0) -> tuple[float, float, float]:
    """
    :param values: (n_runs,) one task's scores, one per seed
    :param reps: Bootstrap resamples (None: :data:`BOOTSTRAP_REPS`)
    :param seed: Seed of the bootstrap
    :return: the IQM, and the low and high ends of its 95% bootstrap interval (all three equal for one run)
    :raises ValueError: if ``values`` is empty
    """
    from rliable import metrics

    scores = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    if scores.size == 0:
        raise ValueError("No value to aggregate")
    if len(scores) == 1:
        value = float(scores[0, 0])
        return value, value, value
    estimates, intervals = interval_estimates({"x": scores}, metrics.aggregate_iqm, reps, seed)
    low, high = np.ravel(intervals["x"])
    return float(np.ravel(estimates["x"])[0]), float(low), float(high)


def improvement_probability(
    x: np.ndarray, y: np.ndarray, reps: int | None = None, seed: int = 0
) -> tuple[float, float, float]:
    """
    P(X > Y): the probability that a run of X beats a run of Y on a task drawn at random (Mann-Whitney, ties
    count half), averaged over tasks, with a 95% stratified-bootstrap interval.

    :param x: (n_runs_x, n_tasks) final returns of X (no normalisation needed: a per-task rank statistic)
    :param y: (n_runs_y, n_tasks) final returns of Y, the same tasks in the same order
    :param reps: Bootstrap resamples (None: :data:`BOOTSTRAP_REPS`)
    :param seed: Seed of the bootstrap
    :return: the probability, and the low and high ends of its interval
    :raises ValueError: if the task counts differ or a side has no run
    """
    from rliable import metrics

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or 0 in x.shape or 0 in y.shape:
        raise ValueError(f"Expected (runs, tasks) arrays on the same tasks, got {x.shape} and {y.shape}")
    estimates, intervals = interval_estimates({"p": (x, y)}, metrics.probability_of_improvement, reps, seed)
    low, high = np.ravel(intervals["p"])
    return float(np.ravel(estimates["p"])[0]), float(low), float(high)


def improvement_rows(
    table: Mapping[tuple[str, str], Mapping[int, float]], envs: Sequence[str], pairs: Sequence[tuple[str, str]]
) -> list[tuple[str, str, list[int], list[float], tuple[float, float, float]]]:
    """
    P(X > Y) per task (rliable's ``metrics.probability_of_improvement``) and over the tasks, with an interval
    (:func:`improvement_probability`), on the seeds both have on every task.

    :param table: ``(env, algo) -> {seed: final return}`` (``meta_level.final_returns``)
    :param envs: The tasks
    :param pairs: ``(x, y)`` for P(x > y); a pair without a seed common to every task is left out
    :return: one row per pair: ``(x, y, seeds, P per task, (P, low, high) over the tasks)``; none without a task
    """
    from rliable import metrics

    if not envs:
        return []
    rows = []
    for x, y in pairs:
        seeds = sorted(set.intersection(*(set(table.get((e, a), {})) for e in envs for a in (x, y))))
        if not seeds:
            continue
        matrix = {a: np.array([[table[(e, a)][s] for e in envs] for s in seeds]) for a in (x, y)}
        # a task's point estimate needs no bootstrap
        per_task = [
            float(metrics.probability_of_improvement(matrix[x][:, [k]], matrix[y][:, [k]])) for k in range(len(envs))
        ]
        rows.append((x, y, seeds, per_task, improvement_probability(matrix[x], matrix[y])))
    return rows
