"""
Worker-process backend: the population is split into contiguous slices, one per process.

The per-worker logic (:class:`RolloutWorker`) and the parent-side splitting and merging
(:class:`WorkerPoolEvaluator`) do not depend on the transport: the Ray backend
(:mod:`sb3_bierl.evaluation.ray_backend`) reuses both, with actors instead of processes.
"""

import multiprocessing as mp
import signal
import sys
import traceback
import weakref
from abc import abstractmethod
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy

from sb3_bierl.evaluation.base import PopulationEvaluator, RolloutResult, split_result
from sb3_bierl.evaluation.in_process import InProcessEvaluator
from sb3_bierl.strategies import NoiseTable, OpenAIES, Population

# One centre, its noise indices and its sigma: what a worker needs to rebuild a population
PopulationSpec = tuple[np.ndarray, np.ndarray, float]
# A command and its message, as sent to a worker
Request = tuple[str, dict[str, Any]]
# ("ok", result) or ("error", text): what a worker answers
Answer = tuple[str, Any]


# ---------------------------------------------------------------------- helpers
def check_batch(n_candidates: int, episode_seeds: np.ndarray) -> None:
    """Check that there is one row of episode seeds per candidate, and at least one candidate."""
    if episode_seeds.ndim != 2 or len(episode_seeds) != n_candidates:
        raise ValueError(f"{n_candidates} candidates but episode seeds of shape {episode_seeds.shape}")
    if n_candidates == 0:
        raise ValueError("No candidate to evaluate")


def check_answer(answer: Answer | None) -> Any:
    """:return: the result of an ``("ok", result)`` answer; raise ``RuntimeError`` for an error answer"""
    if answer is None:
        raise RuntimeError("A worker gave no answer")
    if answer[0] != "ok":
        raise RuntimeError(answer[1])
    return answer[1]


def merge_results(results: list[RolloutResult]) -> RolloutResult:
    """Concatenate the workers' results; their observation statistics are combined in order."""
    obs_rms = results[0].obs_rms
    for result in results[1:]:
        obs_rms.combine(result.obs_rms)
    return RolloutResult(
        returns=np.concatenate([r.returns for r in results]),
        lengths=np.concatenate([r.lengths for r in results]),
        episode_returns=np.concatenate([r.episode_returns for r in results]),
        episode_lengths=np.concatenate([r.episode_lengths for r in results]),
        obs_rms=obs_rms,
    )


def population_rows(
    noise: NoiseTable, populations: list[PopulationSpec], dim: int, start: int, stop: int
) -> np.ndarray:
    """
    Rows ``start:stop`` of the concatenated candidates of several populations, built exactly
    as :meth:`OpenAIES.candidates` does ("+" half first, float32).

    :param noise: The noise table
    :param populations: (centre, noise indices, sigma) of each population
    :param dim: Dimension of the parameter vector
    :param start: First global candidate index
    :param stop: One past the last global candidate index
    """
    rows, offset = [], 0
    for theta, indices, sigma in populations:
        size = 2 * len(indices)
        lo, hi = max(start, offset), min(stop, offset + size)
        if lo < hi:
            local = np.arange(lo - offset, hi - offset)
            eps = noise.get_batch(indices[local % len(indices)], dim) * sigma
            plus = (local < len(indices))[:, None]
            rows.append(np.where(plus, theta + eps, theta - eps).astype(np.float32))
        offset += size
    return np.concatenate(rows)


# ---------------------------------------------------------------------- worker side (any transport)
def prepare_worker_process(sys_path: list[str]) -> None:
    """
    Set up a worker process: one torch thread, and the parent's import path (as spawn does;
    forkserver and Ray do not), so that environment classes defined next to the script load.

    :param sys_path: The parent's ``sys.path``
    """
    th.set_num_threads(1)
    sys.path[:0] = [path for path in sys_path if path not in sys.path]


