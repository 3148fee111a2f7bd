"""
Issue 9's robustness measure over more than seed 0 (session 22).

The robustness stage scores a run started 4 times off by its normalised score on Hopper-v5 and HalfCheetah-v5
(0 = ES at the defaults, mean over seeds 0-4; 1 = the best fixed setting of the headroom grid), IQM over the two
tasks of seed 0 (one run per task: the mean of the two scores). Target: 0.8, and well above ES from the same start.

Part 1: the same measure for the runs **at the defaults**, seed by seed (ES; TPA, ``es-tpa``, bit for bit
``BiERL(meta="tpa")``): where a run from the defaults falls below 0.8, recovering from a bad start cannot reach it.

Part 2: the starts, each method on every seed it has from the start: ES from each start; TPA from it (the package's
``BiERL(meta="tpa")``, ``tpa-s4`` and so on; at the defaults the probe's ``es-tpa``, the same runs bit for bit); the
probes ``es-tpa-apn`` and ``es-tpa-apn-first`` (TPA with sigma set in the action space after every generation, and
before the first one too; session 22) and ``es-tpa-apn-once`` (before the first generation only; session 23). For each:
the IQM normalised score over its seeds x Hopper and HalfCheetah with rliable's stratified-bootstrap interval, the
same method's IQM **at the defaults on the same seeds** (what it reaches without the bad start), and P(method > ES from
the same start) over the stage's four tasks, on the seeds both have.

    python docs/benchmarks/robustness_over_seeds.py      # from the repository root

The normalisation is the stage's (from ``meta_level_runs`` and ``meta_level_screening/es_seed1``), whatever else is
read. Runs read: ES in ``meta_level_runs`` (seeds 0-4; from the starts seeds 0-1) and the probe's ``more_seeds``
(5-7), ``floor/fresh`` (8-11), ``settle`` (12-15), ``action_noise/es_starts`` (from the starts, seeds 1-2),
``apn_first/es_starts`` (from the starts, 3-7), ``band/es_starts`` (from the sigma starts 8-12, from the
learning-rate starts 5-12); TPA in the probe's ``runs`` (0-4), ``more_seeds`` (5-7),
``floor/fresh_tpa`` (8-10), ``settle`` (11-15), from the starts in ``robustness_runs`` (seed 0) and
``apn_first/tpa_starts`` (1-4), ``band/tpa_starts`` (from the sigma starts, 5-12); ``es-tpa-apn`` and ``es-tpa-apn-first`` in ``action_noise/runs`` (0-7; from the starts
0-2) and ``apn_first/runs`` (8-15; from the starts 3-7); ``es-tpa-apn-once`` in ``apn_once/runs``; session 24's
band rule (``tpa_apn_band``) in ``band/runs`` (from the four starts, 5-12).

Part 3: session 24's decision rule for the band rule (``meta_level.md``, session 24), with P against TPA from the same
start beside it (not in the rule).
"""

from pathlib import Path

import numpy as np
from rliable import metrics

from sb3_bierl.benchmarks.aggregates import interval_estimates
from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import (
    ROBUSTNESS_STARTS,
    at_defaults,
    final_returns,
    normalisation,
    return_matrix,
)
from sb3_bierl.benchmarks.records import load_records

