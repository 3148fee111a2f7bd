"""
Aggregates across tasks on normalised scores: each run's final return normalised per task by the min and max
of the final returns of every run of that task (all algorithms, all seeds), so 0 is the worst run of the task
and 1 the best; the interquartile mean of the normalised scores across runs and tasks per algorithm (rliable,
95% stratified-bootstrap interval) and the performance profile (rliable: the fraction of runs whose score
exceeds each threshold tau, with its 95% bootstrap band), on the tasks where every algorithm has every seed done.
"""

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_bierl.benchmarks import aggregates
from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.head_to_head.config import BenchmarkConfig, Run

#: Thresholds of the performance profile
TAUS = np.linspace(0.0, 1.0, 101)
#: Bootstrap resamples of the performance profile's band (a band on a plot; rliable takes ~8 ms per resample)
PROFILE_BOOTSTRAP_REPS = 500
NORMALISATION_CAPTION = (
    "Normalised score: a run's final return, min-max normalised per task over the final returns of every run "
    "of that task (all algorithms and seeds): 0 is the task's worst run, 1 its best."
)


def normalise(returns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """
    :param returns: ``{algo: (n_runs, n_tasks) final returns}``, the same tasks in the same order
    :return: The same, min-max normalised per task over every run of every algorithm (a task whose runs all
        scored the same gets 0.5)
    """
    stacked = np.concatenate(list(returns.values()), axis=0)
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return {algo: np.where(high > low, (values - low) / span, 0.5) for algo, values in returns.items()}


def normalised_scores(
    config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]
) -> tuple[list[str], dict[str, np.ndarray]]:
    """
    :param config: The benchmark
    :param records: The records of its runs
    :return: The tasks where every algorithm has every seed done, and ``{algo: (n_seeds, n_tasks)}`` normalised
        scores on them (:func:`normalise`); no task: ``([], {})``
    """
    finals: dict[tuple[str, str], dict[int, float]] = {}
    for run, record in records.items():
        if record.get("status") == "done" and record.get("final_return") is not None:
            finals.setdefault((run.algo, run.env_id), {})[run.seed] = float(record["final_return"])
    seeds = list(config.seeds)
    tasks = [
        env.env_id for env in config.envs
        if all(set(finals.get((algo.name, env.env_id), {})) >= set(seeds) for algo in config.algos)
    ]  # fmt: skip
    if not tasks:
        return [], {}
    returns = {
        algo.name: np.array([[finals[algo.name, task][seed] for task in tasks] for seed in seeds])
        for algo in config.algos
    }
    return tasks, normalise(returns)


def aggregate_table(scores: Mapping[str, np.ndarray], reps: int | None = None, seed: int = 0) -> list[str]:
    """
    :param scores: ``{algo: (n_runs, n_tasks)}`` normalised scores
    :param reps: Bootstrap resamples (default: ``aggregates.BOOTSTRAP_REPS``)
    :param seed: Seed of the bootstrap
    :return: The IQM of each algorithm's normalised scores across runs and tasks, with its 95% interval
    """
    from rliable import metrics

    estimates, intervals = aggregates.interval_estimates(scores, metrics.aggregate_iqm, reps or aggregates.BOOTSTRAP_REPS, seed)
    rows = [
        [
            algo,
            f"{float(np.ravel(estimates[algo])[0]):.2f} [{np.ravel(intervals[algo])[0]:.2f}, {np.ravel(intervals[algo])[1]:.2f}]",
        ]
        for algo in scores
    ]
    return markdown_table(["algo", "IQM of normalised scores [95% interval]"], rows)


def plot_performance_profile(
    scores: Mapping[str, np.ndarray], tasks: Sequence[str], path: Path, reps: int | None = None, seed: int = 0
) -> bool:
    """
    :param scores: ``{algo: (n_runs, n_tasks)}`` normalised scores
    :param tasks: The tasks, for the caption
    :param path: The PNG to write
    :param reps: Bootstrap resamples of the band (default: :data:`PROFILE_BOOTSTRAP_REPS`)
    :param seed: Seed of the bootstrap
    :return: Whether it was written (matplotlib or rliable's plotting, seaborn, may be missing)
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from rliable import library as rly
        from rliable import plot_utils
    except ImportError as error:
        print(
            f'no performance profile ({error}): pip install ".[benchmark]" in a checkout of sb3-bierl', file=sys.stderr
        )
        return False
    np.random.seed(seed)
    profiles, intervals = rly.create_performance_profile(dict(scores), TAUS, reps=reps or PROFILE_BOOTSTRAP_REPS)
    figure, axis = plt.subplots(figsize=(7, 4.6))
    plot_utils.plot_performance_profiles(
        profiles, TAUS, performance_profile_cis=intervals, ax=axis, xlabel=r"normalised score $\tau$",
        ylabel=r"fraction of runs with score $> \tau$",
    )  # fmt: skip
    labels = [f"{algo} ({scores[algo].size} runs)" for algo in profiles]
    axis.legend(axis.get_lines()[: len(labels)], labels, fontsize=8, loc="lower left")  # one line per algo, in order
    caption = f"{len(tasks)} tasks: {', '.join(tasks)}. {NORMALISATION_CAPTION} 95% bootstrap band (rliable)."
    figure.text(0.01, 0.005, caption, fontsize=7, wrap=True, va="bottom")
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
