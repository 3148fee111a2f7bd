"""
Control of the held-out evaluation (issue 10): is the pre-trained controller better than ES fixed at the values
it moves to (sigma 0.03, learning rate 0.03, ``es-s1.5-lr3``)? Run from the repository root after::

    python -m sb3_bierl.benchmarks.meta_level --algos es-s1.5-lr3 --envs LunarLanderContinuous-v3 HalfCheetah-v5 \
        Hopper-v5 --seeds 0 1 2 3 4 --workers 2 --out bench_results/warm_start_control
    python docs/benchmarks/warm_start_control.py

(the warm-started, from-scratch and ES runs in ``bench_results/warm_start/runs``, see ``warm_start.md``).
"""

from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.records import load_records
from sb3_bierl.benchmarks.meta_level import final_returns, return_matrix, rliable_summary

ENVS = ("LunarLanderContinuous-v3", "Hopper-v5", "HalfCheetah-v5")
SEEDS = (0, 1, 2, 3, 4)
CONTROL = "es-s1.5-lr3"

records = load_records(Path("bench_results/warm_start/runs")) + load_records(
    Path("bench_results/warm_start_control/runs")
)
table = final_returns(records)
rows = [
    [algo, *(f"{np.mean([table[(e, algo)][s] for s in SEEDS]):.1f}" for e in ENVS)]
    for algo in ("warm", CONTROL, "bierl", "es")
]
print("\n".join(markdown_table(["Mean over 5 seeds", *ENVS], rows)), "\n")
returns = {algo: return_matrix(table, algo, ENVS, SEEDS) for algo in ("warm", CONTROL, "bierl", "es")}
print("\n".join(rliable_summary({}, returns, [("warm", CONTROL), (CONTROL, "es"), (CONTROL, "bierl")])))
