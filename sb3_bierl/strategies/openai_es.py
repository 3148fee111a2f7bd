"""OpenAI-ES (Salimans et al. 2017) on a flat parameter vector, ask/tell style."""

import copy
from dataclasses import dataclass

import numpy as np

from sb3_bierl.strategies.noise import NoiseTable
from sb3_bierl.strategies.optimizers import Adam
from sb3_bierl.strategies.ranks import centered_ranks


@dataclass
class Population:
    """One generation's perturbations: ``theta + sigma * eps_i`` then ``theta - sigma * eps_i``."""

    noise_indices: np.ndarray
    sigma: float

    @property
    def n_pairs(self) -> int:
        return len(self.noise_indices)

    @property
    def size(self) -> int:
        return 2 * self.n_pairs


class OpenAIES:
    """
    Antithetic OpenAI-ES with centred ranks, weight decay and Adam.

    Used for the policy (inner level) and for the meta network (meta level) alike.
    It holds the centre ``theta`` and the optimiser state; the noise table is shared and
    passed to each call, so this object pickles small.

    :param theta: Initial parameter vector
    :param weight_decay: L2 coefficient subtracted from the gradient estimate
    """

    def __init__(self, theta: np.ndarray, weight_decay: float = 0.0):
        self.theta = np.asarray(theta, dtype=np.float64).copy()
        self.weight_decay = weight_decay
        self.optimizer = Adam(self.theta.size)

    @property
    def dim(self) -> int:
        return self.theta.size

    def ask(self, noise: NoiseTable, rng: np.random.Generator, n_pairs: int, sigma: float) -> Population:
        """Draw ``n_pairs`` antithetic perturbations."""
        return Population(noise.sample_indices(rng, n_pairs, self.dim), float(sigma))

    def candidates(self, noise: NoiseTable, population: Population, theta: np.ndarray | None = None) -> np.ndarray:
        """:return: the 2n candidate vectors (float32), "+" half first"""
        theta = self.theta if theta is None else theta
        eps = noise.get_batch(population.noise_indices, self.dim) * population.sigma
        return np.concatenate([theta + eps, theta - eps]).astype(np.float32)

    def gradient(
        self, noise: NoiseTable, population: Population, returns: np.ndarray, shaped: bool = False
    ) -> np.ndarray:
        """
        ``g = 1 / (2 n sigma) * sum_i (u_i+ - u_i-) eps_i - weight_decay * theta``,
        where ``u`` are the centred ranks of all 2n returns.

        :param returns: Returns of the candidates in the order of :meth:`candidates`
        :param shaped: ``returns`` are already shaped utilities (e.g. NSR-ES's mix of reward and
            novelty ranks): use them as ``u`` as they are, without ranking them again
        """
        returns = np.asarray(returns, dtype=np.float64)
        if returns.shape != (population.size,):
            raise ValueError(f"Expected {population.size} returns, got shape {returns.shape}")
        if not np.all(np.isfinite(returns)):
            raise ValueError("Non-finite returns must be handled before the ES update")
        ranks = returns if shaped else centered_ranks(returns)
        weights = ranks[: population.n_pairs] - ranks[population.n_pairs :]
        eps = noise.get_batch(population.noise_indices, self.dim).astype(np.float64)
        grad = weights @ eps / (population.size * population.sigma)
        return grad - self.weight_decay * self.theta

    def tell(
        self,
        noise: NoiseTable,
        population: Population,
        returns: np.ndarray,
        learning_rate: float,
        shaped: bool = False,
    ) -> np.ndarray:
        """Take one Adam ascent step on the ES gradient (``shaped``: see :meth:`gradient`); :return: the gradient estimate"""
        grad = self.gradient(noise, population, returns, shaped)
        self.theta = self.theta + self.optimizer.step(grad, learning_rate)
        return grad

    def copy(self) -> "OpenAIES":
        return copy.deepcopy(self)
