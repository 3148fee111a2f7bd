"""Novelty search for ES (NSR-ES / NSRA-ES, Conti et al. 2018): archive, k-NN novelty, fitness mixing."""

import numpy as np

from sb3_bierl.strategies.ranks import centered_ranks


class NoveltyArchive:
    """
    An archive of behaviour descriptors; the novelty of a behaviour is its mean Euclidean
    distance to its ``k_nearest`` nearest neighbours in the archive (all of them while the
    archive holds fewer than ``k_nearest``).

    Descriptors are stored in a growing float64 array; only the filled rows are pickled.

    :param k_nearest: Number of nearest neighbours averaged
    """

    def __init__(self, k_nearest: int = 10):
        if not isinstance(k_nearest, (int, np.integer)) or k_nearest < 1:
            raise ValueError(f"k_nearest must be an integer >= 1, got {k_nearest!r}")
        self.k_nearest = int(k_nearest)
        self._data: np.ndarray | None = None
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def dim(self) -> int | None:
        """Dimension of the descriptors (None while the archive is empty)"""
        return None if self._data is None else self._data.shape[1]

    @property
    def descriptors(self) -> np.ndarray:
        """(N, D) the archived descriptors, oldest first (a view)"""
        return np.zeros((0, 0)) if self._data is None else self._data[: self._size]

    def _as_batch(self, descriptors: np.ndarray) -> np.ndarray:
        batch = np.asarray(descriptors, dtype=np.float64)
        batch = batch[None] if batch.ndim == 1 else batch
        if batch.ndim != 2 or batch.shape[1] == 0:
            raise ValueError(
                f"Behaviour descriptors must be (D,) or (B, D) arrays with D >= 1, got shape {np.shape(descriptors)}"
            )
        if self.dim is not None and batch.shape[1] != self.dim:
            raise ValueError(f"Descriptors of dimension {batch.shape[1]} do not match the archive's ({self.dim})")
        if not np.all(np.isfinite(batch)):
            raise ValueError("Behaviour descriptors must be finite")
        return batch

    def add(self, descriptors: np.ndarray) -> None:
        """:param descriptors: one (D,) descriptor or a (B, D) batch"""
        batch = self._as_batch(descriptors)
        if self._data is None:
            self._data = np.empty((max(16, len(batch)), batch.shape[1]))
        if self._size + len(batch) > len(self._data):
            grown = np.empty((max(2 * len(self._data), self._size + len(batch)), self.dim))
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : self._size + len(batch)] = batch
        self._size += len(batch)

    def novelty(self, descriptors: np.ndarray) -> np.ndarray:
        """
        :param descriptors: one (D,) descriptor or a (B, D) batch
        :return: the novelty of each, (B,) (a float for one descriptor)
        """
        if self._size == 0:
            raise ValueError("The novelty archive is empty: add descriptors before measuring novelty")
        single = np.ndim(descriptors) == 1
        batch = self._as_batch(descriptors)
        archive = self.descriptors
        k = min(self.k_nearest, self._size)
        novelty = np.empty(len(batch))
        # chunks of queries, so that the (chunk, N, D) differences stay a few MB
        chunk = max(1, 2**20 // (archive.size or 1))
        for start in range(0, len(batch), chunk):
            queries = batch[start : start + chunk]
            distances = np.sqrt(((queries[:, None, :] - archive[None, :, :]) ** 2).sum(axis=-1))
            novelty[start : start + chunk] = np.partition(distances, k - 1, axis=1)[:, :k].mean(axis=1)
        return float(novelty[0]) if single else novelty

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_data"] = None if self._data is None else self._data[: self._size].copy()
        return state


def combined_fitness(returns: np.ndarray, novelty: np.ndarray, novelty_weight: float) -> np.ndarray:
    """
    NSR-ES fitness: ``(1 - novelty_weight) * ranks(returns) + novelty_weight * ranks(novelty)``,
    each term the centred ranks in [-0.5, 0.5] (Conti et al.'s ``w`` is ``1 - novelty_weight``).

    :param returns: (P,) finite returns
    :param novelty: (P,) novelty of the same candidates
    :param novelty_weight: Share of novelty, in [0, 1]
    :return: (P,) shaped utilities, in [-0.5, 0.5] and summing to zero
    """
    if not 0.0 <= novelty_weight <= 1.0:
        raise ValueError(f"novelty_weight must lie in [0, 1], got {novelty_weight}")
    returns, novelty = np.asarray(returns, dtype=np.float64), np.asarray(novelty, dtype=np.float64)
    if returns.shape != novelty.shape:
        raise ValueError(f"returns {returns.shape} and novelty {novelty.shape} must have the same shape")
    return (1.0 - novelty_weight) * centered_ranks(returns) + novelty_weight * centered_ranks(novelty)


def select_by_novelty(novelty: np.ndarray, rng: np.random.Generator) -> int:
    """
    Draw an index with probability proportional to its novelty (uniformly if no novelty is positive).

    :param novelty: (M,) non-negative novelty of each member
    :param rng: The generator that draws
    :return: the chosen index
    """
    novelty = np.asarray(novelty, dtype=np.float64)
    weights = np.where(np.isfinite(novelty) & (novelty > 0), novelty, 0.0)
    total = weights.sum()
    probabilities = weights / total if total > 0 else np.full(len(novelty), 1.0 / len(novelty))
    return int(rng.choice(len(novelty), p=probabilities))


class AdaptiveNoveltyWeight:
    """
    NSRA-ES's adaptation of the novelty weight (Conti et al. 2018): when the reward reaches a new
    best, the weight decreases by ``delta`` (exploit); after ``patience`` generations without a new
    best, it increases by ``delta`` (explore) and the count restarts. It stays in [0, 1].

    In Conti et al.'s terms (``w`` the weight of the reward, ``w = 1 - weight``): ``w`` starts at 1,
    grows when performance improves, shrinks when it stagnates.

    :param weight: Initial novelty weight
    :param delta: Step of the weight
    :param patience: Generations without improvement before the weight grows
    """

    def __init__(self, weight: float = 0.0, delta: float = 0.05, patience: int = 10):
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"The initial novelty weight must lie in [0, 1], got {weight}")
        if not np.isfinite(delta) or not 0.0 < delta <= 1.0:
            raise ValueError(f"novelty_weight_delta must lie in (0, 1], got {delta}")
        if not isinstance(patience, (int, np.integer)) or patience < 1:
            raise ValueError(f"stagnation_generations must be an integer >= 1, got {patience!r}")
        self.weight = float(weight)
        self.delta = float(delta)
        self.patience = int(patience)
        self.best_reward = -np.inf
        self.stagnant_generations = 0

    def update(self, reward: float) -> float:
        """Account for one generation's reward; :return: the new weight"""
        if reward > self.best_reward:  # NaN never improves
            self.best_reward = float(reward)
            self.stagnant_generations = 0
            self.weight = round(max(0.0, self.weight - self.delta), 12)
        else:
            self.stagnant_generations += 1
            if self.stagnant_generations >= self.patience:
                self.stagnant_generations = 0
                self.weight = round(min(1.0, self.weight + self.delta), 12)
        return self.weight
