"""
How high can P(BiERL > ES) go on issue 9's suite if the meta level only finds the best fixed setting? (session 12)

An oracle that runs each task with the headroom grid's best fixed (sigma, learning rate) in hindsight, against ES
at the defaults, per task (rliable's probability of improvement on that task's runs) and averaged over the six
tasks. Where no grid setting beats the defaults (or there is no grid), the oracle is ES itself: 0.5. The grid has
1 or 2 seeds per setting, so the per-task figures are rough; no bootstrap interval.

    python docs/benchmarks/meta_level_ceiling.py      # from the repository root

Session 21 (the second part of the output): the same oracle over the fixed settings measured since on the whole
suite with seeds 0-4 (sigma 0.03 and learning rate 0.03, in ``new_defaults_runs`` and ``warm_start_control_runs``;
sigma 0.03 alone, on the five tasks it ran), with rliable's stratified-bootstrap interval. Per task the oracle
takes, in hindsight, the setting with the highest mean over those seeds, ES at the defaults included: an upper
estimate, biased upward by the choice.

Session 21, third part: could a meta level make that choice inside a run? A race, simulated without its cost from
the same runs: per task and seed, the setting (the defaults or sigma 0.03 with learning rate 0.03) whose population
mean return over its last ``k`` generations within the first ``fraction`` of the budget is higher, and that
setting's final return (the defaults where neither has such a generation). A real race would also spend the
loser's steps, so these figures are upper estimates of one.
"""

from pathlib import Path

import numpy as np
from rliable import metrics

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import (
    SUITE_BUDGETS,
    at_defaults,
    final_returns,
    is_grid_setting,
    return_matrix,
    rliable_summary,
)
from sb3_bierl.benchmarks.records import load_records

FOLDERS = ("docs/benchmarks/meta_level_runs", "docs/benchmarks/meta_level_screening/es_seed1")

records = [r for folder in FOLDERS for r in load_records(Path(folder))]
es = at_defaults("es")
per_task = []
for env_id in SUITE_BUDGETS:
    returns: dict[str, list[float]] = {}
    for r in records:
        if r["env"] == env_id and (r["algo"] == es or is_grid_setting(r["algo"])):
            returns.setdefault(r["algo"], []).append(r["final_return"])
    best = max(returns, key=lambda algo: np.mean(returns[algo]))
    if best == es:
        probability = 0.5
    else:
        x, y = np.array(returns[best])[:, None], np.array(returns[es])[:, None]
        probability = float(metrics.probability_of_improvement(x, y))
    per_task.append(probability)
    print(
        f"{env_id}: best fixed {best} ({len(returns[best])} runs, mean {np.mean(returns[best]):.1f}) against "
        f"{es} ({len(returns[es])} runs, mean {np.mean(returns[es]):.1f}): P = {probability:.2f}"
    )
print(f"Average over the {len(per_task)} tasks: P(oracle > ES) = {np.mean(per_task):.2f}")

# session 21: the 5-seed fixed settings, with an interval

MORE = (
    "docs/benchmarks/new_defaults_runs",
    "docs/benchmarks/warm_start_control_runs",
    "docs/benchmarks/bold_driver_probe/runs",
)
SETTINGS = ("es", "es-s1.5-lr3", "es-s1.5")
SEEDS = [0, 1, 2, 3, 4]
every_record = [r for folder in (*FOLDERS, *MORE) for r in load_records(Path(folder))]
table = final_returns(every_record)
envs = list(SUITE_BUDGETS)
columns, chosen = [], []
for env_id in envs:
    measured = [name for name in SETTINGS if all(seed in table.get((env_id, name), {}) for seed in SEEDS)]
    best = max(measured, key=lambda name: np.mean(return_matrix(table, name, [env_id], SEEDS)))
    columns.append(return_matrix(table, best, [env_id], SEEDS))
    chosen.append(f"{env_id}: {best}")
print("\nSession 21, the oracle over " + ", ".join(SETTINGS) + f" (seeds {SEEDS}): " + "; ".join(chosen))
returns = {"oracle": np.hstack(columns), "es": return_matrix(table, "es", envs, SEEDS)}
print("\n".join(rliable_summary({}, returns, [("oracle", "es")])))

# session 21: a race between the two settings, simulated without its cost
by_run = {(r["env"], r["algo"], r["seed"]): r for r in every_record if r["algo"] in ("es", "es-s1.5-lr3")}


def early_mean(record: dict, steps: float, k: int) -> float:
    """:return: the population mean return over the last ``k`` generations that ended within ``steps``"""
    trace = np.array(record["trace"])
    within = trace[trace[:, 0] <= steps]
    return float(within[-k:, 3].mean()) if len(within) else -np.inf


print("\nSession 21, a race simulated without its cost: P(race > ES), over the six tasks and per task")
rows = []
for k in (1, 2, 3):
    for fraction in (0.05, 0.1, 0.15, 0.2):
        raced = np.zeros((len(SEEDS), len(envs)))
        for j, env_id in enumerate(envs):
            for i, seed in enumerate(SEEDS):
                default, bold = by_run[(env_id, "es", seed)], by_run[(env_id, "es-s1.5-lr3", seed)]
                steps = fraction * default["trace"][-1][0]
                winner = bold if early_mean(bold, steps, k) > early_mean(default, steps, k) else default
                raced[i, j] = winner["final_return"]
        per_task = [float(metrics.probability_of_improvement(raced[:, [j]], returns["es"][:, [j]])) for j in range(6)]
        rows.append([str(k), f"{fraction:.2f}", f"{np.mean(per_task):.2f}", *(f"{p:.2f}" for p in per_task)])
print("\n".join(markdown_table(["k", "fraction", "P (6 tasks)", *envs], rows)))
