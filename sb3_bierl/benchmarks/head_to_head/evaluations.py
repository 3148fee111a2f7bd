"""
A run's evaluations, from the zoo's ``evaluations.npz`` and, with a CPU-time budget, the run's CPU log
(``cpu_time.csv``): reading them, the final return, steps reached and CPU times and whether the run is complete,
the wall-clock and training CPU time of each evaluation, and the watcher that notes when new evaluations appear
while the run trains.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sb3_bierl.benchmarks.cpu_budget import CPU_LOG_NAME, CPULog, read_cpu_log
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


def cpu_fields(log: CPULog) -> dict[str, Any]:
    """
    :param log: A run's CPU log, which has its end row
    :return: The record's fields from it: ``steps_reached`` (environment steps at the end), ``train_cpu_s`` and
        ``eval_cpu_s`` (CPU seconds of training, and of evaluations, in all), ``stopped_by`` (``"cpu_budget"``
        or ``"n_timesteps"``) and ``cpu_evaluations`` (``[steps, train_cpu_s, eval_cpu_s, wall_s]`` at each
        evaluation: training CPU seconds before it, evaluation CPU seconds with it, wall-clock seconds after it)
    """
    assert log.end is not None
    steps, train_s, eval_s, _ = log.end
    return {
        "steps_reached": steps,
        "train_cpu_s": train_s,
        "eval_cpu_s": eval_s,
        "stopped_by": "cpu_budget" if log.exhausted else "n_timesteps",
        "cpu_evaluations": [list(row) for row in log.evaluations],
    }


def finish_evaluations(record: dict[str, Any], config: BenchmarkConfig) -> dict[str, Any]:
    """
    Fill in the final return (and, with a CPU-time budget, the CPU log's fields: :func:`cpu_fields`) and check
    that the run is complete (``done`` becomes ``failed`` otherwise): it reached its step budget (its last
    evaluation less than ``eval_freq`` before it), or its CPU-time budget stopped it.

    :param record: A record whose status is already ``done`` or ``failed``
    :param config: The benchmark
    :return: The record
    """
    folder = config.log_folder / record["run_folder"] if record.get("run_folder") else None
    evaluations = load_evaluations(folder) if folder is not None else None
    if evaluations is not None:
        record["final_return"] = float(evaluations[1][-1])
        record["last_eval_timestep"] = int(evaluations[0][-1])
    budget = record.get("cpu_budget_s")
    cpu_log = read_cpu_log(folder) if folder is not None and budget is not None else None
    if cpu_log is not None and cpu_log.end is not None:
        record.update(cpu_fields(cpu_log))
    if record["status"] != "done":
        return record
    eval_freq = record.get("eval_freq", config.eval_freq)
    if evaluations is None:
        record.update(status="failed", error="no evaluations.npz in the run folder")
    elif budget is not None and (cpu_log is None or cpu_log.end is None):
        record.update(status="failed", error=f"no complete CPU log ({CPU_LOG_NAME}) in the run folder")
    elif budget is not None and cpu_log.budget_s != budget:
        record.update(status="failed", error=f"the CPU log's budget is {cpu_log.budget_s} s, not {budget} s")
    elif record.get("stopped_by") != "cpu_budget" and evaluations[0][-1] <= record["n_timesteps"] - eval_freq:
        record.update(
            status="failed",
            error=f"incomplete: last evaluation at {evaluations[0][-1]} steps of a budget of {record['n_timesteps']}",
        )
    return record


def train_cpu_time(timesteps: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """
    :param timesteps: Evaluation steps of a run with a CPU-time budget
    :param record: Its record (with ``cpu_evaluations``)
    :return: The training CPU seconds before each evaluation: from the CPU log, interpolated linearly in steps
        (from 0 at step 0) for an evaluation the log does not have
    """
    points = [(0.0, 0.0)] + [(float(row[0]), float(row[1])) for row in record.get("cpu_evaluations") or []]
    if record.get("steps_reached") is not None:
        points.append((float(record["steps_reached"]), float(record["train_cpu_s"])))
    steps, seconds = np.array(sorted(points)).T
    return np.interp(timesteps, steps, np.maximum.accumulate(seconds))


def wall_clock(timesteps: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """
    :param timesteps: Evaluation steps of a run
    :param record: Its record
    :return: The wall-clock time of each evaluation: seen by the runner where it was, else interpolated
        at a constant step rate between the seen points, the training start and the process end (at the
        steps reached, or the step budget)
    """
    points = [(0.0, float(record.get("training_start_s") or 0.0))]
    points += [(float(steps), float(seconds)) for steps, seconds in record.get("eval_seen_at") or []]
    last = record.get("steps_reached") or record["n_timesteps"]  # a CPU budget stops runs before their step cap
    end = (float(max(last, timesteps[-1])), float(record.get("wall_time_s") or points[-1][1]))
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
