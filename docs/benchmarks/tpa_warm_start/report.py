"""
The held-out report of session 18 (issue 10): TPA warm-started from a pre-trained two-point rule (``warm_tpa``:
``BiERL(meta="tpa", meta_warm_start=...)``, the rule of ``python -m sb3_bierl.pretrain --meta tpa``) against TPA as
published (``tpa``: the probe's ``es-tpa`` runs, the same runs as ``BiERL(meta="tpa")`` bit for bit, tested in
``tests/test_two_point.py``), ES at the defaults, and two controls: ES fixed at sigma 0.03, learning rate 0.03
(``es-s1.5-lr3``, where the pre-trained networks went) and TPA started there (``tpa-s1.5-lr3``). The five held-out
tasks (the pre-training suite has none of them); rliable throughout.

    python docs/benchmarks/tpa_warm_start/report.py     # writes results.md and hyperparameters.png here
"""

import sys
from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.aggregates import improvement_rows
from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS, final_returns, parse_algo, plot_hyperparameters
from sb3_bierl.benchmarks.records import load_records
from sb3_bierl.benchmarks.warm_start import make_report
from sb3_bierl.pretraining.suite import HELD_OUT

HERE = Path(__file__).resolve().parent
BENCHMARKS = HERE.parent
#: Folders of run records, and the algorithm names their runs take here
SOURCES: list[tuple[Path, dict[str, str]]] = [
    (BENCHMARKS / "meta_level_runs", {}),  # ES at the defaults (seeds 0-4) and the headroom grid
    (BENCHMARKS / "meta_level_screening" / "es_seed1", {}),  # the grid's second seed
    (BENCHMARKS / "bold_driver_probe" / "runs", {"es-tpa": "tpa"}),
    (BENCHMARKS / "bold_driver_probe" / "more_seeds" / "runs", {"es-tpa": "tpa"}),  # ES and TPA, seeds 5-7
    (BENCHMARKS / "warm_start_control_runs", {}),  # es-s1.5-lr3 on LunarLander, Hopper, HalfCheetah
    (BENCHMARKS / "new_defaults_runs", {}),  # es-s1.5-lr3 on Swimmer and Ant
    (HERE / "runs", {}),  # warm_tpa and tpa-s1.5-lr3 (seeds 0-4)
]
ALGOS = ("warm_tpa", "tpa", "es", "es-s1.5-lr3", "tpa-s1.5-lr3")
#: The comparisons of the per-task table: (X, Y)
PAIRS = [
    ("warm_tpa", "tpa"),
    ("warm_tpa", "es"),
    ("tpa", "es"),
    ("warm_tpa", "es-s1.5-lr3"),
    ("warm_tpa", "tpa-s1.5-lr3"),
    ("tpa-s1.5-lr3", "es"),
    ("tpa-s1.5-lr3", "tpa"),
    ("tpa-s1.5-lr3", "es-s1.5-lr3"),
]
SEEDS = range(5)


def gather() -> list[dict]:
    """:return: the finished records of :data:`SOURCES` on the held-out tasks, seeds 0-4: :data:`ALGOS` and ES's grid"""
    records = []
    for folder, rename in SOURCES:
        for record in load_records(folder):
            algo = rename.get(record["algo"], record["algo"])
            try:
                base = parse_algo(algo)[0]
            except ValueError:  # the probe's other rules
                continue
            if record["env"] in HELD_OUT and record["seed"] in SEEDS and (algo in ALGOS or base == "es"):
                records.append({**record, "algo": algo})
    return records


def per_task_table(records: list[dict]) -> list[str]:
    """:return: Markdown lines: P(X > Y) per task and over the tasks (rliable), and the means"""
    table = final_returns(records)
    envs = [e for e in SUITE_BUDGETS if e in HELD_OUT and any(r["env"] == e for r in records)]  # the report's order
    lines = ["## P(X > Y) per held-out task (rliable; ties count half)", ""]
    lines += ["| X > Y | seeds | " + " | ".join(envs) + " | all tasks [95% CI] |", "|---" * (len(envs) + 3) + "|"]
    for x, y, seeds, per_task, (p, low, high) in improvement_rows(table, envs, PAIRS):
        cells = " | ".join(f"{value:.2f}" for value in per_task)
        lines.append(f"| {x} > {y} | {seeds[0]}-{seeds[-1]} | {cells} | **{p:.2f} [{low:.2f}, {high:.2f}]** |")
    lines += ["", "Means over seeds 0-4 (runs in brackets):", ""]
    lines += ["| algorithm | " + " | ".join(envs) + " |", "|---" * (len(envs) + 1) + "|"]
    for algo in ALGOS:
        cells = [
            f"{np.mean(list(table[(e, algo)].values())):.1f} ({len(table[(e, algo)])})" if table.get((e, algo)) else "–"
            for e in envs
        ]
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    return lines + [""]


def main() -> int:
    records = gather()
    text = "\n".join(
        [
            "# Session 18: TPA from a pre-trained two-point rule (`warm_tpa`) on the held-out tasks",
            "",
            "Built by `python docs/benchmarks/tpa_warm_start/report.py` from the published run records.",
            "",
            *per_task_table(records),
            make_report(records, controls=["es-s1.5-lr3"], meta="tpa").replace("# Held-out", "## Held-out", 1),
        ]
    )
    (HERE / "results.md").write_text(text + "\n")
    print(text)
    traced = [r for r in records if r["algo"] in ("warm_tpa", "tpa") and r["seed"] == 0]
    if plot_hyperparameters(traced, HERE / "hyperparameters.png", ("warm_tpa", "tpa")):
        print(f"Wrote {HERE / 'hyperparameters.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
