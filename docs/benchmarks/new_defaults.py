"""
New ES/BiERL defaults? (issues 9 and 10, session 7): ES at sigma 0.03 and learning rate 0.03 (``es-s1.5-lr3``,
where the pre-trained controller takes every run) on issue 9's six tasks, 5 seeds, against ES and BiERL at the
defaults (sigma 0.02, learning rate 0.01). Run from the repository root after the runs of ``new_defaults.md``::

    python docs/benchmarks/new_defaults.py bench_results/defaults6/runs
"""

import sys
from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.records import load_records
from sb3_bierl.benchmarks.meta_level import (
    SUITE_BUDGETS,
    final_returns,
    normalisation,
    return_matrix,
    rliable_summary,
    score_matrix,
)

ENVS = tuple(SUITE_BUDGETS)
SEEDS = (0, 1, 2, 3, 4)
CANDIDATE = "es-s1.5-lr3"
ALGOS = ("es", "bierl", CANDIDATE)


def main(runs_dir: Path) -> None:
    records = load_records(runs_dir)
    table = final_returns(records)
    complete = [a for a in ALGOS if all(len(table.get((e, a), {})) >= len(SEEDS) for e in ENVS)]
    rows = []
    for algo in ALGOS:
        cells = []
        for env_id in ENVS:
            runs = table.get((env_id, algo), {})
            cells.append(f"{np.mean([runs[s] for s in SEEDS if s in runs]):.1f} ({len(runs)})" if runs else "–")
        rows.append([algo, *cells])
    print("Mean final return over seeds (number of seeds)\n")
    print("\n".join(markdown_table(["Algorithm", *ENVS], rows)), "\n")
    returns = {a: return_matrix(table, a, ENVS, SEEDS) for a in complete}
    normalised = [e for e in ENVS if normalisation(table, e) is not None]
    print("Normalisation (0 = ES at the defaults, 1 = best fixed ES setting in hindsight, the candidate included):")
    for env_id in ENVS:
        norm = normalisation(table, env_id)
        print(f"- {env_id}: " + ("no fixed setting beats the defaults" if norm is None else f"{norm[0]:.1f} -> {norm[1]:.1f} ({norm[2]})"))
    scores = {algo: score_matrix(table, algo, normalised, SEEDS) for algo in complete}
    pairs = [(CANDIDATE, "es"), (CANDIDATE, "bierl"), ("bierl", "es")]
    print()
    print("\n".join(rliable_summary(scores, returns, pairs)))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "bench_results/defaults6/runs"))
