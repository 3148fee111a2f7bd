"""
The pre-registered out-of-sample test of the per-task oracle ([`preregistration.md`](preregistration.md)): the
configuration :mod:`ceiling` picked per task in hindsight on seeds 0-4, run on fresh seeds 5-9, against TPA from
scratch and ES at the defaults run on the same seeds, machine and commit.

    # the runs: 75, 1.5 CPU hours (04:24-05:21 UTC with two processes on this project's 2-core machine, commit 46ae0b0)
    E="LunarLanderContinuous-v3 Swimmer-v5 Hopper-v5 HalfCheetah-v5 Ant-v5"; S="5 6 7 8 9"
    P="python docs/benchmarks/bold_driver_probe/probe.py"; export PYTHONPATH=docs/benchmarks/bold_driver_probe
    $P --rules es-tpa --envs $E --seeds $S --workers 1 --out oos/tpa
    python -m sb3_bierl.benchmarks.meta_level --algos es --envs $E --seeds $S --workers 1 --out oos/es
    python -m sb3_bierl.benchmarks.warm_start --meta lstm --only warm --envs LunarLanderContinuous-v3 --seeds $S \\
        --controller docs/benchmarks/pretraining_gain_std_run/controller.pt --workers 1 --out oos/net13
    python -m sb3_bierl.benchmarks.warm_start --meta lstm --only warm --envs Swimmer-v5 --seeds $S \\
        --controller pretrained --workers 1 --out oos/net7
    $P --rules es-tpa-step --envs Hopper-v5 --seeds $S --workers 1 --out oos/rules
    $P --rules es-tpa-apn-first --envs HalfCheetah-v5 --seeds $S --workers 1 --out oos/rules
    $P --rules es-bdr --envs Ant-v5 --seeds $S --workers 1 --out oos/rules
    for d in tpa es net13 net7 rules; do mkdir -p docs/benchmarks/warm_start_ceiling/runs/$d; \\
        cp oos/$d/runs/*.json docs/benchmarks/warm_start_ceiling/runs/$d/; done
    python docs/benchmarks/warm_start_ceiling/out_of_sample.py   # writes results_out_of_sample.md here
    # the replication (preregistration.md, addendum): the picks' and TPA's commands with S="10 11 12 13 14", their
    # runs copied into the same folders; the report adds them (whole seeds only)
"""

import sys
from pathlib import Path

import numpy as np
from rliable import metrics

from sb3_bierl.benchmarks.aggregates import improvement_probability
from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS, final_returns, return_matrix
from sb3_bierl.benchmarks.records import load_records

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
SEEDS = [5, 6, 7, 8, 9]
#: The replication's seeds (preregistration.md, addendum): a seed counts when the picks and TPA have all five tasks
REPLICATION_SEEDS = [10, 11, 12, 13, 14]
#: task -> (folder under ``runs/``, algorithm name in its records, (key, text) its runs' ``warm_start[key]``
#: must contain, or None)
PICKS = {
    "LunarLanderContinuous-v3": (
        "net13",
        "warm",
        ("file", "pretraining_gain_std_run/controller.pt"),
    ),  # session 13's network
    "Swimmer-v5": ("net7", "warm", ("file", "pretrained")),  # session 7's shipped network
    "Hopper-v5": ("rules", "es-tpa-step", None),
    "HalfCheetah-v5": ("rules", "es-tpa-apn-first", None),
    "Ant-v5": ("rules", "es-bdr", None),
}
ENVS = [env for env in SUITE_BUDGETS if env in PICKS]
#: The same seeds of TPA from scratch run in earlier sessions on other machines (a drift check, not the test)
EARLIER_TPA = ["bold_driver_probe/more_seeds/runs", "bold_driver_probe/floor/fresh_tpa/runs"]


def runs_of(
    folder: Path, algo: str, env_id: str, warm_start: tuple[str, str] | None = None, seeds: list[int] = SEEDS
) -> list[float]:
    """
    :param folder: A folder of run records
    :param algo: The algorithm's name in them
    :param env_id: The task
    :param warm_start: ``(key, text)``: the pre-trained file's record in its runs must contain ``text`` at ``key``
        (None: no check)
    :param seeds: The seeds wanted
    :return: their final returns, in order
    :raises ValueError: if a run is missing, has another budget or evaluation, or another pre-trained file
    """
    found = {}
    for record in load_records(folder):
        if record["algo"] != algo or record["env"] != env_id or record["seed"] not in seeds:
            continue
        if record["n_timesteps"] != SUITE_BUDGETS[env_id] or record["eval_episodes"] != 10:
            raise ValueError(f"{folder}: {algo} {env_id} seed {record['seed']} is not at the suite's budget")
        if warm_start is not None and warm_start[1] not in str(record.get("warm_start", {}).get(warm_start[0])):
            raise ValueError(f"{folder}: {algo} {env_id} seed {record['seed']} did not start from {warm_start}")
        found[record["seed"]] = record["final_return"]
    if sorted(found) != sorted(seeds):
        raise ValueError(f"{folder}: {algo} {env_id} has seeds {sorted(found)}, not {seeds}")
    return [found[seed] for seed in seeds]


def matrix(folder: Path, algo: str, seeds: list[int] = SEEDS) -> np.ndarray:
    """:return: (n_seeds, n_tasks) final returns of ``algo`` in ``folder`` on :data:`ENVS`"""
    return np.array([runs_of(folder, algo, env_id, seeds=seeds) for env_id in ENVS]).T


