"""
The learning-curve plots: evaluation return, IQM across seeds with its 95% bootstrap band, against
environment steps, against wall-clock time and, for runs with a CPU-time budget, against training CPU time
(one panel per env; needs matplotlib).
"""

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_bierl.benchmarks.head_to_head.config import CPU_CAPTION, WALLCLOCK_CAPTION, BenchmarkConfig, Run
from sb3_bierl.benchmarks.head_to_head.evaluations import load_evaluations, train_cpu_time, wall_clock

#: The x axes: key of the curves, axis label (None: a time, whose unit is chosen), caption
X_AXES = {
    "steps": ("environment steps", ""),
    "seconds": ("wall-clock time", WALLCLOCK_CAPTION),
    "cpu": ("training CPU time", CPU_CAPTION),
}


def aggregate(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """
    :param curves: ``(x, y)`` of each seed, ``x`` increasing
    :return: x, and the IQM of y across seeds with the low and high ends of its 95% bootstrap interval
        (:func:`iqm_band`), on the union of the seeds' x within the range that every seed covers (linear
        interpolation)
    """
    if len(curves) == 1:
        x, y = curves[0]
        y = np.asarray(y, float)
        return np.asarray(x, float), y, y, y
    low, high = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    grid = grid[(grid >= low) & (grid <= high)]
    if len(grid) == 0:
        grid = np.array([high])
    values = np.array([np.interp(grid, x, y) for x, y in curves])
    return grid, *iqm_band(values)


#: Bootstrap resamples of a learning curve's band
CURVE_BOOTSTRAP_REPS = 1000


def iqm_band(values: np.ndarray, reps: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    The IQM across seeds at each point of a curve and its 95% percentile-bootstrap interval: rliable's
    ``aggregate_iqm`` (the 25% trimmed mean) on seeds resampled with replacement, the same resamples at every
    point (vectorised: a campaign's curves have thousands of points, rliable's bootstrap takes ~0.1 s each).

    :param values: (n_seeds, n_points)
    :param reps: Bootstrap resamples (default :data:`CURVE_BOOTSTRAP_REPS`)
    :param seed: Seed of the bootstrap
    :return: (n_points,) the IQM, and the low and high ends of its interval
    """
    from scipy.stats import trim_mean

    values = np.asarray(values, dtype=float)
    resamples = np.random.default_rng(seed).integers(0, len(values), size=(reps or CURVE_BOOTSTRAP_REPS, len(values)))
    estimates = trim_mean(values[resamples], 0.25, axis=1)  # (reps, n_points)
    low, high = np.percentile(estimates, [2.5, 97.5], axis=0)
    return trim_mean(values, 0.25, axis=0), low, high


def collect_curves(
    config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]
) -> dict[tuple[str, str], list[dict[str, np.ndarray]]]:
    """
    :return: ``{(algo, env): [{"steps", "seconds", "returns"} per done seed]}``, with ``"cpu"`` (training CPU
        seconds before each evaluation) for runs with a CPU log
    """
    curves: dict[tuple[str, str], list[dict[str, np.ndarray]]] = {}
    for run, record in records.items():
        if record.get("status") != "done":
            continue
        evaluations = load_evaluations(config.log_folder / record["run_folder"])
        if evaluations is None:
            continue
        steps, returns = evaluations
        curve = {"steps": steps.astype(float), "seconds": wall_clock(steps, record), "returns": returns}
        if record.get("steps_reached") is not None:
            curve["cpu"] = train_cpu_time(steps, record)
        curves.setdefault((run.algo, run.env_id), []).append(curve)
    return curves


def time_unit(seconds: float) -> tuple[float, str]:
    """:return: A divider and unit for an axis whose values go up to ``seconds``"""
    if seconds < 120:
        return 1.0, "s"
    if seconds < 7200:
        return 60.0, "min"
    return 3600.0, "h"


def plot_curves(
    config: BenchmarkConfig, curves: Mapping[tuple[str, str], list[dict[str, np.ndarray]]], x_key: str, path: Path
) -> bool:
    """
    :param config: The benchmark
    :param curves: From :func:`collect_curves`
    :param x_key: ``"steps"``, ``"seconds"`` or ``"cpu"`` (:data:`X_AXES`; curves without it are left out)
    :param path: The PNG to write
    :return: Whether it was written (matplotlib may be missing; no curve has ``x_key``)
    """
    curves = {key: [curve for curve in group if x_key in curve] for key, group in curves.items()}
    if not any(curves.values()):
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            'matplotlib is not installed: no plots (pip install ".[benchmark]" in a checkout of sb3-bierl)',
            file=sys.stderr,
        )
        return False
    columns = min(3, len(config.envs))
    rows = math.ceil(len(config.envs) / columns)
    label, explanation = X_AXES[x_key]
    caption_inches = 0.6 if explanation else 0.3
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows + caption_inches), squeeze=False)
    longest = max((curve[x_key][-1] for group in curves.values() for curve in group), default=1.0)
    divider, unit = (1.0, "") if x_key == "steps" else time_unit(longest)
    for axis, env in zip(axes.flat, config.envs, strict=False):  # more axes than envs
        for algo in config.algos:
            group = curves.get((algo.name, env.env_id))
            if not group:
                continue
            x, iqm, low, high = aggregate([(curve[x_key], curve["returns"]) for curve in group])
            line = axis.plot(x / divider, iqm, label=f"{algo.name} ({len(group)})", marker="." if len(x) < 30 else None)
            axis.fill_between(x / divider, low, high, alpha=0.2, color=line[0].get_color())
        axis.set_title(env.env_id)
        axis.set_xlabel(f"{label} [{unit}]" if unit else label)
        axis.set_ylabel("evaluation return")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(config.envs) :]:
        axis.set_visible(False)
    caption = "IQM across seeds, 95% bootstrap band (rliable; number of seeds in brackets)."
    if explanation:
        caption += " " + explanation
    figure.text(0.01, 0.005, caption, fontsize=7, wrap=True, va="bottom")
    figure.tight_layout(rect=(0, caption_inches / (3.8 * rows + caption_inches), 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
