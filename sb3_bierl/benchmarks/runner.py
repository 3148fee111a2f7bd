"""
The one runner of every benchmark: each run (or measurement) a subprocess in its own session, ``jobs`` at a time,
its output in ``runs/<key>.log``, its record (:mod:`sb3_bierl.benchmarks.records`) written when it starts and when it
ends; a progress bar (runs done, running, failed, ETA; failures printed above it) or one line per finished run;
Ctrl-C (or SIGTERM) stops them all, a crash or a timeout is a ``failed`` record, never a hang.

A benchmark describes its runs as :class:`Job` objects: the zoo runs of the head-to-head benchmark
(:mod:`sb3_bierl.benchmarks.head_to_head.running`), the in-process training runs of the ES benchmarks
(:mod:`sb3_bierl.benchmarks.run_spec`) and the throughput measurements (:mod:`sb3_bierl.benchmarks.throughput`).
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from sb3_bierl.benchmarks.records import write_record

ERROR_TAIL_LINES = 15
#: Seconds a run has to stop after SIGINT (the zoo and ``learn()`` save or stop cleanly) before it gets SIGTERM
STOP_GRACE_S = 60.0
#: Seconds between two refreshes of the progress bar when nothing changed (its ETA moves on)
REFRESH_S = 10.0
#: Seconds between two polls of a running process
POLL_S = 1.0


def child_environment(num_threads: int) -> dict[str, str]:
    """
    :param num_threads: Threads of the run's numerical libraries
    :return: The environment of a run's process: ours, with unbuffered Python output (its log file is read while it
        runs) and ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` set to ``num_threads`` (at least 1) unless already set
    """
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environment.setdefault(name, str(max(num_threads, 1)))
    return environment


def error_tail(log_file: Path, lines: int = ERROR_TAIL_LINES) -> str:
    """:return: The last ``lines`` lines of a run's output"""
    try:
        return "\n".join(Path(log_file).read_text(errors="replace").rstrip().splitlines()[-lines:])
    except OSError:
        return "(no output)"


def describe(record: Mapping[str, Any]) -> str:
    """:return: ``algo env seed S`` of a record"""
    return f"{record.get('algo')} {record.get('env')} seed {record.get('seed')}"


class Job:
    """
    One run of a benchmark: the command of its process, its first record and what to do while and after it runs.
    Subclasses override the hooks; the defaults run a plain command.

    :param key: The run's file stem (:func:`sb3_bierl.benchmarks.records.run_key`)
    :param command: The command line of its process
    :param record: Its record at the start (:func:`sb3_bierl.benchmarks.records.new_record`)
    :param folder: The benchmark's folder: the log file is ``folder / record["log_file"]``, the record is written
        to ``folder / "runs" / f"{key}.json"`` unless ``save`` is False
    :param num_threads: Threads of the process's numerical libraries (:func:`child_environment`)
    :param environment: Variables that replace those of :func:`child_environment` in the process's environment
    :param timeout_s: Seconds after which the process (and its process group) is killed, None for never
    :param start_lock: Held from the start of the process until :meth:`started_up` says True (runs that pick a
        folder name when they start take turns), or None
    :param save: Whether to write the record to its file (a throughput measurement keeps it in memory)
    """

    poll_s: float = POLL_S

    def __init__(
        self,
        key: str,
        command: Sequence[str],
        record: dict[str, Any],
        folder: Path,
        num_threads: int = 1,
        environment: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        start_lock: AbstractContextManager | None = None,
        save: bool = True,
    ):
        self.key = key
        self.command = list(command)
        self.record = record
        self.folder = Path(folder)
        self.num_threads = num_threads
        self.environment = dict(environment or {})
        self.timeout_s = timeout_s
        self.start_lock = start_lock
        self.save = save

    @property
    def log_file(self) -> Path:
        """The run's output."""
        return self.folder / self.record["log_file"]

    def write(self, record: Mapping[str, Any]) -> None:
        """Write the record to ``runs/<key>.json`` (if ``save``)."""
        if self.save:
            write_record(self.folder / "runs" / f"{self.key}.json", record)

    def started_up(self, record: dict[str, Any], elapsed_s: float) -> bool:
        """
        Polled while the process runs and :attr:`start_lock` is held.

        :param record: The record, to update
        :param elapsed_s: Seconds since the process started
        :return: Whether the run no longer needs the start lock
        """
        return True

    def poll(self, record: dict[str, Any], process: subprocess.Popen, elapsed_s: float) -> None:
        """Called every :attr:`poll_s` seconds while the process runs (after :meth:`started_up`)."""

    def finish(self, record: dict[str, Any]) -> dict[str, Any]:
        """
        :param record: The record once the process ended, status ``done`` (exit status 0), ``failed`` or
            ``interrupted``
        :return: The final record (a subclass reads the run's results; ``done`` may become ``failed``)
        """
        return record


def execute_job(
    job: Job, stop: threading.Event, on_start: Callable[[], None] | None = None
) -> dict[str, Any] | None:
    """
    Run one job's process to its end and write its record.

    :param job: The job
    :param stop: Set when the benchmark is interrupted: the process gets SIGINT, then SIGTERM after
        :data:`STOP_GRACE_S`
    :param on_start: Called once the process started (the progress bar counts it as running)
    :return: The final record, None if the benchmark was stopped before the job started
    """
    interrupted, interrupted_at, timed_out = False, 0.0, False
    with job.start_lock if job.start_lock is not None else nullcontext():
        if stop.is_set():
            return None
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 (Python 3.10)
        record = job.record = dict(job.record, command=job.command, started_at=started_at)  # the hooks update it
        job.log_file.parent.mkdir(parents=True, exist_ok=True)
        job.write(record)
        start = time.monotonic()
        try:
            environment = {**child_environment(job.num_threads), **job.environment}
            with open(job.log_file, "w") as output:  # the child keeps its own copy of the descriptor
                process = subprocess.Popen(
                    job.command, stdout=output, stderr=subprocess.STDOUT, env=environment,
                    start_new_session=True,  # Ctrl-C reaches the runner only, which forwards it once
                )  # fmt: skip
        except OSError as error:
            record.update(status="failed", error=f"could not start: {error}", wall_time_s=0.0)
            job.write(record)
            return record
        if on_start is not None:
            on_start()
        try:
            while process.poll() is None and not job.started_up(record, time.monotonic() - start):
                time.sleep(job.poll_s / 5)
        except BaseException:
            _kill_group(process)
            raise
    try:
        while process.poll() is None:
            time.sleep(job.poll_s)
            elapsed = time.monotonic() - start
            job.poll(record, process, elapsed)
            if job.timeout_s is not None and elapsed > job.timeout_s:
                timed_out = True
                _kill_group(process)
            elif stop.is_set() and not interrupted:
                process.send_signal(signal.SIGINT)
                interrupted, interrupted_at = True, time.monotonic()
            elif interrupted and time.monotonic() - interrupted_at > STOP_GRACE_S:
                process.terminate()  # it ignores SIGINT (started in the background of a shell without job control)
    except BaseException:  # Ctrl-C in a caller's thread: do not leave the process running
        _kill_group(process)
        raise
    record.update(wall_time_s=round(time.monotonic() - start, 3), returncode=process.returncode)
    if timed_out:
        record.update(status="failed", error=f"timed out after {job.timeout_s:g} s:\n{error_tail(job.log_file)}")
    elif interrupted:
        record.update(status="interrupted", error="the benchmark was interrupted")
    elif process.returncode != 0:
        record.update(status="failed", error=f"exit status {process.returncode}:\n{error_tail(job.log_file)}")
    else:
        record["status"] = "done"
    record = job.finish(record)
    job.write(record)
    return record


def _kill_group(process: subprocess.Popen) -> None:
    """Kill a job's process and its process group (its workers), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


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

    def finish(self, record: Mapping[str, Any]) -> None:
        """A run finished, with its final record."""
        with self._lock:
            self.finished += 1
            self._started = max(self._started, self.finished)  # a run that failed to start was never counted
        if record.get("status") == "done":
            self.done += 1
        else:
            self.failed += 1
        line = progress_line(record)
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


def format_duration(seconds: float) -> str:
    """
    :param seconds: A duration
    :return: It in s, min or h
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def progress_line(record: Mapping[str, Any]) -> str:
    """:return: One line about a finished run"""
    line = f"{record['status']:<11} {describe(record)}"
    if record.get("final_return") is not None:
        steps = record.get("last_eval_timestep", record.get("steps_reached"))
        line += f": return {record['final_return']:.1f}" + (f" at {steps} steps" if steps is not None else "")
    if record.get("train_cpu_s") is not None:
        line += f" ({record['train_cpu_s']:.0f} CPU s of training, stopped by {record['stopped_by']})"
    if record.get("wall_time_s") is not None:
        line += f", {format_duration(record['wall_time_s'])}"
    if record["status"] == "failed":
        line += f" -- see {record.get('log_file')} in the log folder"
    return line


def run_jobs(
    jobs: Sequence[Job],
    n_parallel: int,
    progress_bar: bool = True,
    progress: RunProgress | None = None,
    execute: Callable[[Job, threading.Event, Callable[[], None]], dict[str, Any] | None] = execute_job,
) -> tuple[dict[str, dict[str, Any]], bool]:
    """
    Run jobs, ``n_parallel`` at a time.

    :param jobs: The jobs (distinct keys)
    :param n_parallel: How many run at once
    :param progress_bar: Whether to show a progress bar (else one line per finished run)
    :param progress: The live view to use (default: a new :class:`RunProgress`)
    :param execute: Runs one job (:func:`execute_job` and its arguments)
    :return: The final records of the jobs that ran, by key, and whether the benchmark was interrupted
    :raises ValueError: if two jobs have the same key
    """
    if len({job.key for job in jobs}) != len(jobs):
        raise ValueError("Two jobs have the same key: they would write the same record")
    stop = threading.Event()
    records: dict[str, dict[str, Any]] = {}
    progress = progress if progress is not None else RunProgress(len(jobs), bar=progress_bar)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    executor = ThreadPoolExecutor(max_workers=max(n_parallel, 1))
    futures: dict[Future, Job] = {executor.submit(execute, job, stop, progress.started): job for job in jobs}
    interrupted = False
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                job = futures[future]
                record = result_or_failure(future, job)
                if record is not None:
                    records[job.key] = record
                    progress.finish(record)
            progress.refresh()  # runs started meanwhile, and the ETA
        progress.close()
    except KeyboardInterrupt:
        interrupted = True
        progress.close()
        print("\nInterrupted: stopping the running trainings (SIGINT: the zoo saves its model) ...", flush=True)
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        for future, job in futures.items():
            record = result_or_failure(future, job) if future.done() and not future.cancelled() else None
            if record is not None:
                records[job.key] = record
    finally:
        executor.shutdown(wait=True)
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)
    return records, interrupted


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops the benchmark as Ctrl-C does (a runner in the background of a shell ignores SIGINT)."""
    raise KeyboardInterrupt


def result_or_failure(future: Future, job: Job) -> dict[str, Any] | None:
    """:return: The record a finished job returned, or a ``failed`` one if the runner itself raised"""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 (a bug or an I/O error in the runner: the other runs go on)
        record = {**job.record, "status": "failed", "error": f"the runner failed: {error!r}"}
        job.write(record)
        return record
