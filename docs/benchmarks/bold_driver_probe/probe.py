"""
Is the information a per-task learning rate needs already in the fitness history? (issues 9 and 10, session 14)

ES at its defaults, with one rule on the learning rate between generations, the "bold driver" (Vogl et al. 1988;
Battiti 1989): after a generation whose population mean return rose, the learning rate grows by ``UP``; after one
where it fell, it shrinks by ``DOWN``; within BiERL's default bounds (a factor 8 either side of 0.01) and its step
radius (at most twice sigma). Sigma stays at 0.02. The rule reads one feature of the meta level's history (the sign
of feature 0, the improvement of the mean return) and has no learned weight: it is a probe of what a controller
reading that feature could do, not a meta level.

Why: ES fixed at sigma 0.03 and learning rate 0.03 beats the defaults on LunarLander, Swimmer, Hopper and
HalfCheetah, and falls on Ant in every seed; the probe of this session (``es-lr3``, ``es-s1.5``) puts that on the
learning rate. Under the large learning rate Ant's population mean falls in 7 or 8 of its first 8 generations,
every other task in at most 5 of 8. The rule's fixed point is a share of falling generations of
``log UP / (log UP + log DOWN)`` (0.355 with the values below): the learning rate climbs where fewer generations
fall, and comes down where more do.

Same harness, budgets, seeds and evaluation as ``python -m sb3_bierl.benchmarks.meta_level`` (run name
``es-bold``); run from the repository root, resumable::

    PYTHONPATH=docs/benchmarks/bold_driver_probe python docs/benchmarks/bold_driver_probe/probe.py --seeds 0 1 2 \\
        --out bench_results/bold_driver
"""

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_bierl.benchmarks.compare import evaluate_final
from sb3_bierl.benchmarks.meta_level import EVAL_SEED_OFFSET, SUITE_BUDGETS, make_generation_trace
from sb3_bierl.benchmarks.run_spec import RunSpec, run_specs

#: Factor on the learning rate after a generation whose population mean rose
UP = 1.25
#: Divisor of the learning rate after one where it fell
DOWN = 1.5
#: BiERL's default bounds: this factor either side of the initial learning rate
BOUND_FACTOR = 8.0
#: BiERL's default step radius: learning rate at most this times sigma
MAX_LR_TO_SIGMA = 2.0


class BoldDriver(BaseCallback):
    """Sets ES's learning rate each generation from the sign of the last change of the population's mean return."""

    def __init__(self) -> None:
        super().__init__(0)
        self.means: list[float] = []
        self.learning_rate: float | None = None

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        model = self.model
        if self.learning_rate is None:
            self.learning_rate = float(model.hyperparameters["learning_rate"])
            self.low, self.high = self.learning_rate / BOUND_FACTOR, self.learning_rate * BOUND_FACTOR
        if len(self.means) >= 2:
            rose = self.means[-1] > self.means[-2]
            self.learning_rate *= UP if rose else 1 / DOWN
            high = min(self.high, MAX_LR_TO_SIGMA * model.hyperparameters["sigma"])
            self.learning_rate = float(np.clip(self.learning_rate, self.low, high))
        model.hyperparameters["learning_rate"] = self.learning_rate

    def _on_rollout_end(self) -> None:
        self.means.append(float(np.nanmean(self.model.last_rollout.returns)))


def train(spec: RunSpec) -> dict[str, Any]:
    """Train ES with the rule and evaluate it as ``meta_level.train_and_evaluate`` does."""
    import torch

    from sb3_bierl import ES

    torch.set_num_threads(1)
    trace = make_generation_trace()  # records the hyperparameters of each generation, after the rule set them
    start, cpu_start = time.perf_counter(), time.process_time()
    model = ES("MlpPolicy", spec.env_id, seed=spec.seed, n_workers=1, verbose=0)
    model.learn(spec.budget, callback=[BoldDriver(), trace])
    wall_time, cpu_time = time.perf_counter() - start, time.process_time() - cpu_start
    returns = evaluate_final(model, spec.env_id, spec.seed, spec.eval_episodes)
    model.close()
    return {
        "final_return": float(np.mean(returns)),
        "steps_reached": int(model.num_timesteps),
        "train_time_s": wall_time,
        "cpu_time_s": cpu_time,
        "eval_std": float(np.std(returns)),
        "eval_seed": EVAL_SEED_OFFSET + spec.seed,
        "eval_returns": returns.tolist(),
        "initial_hyperparameters": {"sigma": 0.02, "learning_rate": 0.01},
        "trace_columns": ["num_timesteps", "sigma", "learning_rate", "population_return_mean", "n_meta_updates"],
        "trace": trace.rows,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(SUITE_BUDGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench_results/bold_driver"))
    args = parser.parse_args()
    specs = [RunSpec("es-bold", env, seed, SUITE_BUDGETS[env], 10) for seed in args.seeds for env in args.envs]
    run_specs(specs, args.out, args.workers, trainer="probe:train", progress_bar=False)
