"""Default backend: every candidate of the population stepped together in this process."""

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd

from sb3_bierl.evaluation.base import PopulationEvaluator, RolloutResult
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
        self, policy: BasePolicy, params: np.ndarray, episode_seeds: np.ndarray, alive_bonus_offset: float = 0.0
    ) -> RolloutResult:
        # The per-step forward passes are small: extra torch threads only contend with the envs
        threads = th.get_num_threads()
        th.set_num_threads(1)
        try:
            return self._evaluate(policy, params, episode_seeds, alive_bonus_offset)
        finally:
            th.set_num_threads(threads)

    def _evaluate(
        self, policy: BasePolicy, params: np.ndarray, episode_seeds: np.ndarray, alive_bonus_offset: float
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

        active = np.arange(n_candidates)
        active_params = all_params
        while len(active) > 0:
            active_obs = obs[active]
            obs_rms.update(active_obs)
            actions = runner(active_params, active_obs)
            finished = False
            for k, i in enumerate(active):
                next_obs, reward, terminated, truncated, _ = envs[i].step(actions[k])
                current_return[i] += float(reward) + alive_bonus_offset
                current_length[i] += 1
                if terminated or truncated:
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
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []
        self._batched = None
