"""
A CPU-time budget for any SB3 algorithm (issue 13): training stops once the process, and the worker processes
it started, have used a given number of CPU seconds *of training*. A fair budget on a shared machine: a busy
machine stretches the wall clock, not the CPU time. The RL Zoo loads it from a hyperparameter file's
``callback:`` key::

    HalfCheetah-v5:
      n_timesteps: !!float 1e7            # an upper bound: the budget stops the run first
      callback:
        - sb3_bierl.benchmarks.cpu_budget.CPUTimeBudget:
            budget_s: 3600

Evaluations do not count: the CPU time spent inside the ``EvalCallback`` s of the run (the zoo's evaluation,
``--eval-freq``) is measured and left out, so that an algorithm that takes more steps, and so evaluates more
often, does not lose budget to it. When the budget stops training, the evaluation callbacks evaluate once more,
so that the last evaluation is the return at the budget. The callback writes ``cpu_time.csv`` (one row per
evaluation and one at the end: steps, training and evaluation CPU seconds, wall-clock seconds; read it with
:func:`read_cpu_log`) next to the evaluations' ``evaluations.npz``.

Needs ``psutil`` (``pip install ".[zoo]"`` or ``".[benchmark]"`` in a checkout of sb3-bierl).
"""

import csv
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

#: The CPU log's file name, in the run folder
CPU_LOG_NAME = "cpu_time.csv"
CPU_LOG_COLUMNS = ("event", "timesteps", "train_cpu_s", "eval_cpu_s", "wall_s", "exhausted")
_HEADER_PREFIX = "# sb3_bierl CPUTimeBudget budget_s="


def process_tree_cpu_seconds() -> float:
    """
    CPU time (user + system, seconds) of this process, of its live descendants, and of the children it has
    already waited for. Ray actors are not counted: they are the Ray daemon's children, not this process's.

    :return: the total so far
    :raises ImportError: if psutil is not installed
    """
    try:
        import psutil
    except ImportError:
        raise ImportError('CPUTimeBudget needs psutil: pip install ".[benchmark]" in a checkout of sb3-bierl') from None
    process = psutil.Process()
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # it ended meanwhile: counted in children_* once waited for
        total += child_times.user + child_times.system
    return total


class CPUBudgetExhausted(KeyboardInterrupt):
    """
    Raised by :class:`CPUTimeBudget` when an algorithm goes on calling ``on_step`` after the budget asked it to
    stop (sb3-contrib's ARS ignores a callback's ``False``). A ``KeyboardInterrupt``, so that the RL Zoo handles it
    as it handles Ctrl-C: it stops training, then saves the model; outside the Zoo, catch it around ``learn``.
    """


def find_eval_callbacks(callback: Any, found: list[EvalCallback] | None = None) -> list[EvalCallback]:
    """
    :param callback: A callback tree (``CallbackList`` s' ``callbacks``, ``EventCallback`` s' ``callback``)
    :return: The ``EvalCallback`` instances in it (subclasses included), in order, each once
    """
    found = [] if found is None else found
    if isinstance(callback, EvalCallback):
        if all(callback is not other for other in found):
            found.append(callback)
        return found  # its children (callback_on_new_best) run inside its evaluation
    for child in [*(getattr(callback, "callbacks", None) or []), getattr(callback, "callback", None)]:
        if isinstance(child, BaseCallback):
            find_eval_callbacks(child, found)
    return found


