"""Default backend: every candidate of the population stepped together in this process."""

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd

from sb3_bierl.evaluation.base import (
    DescriptorFn,
    PopulationEvaluator,
    RolloutResult,
    Transitions,
)
from sb3_bierl.evaluation.batched_policy import BatchedPolicy


class InProcessEvaluator(PopulationEvaluator):
    """
    Holds one environment per candidate. At every step, the observations of all running
    candidates go through one batched forward pass; then each environment steps.

    A candidate plays its episodes one after another; the rollout ends when all are done.

    A non-finite observation stops the rollout with an error that names the candidate, the step and the
    observation index (as SB3's ``VecCheckNan``): it would poison the observation statistics for good.

    :param env_fn: Function returning a new environment
    """

    #: Called during a rollout with the steps it has taken so far (a progress bar's feed), or None
    progress: Callable[[int], None] | None = None

    def __init__(self, env_fn: Callable[[], gym.Env]):
        self.env_fn = env_fn
        self.envs: list[gym.Env] = []
        self._batched: BatchedPolicy | None = None

    def _ensure_envs(self, n: int) -> None:
        while len(self.envs) < n:
            self.envs.append(self.env_fn())

    def _policy_runner(self, policy: BasePolicy) -> BatchedPolicy:
        if self._batched is None or self._batched.policy is not policy:
            self._batched = BatchedPolicy(policy)
        return self._batched

    def evaluate(
        self,
        policy: BasePolicy,
        params: np.ndarray,
        episode_seeds: np.ndarray,
        alive_bonus_offset: float = 0.0,
        descriptor_fn: DescriptorFn | None = None,
        record_transitions: bool = False,
    ) -> RolloutResult:
        # The per-step forward passes are small: extra torch threads only contend with the envs
        threads = th.get_num_threads()
        th.set_num_threads(1)
        try:
            return self._evaluate(
                policy,
                params,
                episode_seeds,
                alive_bonus_offset,
                descriptor_fn,
                record_transitions,
            )
        finally:
            th.set_num_threads(threads)

    def _evaluate(
        self,
        policy: BasePolicy,
        params: np.ndarray,
        episode_seeds: np.ndarray,
        alive_bonus_offset: float,
        descriptor_fn: DescriptorFn | None,
        record_transitions: bool,
    ) -> RolloutResult:
        n_candidates, n_episodes = episode_seeds.shape
        if len(params) != n_candidates:
            raise ValueError(f"{len(params)} parameter vectors but {n_candidates} rows of episode seeds")
        self._ensure_envs(n_candidates)
        runner = self._policy_runner(policy)
        envs = self.envs[:n_candidates]
        steps = [env.step for env in envs]
        all_params = th.as_tensor(np.asarray(params, dtype=np.float32))
        seeds = episode_seeds.tolist()

        episode_returns = np.zeros((n_candidates, n_episodes))
        episode_lengths = np.zeros((n_candidates, n_episodes), dtype=np.int64)
        # Python scalars: cheaper than numpy element access in the per-step loop
        episode = [0] * n_candidates
        current_return = [0.0] * n_candidates
        current_length = [0] * n_candidates
        obs = np.stack([env.reset(seed=seeds[i][0])[0] for i, env in enumerate(envs)])
        moments = ObsMoments(runner.features(obs))
        descriptors = DescriptorRecorder(descriptor_fn, n_candidates, n_episodes) if descriptor_fn else None
        recorder = TransitionRecorder() if record_transitions else None

        active = list(range(n_candidates))
        active_index: np.ndarray | slice = slice(None)  # all candidates: slices avoid fancy-indexing copies
        active_params = all_params
        taken, progress = 0, self.progress
        while active:
            active_obs = obs[active_index]
            features = runner.features(active_obs)  # what the policy's statistics describe
            if not np.isfinite(features).all():
                raise_non_finite(features, active, current_length, episode, seeds)
            moments.add(active_index, features)
            actions = runner(active_params, active_obs, features)
            if progress is not None:
                progress(taken)
                taken += len(active)
            if recorder is not None:
                recorder.start_step(np.asarray(active), active_obs, actions)
            finished = False
            for k, i in enumerate(active):
                next_obs, reward, terminated, truncated, _ = steps[i](actions[k])
                current_return[i] += float(reward) + alive_bonus_offset
                current_length[i] += 1
                if recorder is not None:
                    recorder.record(k, reward, next_obs, terminated, truncated)
                if terminated or truncated:
                    e = episode[i]
                    if descriptors is not None:
                        descriptors.record(i, e, envs[i], next_obs)
                    episode_returns[i, e] = current_return[i]
                    episode_lengths[i, e] = current_length[i]
                    current_return[i], current_length[i] = 0.0, 0
                    episode[i] = e = e + 1
                    if e == n_episodes:
                        finished = True
                        continue
                    next_obs, _ = envs[i].reset(seed=seeds[i][e])
                obs[i] = next_obs
            if finished:
                active = [i for i in active if episode[i] < n_episodes]
                active_index = np.array(active, dtype=np.int64)
                active_params = all_params[active_index]

        lengths = episode_lengths.sum(axis=1)
        return RolloutResult(
            returns=episode_returns.mean(axis=1),
            lengths=lengths,
            episode_returns=episode_returns,
            episode_lengths=episode_lengths,
            obs_rms=CandidateObsStats.from_moments(moments, lengths),
            episode_descriptors=None if descriptors is None else descriptors.values,
            transitions=None if recorder is None else recorder.result(),
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []
        self._batched = None


def raise_non_finite(
    features: np.ndarray, active: list[int], lengths: list[int], episodes: list[int], seeds: list[list[int]]
) -> None:
    """
    :param features: (A, D) the preprocessed observations of the running candidates
    :param active: The running candidates (batch indices)
    :param lengths: Steps taken in the current episode of each candidate
    :param episodes: Current episode of each candidate
    :param seeds: Episode seeds of each candidate
    :raises ValueError: naming the first non-finite value: candidate, episode and its seed, step, index
    """
    k, index = np.argwhere(~np.isfinite(features))[0]
    i = active[k]
    raise ValueError(
        f"Non-finite observation: candidate {i}, episode {episodes[i]} (reset seed {seeds[i][episodes[i]]}), step "
        f"{lengths[i]}, observation index {index} is {features[k, index]}. Training stops here: the running observation "
        "statistics would be poisoned for good. Fix the environment (SB3's VecCheckNan helps find the cause), or "
        "replace non-finite values in a gymnasium ObservationWrapper."
    )


class ObsMoments:
    """
    Per-candidate sums of the observations seen, shifted by each candidate's first observation
    (the shifted-data algorithm: accurate even when the mean is far from zero).

    :param first_obs: (P, *obs_shape) first observation of each candidate
    """

    def __init__(self, first_obs: np.ndarray):
        self.shift = first_obs.reshape(len(first_obs), -1).astype(np.float64)
        self.sum = np.zeros_like(self.shift)
        self.sum_sq = np.zeros_like(self.shift)

    def add(self, index: np.ndarray | slice, obs: np.ndarray) -> None:
        """:param index: The candidates that saw ``obs`` (distinct), as an index array or a slice"""
        delta = obs.reshape(len(obs), -1) - self.shift[index]
        self.sum[index] += delta
        self.sum_sq[index] += delta * delta


class CandidateObsStats(RunningMeanStd):
    """
    Observation statistics of a rollout (a ``RunningMeanStd``), which also keep those of each
    candidate. Merging is always done candidate by candidate, in candidate order: the result
    does not depend on how the population was split among workers.

    :param counts: (P,) observations seen by each candidate
    :param means: (P, D) their mean
    :param m2: (P, D) their sum of squared deviations from the mean
    """

    def __init__(self, counts: np.ndarray, means: np.ndarray, m2: np.ndarray):
        super().__init__(epsilon=0.0, shape=means.shape[1:])
        self.counts, self.means, self.m2 = counts, means, m2
        for count, mean, m2_i in zip(counts, means, m2, strict=True):
            if count > 0:
                self.update_from_moments(mean, m2_i / count, int(count))

    @classmethod
    def from_moments(cls, moments: ObsMoments, counts: np.ndarray) -> "CandidateObsStats":
        """:param counts: (P,) number of observations added for each candidate"""
        n = np.maximum(counts, 1)[:, None].astype(np.float64)
        means = moments.shift + moments.sum / n
        m2 = np.maximum(moments.sum_sq - moments.sum * moments.sum / n, 0.0)
        return cls(np.asarray(counts), means, m2)

    @classmethod
    def concatenate(cls, parts: list["CandidateObsStats"]) -> "CandidateObsStats":
        """Statistics of consecutive batches of candidates, merged in candidate order."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("counts", "means", "m2")))


class DescriptorRecorder:
    """
    Calls the behaviour-descriptor function at every episode end and checks what it returns.

    :param descriptor_fn: ``descriptor_fn(env, final_observation) -> (D,)``
    :param n_candidates: Number of candidates
    :param n_episodes: Episodes per candidate
    """

    def __init__(self, descriptor_fn: DescriptorFn, n_candidates: int, n_episodes: int):
        self.descriptor_fn = descriptor_fn
        self.shape = (n_candidates, n_episodes)
        self.values: np.ndarray | None = None

    def record(self, candidate: int, episode: int, env: gym.Env, final_obs: np.ndarray) -> None:
        value = np.asarray(self.descriptor_fn(env, final_obs), dtype=np.float64)
        if value.ndim != 1 or value.size == 0:
            raise ValueError(
                f"The behaviour descriptor function must return a non-empty 1-D array, got shape {value.shape}: "
                "return e.g. np.array([x, y]) (flatten it with np.ravel)"
            )
        if self.values is None:
            self.values = np.zeros((*self.shape, value.size))
        if value.size != self.values.shape[-1]:
            raise ValueError(
                f"The behaviour descriptor function returned {value.size} values, but {self.values.shape[-1]} "
                "before: it must always return the same number"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"The behaviour descriptor function returned non-finite values: {value}")
        self.values[candidate, episode] = value


class TransitionRecorder:
    """Collects every step of a rollout, step by step, for :class:`Transitions`."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def start_step(self, active: np.ndarray, observations: np.ndarray, actions: np.ndarray) -> None:
        n = len(active)
        self.rewards = np.zeros(n)
        self.next_observations = np.array(observations, copy=True)
        self.terminated = np.zeros(n, dtype=bool)
        self.truncated = np.zeros(n, dtype=bool)
        self.parts.append(
            (
                active.copy(),
                observations.copy(),
                np.array(actions, copy=True),
                self.rewards,
                self.next_observations,
                self.terminated,
                self.truncated,
            )
        )

    def record(
        self,
        k: int,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> None:
        self.rewards[k] = reward
        self.next_observations[k] = next_obs
        self.terminated[k] = terminated
        self.truncated[k] = truncated

    def result(self) -> Transitions:
        return Transitions(*(np.concatenate(arrays) for arrays in zip(*self.parts, strict=True)))
