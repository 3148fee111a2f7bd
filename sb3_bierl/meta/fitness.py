"""The meta level's truncated fitness, pair by pair, and the test that gates a meta step (issue 9)."""

import numpy as np

#: How a meta candidate's antithetic pair is scored (``BiERL(meta_fitness=...)``)
FITNESS_KINDS = ("mean", "best")


def pair_fitness(returns: np.ndarray, kind: str = "mean") -> np.ndarray:
    """
    The truncated fitness of each antithetic pair of each meta candidate.

    - ``"mean"``: the mean of the pair, ``(R(c + s e) + R(c - s e)) / 2``: an estimate of the return at the
      candidate's stepped centre ``c`` smoothed at its sigma ``s``. When sigma is too large every perturbation
      loses to the centre and the smaller sigma wins; along an ascent direction the larger learning rate wins.
      The pair's mean cancels the first-order term of the perturbation, so its noise is second-order in ``s``.
    - ``"best"``: the better of the two, ``max(R(c + s e), R(c - s e))`` (the default before session 5): the
      mean plus ``|R(c + s e) - R(c - s e)| / 2``, a first-order term in ``s e`` that grows with sigma wherever
      the return is locally linear, and whose noise needs the twins to share their noise to cancel.

    :param returns: (n_candidates, 2 r) returns, each row one candidate's antithetic population, "+" half first
    :param kind: One of ``FITNESS_KINDS``
    :return: (n_candidates, r) fitness per pair, NaN where neither return of the pair is finite ("best") or
        either is not ("mean")
    :raises ValueError: on an unknown ``kind`` or rows of odd length
    """
    if kind not in FITNESS_KINDS:
        raise ValueError(f"Unknown meta fitness {kind!r}: choose one of {FITNESS_KINDS}")
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 2 or returns.shape[1] % 2:
        raise ValueError(f"Expected (n_candidates, 2 r) antithetic returns, got shape {returns.shape}")
    returns = np.where(np.isfinite(returns), returns, np.nan)
    half = returns.shape[1] // 2
    plus, minus = returns[:, :half], returns[:, half:]
    if kind == "best":
        return np.fmax(plus, minus)  # fmax ignores a NaN beside a number
    return (plus + minus) / 2


def candidate_fitness(per_pair: np.ndarray) -> np.ndarray:
    """:param per_pair: (n_candidates, r) from :func:`pair_fitness` :return: (n_candidates,) the mean over finite pairs (NaN if none)"""
    per_pair = np.asarray(per_pair, dtype=np.float64)
    finite = np.isfinite(per_pair)
    counts = finite.sum(axis=1)
    sums = np.where(finite, per_pair, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def paired_t(first: np.ndarray, second: np.ndarray) -> float:
    """
    Student's paired t statistic of ``first - second``: the two candidates of an antithetic meta pair share
    their inner noise and episode seeds (common random numbers), so their pairs are paired samples.

    :param first: (r,) per-pair fitness of one candidate
    :param second: (r,) per-pair fitness of its antithetic twin
    :return: ``mean(d) / (std(d) / sqrt(n))`` over the finite differences ``d``; 0 with fewer than 2 of them
        or no spread (no evidence either way), except ``+-inf`` when every difference has the same non-zero value
    """
    differences = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    differences = differences[np.isfinite(differences)]
    if differences.size < 2:
        return 0.0
    spread = differences.std(ddof=1)
    mean = differences.mean()
    if spread == 0.0:
        return 0.0 if mean == 0.0 else float(np.copysign(np.inf, mean))
    return float(mean / (spread / np.sqrt(differences.size)))
