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

    :param env_fn: Function returning a new environment
    """

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
        all_params = th.as_tensor(np.asarray(params, dtype=np.float32))

        episode_returns = np.zeros((n_candidates, n_episodes))
        episode_lengths = np.zeros((n_candidates, n_episodes), dtype=np.int64)
        episode = np.zeros(n_candidates, dtype=np.int64)
        current_return = np.zeros(n_candidates)
        current_length = np.zeros(n_candidates, dtype=np.int64)
        obs = np.stack([env.reset(seed=int(episode_seeds[i, 0]))[0] for i, env in enumerate(envs)])
        obs_rms = RunningMeanStd(epsilon=0.0, shape=obs.shape[1:])
        descriptors = DescriptorRecorder(descriptor_fn, n_candidates, n_episodes) if descriptor_fn else None
        recorder = TransitionRecorder() if record_transitions else None

        active = np.arange(n_candidates)
        active_params = all_params
        while len(active) > 0:
            active_obs = obs[active]
            obs_rms.update(active_obs)
            actions = runner(active_params, active_obs)
            if recorder is not None:
                recorder.start_step(active, active_obs, actions)
            finished = False
            for k, i in enumerate(active):
                next_obs, reward, terminated, truncated, _ = envs[i].step(actions[k])
                current_return[i] += float(reward) + alive_bonus_offset
                current_length[i] += 1
                if recorder is not None:
                    recorder.record(k, reward, next_obs, terminated, truncated)
                if terminated or truncated:
                    if descriptors is not None:
                        descriptors.record(i, episode[i], envs[i], next_obs)
                    episode_returns[i, episode[i]] = current_return[i]
                    episode_lengths[i, episode[i]] = current_length[i]
                    current_return[i], current_length[i] = 0.0, 0
                    episode[i] += 1
                    if episode[i] == n_episodes:
                        finished = True
                        continue
                    next_obs, _ = envs[i].reset(seed=int(episode_seeds[i, episode[i]]))
                obs[i] = next_obs
            if finished:
                active = active[episode[active] < n_episodes]
                active_params = all_params[active]

        return RolloutResult(
            returns=episode_returns.mean(axis=1),
            lengths=episode_lengths.sum(axis=1),
            episode_returns=episode_returns,
            episode_lengths=episode_lengths,
            obs_rms=obs_rms,
            episode_descriptors=None if descriptors is None else descriptors.values,
            transitions=None if recorder is None else recorder.result(),
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []
        self._batched = None


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
