"""Ray backend: the worker-process backend's workers, as Ray actors (``pip install ".[ray]"`` in a checkout)."""

import functools
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

try:
    import ray
except ImportError:  # optional dependency: RayEvaluator raises when it is built
    ray = None

from sb3_bierl.evaluation.pool import WorkerHandle, WorkerPoolEvaluator
from sb3_bierl.evaluation.workers import (
    Answer,
    CallData,
    NoiseSource,
    Request,
    RolloutWorker,
    check_answer,
    prepare_worker_process,
    wrap_noise,
)
from sb3_bierl.strategies import NoiseTable

RAY_MISSING = 'backend="ray" needs Ray: pip install ".[ray]" in a checkout of sb3-bierl (or pip install "ray>=2.9")'

_init_lock = threading.Lock()


def check_ray() -> None:
    """Raise ``ImportError`` with the install command if Ray is missing."""
    if ray is None:
        raise ImportError(RAY_MISSING)


def init_ray(address: str | None, n_workers: int) -> None:
    """
    Connect to Ray, unless this process is connected already (then that Ray is reused).

    From a thread other than the main one (a background start), ``ray.init`` runs in a daemon thread
    kept alive as long as the process (:func:`_init_in_kept_thread`).

    :param address: Cluster address; ``None``: ``RAY_ADDRESS`` if set, else a new local Ray
        with ``num_cpus`` at least ``n_workers``
    :param n_workers: Number of actors that will need one CPU each
    """
    check_ray()
    with _init_lock:  # two evaluators may start Ray at once, from their background threads
        if ray.is_initialized():
            return
        if threading.current_thread() is threading.main_thread():
            _ray_init(address, n_workers)
        else:
            _init_in_kept_thread(address, n_workers)


def _ray_init(address: str | None, n_workers: int) -> None:
    """``ray.init`` quietly; see :func:`init_ray` for the arguments."""
    starts_local = address == "local" or (address is None and not os.environ.get("RAY_ADDRESS"))
    # num_cpus may only be given when starting Ray
    kwargs: dict[str, Any] = {"num_cpus": max(n_workers, os.cpu_count() or 1)} if starts_local else {}
    ray.init(
        address=address,
        include_dashboard=False,
        log_to_driver=False,
        ignore_reinit_error=True,
        logging_level=logging.ERROR,  # quiet start-up
        **kwargs,
    )


def _init_in_kept_thread(address: str | None, n_workers: int) -> None:
    """
    ``ray.init`` in a daemon thread that then waits as long as the process lives. A local Ray's processes
    (GCS, raylet) are started with ``PR_SET_PDEATHSIG`` (Linux), which kills them when the *thread* that
    started them ends: from a short-lived thread (the pool's background start), Ray would die with it.
    """
    outcome: queue.Queue[BaseException | None] = queue.Queue()

    def start_and_keep() -> None:
        try:
            _ray_init(address, n_workers)
        except BaseException as error:  # noqa: BLE001 (raised in the calling thread)
            outcome.put(error)
            return
        outcome.put(None)
        threading.Event().wait()  # never set: the parent thread of Ray's local processes stays alive

    threading.Thread(target=start_and_keep, daemon=True, name="sb3-bierl-ray").start()
    error = outcome.get()
    if error is not None:
        raise error


@dataclass
class RayNoise:
    """
    The noise table in Ray's object store, put there once by the driver: actors on the same
    node read it without a copy (a read-only array in shared memory), other nodes fetch it once.

    :param ref: ``[ObjectRef]`` of the float32 array (in a list, so that Ray passes the reference, not the value)
    :param seed: Seed the table was generated from
    """

    ref: list[Any]
    seed: int

    def open(self) -> NoiseTable:
        return wrap_noise(ray.get(self.ref[0]), self.seed)


@dataclass
class RayCallData:
    """
    What every chunk of one call shares, in Ray's object store: put once per call by the driver, read
    once per actor (the centres then travel once per generation, not with every chunk or actor).

    :param ref: ``[ObjectRef]`` of the entries (in a list, so that Ray passes the reference, not the value)
    """

    ref: list[Any]

    def open(self) -> dict[str, Any]:
        return ray.get(self.ref[0])


class RayRolloutActor:
    """
    A :class:`~sb3_bierl.evaluation.processes.RolloutWorker` in a Ray actor (wrapped with
    ``ray.remote`` by :func:`actor_class`): the same code as a worker process, another transport.

    :param rank: Position of the worker (its slice of the population)
    :param env_fn_bytes: The cloudpickled environment function
    :param sys_path: The driver's ``sys.path`` (to import environment classes defined next to the script)
    """

    def __init__(self, rank: int, env_fn_bytes: bytes, sys_path: list[str]):
        prepare_worker_process(sys_path)
        self.worker = RolloutWorker(f"RayEvaluator worker {rank}", env_fn_bytes)

    def ready(self) -> Answer:
        return ("ok", True)

    def answer(self, command: str, message: dict[str, Any]) -> Answer:
        return self.worker.answer(command, message)


@functools.cache
def actor_class() -> Any:
    """:return: :class:`RayRolloutActor` as a Ray actor class holding one CPU"""
    check_ray()
    return ray.remote(num_cpus=1)(RayRolloutActor)


class _ActorHandle(WorkerHandle):
    """
    :param rank: Position of the worker (its slice of the population)
    :param actor: The Ray actor
    """

    def __init__(self, rank: int, actor: Any):
        super().__init__(rank)
        self.actor = actor
        self.pending: Any = None  # ObjectRef of the answer to the request it runs

    def describe(self) -> str:
        return f"RayEvaluator worker {self.rank}"


