"""The meta level's view of training: a window of scale-free per-generation features."""

from collections import deque
from dataclasses import dataclass

import numpy as np

from sb3_bierl.strategies import centered_ranks

N_FITNESS_FEATURES = 10


@dataclass
class GenerationSummary:
    """
    What the meta level reads of one generation.

    :param returns: (2n,) returns of the population, antithetic order ("+" half first)
    :param centre_return: Mean return of the unperturbed centre, if it was rolled out
    :param step_agreement: Cosine between this generation's inner step and the previous one, if both exist
    """

    returns: np.ndarray
    centre_return: float | None = None
    step_agreement: float | None = None


def z_score(value: float, mean: float, std: float) -> float:
    """:return: ``(value - mean) / std`` clipped to [-3, 3], divided by 3"""
    return float(np.clip((value - mean) / (std + 1e-8), -3, 3) / 3)


def generation_features(summary: GenerationSummary, previous: GenerationSummary | None) -> np.ndarray:
    """
    Scale-free summary of one generation, so that a controller trained on one task transfers to another.
    Each feature lies in [-1, 1]:

    0. improvement of the mean return over the previous generation, in standard deviations
    1. gap between the best and the mean return, in standard deviations (z-scored best)
    2. spread of the population relative to the magnitude of its returns
    3. fraction of candidates that beat the previous generation's mean
    4. strength of the antithetic signal: mean ``|rank(+) - rank(-)|`` of the pairs
    5. the centre's rank among its own perturbations (1: it beats them all; a classic step-size signal:
       perturbations that mostly lose mean too large a sigma), as in the authors' code
    6. the centre's z-scored return among its perturbations
    7. the worst return, z-scored
    8. agreement of consecutive inner steps (cosine; an evolution-path signal, as in CMA-ES's step-size control)
    9. improvement of the centre's return over the previous generation, in population standard deviations

    Features that need what was not measured (no previous generation, no centre rollout) are 0.

    :param summary: The generation
    :param previous: The generation before, if any
    :return: (N_FITNESS_FEATURES,) features
    """
    returns = np.asarray(summary.returns, dtype=np.float64)
    returns = returns[np.isfinite(returns)] if not np.all(np.isfinite(returns)) else returns
    features = np.zeros(N_FITNESS_FEATURES)
    if returns.size == 0:
        return features
    mean, std = returns.mean(), returns.std()
    previous_returns = None if previous is None else np.asarray(previous.returns, dtype=np.float64)
    if previous_returns is not None and np.isfinite(previous_returns).any():
        before = previous_returns[np.isfinite(previous_returns)]
        scale = std + before.std() + 1e-8
        features[0] = np.clip((mean - before.mean()) / scale, -3, 3) / 3
        features[3] = 2 * np.mean(returns > before.mean()) - 1
    features[1] = z_score(returns.max(), mean, std)
    features[2] = np.tanh(std / (abs(mean) + 1e-8))
    if returns.size % 2 == 0 and returns.size > 1:
        ranks = centered_ranks(returns)
        half = returns.size // 2
        features[4] = 2 * np.mean(np.abs(ranks[:half] - ranks[half:])) - 1
    centre = summary.centre_return
    if centre is not None and np.isfinite(centre):
        features[5] = 2 * (np.mean(centre > returns) + 0.5 * np.mean(centre == returns)) - 1
        features[6] = z_score(centre, mean, std)
        if previous is not None and previous.centre_return is not None and np.isfinite(previous.centre_return):
            features[9] = z_score(centre, previous.centre_return, std)
    features[7] = z_score(returns.min(), mean, std)
    if summary.step_agreement is not None and np.isfinite(summary.step_agreement):
        features[8] = float(np.clip(summary.step_agreement, -1, 1))
    return features


class FitnessHistory:
    """
    The paper's "replay buffer": the last ``length`` feature vectors, oldest first, each the
    generation's fitness features followed by the hyperparameters used (in unit scale).

    :param length: Number of generations the encoder reads
    :param n_features: Size of one feature vector
    """

    def __init__(self, length: int, n_features: int):
        self.length = length
        self.n_features = n_features
        self.rows: deque[np.ndarray] = deque(maxlen=length)
        self.previous: GenerationSummary | None = None

    def append(self, summary: GenerationSummary, hyperparameters_unit: np.ndarray) -> None:
        """
        :param summary: The generation
        :param hyperparameters_unit: The hyperparameters it used, in unit scale (see ``HyperparameterSpace.to_unit``)
        """
        fitness = generation_features(summary, self.previous)
        self.rows.append(np.concatenate([fitness, hyperparameters_unit]).astype(np.float32))
        self.previous = summary

    def as_array(self) -> np.ndarray:
        """:return: (length, n_features), zero-padded at the start"""
        window = np.zeros((self.length, self.n_features), dtype=np.float32)
        if self.rows:
            window[-len(self.rows) :] = np.stack(self.rows)
        return window

    def __len__(self) -> int:
        return len(self.rows)
