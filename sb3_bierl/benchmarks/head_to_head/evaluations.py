"""
A run's evaluations, from the zoo's ``evaluations.npz``: reading them, the final return and whether the run
is complete, the wall-clock time of each evaluation, and the watcher that notes when new ones appear while
the run trains.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sb3_bierl.benchmarks.head_to_head.config import BenchmarkConfig


def load_evaluations(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """
    :param folder: A zoo run folder
    :return: The evaluation steps and mean returns of its ``evaluations.npz``, None if missing, unreadable
        (e.g. being written) or empty
    """
    try:
        with np.load(folder / "evaluations.npz") as data:
            timesteps, results = np.asarray(data["timesteps"], dtype=np.int64), np.asarray(data["results"], dtype=float)
    except Exception:  # noqa: BLE001 (missing, or half written: zipfile, EOF, value errors...)
        return None
    if len(timesteps) == 0:
        return None
    return timesteps, results.reshape(len(timesteps), -1).mean(axis=1)


def finish_evaluations(record: dict[str, Any], config: BenchmarkConfig) -> dict[str, Any]:
    """
    Fill in the final return and check that the run is complete (``done`` becomes ``failed`` otherwise).

    :param record: A record whose status is already ``done`` or ``failed``
    :param config: The benchmark
    :return: The record
    """
    folder = config.log_folder / record["run_folder"] if record.get("run_folder") else None
    evaluations = load_evaluations(folder) if folder is not None else None
    if evaluations is not None:
        record["final_return"] = float(evaluations[1][-1])
        record["last_eval_timestep"] = int(evaluations[0][-1])
    if record["status"] != "done":
        return record
    if evaluations is None:
        record.update(status="failed", error="no evaluations.npz in the run folder")
    elif evaluations[0][-1] <= record["n_timesteps"] - config.eval_freq:
        record.update(
            status="failed",
            error=f"incomplete: last evaluation at {evaluations[0][-1]} steps of a budget of {record['n_timesteps']}",
        )
    return record


def wall_clock(timesteps: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """
    :param timesteps: Evaluation steps of a run
    :param record: Its record
    :return: The wall-clock time of each evaluation: seen by the runner where it was, else interpolated
        at a constant step rate between the seen points, the training start and the process end
    """
    points = [(0.0, float(record.get("training_start_s") or 0.0))]
    points += [(float(steps), float(seconds)) for steps, seconds in record.get("eval_seen_at") or []]
    end = (float(max(record["n_timesteps"], timesteps[-1])), float(record.get("wall_time_s") or points[-1][1]))
    if end[0] > points[-1][0]:
        points.append(end)
    steps, seconds = np.array(points).T
    return np.interp(timesteps, steps, np.maximum.accumulate(seconds))


class EvaluationWatcher:
    """
    Notes when new evaluations appear in a run's ``evaluations.npz``.

    :param folder: The zoo run folder
    """

    def __init__(self, folder: Path):
        self.path = folder / "evaluations.npz"
        self.seen: list[list[float]] = []
        self._mtime_ns = 0
        self._count = 0

    def poll(self, elapsed_s: float) -> None:
        """:param elapsed_s: Seconds since the run started"""
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except OSError:
            return
        if mtime_ns == self._mtime_ns:
            return
        evaluations = load_evaluations(self.path.parent)
        if evaluations is None:
            return  # half written: next poll
        self._mtime_ns = mtime_ns
        if len(evaluations[0]) > self._count:
            self._count = len(evaluations[0])
            self.seen.append([int(evaluations[0][-1]), round(elapsed_s, 3)])
