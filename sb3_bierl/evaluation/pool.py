"""Parent side of the multi-worker backends, independent of the transport: split the population,
send requests, merge the answers."""

import math
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
    Answer,
    CallData,
    InlineCallData,
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

#: While the workers start in the background, a call is cut into this many times more chunks, so that they
#: take over between two chunks instead of after a whole call run in this process (one core)
HANDOVER_CHUNKS_PER_WORKER = 4


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
        self.call_id = 0  # the call whose shared data it holds (0: none)


class WorkerPoolEvaluator(PopulationEvaluator):
    """
    Parent side of a pool of :class:`RolloutWorker`: splits the ``P`` candidates into
    contiguous chunks (:func:`dispatch_chunks`), sends each chunk to whichever worker is free
    (dynamic dispatch: where episodes end early, no worker waits for a slow one's fixed share),
    and concatenates the results in candidate order. A candidate's rollout depends only on its
    parameters and its episode seeds, and observation statistics are merged candidate by
    candidate, so the results equal those of ``InProcessEvaluator`` for the same inputs,
    whichever worker ran what.

    What every chunk of a call shares (the centres, the policy's buffers, the options) goes to
    each worker once per call (:meth:`_share_call`: inline for processes, one object-store entry
    for Ray), each chunk carrying only its candidate range and episode seeds.

    For :meth:`evaluate_population`, workers rebuild their candidates from the noise table
    (sent once, as a :class:`~sb3_bierl.evaluation.workers.NoiseSource`: shared memory for
    processes, the object store for Ray): only the centres, noise indices and sigmas travel,
    never noise vectors.

    Workers start on first use and stay up between calls (and between ``learn`` calls) until
    :meth:`close`, a failed call, or garbage collection. With ``local_until_s``, the slices
    first run one after another in this process, with the same worker code: short jobs never
    pay for starting workers, and results do not depend on where the slices ran. Once the
    workers are up, they take over between two chunks of the call running here (calls are cut
    finer while they start: :data:`HANDOVER_CHUNKS_PER_WORKER`).

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
        self._call_id = 0
        # Candidate lengths of the last call: decide between fixed slices and dynamic dispatch
        self._last_lengths: np.ndarray | None = None
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
            for start, stop in self._chunks(len(params))
        ]
        return self._run("evaluate", policy, {}, payloads, alive_bonus_offset, descriptor_fn, record_transitions)

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
            {"start": start, "stop": stop, "episode_seeds": seeds[start:stop]}
            for start, stop in self._chunks(sum(sizes))
        ]
        shared = {"populations": specs, "dim": strategy.dim}
        result = self._run("evaluate_population", policy, shared, payloads, *options, noise=noise)
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
    def _send(self, worker: WorkerHandle, request: Request) -> None:
        """Send one request to an idle worker (without waiting); raise ``RuntimeError`` if it cannot be reached."""

    @abstractmethod
    def _receive_any(self, busy: list[WorkerHandle]) -> list[tuple[WorkerHandle, Answer]]:
        """
        Wait until at least one of the ``busy`` workers answers (in short steps, so that Ctrl-C gets through).

        :return: each worker that answered, with its answer (an error answer, with how it died, for a
            worker that died)
        """

    def _share_call(self, shared: dict[str, Any]) -> CallData:
        """:return: how the workers get the data every chunk of a call shares (default: inline, with each worker's first chunk)"""
        return InlineCallData(shared)

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

    def _chunks(self, n_candidates: int) -> list[tuple[int, int]]:
        """:return: contiguous (start, stop) chunks of the candidates (see :func:`dispatch_chunks`); finer where the
        workers may start (the first call) or be up (while they start) during the call: they start and take over
        between two chunks"""
        may_start = not self._workers and self.local_until_s is not None and math.isfinite(self.local_until_s)
        starting = may_start and (self._launcher is not None or self._call_id == 0)
        n_workers = self.n_workers * (HANDOVER_CHUNKS_PER_WORKER if starting else 1)
        return dispatch_chunks(n_candidates, n_workers, self._last_lengths)

    def _policy_message(self, policy: BasePolicy) -> dict[str, np.ndarray]:
        """Track which policy the workers should hold; :return: its buffers as numpy arrays"""
        if self._policy_ref is None or self._policy_ref() is not policy:
            self._policy_ref = weakref.ref(policy)
            self._policy_version += 1
        return {name: buffer.detach().cpu().numpy().copy() for name, buffer in policy.named_buffers()}

    def _call_messages(
        self,
        command: str,
        policy: BasePolicy,
        shared: dict[str, Any],
        payloads: list[dict[str, Any]],
        alive_bonus_offset: float,
        descriptor_fn: DescriptorFn | None,
        record_transitions: bool,
        noise: NoiseSource | None,
        local: bool = False,
    ) -> Callable[[WorkerHandle, int], Request]:
        """
        A new call: :return: a function giving the request of chunk ``i`` for a worker; the policy, the
        noise table and the call's shared data go only to workers that lack them.

        :param local: For the worker in this process: the shared data goes inline (no transport)
        """
        self._call_id += 1
        call_id = self._call_id
        buffers = self._policy_message(policy)
        call = {
            **shared,
            "buffers": buffers,
            "alive_bonus_offset": float(alive_bonus_offset),
            "descriptor_fn": None if descriptor_fn is None else cloudpickle.dumps(descriptor_fn),
            "record_transitions": bool(record_transitions),
            "reuse_envs": self.reuse.current(lambda: self._env_fn_bytes),
        }
        call_data: CallData | None = None
        policy_bytes: bytes | None = None

        def request(worker: WorkerHandle, i: int) -> Request:
            nonlocal call_data, policy_bytes
            message = {**payloads[i], "call_id": call_id}
            if worker.call_id != call_id:
                if call_data is None:
                    call_data = InlineCallData(call) if local else self._share_call(call)
                message["call"] = call_data
                worker.call_id = call_id
            if worker.policy_version != self._policy_version:
                if policy_bytes is None:
                    policy_bytes = cloudpickle.dumps(policy)
                message["policy"] = policy_bytes
                worker.policy_version = self._policy_version
            if noise is not None and not worker.has_noise:
                message["noise"] = noise
                worker.has_noise = True
            return (command, message)

        return request

    def _run(
        self,
        command: str,
        policy: BasePolicy,
        shared: dict[str, Any],
        payloads: list[dict[str, Any]],
        alive_bonus_offset: float,
        descriptor_fn: DescriptorFn | None = None,
        record_transitions: bool = False,
        noise: NoiseTable | None = None,
    ) -> RolloutResult:
        """
        Run the chunks (``payloads``) on the workers, each to the first free one (or all here, while the
        workers start), and merge their results in chunk order.

        :param shared: What every chunk of the call needs besides its own payload
        """
        options = (alive_bonus_offset, descriptor_fn, record_transitions)
        results: list[RolloutResult] = []
        if not self._workers_ready():
            # here until the workers are up, which may happen between two chunks: they take the rest
            results = self._run_locally(command, policy, shared, payloads, options, noise)
        if len(results) < len(payloads):
            results += self._run_on_workers(command, policy, shared, payloads[len(results) :], options, noise)
        result = merge_results(results)
        if len(result.lengths) > 1:  # a single candidate (e.g. the centre) says nothing about the spread
            self._last_lengths = result.lengths
        return result

    def _run_on_workers(
        self,
        command: str,
        policy: BasePolicy,
        shared: dict[str, Any],
        payloads: list[dict[str, Any]],
        options: tuple[float, DescriptorFn | None, bool],
        noise: NoiseTable | None,
    ) -> list[RolloutResult]:
        """
        Run the chunks on the workers (they must be up).

        :param options: ``(alive_bonus_offset, descriptor_fn, record_transitions)`` of the call
        :return: their results, in chunk order
        """
        try:
            source = None
            if noise is not None:
                if self._noise_source is None:
                    self._noise_source = self._share_noise(noise)
                source = self._noise_source
            request = self._call_messages(command, policy, shared, payloads, *options, source)
            results = self._dispatch(request, len(payloads))
        except BaseException:
            # Interrupted (Ctrl-C, a fault): answers may still come, so drop the workers
            self._stop_all()
            raise
        self.reuse.wait()  # a history check still running (rare: it is short) does not outlive the call
        return results

    def _dispatch(self, request: Callable[[WorkerHandle, int], Request], n_chunks: int) -> list[RolloutResult]:
        """
        Send chunk after chunk to whichever worker is free; fail fast if one fails.

        :param request: The request of chunk ``i`` for a worker
        :param n_chunks: Number of chunks
        :return: the results, in chunk order
        """
        results: list[RolloutResult | None] = [None] * n_chunks
        idle = list(self._workers)
        running: dict[int, tuple[WorkerHandle, int]] = {}  # worker rank -> (worker, the chunk it runs)
        next_chunk = 0
        while next_chunk < n_chunks or running:
            while idle and next_chunk < n_chunks:
                worker = idle.pop(0)
                self._send(worker, request(worker, next_chunk))
                running[worker.rank] = (worker, next_chunk)
                next_chunk += 1
            for worker, answer in self._receive_any([busy for busy, _ in running.values()]):
                results[running.pop(worker.rank)[1]] = check_answer(answer)
                idle.append(worker)
        return results  # type: ignore[return-value]

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
        shared: dict[str, Any],
        payloads: list[dict[str, Any]],
        options: tuple[float, DescriptorFn | None, bool],
        noise: NoiseTable | None,
    ) -> list[RolloutResult]:
        """
        Run the chunks one after another in this process, with the worker code (same results), until they
        are all done or the workers started in the background are up (checked between two chunks).

        :param options: ``(alive_bonus_offset, descriptor_fn, record_transitions)`` of the call
        :return: the results of the chunks run here, in chunk order (a prefix of ``payloads``)
        """
        start = time.perf_counter()
        if self._local is None:
            self._local = RolloutWorker(f"{type(self).__name__} (in this process)", self._env_fn_bytes)
        source = None if noise is None else InlineNoise(noise)
        request = self._call_messages(command, policy, shared, payloads, *options, source, local=True)
        results = []
        for i in range(len(payloads)):  # one worker: the policy, the noise and the call's data go once
            results.append(check_answer(self._local.answer(*request(self._local_handle, i))))
            # a slow environment's generation can be long: start the workers between two chunks
            self._local_seconds += time.perf_counter() - start
            start = time.perf_counter()
            self._maybe_start_launcher()
            started = self._launcher is not None and not self._launcher.is_alive()
            if i + 1 < len(payloads) and started and self._workers_ready():
                break  # the workers take the remaining chunks
        return results


