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

Part 4: session 25's rule for TPA's learning-rate bounds a factor 32 around the start (``tpa_wide``, in
``wide/runs``; ``meta_level.md``, session 25), and the restated robustness target for TPA and the band rule with
those bounds. Where the wider bounds cannot change a run, the run with a factor 8 stands for it; the script checks
that its learning rate never reached a factor 8 from its start (and, for the band rule's runs standing for TPA's,
that sigma stayed the given one) and says which runs stand for which.
"""

from pathlib import Path

import numpy as np
from rliable import metrics

from sb3_bierl.benchmarks.aggregates import interval_estimates
from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import (
    ROBUSTNESS_STARTS,
    algo_kwargs,
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
    PROBE / "wide/runs",
    PROBE / "wide/defaults_check/runs",
)
#: Session 24's band rule (``BiERL(meta="tpa", meta_desired_action_stddev=0.06, meta_action_stddev_tolerance=2.0)``),
#: its seeds and its decision rule's thresholds (``meta_level.md``, session 24)
BAND, BAND_SEEDS = "tpa_apn_band", list(range(5, 13))
RULE_AGAINST_ES, RULE_AGAINST_DEFAULTS = 0.6, 0.4
#: Session 25: TPA with its learning-rate bounds a factor 32 around the start, and the threshold of its rule
WIDE, WIDE_AGAINST_TPA = "tpa_wide", 0.5


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
    wide_rule(table, norms, records)


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


def wide_rule(table: dict, norms: dict[str, tuple[float, float, str]], records: list[dict]) -> None:
    """
    Part 4: session 25's rule for ``tpa_wide`` (seeds 5-12, the stage's four tasks), its check at the defaults, and
    the restated robustness target for TPA and the band rule with the wider bounds.

    :param records: The runs ``table`` was made from (the traces say which runs the wider bounds could not change)
    """
    seeds = BAND_SEEDS
    print(f"\nPart 4. Session 25's rule: {WIDE} (learning-rate bounds a factor 32 around the start) against TPA")
    print(f"(a factor 8) from the same start, seeds {compact(seeds)}, the stage's four tasks:\n")
    # at lr / 4 TPA's runs are the band rule's (it left sigma alone there), at sigma x4 the package's tpa-s4
    rows = []
    for start, reference in (("-lr0.25", f"{BAND}-lr0.25"), ("-s4", "tpa-s4")):
        have = [seed for seed in seeds if seed in seeds_of(table, WIDE + start, STAGE_ENVS)]
        unrounded, printed = probability_of_improvement(table, WIDE + start, reference, have)
        verdict = "met" if unrounded >= WIDE_AGAINST_TPA else "missed"
        check = f"sigma as given: {sigma_as_given(records, reference, have)}" if reference.startswith(BAND) else "–"
        cells = [start.lstrip("-"), f"{WIDE}{start} vs {reference}", compact(have), check, printed]
        rows.append([*cells, f"{verdict} ({unrounded:.3f})"])
    header = ["Start", "Runs", "Seeds", "Checks", "P(wide > TPA) [95% CI]", f"Rule (>= {WIDE_AGAINST_TPA})"]
    print("\n".join(markdown_table(header, rows)))
    # the rule's check compares with es-tpa, run on an earlier session's machine; the package's TPA ran beside
    # tpa_wide on this one (``wide/defaults_check``)
    for reference in ("es-tpa", "tpa"):
        check = [
            (env_id, table.get((env_id, WIDE), {}).get(5), table.get((env_id, reference), {}).get(5))
            for env_id in STAGE_ENVS
        ]
        same = all(wide is not None and wide == other for _, wide, other in check)
        print(f"\nCheck at the defaults, seed 5: {WIDE} equals {reference} on all four tasks: {same}")
        print("; ".join(f"{env_id} {wide:.1f} vs {other:.1f}" for env_id, wide, other in check))

    print("\nThe restated robustness target with the wider bounds (P against ES from the start >= 0.6, against")
    print("the method at the defaults, es-tpa, >= 0.4), and the runs that stand for each method:\n")
    stand_ins = {  # start -> (TPA with the wider bounds, the band rule with them)
        "-s0.25": ("tpa-s0.25", f"{BAND}-s0.25"),
        "-s4": (f"{WIDE}-s4", f"{BAND}-s4"),
        "-lr0.25": (f"{WIDE}-lr0.25", f"{WIDE}-lr0.25"),
        "-lr4": (f"{BAND}-lr4", f"{BAND}-lr4"),
    }
    rows = []
    for start, algos in stand_ins.items():
        es = "es" + start
        for method, algo in zip(("TPA", "band"), algos):
            have = [seed for seed in seeds if seed in seeds_of(table, algo, STAGE_ENVS)]
            checks = []
            if not algo.startswith(WIDE):
                checks.append(f"lr within x8: {never_reached_a_factor_8(records, algo, have)}")
            if method == "TPA" and algo.startswith(BAND):
                checks.append(f"sigma as given: {sigma_as_given(records, algo, have)}")
            cells = [start.lstrip("-"), method, algo, compact(have), "; ".join(checks) or "–"]
            for reference, threshold in ((es, RULE_AGAINST_ES), ("es-tpa", RULE_AGAINST_DEFAULTS)):
                unrounded, printed = probability_of_improvement(table, algo, reference, have)
                cells += [printed, "met" if unrounded >= threshold else f"missed ({unrounded:.3f})"]
            rows.append(cells)
    header = ["Start", "Method", "Runs", "Seeds", "Checks", "P(> ES from the start)", ">= 0.6", "P(> es-tpa)", ">= 0.4"]
    print("\n".join(markdown_table(header, rows)))
    twice_the_budget(table, records)


def twice_the_budget(table: dict, records: list[dict]) -> None:
    """
    Session 25's diagnostic: from lr / 4 against the defaults on the two 18-generation tasks, at the stage's budgets
    (``table``, made from ``records``) and at twice them (``wide/scale2``, its own table: the names are the same),
    seeds 5-12.
    """
    envs, seeds = ("Swimmer-v5", "HalfCheetah-v5"), BAND_SEEDS
    doubled_records = load_records(PROBE / "wide/scale2/runs")
    if not doubled_records:
        return
    doubled = final_returns(doubled_records)
    print(f"\nPart 5. From lr / 4 against the defaults on {' and '.join(envs)}, seeds {compact(seeds)}, at the")
    print("stage's budgets (18 generations) and at twice them (36); the learning rate: its median over the runs at the")
    print("last generation, and the generation it first reaches 0.0075, median [range]:\n")
    rows = []
    for budget, runs, run_records, cases in (
        ("1x", table, records, ((f"{BAND}-lr0.25", "es-tpa"), (f"{WIDE}-lr0.25", "es-tpa"))),
        ("2x", doubled, doubled_records, (("tpa-lr0.25", "tpa"), (f"{WIDE}-lr0.25", "tpa"))),
    ):
        for algo, reference in cases:
            have = [seed for seed in seeds if seed in seeds_of(runs, algo, envs)]
            if not have:
                continue
            printed = probability_of_improvement(runs, algo, reference, have, envs)[1]
            climb = learning_rate_climb(run_records, algo, have, envs)
            rows.append([budget, f"{algo} vs {reference}", compact(have), printed, climb])
    print("\n".join(markdown_table(["Budget", "Runs", "Seeds", "P [95% CI]", "Learning rate"], rows)))


def learning_rate_climb(records: list[dict], algo: str, seeds: list[int], envs: tuple[str, ...]) -> str:
    """:return: the median last learning rate of ``algo``'s runs and the generation each first reaches 0.0075"""
    ends, firsts = [], []
    for r in runs_of(records, algo, seeds, envs):
        rates = trace_column(r, "learning_rate")
        ends.append(rates[-1])
        reached = np.nonzero(rates >= 0.0075)[0]
        firsts.append(int(reached[0]) + 1 if reached.size else None)
    found = [g for g in firsts if g is not None]
    never = len(firsts) - len(found)
    return (
        f"last {np.median(ends):.4f}; 0.0075 at {np.median(found):g} [{min(found)}, {max(found)}]"
        + (f", {never} never" if never else "")
        + f" ({len(firsts)} runs)"
    )


