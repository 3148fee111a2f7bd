"""
Does the centre's rank among its perturbations tell a sigma that is too large from one that is too small? The
measurement behind session 21's probe (issue 9; ``docs/benchmarks/meta_level.md``, "Session 21").

The BiERL authors' meta network reads the rank of the unperturbed centre's return among its population's (issue 9);
it is a classic step-size signal: on a linear slope half the antithetic population lies above the centre, whatever
sigma; where curvature dominates (sigma large for the landscape) the perturbations fall off and the centre ranks
high. Here ES runs at a fixed sigma; at the start of each generation the centre is rolled out once (a fresh episode
seed, as TPA's two points), and ``r`` (``shares``) is the share of the generation's returns above it (ties count
half). Beside it, at no cost, ``pair_correlations``: Pearson's correlation of ``f(theta + sigma eps_i)`` and
``f(theta - sigma eps_i)`` over the generation's pairs (each pair shares its episode seed). The slope of the return
makes the two members of a pair differ (towards -1); the episode's seed and the curvature, both even in ``eps``,
make them move together (towards +1). Run from the repository root (the outputs of session 21:
``centre_rank/`` and ``centre_rank/early/``, each with its ``results.md``)::

    python docs/benchmarks/bold_driver_probe/centre_rank.py measure --out bench_results/centre_rank
    python docs/benchmarks/bold_driver_probe/centre_rank.py table --out bench_results/centre_rank
    # the first 3 generations only, seeds 0-2 (session 21 stopped there)
    python docs/benchmarks/bold_driver_probe/centre_rank.py measure --generations 3 --seeds 0 1 2 \\
        --out bench_results/centre_rank_early
"""

import argparse
import json
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS

#: Sigma 4 times too small, the default, 4 times too large (issue 9's robustness starts)
SIGMAS = (0.005, 0.02, 0.08)


class CentreRank(BaseCallback):
    """Rolls out the centre once per generation and records its return's rank among the generation's returns."""

    def __init__(self, max_generations: int | None = None) -> None:
        super().__init__(0)
        self.max_generations = max_generations
        self.centre_return: float | None = None
        self.shares: list[float] = []  # r per generation: share of the population's returns above the centre's
        self.pair_correlations: list[float] = []  # Pearson's r of f(theta + sigma eps_i) and f(theta - sigma eps_i)

    def _on_step(self) -> bool:
        return self.max_generations is None or len(self.shares) < self.max_generations

    def _on_rollout_start(self) -> None:
        model = self.model
        self.centre_return = float(model.evaluate_centres(model.strategy.theta[None], n_episodes=1)[0])

    def _on_rollout_end(self) -> None:
        returns = np.asarray(self.model.last_rollout.returns, dtype=np.float64)
        plus, minus = np.split(returns, 2)  # "+" half first (antithetic_rows)
        finite = np.isfinite(plus) & np.isfinite(minus)
        self.pair_correlations.append(float(np.corrcoef(plus[finite], minus[finite])[0, 1]))
        returns = returns[np.isfinite(returns)]
        centre = self.centre_return
        self.shares.append(float((np.sum(returns > centre) + 0.5 * np.sum(returns == centre)) / returns.size))


def measure(env_id: str, sigma: float, budget: int, seed: int = 0, max_generations: int | None = None) -> CentreRank:
    """
    :param env_id: Gymnasium id
    :param sigma: ES's fixed sigma (learning rate at its default)
    :param budget: Environment steps, the centre's episodes included
    :param seed: The run's seed
    :param max_generations: Ask ES to stop once this many generations are recorded (None: run to the budget); the
        generation under way then completes, so one more is recorded
    :return: the callback, with ``r`` and the pairs' correlation per generation
    """
    import torch

    from sb3_bierl import ES

    torch.set_num_threads(1)
    rank = CentreRank(max_generations)
    ES("MlpPolicy", env_id, seed=seed, n_workers=1, verbose=0, sigma=sigma).learn(budget, callback=rank)
    return rank


def table(out: Path, statistic: str, first: int = 3) -> list[str]:
    """
    :param out: The folder of the measurements (``*.jsonl``)
    :param statistic: ``"shares"`` (``r``) or ``"pair_correlations"``
    :param first: How many of the first generations the first figure of a cell averages
    :return: per task and sigma, the mean of the statistic over the first generations (and over the run where one
        seed ran; the mean over seeds and their range where several did)
    """
    results = [json.loads(line) for path in sorted(out.glob("*.jsonl")) for line in path.read_text().splitlines()]
    several = len({r["seed"] for r in results}) > 1
    rows = []
    for env_id in SUITE_BUDGETS:
        cells = []
        for sigma in SIGMAS:
            runs = [np.asarray(r[statistic]) for r in results if r["env"] == env_id and r["sigma"] == sigma]
            early, whole = [np.nanmean(run[:first]) for run in runs], [np.nanmean(run) for run in runs]
            if not runs:
                cells.append("–")
            elif several:
                cells.append(f"{np.mean(early):+.2f} ({min(early):+.2f} to {max(early):+.2f}; {len(runs)} seeds)")
            else:
                cells.append(f"{early[0]:+.2f} / {whole[0]:+.2f} ({runs[0].size})")
        rows.append([env_id, *cells])
    what = f"generations 1-{first}, mean over seeds (range)" if several else f"generations 1-{first} / all (count)"
    return markdown_table(["Task", *(f"sigma {s}: {what}" for s in SIGMAS)], rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["measure", "table"])
    parser.add_argument("--envs", nargs="+", default=list(SUITE_BUDGETS))
    parser.add_argument("--sigmas", nargs="+", type=float, default=list(SIGMAS))
    parser.add_argument("--fraction", type=float, default=0.5, help="Share of the suite's budget per run")
    parser.add_argument("--generations", type=int, help="Stop each run after this many generations")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", type=Path, default=Path("bench_results/centre_rank"))
    args = parser.parse_args()
    if args.what == "table":
        for statistic in ("shares", "pair_correlations"):
            print(f"\n{statistic}:\n", *table(args.out, statistic), sep="\n")
        raise SystemExit(0)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for env_id in args.envs:
            path = args.out / f"{env_id}_{seed}.jsonl"
            done = {json.loads(line)["sigma"] for line in path.read_text().splitlines()} if path.exists() else set()
            for sigma in args.sigmas:
                if sigma in done:  # resumable
                    continue
                budget = int(args.fraction * SUITE_BUDGETS[env_id])
                rank = measure(env_id, sigma, budget, seed, args.generations)
                record = {"env": env_id, "sigma": sigma, "seed": seed, "shares": rank.shares}
                with path.open("a") as file:
                    file.write(json.dumps(record | {"pair_correlations": rank.pair_correlations}) + "\n")
                print(env_id, seed, sigma, f"{np.mean(rank.shares):.2f} {np.nanmean(rank.pair_correlations):.2f}")