class RayEvaluator(WorkerPoolEvaluator):
    """
    Runs the rollouts in ``n_workers`` Ray actors, one CPU each: the same workers, splitting
    and results as :class:`~sb3_bierl.evaluation.processes.ProcessEvaluator` (see
    :class:`~sb3_bierl.evaluation.processes.WorkerPoolEvaluator`), so the returns equal those
    of ``InProcessEvaluator`` for the same inputs.

    Ray starts (or is joined) and the actors start on first use (in the background with
    ``local_until_s``); they serve every later call
    until :meth:`close` (or garbage collection). The noise table goes once into Ray's object
    store (:class:`RayNoise`). An actor that raises, or dies, makes the call raise a ``RuntimeError`` (with the actor's traceback, or Ray's
    error) and kills all actors; the next call starts new ones. :meth:`close` kills the
    actors; it never shuts Ray down (call ``ray.shutdown()`` yourself if needed).

    On a cluster, ``sb3_bierl`` and the environment's code must be importable on every node.

    :param env_fn: Function returning a new environment (sent to the actors with cloudpickle)
    :param n_workers: Number of actors
    :param noise_table_size: Size of the noise table (must match the algorithm's)
    :param noise_seed: Seed of the noise table (must match the algorithm's)
    :param address: Address of the Ray cluster to join; ``None``: ``RAY_ADDRESS`` if set,
        else a local Ray with at least ``n_workers`` CPUs. Unused if Ray is already initialised.
    :param reuse_envs: Whether an environment instance may play several episodes (see
        :class:`~sb3_bierl.evaluation.pool.WorkerPoolEvaluator`; default: decided by a check)
    :param local_until_s: See :class:`~sb3_bierl.evaluation.pool.WorkerPoolEvaluator`; ``0.0`` hides
        Ray's start (seconds): it starts in the background at the first call, whose chunks run in this
        process meanwhile. Default: start Ray and the actors at the first call, and wait for them
    """

    #: Seconds the actors have to start (e.g. to get a CPU on the cluster) before the call fails
    start_timeout = 300.0

    def __init__(
        self,
        env_fn: Callable[[], gym.Env],
        n_workers: int,
        noise_table_size: int,
        noise_seed: int,
        address: str | None = None,
        reuse_envs: bool | None = None,
        local_until_s: float | None = None,
    ):
        check_ray()  # fail now, not at the first rollout
        super().__init__(env_fn, n_workers, noise_table_size, noise_seed, local_until_s, reuse_envs)
        self.address = address
        self._workers: list[_ActorHandle] = []
        self._noise_ref: Any = None

    def close(self) -> None:
        """Kill the actors (idempotent). Ray itself keeps running."""
        super().close()
        self._noise_ref = None

    def _share_noise(self, noise: NoiseTable) -> NoiseSource:
        self._noise_ref = ray.put(noise.noise)  # kept alive by this reference
        return RayNoise([self._noise_ref], noise.seed)

    def _launch(self) -> list[WorkerHandle]:
        init_ray(self.address, self.n_workers)
        cls = actor_class()
        args = (self._env_fn_bytes, list(sys.path))
        workers = [_ActorHandle(rank, cls.remote(rank, *args)) for rank in range(self.n_workers)]
        try:
            refs = {w.actor.ready.remote(): w for w in workers}
            pending = self._wait(list(refs), time.monotonic() + self.start_timeout)
            if pending:
                raise RuntimeError(
                    f"RayEvaluator: {len(pending)} of {self.n_workers} actors (1 CPU each) did not start "
                    f"within {self.start_timeout:.0f} s; cluster resources: {ray.available_resources()}"
                )
            for ref, worker in refs.items():
                check_answer(self._get(ref, worker, "failed to start"))
        except BaseException:
            _kill(workers)
            raise
        return workers

    def _share_call(self, shared: dict[str, Any]) -> CallData:
        return RayCallData([ray.put(shared)])  # once per call, whatever the number of actors and chunks

    def _send(self, worker: WorkerHandle, request: Request) -> None:
        worker.pending = worker.actor.answer.remote(*request)

    def _receive_any(self, busy: list[WorkerHandle]) -> list[tuple[WorkerHandle, Answer]]:
        by_ref = {worker.pending: worker for worker in busy}
        while True:
            ready, _ = ray.wait(list(by_ref), num_returns=1, timeout=self.poll_interval)
            if ready:
                ready, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=0)  # and any other done
                return [(by_ref[ref], self._get(ref, by_ref[ref], "died during a rollout")) for ref in ready]

    def _wait(self, refs: list[Any], deadline: float) -> list[Any]:
        """Wait (in short steps, so that Ctrl-C gets through) until all are ready or ``deadline``; :return: the pending ones"""
        while refs and time.monotonic() < deadline:
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=self.poll_interval)
        return refs

    def _get(self, ref: Any, worker: _ActorHandle, failure: str) -> Answer:
        """:return: the actor's answer, or an error answer if Ray could not deliver it (dead actor, ...)"""
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as error:
            return ("error", f"{worker.describe()} {failure}: {error}")
        except ray.exceptions.RayError as error:
            return ("error", f"{worker.describe()} failed: {error}")

    def _stop_all(self) -> None:
        """Kill all actors now (they may be busy)."""
        workers, self._workers = getattr(self, "_workers", []), []
        _kill(workers)


def _kill(workers: list[_ActorHandle]) -> None:
    """Kill the actors, unless Ray is gone (and the actors with it)."""
    if not workers or ray is None or not ray.is_initialized():
        return
    for worker in workers:
        try:
            ray.kill(worker.actor, no_restart=True)
        except Exception:  # already dead
            pass