def never_reached_a_factor_8(records: list[dict], algo: str, seeds: list[int]) -> str:
    """:return: ``"k of n"``: of ``algo``'s runs (stage tasks, ``seeds``), how many kept the learning rate strictly
    inside a factor 8 of its start (such a run is the same with a factor 32)"""
    runs = runs_of(records, algo, seeds)
    inside = 0
    for r in runs:
        rates = trace_column(r, "learning_rate")
        start = rates[0]
        inside += bool(np.all((rates > start / 8 * (1 + 1e-9)) & (rates < start * 8 * (1 - 1e-9))))
    return f"{inside} of {len(runs)}"


def sigma_as_given(records: list[dict], algo: str, seeds: list[int]) -> str:
    """:return: ``"k of n"``: of ``algo``'s runs, how many ran every generation at the sigma of their name"""
    runs, sigma = runs_of(records, algo, seeds), algo_kwargs(algo)["sigma"]
    given = sum(bool(np.all(trace_column(r, "sigma") == sigma)) for r in runs)
    return f"{given} of {len(runs)}"


def runs_of(records: list[dict], algo: str, seeds: list[int], envs: tuple[str, ...] = STAGE_ENVS) -> list[dict]:
    """:return: ``algo``'s runs on ``envs`` (the stage's four tasks) with a seed among ``seeds``"""
    return [r for r in records if r["algo"] == algo and r["seed"] in seeds and r["env"] in envs]


def trace_column(record: dict, name: str) -> np.ndarray:
    """:return: (generations,) the run's per-generation ``name`` (a column of its trace, e.g. ``"learning_rate"``)"""
    column = record["trace_columns"].index(name)
    return np.array([row[column] for row in record["trace"]])


def improvement(table: dict, algo: str, reference: str, seeds: list[int]) -> str:
    """:return: P(``algo`` > ``reference``) over the stage's four tasks on the seeds both have, with its interval"""
    return probability_of_improvement(table, algo, reference, seeds)[1]


def probability_of_improvement(
    table: dict, algo: str, reference: str, seeds: list[int], envs: tuple[str, ...] = STAGE_ENVS
) -> tuple[float, str]:
    """
    :return: P(``algo`` > ``reference``) over ``envs`` (the stage's four tasks) on the seeds both have (nan without
        any), and as printed: rounded, with its interval and the seeds where they are not all of ``seeds`` ("–"
        without any)
    """
    both = [seed for seed in seeds if seed in seeds_of(table, reference, envs)]
    if not both:
        return float("nan"), "–"
    pair = (return_matrix(table, algo, list(envs), both), return_matrix(table, reference, list(envs), both))
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
