"""
Does issue 9's robustness measure, as run so far (seed 0 only), tell a recovered start from a bad one? (session 22)

The robustness stage scores a run started 4 times off by its normalised score on Hopper-v5 and HalfCheetah-v5
(0 = ES at the defaults, mean over seeds 0-4; 1 = the best fixed setting of the headroom grid), IQM over the two
tasks of seed 0: with one run per task, the mean of the two scores. Target: 0.8. This script scores the runs
**at the defaults** the same way, seed by seed: ES, and TPA (``es-tpa``, the probe's rule, bit for bit
``BiERL(meta="tpa")``). Where a run from the defaults falls below 0.8, the measure cannot reach 0.8 by
recovering from a bad start alone; the spread over seeds says how much one seed can say.

    python docs/benchmarks/robustness_seed_zero.py      # from the repository root

Runs read: ES in ``meta_level_runs`` (seeds 0-4, which also give the normalisation), the probe's ``more_seeds``
(5-7) and ``floor/fresh`` (8-11), ``settle`` (12-15); TPA in the probe's ``runs`` (0-4), ``more_seeds`` (5-7),
``floor/fresh_tpa`` (8-10) and ``settle`` (11-15); the robustness runs (seed 0, started 4 times off) in
``bold_driver_probe/robustness_runs`` (``tpa-*``) and ``meta_level_runs`` / ``meta_level_screening`` (``es-*``).
"""

from pathlib import Path

import numpy as np
from rliable import metrics

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import ROBUSTNESS_STARTS, at_defaults, final_returns, normalisation
from sb3_bierl.benchmarks.records import load_records

ENVS = ("Hopper-v5", "HalfCheetah-v5")
TARGET = 0.8
NORMALISATION_FOLDERS = ("docs/benchmarks/meta_level_runs", "docs/benchmarks/meta_level_screening/es_seed1")
PROBE = Path("docs/benchmarks/bold_driver_probe")
FOLDERS = (
    *NORMALISATION_FOLDERS,
    PROBE / "runs",
    PROBE / "more_seeds/runs",
    PROBE / "floor/fresh/runs",
    PROBE / "floor/fresh_tpa/runs",
    PROBE / "settle/runs",
    PROBE / "robustness_runs",
)


def seed_scores(table: dict, algo: str, norms: dict[str, tuple[float, float, str]]) -> dict[int, np.ndarray]:
    """:return: ``{seed: (n_tasks,) normalised scores}`` for the seeds ``algo`` has on every task of ``ENVS``"""
    seeds = set.intersection(*(set(table.get((env_id, algo), {})) for env_id in ENVS))
    return {
        seed: np.array([(table[(env_id, algo)][seed] - norms[env_id][0]) / (norms[env_id][1] - norms[env_id][0])
                        for env_id in ENVS])
        for seed in sorted(seeds)
    }


def main() -> None:
    normalising = final_returns([r for folder in NORMALISATION_FOLDERS for r in load_records(Path(folder))])
    norms = {env_id: normalisation(normalising, env_id) for env_id in ENVS}
    for env_id, (zero, one, best) in norms.items():
        print(f"{env_id}: score 0 = {zero:.1f} (ES at the defaults), 1 = {one:.1f} ({best})")
    table = final_returns([r for folder in FOLDERS if Path(folder).is_dir() for r in load_records(Path(folder))])

    rows, summary = [], []
    for algo in ("es", "es-tpa"):
        scores = seed_scores(table, algo, norms)
        per_seed = {seed: float(metrics.aggregate_iqm(s[None, :])) for seed, s in scores.items()}
        for seed, value in per_seed.items():
            rows.append([algo, str(seed), *(f"{x:.2f}" for x in scores[seed]), f"{value:.2f}"])
        matrix = np.stack(list(scores.values()))
        below = sum(value < TARGET for value in per_seed.values())
        summary.append([
            algo, f"{len(per_seed)}", f"{per_seed.get(0, float('nan')):.2f}", f"{below} of {len(per_seed)}",
            f"{min(per_seed.values()):.2f} to {max(per_seed.values()):.2f}", f"{metrics.aggregate_iqm(matrix):.2f}",
        ])
    print("\nAt the defaults, seed by seed (the robustness measure: mean of the two scores):\n")
    print("\n".join(markdown_table(["Algorithm", "Seed", *ENVS, "Measure"], rows)))
    print()
    print(markdown_table(
        ["At the defaults", "Seeds", "Seed 0 (the stage's seed)", f"Seeds below {TARGET}", "Range over seeds",
         "IQM over all seeds and both tasks"],
        summary,
    ))

    starts = [at_defaults(base, s, lr) for s, lr in ROBUSTNESS_STARTS for base in ("es", "tpa")]
    rows = []
    for algo in starts:
        scores = seed_scores(table, algo, norms)
        if 0 in scores:
            rows.append([algo, *(f"{x:.2f}" for x in scores[0]), f"{metrics.aggregate_iqm(scores[0][None, :]):.2f}"])
    print("\nStarted 4 times off, seed 0 (the stage as run):\n")
    print("\n".join(markdown_table(["Start", *ENVS, "Measure"], rows)))


if __name__ == "__main__":
    main()
