"""
The report of session 17 (issue 9): TPA with its two points in the gradient (``tpa_pair``: ``BiERL(meta="tpa",
last_step_pair=True)``), its ablation without the rule (``es_pair``: ``ES(last_step_pair=True)``), TPA as published
(``tpa``: the probe's ``es-tpa`` runs, the same runs as ``BiERL(meta="tpa")`` bit for bit, tested in
``tests/test_two_point.py``) and ES at the defaults, from the published run records; rliable throughout.

    python docs/benchmarks/last_step_pair/report.py            # writes docs/benchmarks/last_step_pair/results.md
"""

import sys
from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.aggregates import improvement_rows
from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS, final_returns, make_report, parse_algo
from sb3_bierl.benchmarks.records import load_records

HERE = Path(__file__).resolve().parent
BENCHMARKS = HERE.parent
#: Folders of run records, and the algorithm names their runs take here
SOURCES: list[tuple[Path, dict[str, str]]] = [
    (BENCHMARKS / "meta_level_runs", {}),  # ES at the defaults (seeds 0-4) and the headroom grid
    (BENCHMARKS / "meta_level_screening" / "es_seed1", {}),  # the grid's second seed
    (BENCHMARKS / "bold_driver_probe" / "runs", {"es-tpa": "tpa"}),
    (BENCHMARKS / "bold_driver_probe" / "more_seeds" / "runs", {"es-tpa": "tpa"}),  # ES and TPA, seeds 5-7
    (HERE / "runs", {}),  # tpa_pair and es_pair (seeds 0-4)
]
#: The comparisons of the per-task table: (X, Y)
PAIRS = [("tpa_pair", "es"), ("tpa", "es"), ("es_pair", "es"), ("tpa_pair", "es_pair"), ("tpa_pair", "tpa")]


def gather() -> list[dict]:
    """:return: every finished record of :data:`SOURCES` whose algorithm is ES's defaults, its grid or a run here"""
    records = []
    for folder, rename in SOURCES:
        for record in load_records(folder):
            algo = rename.get(record["algo"], record["algo"])
            try:
                base = parse_algo(algo)[0]
            except ValueError:  # the probe's other rules
                continue
            if base in ("es", "tpa", "tpa_pair", "es_pair"):
                records.append({**record, "algo": algo})
    return records


def per_task_table(records: list[dict]) -> list[str]:
    """:return: Markdown lines: P(X > Y) per task and over the tasks (rliable), on the seeds both have"""
    table = final_returns(records)
    envs = [e for e in SUITE_BUDGETS if any(r["env"] == e for r in records)]
    lines = ["## P(X > Y) per task (rliable; ties count half)", "", "| X > Y | seeds | " + " | ".join(envs) + " | all tasks [95% CI] |",
             "|---" * (len(envs) + 3) + "|"]
    for x, y, seeds, per_task, (p, low, high) in improvement_rows(table, envs, PAIRS):
        cells = [f"{value:.2f}" for value in per_task]
        lines.append(f"| {x} > {y} | {seeds[0]}-{seeds[-1]} | " + " | ".join(cells) + f" | **{p:.2f} [{low:.2f}, {high:.2f}]** |")
    lines += ["", "Means over the seeds of each row's X (first line per algorithm: seeds 0-4; second: every seed run):", ""]
    lines += ["| algorithm | seeds | " + " | ".join(envs) + " |", "|---" * (len(envs) + 2) + "|"]
    for algo in ("es", "tpa", "tpa_pair", "es_pair"):
        for label, keep in (("0-4", lambda s: s <= 4), ("all", lambda s: True)):
            runs = [table.get((e, algo), {}) for e in envs]
            values = [[v for s, v in r.items() if keep(s)] for r in runs]
            if all(values):
                lines.append(f"| {algo} | {label} | " + " | ".join(f"{np.mean(v):.1f}" for v in values) + " |")
    return lines + [""]


def main() -> int:
    records = gather()
    text = "\n".join(
        [
            "# Session 17: TPA's two points in the gradient (`tpa_pair`), its ablation (`es_pair`), TPA and ES",
            "",
            "Built by `python docs/benchmarks/last_step_pair/report.py` from the published run records.",
            "",
            *per_task_table(records),
            "The meta-level harness's report on seeds 0-4 (the seeds of its published ES runs, grid and normalisation):",
            "",
            make_report([r for r in records if r["seed"] <= 4]).replace(
                "# Does the meta level pay?", "## The meta-level harness's report (seeds 0-4)", 1
            ),
        ]
    )
    (HERE / "results.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