#: The tasks of the normalised score, and the stage's four
ENVS = ("Hopper-v5", "HalfCheetah-v5")
STAGE_ENVS = ("Pendulum-v1", "Swimmer-v5", "Hopper-v5", "HalfCheetah-v5")
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
    PROBE / "action_noise/runs",
    PROBE / "action_noise/es_starts/runs",
    PROBE / "robustness_runs",
    PROBE / "apn_first/runs",
    PROBE / "apn_first/es_starts/runs",
    PROBE / "apn_first/tpa_starts/runs",
    PROBE / "apn_once/runs",
    PROBE / "band/runs",
    PROBE / "band/es_starts/runs",
    PROBE / "band/tpa_starts/runs",
)
#: Session 24's band rule (``BiERL(meta="tpa", meta_desired_action_stddev=0.06, meta_action_stddev_tolerance=2.0)``),
#: its seeds and its decision rule's thresholds (``meta_level.md``, session 24)
BAND, BAND_SEEDS = "tpa_apn_band", list(range(5, 13))
RULE_AGAINST_ES, RULE_AGAINST_DEFAULTS = 0.6, 0.4


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
    records = [r for folder in FOLDERS if Path(folder).is_dir() for r in load_records(Path(folder))]
    table = final_returns(records)

    print("\nPart 1. At the defaults, seed by seed (the stage's measure: the mean of the two scores):\n")
    rows, summary = [], []
    for algo in ("es", "es-tpa", "es-tpa-apn", "es-tpa-apn-first", "es-tpa-apn-once"):
        seeds = seeds_of(table, algo)
        if not seeds:
            continue
        scores = normalised(table, algo, seeds, norms)
        measure = scores.mean(axis=1)  # the IQM of two values is their mean
        rows += [[algo, str(seed), *(f"{x:.2f}" for x in s), f"{m:.2f}"] for seed, s, m in zip(seeds, scores, measure)]
        summary.append(
            [
                algo,
                str(len(seeds)),
                f"{measure[0]:.2f}" if seeds[0] == 0 else "–",
                f"{int(np.sum(measure < TARGET))} of {len(seeds)}",
                f"{measure.min():.2f} to {measure.max():.2f}",
                f"{metrics.aggregate_iqm(scores):.2f}",
            ]
        )
    print("\n".join(markdown_table(["Algorithm", "Seed", *ENVS, "Measure"], rows)))
    print()
    header = ["At the defaults", "Seeds", "Seed 0", f"Seeds below {TARGET}", "Range", "IQM over seeds and both tasks"]
    print("\n".join(markdown_table(header, summary)))

    print("\nPart 2. Started 4 times off, each method over the seeds it has from the start:\n")
    header = [
        "Start",
        "Method",
        "Seeds",
        "IQM from the start [95% CI]",
        "IQM at the defaults, same seeds",
        "P(> ES from the start) [95% CI]",
        "P(> TPA from the start) [95% CI]",
    ]
    rows = []
    for sigma_factor, lr_factor in [(1.0, 1.0), *ROBUSTNESS_STARTS]:
        es = at_defaults("es", sigma_factor, lr_factor)
        start = es.removeprefix("es")
        tpa = at_defaults("tpa", sigma_factor, lr_factor) if start else "es-tpa"
        for algo, default in (
            (es, "es"),
            (tpa, "es-tpa"),
            *((f"es{start}-tpa-apn{v}", f"es-tpa-apn{v}") for v in ("", "-first", "-once")),
            (f"{BAND}{start}", "es-tpa"),
        ):
            seeds = seeds_of(table, algo, STAGE_ENVS)
            if not seeds:
                continue
            scores = normalised(table, algo, seeds, norms)
            estimate, interval = interval_estimates({algo: scores}, metrics.aggregate_iqm)
            low, high = np.ravel(interval[algo])
            at_default = [seed for seed in seeds if seed in seeds_of(table, default)]
            reference = metrics.aggregate_iqm(normalised(table, default, at_default, norms)) if at_default else None
            cells = [
                start.lstrip("-") or "the defaults",
                algo,
                compact(seeds),
                f"{float(estimate[algo]):.2f} [{low:.2f}, {high:.2f}]",
                "–"
                if reference is None
                else f"{reference:.2f}" + ("" if at_default == seeds else f" ({compact(at_default)})"),
            ]
            for reference_algo in (es, tpa):  # P against ES and TPA from the same start, on the seeds both have
                cells.append(
                    improvement(table, algo, reference_algo, seeds) if algo not in (es, reference_algo) else "–"
                )
            rows.append(cells)
    print("\n".join(markdown_table(header, rows)))
    band_rule(table, norms, records)