def dispatch_chunks(
    n_candidates: int, n_workers: int, last_lengths: np.ndarray | None = None, min_size: int = 2
) -> list[tuple[int, int]]:
    """
    How a call's candidates are cut for dynamic dispatch. Where episodes all take as long (``last_lengths``,
    the steps of each candidate of the previous call, within 10% of each other, or no previous call), one
    contiguous slice per worker: each worker steps its whole slice as one batch (one forward pass per step
    for all of them). Otherwise guided self-scheduling (Polychronopoulos & Kuck 1987, OpenMP's ``guided``):
    each chunk is ``ceil(remaining / (2 * n_workers))`` candidates, at least ``min_size``, so large chunks
    go first and small ones end the call, and a worker that drew short episodes takes more chunks.

    The cut never changes a result (rollouts are per candidate, results are merged in candidate order).

    :param n_candidates: Number of candidates ``P`` (>= 1)
    :param n_workers: Number of workers (>= 1)
    :param last_lengths: (P',) environment steps of each candidate of the previous call, or None
    :param min_size: Smallest chunk (2: an antithetic pair)
    :return: (start, stop) of each chunk, in order, covering ``range(n_candidates)``
    """
    uniform = last_lengths is None or len(last_lengths) == 0 or np.max(last_lengths) <= 1.1 * np.min(last_lengths)
    if n_workers == 1 or uniform:
        chunks = np.array_split(np.arange(n_candidates), min(n_workers, n_candidates))
        return [(int(chunk[0]), int(chunk[-1]) + 1) for chunk in chunks]
    bounds, start = [], 0
    while start < n_candidates:
        size = max(min_size, -(-(n_candidates - start) // (2 * n_workers)))
        bounds.append((start, min(n_candidates, start + size)))
        start = bounds[-1][1]
    return bounds


def check_launched(launched: list[WorkerHandle] | BaseException | None, name: str) -> None:
    """Raise ``RuntimeError`` if a background start of the workers failed."""
    if isinstance(launched, BaseException):
        raise RuntimeError(f"{name}: the workers failed to start: {launched}") from launched  # noqa: TRY004
