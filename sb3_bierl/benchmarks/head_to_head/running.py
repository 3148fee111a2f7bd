"""
Training the runs: each in its own subprocess, ``jobs`` at a time, with its output in ``runs/<key>.log``,
its run folder found from the zoo's ``Log path:`` line, its evaluations watched and its record written;
Ctrl-C interrupts them all.
"""

import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from sb3_bierl.benchmarks.compare import format_duration
from sb3_bierl.benchmarks.head_to_head.commands import child_environment
from sb3_bierl.benchmarks.head_to_head.config import POLL_S, BenchmarkConfig, Run
from sb3_bierl.benchmarks.head_to_head.evaluations import EvaluationWatcher, finish_evaluations
from sb3_bierl.benchmarks.head_to_head.records import new_record, read_record, write_record

ERROR_TAIL_LINES = 15
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


def error_tail(log_file: Path, lines: int = ERROR_TAIL_LINES) -> str:
    """:return: The last lines of a run's output"""
    try:
        return "\n".join(log_file.read_text(errors="replace").rstrip().splitlines()[-lines:])
    except OSError:
        return "(no output)"


def execute_run(
    run: Run,
    command: Sequence[str],
    config: BenchmarkConfig,
    start_lock: threading.Lock,
    stop: threading.Event,
) -> dict[str, Any] | None:
    """
    Train one run in a subprocess and write its record.

    ``start_lock`` is held from the start of the process until the zoo announced its run folder: the zoo
    numbers run folders (``E_N``) when it starts, so two runs of the same (algo, env) starting together
    could pick the same number.

    :param run: The run
    :param command: Its command
    :param config: The benchmark
    :param start_lock: The lock of the run's (algo, env)
    :param stop: Set when the benchmark is interrupted: the run gets SIGINT (the zoo then saves its model)
    :return: The final record, None if the benchmark was stopped before the run started
    """
    watcher: EvaluationWatcher | None = None
    interrupted = False
    with start_lock:
        if stop.is_set():
            return None
        record = new_record(run, config, command)
        log_file = config.log_folder / record["log_file"]
        log_file.parent.mkdir(parents=True, exist_ok=True)
        write_record(config.log_folder, run, record)
        start = time.monotonic()
        try:
            with open(log_file, "w") as output:  # the child keeps its own copy of the descriptor
                process = subprocess.Popen(
                    command, stdout=output, stderr=subprocess.STDOUT, env=child_environment(config.num_threads),
                    start_new_session=True,  # Ctrl-C reaches the runner only, which forwards it once
                )  # fmt: skip
        except OSError as error:
            record.update(status="failed", error=f"could not start: {error}", wall_time_s=0.0)
            write_record(config.log_folder, run, record)
            return record
        while process.poll() is None and watcher is None:
            time.sleep(POLL_S / 5)
            folder = find_run_folder(log_file, config.log_folder)
            if folder is not None:
                record.update(run_folder=folder, training_start_s=round(time.monotonic() - start, 3))
                watcher = EvaluationWatcher(config.log_folder / folder)
    # the lock is released: the run folder exists (or the process has ended)
    while process.poll() is None:
        time.sleep(POLL_S)
        if watcher is not None:
            watcher.poll(time.monotonic() - start)
        if stop.is_set() and not interrupted:
            process.send_signal(signal.SIGINT)
            interrupted = True
    record.update(wall_time_s=round(time.monotonic() - start, 3), returncode=process.returncode)
    record["run_folder"] = record["run_folder"] or find_run_folder(log_file, config.log_folder)
    record["eval_seen_at"] = watcher.seen if watcher is not None else []
    if interrupted:
        record.update(status="interrupted", error="the benchmark was interrupted")
    elif process.returncode != 0:
        record.update(status="failed", error=f"exit status {process.returncode}:\n{error_tail(log_file)}")
    else:
        record["status"] = "done"
    record = finish_evaluations(record, config)
    write_record(config.log_folder, run, record)
    return record


def run_all(
    runs: Sequence[Run], commands: Mapping[Run, list[str]], config: BenchmarkConfig, jobs: int
) -> tuple[dict[Run, dict[str, Any]], bool]:
    """
    Train runs, ``jobs`` at a time.

    :param runs: The runs to train
    :param commands: Their commands
    :param config: The benchmark
    :param jobs: How many run in parallel
    :return: The records of the runs that were trained, and whether the benchmark was interrupted
    """
    locks = {(run.algo, run.env_id): threading.Lock() for run in runs}
    stop = threading.Event()
    records: dict[Run, dict[str, Any]] = {}
    executor = ThreadPoolExecutor(max_workers=max(jobs, 1))
    futures: dict[Future, Run] = {
        executor.submit(execute_run, run, commands[run], config, locks[run.algo, run.env_id], stop): run for run in runs
    }
    interrupted = False
    try:
        for number, future in enumerate(as_completed(futures), start=1):
            run, record = futures[future], result_or_failure(future, futures[future], config)
            if record is not None:
                records[run] = record
                print(f"[{number}/{len(runs)}] {progress_line(run, record)}", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: stopping the running trainings (the zoo saves their models) ...", flush=True)
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        for future, run in futures.items():
            record = result_or_failure(future, run, config) if future.done() and not future.cancelled() else None
            if record is not None:
                records[run] = record
    finally:
        executor.shutdown(wait=True)
    return records, interrupted


def result_or_failure(future: Future, run: Run, config: BenchmarkConfig) -> dict[str, Any] | None:
    """:return: The record a finished run returned, or a ``failed`` one if the runner itself raised"""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 (a bug or an I/O error in the runner: the other runs go on)
        record = {**(read_record(config.log_folder, run) or new_record(run, config, None)), "status": "failed"}
        record["error"] = f"the runner failed: {error!r}"
        write_record(config.log_folder, run, record)
        return record


def progress_line(run: Run, record: Mapping[str, Any]) -> str:
    """:return: One line about a finished run"""
    line = f"{record['status']:<11} {run.describe()}"
    if record.get("final_return") is not None:
        line += f": return {record['final_return']:.1f} at {record['last_eval_timestep']} steps"
    if record.get("wall_time_s") is not None:
        line += f", {format_duration(record['wall_time_s'])}"
    if record["status"] == "failed":
        line += f" -- see {record.get('log_file')} in the log folder"
    return line
