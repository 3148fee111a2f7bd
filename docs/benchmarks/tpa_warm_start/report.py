"""
The held-out report of session 18 (issue 10): TPA warm-started from a pre-trained two-point rule (``warm_tpa``:
``BiERL(meta="tpa", meta_warm_start=...)``, the rule of ``python -m sb3_bierl.pretrain --meta tpa``) against TPA as
published (``tpa``: the probe's ``es-tpa`` runs, the same runs as ``BiERL(meta="tpa")`` bit for bit, tested in
``tests/test_two_point.py``), ES at the defaults, and two controls: ES fixed at sigma 0.03, learning rate 0.03
(``es-s1.5-lr3``, where the pre-trained networks went) and TPA started there (``tpa-s1.5-lr3``). The five held-out
tasks (the pre-training suite has none of them); rliable throughout.

Session 19 re-ran ``warm_tpa`` with the rule pre-trained on a suite with Walker2d-v5 (runs in ``runs_walker/``):
``results_session19.md`` and ``hyperparameters_session19.png`` are the same report with those runs as ``warm_tpa``.

    python docs/benchmarks/tpa_warm_start/report.py     # writes results*.md and hyperparameters*.png here
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
#: Session 19's warm_tpa runs (the rule pre-trained with Walker2d-v5), replacing session 18's in its report
WALKER_RUNS = HERE / "runs_walker"
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


def gather(sources: list[tuple[Path, dict[str, str]]]) -> list[dict]:
    """
    :param sources: Folders of run records and their renames (:data:`SOURCES`)
    :return: their finished records on the held-out tasks, seeds 0-4: :data:`ALGOS` and ES's grid
    """
    records = []
    for folder, rename in sources:
        for record in load_records(folder):
            algo = rename.get(record["algo"], record["algo"])
            try:
                base = parse_algo(algo)[0]
            except ValueError:  # the probe's other rules
                continue
            if record["env"] in HELD_OUT and record["seed"] in SEEDS and (algo in ALGOS or base == "es"):
                records.append({**record, "algo": algo})
    return records


def improvement_table(table: dict, envs: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    """:return: Markdown lines: P(X > Y) per task and over the tasks (``aggregates.improvement_rows``)"""
    lines = ["| X > Y | seeds | " + " | ".join(envs) + " | all tasks [95% CI] |", "|---" * (len(envs) + 3) + "|"]
    for x, y, seeds, per_task, (p, low, high) in improvement_rows(table, envs, pairs):
        cells = " | ".join(f"{value:.2f}" for value in per_task)
        lines.append(f"| {x} > {y} | {seeds[0]}-{seeds[-1]} | {cells} | **{p:.2f} [{low:.2f}, {high:.2f}]** |")
    return lines


def per_task_table(records: list[dict]) -> list[str]:
    """:return: Markdown lines: P(X > Y) per task and over the tasks (rliable), and the means"""
    table = final_returns(records)
    envs = [e for e in SUITE_BUDGETS if e in HELD_OUT and any(r["env"] == e for r in records)]  # the report's order
    lines = ["## P(X > Y) per held-out task (rliable; ties count half)", "", *improvement_table(table, envs, PAIRS)]
    lines += ["", "Means over seeds 0-4 (runs in brackets):", ""]
    lines += ["| algorithm | " + " | ".join(envs) + " |", "|---" * (len(envs) + 1) + "|"]
    for algo in ALGOS:
        cells = [
            f"{np.mean(list(table[(e, algo)].values())):.1f} ({len(table[(e, algo)])})" if table.get((e, algo)) else "–"
            for e in envs
        ]
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    return lines + [""]


def against_session_18(records: list[dict], session_18: list[dict]) -> list[str]:
    """
    :param records: Session 19's runs (its ``warm_tpa`` among them)
    :param session_18: Session 18's runs of ``runs/`` (its ``warm_tpa`` among them)
    :return: Markdown lines: P(session 19's warm_tpa > session 18's) per task and over the tasks
    """
    previous = [{**r, "algo": "warm_tpa (session 18)"} for r in session_18 if r["algo"] == "warm_tpa"]
    table = final_returns([r for r in records if r["algo"] == "warm_tpa"] + previous)
    envs = [e for e in SUITE_BUDGETS if e in HELD_OUT and (e, "warm_tpa") in table]
    pair = [("warm_tpa", "warm_tpa (session 18)")]
    return ["## Against session 18's rule", "", *improvement_table(table, envs, pair), ""]


def write_report(records: list[dict], title: str, suffix: str, extra: list[str] | None = None) -> None:
    """
    Write ``results<suffix>.md`` and ``hyperparameters<suffix>.png`` (seed 0's learning rate, warm_tpa against tpa).

    :param records: The runs (:func:`gather`)
    :param title: The report's title
    :param suffix: Of the file names
    :param extra: Markdown lines after the per-task table
    """
    text = "\n".join(
        [
            f"# {title}",
            "",
            "Built by `python docs/benchmarks/tpa_warm_start/report.py` from the published run records.",
            "",
            *per_task_table(records),
            *(extra or []),
            make_report(records, controls=["es-s1.5-lr3"], meta="tpa").replace("# Held-out", "## Held-out", 1),
        ]
    )
    (HERE / f"results{suffix}.md").write_text(text + "\n")
    print(text)
    traced = [r for r in records if r["algo"] in ("warm_tpa", "tpa") and r["seed"] == 0]
    if plot_hyperparameters(traced, HERE / f"hyperparameters{suffix}.png", ("warm_tpa", "tpa")):
        print(f"Wrote {HERE / f'hyperparameters{suffix}.png'}")


def main() -> int:
    write_report(
        gather(SOURCES), "Session 18: TPA from a pre-trained two-point rule (`warm_tpa`) on the held-out tasks", ""
    )
    if WALKER_RUNS.is_dir():
        # session 18's folder without its warm_tpa runs, and session 19's warm_tpa runs alone
        sources = [(folder, rename) for folder, rename in SOURCES if folder != HERE / "runs"]
        session_18 = gather([(HERE / "runs", {})])
        records = [r for r in session_18 if r["algo"] != "warm_tpa"] + gather(sources)
        records += [r for r in gather([(WALKER_RUNS, {})]) if r["algo"] == "warm_tpa"]
        title = "Session 19: TPA from the rule pre-trained with Walker2d-v5 (`warm_tpa`) on the held-out tasks"
        write_report(records, title, "_session19", against_session_18(records, session_18))
    return 0


if __name__ == "__main__":
    sys.exit(main())
