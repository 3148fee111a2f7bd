"""Worker-process backend: the population is split into contiguous slices, one per process."""

import multiprocessing as mp
import signal
import sys
import traceback
import weakref
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


class ProcessEvaluator(PopulationEvaluator):
    """
    Runs the rollouts in ``n_workers`` worker processes. The ``P`` candidates are split into
    contiguous slices (``np.array_split``), one per worker; each worker steps its slice with an
    :class:`~sb3_bierl.evaluation.in_process.InProcessEvaluator` and the results are
    concatenated in order. A candidate's rollout depends only on its parameters and its episode
    seeds, so the returns equal those of ``InProcessEvaluator`` for the same inputs.

    For :meth:`evaluate_population`, workers rebuild their candidates from their own copy of
    the noise table: only the centres, noise indices and sigmas travel, never noise vectors.

    The policy object is sent once (again only when another policy is passed); then each call
    sends only its buffers (observation statistics): the parameters come with the candidates.

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

    #: Seconds between two checks that busy workers are alive
    poll_interval = 0.2
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
        if not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        if start_method is None:
            start_method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        self.n_workers = int(n_workers)
        self.noise_table_size = int(noise_table_size)
        self.noise_seed = int(noise_seed)
        self.start_method = start_method
        self._env_fn_bytes = cloudpickle.dumps(env_fn)
        self._workers: list[_WorkerHandle] = []
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

    def close(self) -> None:
        """Ask the workers to exit, and terminate those that do not within ``close_timeout``."""
        workers, self._workers = getattr(self, "_workers", []), []
        for worker in workers:
            worker.request_close()
        for worker in workers:
            worker.stop(self.close_timeout)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutting down
            pass

    # ------------------------------------------------------------------ internals
    def _can_rebuild(self, strategy: OpenAIES, noise: NoiseTable) -> bool:
        same_table = (noise.size, noise.seed) == (self.noise_table_size, self.noise_seed)
        return same_table and type(strategy).candidates is OpenAIES.candidates

    def _slices(self, n_candidates: int) -> list[tuple[int, int]]:
        """Contiguous (start, stop) slices, one per worker that gets candidates."""
        chunks = np.array_split(np.arange(n_candidates), min(self.n_workers, n_candidates))
        return [(int(chunk[0]), int(chunk[-1]) + 1) for chunk in chunks]

    def _start(self) -> None:
        if self._workers:
            return
        ctx = mp.get_context(self.start_method)
        args = (self._env_fn_bytes, self.noise_table_size, self.noise_seed, list(sys.path))
        self._workers = [_WorkerHandle.start(ctx, rank, args) for rank in range(self.n_workers)]

    def _policy_message(self, policy: BasePolicy) -> dict[str, np.ndarray]:
        """Track which policy the workers should hold; :return: its buffers as numpy arrays"""
        if self._policy_ref is None or self._policy_ref() is not policy:
            self._policy_ref = weakref.ref(policy)
            self._policy_version += 1
        return {name: buffer.detach().cpu().numpy().copy() for name, buffer in policy.named_buffers()}

    def _run(
        self, command: str, policy: BasePolicy, payloads: list[dict[str, Any]], alive_bonus_offset: float
    ) -> RolloutResult:
        """Send one payload to each of the first workers, and merge their results in order."""
        self._start()
        buffers = self._policy_message(policy)
        workers = self._workers[: len(payloads)]
        stale = any(worker.policy_version != self._policy_version for worker in workers)
        policy_bytes = cloudpickle.dumps(policy) if stale else None
        try:
            for worker, payload in zip(workers, payloads, strict=True):
                message = {**payload, "buffers": buffers, "alive_bonus_offset": float(alive_bonus_offset)}
                if worker.policy_version != self._policy_version:
                    message["policy"] = policy_bytes
                    worker.policy_version = self._policy_version
                self._check(worker.send((command, message)))
            return merge_results(self._gather(workers))
        except BaseException:
            # Interrupted (Ctrl-C, a fault): answers may be left in the pipes, so drop the workers
            self._stop_all()
            raise

    def _gather(self, workers: list["_WorkerHandle"]) -> list[RolloutResult]:
        """Wait for every worker's answer, failing fast if one raises or dies."""
        results: dict[int, RolloutResult] = {}
        pending = list(workers)
        while pending:
            wait([w.conn for w in pending] + [w.process.sentinel for w in pending], timeout=self.poll_interval)
            for worker in list(pending):
                answer = worker.try_receive()
                if answer is None:
                    continue
                self._check(answer)
                results[worker.rank] = answer[1]
                pending.remove(worker)
        return [results[w.rank] for w in workers]

    def _check(self, answer: tuple[str, Any] | None) -> None:
        """Raise (after closing all workers) if a worker reported an error or died."""
        if answer is None or answer[0] == "ok":
            return
        self._stop_all()
        raise RuntimeError(answer[1])

    def _stop_all(self) -> None:
        """Terminate all workers now (busy workers would not read a close command)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop(timeout=0.0)


def check_batch(n_candidates: int, episode_seeds: np.ndarray) -> None:
    """Check that there is one row of episode seeds per candidate, and at least one candidate."""
    if episode_seeds.ndim != 2 or len(episode_seeds) != n_candidates:
        raise ValueError(f"{n_candidates} candidates but episode seeds of shape {episode_seeds.shape}")
    if n_candidates == 0:
        raise ValueError("No candidate to evaluate")


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


# ---------------------------------------------------------------------- parent side of a worker
class _WorkerHandle:
    """
    A worker process and the parent's end of its pipe.

    :param rank: Position of the worker (its slice of the population)
    :param process: The worker process
    :param conn: Parent's end of the pipe
    """

    def __init__(self, rank: int, process: mp.process.BaseProcess, conn: Connection):
        self.rank = rank
        self.process = process
        self.conn = conn
        self.policy_version = 0  # version of the policy this worker holds (0: none)

    @classmethod
    def start(cls, ctx: mp.context.BaseContext, rank: int, args: tuple) -> "_WorkerHandle":
        parent_conn, child_conn = ctx.Pipe()
        process = ctx.Process(
            target=_worker_main, args=(child_conn, rank, *args), daemon=True, name=f"ProcessEvaluator-{rank}"
        )
        process.start()
        child_conn.close()
        return cls(rank, process, parent_conn)

    def send(self, message: tuple[str, Any]) -> tuple[str, str] | None:
        """:return: None, or an error answer if the worker cannot be reached"""
        try:
            self.conn.send(message)
        except (OSError, EOFError):
            return ("error", self._death_message())
        return None

    def try_receive(self) -> tuple[str, Any] | None:
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


# ---------------------------------------------------------------------- worker process
class _WorkerState:
    """
    What a worker holds between calls: its evaluator, its noise table and its policy copy.

    :param env_fn_bytes: The cloudpickled environment function
    :param noise_table_size: Size of the noise table
    :param noise_seed: Seed of the noise table
    """

    def __init__(self, env_fn_bytes: bytes, noise_table_size: int, noise_seed: int):
        self.env_fn_bytes = env_fn_bytes
        self.noise_table_size = noise_table_size
        self.noise_seed = noise_seed
        self.evaluator: InProcessEvaluator | None = None
        self.noise: NoiseTable | None = None
        self.policy: BasePolicy | None = None

    def handle(self, command: str, message: dict[str, Any]) -> RolloutResult:
        if self.evaluator is None:  # unpickled here so that import errors reach the parent
            self.evaluator = InProcessEvaluator(cloudpickle.loads(self.env_fn_bytes))
        policy = self._update_policy(message)
        if command == "evaluate":
            params = message["params"]
        elif command == "evaluate_population":
            if self.noise is None:
                self.noise = NoiseTable(self.noise_table_size, self.noise_seed)
            params = population_rows(self.noise, message["populations"], message["dim"], message["start"], message["stop"])
        else:
            raise ValueError(f"Unknown command {command!r}")
        return self.evaluator.evaluate(policy, params, message["episode_seeds"], message["alive_bonus_offset"])

    def _update_policy(self, message: dict[str, Any]) -> BasePolicy:
        if "policy" in message:
            self.policy = cloudpickle.loads(message["policy"])
        if self.policy is None:
            raise RuntimeError("The worker received no policy")
        with th.no_grad():
            for name, buffer in self.policy.named_buffers():
                buffer.copy_(th.as_tensor(message["buffers"][name]))
        return self.policy

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()


def _worker_main(
    conn: Connection, rank: int, env_fn_bytes: bytes, noise_table_size: int, noise_seed: int, sys_path: list[str]
) -> None:
    """Serve commands until told to close or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent
    th.set_num_threads(1)
    # As spawn does (forkserver does not): import modules from where the parent does
    sys.path[:0] = [path for path in sys_path if path not in sys.path]
    state = _WorkerState(env_fn_bytes, noise_table_size, noise_seed)
    try:
        while True:
            try:
                command, message = conn.recv()
            except (EOFError, OSError):  # parent gone
                break
            if command == "close":
                break
            try:
                answer: tuple[str, Any] = ("ok", state.handle(command, message))
            except Exception:
                answer = ("error", f"ProcessEvaluator worker {rank} raised an exception:\n{traceback.format_exc()}")
            try:
                conn.send(answer)
            except (OSError, ValueError):
                break
    finally:
        try:
            state.close()
        finally:
            conn.close()