class RolloutWorker:
    """
    What a worker holds between calls, and what it does: an ``InProcessEvaluator`` on its
    own environments, its own copy of the noise table and of the policy. It knows nothing
    of the transport: worker processes and Ray actors both call :meth:`answer`.

    A request's message holds ``episode_seeds``, ``buffers`` (the policy's buffers),
    ``alive_bonus_offset``, optionally ``policy`` (a new cloudpickled policy), and either
    ``params`` (command ``"evaluate"``) or ``populations``, ``dim``, ``start`` and ``stop``
    (command ``"evaluate_population"``).

    :param name: Name used in error messages (e.g. ``"ProcessEvaluator worker 0"``)
    :param env_fn_bytes: The cloudpickled environment function (unpickled on first use, so
        that import errors reach the parent as an error answer)
    :param noise_table_size: Size of the noise table
    :param noise_seed: Seed of the noise table
    """

    def __init__(self, name: str, env_fn_bytes: bytes, noise_table_size: int, noise_seed: int):
        self.name = name
        self.env_fn_bytes = env_fn_bytes
        self.noise_table_size = noise_table_size
        self.noise_seed = noise_seed
        self.evaluator: InProcessEvaluator | None = None
        self.noise: NoiseTable | None = None
        self.policy: BasePolicy | None = None

    def answer(self, command: str, message: dict[str, Any]) -> Answer:
        """:return: ``("ok", result)``, or ``("error", traceback text)`` if handling raised"""
        try:
            return ("ok", self.handle(command, message))
        except Exception:
            return ("error", f"{self.name} raised an exception:\n{traceback.format_exc()}")

    def handle(self, command: str, message: dict[str, Any]) -> RolloutResult:
        """Run one request (see the class docstring); exceptions propagate."""
        if "policy" in message:
            self.set_policy(message["policy"])
        common = (message["episode_seeds"], message["buffers"], message["alive_bonus_offset"])
        if command == "evaluate":
            return self.evaluate(message["params"], *common)
        if command == "evaluate_population":
            rows = (message["populations"], message["dim"], message["start"], message["stop"])
            return self.evaluate_population(*rows, *common)
        raise ValueError(f"Unknown command {command!r}")

    def set_policy(self, policy_bytes: bytes) -> None:
        """:param policy_bytes: The cloudpickled policy template"""
        self.policy = cloudpickle.loads(policy_bytes)

    def evaluate(
        self, params: np.ndarray, episode_seeds: np.ndarray, buffers: dict[str, np.ndarray], alive_bonus_offset: float
    ) -> RolloutResult:
        """
        :param params: (p, dim) parameter vectors of this worker's slice
        :param episode_seeds: (p, n_episodes) their episode seeds
        :param buffers: The policy's buffers (observation statistics)
        :param alive_bonus_offset: Added to the reward at every step
        """
        policy = self._policy_with(buffers)
        if self.evaluator is None:
            self.evaluator = InProcessEvaluator(cloudpickle.loads(self.env_fn_bytes))
        return self.evaluator.evaluate(policy, params, episode_seeds, alive_bonus_offset)

    def evaluate_population(
        self,
        populations: list[PopulationSpec],
        dim: int,
        start: int,
        stop: int,
        episode_seeds: np.ndarray,
        buffers: dict[str, np.ndarray],
        alive_bonus_offset: float,
    ) -> RolloutResult:
        """
        Evaluate candidates ``start:stop`` of the concatenated populations, rebuilt from the noise table.

        :param populations: (centre, noise indices, sigma) of each population
        :param dim: Dimension of the parameter vector
        :param start: First global candidate index
        :param stop: One past the last global candidate index
        :param episode_seeds: (stop - start, n_episodes) episode seeds of these candidates
        :param buffers: The policy's buffers (observation statistics)
        :param alive_bonus_offset: Added to the reward at every step
        """
        if self.noise is None:
            self.noise = NoiseTable(self.noise_table_size, self.noise_seed)
        params = population_rows(self.noise, populations, dim, start, stop)
        return self.evaluate(params, episode_seeds, buffers, alive_bonus_offset)

    def _policy_with(self, buffers: dict[str, np.ndarray]) -> BasePolicy:
        if self.policy is None:
            raise RuntimeError("The worker received no policy")
        with th.no_grad():
            for name, buffer in self.policy.named_buffers():
                buffer.copy_(th.as_tensor(buffers[name]))
        return self.policy

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()
            self.evaluator = None


