"""The meta level's view of training: a window of scale-free per-generation features."""

from collections import deque

import numpy as np

from sb3_bierl.strategies import centered_ranks

N_FITNESS_FEATURES = 5


def generation_features(returns: np.ndarray, previous_returns: np.ndarray | None) -> np.ndarray:
    """
    Scale-free summary of one generation's returns (antithetic order: "+" half first), so that a
    controller trained on one task transfers to another:

    0. improvement of the mean return over the previous generation, in standard deviations
    1. gap between the best and the mean return, in standard deviations
    2. spread of the population relative to the magnitude of its returns
    3. fraction of candidates that beat the previous generation's mean
    4. strength of the antithetic signal: mean ``|rank(+) - rank(-)|`` of the pairs, in [0, 1]

    Each feature lies in [-1, 1].
    """
    returns = np.asarray(returns, dtype=np.float64)
    returns = returns[np.isfinite(returns)] if not np.all(np.isfinite(returns)) else returns
    if returns.size == 0:
        return np.zeros(N_FITNESS_FEATURES)
    mean, std = returns.mean(), returns.std()
    features = np.zeros(N_FITNESS_FEATURES)
    if previous_returns is not None and np.isfinite(previous_returns).any():
        previous = previous_returns[np.isfinite(previous_returns)]
        scale = std + previous.std() + 1e-8
        features[0] = np.clip((mean - previous.mean()) / scale, -3, 3) / 3
        features[3] = 2 * np.mean(returns > previous.mean()) - 1
    features[1] = np.clip((returns.max() - mean) / (std + 1e-8), 0, 3) / 3
    features[2] = np.tanh(std / (abs(mean) + 1e-8))
    if returns.size % 2 == 0 and returns.size > 1:
        ranks = centered_ranks(returns)
        half = returns.size // 2
        features[4] = 2 * np.mean(np.abs(ranks[:half] - ranks[half:])) - 1
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
        self.previous_returns: np.ndarray | None = None

    def append(self, returns: np.ndarray, hyperparameters_unit: np.ndarray) -> None:
        fitness = generation_features(returns, self.previous_returns)
        self.rows.append(np.concatenate([fitness, hyperparameters_unit]).astype(np.float32))
        self.previous_returns = np.asarray(returns, dtype=np.float64).copy()

    def as_array(self) -> np.ndarray:
        """:return: (length, n_features), zero-padded at the start"""
        window = np.zeros((self.length, self.n_features), dtype=np.float32)
        if self.rows:
            window[-len(self.rows) :] = np.stack(self.rows)
        return window

    def __len__(self) -> int:
        return len(self.rows)
