"""
Session 25, offline: would a faster two-point climb while the tests agree bring a learning rate 4 times too small to
the default sooner, and at what cost in noise at the defaults? (``docs/benchmarks/meta_level.md``, session 25)

From each run's trace the cumulated test is recovered, ``s_t = d log(lr_{t+1} / lr_t)`` (d = 4; a step clipped by the
bounds or the step radius reads smaller), and replayed open loop (the same ``s`` sequence, as if moving the rate
faster did not change the tests) with the damping divided by ``g(|s|) = 1 + (k - 1) max(0, |s| - t) / (1 - t)``:
TPA for ``k = 1``; faster only while ``|s|`` is above ``t``. Printed: the median generation at which the replayed
rate from lr / 4 (``tpa_wide-lr0.25``, the stage's four tasks, seeds 5-12) first reaches 3 times its start (0.0075),
and the standard deviation of the per-generation log step of TPA at the defaults (``es-tpa``, seeds 0-7) after
generation 12, where the rate mostly wanders.

    python docs/benchmarks/bold_driver_probe/wide/climb_speed.py      # from the repository root
"""

from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.records import load_records

PROBE = Path("docs/benchmarks/bold_driver_probe")
ENVS = ("Pendulum-v1", "Swimmer-v5", "Hopper-v5", "HalfCheetah-v5")
DAMPING = 4.0
VARIANTS = ((1.0, 1.0), (0.5, 4.0), (0.4, 4.0), (0.3, 4.0), (0.5, 8.0))  # (t, k); (1, 1) is TPA


def cumulated_tests(folders: list[Path], algo: str) -> list[np.ndarray]:
    """:return: per run of ``algo`` on ``ENVS``, the ``s`` of each generation read back from its learning rates"""
    tests = []
    for folder in folders:
        for r in load_records(folder):
            if r["algo"] == algo and r["env"] in ENVS:
                rates = np.array([row[r["trace_columns"].index("learning_rate")] for row in r["trace"]])
                tests.append(DAMPING * np.log(rates[1:] / rates[:-1]))
    return tests


def speedup(s: np.ndarray, threshold: float, k: float) -> np.ndarray:
    """:return: ``g(|s|)``, the factor the damping is divided by (1 for ``k = 1``: TPA)"""
    if k == 1.0:
        return np.ones_like(s)
    return 1.0 + (k - 1.0) * np.clip((np.abs(s) - threshold) / (1.0 - threshold), 0.0, None)


def main() -> None:
    climbs = cumulated_tests([PROBE / "wide/runs"], "tpa_wide-lr0.25")
    defaults = cumulated_tests([PROBE / "runs", PROBE / "more_seeds/runs"], "es-tpa")
    print(f"{len(climbs)} runs from lr / 4, {len(defaults)} at the defaults\n")
    print("| t | k | generation reaching 0.0075 from lr / 4: median [quartiles] | log-step std at the defaults |")
    print("|---|---|---|---|")
    for threshold, k in VARIANTS:
        generations = []
        for s in climbs:
            log_rate = np.cumsum(s * speedup(s, threshold, k) / DAMPING)
            reached = np.nonzero(log_rate >= np.log(3.0))[0]
            generations.append(reached[0] + 2 if reached.size else np.inf)  # s_t sets generation t + 2's rate
        noise = np.std(np.concatenate([(s * speedup(s, threshold, k) / DAMPING)[12:] for s in defaults]))
        q1, median, q3 = np.percentile(generations, [25, 50, 75])
        print(f"| {threshold:g} | {k:g} | {median:g} [{q1:g}, {q3:g}] | {noise:.3f} |")


if __name__ == "__main__":
    main()