class CPUTimeBudget(BaseCallback):
    """
    Stop training when the CPU time used by training reaches ``budget_s``: the CPU time of this process and of
    its worker processes (:func:`process_tree_cpu_seconds`) since training started, less the time spent inside
    evaluation callbacks. The budget spans every ``learn`` call the callback is passed to.

    The evaluation callbacks are the ``EvalCallback`` s of the callback tree that ``learn`` passes to the
    callbacks at training start (``self.locals["callback"]``, as SB3's on- and off-policy algorithms,
    sb3-contrib's ARS and TRPO and this package's ES and BiERL do): their ``_on_step`` is timed whenever an
    evaluation is due. Training CPU time and evaluation CPU time are logged as ``time/train_cpu_s`` and
    ``time/eval_cpu_s`` at every rollout's end.

    :param budget_s: CPU seconds of training (> 0)
    :param check_interval_s: Wall-clock seconds between two measurements (a measurement walks the process
        tree: about a millisecond); training overshoots the budget by at most about this, times the cores busy,
        plus the part of a rollout an algorithm finishes before calling the callbacks (ES: its generation)
    :param final_evaluation: When the budget stops training, whether the evaluation callbacks evaluate once more
        at training end (unless they just did at that step), so that the last evaluation is the return at the
        budget (ES and BiERL: after the generation in progress, whose steps are counted, is done)
    :param log_path: Folder of the CPU log (:data:`CPU_LOG_NAME`); None: the first evaluation callback's
        ``log_path`` (the Zoo's run folder), else the logger's folder, else no log
    :param eval_at_steps: Step counts at which the evaluation callbacks also evaluate (at the first step at or
        past each), besides their ``eval_freq``: early points of the learning curve of an algorithm that takes
        many steps, to compare it with one that takes few at equal steps
    :param verbose: 1: print when the budget stops training
    :raises ValueError: if ``budget_s`` or ``check_interval_s`` is not positive
    """

    def __init__(
        self,
        budget_s: float,
        check_interval_s: float = 0.5,
        final_evaluation: bool = True,
        log_path: str | None = None,
        eval_at_steps: Sequence[int] = (),
        verbose: int = 0,
    ):
        super().__init__(verbose)
        if not budget_s > 0 or not check_interval_s > 0:
            raise ValueError(
                f"budget_s and check_interval_s must be positive, got {budget_s!r} and {check_interval_s!r}"
            )
        self.budget_s = float(budget_s)
        self.check_interval_s = float(check_interval_s)
        self.final_evaluation = final_evaluation
        self.log_path = log_path
        self.eval_at_steps = sorted(int(steps) for steps in eval_at_steps)
        self.used_s = 0.0  # training CPU seconds, in earlier learn calls and up to the last measurement
        self.eval_used_s = 0.0  # CPU seconds inside evaluation callbacks
        self.wall_s = 0.0  # wall-clock seconds of training and evaluation
        self.exhausted = False
        self.cpu_log: Path | None = None
        self._start = 0.0
        self._wall_start = 0.0
        self._next_check = 0.0
        self._stop_asked = False
        self._ended = False
        self._eval_callbacks: list[EvalCallback] = []
        self._last_evaluation: dict[int, int] = {}  # id(eval callback) -> step of its last evaluation

    # ------------------------------------------------------------------ measurements
    def _now(self) -> tuple[float, float]:
        """:return: (CPU seconds since training started, evaluations included; wall-clock seconds)"""
        return process_tree_cpu_seconds() - self._start, time.monotonic() - self._wall_start

    def _measure(self) -> float:
        total, self.wall_s = self._now()
        self.used_s = total - self.eval_used_s
        self._next_check = time.monotonic() + self.check_interval_s
        return self.used_s

    # ------------------------------------------------------------------ the evaluations
    def _time_evaluations(self, callback: EvalCallback) -> None:
        """Replace ``callback._on_step`` by a version that times its evaluations and writes a CPU-log row."""
        evaluate: Callable[[], bool] = callback._on_step

        def timed_on_step() -> bool:
            if not (callback.eval_freq > 0 and callback.n_calls % callback.eval_freq == 0):
                return evaluate()
            if self._last_evaluation.get(id(callback)) == callback.num_timesteps:
                return True  # it already evaluated at this step (the budget's final evaluation)
            start, _ = self._now()
            train_s = start - self.eval_used_s
            try:
                return evaluate()
            finally:
                self.eval_used_s += self._now()[0] - start
                self._last_evaluation[id(callback)] = callback.num_timesteps
                self._write_row("eval", callback.num_timesteps, train_s)

        timed_on_step.cpu_budget_original = evaluate  # type: ignore[attr-defined]
        callback._on_step = timed_on_step  # type: ignore[method-assign]

    def _evaluate_now(self) -> None:
        """Have the evaluation callbacks evaluate at this step (the final evaluation, those of ``eval_at_steps``)."""
        for callback in self._eval_callbacks:
            if callback.eval_freq <= 0 or self._last_evaluation.get(id(callback)) == self.model.num_timesteps:
                continue
            n_calls = callback.n_calls
            callback.num_timesteps = self.model.num_timesteps
            callback.n_calls = callback.eval_freq  # due now
            try:
                callback._on_step()
            finally:
                callback.n_calls = n_calls

    # ------------------------------------------------------------------ the CPU log
    def _open_log(self) -> None:
        folder = self.log_path
        if folder is None:
            with_path = [callback.log_path for callback in self._eval_callbacks if callback.log_path is not None]
            folder = os.path.dirname(with_path[0]) if with_path else self.logger.get_dir()
        if folder is None:
            if self.verbose >= 1:
                warnings.warn("CPUTimeBudget: no evaluation callback with a log_path and no logger folder: no CPU log")
            return
        self.cpu_log = Path(folder, CPU_LOG_NAME)
        self.cpu_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.cpu_log, "w", newline="") as file:
            file.write(f"{_HEADER_PREFIX}{self.budget_s!r}\n")
            csv.writer(file).writerow(CPU_LOG_COLUMNS)

    def _write_row(self, event: str, timesteps: int, train_s: float) -> None:
        if self.cpu_log is None:
            return
        wall_s = time.monotonic() - self._wall_start
        with open(self.cpu_log, "a", newline="") as file:
            row = (
                event,
                int(timesteps),
                f"{train_s:.3f}",
                f"{self.eval_used_s:.3f}",
                f"{wall_s:.3f}",
                int(self.exhausted),
            )
            csv.writer(file).writerow(row)

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self.exhausted and self.final_evaluation:
            self._evaluate_now()
        self._measure()
        self._write_row("end", self.model.num_timesteps, self.used_s)
        for callback in self._eval_callbacks:  # leave them as they were
            original = getattr(callback._on_step, "cpu_budget_original", None)
            if original is not None:
                callback._on_step = original  # type: ignore[method-assign]

    # ------------------------------------------------------------------ callback events
    def _on_training_start(self) -> None:
        self._eval_callbacks = find_eval_callbacks(self.locals.get("callback"))
        for callback in self._eval_callbacks:
            if getattr(callback._on_step, "cpu_budget_original", None) is None:
                self._time_evaluations(callback)
        if self.cpu_log is None and not self._ended:  # first learn call
            self._open_log()
        # continue the counts of earlier learn calls
        self._start = process_tree_cpu_seconds() - self.used_s - self.eval_used_s
        self._wall_start = time.monotonic() - self.wall_s
        self._next_check = time.monotonic()
        self._stop_asked = self._ended = False

    def _on_step(self) -> bool:
        if self._stop_asked:  # the algorithm ignored our False
            self._end()
            raise CPUBudgetExhausted(f"CPU-time budget of {self.budget_s:.0f} s reached")
        if self.eval_at_steps and self.model.num_timesteps >= self.eval_at_steps[0]:
            while self.eval_at_steps and self.model.num_timesteps >= self.eval_at_steps[0]:
                self.eval_at_steps.pop(0)
            self._evaluate_now()
        if time.monotonic() >= self._next_check:
            self._measure()
        if self.used_s < self.budget_s:  # measured now, or at a rollout's end since
            return True
        self.exhausted = self._stop_asked = True
        if self.verbose >= 1:
            print(
                f"CPU-time budget of {self.budget_s:.0f} s reached after {self.num_timesteps:,d} steps: training stops"
            )
        return False  # the final evaluation comes at training end: ES first finishes its generation

    def _on_rollout_end(self) -> None:
        if time.monotonic() >= self._next_check:  # SAC ends a rollout at every step: a measurement costs ~1 ms
            self._measure()
        self.logger.record("time/train_cpu_s", self.used_s)
        self.logger.record("time/eval_cpu_s", self.eval_used_s)

    def _on_training_end(self) -> None:
        self._end()


