"""OpenAI-ES (Salimans et al. 2017) on a flat parameter vector, ask/tell style."""

import copy
from dataclasses import dataclass

import numpy as np

from sb3_bierl.strategies.noise import NoiseTable
from sb3_bierl.strategies.optimizers import Adam
from sb3_bierl.strategies.ranks import centered_ranks


@dataclass
class Population:
    """
    One generation's perturbations: ``theta + sigma_i * eps_i`` then ``theta - sigma_i * eps_i``.

    :param noise_indices: (n_pairs,) start of each ``eps_i`` in the noise table
    :param sigma: The noise std, one for all pairs (a float) or one per pair ((n_pairs,) array: a population
        whose pairs were drawn at several meta candidates' sigmas, see :func:`merge_populations`)
    """

    noise_indices: np.ndarray
    sigma: float | np.ndarray

    @property
    def n_pairs(self) -> int:
        return len(self.noise_indices)

    @property
    def size(self) -> int:
        return 2 * self.n_pairs


@dataclass
class DirectedPairs:
    """
    Antithetic pairs along given directions instead of the noise table's, rolled out at a population's centre and
    sigma: ``theta + sigma * directions[i]`` then ``theta - sigma * directions[i]``. In the ES step they count as the
    population's pairs do (ranked with them, one term each in the gradient estimate): a rank-based version of Meier
    et al. 2019 ("Improving Gradient Estimation in Evolutionary Strategies With Past Descent Directions"), with the
    last inner step's direction as the one directed pair (:meth:`sb3_bierl.ES.roll_out_last_step_pair`).

    :param directions: (k, dim) the directions, on the noise's scale (a row's norm about ``sqrt(dim)``, as a draw of
        ``N(0, I)`` has)
    :param returns: (2k,) their returns, "+" half first (as :meth:`OpenAIES.candidates` orders a population's)
    :raises ValueError: if ``directions`` is not 2-D
    """

    directions: np.ndarray
    returns: np.ndarray

    def __post_init__(self) -> None:
        if np.ndim(self.directions) != 2:
            raise ValueError(f"directions must be (k, dim), got shape {np.shape(self.directions)}: one row per pair")

    @property
    def n_pairs(self) -> int:
        return len(self.directions)


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
        self.last_step: np.ndarray | None = None
        self.last_learning_rate = 0.0

    @property
    def dim(self) -> int:
        return self.theta.size

    def ask(self, noise: NoiseTable, rng: np.random.Generator, n_pairs: int, sigma: float) -> Population:
        """Draw ``n_pairs`` antithetic perturbations."""
        return Population(noise.sample_indices(rng, n_pairs, self.dim), float(sigma))

    def candidates(self, noise: NoiseTable, population: Population, theta: np.ndarray | None = None) -> np.ndarray:
        """:return: the 2n candidate vectors (float32), "+" half first (see :func:`antithetic_rows`)"""
        return antithetic_rows(noise, self.theta if theta is None else theta, population)

    def gradient(
        self,
        noise: NoiseTable,
        population: Population,
        returns: np.ndarray,
        shaped: bool = False,
        directed: DirectedPairs | None = None,
    ) -> np.ndarray:
        """
        ``g = 1 / (2 n) * sum_i (u_i+ - u_i-) eps_i / sigma_i - weight_decay * theta``,
        where ``u`` are the centred ranks of all 2n returns (Salimans et al. 2017; each pair is an estimate
        of the gradient of the return smoothed at its own ``sigma_i``).

        :param returns: Returns of the candidates in the order of :meth:`candidates`
        :param shaped: ``returns`` are already shaped utilities (e.g. NSR-ES's mix of reward and
            novelty ranks): use them as ``u`` as they are, without ranking them again
        :param directed: Pairs along given directions, rolled out at the same centre and sigma: ranked with the
            population's returns and summed with their pairs (``n`` counts them; see :class:`DirectedPairs`)
        :raises ValueError: if the returns' shapes do not match, a return is not finite, or ``directed`` is given
            with ``shaped`` utilities or a sigma per pair
        """
        returns = np.asarray(returns, dtype=np.float64)
        if returns.shape != (population.size,):
            raise ValueError(f"Expected {population.size} returns, got shape {returns.shape}")
        eps = noise.get_batch(population.noise_indices, self.dim).astype(np.float64)
        if directed is not None:
            if shaped or np.ndim(population.sigma) != 0:
                raise ValueError("Directed pairs join a population of ranked returns at one sigma only")
            directed_returns = np.asarray(directed.returns, dtype=np.float64)
            if directed_returns.shape != (2 * directed.n_pairs,):
                raise ValueError(f"Expected {2 * directed.n_pairs} directed returns, got shape {directed_returns.shape}")
            n, k = population.n_pairs, directed.n_pairs
            returns = np.concatenate([returns[:n], directed_returns[:k], returns[n:], directed_returns[k:]])
            eps = np.concatenate([eps, np.asarray(directed.directions, dtype=np.float64).reshape(k, self.dim)])
        if not np.all(np.isfinite(returns)):
            raise ValueError("Non-finite returns must be handled before the ES update")
        ranks = returns if shaped else centered_ranks(returns)
        n_pairs = returns.size // 2
        weights = ranks[:n_pairs] - ranks[n_pairs:]
        if np.ndim(population.sigma) == 0:
            grad = weights @ eps / (returns.size * population.sigma)
        else:
            grad = (weights / np.asarray(population.sigma, dtype=np.float64)) @ eps / population.size
        return grad - self.weight_decay * self.theta

    def tell(
        self,
        noise: NoiseTable,
        population: Population,
        returns: np.ndarray,
        learning_rate: float,
        shaped: bool = False,
        directed: DirectedPairs | None = None,
    ) -> np.ndarray:
        """
        Take one Adam ascent step on the ES gradient (``shaped``, ``directed``: see :meth:`gradient`), and remember
        it (``last_step``, ``last_learning_rate``: a meta level may rescale it, see :meth:`rescale_last_step`).

        :return: the gradient estimate
        """
        grad = self.gradient(noise, population, returns, shaped, directed)
        step = self.optimizer.step(grad, learning_rate)
        self.theta = self.theta + step
        self.last_step, self.last_learning_rate = step, float(learning_rate)
        return grad

    def last_step_unit(self) -> np.ndarray | None:
        """:return: the last step's direction, ``last_step / ||last_step||``, or None without a usable one (before the
        first step, or a zero or non-finite step)"""
        step = getattr(self, "last_step", None)
        norm = 0.0 if step is None else float(np.linalg.norm(step))
        if not (np.isfinite(norm) and norm > 0.0):
            return None
        return step / norm

    def stepped_centre(self, learning_rate: float) -> np.ndarray:
        """
        :param learning_rate: Another learning rate for the last step
        :return: the centre the last step would have reached with it (Adam's step is proportional to its
            learning rate), or the centre itself before any step
        """
        last_step = getattr(self, "last_step", None)
        if last_step is None:
            return self.theta
        return self.theta + (learning_rate / self.last_learning_rate - 1.0) * last_step

    def rescale_last_step(self, learning_rate: float) -> None:
        """Redo the last step with ``learning_rate`` instead: the centre moves to :meth:`stepped_centre`."""
        if getattr(self, "last_step", None) is None:
            return
        self.theta = self.stepped_centre(learning_rate)
        self.last_step = self.last_step * (learning_rate / self.last_learning_rate)
        self.last_learning_rate = float(learning_rate)

    def copy(self) -> "OpenAIES":
        return copy.deepcopy(self)