def picks_matrix(seeds: list[int] = SEEDS) -> np.ndarray:
    """:return: (n_seeds, n_tasks) final returns of each task's pick (:data:`PICKS`) on :data:`ENVS`"""
    return np.array([runs_of(RUNS / PICKS[env][0], PICKS[env][1], env, PICKS[env][2], seeds) for env in ENVS]).T


def replication_seeds() -> list[int]:
    """:return: the seeds of :data:`REPLICATION_SEEDS` where the picks and TPA have finished all five tasks"""
    complete = []
    for seed in REPLICATION_SEEDS:
        try:
            picks_matrix([seed]), matrix(RUNS / "tpa", "es-tpa", [seed])
        except ValueError:
            continue
        complete.append(seed)
    return complete


def improvement_line(label: str, x: np.ndarray, y: np.ndarray) -> tuple[str, float, float]:
    """
    :param label: The row's label
    :param x: (n_seeds, n_tasks) final returns of X on :data:`ENVS`
    :param y: (n_seeds, n_tasks) final returns of Y
    :return: a Markdown row of P(X > Y) per task and over the tasks (rliable), the latter's estimate and lower end
    """
    per_task = [float(metrics.probability_of_improvement(x[:, [k]], y[:, [k]])) for k in range(len(ENVS))]
    p, low, high = improvement_probability(x, y)
    return f"| {label} | {' | '.join(f'{v:.2f}' for v in per_task)} | **{p:.2f} [{low:.2f}, {high:.2f}]** |", p, low


def mean_line(label: str, x: np.ndarray) -> str:
    """:return: a Markdown row of ``x``'s (n_seeds, n_tasks) mean per task"""
    return f"| {label} | {' | '.join(f'{v:.1f}' for v in x.mean(axis=0))} |"


def replication_lines(short: list[str]) -> list[str]:
    """:return: Markdown lines: P(picks > TPA) on the replication's seeds and on all the seeds (not a decision)"""
    seeds = replication_seeds()
    if not seeds:
        return []
    lines = [
        "",
        f"## Replication (seeds {', '.join(map(str, seeds))}; reported, not decided on: preregistration.md, addendum)",
        "",
        f"| P(the picks > TPA from scratch) | {' | '.join(short)} | all five [95% CI] |",
        "|---|" + "---|" * (len(ENVS) + 1),
    ]
    for label, chosen in ((f"seeds {seeds[0]}-{seeds[-1]}", seeds), (f"seeds 5-{seeds[-1]}", SEEDS + seeds)):
        lines.append(improvement_line(label, picks_matrix(chosen), matrix(RUNS / "tpa", "es-tpa", chosen))[0])
    lines += ["", f"| mean over seeds {seeds[0]}-{seeds[-1]} | {' | '.join(short)} |", "|---|" + "---|" * len(ENVS)]
    lines += [
        mean_line("the pick", picks_matrix(seeds)),
        mean_line("TPA from scratch", matrix(RUNS / "tpa", "es-tpa", seeds)),
    ]
    return lines


def main() -> int:
    picks = picks_matrix()
    tpa, es = matrix(RUNS / "tpa", "es-tpa"), matrix(RUNS / "es", "es")
    earlier = final_returns([r for folder in EARLIER_TPA for r in load_records(HERE.parent / folder)])
    earlier_tpa = return_matrix(earlier, "es-tpa", ENVS, SEEDS)
    short = [env.split("-")[0].replace("Continuous", "") for env in ENVS]
    lines = [
        "# The per-task oracle out of sample (seeds 5-9)",
        "",
        (
            "Built by `python docs/benchmarks/warm_start_ceiling/out_of_sample.py` from the runs in `runs/` (the "
            "pre-registered test of [`preregistration.md`](preregistration.md)). rliable's probability of improvement, "
            "95% stratified-bootstrap interval (2000 resamples)."
        ),
        "",
        f"| P(X > Y) | {' | '.join(short)} | all five [95% CI] |",
        "|---|" + "---|" * (len(ENVS) + 1),
    ]
    comparisons = [
        ("the oracle's picks > TPA from scratch", picks, tpa),
        ("the oracle's picks > ES at the defaults", picks, es),
        ("TPA from scratch > ES at the defaults", tpa, es),
        ("TPA here > TPA of earlier sessions, same seeds (drift check)", tpa, earlier_tpa),
    ]
    rows = [improvement_line(label, x, y) for label, x, y in comparisons]
    lines += [line for line, _, _ in rows]
    _, p, low = rows[0]
    held = p >= 0.6 and low > 0.5  # the pre-registered rule (the target says "above 0.6")
    lines += [
        "",
        "**Pre-registered rule** (P(picks > TPA) at least 0.6, lower end above 0.5): "
        + (
            "**met**: the per-task differences hold out of sample."
            if held
            else "**not met**: the picks do not beat TPA from scratch out of sample."
        ),
    ]
    lines += ["", f"| mean over seeds 5-9 | {' | '.join(short)} |", "|---|" + "---|" * len(ENVS)]
    names = [
        ("the pick", picks),
        ("TPA from scratch", tpa),
        ("ES at the defaults", es),
        ("TPA, earlier sessions", earlier_tpa),
    ]
    lines += [mean_line(label, x) for label, x in names]
    lines += replication_lines(short)
    text = "\n".join(lines) + "\n"
    (HERE / "results_out_of_sample.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