@dataclass
class CPULog:
    """
    A run's CPU log, as written by :class:`CPUTimeBudget`.

    :param budget_s: The budget (CPU seconds of training)
    :param evaluations: ``(timesteps, train_cpu_s, eval_cpu_s, wall_s)`` at each evaluation (CPU seconds of
        training before it; of evaluations, it included; wall-clock seconds since training started)
    :param end: The same at the end of training, None if training did not end (still running, or killed)
    :param exhausted: Whether the budget stopped training
    """

    budget_s: float
    evaluations: list[tuple[int, float, float, float]] = field(default_factory=list)
    end: tuple[int, float, float, float] | None = None
    exhausted: bool = False


def read_cpu_log(path: str | Path) -> CPULog | None:
    """
    :param path: A CPU log, or the folder that holds it (:data:`CPU_LOG_NAME`)
    :return: Its contents, None if it is missing or not a CPU log
    """
    path = Path(path)
    if path.is_dir():
        path = path / CPU_LOG_NAME
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    if not lines or not lines[0].startswith(_HEADER_PREFIX):
        return None
    try:
        log = CPULog(float(lines[0][len(_HEADER_PREFIX) :]))
        for row in csv.DictReader(lines[1:]):
            values = (int(row["timesteps"]), float(row["train_cpu_s"]), float(row["eval_cpu_s"]), float(row["wall_s"]))
            if row["event"] == "eval":
                log.evaluations.append(values)
            elif row["event"] == "end":
                log.end, log.exhausted = values, row["exhausted"] == "1"
    except (KeyError, TypeError, ValueError):
        return None  # a half-written last row: read it again later
    return log
