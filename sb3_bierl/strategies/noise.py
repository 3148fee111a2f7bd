"""Shared Gaussian noise table: workers exchange indices into it, never noise vectors."""

import numpy as np


class NoiseTable:
    """
    A fixed block of standard normal noise, generated from a seed.

    A perturbation of dimension ``d`` is the slice ``noise[i:i + d]``, so a candidate is
    described by one integer. Any process that builds the table from the same seed and
    size holds the same noise (Salimans et al. 2017).

    :param size: Number of float32 values in the table
    :param seed: Seed of the generator that fills the table
    """

    def __init__(self, size: int = 2**24, seed: int = 123):
        if size < 1:
            raise ValueError(f"noise_table_size must be >= 1, got {size}")
        self.size = int(size)
        self.seed = int(seed)
        self.noise = np.random.default_rng(seed).standard_normal(self.size, dtype=np.float32)

    def sample_indices(self, rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
        """
        :param rng: Generator that draws the indices
        :param n: Number of indices
        :param dim: Dimension of each perturbation
        :return: ``n`` start indices, each leaving room for ``dim`` values
        """
        if dim > self.size:
            raise ValueError(
                f"The noise table ({self.size} values) is smaller than the parameter vector ({dim}): "
                "increase noise_table_size."
            )
        return rng.integers(0, self.size - dim + 1, size=n)

    def get(self, index: int, dim: int) -> np.ndarray:
        """:return: the perturbation of dimension ``dim`` starting at ``index`` (a view)"""
        return self.noise[index : index + dim]

    def get_batch(self, indices: np.ndarray, dim: int) -> np.ndarray:
        """:return: array of shape (len(indices), dim)"""
        return np.stack([self.get(int(i), dim) for i in indices]) if len(indices) else np.zeros((0, dim), np.float32)
