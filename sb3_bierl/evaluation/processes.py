"""
Worker-process backend: chunks of the population go to worker processes, each to the first free one.

Workers fork from a ``forkserver`` that has imported torch, gymnasium and this package once (a
worker is up in a fraction of a second), and map the noise table from one shared memory block.

The per-worker logic (:class:`~sb3_bierl.evaluation.workers.RolloutWorker`) and the parent-side
splitting and merging (:class:`~sb3_bierl.evaluation.pool.WorkerPoolEvaluator`) do not depend on the
transport: the Ray backend (:mod:`sb3_bierl.evaluation.ray_backend`) reuses both, with actors instead
of processes.
"""

import multiprocessing as mp
import signal
import sys
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import shared_memory
from multiprocessing.connection import Connection, wait

import cloudpickle
import gymnasium as gym

from sb3_bierl.evaluation.in_process import check_env_history
from sb3_bierl.evaluation.pool import WorkerHandle, WorkerPoolEvaluator
from sb3_bierl.evaluation.workers import (
    Answer,
    NoiseSource,
    Request,
    RolloutWorker,
    SharedMemoryNoise,
    check_answer,
    prepare_worker_process,
)
from sb3_bierl.strategies import NoiseTable

#: Modules the forkserver imports once, before it forks any worker (not the user's main script: see
#: :func:`main_script_hidden`)
FORKSERVER_PRELOAD = ["sb3_bierl.evaluation.workers"]

#: Held while ``__main__`` is altered by :func:`main_script_hidden` (processes may start from two threads)
_main_lock = threading.RLock()


@contextmanager
def main_script_hidden() -> Iterator[None]:
    """
    Start processes without them running the user's main script: ``multiprocessing`` (spawn and
    forkserver) re-imports ``__main__`` in every child, from ``__main__.__spec__`` or ``__file__``,
    which runs an unguarded script's training again in each worker. Both are hidden while the
    workers start, then restored. Workers do not need the script: the environment function and the
    policy come cloudpickled, with what the script defines inside them.
    """
    with _main_lock:
        main = sys.modules.get("__main__")
        saved = {name: getattr(main, name) for name in ("__file__", "__spec__") if hasattr(main, name)}
        try:
            if "__file__" in saved:
                del main.__file__
            if main is not None:
                main.__spec__ = None
            yield
        finally:
            for name, value in saved.items():
                setattr(main, name, value)


# ---------------------------------------------------------------------- processes
class ProcessEvaluator(WorkerPoolEvaluator):
    """
    Runs the rollouts in ``n_workers`` worker processes (see :class:`WorkerPoolEvaluator`):
    each steps its slice of the population with an
    :class:`~sb3_bierl.evaluation.in_process.InProcessEvaluator`.

    Workers start on first use and serve every later call until :meth:`close` (or garbage
    collection). A worker that raises, or dies, makes the call raise a ``RuntimeError`` (with
    the worker's traceback) and closes all workers; the next call starts new ones. Workers
    ignore SIGINT: Ctrl-C interrupts the parent, which then terminates them. The noise table
    is written once into shared memory, which every worker maps.

    Unlike SB3's ``SubprocVecEnv``, a script needs no ``if __name__ == "__main__":`` guard: workers
    are started without re-importing the main script (:func:`main_script_hidden`); what they need
    travels with cloudpickle, which sends functions and classes defined in the script by value.

    :param env_fn: Function returning a new environment (sent to the workers with cloudpickle)
    :param n_workers: Number of worker processes
    :param noise_table_size: Size of the noise table (must match the algorithm's)
    :param noise_seed: Seed of the noise table (must match the algorithm's)
    :param start_method: ``multiprocessing`` start method; default ``"forkserver"`` where
        available, else ``"spawn"`` (``"fork"`` is unsafe once torch has started its threads).
        With ``"forkserver"``, the forkserver preloads :data:`FORKSERVER_PRELOAD` (if this is
        the process's first use of it)
    :param local_until_s: See :class:`WorkerPoolEvaluator` (default: start the workers at once)
    :param reuse_envs: See :class:`WorkerPoolEvaluator` (default: decided by a check)
    """

    #: Seconds a worker has to exit after the close command before it is terminated
    close_timeout = 2.0

    def __init__(
        self,
        env_fn: Callable[[], gym.Env],
        n_workers: int,
        noise_table_size: int,
        noise_seed: int,
        start_method: str | None = None,
        local_until_s: float | None = None,
        reuse_envs: bool | None = None,
    ):
        super().__init__(env_fn, n_workers, noise_table_size, noise_seed, local_until_s, reuse_envs)
        if start_method is None:
            start_method = default_start_method()
        self.start_method = start_method
        self._workers: list[_ProcessHandle] = []
        self._noise_block: shared_memory.SharedMemory | None = None
        self._release_noise = weakref.finalize(self, lambda: None)

    def close(self) -> None:
        """Stop the workers (see :meth:`_shutdown`) and free the shared noise (idempotent)."""
        super().close()
        self._release_noise()
        self._noise_block = None

    def _shutdown(self) -> None:
        """Ask the workers to exit, and terminate those that do not within ``close_timeout``."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.request_close()
        for worker in workers:
            worker.stop(self.close_timeout)

    def _launch(self) -> list[WorkerHandle]:
        ctx = mp.get_context(self.start_method)
        if self.start_method == "forkserver":
            ctx.set_forkserver_preload(FORKSERVER_PRELOAD)  # no effect once the forkserver runs
        args = (self._env_fn_bytes, list(sys.path))
        workers: list[_ProcessHandle] = []
        try:
            with main_script_hidden():
                for rank in range(self.n_workers):
                    workers.append(_ProcessHandle.start(ctx, rank, args))
        except BaseException:
            for worker in workers:
                worker.stop(timeout=0.0)
            raise
        return workers

    def _share_noise(self, noise: NoiseTable) -> NoiseSource:
        source, self._noise_block = SharedMemoryNoise.create(noise)
        self._noise_block.close()  # this process does not read it; the name stays until unlinked
        self._release_noise = weakref.finalize(self, _unlink, self._noise_block)
        return source

    def _send(self, worker: WorkerHandle, request: Request) -> None:
        error = worker.send(request)
        if error is not None:  # the worker cannot be reached
            check_answer(error)

    def _receive_any(self, busy: list[WorkerHandle]) -> list[tuple[WorkerHandle, Answer]]:
        while True:
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=self.poll_interval)
            answers = [(worker, answer) for worker in busy if (answer := worker.try_receive()) is not None]
            if answers:
                return answers

    def _stop_all(self) -> None:
        """Terminate all workers now (busy workers would not read a close command)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop(timeout=0.0)


