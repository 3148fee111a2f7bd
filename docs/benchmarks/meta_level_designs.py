"""
BiERL's meta level in its successive designs, against ES, on the issue-9 suite at the defaults (rliable).

Reads the per-run files of ``python -m sb3_bierl.benchmarks.meta_level`` from one folder per design: before
session 5 (``meta_level_runs/``, commit e136131), session 5 (``meta_level_session5_runs/``, commit 2f1cb9e) and
session 9 (``meta_level_session9_runs/``: session 5's design with the step radius ``meta_max_lr_to_sigma=2``). The ES
runs are those of the first folder, which the later code reproduces exactly (ES has not changed).
Run from this folder: ``python meta_level_designs.py`` (prints Markdown).
"""

import itertools
from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.aggregates import improvement_probability, iqm_interval
from sb3_bierl.benchmarks.records import load_records
from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS

HERE = Path(__file__).resolve().parent
FOLDERS = {
    "before session 5": HERE / "meta_level_runs",
    "session 5": HERE / "meta_level_session5_runs",
    "session 9": HERE / "meta_level_session9_runs",
}
SEEDS = (0, 1, 2, 3, 4)


def finals(folder: Path, algo: str) -> dict[tuple[str, int], float]:
    """:return: ``{(env, seed): final return}`` of one algorithm's runs in a folder"""
    return {(r["env"], r["seed"]): r["final_return"] for r in load_records(folder) if r["algo"] == algo}


def matrix(values: dict[tuple[str, int], float], envs: list[str]) -> np.ndarray:
    """:return: (seeds, tasks) final returns"""
    return np.array([[values[(env, seed)] for env in envs] for seed in SEEDS])


def main() -> None:
    es = finals(FOLDERS["before session 5"], "es")
    designs = {label: finals(folder, "bierl") for label, folder in FOLDERS.items()}
    envs = [env for env in SUITE_BUDGETS if all((env, s) in d for d in (es, *designs.values()) for s in SEEDS)]
    print("| Task | ES | " + " | ".join(f"BiERL {label}" for label in designs) + " |")
    print("|---|---|" + "---|" * len(designs))
    for env in envs:
        cells = []
        for values in (es, *designs.values()):
            iqm, low, high = iqm_interval([values[(env, s)] for s in SEEDS])
            cells.append(f"{iqm:.1f} [{low:.1f}, {high:.1f}]")
        print(f"| {env} | " + " | ".join(cells) + " |")
    print()
    print(
        f"Probability of improvement over the {len(envs)} tasks, 5 seeds each (rliable, 95% stratified-bootstrap interval):"
    )
    print()
    print("| Comparison | P(X > Y) [95% CI] |")
    print("|---|---|")
    labels = list(designs)
    pairs = [(f"BiERL {label}", designs[label], "ES", es) for label in reversed(labels)]
    pairs += [(f"BiERL {new}", designs[new], f"BiERL {old}", designs[old]) for old, new in itertools.pairwise(labels)]
    for x_label, x, y_label, y in pairs:
        p, low, high = improvement_probability(matrix(x, envs), matrix(y, envs))
        print(f"| {x_label} > {y_label} | {p:.2f} [{low:.2f}, {high:.2f}] |")


if __name__ == "__main__":
    main()
