"""
Evidence for the paper's claims (issue 5): does the BiERL meta level improve each ES-family algorithm,
which meta level works best, and does a pre-trained controller help on a harder task?

Three experiments, each at equal environment steps (meta level included), several seeds, default
hyperparameters, evaluated like ``python -m sb3_bierl.benchmarks.compare`` (same run files, same
deterministic evaluation):

1. ``inner``: ES, NSR-ES and ESAC, plain and wrapped by BiERL, on two tasks;
2. ``controllers``: the LSTM (default), mean-pool and Optuna meta levels on one task;
3. ``warm_start``: BiERL with the shipped pre-trained controller (``meta_warm_start="pretrained"``; the
   held-out evaluation of issue 10 is ``python -m sb3_bierl.benchmarks.warm_start``) against BiERL from
   scratch, on a harder task.

Reproduce the figures in ``docs/benchmarks/family.md`` (resumable: finished runs are skipped)::

    python -m sb3_bierl.benchmarks.family --out bench_results/family

Quick check of the pipeline: ``--seeds 0 --scale 0.02 --eval-episodes 2 --out /tmp/family_smoke``.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.aggregates import improvement_probability
from sb3_bierl.benchmarks.compare import (
    DEFAULT_SEEDS,
    group_records,
    label,
    markdown_table,
    seed_statistics,
)
from sb3_bierl.benchmarks.records import load_records
from sb3_bierl.benchmarks.run_spec import RunSpec, run_specs


@dataclass(frozen=True)
class Experiment:
    """
    :param name: Short name (``--experiments``)
    :param title: Heading in the report
    :param budgets: Environment id -> training budget in environment steps
    :param algos: Algorithm names (keys of ``compare.ALGOS``)
    :param pairs: (plain, wrapped) pairs to compare, if any
    """

    name: str
    title: str
    budgets: dict[str, int]
    algos: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...] = ()


# ESAC runs SAC gradient steps alongside its rollouts, so its budgets are those of an off-policy method
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        "inner",
        "Plain vs BiERL-wrapped, for each inner algorithm",
        {"Pendulum-v1": 500_000, "MountainCarContinuous-v0": 1_000_000},
        ("es", "bierl", "nsr_es", "bierl_nsr_es"),
        (("es", "bierl"), ("nsr_es", "bierl_nsr_es")),
    ),
    Experiment(
        "inner_esac",
        "Plain vs BiERL-wrapped ESAC",
        {"Pendulum-v1": 50_000, "MountainCarContinuous-v0": 100_000},
        ("esac", "bierl_esac"),
        (("esac", "bierl_esac"),),
    ),
    Experiment(
        "controllers",
        "Meta levels: LSTM (default) vs mean-pool vs Optuna",
        {"Swimmer-v5": 1_000_000},
        ("bierl", "bierl_mean", "bierl_optuna"),
    ),
    Experiment(
        "warm_start",
        "Warm start (the shipped pre-trained controller) vs from scratch, on a harder task",
        {"Hopper-v5": 1_000_000},
        ("es", "bierl", "bierl_warm"),  # ES for context
        (("bierl", "bierl_warm"),),
    ),
)


def plan(experiments: Sequence[Experiment], seeds: Sequence[int], scale: float, eval_episodes: int) -> list[RunSpec]:
    """:return: the runs of the experiments (shared runs once), largest budgets first"""
    specs = {
        RunSpec(algo, env_id, seed, max(1, round(budget * scale)), eval_episodes)
        for experiment in experiments
        for env_id, budget in experiment.budgets.items()
        for algo in experiment.algos
        for seed in seeds
    }
    return sorted(specs, key=lambda spec: (-spec.budget, spec.name))


def report(experiments: Sequence[Experiment], records: list[dict]) -> str:
    """:return: the Markdown report, one section per experiment"""
    lines = [
        "# The ES family under BiERL",
        "",
        "Final return of the deterministic policy: IQM across seeds [95% stratified-bootstrap interval] (rliable; number of seeds in brackets) of "
        "each run's mean evaluation return; every algorithm with its default hyperparameters, at equal "
        "environment steps (meta level included). Produced by `python -m sb3_bierl.benchmarks.family`.",
        "",
    ]
    for experiment in experiments:
        groups = group_records([r for r in records if r["algo"] in experiment.algos])
        rows, verdicts = [], []
        for env_id, budget in experiment.budgets.items():
            cells = []
            for algo in experiment.algos:
                group = [r for r in groups.get((env_id, algo), []) if r["n_timesteps"] == budget]
                if group:
                    iqm, low, high, n = seed_statistics(group)
                    cells.append(f"{iqm:.1f} [{low:.1f}, {high:.1f}] ({n})")
                else:
                    cells.append("–")
            rows.append([env_id, f"{budget:,}", *cells])
            for plain, wrapped in experiment.pairs:
                a = [r for r in groups.get((env_id, plain), []) if r["n_timesteps"] == budget]
                b = [r for r in groups.get((env_id, wrapped), []) if r["n_timesteps"] == budget]
                if a and b:
                    probability, low, high = improvement_probability(
                        np.array([[r["final_return"] for r in b]]).T, np.array([[r["final_return"] for r in a]]).T
                    )
                    verdicts.append(
                        f"- {env_id}: P({label(wrapped)} > {label(plain)}) = {probability:.2f} [{low:.2f}, {high:.2f}] "
                        "(probability of improvement across seeds, rliable)"
                    )
        lines += [f"## {experiment.title}", ""]
        lines += markdown_table(["Environment", "Budget", *map(label, experiment.algos)], rows)
        lines += ["", *verdicts, ""] if verdicts else [""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiments (or only rebuild the report). :return: 1 if a run failed, 130 if interrupted, else 0"""
    names = [e.name for e in EXPERIMENTS]
    parser = argparse.ArgumentParser(prog="python -m sb3_bierl.benchmarks.family", description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", nargs="+", default=names, choices=names)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("--scale", type=float, default=1.0, help="Multiplier of every budget (e.g. 0.02 for a smoke test)")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Parallel runs")
    parser.add_argument("--out", type=Path, default=Path("bench_results/family"))
    parser.add_argument("--force", action="store_true", help="Rerun finished runs")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--no-progress-bar", action="store_true", help="One line per finished run instead of a progress bar")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.eval_episodes < 1 or args.workers < 1:
        parser.error("--scale must be positive, --eval-episodes and --workers at least 1")
    experiments = [e for e in EXPERIMENTS if e.name in args.experiments]
    runs_dir = args.out / "runs"
    failures = 0
    if not args.report_only:
        specs = plan(experiments, args.seeds, args.scale, args.eval_episodes)
        failures, interrupted = run_specs(specs, args.out, args.workers, args.force, progress_bar=not args.no_progress_bar)
        if interrupted:
            return 130
    text = report(experiments, load_records(runs_dir))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    print(text)
    if failures:
        print(f"{failures} run(s) failed: rerun the same command to retry them", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
