"""Worker side of the multi-worker backends, independent of the transport: a worker's state and
requests, and the helpers both sides share."""

import sys
import traceback
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Protocol

import cloudpickle
import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy

from sb3_bierl.evaluation.base import DescriptorFn, RolloutResult, Transitions
from sb3_bierl.evaluation.in_process import CandidateObsStats, InProcessEvaluator
from sb3_bierl.strategies import NoiseTable, Population
from sb3_bierl.strategies.openai_es import antithetic_rows

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
    if all(isinstance(r.obs_rms, CandidateObsStats) for r in results):
        obs_rms = CandidateObsStats.concatenate([r.obs_rms for r in results])  # independent of the split
    else:
        obs_rms = results[0].obs_rms
        for result in results[1:]:
            obs_rms.combine(result.obs_rms)
    descriptors = None
    if all(r.episode_descriptors is not None for r in results):
        if len({r.episode_descriptors.shape[-1] for r in results}) > 1:
            raise ValueError("The behaviour descriptor function returned different sizes in different workers")
        descriptors = np.concatenate([r.episode_descriptors for r in results])
    transitions = None
    if all(r.transitions is not None for r in results):
        offsets = np.cumsum([0] + [len(r.returns) for r in results[:-1]]).tolist()
        transitions = Transitions.concatenate([r.transitions for r in results], offsets)
    return RolloutResult(
        returns=np.concatenate([r.returns for r in results]),
        lengths=np.concatenate([r.lengths for r in results]),
        episode_returns=np.concatenate([r.episode_returns for r in results]),
        episode_lengths=np.concatenate([r.episode_lengths for r in results]),
        obs_rms=obs_rms,
        episode_descriptors=descriptors,
        transitions=transitions,
    )


def population_rows(
    noise: NoiseTable,
    populations: list[PopulationSpec],
    start: int,
    stop: int,
) -> np.ndarray:
    """
    Rows ``start:stop`` of the concatenated candidates of several populations, each built by
    :func:`~sb3_bierl.strategies.openai_es.antithetic_rows` (as :meth:`OpenAIES.candidates`).

    :param noise: The noise table
    :param populations: (centre, noise indices, sigma) of each population
    :param start: First global candidate index
    :param stop: One past the last global candidate index
    """
    rows, offset = [], 0
    for theta, indices, sigma in populations:
        size = 2 * len(indices)
        lo, hi = max(start, offset), min(stop, offset + size)
        if lo < hi:
            local = np.arange(lo - offset, hi - offset)
            rows.append(antithetic_rows(noise, np.asarray(theta), Population(np.asarray(indices), sigma), local))
        offset += size
    return np.concatenate(rows)


# ---------------------------------------------------------------------- the noise table, shared
class NoiseSource(Protocol):
    """How a worker gets the noise table: sent once with its first ``evaluate_population`` request."""

    def open(self) -> NoiseTable:
        """:return: the noise table (called once per worker)"""


def wrap_noise(array: np.ndarray, seed: int) -> NoiseTable:
    """:return: a :class:`NoiseTable` around an existing block of noise (not regenerated from ``seed``)"""
    table = NoiseTable.__new__(NoiseTable)
    table.size, table.seed, table.noise = len(array), int(seed), array
    return table


@dataclass
class InlineNoise:
    """The table itself: for a worker in the same process."""

    table: NoiseTable

    def open(self) -> NoiseTable:
        return self.table


@dataclass
class SharedMemoryNoise:
    """
    The table in a ``multiprocessing.shared_memory`` block written once by the parent: worker
    processes on the same machine map it instead of generating and holding their own copy.

    :param name: Name of the shared memory block
    :param size: Number of float32 values
    :param seed: Seed the table was generated from
    """

    name: str
    size: int
    seed: int

    @classmethod
    def create(cls, table: NoiseTable) -> tuple["SharedMemoryNoise", shared_memory.SharedMemory]:
        """:return: the source, and the block (the caller unlinks it when the workers are gone)"""
        block = shared_memory.SharedMemory(create=True, size=table.noise.nbytes)
        np.ndarray(table.noise.shape, table.noise.dtype, buffer=block.buf)[:] = table.noise
        return cls(block.name, table.size, table.seed), block

    def open(self) -> NoiseTable:
        # The mapping lives as long as the array that views it (the worker never closes it)
        block = shared_memory.SharedMemory(name=self.name)
        array = np.ndarray((self.size,), np.float32, buffer=block.buf)
        array.flags.writeable = False
        table = wrap_noise(array, self.seed)
        table._block = block  # keep the mapping open
        return table


# ---------------------------------------------------------------------- a call's shared data
class CallData(Protocol):
    """How a worker gets what every chunk of one call shares (centres, buffers, options): with its first chunk of the call."""

    def open(self) -> dict[str, Any]:
        """:return: the shared message entries (called once per worker and call)"""


