"""
BiERL adapting the learning rate only (sigma fixed at 0.02) against ES and the default BiERL (issue 9, session 5):
``screen3.py`` runs tagged ``v5lr`` (``hyperparameter_bounds={"learning_rate": (0.00125, 0.08)}``, commit 2f1cb9e),
the suite's budgets and evaluation. Run from this folder: ``python lr_only.py``.
"""

import glob
import json
from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.aggregates import improvement_probability, iqm_interval
from sb3_bierl.benchmarks.records import load_records

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2, 3, 4)
ENVS = ("Pendulum-v1", "LunarLanderContinuous-v3", "Swimmer-v5", "Hopper-v5", "HalfCheetah-v5")


def suite_runs(folder: Path, algo: str) -> dict[tuple[str, int], float]:
    return {(r["env"], r["seed"]): r["final_return"] for r in load_records(folder) if r["algo"] == algo}


lr_only = {}
for path in glob.glob(str(HERE / "runs" / "v5lr-*.json")):
    record = json.loads(Path(path).read_text())
    lr_only[(record["env"], record["seed"])] = float(np.mean(record["final"]))
es = suite_runs(HERE.parent.parent / "meta_level_runs", "es")
bierl = suite_runs(HERE.parent.parent / "meta_level_session5_runs", "bierl")
print("| Task | ES | BiERL (sigma and learning rate) | BiERL, learning rate only |")
print("|---|---|---|---|")
for env in ENVS:
    cells = []
    for values in (es, bierl, lr_only):
        iqm, low, high = iqm_interval([values[(env, s)] for s in SEEDS])
        cells.append(f"{iqm:.1f} [{low:.1f}, {high:.1f}]")
    print(f"| {env} | " + " | ".join(cells) + " |")
matrix = lambda values: np.array([[values[(env, s)] for env in ENVS] for s in SEEDS])  # noqa: E731
print()
print("| Comparison (5 tasks x 5 seeds) | P(X > Y) [95% CI] |")
print("|---|---|")
for label, x, y in [("learning rate only > ES", lr_only, es), ("learning rate only > BiERL", lr_only, bierl), ("BiERL > ES", bierl, es)]:
    p, low, high = improvement_probability(matrix(x), matrix(y))
    print(f"| {label} | {p:.2f} [{low:.2f}, {high:.2f}] |")
