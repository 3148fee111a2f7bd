"""
The learning-curve plots: evaluation return, IQM across seeds with its 95% bootstrap band, against
environment steps and against wall-clock time (one panel per env; needs matplotlib).
"""

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_bierl.benchmarks.aggregates import iqm_interval
from sb3_bierl.benchmarks.head_to_head.config import WALLCLOCK_CAPTION, BenchmarkConfig, Run
from sb3_bierl.benchmarks.head_to_head.evaluations import load_evaluations, wall_clock


def aggregate(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """
    :param curves: ``(x, y)`` of each seed, ``x`` increasing
    :return: x, and the IQM of y across seeds with the low and high ends of its 95% bootstrap interval (rliable),
        on the union of the seeds' x within the range that every seed covers (linear interpolation)
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
    iqm, low, high = np.array([iqm_interval(column, reps=CURVE_BOOTSTRAP_REPS) for column in values.T]).T
    return grid, iqm, low, high


#: Bootstrap resamples per point of a learning curve
CURVE_BOOTSTRAP_REPS = 300


def collect_curves(
    config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]
) -> dict[tuple[str, str], list[dict[str, np.ndarray]]]:
    """:return: ``{(algo, env): [{"steps", "seconds", "returns"} per done seed]}``"""
    curves: dict[tuple[str, str], list[dict[str, np.ndarray]]] = {}
    for run, record in records.items():
        if record.get("status") != "done":
            continue
        evaluations = load_evaluations(config.log_folder / record["run_folder"])
        if evaluations is None:
            continue
        steps, returns = evaluations
        curves.setdefault((run.algo, run.env_id), []).append(
            {"steps": steps.astype(float), "seconds": wall_clock(steps, record), "returns": returns}
        )
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
    :param x_key: ``"steps"`` or ``"seconds"``
    :param path: The PNG to write
    :return: Whether it was written (matplotlib may be missing)
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed: no plots (pip install ".[benchmark]" in a checkout of sb3-bierl)', file=sys.stderr)
        return False
    columns = min(3, len(config.envs))
    rows = math.ceil(len(config.envs) / columns)
    caption_inches = 0.6 if x_key == "seconds" else 0.3
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows + caption_inches), squeeze=False)
    longest = max((curve[x_key][-1] for group in curves.values() for curve in group), default=1.0)
    divider, unit = (1.0, "environment steps") if x_key == "steps" else time_unit(longest)
    for axis, env in zip(axes.flat, config.envs, strict=False):  # more axes than envs
        for algo in config.algos:
            group = curves.get((algo.name, env.env_id))
            if not group:
                continue
            x, iqm, low, high = aggregate([(curve[x_key], curve["returns"]) for curve in group])
            line = axis.plot(x / divider, iqm, label=f"{algo.name} ({len(group)})", marker="." if len(x) < 30 else None)
            axis.fill_between(x / divider, low, high, alpha=0.2, color=line[0].get_color())
        axis.set_title(env.env_id)
        axis.set_xlabel(unit if x_key == "steps" else f"wall-clock time [{unit}]")
        axis.set_ylabel("evaluation return")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(config.envs) :]:
        axis.set_visible(False)
    caption = "IQM across seeds, 95% bootstrap band (rliable; number of seeds in brackets)."
    if x_key == "seconds":
        caption += " " + WALLCLOCK_CAPTION
    figure.text(0.01, 0.005, caption, fontsize=7, wrap=True, va="bottom")
    figure.tight_layout(rect=(0, caption_inches / (3.8 * rows + caption_inches), 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
