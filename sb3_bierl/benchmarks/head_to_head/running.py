"""
Training the zoo runs with the benchmarks' runner (:mod:`sb3_bierl.benchmarks.runner`): each run a
``rl_zoo3.train`` subprocess, its zoo run folder found from the zoo's ``Log path:`` line, its evaluations watched
while it trains and read into its record when it ends.
"""

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sb3_bierl.benchmarks.head_to_head.config import POLL_S, BenchmarkConfig, Run
from sb3_bierl.benchmarks.head_to_head.evaluations import EvaluationWatcher, finish_evaluations
from sb3_bierl.benchmarks.head_to_head.records import new_record
from sb3_bierl.benchmarks.runner import Job, RunProgress, execute_job, run_jobs

LOG_PATH_LINE = re.compile(r"^Log path: (?P<path>.+?)\s*$", re.MULTILINE)


def find_run_folder(log_file: Path, log_folder: Path) -> str | None:
    """
    :param log_file: A run's output
    :param log_folder: The benchmark's log folder
    :return: The zoo run folder it announced (``Log path: ...``), relative to ``log_folder``; None if not yet
    """
    try:
        match = LOG_PATH_LINE.search(log_file.read_text(errors="replace"))
    except OSError:
        return None
    if match is None:
        return None
    folder = Path(match["path"])
    try:
        return str(folder.resolve().relative_to(log_folder.resolve()))
    except ValueError:
        return str(folder.resolve())


class ZooJob(Job):
    """
    One zoo run. Its start lock, shared by the runs of one (algo, env), is held until the zoo announced its run
    folder: the zoo numbers run folders (``E_N``) when it starts, so two runs of the same (algo, env) starting
    together could pick the same number.

    :param run: The run
    :param command: Its ``rl_zoo3.train`` command
    :param config: The benchmark
    :param start_lock: The lock of the run's (algo, env)
    """

    poll_s = POLL_S

    def __init__(self, run: Run, command: Sequence[str], config: BenchmarkConfig, start_lock: threading.Lock):
        super().__init__(
            run.key, command, new_record(run, config, command), config.log_folder, config.num_threads,
            start_lock=start_lock,
        )  # fmt: skip
        self.run = run
        self.config = config
        self.watcher: EvaluationWatcher | None = None

    def started_up(self, record: dict[str, Any], elapsed_s: float) -> bool:
        folder = find_run_folder(self.log_file, self.folder)
        if folder is None:
            return False
        record.update(run_folder=folder, training_start_s=round(elapsed_s, 3))
        self.watcher = EvaluationWatcher(self.folder / folder)
        return True

    def poll(self, record: dict[str, Any], process: Any, elapsed_s: float) -> None:
        if self.watcher is not None:
            self.watcher.poll(elapsed_s)

    def finish(self, record: dict[str, Any]) -> dict[str, Any]:
        record["run_folder"] = record.get("run_folder") or find_run_folder(self.log_file, self.folder)
        record["eval_seen_at"] = self.watcher.seen if self.watcher is not None else []
        return finish_evaluations(record, self.config)


def run_all(
    runs: Sequence[Run],
    commands: Mapping[Run, list[str]],
    config: BenchmarkConfig,
    jobs: int,
    progress_bar: bool = True,
    progress: RunProgress | None = None,
    execute: Callable[..., dict[str, Any] | None] = execute_job,
) -> tuple[dict[Run, dict[str, Any]], bool]:
    """
    Train zoo runs, ``jobs`` at a time (:func:`sb3_bierl.benchmarks.runner.run_jobs`).

    :param runs: The runs to train
    :param commands: Their commands
    :param config: The benchmark
    :param jobs: How many run in parallel
    :param progress_bar: Whether to show a progress bar (else one line per finished run)
    :param progress: The live view to use (default: a new :class:`~sb3_bierl.benchmarks.runner.RunProgress`)
    :param execute: Runs one :class:`ZooJob` (:func:`~sb3_bierl.benchmarks.runner.execute_job` and its arguments)
    :return: The records of the runs that were trained, and whether the benchmark was interrupted
    """
    locks = {(run.algo, run.env_id): threading.Lock() for run in runs}
    zoo_jobs = {run.key: ZooJob(run, commands[run], config, locks[run.algo, run.env_id]) for run in runs}
    records, interrupted = run_jobs(list(zoo_jobs.values()), jobs, progress_bar, progress, execute)
    return {zoo_jobs[key].run: record for key, record in records.items()}, interrupted