class _ProcessHandle(WorkerHandle):
    """
    A worker process and the parent's end of its pipe.

    :param rank: Position of the worker (its slice of the population)
    :param process: The worker process
    :param conn: Parent's end of the pipe
    """

    def __init__(self, rank: int, process: mp.process.BaseProcess, conn: Connection):
        super().__init__(rank)
        self.process = process
        self.conn = conn

    @classmethod
    def start(cls, ctx: mp.context.BaseContext, rank: int, args: tuple) -> "_ProcessHandle":
        parent_conn, child_conn = ctx.Pipe()
        process = ctx.Process(
            target=_worker_main, args=(child_conn, rank, *args), daemon=True, name=f"ProcessEvaluator-{rank}"
        )
        process.start()
        child_conn.close()
        return cls(rank, process, parent_conn)

    def send(self, request: Request) -> Answer | None:
        """:return: None, or an error answer if the worker cannot be reached"""
        try:
            self.conn.send(request)
        except (OSError, EOFError):
            return ("error", self._death_message())
        return None

    def try_receive(self) -> Answer | None:
        """:return: the worker's answer, an error answer if it died, or None if it is still busy"""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (OSError, EOFError):
            return ("error", self._death_message())
        if not self.process.is_alive():
            return ("error", self._death_message())
        return None

    def _death_message(self) -> str:
        self.process.join(timeout=1.0)  # to read its exit code
        code = self.process.exitcode
        if code is not None and code < 0:
            how = f"was killed by signal {signal.Signals(-code).name}"
        elif code is not None:
            how = f"exited with code {code}"
        else:
            how = "closed its pipe"
        return f"ProcessEvaluator worker {self.rank} (pid {self.process.pid}) {how} during a rollout"

    def request_close(self) -> None:
        try:
            self.conn.send(("close", None))
        except (OSError, ValueError):
            pass

    def stop(self, timeout: float) -> None:
        """Join the process, terminating (then killing) it if it does not exit within ``timeout``."""
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(1.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1.0)
        self.conn.close()


def _unlink(block: shared_memory.SharedMemory) -> None:
    """Remove a shared memory block (workers that still map it keep their mapping)."""
    try:
        block.unlink()
    except FileNotFoundError:
        pass


def _worker_main(conn: Connection, rank: int, env_fn_bytes: bytes, sys_path: list[str]) -> None:
    """Serve requests until told to close or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent
    prepare_worker_process(sys_path)
    worker = RolloutWorker(f"ProcessEvaluator worker {rank}", env_fn_bytes)
    try:
        while True:
            try:
                command, message = conn.recv()
            except (EOFError, OSError):  # parent gone
                break
            if command == "close":
                break
            try:
                conn.send(worker.answer(command, message))
            except (OSError, ValueError):
                break
    finally:
        try:
            worker.close()
        finally:
            conn.close()


# ---------------------------------------------------------------------- the history check, in a helper process
def default_start_method() -> str:
    """``"forkserver"`` where available, else ``"spawn"`` (``"fork"`` is unsafe once torch has started its threads)."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def history_check_start_method() -> str:
    """
    ``"fork"`` where it is safe enough for the history check (Linux, no other Python thread, Ray not
    initialised: a forked Ray driver stops starting actors): its answer comes in a fraction of a second,
    where a forkserver's first start takes seconds (it imports torch). The helper only runs the environment
    and answers; if it ever hung, episodes would keep getting new instances (slower, same results).
    Else :func:`default_start_method`.
    """
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods() and threading.active_count() == 1:
        ray = sys.modules.get("ray")
        if ray is None or not getattr(ray, "is_initialized", lambda: True)():
            return "fork"
    return default_start_method()


