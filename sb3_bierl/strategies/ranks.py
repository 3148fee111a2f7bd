"""Fitness shaping."""

import numpy as np


def centered_ranks(values: np.ndarray) -> np.ndarray:
    """
    Replace each value by its rank, scaled to [-0.5, 0.5] (Salimans et al. 2017).
    Equal values get the mean of their ranks, so the shaping does not depend on order.

    :param values: Array of any shape
    :return: Array of the same shape, float64, summing to zero
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 1:
        return np.zeros_like(values, dtype=np.float64)
    order = flat.argsort(kind="stable")
    ranks = np.empty(flat.size, dtype=np.float64)
    ranks[order] = np.arange(flat.size, dtype=np.float64)
    # average the ranks of ties
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    if np.any(counts > 1):
        ranks = np.bincount(inverse, weights=ranks)[inverse] / counts[inverse]
    ranks = ranks / (flat.size - 1) - 0.5
    return ranks.reshape(np.shape(values))


def finite_or_worst(values: np.ndarray) -> np.ndarray | None:
    """
    Replace NaN and infinite fitnesses by the worst finite one, so they rank last and never
    reach the parameters. :return: the cleaned array (float64), or None if none is finite.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if finite.all():
        return values
    if not finite.any():
        return None
    return np.where(finite, values, values[finite].min())
