"""
How far from the centre should TPA's two points lie? Two measurements behind session 20's probe (issue 9;
``docs/benchmarks/meta_level.md``, "Session 20"). Run from the repository root::

    # the inner step's length as a share of a perturbation's (sigma * sqrt(n)), per generation of ES at its defaults
    python docs/benchmarks/bold_driver_probe/point_length.py ratio Pendulum-v1 100000
    # the share of generations whose test says "further along" (z > 0), by the learning rate of the step it tests
    python docs/benchmarks/bold_driver_probe/point_length.py feedback
"""

import argparse
from itertools import pairwise
from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.records import load_records

HERE = Path(__file__).parent
#: The two-point rules' runs: at a perturbation's length (sessions 16, seeds 0-7), at the step's, at twice a
#: perturbation's (session 20)
RUNS = (HERE / "runs", HERE / "more_seeds" / "runs", HERE / "step_length" / "runs", HERE / "far" / "runs")
#: Learning-rate bins of the feedback table (the default rate is 0.01; the step radius at sigma 0.02 is 0.04)
BINS = (0.0, 0.0125, 0.02, 0.03, 1.0)


def step_ratio(env_id: str, budget: int, seed: int = 0) -> list[float]:
    """
    :param env_id: Gymnasium id
    :param budget: Environment steps of the ES run (defaults, one worker)
    :param seed: The run's seed
    :return: ``||last_step|| / (sigma * sqrt(n))`` at the start of every generation but the first
    """
    from stable_baselines3.common.callbacks import BaseCallback

    from sb3_bierl import ES

    ratios: list[float] = []

    class StepRatio(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_start(self) -> None:
            strategy = self.model.strategy
            if strategy.last_step is not None:
                length = float(self.model.hyperparameters["sigma"]) * np.sqrt(strategy.dim)
                ratios.append(float(np.linalg.norm(strategy.last_step)) / length)

    ES("MlpPolicy", env_id, seed=seed, n_workers=1, verbose=0).learn(budget, callback=StepRatio())
    return ratios


def feedback_table() -> list[str]:
    """:return: per rule and task, the share of two-point tests with ``z > 0`` (generations) by the tested rate"""
    records = [r for folder in RUNS if folder.exists() for r in load_records(folder)]
    rows = []
    for algo in ("es-tpa", "es-tpa-step", "es-tpa-far"):
        for env_id in sorted({r["env"] for r in records}):
            runs = [r for r in records if r["algo"] == algo and r["env"] == env_id and r.get("tpa_z")]
            if not runs:
                continue
            rates, z = [], []
            for record in runs:
                tested = np.asarray(record["tpa_z"])
                # z of generation k + 1 tests the step taken at the end of generation k, at that generation's rate
                rates.append(np.asarray(record["trace"])[: tested.size, 2])
                z.append(tested)
            rate, test = np.concatenate(rates), np.concatenate(z)
            cells = []
            for lo, hi in pairwise(BINS):
                inside = (rate >= lo) & (rate < hi)
                cells.append(f"{np.mean(test[inside] > 0):.2f} ({inside.sum()})" if inside.any() else "–")
            rows.append([algo, env_id, str(len(runs)), *cells])
    return markdown_table(["Rule", "Task", "runs", *(f"rate in [{lo}, {hi})" for lo, hi in pairwise(BINS))], rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ratio = commands.add_parser("ratio", help="the step's length over a perturbation's, per generation")
    ratio.add_argument("env_id")
    ratio.add_argument("budget", type=int)
    ratio.add_argument("--seed", type=int, default=0)
    commands.add_parser("feedback", help="share of z > 0 by the tested step's learning rate")
    args = parser.parse_args()
    if args.command == "ratio":
        print(" ".join(f"{r:.3f}" for r in step_ratio(args.env_id, args.budget, args.seed)))
    else:
        print("\n".join(feedback_table()))
