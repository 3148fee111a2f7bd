"""
A CPU-time budget for any SB3 algorithm (issue 13): training stops once the process, and the worker processes
it started, have used a given number of CPU seconds. A fair budget on a shared machine: a busy machine
stretches the wall clock, not the CPU time. The RL Zoo loads it from a hyperparameter file's ``callback:`` key::

    HalfCheetah-v5:
      n_timesteps: !!float 1e7            # an upper bound: the budget stops the run first
      callback:
        - sb3_bierl.benchmarks.cpu_budget.CPUTimeBudget:
            budget_s: 3600

Needs ``psutil`` (``pip install ".[zoo]"`` or ``".[benchmark]"`` in a checkout of sb3-bierl).
"""

import time

from stable_baselines3.common.callbacks import BaseCallback


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


class CPUTimeBudget(BaseCallback):
    """
    Stop training when the CPU time used since training started reaches ``budget_s``
    (:func:`process_tree_cpu_seconds`: this process and its worker processes). The budget spans every ``learn``
    call the callback is passed to. The time used is logged as ``time/cpu_time_s`` at every rollout's end.

    :param budget_s: CPU seconds of training (> 0)
    :param check_interval_s: Wall-clock seconds between two measurements (a measurement walks the process
        tree: about a millisecond); training overshoots the budget by at most about this, times the cores busy
    :param verbose: 1: print when the budget stops training
    :raises ValueError: if ``budget_s`` or ``check_interval_s`` is not positive
    """

    def __init__(self, budget_s: float, check_interval_s: float = 0.5, verbose: int = 0):
        super().__init__(verbose)
        if not budget_s > 0 or not check_interval_s > 0:
            raise ValueError(f"budget_s and check_interval_s must be positive, got {budget_s!r} and {check_interval_s!r}")
        self.budget_s = float(budget_s)
        self.check_interval_s = float(check_interval_s)
        self.used_s = 0.0  # in earlier learn calls and up to the last measurement
        self.exhausted = False
        self._start: float | None = None
        self._next_check = 0.0

    def _on_training_start(self) -> None:
        self._start = process_tree_cpu_seconds() - self.used_s  # continue the count of earlier learn calls
        self._next_check = time.monotonic()

    def _measure(self) -> float:
        self.used_s = process_tree_cpu_seconds() - self._start
        self._next_check = time.monotonic() + self.check_interval_s
        return self.used_s

    def _on_step(self) -> bool:
        if time.monotonic() < self._next_check:
            return True
        if self._measure() < self.budget_s:
            return True
        self.exhausted = True
        if self.verbose >= 1:
            print(f"CPU-time budget of {self.budget_s:.0f} s reached after {self.num_timesteps:,d} steps: training stops")
        return False

    def _on_rollout_end(self) -> None:
        self.logger.record("time/cpu_time_s", self._measure())

    def _on_training_end(self) -> None:
        self._measure()
