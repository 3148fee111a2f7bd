"""Interface between an algorithm and whatever runs its population's rollouts."""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd

from sb3_bierl.strategies import NoiseTable, OpenAIES, Population

#: ``descriptor_fn(env, final_observation) -> (D,) array``: a behaviour descriptor, called at the end
#: of every episode on the environment that played it (before it is reset)
DescriptorFn = Callable[[gym.Env, np.ndarray], np.ndarray]


@dataclass
class Transitions:
    """
    Every environment step of a rollout, in the order they were taken (for a replay buffer).

    :param candidates: (N,) index of the candidate that took the step, in the evaluated batch
    :param observations: (N, *obs_shape) observation before the step
    :param actions: (N, *action_shape) action sent to ``env.step``
    :param rewards: (N,) reward (without ``alive_bonus_offset``)
    :param next_observations: (N, *obs_shape) observation after the step (the final one at episode ends)
    :param terminated: (N,) whether the episode terminated at this step
    :param truncated: (N,) whether the episode was truncated at this step
    """

    candidates: np.ndarray
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray

    def __len__(self) -> int:
        return len(self.candidates)

    def select(self, mask: np.ndarray, candidate_offset: int = 0) -> "Transitions":
        """:return: the transitions in ``mask``, with ``candidate_offset`` subtracted from their candidate index"""
        return Transitions(
            self.candidates[mask] - candidate_offset,
            self.observations[mask],
            self.actions[mask],
            self.rewards[mask],
            self.next_observations[mask],
            self.terminated[mask],
            self.truncated[mask],
        )

    @staticmethod
    def concatenate(parts: list["Transitions"], candidate_offsets: list[int]) -> "Transitions":
        """Join the transitions of consecutive batches; ``candidate_offsets`` is each batch's first candidate."""
        return Transitions(
            np.concatenate([p.candidates + offset for p, offset in zip(parts, candidate_offsets, strict=True)]),
            *(np.concatenate([getattr(p, name) for p in parts]) for name in TRANSITION_ARRAYS),
        )


TRANSITION_ARRAYS = (
    "observations",
    "actions",
    "rewards",
    "next_observations",
    "terminated",
    "truncated",
)


@dataclass
class RolloutResult:
    """
    What a population evaluation returns.

    :param returns: (P,) mean episode return of each candidate
    :param lengths: (P,) total steps of each candidate over its episodes
    :param episode_returns: (P, n_episodes) return of every episode
    :param episode_lengths: (P, n_episodes) length of every episode
    :param obs_rms: statistics of the observations seen (a delta, to merge into the main ones)
    :param episode_descriptors: (P, n_episodes, D) behaviour descriptor of every episode, if a
        ``descriptor_fn`` was given
    :param transitions: every step taken, if ``record_transitions`` was set
    """

    returns: np.ndarray
    lengths: np.ndarray
    episode_returns: np.ndarray
    episode_lengths: np.ndarray
    obs_rms: RunningMeanStd
    episode_descriptors: np.ndarray | None = field(default=None)
    transitions: Transitions | None = field(default=None)

    @property
    def n_steps(self) -> int:
        return int(self.lengths.sum())

    @property
    def descriptors(self) -> np.ndarray | None:
        """(P, D) behaviour descriptor of each candidate: the mean over its episodes"""
        return None if self.episode_descriptors is None else self.episode_descriptors.mean(axis=1)


class PopulationEvaluator(ABC):
    """
    Runs rollouts for many parameter vectors of one policy template.

    Backends implement :meth:`evaluate`. :meth:`evaluate_population` is the seam for
    backends that ship noise indices instead of vectors (worker processes, Ray): they
    override it; the default builds the vectors here.
    """

    @abstractmethod
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
        :param descriptor_fn: Behaviour descriptor of each episode (see :data:`DescriptorFn`), or None
        :param record_transitions: Return every step taken in ``RolloutResult.transitions``
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
        descriptor_fn: DescriptorFn | None = None,
        record_transitions: bool = False,
    ) -> list[RolloutResult]:
        """
        Evaluate several antithetic populations (one per centre ``theta[k]``) in one batch.

        :param episode_seeds: (2n, n_episodes) seeds shared by every population (common random numbers)
        :param descriptor_fn: Behaviour descriptor of each episode, or None
        :param record_transitions: Return every step taken
        :return: one result per population
        """
        params = np.concatenate(
            [strategy.candidates(noise, pop, th_k) for pop, th_k in zip(populations, theta, strict=True)]
        )
        seeds = np.concatenate([episode_seeds] * len(populations))
        result = self.evaluate(policy, params, seeds, alive_bonus_offset, descriptor_fn, record_transitions)
        return split_result(result, [pop.size for pop in populations])

    def close(self) -> None:
        """Release environments and workers."""


def split_result(result: RolloutResult, sizes: list[int]) -> list[RolloutResult]:
    """Split a batched result into consecutive groups (the observation statistics go to the first)."""
    out, start = [], 0
    for k, size in enumerate(sizes):
        sl = slice(start, start + size)
        obs_rms = result.obs_rms if k == 0 else RunningMeanStd(shape=result.obs_rms.mean.shape, epsilon=0.0)
        descriptors = None if result.episode_descriptors is None else result.episode_descriptors[sl]
        transitions = None
        if result.transitions is not None:
            candidates = result.transitions.candidates
            transitions = result.transitions.select((candidates >= start) & (candidates < start + size), start)
        out.append(
            RolloutResult(
                result.returns[sl],
                result.lengths[sl],
                result.episode_returns[sl],
                result.episode_lengths[sl],
                obs_rms,
                descriptors,
                transitions,
            )
        )
        start += size
    return out


def merge_antithetic(results: list[RolloutResult]) -> RolloutResult:
    """
    The results of several antithetic populations as one: every "+" half, then every "-" half (the order
    of :func:`~sb3_bierl.strategies.merge_populations`). Their observation statistics and transitions are not
    carried over (they were recorded when each result arrived).

    :param results: Results of populations of an even size each ("+" half first)
    :return: The merged result
    """
    def halves(name: str) -> np.ndarray | None:
        arrays = [getattr(r, name) for r in results]
        if any(a is None for a in arrays):
            return None
        plus = [a[: len(a) // 2] for a in arrays]
        minus = [a[len(a) // 2 :] for a in arrays]
        return np.concatenate(plus + minus)

    shape = results[0].obs_rms.mean.shape
    return RolloutResult(
        halves("returns"),
        halves("lengths"),
        halves("episode_returns"),
        halves("episode_lengths"),
        RunningMeanStd(shape=shape, epsilon=0.0),
        halves("episode_descriptors"),
        None,
    )
