"""
Issue 9's robustness measure over more than seed 0 (session 22).

The robustness stage scores a run started 4 times off by its normalised score on Hopper-v5 and HalfCheetah-v5
(0 = ES at the defaults, mean over seeds 0-4; 1 = the best fixed setting of the headroom grid), IQM over the two
tasks of seed 0 (one run per task: the mean of the two scores). Target: 0.8, and well above ES from the same start.

Part 1: the same measure for the runs **at the defaults**, seed by seed (ES; TPA, ``es-tpa``, bit for bit
``BiERL(meta="tpa")``): where a run from the defaults falls below 0.8, recovering from a bad start cannot reach it.

Part 2: the starts over seeds 0-2: ES from each start, the probes ``es-tpa-apn`` and ``es-tpa-apn-first`` (TPA with
sigma set in the action space after every generation, and before the first one too; session 22) from the same start
where they ran, and the same at the defaults on the same seeds (with ``es-tpa``); IQM normalised score with
rliable's stratified-bootstrap interval (3 seeds x 2 tasks), and P(rule > ES from the same start) over the stage's
four tasks.

    python docs/benchmarks/robustness_over_seeds.py      # from the repository root

The normalisation is the stage's (from ``meta_level_runs`` and ``meta_level_screening/es_seed1``), whatever else is
read. Runs read: ES in ``meta_level_runs`` (seeds 0-4; from the starts seeds 0-1) and the probe's ``more_seeds``
(5-7), ``floor/fresh`` (8-11), ``settle`` (12-15), ``action_noise/es_starts`` (from the starts, seeds 1-2); TPA in
the probe's ``runs`` (0-4), ``more_seeds`` (5-7), ``floor/fresh_tpa`` (8-10), ``settle`` (11-15); ``es-tpa-apn``
from the defaults and the starts in ``action_noise/runs``.
"""

from pathlib import Path

import numpy as np
from rliable import metrics

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import (
    ROBUSTNESS_STARTS,
    at_defaults,
    final_returns,
    normalisation,
    return_matrix,
    rliable_summary,
)
from sb3_bierl.benchmarks.records import load_records

#: The tasks of the normalised score, and the stage's four
ENVS = ("Hopper-v5", "HalfCheetah-v5")
STAGE_ENVS = ("Pendulum-v1", "Swimmer-v5", "Hopper-v5", "HalfCheetah-v5")
TARGET = 0.8
#: The seeds of part 2
SEEDS = [0, 1, 2]
NORMALISATION_FOLDERS = ("docs/benchmarks/meta_level_runs", "docs/benchmarks/meta_level_screening/es_seed1")
PROBE = Path("docs/benchmarks/bold_driver_probe")
FOLDERS = (
    *NORMALISATION_FOLDERS,
    PROBE / "runs",
    PROBE / "more_seeds/runs",
    PROBE / "floor/fresh/runs",
    PROBE / "floor/fresh_tpa/runs",
    PROBE / "settle/runs",
    PROBE / "action_noise/runs",
    PROBE / "action_noise/es_starts/runs",
)


def normalised(table: dict, algo: str, seeds: list[int], norms: dict[str, tuple[float, float, str]]) -> np.ndarray:
    """:return: (len(seeds), len(ENVS)) normalised scores of ``algo``"""
    zero = np.array([norms[env_id][0] for env_id in ENVS])
    one = np.array([norms[env_id][1] for env_id in ENVS])
    return (return_matrix(table, algo, list(ENVS), seeds) - zero) / (one - zero)


def seeds_of(table: dict, algo: str, envs: tuple[str, ...] = ENVS) -> list[int]:
    """:return: the seeds ``algo`` has on every task of ``envs``"""
    return sorted(set.intersection(*(set(table.get((env_id, algo), {})) for env_id in envs)))


def main() -> None:
    normalising = final_returns([r for folder in NORMALISATION_FOLDERS for r in load_records(Path(folder))])
    norms = {env_id: normalisation(normalising, env_id) for env_id in ENVS}
    for env_id, (zero, one, best) in norms.items():
        print(f"{env_id}: score 0 = {zero:.1f} (ES at the defaults), 1 = {one:.1f} ({best})")
    table = final_returns([r for folder in FOLDERS if Path(folder).is_dir() for r in load_records(Path(folder))])

    print("\nPart 1. At the defaults, seed by seed (the stage's measure: the mean of the two scores):\n")
    rows, summary = [], []
    for algo in ("es", "es-tpa", "es-tpa-apn"):
        seeds = seeds_of(table, algo)
        if not seeds:
            continue
        scores = normalised(table, algo, seeds, norms)
        measure = scores.mean(axis=1)  # the IQM of two values is their mean
        rows += [[algo, str(seed), *(f"{x:.2f}" for x in s), f"{m:.2f}"] for seed, s, m in zip(seeds, scores, measure)]
        summary.append([
            algo, str(len(seeds)), f"{measure[0]:.2f}" if seeds[0] == 0 else "–",
            f"{int(np.sum(measure < TARGET))} of {len(seeds)}", f"{measure.min():.2f} to {measure.max():.2f}",
            f"{metrics.aggregate_iqm(scores):.2f}",
        ])
    print("\n".join(markdown_table(["Algorithm", "Seed", *ENVS, "Measure"], rows)))
    print()
    header = ["At the defaults", "Seeds", "Seed 0", f"Seeds below {TARGET}", "Range", "IQM over seeds and both tasks"]
    print("\n".join(markdown_table(header, summary)))

    print(f"\nPart 2. Started 4 times off, seeds {SEEDS} (IQM over seeds x {', '.join(ENVS)}):\n")
    for sigma_factor, lr_factor in [(1.0, 1.0), *ROBUSTNESS_STARTS]:
        es = at_defaults("es", sigma_factor, lr_factor)
        start = es.removeprefix("es")
        rule = f"es{start}-tpa-apn"
        candidates = [es, rule, f"{rule}-first"] + (["es-tpa"] if not start else [])
        present = [a for a in candidates if set(SEEDS) <= set(seeds_of(table, a, STAGE_ENVS))]
        if len(present) < 2:
            print(f"{start or 'the defaults'}: not all of {candidates} have seeds {SEEDS}\n")
            continue
        scores = {a: normalised(table, a, SEEDS, norms) for a in present}
        returns = {a: return_matrix(table, a, list(STAGE_ENVS), SEEDS) for a in present}
        print(f"From {start.lstrip('-') or 'the defaults'}:\n")
        print("\n".join(rliable_summary(scores, returns, [(a, es) for a in present if a != es])))


if __name__ == "__main__":
    main()
