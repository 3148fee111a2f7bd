"""Parent side of the multi-worker backends, independent of the transport: split the population,
send requests, merge the answers."""

import threading
import time
import weakref
from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
from stable_baselines3.common.policies import BasePolicy

from sb3_bierl.evaluation.base import (
    DescriptorFn,
    PopulationEvaluator,
    RolloutResult,
    split_result,
)
from sb3_bierl.evaluation.in_process import EnvReuse
from sb3_bierl.evaluation.workers import (
    InlineNoise,
    NoiseSource,
    PopulationSpec,
    Request,
    RolloutWorker,
    check_answer,
    check_batch,
    merge_results,
)
from sb3_bierl.strategies import NoiseTable, OpenAIES, Population


# ---------------------------------------------------------------------- parent side (any transport)
class WorkerHandle:
    """
    The parent's view of one worker.

    :param rank: Position of the worker (its slice of the population)
    """

    def __init__(self, rank: int):
        self.rank = rank
        self.policy_version = 0  # version of the policy this worker holds (0: none)
        self.has_noise = False  # whether it was sent the noise table


class WorkerPoolEvaluator(PopulationEvaluator):
    """
    Parent side of a pool of :class:`RolloutWorker`: splits the ``P`` candidates into
    contiguous slices (``np.array_split``), one per worker, and concatenates the results in
    order. A candidate's rollout depends only on its parameters and its episode seeds, so
    the returns equal those of ``InProcessEvaluator`` for the same inputs.

    For :meth:`evaluate_population`, workers rebuild their candidates from the noise table
    (sent once, as a :class:`~sb3_bierl.evaluation.workers.NoiseSource`: shared memory for
    processes, the object store for Ray): only the centres, noise indices and sigmas travel,
    never noise vectors.

    Workers start on first use and stay up between calls (and between ``learn`` calls) until
    :meth:`close`, a failed call, or garbage collection. With ``local_until_s``, the slices
    first run one after another in this process, with the same worker code: short jobs never
    pay for starting workers, and results do not depend on where the slices ran.

    The policy object is sent once (again only when another policy is passed); then each call
    sends only its buffers (observation statistics): the parameters come with the candidates.

    Subclasses provide the transport: :meth:`_launch`, :meth:`_exchange`, :meth:`_stop_all`
    and :meth:`_share_noise`.

    :param env_fn: Function returning a new environment (sent to the workers with cloudpickle)
    :param n_workers: Number of workers
    :param noise_table_size: Size of the noise table (must match the algorithm's)
    :param noise_seed: Seed of the noise table (must match the algorithm's)
    :param local_until_s: ``None``: start the workers at the first call. A number: run the
        slices in this process until they have taken that many seconds in all, then start the
        workers in the background, and keep running the slices here until the workers are up
        (the environments then run in this process too, as with ``InProcessEvaluator``)
    :param reuse_envs: Whether an environment instance may play several episodes (see
        :class:`~sb3_bierl.evaluation.in_process.InProcessEvaluator`); ``None``: decided once here, by a
        check in a helper process (:class:`~sb3_bierl.evaluation.in_process.EnvReuse`), for every worker
    """

    #: Seconds between two checks that busy workers are alive
    poll_interval = 0.2

    def __init__(
        self,
        env_fn: Callable[[], gym.Env],
        n_workers: int,
        noise_table_size: int,
        noise_seed: int,
        local_until_s: float | None = None,
        reuse_envs: bool | None = None,
    ):
        if not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
            raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
        self.reuse = EnvReuse(reuse_envs)
        self.n_workers = int(n_workers)
        self.noise_table_size = int(noise_table_size)
        self.noise_seed = int(noise_seed)
        self._env_fn_bytes = cloudpickle.dumps(env_fn)
        self._workers: list[WorkerHandle] = []
        # The policy the workers hold copies of, and its version number
        self._policy_ref: weakref.ref | None = None
        self._policy_version = 0
        self._noise_source: NoiseSource | None = None
        # Running the slices in this process before (or instead of) the workers
        self.local_until_s = local_until_s
        self._local: RolloutWorker | None = None
        self._local_handle = WorkerHandle(rank=-1)
        self._local_seconds = 0.0
        self._launcher: threading.Thread | None = None
        self._launched: list[WorkerHandle] | BaseException | None = None
        self.reuse.start(lambda: self._env_fn_bytes)

    # ------------------------------------------------------------------ public API
    def evaluate(
        self,
        policy: BasePolicy,
        params: np.ndarray,
        episode_seeds: np.ndarray,
        alive_bonus_offset: float = 0.0,
        descriptor_fn: DescriptorFn | None = None,
        record_transitions: bool = False,
    ) -> RolloutResult:
        """
        :param policy: Template policy (its observation statistics are used as they are)
        :param params: (P, dim) candidate parameter vectors
        :param episode_seeds: (P, n_episodes) reset seed of each episode of each candidate
        :param alive_bonus_offset: Added to the reward at every step (ARS convention)
        :param descriptor_fn: Behaviour descriptor of each episode (sent with cloudpickle), or None
        :param record_transitions: Return every step taken
        """
        params = np.asarray(params, dtype=np.float32)  # what InProcessEvaluator runs anyway
        episode_seeds = np.asarray(episode_seeds)
        check_batch(len(params), episode_seeds)
        payloads = [
            {"params": params[start:stop], "episode_seeds": episode_seeds[start:stop]}
            for start, stop in self._slices(len(params))
        ]
        return self._run(
            "evaluate",
            policy,
            payloads,
            alive_bonus_offset,
            descriptor_fn,
            record_transitions,
        )

    def evaluate_population(
        self,
        policy: BasePolicy,
        strategy: OpenAIES,
        noise: NoiseTable,
        populations: list[Population],
        theta: list[np.ndarray],
        episode_seeds: np.ndarray,
        alive_bonus_offset: float = 0.0,
        descriptor_fn: DescriptorFn | None = None,
        record_transitions: bool = False,
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
        :param descriptor_fn: Behaviour descriptor of each episode, or None
        :param record_transitions: Return every step taken
        :return: one result per population
        """
        options = (alive_bonus_offset, descriptor_fn, record_transitions)
        if not self._can_rebuild(strategy, noise):
            return super().evaluate_population(policy, strategy, noise, populations, theta, episode_seeds, *options)
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
            {
                "populations": specs,
                "dim": strategy.dim,
                "start": start,
                "stop": stop,
                "episode_seeds": seeds[start:stop],
            }
            for start, stop in self._slices(sum(sizes))
        ]
        result = self._run("evaluate_population", policy, payloads, *options, noise=noise)
        return split_result(result, sizes)

    def close(self) -> None:
        """Stop the workers (idempotent); the next call starts new ones."""
        if not hasattr(self, "_local"):  # __init__ failed
            return
        launched = self._join_launcher()
        if isinstance(launched, list):  # started in the background, never used
            self._workers = launched
        self._shutdown()
        self.reuse.close()
        self._noise_source = None
        if self._local is not None:
            self._local.close()
            self._local = None
        self._local_handle = WorkerHandle(rank=-1)

    def _shutdown(self) -> None:
        """Stop the workers at :meth:`close` (default: :meth:`_stop_all`)."""
        self._stop_all()

    def start(self) -> None:
        """Start the workers now, unless they run already, and wait until they are up."""
        if self._workers:
            return
        launched = self._join_launcher()
        check_launched(launched, type(self).__name__)
        self._workers = launched or self._launch()

    @property
    def workers_running(self) -> bool:
        """Whether the workers are up (False while the slices run in this process)."""
        return bool(self._workers)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutting down
            pass

    # ------------------------------------------------------------------ transport (subclasses)
    @abstractmethod
    def _launch(self) -> list[WorkerHandle]:
        """
        Start ``n_workers`` workers (this may run in a background thread: touch no other state).

        :return: their handles, in rank order; stop any started ones before raising
        """

    @abstractmethod
    def _share_noise(self, noise: NoiseTable) -> NoiseSource:
        """:return: how the workers get ``noise`` (shared memory, the object store...: never a copy per worker)"""

    @abstractmethod
    def _exchange(self, workers: list[WorkerHandle], requests: list[Request]) -> list[RolloutResult]:
        """
        Send one request to each worker, and wait for all the answers.

        :return: the results, in the order of ``workers``; raise ``RuntimeError`` (with the
            worker's traceback, or how it died) as soon as one worker fails
        """

    @abstractmethod
    def _stop_all(self) -> None:
        """Stop all workers in ``self._workers`` now, busy or not, and empty it (the next call starts new ones)."""

    # ------------------------------------------------------------------ internals
    def _can_rebuild(self, strategy: OpenAIES, noise: NoiseTable) -> bool:
        same_table = (noise.size, noise.seed) == (
            self.noise_table_size,
            self.noise_seed,
        )
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
        descriptor_fn: DescriptorFn | None,
        record_transitions: bool,
        noise: NoiseSource | None = None,
    ) -> list[Request]:
        """One request per worker; the policy (and the noise table) go only to workers that lack them."""
        buffers = self._policy_message(policy)
        options = {
            "alive_bonus_offset": float(alive_bonus_offset),
            "descriptor_fn": None if descriptor_fn is None else cloudpickle.dumps(descriptor_fn),
            "record_transitions": bool(record_transitions),
            "reuse_envs": self.reuse.current(lambda: self._env_fn_bytes),
        }
        stale = any(worker.policy_version != self._policy_version for worker in workers)
        policy_bytes = cloudpickle.dumps(policy) if stale else None
        requests = []
        for worker, payload in zip(workers, payloads, strict=True):
            message = {**payload, "buffers": buffers, **options}
            if worker.policy_version != self._policy_version:
                message["policy"] = policy_bytes
                worker.policy_version = self._policy_version
            if noise is not None and not worker.has_noise:
                message["noise"] = noise
                worker.has_noise = True
            requests.append((command, message))
        return requests

    def _run(
        self,
        command: str,
        policy: BasePolicy,
        payloads: list[dict[str, Any]],
        alive_bonus_offset: float,
        descriptor_fn: DescriptorFn | None = None,
        record_transitions: bool = False,
        noise: NoiseTable | None = None,
    ) -> RolloutResult:
        """Send one payload to each of the first workers (or run them here), and merge their results in order."""
        options = (alive_bonus_offset, descriptor_fn, record_transitions)
        if not self._workers_ready():
            return self._run_locally(command, policy, payloads, *options, noise)
        workers = self._workers[: len(payloads)]
        try:
            source = None
            if noise is not None:
                if self._noise_source is None:
                    self._noise_source = self._share_noise(noise)
                source = self._noise_source
            requests = self._requests(command, policy, workers, payloads, *options, source)
            result = merge_results(self._exchange(workers, requests))
        except BaseException:
            # Interrupted (Ctrl-C, a fault): answers may still come, so drop the workers
            self._stop_all()
            raise
        self.reuse.wait()  # a history check still running (rare: it is short) does not outlive the call
        return result

    def _workers_ready(self) -> bool:
        """:return: whether to use the workers (starting them, or checking on their start, as needed)"""
        if self._workers:
            return True
        if self.local_until_s is None:
            self._workers = self._launch()
            return True
        if self._launcher is None:
            self._maybe_start_launcher()
            return False
        if self._launcher.is_alive():
            return False
        launched = self._join_launcher()
        check_launched(launched, type(self).__name__)
        self._workers = launched or []
        if self._workers and self._local is not None:  # the workers take over: free this process's environments
            self._local.close()
            self._local = None
        return bool(self._workers)

    def _maybe_start_launcher(self) -> None:
        """Start the workers in the background once the rollouts here have taken ``local_until_s``."""
        if self._launcher is None and self._local_seconds >= self.local_until_s:
            self._launched = None
            self._launcher = threading.Thread(target=self._launch_in_background, daemon=True, name="sb3-bierl-launcher")
            self._launcher.start()

    def _launch_in_background(self) -> None:
        try:
            self._launched = self._launch()
        except BaseException as error:  # noqa: BLE001 (reported by the next call, in the main thread)
            self._launched = error

    def _join_launcher(self) -> list[WorkerHandle] | BaseException | None:
        """Wait for a background start, if any. :return: what it started (or its error)"""
        launcher, self._launcher = self._launcher, None
        if launcher is None:
            return None
        launcher.join()
        launched, self._launched = self._launched, None
        return launched

    def _run_locally(
        self,
        command: str,
        policy: BasePolicy,
        payloads: list[dict[str, Any]],
        alive_bonus_offset: float,
        descriptor_fn: DescriptorFn | None,
        record_transitions: bool,
        noise: NoiseTable | None,
    ) -> RolloutResult:
        """Run the slices one after another in this process, with the worker code (same results)."""
        start = time.perf_counter()
        if self._local is None:
            self._local = RolloutWorker(f"{type(self).__name__} (in this process)", self._env_fn_bytes)
        handles = [self._local_handle] * len(payloads)  # one worker: the policy and the noise go once
        source = None if noise is None else InlineNoise(noise)
        options = (alive_bonus_offset, descriptor_fn, record_transitions)
        requests = self._requests(command, policy, handles, payloads, *options, source)
        results = []
        for request in requests:
            results.append(check_answer(self._local.answer(*request)))
            # a slow environment's generation can be long: start the workers between two slices
            self._local_seconds += time.perf_counter() - start
            start = time.perf_counter()
            self._maybe_start_launcher()
        return merge_results(results)


def check_launched(launched: list[WorkerHandle] | BaseException | None, name: str) -> None:
    """Raise ``RuntimeError`` if a background start of the workers failed."""
    if isinstance(launched, BaseException):
        raise RuntimeError(f"{name}: the workers failed to start: {launched}") from launched  # noqa: TRY004