# ---------------------------------------------------------------------- parent side (any transport)
class WorkerHandle:
    """
    The parent's view of one worker.

    :param rank: Position of the worker (its slice of the population)
    """

    def __init__(self, rank: int):
        self.rank = rank
        self.policy_version = 0  # version of the policy this worker holds (0: none)


class WorkerPoolEvaluator(PopulationEvaluator):
    """
    Parent side of a pool of :class:`RolloutWorker`: splits the ``P`` candidates into
    contiguous slices (``np.array_split``), one per worker, and concatenates the results in
    order. A candidate's rollout depends only on its parameters and its episode seeds, so
    the returns equal those of ``InProcessEvaluator`` for the same inputs.

    For :meth:`evaluate_population`, workers rebuild their candidates from their own copy of
    the noise table: only the centres, noise indices and sigmas travel, never noise vectors.

    The policy object is sent once (again only when another policy is passed); then each call
    sends only its buffers (observation statistics): the parameters come with the candidates.

    Subclasses provide the transport: :meth:`_start` (fill ``self._workers``),
    :meth:`_exchange`, :meth:`_stop_all` and :meth:`close`.

    :param env_fn: Function returning a new environment (sent to the workers with cloudpickle)
    :param n_workers: Number of workers
    :param noise_table_size: Size of the noise table (must match the algorithm's)
    :param noise_seed: Seed of the noise table (must match the algorithm's)
    """

    #: Seconds between two checks that busy workers are alive
    poll_interval = 0.2

    def __init__(self, env_fn: Callable[[], gym.Env], n_workers: int, noise_table_size: int, noise_seed: int):
        if not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        self.n_workers = int(n_workers)
        self.noise_table_size = int(noise_table_size)
        self.noise_seed = int(noise_seed)
        self._env_fn_bytes = cloudpickle.dumps(env_fn)
        self._workers: list[WorkerHandle] = []
        # The policy the workers hold copies of, and its version number
        self._policy_ref: weakref.ref | None = None
        self._policy_version = 0

    # ------------------------------------------------------------------ public API
    def evaluate(
        self, policy: BasePolicy, params: np.ndarray, episode_seeds: np.ndarray, alive_bonus_offset: float = 0.0
    ) -> RolloutResult:
        """
        :param policy: Template policy (its observation statistics are used as they are)
        :param params: (P, dim) candidate parameter vectors
        :param episode_seeds: (P, n_episodes) reset seed of each episode of each candidate
        :param alive_bonus_offset: Added to the reward at every step (ARS convention)
        """
        params = np.asarray(params, dtype=np.float32)  # what InProcessEvaluator runs anyway
        episode_seeds = np.asarray(episode_seeds)
        check_batch(len(params), episode_seeds)
        payloads = [
            {"params": params[start:stop], "episode_seeds": episode_seeds[start:stop]}
            for start, stop in self._slices(len(params))
        ]
        return self._run("evaluate", policy, payloads, alive_bonus_offset)

    def evaluate_population(
        self,
        policy: BasePolicy,
        strategy: OpenAIES,
        noise: NoiseTable,
        populations: list[Population],
        theta: list[np.ndarray],
        episode_seeds: np.ndarray,
        alive_bonus_offset: float = 0.0,
    ) -> list[RolloutResult]:
        """
        Evaluate several antithetic populations (one per centre ``theta[k]``) in one batch;
        workers rebuild their candidates from the noise indices.

        Falls back to sending the vectors (base class) if ``noise`` is not the table the
        workers build, or ``strategy`` lays out its candidates differently from ``OpenAIES``.

        :param policy: Template policy
        :param strategy: Strategy that asked for the populations (gives the dimension)
        :param noise: The shared noise table
        :param populations: Antithetic populations
        :param theta: Centre of each population
        :param episode_seeds: (2n, n_episodes) seeds shared by every population (common random numbers)
        :param alive_bonus_offset: Added to the reward at every step (ARS convention)
        :return: one result per population
        """
        if not self._can_rebuild(strategy, noise):
            return super().evaluate_population(
                policy, strategy, noise, populations, theta, episode_seeds, alive_bonus_offset
            )
        if len(populations) != len(theta):
            raise ValueError(f"{len(populations)} populations but {len(theta)} centres")
        specs: list[PopulationSpec] = [
            (np.asarray(th_k), np.asarray(pop.noise_indices), pop.sigma)
            for pop, th_k in zip(populations, theta, strict=True)
        ]
        sizes = [pop.size for pop in populations]
        seeds = np.concatenate([episode_seeds] * len(populations))
        check_batch(sum(sizes), seeds)
        payloads = [
            {"populations": specs, "dim": strategy.dim, "start": start, "stop": stop, "episode_seeds": seeds[start:stop]}
            for start, stop in self._slices(sum(sizes))
        ]
        result = self._run("evaluate_population", policy, payloads, alive_bonus_offset)
        return split_result(result, sizes)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutting down
            pass

    # ------------------------------------------------------------------ transport (subclasses)
    @abstractmethod
    def _start(self) -> None:
        """Start the ``n_workers`` workers into ``self._workers``, unless they run already."""

    @abstractmethod
    def _exchange(self, workers: list[WorkerHandle], requests: list[Request]) -> list[RolloutResult]:
        """
        Send one request to each worker, and wait for all the answers.

        :return: the results, in the order of ``workers``; raise ``RuntimeError`` (with the
            worker's traceback, or how it died) as soon as one worker fails
        """

    @abstractmethod
    def _stop_all(self) -> None:
        """Stop all workers now, busy or not (the next call starts new ones)."""

    # ------------------------------------------------------------------ internals
    def _can_rebuild(self, strategy: OpenAIES, noise: NoiseTable) -> bool:
        same_table = (noise.size, noise.seed) == (self.noise_table_size, self.noise_seed)
        return same_table and type(strategy).candidates is OpenAIES.candidates

    def _slices(self, n_candidates: int) -> list[tuple[int, int]]:
        """Contiguous (start, stop) slices, one per worker that gets candidates."""
        chunks = np.array_split(np.arange(n_candidates), min(self.n_workers, n_candidates))
        return [(int(chunk[0]), int(chunk[-1]) + 1) for chunk in chunks]

    def _policy_message(self, policy: BasePolicy) -> dict[str, np.ndarray]:
        """Track which policy the workers should hold; :return: its buffers as numpy arrays"""
        if self._policy_ref is None or self._policy_ref() is not policy:
            self._policy_ref = weakref.ref(policy)
            self._policy_version += 1
        return {name: buffer.detach().cpu().numpy().copy() for name, buffer in policy.named_buffers()}

    def _requests(
        self,
        command: str,
        policy: BasePolicy,
        workers: list[WorkerHandle],
        payloads: list[dict[str, Any]],
        alive_bonus_offset: float,
    ) -> list[Request]:
        """One request per worker; the policy itself goes only to workers holding another one."""
        buffers = self._policy_message(policy)
        stale = any(worker.policy_version != self._policy_version for worker in workers)
        policy_bytes = cloudpickle.dumps(policy) if stale else None
        requests = []
        for worker, payload in zip(workers, payloads, strict=True):
            message = {**payload, "buffers": buffers, "alive_bonus_offset": float(alive_bonus_offset)}
            if worker.policy_version != self._policy_version:
                message["policy"] = policy_bytes
                worker.policy_version = self._policy_version
            requests.append((command, message))
        return requests

    def _run(
        self, command: str, policy: BasePolicy, payloads: list[dict[str, Any]], alive_bonus_offset: float
    ) -> RolloutResult:
        """Send one payload to each of the first workers, and merge their results in order."""
        self._start()
        workers = self._workers[: len(payloads)]
        try:
            requests = self._requests(command, policy, workers, payloads, alive_bonus_offset)
            return merge_results(self._exchange(workers, requests))
        except BaseException:
            # Interrupted (Ctrl-C, a fault): answers may still come, so drop the workers
            self._stop_all()
            raise