class HistoryCheck:
    """
    :func:`~sb3_bierl.evaluation.in_process.check_env_history` in a helper process, in the background: its
    environment steps are not taken in this process (where ES counts every step, and a script's
    environments may count theirs). Started by :class:`~sb3_bierl.evaluation.in_process.EnvReuse`, with
    :func:`history_check_start_method`: forked at once, or else started from a thread (a forkserver's first
    start takes seconds; it is then up for the workers too).

    :param env_fn_bytes: The cloudpickled environment function
    :param max_seconds: The check's wall-clock limit
    """

    def __init__(self, env_fn_bytes: bytes, max_seconds: float):
        self._helper = _Helper(env_fn_bytes, max_seconds)
        self._finalizer = weakref.finalize(self, self._helper.stop)

    def poll(self, timeout: float = 0.0) -> tuple[str, str] | None:
        """:return: ``("ok", verdict)``, ``("error", text)``, or None while it runs (waiting up to ``timeout``)"""
        return self._helper.poll(timeout)

    def stop(self) -> None:
        """Terminate it (or cancel its start) if it still runs, and release it."""
        self._finalizer()


class _Helper:
    """The helper process of a :class:`HistoryCheck` (apart from it: the finalizer and the starting thread hold this)."""

    def __init__(self, env_fn_bytes: bytes, max_seconds: float):
        method = history_check_start_method()
        ctx = mp.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
        self.conn, child_conn = ctx.Pipe(duplex=False)
        args = (child_conn, env_fn_bytes, list(sys.path), max_seconds)
        self.process = ctx.Process(target=_history_check_main, args=args, daemon=True, name="sb3-bierl-history-check")
        self.lock = threading.Lock()
        self.state = "starting"  # then "running", "failed" or "stopped"
        self.error: BaseException | None = None
        self.starter: threading.Thread | None = None
        if method == "fork":  # from this thread, the only one: nothing else runs while it forks
            self._start(child_conn, method)
        else:
            self.starter = threading.Thread(
                target=self._start, args=(child_conn, method), daemon=True, name="sb3-bierl-history-check"
            )
            self.starter.start()

    def _start(self, child_conn: Connection, method: str) -> None:
        error = None
        try:
            with main_script_hidden():
                if method == "fork":  # in the calling thread: the warnings filters are process-wide, not per thread
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", DeprecationWarning)  # Python >= 3.12: torch's threads
                        self.process.start()
                else:  # from the starting thread: no catch_warnings here, its exit would reset what the main
                    self.process.start()  # thread set meanwhile (a user's filters, pytest.warns' recorder)
        except BaseException as exc:  # noqa: BLE001 (reported by poll)
            error = exc
        finally:
            child_conn.close()
        with self.lock:
            stopped = self.state == "stopped"
            if not stopped:
                self.state, self.error = ("running", None) if error is None else ("failed", error)
        if stopped and error is None:  # stopped while it started
            _stop_process(self.process)

    def poll(self, timeout: float) -> tuple[str, str] | None:
        deadline = time.monotonic() + timeout
        if self.starter is not None:
            self.starter.join(timeout)
        with self.lock:
            state = self.state
        if state == "starting":
            return None
        if state != "running":
            return ("error", f"the helper process did not start ({type(self.error).__name__}: {self.error})")
        try:
            if self.conn.poll(max(0.0, deadline - time.monotonic())):
                return self.conn.recv()
            if self.process.is_alive():
                return None
            if self.conn.poll():  # answered just before it ended
                return self.conn.recv()
        except (OSError, EOFError):
            pass
        self.process.join(1.0)
        return ("error", f"the helper process ended without an answer (exit code {self.process.exitcode})")

    def stop(self) -> None:
        with self.lock:
            state, self.state = self.state, "stopped"
        if state == "running":
            _stop_process(self.process)
        self.conn.close()


def _stop_process(process: mp.process.BaseProcess) -> None:
    """Terminate (then kill) a started process, and join it."""
    if process.is_alive():
        process.terminate()
    process.join(1.0)
    if process.is_alive():
        process.kill()
        process.join(1.0)


def _history_check_main(conn: Connection, env_fn_bytes: bytes, sys_path: list[str], max_seconds: float) -> None:
    """Run the check and send its answer (the helper process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent
    sys.path[:0] = [path for path in sys_path if path not in sys.path]
    try:
        answer = ("ok", check_env_history(cloudpickle.loads(env_fn_bytes), max_seconds))
    except Exception:
        answer = ("error", traceback.format_exc())
    try:
        conn.send(answer)
    except (OSError, ValueError):
        pass
    conn.close()
