"""
Short-horizon bias (issue 9, Wu et al. 2018): how well does the meta level's one-step truncated fitness rank
hyperparameters against what they give a few generations later?

From checkpoints of a plain ES run (after ``--checkpoints`` generations), each of a grid of fixed
``(sigma, learning_rate)`` settings (factors ``--factors`` of the defaults, every combination) is scored twice,
from the same state and with the same random numbers:

- **one step**: BiERL's truncated fitness (``ES.meta_generation``): the last inner step redone with the
  setting's learning rate, then each kind of ``sb3_bierl.meta.fitness.FITNESS_KINDS`` over the same returns of
  ``theta +- sigma * eps``: the mean over the pairs of the pair's mean (``"mean"``) or of its better return (``"best"``);
- **K steps**: ES continued ``--horizon`` generations with the setting, then the deterministic policy's mean
  return over ``--eval-episodes`` fixed-seed episodes.

The report gives, per task and checkpoint, Spearman's rank correlation between the two (1: the one-step fitness
ranks the settings as their outcome does), and which setting each prefers::

    python -m sb3_bierl.benchmarks.short_horizon --envs Pendulum-v1 Hopper-v5 --out bench_results/short_horizon
"""

import argparse
import itertools
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_bierl.benchmarks.compare import es_defaults, evaluate_final, markdown_table
from sb3_bierl.benchmarks.records import write_record


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """:return: Spearman's rank correlation of ``x`` and ``y`` (ties get their mean rank)"""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def probe(env_id: str, checkpoint: int, factors: Sequence[float], horizon: int, eval_episodes: int, seed: int) -> dict[str, Any]:
    """
    Score every setting at one checkpoint of one task, one step ahead and ``horizon`` generations ahead.

    :param env_id: The task
    :param checkpoint: Generations of plain ES before the probe
    :param factors: Factors of the default sigma and learning rate (every combination is a setting)
    :param horizon: Generations of the long outcome
    :param eval_episodes: Deterministic evaluation episodes of the long outcome
    :param seed: Seed of the ES run
    :return: The probe's record
    """
    import torch

    from sb3_bierl import ES
    from sb3_bierl.meta.fitness import FITNESS_KINDS, candidate_fitness, pair_fitness

    torch.set_num_threads(1)
    model = ES("MlpPolicy", env_id, seed=seed, n_workers=1)
    generations = 0
    while generations < checkpoint:
        model.learn(1, reset_num_timesteps=False)  # one generation per call
        generations += 1
    defaults = es_defaults([])
    settings = [(defaults["sigma"] * fs, defaults["learning_rate"] * fl) for fs, fl in itertools.product(factors, factors)]
    one_step: dict[str, list[float]] = {kind: [] for kind in FITNESS_KINDS}
    k_steps = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoint"
        model.save(path)
        for sigma, learning_rate in settings:
            # one step: the meta level's truncated fitness of this setting, all settings on the same numbers
            branch = ES.load(path, env=env_id, n_workers=1)
            hyperparameters = {**branch.scheduled_hyperparameters(), "sigma": sigma, "learning_rate": learning_rate}
            branch.hyperparameters = dict(hyperparameters)
            returns = branch.meta_generation(hyperparameters, [hyperparameters])
            for kind in FITNESS_KINDS:
                one_step[kind].append(float(candidate_fitness(pair_fitness(returns, kind))[0]))
            branch.close()
            # K steps: ES continued with this setting (the last step redone with its learning rate too)
            branch = ES.load(path, env=env_id, n_workers=1, sigma=sigma, learning_rate=learning_rate)
            branch.strategy.rescale_last_step(learning_rate)
            for _ in range(horizon):
                branch.learn(1, reset_num_timesteps=False)
            k_steps.append(float(np.mean(evaluate_final(branch, env_id, seed, eval_episodes))))
            branch.close()
    model.close()
    return {
        "env": env_id,
        "checkpoint": checkpoint,
        "horizon": horizon,
        "seed": seed,
        "settings": settings,
        "one_step": one_step,
        "k_steps": k_steps,
        "spearman": {kind: spearman(values, k_steps) for kind, values in one_step.items()},
    }


def by_fitness(record: dict[str, Any], key: str) -> dict[str, Any]:
    """:return: ``record[key]`` per fitness kind (a record written before the ``"mean"`` fitness holds ``"best"`` only)"""
    value = record[key]
    return value if isinstance(value, dict) else {"best": value}


def make_report(records: Sequence[dict[str, Any]]) -> str:
    """:return: The Markdown report"""
    lines = ["# Short-horizon bias of the one-step truncated fitness", ""]
    rows = []
    kinds = sorted({kind for r in records for kind in by_fitness(r, "one_step")})

    def setting(r: dict[str, Any], scores: Sequence[float]) -> str:
        sigma, learning_rate = r["settings"][int(np.argmax(scores))]
        return f"sigma {sigma:.3g}, lr {learning_rate:.3g}"

    for r in records:
        correlations, one_step = by_fitness(r, "spearman"), by_fitness(r, "one_step")
        rows.append(
            [r["env"], str(r["checkpoint"]), str(r["horizon"])]
            + [f"{correlations[k]:.2f}" if k in correlations else "–" for k in kinds]
            + [setting(r, one_step[k]) if k in one_step else "–" for k in kinds]
            + [setting(r, r["k_steps"])]
        )
    lines += markdown_table(
        ["Task", "Checkpoint (generations)", "Horizon K"]
        + [f"Spearman({k}, K steps)" for k in kinds]
        + [f"Best by one step ({k})" for k in kinds]
        + ["Best after K steps"],
        rows,
    )
    for kind in kinds:
        values = [by_fitness(r, "spearman")[kind] for r in records if kind in by_fitness(r, "spearman")]
        lines += ["", f"Mean Spearman correlation of the {kind!r} fitness over {len(values)} probes: {np.mean(values):.2f}."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probes (resumable: one JSON per probe) and write ``<out>/results.md``."""
    parser = argparse.ArgumentParser(prog="python -m sb3_bierl.benchmarks.short_horizon", description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["Pendulum-v1", "Hopper-v5"])
    parser.add_argument("--checkpoints", nargs="+", type=int, default=[3, 15], help="Generations of ES before each probe")
    parser.add_argument("--factors", nargs="+", type=float, default=[0.25, 1.0, 4.0], help="Factors of the defaults")
    parser.add_argument("--horizon", type=int, default=5, help="Generations of the long outcome (default: %(default)s)")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench_results/short_horizon"))
    args = parser.parse_args(argv)
    records = []
    for env_id in args.envs:
        for checkpoint in args.checkpoints:
            path = args.out / "probes" / f"{env_id}_{checkpoint}_{args.horizon}_{args.seed}.json"
            if not path.exists():
                write_record(path, probe(env_id, checkpoint, args.factors, args.horizon, args.eval_episodes, args.seed))
            record = json.loads(path.read_text())
            records.append(record)
            correlations = ", ".join(f"{k} {v:.2f}" for k, v in by_fitness(record, "spearman").items())
            print(f"{env_id} after {checkpoint} generations: Spearman {correlations}", flush=True)
    report = make_report(records)
    (args.out / "results.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
