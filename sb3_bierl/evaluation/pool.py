"""Parent side of the multi-worker backends, independent of the transport: split the population,
send requests, merge the answers."""

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
from sb3_bierl.evaluation.workers import (
    PopulationSpec,
    Request,
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

    def __init__(
        self,
        env_fn: Callable[[], gym.Env],
        n_workers: int,
        noise_table_size: int,
        noise_seed: int,
    ):
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
        result = self._run("evaluate_population", policy, payloads, *options)
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
    ) -> list[Request]:
        """One request per worker; the policy itself goes only to workers holding another one."""
        buffers = self._policy_message(policy)
        options = {
            "alive_bonus_offset": float(alive_bonus_offset),
            "descriptor_fn": None if descriptor_fn is None else cloudpickle.dumps(descriptor_fn),
            "record_transitions": bool(record_transitions),
        }
        stale = any(worker.policy_version != self._policy_version for worker in workers)
        policy_bytes = cloudpickle.dumps(policy) if stale else None
        requests = []
        for worker, payload in zip(workers, payloads, strict=True):
            message = {**payload, "buffers": buffers, **options}
            if worker.policy_version != self._policy_version:
                message["policy"] = policy_bytes
                worker.policy_version = self._policy_version
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
    ) -> RolloutResult:
        """Send one payload to each of the first workers, and merge their results in order."""
        self._start()
        workers = self._workers[: len(payloads)]
        options = (alive_bonus_offset, descriptor_fn, record_transitions)
        try:
            requests = self._requests(command, policy, workers, payloads, *options)
            return merge_results(self._exchange(workers, requests))
        except BaseException:
            # Interrupted (Ctrl-C, a fault): answers may still come, so drop the workers
            self._stop_all()
            raise