# ---------------------------------------------------------------------- processes
class ProcessEvaluator(WorkerPoolEvaluator):
    """
    Runs the rollouts in ``n_workers`` worker processes (see :class:`WorkerPoolEvaluator`):
    each steps its slice of the population with an
    :class:`~sb3_bierl.evaluation.in_process.InProcessEvaluator`.

    Workers start on first use. A worker that raises, or dies, makes the call raise a
    ``RuntimeError`` (with the worker's traceback) and closes all workers; the next call
    starts new ones. Workers ignore SIGINT: Ctrl-C interrupts the parent, which then
    terminates them.

    As with SB3's ``SubprocVecEnv``, a script that uses it must guard its entry point with
    ``if __name__ == "__main__":`` (forkserver and spawn re-import the main module).

    :param env_fn: Function returning a new environment (sent to the workers with cloudpickle)
    :param n_workers: Number of worker processes
    :param noise_table_size: Size of the noise table (must match the algorithm's)
    :param noise_seed: Seed of the noise table (must match the algorithm's)
    :param start_method: ``multiprocessing`` start method; default ``"forkserver"`` where
        available, else ``"spawn"`` (``"fork"`` is unsafe once torch has started its threads)
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
    ):
        super().__init__(env_fn, n_workers, noise_table_size, noise_seed)
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self.start_method = start_method
        self._workers: list[_ProcessHandle] = []

    def close(self) -> None:
        """Ask the workers to exit, and terminate those that do not within ``close_timeout``."""
        workers, self._workers = getattr(self, "_workers", []), []
        for worker in workers:
            worker.request_close()
        for worker in workers:
            worker.stop(self.close_timeout)

    def _start(self) -> None:
        if self._workers:
            return
        ctx = mp.get_context(self.start_method)
        args = (self._env_fn_bytes, self.noise_table_size, self.noise_seed, list(sys.path))
        self._workers = [_ProcessHandle.start(ctx, rank, args) for rank in range(self.n_workers)]

    def _exchange(self, workers: list[WorkerHandle], requests: list[Request]) -> list[RolloutResult]:
        for worker, request in zip(workers, requests, strict=True):
            error = worker.send(request)
            if error is not None:
                check_answer(error)
        return self._gather(workers)

    def _gather(self, workers: list["_ProcessHandle"]) -> list[RolloutResult]:
        """Wait for every worker's answer, failing fast if one raises or dies."""
        results: dict[int, RolloutResult] = {}
        pending = list(workers)
        while pending:
            wait([w.conn for w in pending] + [w.process.sentinel for w in pending], timeout=self.poll_interval)
            for worker in list(pending):
                answer = worker.try_receive()
                if answer is None:
                    continue
                results[worker.rank] = check_answer(answer)
                pending.remove(worker)
        return [results[w.rank] for w in workers]

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


def _worker_main(
    conn: Connection, rank: int, env_fn_bytes: bytes, noise_table_size: int, noise_seed: int, sys_path: list[str]
) -> None:
    """Serve requests until told to close or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent
    prepare_worker_process(sys_path)
    worker = RolloutWorker(f"ProcessEvaluator worker {rank}", env_fn_bytes, noise_table_size, noise_seed)
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
