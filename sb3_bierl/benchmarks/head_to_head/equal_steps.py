"""
Returns at equal environment steps, for runs that reached different step counts (a CPU-time budget): each pair
of this package's algorithm A and another algorithm B on an env is compared at the largest step count that
every done seed of both reached (the smallest of their last evaluations' steps), each run's return there
linearly interpolated between its evaluations. A pair whose curves do not overlap (that step is below a run's
first evaluation) is not compared.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.head_to_head.config import BenchmarkConfig

#: ``{(algo, env): [{"steps", "returns", ...} per done seed]}``, as ``plots.collect_curves`` gives them
Curves = Mapping[tuple[str, str], Sequence[Mapping[str, np.ndarray]]]


def overlap_step(curves: Sequence[Mapping[str, np.ndarray]]) -> float | None:
    """
    :param curves: Evaluation curves (``steps`` increasing) of the runs compared
    :return: The largest step count every curve reached (the smallest last evaluation step), None if it is
        below a curve's first evaluation (the curves do not overlap) or there is no curve
    """
    if not curves:
        return None
    step = min(float(curve["steps"][-1]) for curve in curves)
    return step if step >= max(float(curve["steps"][0]) for curve in curves) else None


def returns_at(curves: Sequence[Mapping[str, np.ndarray]], step: float) -> list[float]:
    """:return: Each curve's return at ``step`` (linear interpolation between its evaluations)"""
    return [float(np.interp(step, curve["steps"], curve["returns"])) for curve in curves]


def comparison_pairs(config: BenchmarkConfig, own_algos: Sequence[str]) -> list[tuple[str, str]]:
    """:return: ``(A, B)`` for each of this package's algorithms A and every other algorithm B, each pair once"""
    pairs: list[tuple[str, str]] = []
    for own in [algo.name for algo in config.algos if algo.name in own_algos]:
        for other in [algo.name for algo in config.algos if algo.name != own]:
            if (other, own) not in pairs:
                pairs.append((own, other))
    return pairs


def equal_steps_table(config: BenchmarkConfig, curves: Curves, own_algos: Sequence[str], cell) -> list[str]:
    """
    :param config: The benchmark
    :param curves: The done runs' evaluation curves
    :param own_algos: This package's algorithms (A in the pairs)
    :param cell: Formats a list of returns (one per seed) as a table cell (IQM and interval)
    :return: One row per env and pair: the step count and each side's return there
    """
    rows = []
    for env in config.envs:
        for own, other in comparison_pairs(config, own_algos):
            a, b = curves.get((own, env.env_id), []), curves.get((other, env.env_id), [])
            if not a or not b:
                continue
            step = overlap_step([*a, *b])
            if step is None:
                first = max(float(curve["steps"][0]) for curve in [*a, *b])
                rows.append(
                    [env.env_id, f"{own} vs {other}", f"no overlap (a first evaluation at {first:.0f})", "–", "–"]
                )
                continue
            rows.append([
                env.env_id, f"{own} vs {other}", f"{step:.0f}",
                f"{cell(returns_at(a, step))} ({len(a)})", f"{cell(returns_at(b, step))} ({len(b)})",
            ])  # fmt: skip
    if not rows:
        return ["No pair with done runs yet."]
    return markdown_table(["env", "A vs B", "at steps", "A's return", "B's return"], rows)
