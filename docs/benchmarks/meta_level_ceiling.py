"""
How high can P(BiERL > ES) go on issue 9's suite if the meta level only finds the best fixed setting? (session 12)

An oracle that runs each task with the headroom grid's best fixed (sigma, learning rate) in hindsight, against ES
at the defaults, per task (rliable's probability of improvement on that task's runs) and averaged over the six
tasks. Where no grid setting beats the defaults (or there is no grid), the oracle is ES itself: 0.5. The grid has
1 or 2 seeds per setting, so the per-task figures are rough; no bootstrap interval.

    python docs/benchmarks/meta_level_ceiling.py      # from the repository root
"""

from pathlib import Path

import numpy as np
from rliable import metrics

from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS, at_defaults, is_grid_setting
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
    print(f"{env_id}: best fixed {best} ({len(returns[best])} runs, mean {np.mean(returns[best]):.1f}) against "
          f"{es} ({len(returns[es])} runs, mean {np.mean(returns[es]):.1f}): P = {probability:.2f}")
print(f"Average over the {len(per_task)} tasks: P(oracle > ES) = {np.mean(per_task):.2f}")
