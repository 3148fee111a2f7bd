"""
Does a pre-trained meta controller transfer? (issue 10) On tasks the controller never saw in pre-training, at
equal environment steps (meta level included), several seeds, aggregated with rliable: BiERL warm-started from
the controller (``warm``), BiERL from scratch (``bierl``) and ES at its defaults (``es``). Optionally from starts
4 times off (``--starts``: ``s4``, ``s0.25``, ``lr4``, ``lr0.25``), where the controller can show that it
corrects a bad start.

Runs, names and files are those of ``python -m sb3_bierl.benchmarks.meta_level`` (the same budgets, evaluation
and records; ES and from-scratch runs of that benchmark can be copied into ``<out>/runs`` instead of being
rerun: the code reproduces them exactly). Each run's record is written when it ends: the benchmark resumes.

    python -m sb3_bierl.benchmarks.warm_start --controller pretrained --out bench_results/warm_start

The report (``<out>/results.md``) gives the final returns per task, the probability of improvement of each
comparison with 95% stratified-bootstrap intervals, and ``<out>/hyperparameters.png`` plots sigma and the
learning rate along the warm-started and the from-scratch runs.

``--meta tpa`` evaluates a pre-trained two-point rule instead (``python -m sb3_bierl.pretrain --meta tpa``): its runs
are ``warm_tpa`` (``BiERL(meta="tpa", meta_warm_start=...)``), against TPA as published (``tpa``) and ES.

``--controls es-s1.5-lr3`` also runs ES fixed at another setting (here sigma 0.03, learning rate 0.03, where the
controllers pre-trained so far go; ``--only controls`` runs only those) and compares the warm-started and
from-scratch runs at the defaults with it, in a section of its own: a controller that only moves to a better fixed
setting does not beat it.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import (
    DEFAULT_SEEDS,
    REFERENCE,
    SUITE_BUDGETS,
    TRAINER,
    algo_name,
    at_defaults,
    final_returns,
    is_grid_setting,
    normalisation,
    parse_algo,
    plot_hyperparameters,
    return_matrix,
    rliable_summary,
    score_matrix,
)
from sb3_bierl.benchmarks.records import load_records
from sb3_bierl.benchmarks.run_spec import RunSpec, run_specs
from sb3_bierl.meta.two_point_rule import read_rule_file
from sb3_bierl.meta.warm_start import read_controller_file, resolve_path
from sb3_bierl.pretraining.suite import HELD_OUT, KNOWN_TASKS

#: The default held-out tasks: one Box2D task and two MuJoCo locomotion tasks (the cheaper of ``HELD_OUT``)
DEFAULT_ENVS: tuple[str, ...] = ("LunarLanderContinuous-v3", "HalfCheetah-v5", "Hopper-v5")
#: Starts: ``(sigma factor, learning-rate factor)`` on ES's current defaults (run names: ``meta_level.at_defaults``)
STARTS: dict[str, tuple[float, float]] = {
    "defaults": (1.0, 1.0),
    "s4": (4.0, 1.0),
    "s0.25": (0.25, 1.0),
    "lr4": (1.0, 4.0),
    "lr0.25": (1.0, 0.25),
}


def start_name(base: str, start: str) -> str:
    """:return: the run name of ``base`` (``"warm"``, ``"bierl"`` or ``"es"``) from the start ``start`` (a key of :data:`STARTS`)"""
    return at_defaults(base, *STARTS[start])


#: The comparisons of the report: ``(x, y)`` for P(x > y), in roles (see :data:`META_BASES`)
COMPARISONS: tuple[tuple[str, str], ...] = (("warm", "bierl"), ("warm", "es"), ("bierl", "es"))
#: The run bases of each role, by the pre-trained meta level (``--meta``): the warm start, the same meta level from
#: scratch, ES. ``lstm``: the meta network (``BiERL(meta_warm_start=...)``); ``tpa``: a pre-trained two-point rule
#: (``BiERL(meta="tpa", meta_warm_start=...)``) against TPA as published
META_BASES: dict[str, dict[str, str]] = {
    "lstm": {"warm": "warm", "bierl": "bierl", "es": "es"},
    "tpa": {"warm": "warm_tpa", "bierl": "tpa", "es": "es"},
}


def check_controls(controls: Sequence[str], starts: Sequence[str] = ("defaults",)) -> list[str]:
    """
    :param controls: Run names of ES at fixed settings other than its defaults, in the canonical form of
        ``meta_level.algo_name`` (e.g. ``"es-s1.5-lr3"``: sigma x1.5, learning rate x3 of ``meta_level.REFERENCE``)
    :param starts: The starts of the evaluation (controls are compared with the runs at the defaults)
    :return: the names, each once, in order
    :raises ValueError: on a name that is not ES at another fixed setting with the default ``n_pairs``, a name not in
        canonical form (its runs would not be found under the canonical name), or controls without the start
        ``"defaults"``
    """
    for name in controls:
        base, sigma_factor, lr_factor = parse_algo(name)
        if not is_grid_setting(name):
            raise ValueError(
                f"A control is ES at a fixed setting other than its defaults, with the default n_pairs (e.g. "
                f"'es-s1.5-lr3'), got {name!r}"
            )
        if name != algo_name(base, sigma_factor, lr_factor):
            raise ValueError(f"Write the control {name!r} as {algo_name(base, sigma_factor, lr_factor)!r}")
    if controls and "defaults" not in starts:
        raise ValueError("Controls are compared with the runs at the defaults: add the start 'defaults'")
    return list(dict.fromkeys(controls))


def plan_runs(
    envs: Sequence[str],
    seeds: Sequence[int],
    starts: Sequence[str],
    eval_episodes: int,
    scale: float = 1.0,
    controls: Sequence[str] = (),
    meta: str = "lstm",
) -> list[RunSpec]:
    """
    :param envs: Held-out tasks (budgets: ``meta_level.SUITE_BUDGETS``, 300k steps for others)
    :param seeds: Seeds
    :param starts: Keys of :data:`STARTS`
    :param eval_episodes: Episodes of the final evaluation
    :param scale: Multiplier of the budgets
    :param controls: ES at fixed settings run beside the others (see :func:`check_controls`)
    :param meta: The pre-trained meta level (a key of :data:`META_BASES`)
    :return: the runs, seed by seed, the warm-started ones first, the controls (once per task and seed) last
    :raises ValueError: on a task the pre-training suite uses (not held out), an unknown start or a control that
        :func:`check_controls` refuses
    """
    trained_on = {task.env_id for task in KNOWN_TASKS}
    for env_id in envs:
        if env_id in trained_on:
            raise ValueError(f"{env_id} is a pre-training task, not a held-out one (held out: {HELD_OUT})")
    for start in starts:
        if start not in STARTS:
            raise ValueError(f"Unknown start {start!r}: choose among {list(STARTS)}")
    controls = check_controls(controls, starts)

    def spec(algo: str, env_id: str, seed: int) -> RunSpec:
        return RunSpec(algo, env_id, seed, max(1, round(SUITE_BUDGETS.get(env_id, 300_000) * scale)), eval_episodes)

    return [
        spec(algo, env_id, seed)
        for seed in seeds
        for algo in [start_name(base, start) for start in starts for base in META_BASES[meta].values()] + controls
        for env_id in envs
    ]


def rliable_section(
    table: dict[tuple[str, str], dict[int, float]],
    envs: Sequence[str],
    names: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    title: str,
    description: str = "",
) -> list[str]:
    """
    :param table: ``meta_level.final_returns`` of the records
    :param envs: Tasks, in the report's order
    :param names: Run names compared; a task counts if every one has runs there, a seed if every one has it on each
        counted task (each section has its own: a missing run of one name never narrows another section)
    :param pairs: ``(x, y)`` for P(x > y)
    :param title: Heading of the section
    :param description: A line under the heading
    :return: Markdown lines: the section (none if no task has runs of every name)
    """
    task_envs = [e for e in envs if all(table.get((e, a)) for a in names)]
    if not task_envs:
        return []
    seeds = sorted(set.intersection(*(set(table[(e, a)]) for e in task_envs for a in names)))
    returns = {a: return_matrix(table, a, task_envs, seeds) for a in names}
    normalised = [e for e in task_envs if normalisation(table, e) is not None]
    scores = {a: score_matrix(table, a, normalised, seeds) for a in names} if normalised else {}
    lines = [title, ""] + ([description, ""] if description else [])
    lines += [
        (
            f"Probability of improvement on {', '.join(task_envs)}, seeds {seeds}; normalised scores (0: ES at its "
            f"defaults, 1: the best fixed ES setting run, in the meta-level grid or the controls) on "
            f"{', '.join(normalised) or 'no task'}."
        ),
        "",
    ]
    try:
        lines += rliable_summary(scores, returns, pairs)
    except ImportError:
        lines += ['rliable is not installed: `pip install -e ".[benchmark]"`', ""]
    return lines


def make_report(
    records: Sequence[dict[str, Any]],
    starts: Sequence[str] = ("defaults",),
    controls: Sequence[str] = (),
    meta: str = "lstm",
) -> str:
    """
    :param records: Run records (``records.load_records``)
    :param starts: Keys of :data:`STARTS` to report
    :param controls: ES at fixed settings compared with at the defaults (see :func:`check_controls`)
    :param meta: The pre-trained meta level (a key of :data:`META_BASES`)
    :return: the Markdown report: final returns per task and algorithm, and the rliable comparisons per start
    """
    controls = list(dict.fromkeys(controls))
    table = final_returns(records)
    envs = [e for e in SUITE_BUDGETS if any(r["env"] == e for r in records)]
    envs += sorted({r["env"] for r in records} - set(envs))
    lines = ["# Held-out evaluation of the pre-trained meta controller", ""]
    controllers = {(r["warm_start"]["file"], r["warm_start"].get("commit")) for r in records if "warm_start" in r}
    for file, commit in sorted(controllers, key=str):
        lines.append(f"Controller: `{file}` (pre-trained at commit {commit}).")
    lines += ["", "Final return of the deterministic policy: mean over seeds (number of seeds in brackets).", ""]
    bases = META_BASES[meta]
    algos = [start_name(base, start) for start in starts for base in bases.values()] + list(controls)
    rows = []
    for algo in algos:
        cells = [
            f"{np.mean(list(table[(e, algo)].values())):.1f} ({len(table[(e, algo)])})" if table.get((e, algo)) else "–"
            for e in envs
        ]
        rows.append([algo, *cells])
    lines += markdown_table(["Algorithm", *envs], rows) + [""]
    for start in starts:
        names = [start_name(base, start) for base in bases.values()]
        pairs = [(start_name(bases[x], start), start_name(bases[y], start)) for x, y in COMPARISONS]
        lines += rliable_section(table, envs, names, pairs, f"## Start: {start} (rliable)")
        if start == "defaults" and controls:
            descriptions = []
            for control in controls:
                _, sigma_factor, lr_factor = parse_algo(control)
                sigma, learning_rate = REFERENCE["sigma"] * sigma_factor, REFERENCE["learning_rate"] * lr_factor
                descriptions.append(f"`{control}`: ES fixed at sigma {sigma:g}, learning rate {learning_rate:g}.")
            lines += rliable_section(
                table,
                envs,
                [bases["warm"], bases["bierl"], *controls],
                [(bases[role], control) for control in controls for role in ("warm", "bierl")],
                "### Against ES at other fixed settings (controls)",
                " ".join(descriptions),
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the held-out evaluation (or only rebuild its report). :return: 1 if a run failed, 130 if interrupted, else 0"""
    parser = argparse.ArgumentParser(
        prog="python -m sb3_bierl.benchmarks.warm_start", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--controller", default="pretrained", help="Controller file ('pretrained': the shipped one)")
    parser.add_argument(
        "--meta",
        default="lstm",
        choices=list(META_BASES),
        help="The pre-trained meta level: a meta network (lstm, runs 'warm' and 'bierl') or a two-point rule (tpa: "
        "runs 'warm_tpa' and 'tpa'; --controller is then a file of python -m sb3_bierl.pretrain --meta tpa)",
    )
    parser.add_argument(
        "--envs", nargs="+", default=list(DEFAULT_ENVS), help=f"Held-out tasks (among {HELD_OUT} or others)"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("--starts", nargs="+", default=["defaults"], choices=list(STARTS))
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        choices=["warm", "bierl", "es", "controls"],
        help="Run only these roles ('warm': the warm start, 'bierl': its meta level from scratch, 'es': at the starts' "
        "settings; 'controls': the --controls runs)",
    )
    parser.add_argument(
        "--controls",
        nargs="+",
        default=[],
        metavar="ES_RUN",
        help="ES at fixed settings compared with at the defaults, e.g. es-s1.5-lr3 (sigma x1.5, learning rate x3)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="Multiplier of the budgets")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Parallel runs")
    parser.add_argument("--out", type=Path, default=Path("bench_results/warm_start"))
    parser.add_argument("--report-only", action="store_true", help="Only rebuild results.md from the saved runs")
    parser.add_argument(
        "--no-progress-bar", action="store_true", help="One line per finished run instead of a progress bar"
    )
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.eval_episodes < 1 or args.workers < 1:
        parser.error("--scale must be positive; --eval-episodes and --workers at least 1")
    try:
        controls = check_controls(args.controls, args.starts)
        specs = plan_runs(args.envs, args.seeds, args.starts, args.eval_episodes, args.scale, controls, args.meta)
        if args.meta == "tpa":
            read_rule_file(args.controller)
        else:
            read_controller_file(args.controller)
        # "pretrained" stays a name (the records say the shipped controller); a path becomes absolute
        controller = (
            args.controller if args.controller == "pretrained" else str(resolve_path(args.controller).resolve())
        )
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    runs_dir = args.out / "runs"
    failures = 0
    if not args.report_only:
        roles = {base: role for role, base in META_BASES[args.meta].items()}
        kinds = {spec.algo: "controls" if spec.algo in controls else roles[parse_algo(spec.algo)[0]] for spec in specs}
        todo = [spec for spec in specs if not args.only or kinds[spec.algo] in args.only]
        failures, interrupted = run_specs(
            todo, args.out, args.workers, trainer=TRAINER, trainer_kwargs={"warm_start": controller},
            progress_bar=not args.no_progress_bar,
        )  # fmt: skip
        if interrupted:
            return 130
    # every run of these tasks and seeds: the meta-level benchmark's grid runs, if copied, give the normalisation
    records = [r for r in load_records(runs_dir) if r["env"] in args.envs and r["seed"] in args.seeds]
    report = make_report(records, args.starts, controls, args.meta)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(report)
    print(report)
    adaptive = (META_BASES[args.meta]["warm"], META_BASES[args.meta]["bierl"])
    planned = {spec.algo for spec in specs if parse_algo(spec.algo)[0] in adaptive}
    if plot_hyperparameters([r for r in records if r["algo"] in planned], args.out / "hyperparameters.png", adaptive):
        print(f"Wrote {args.out / 'hyperparameters.png'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