@dataclass
class InlineCallData:
    """The entries themselves, sent with the request (processes, this process)."""

    entries: dict[str, Any]

    def open(self) -> dict[str, Any]:
        return self.entries


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

    A request (one chunk of a call's candidates) holds ``call_id``, ``episode_seeds`` and either
    ``params`` (command ``"evaluate"``) or ``start`` and ``stop`` (command ``"evaluate_population"``);
    with a worker's first chunk of a call, ``call`` (a :class:`CallData`: ``buffers``, the policy's
    buffers, ``alive_bonus_offset``, ``descriptor_fn``, ``record_transitions``, ``reuse_envs``, whether
    an environment instance may play several episodes, decided by the parent, see
    :class:`~sb3_bierl.evaluation.in_process.EnvReuse`; and for populations ``populations`` and ``dim``);
    optionally ``policy`` (a new cloudpickled policy) and ``noise`` (a :class:`NoiseSource`, with the first
    population request).

    :param name: Name used in error messages (e.g. ``"ProcessEvaluator worker 0"``)
    :param env_fn_bytes: The cloudpickled environment function (unpickled on first use, so
        that import errors reach the parent as an error answer)
    """

    def __init__(self, name: str, env_fn_bytes: bytes):
        self.name = name
        self.env_fn_bytes = env_fn_bytes
        self.evaluator: InProcessEvaluator | None = None
        self.noise: NoiseTable | None = None
        self.policy: BasePolicy | None = None
        self.reuse_envs = False  # set by each call
        self.call: tuple[int, dict[str, Any]] = (0, {})  # id and shared entries of the current call

    def answer(self, command: str, message: dict[str, Any]) -> Answer:
        """:return: ``("ok", result)``, or ``("error", traceback text)`` if handling raised"""
        try:
            return ("ok", self.handle(command, message))
        except Exception:
            return (
                "error",
                f"{self.name} raised an exception:\n{traceback.format_exc()}",
            )

    def handle(self, command: str, message: dict[str, Any]) -> RolloutResult:
        """Run one request (see the class docstring); exceptions propagate."""
        if "policy" in message:
            self.set_policy(message["policy"])
        if "noise" in message:
            self.noise = message["noise"].open()
        if "call" in message:
            self.call = (message["call_id"], message["call"].open())
        call_id, shared = self.call
        if call_id != message["call_id"]:
            raise RuntimeError(f"{self.name} holds the data of call {call_id}, not of call {message['call_id']}")
        message = {**shared, **message}
        descriptor_fn = message.get("descriptor_fn")
        self.reuse_envs = bool(message.get("reuse_envs", False))
        common = (
            message["episode_seeds"],
            message["buffers"],
            message["alive_bonus_offset"],
            None if descriptor_fn is None else cloudpickle.loads(descriptor_fn),
            message.get("record_transitions", False),
        )
        if command == "evaluate":
            return self.evaluate(message["params"], *common)
        if command == "evaluate_population":
            rows = (
                message["populations"],
                message["dim"],
                message["start"],
                message["stop"],
            )
            return self.evaluate_population(*rows, *common)
        raise ValueError(f"Unknown command {command!r}")

    def set_policy(self, policy_bytes: bytes) -> None:
        """:param policy_bytes: The cloudpickled policy template"""
        self.policy = cloudpickle.loads(policy_bytes)

    def evaluate(
        self,
        params: np.ndarray,
        episode_seeds: np.ndarray,
        buffers: dict[str, np.ndarray],
        alive_bonus_offset: float,
        descriptor_fn: DescriptorFn | None = None,
        record_transitions: bool = False,
    ) -> RolloutResult:
        """
        :param params: (p, dim) parameter vectors of this worker's slice
        :param episode_seeds: (p, n_episodes) their episode seeds
        :param buffers: The policy's buffers (observation statistics)
        :param alive_bonus_offset: Added to the reward at every step
        :param descriptor_fn: Behaviour descriptor of each episode, or None
        :param record_transitions: Return every step taken
        """
        policy = self._policy_with(buffers)
        if self.evaluator is None:
            self.evaluator = InProcessEvaluator(cloudpickle.loads(self.env_fn_bytes), reuse_envs=False)
        self.evaluator.reuse.verdict = self.reuse_envs  # the parent's decision (never a check here)
        options = (alive_bonus_offset, descriptor_fn, record_transitions)
        return self.evaluator.evaluate(policy, params, episode_seeds, *options)

    def evaluate_population(
        self,
        populations: list[PopulationSpec],
        dim: int,
        start: int,
        stop: int,
        episode_seeds: np.ndarray,
        buffers: dict[str, np.ndarray],
        alive_bonus_offset: float,
        descriptor_fn: DescriptorFn | None = None,
        record_transitions: bool = False,
    ) -> RolloutResult:
        """
        Evaluate candidates ``start:stop`` of the concatenated populations, rebuilt from the noise table.

        :param populations: (centre, noise indices, sigma) of each population
        :param dim: Dimension of the parameter vector (every centre must have it)
        :param start: First global candidate index
        :param stop: One past the last global candidate index
        :param episode_seeds: (stop - start, n_episodes) episode seeds of these candidates
        :param buffers: The policy's buffers (observation statistics)
        :param alive_bonus_offset: Added to the reward at every step
        :param descriptor_fn: Behaviour descriptor of each episode, or None
        :param record_transitions: Return every step taken
        """
        if self.noise is None:
            raise RuntimeError(f"{self.name} received no noise table")
        if any(np.size(theta) != dim for theta, _, _ in populations):
            raise ValueError(f"{self.name}: a centre's size differs from the policy's {dim} parameters")
        params = population_rows(self.noise, populations, start, stop)
        return self.evaluate(
            params,
            episode_seeds,
            buffers,
            alive_bonus_offset,
            descriptor_fn,
            record_transitions,
        )

    def _policy_with(self, buffers: dict[str, np.ndarray]) -> BasePolicy:
        if self.policy is None:
            raise RuntimeError("The worker received no policy")
        with th.no_grad():
            for name, buffer in self.policy.named_buffers():
                buffer.copy_(th.tensor(buffers[name]))  # a copy: from the object store, arrays are read-only
        return self.policy

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()
            self.evaluator = None