def band_rule(table: dict, norms: dict[str, tuple[float, float, str]], records: list[dict]) -> None:
    """
    Part 3: session 24's decision rule for the band rule, on its seeds (5-12) and the stage's four tasks.

    :param records: The runs ``table`` was made from (the first generation's sigma is read from their traces)
    """
    print(
        f"\nPart 3. Session 24's rule: {BAND} from each start, seeds {compact(BAND_SEEDS)} (those it has), against ES "
        "from the same start and against itself at the defaults (TPA's runs, `es-tpa`), over the stage's four tasks; "
        "the sigma of its first generation (min to max over its runs):\n"
    )
    header = [
        "Start",
        "Seeds",
        "IQM from the start [95% CI]",
        "IQM at the defaults, same seeds",
        "P(> ES from the start) [95% CI]",
        f"Rule 1 (>= {RULE_AGAINST_ES})",
        "P(> at the defaults) [95% CI]",
        f"Rule 2 (>= {RULE_AGAINST_DEFAULTS})",
        "Sigma, first generation",
        "P(> TPA from the start) [95% CI] (not in the rule)",
    ]
    rows = []
    for sigma_factor, lr_factor in ROBUSTNESS_STARTS:
        es = at_defaults("es", sigma_factor, lr_factor)
        algo = BAND + es.removeprefix("es")
        seeds = [seed for seed in seeds_of(table, algo, STAGE_ENVS) if seed in BAND_SEEDS]
        if not seeds:
            continue
        scores = normalised(table, algo, seeds, norms)
        estimate, interval = interval_estimates({algo: scores}, metrics.aggregate_iqm)
        low, high = np.ravel(interval[algo])
        cells = [es.removeprefix("es-"), compact(seeds), f"{float(estimate[algo]):.2f} [{low:.2f}, {high:.2f}]"]
        cells.append(f"{metrics.aggregate_iqm(normalised(table, 'es-tpa', seeds, norms)):.2f}")
        for reference, threshold in ((es, RULE_AGAINST_ES), ("es-tpa", RULE_AGAINST_DEFAULTS)):
            unrounded, printed = probability_of_improvement(table, algo, reference, seeds)
            verdict = "met" if unrounded >= threshold else "missed"  # the unrounded estimate, not the printed one
            cells += [printed, f"{verdict} ({unrounded:.3f})"]
        sigmas = [
            r["trace"][0][r["trace_columns"].index("sigma")]
            for r in records
            if r["algo"] == algo and r["seed"] in seeds and r["env"] in STAGE_ENVS
        ]
        cells.append(f"{min(sigmas):.4f} to {max(sigmas):.4f}" if sigmas else "–")
        cells.append(improvement(table, algo, at_defaults("tpa", sigma_factor, lr_factor), seeds))
        rows.append(cells)
    print("\n".join(markdown_table(header, rows)))


def improvement(table: dict, algo: str, reference: str, seeds: list[int]) -> str:
    """:return: P(``algo`` > ``reference``) over the stage's four tasks on the seeds both have, with its interval"""
    return probability_of_improvement(table, algo, reference, seeds)[1]


def probability_of_improvement(table: dict, algo: str, reference: str, seeds: list[int]) -> tuple[float, str]:
    """
    :return: P(``algo`` > ``reference``) over the stage's four tasks on the seeds both have (nan without any), and
        as printed: rounded, with its interval and the seeds where they are not all of ``seeds`` ("–" without any)
    """
    both = [seed for seed in seeds if seed in seeds_of(table, reference, STAGE_ENVS)]
    if not both:
        return float("nan"), "–"
    pair = (return_matrix(table, algo, list(STAGE_ENVS), both), return_matrix(table, reference, list(STAGE_ENVS), both))
    estimate, interval = interval_estimates({"p": pair}, metrics.probability_of_improvement)
    p = float(np.ravel(estimate["p"])[0])
    low, high = np.ravel(interval["p"])[:2]
    return p, f"{p:.2f} [{low:.2f}, {high:.2f}]" + ("" if both == seeds else f" ({compact(both)})")


def compact(seeds: list[int]) -> str:
    """:return: ``"0-4"`` for ``[0, 1, 2, 3, 4]``, ``"0-2, 5"`` for ``[0, 1, 2, 5]``"""
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


if __name__ == "__main__":
    main()