def antithetic_rows(noise: NoiseTable, theta: np.ndarray, population: Population, rows: np.ndarray | None = None) -> np.ndarray:
    """
    Candidates of an antithetic population: row ``i < n`` is ``theta + sigma_i * eps_i``, row ``n + i`` is
    ``theta - sigma_i * eps_i``. The one construction of candidates, for the ES update and every rollout
    backend (a worker builds only its rows), so that all agree to the bit.

    :param noise: The noise table
    :param theta: (dim,) the centre
    :param population: The population (one sigma, or one per pair)
    :param rows: Indices among the ``2 n`` candidates to build (default: all, in order)
    :return: (len(rows), dim) float32
    """
    n = population.n_pairs
    rows = np.arange(2 * n) if rows is None else np.asarray(rows)
    pairs, inverse = np.unique(rows % n, return_inverse=True)  # each eps read once, even when both signs are asked
    sigma = population.sigma if np.ndim(population.sigma) == 0 else np.asarray(population.sigma, dtype=np.float64)[pairs]
    eps = (noise.get_batch(population.noise_indices[pairs], theta.size) * sigma_column(sigma))[inverse]
    return np.where((rows < n)[:, None], theta + eps, theta - eps).astype(np.float32)


def sigma_column(sigma: float | np.ndarray) -> float | np.ndarray:
    """:return: ``sigma`` as it multiplies a (n, dim) batch of noise: a float, or an (n, 1) column"""
    return sigma if np.ndim(sigma) == 0 else np.asarray(sigma, dtype=np.float64)[:, None]


def merge_populations(populations: list[Population]) -> Population:
    """
    One population made of several (each with its own sigma), in the order of :func:`merge_antithetic`
    (``sb3_bierl.evaluation``): every "+" half, then every "-" half.

    :param populations: Populations rolled out around (nearly) the same centre
    :return: The merged population, with one sigma per pair
    """
    indices = np.concatenate([p.noise_indices for p in populations])
    sigmas = np.concatenate([np.full(p.n_pairs, p.sigma, dtype=np.float64) for p in populations])
    return Population(indices, sigmas)
