"""
Training the runs: each in its own subprocess, ``jobs`` at a time, with its output in ``runs/<key>.log``,
its run folder found from the zoo's ``Log path:`` line, its evaluations watched and its record written;
a progress bar (runs done, running, failed, ETA; failures printed above it) or one line per finished run;
Ctrl-C (or SIGTERM) interrupts them all.
"""

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from sb3_bierl.benchmarks.compare import format_duration
from sb3_bierl.benchmarks.head_to_head.commands import child_environment
from sb3_bierl.benchmarks.head_to_head.config import POLL_S, BenchmarkConfig, Run
from sb3_bierl.benchmarks.head_to_head.evaluations import EvaluationWatcher, finish_evaluations
from sb3_bierl.benchmarks.head_to_head.records import new_record, read_record, write_record

ERROR_TAIL_LINES = 15
#: Seconds a training has to stop after SIGINT (the zoo saves its model) before it gets SIGTERM
STOP_GRACE_S = 60.0
#: Seconds between two refreshes of the progress bar when nothing changed (its ETA moves on)
REFRESH_S = 10.0
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
    on_start: Callable[[], None] | None = None,
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
    :param on_start: Called once the process started (the progress bar counts it as running)
    :return: The final record, None if the benchmark was stopped before the run started
    """
    watcher: EvaluationWatcher | None = None
    interrupted, interrupted_at = False, 0.0
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
        if on_start is not None:
            on_start()
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
            interrupted, interrupted_at = True, time.monotonic()
        elif interrupted and time.monotonic() - interrupted_at > STOP_GRACE_S:
            process.terminate()  # it ignores SIGINT (started in the background of a shell without job control)
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


class RunProgress:
    """
    The live view of a benchmark: a tqdm bar of the runs finished (ETA from tqdm) with the counts of runs done,
    running and failed, and each failure's line printed above it; or, without a bar, one line per finished run.

    ``started`` may be called from any thread; the other methods from the thread that owns the progress.

    :param total: Runs to train
    :param bar: Whether to show a bar (else one line per finished run, for logs and CI)
    :param file: Where to write (default: standard output)
    """

    def __init__(self, total: int, bar: bool = True, file: TextIO | None = None):
        self.total = total
        self.done = self.failed = self.finished = 0
        self._started = 0
        self._lock = threading.Lock()
        self.file = file if file is not None else sys.stdout
        self._shown, self._next_refresh = "", 0.0
        self.bar = tqdm(total=total, unit="run", file=self.file, dynamic_ncols=True, smoothing=0) if bar else None
        self.refresh()

    @property
    def running(self) -> int:
        """Runs started and not finished."""
        with self._lock:
            return self._started - self.finished

    def postfix(self) -> str:
        """:return: ``done=D, running=R, failed=F``"""
        return f"done={self.done}, running={self.running}, failed={self.failed}"

    def started(self) -> None:
        """A run's process started."""
        with self._lock:
            self._started += 1

    def finish(self, run: Run, record: Mapping[str, Any]) -> None:
        """A run finished, with its final record."""
        with self._lock:
            self.finished += 1
            self._started = max(self._started, self.finished)  # a run that failed to start was never counted
        if record.get("status") == "done":
            self.done += 1
        else:
            self.failed += 1
        line = progress_line(run, record)
        if self.bar is None:
            print(f"[{self.finished}/{self.total}] {line}", file=self.file, flush=True)
            return
        if record.get("status") != "done":
            self.bar.write(line, file=self.file)
        self.bar.set_postfix_str(self.postfix(), refresh=False)
        self.bar.update(1)

    def refresh(self) -> None:
        """Show the current counts (and the ETA) if they changed, or at least every ``REFRESH_S``."""
        if self.bar is None:
            return
        postfix = self.postfix()
        if postfix != self._shown or time.monotonic() >= self._next_refresh:
            self.bar.set_postfix_str(postfix)
            self._shown, self._next_refresh = postfix, time.monotonic() + REFRESH_S

    def close(self) -> None:
        """Leave the bar as it is (its last state stays on screen)."""
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix())
            self.bar.close()


def run_all(
    runs: Sequence[Run],
    commands: Mapping[Run, list[str]],
    config: BenchmarkConfig,
    jobs: int,
    progress_bar: bool = True,
    progress: RunProgress | None = None,
    execute: Callable[..., dict[str, Any] | None] = execute_run,
) -> tuple[dict[Run, dict[str, Any]], bool]:
    """
    Train runs, ``jobs`` at a time.

    :param runs: The runs to train
    :param commands: Their commands
    :param config: The benchmark
    :param jobs: How many run in parallel
    :param progress_bar: Whether to show a progress bar (else one line per finished run)
    :param progress: The live view to use (default: a new :class:`RunProgress`)
    :param execute: Trains one run (:func:`execute_run` and its arguments)
    :return: The records of the runs that were trained, and whether the benchmark was interrupted
    """
    locks = {(run.algo, run.env_id): threading.Lock() for run in runs}
    stop = threading.Event()
    records: dict[Run, dict[str, Any]] = {}
    progress = progress if progress is not None else RunProgress(len(runs), bar=progress_bar)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    executor = ThreadPoolExecutor(max_workers=max(jobs, 1))
    futures: dict[Future, Run] = {
        executor.submit(execute, run, commands[run], config, locks[run.algo, run.env_id], stop, progress.started): run
        for run in runs
    }
    interrupted = False
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                run, record = futures[future], result_or_failure(future, futures[future], config)
                if record is not None:
                    records[run] = record
                    progress.finish(run, record)
            progress.refresh()  # runs started meanwhile, and the ETA
        progress.close()
    except KeyboardInterrupt:
        interrupted = True
        progress.close()
        print("\nInterrupted: stopping the running trainings (the zoo saves their models) ...", flush=True)
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        for future, run in futures.items():
            record = result_or_failure(future, run, config) if future.done() and not future.cancelled() else None
            if record is not None:
                records[run] = record
    finally:
        executor.shutdown(wait=True)
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
    return records, interrupted


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops the benchmark as Ctrl-C does (a runner in the background of a shell ignores SIGINT)."""
    raise KeyboardInterrupt


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
    if record.get("train_cpu_s") is not None:
        line += f" ({record['train_cpu_s']:.0f} CPU s of training, stopped by {record['stopped_by']})"
    if record.get("wall_time_s") is not None:
        line += f", {format_duration(record['wall_time_s'])}"
    if record["status"] == "failed":
        line += f" -- see {record.get('log_file')} in the log folder"
    return line
