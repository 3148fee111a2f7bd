"""Interface between an algorithm and whatever runs its population's rollouts."""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd

from sb3_bierl.strategies import NoiseTable, OpenAIES, Population


@dataclass
class RolloutResult:
    """
    What a population evaluation returns.

    :param returns: (P,) mean episode return of each candidate
    :param lengths: (P,) total steps of each candidate over its episodes
    :param episode_returns: (P, n_episodes) return of every episode
    :param episode_lengths: (P, n_episodes) length of every episode
    :param obs_rms: statistics of the observations seen (a delta, to merge into the main ones)
    """

    returns: np.ndarray
    lengths: np.ndarray
    episode_returns: np.ndarray
    episode_lengths: np.ndarray
    obs_rms: RunningMeanStd

    @property
    def n_steps(self) -> int:
        return int(self.lengths.sum())


class PopulationEvaluator(ABC):
    """
    Runs rollouts for many parameter vectors of one policy template.

    Backends implement :meth:`evaluate`. :meth:`evaluate_population` is the seam for
    backends that ship noise indices instead of vectors (worker processes, Ray): they
    override it; the default builds the vectors here.
    """

    @abstractmethod
    def evaluate(
        self, policy: BasePolicy, params: np.ndarray, episode_seeds: np.ndarray, alive_bonus_offset: float = 0.0
    ) -> RolloutResult:
        """
        :param policy: Template policy (its observation statistics are used as they are)
        :param params: (P, dim) candidate parameter vectors
        :param episode_seeds: (P, n_episodes) reset seed of each episode of each candidate
        :param alive_bonus_offset: Added to the reward at every step (ARS convention)
        """

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
        Evaluate several antithetic populations (one per centre ``theta[k]``) in one batch.

        :param episode_seeds: (2n, n_episodes) seeds shared by every population (common random numbers)
        :return: one result per population
        """
        params = np.concatenate(
            [strategy.candidates(noise, pop, th_k) for pop, th_k in zip(populations, theta, strict=True)]
        )
        seeds = np.concatenate([episode_seeds] * len(populations))
        result = self.evaluate(policy, params, seeds, alive_bonus_offset)
        return split_result(result, [pop.size for pop in populations])

    def close(self) -> None:
        """Release environments and workers."""


def split_result(result: RolloutResult, sizes: list[int]) -> list[RolloutResult]:
    """Split a batched result into consecutive groups (the observation statistics go to the first)."""
    out, start = [], 0
    for k, size in enumerate(sizes):
        sl = slice(start, start + size)
        obs_rms = result.obs_rms if k == 0 else RunningMeanStd(shape=result.obs_rms.mean.shape, epsilon=0.0)
        out.append(
            RolloutResult(
                result.returns[sl], result.lengths[sl], result.episode_returns[sl], result.episode_lengths[sl], obs_rms
            )
        )
        start += size
    return out
