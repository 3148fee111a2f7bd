"""
The command line, ``python -m sb3_bierl.benchmarks.head_to_head CONFIG [--jobs N] [--dry-run] [--report-only]
[--log-folder DIR] [--no-progress-bar]``: plan what is done and what is left, print or train the runs, then write
``results.md`` and the plots. (Here rather than in ``__main__.py``, which the package cannot import without ``python -m``
warning that the module was imported before it ran.)
"""

import argparse
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sb3_bierl.benchmarks.head_to_head.commands import train_command
from sb3_bierl.benchmarks.head_to_head.config import BenchmarkConfig, ConfigError, Run, expand_runs, load_config
from sb3_bierl.benchmarks.head_to_head.hyperparams import HyperparamsSource, resolve_hyperparameters
from sb3_bierl.benchmarks.head_to_head.plots import collect_curves, plot_curves
from sb3_bierl.benchmarks.head_to_head.records import adopt_zoo_run, is_done, read_record, settings_match, write_record
from sb3_bierl.benchmarks.head_to_head.report import make_report
from sb3_bierl.benchmarks.head_to_head.running import run_all
from sb3_bierl.benchmarks.head_to_head.scores import normalised_scores, plot_performance_profile

STEPS_PLOT = "learning_curves_steps.png"
WALLCLOCK_PLOT = "learning_curves_wallclock.png"
CPU_PLOT = "learning_curves_cpu.png"
PROFILE_PLOT = "performance_profile.png"


def collect_records(config: BenchmarkConfig, runs: Sequence[Run]) -> dict[Run, dict[str, Any]]:
    """:return: The current record of every run that has one matching the current settings"""
    records = {}
    for run in runs:
        record = read_record(config.log_folder, run)
        if record is not None and settings_match(record, run, config):
            records[run] = record
    return records


def write_outputs(
    config: BenchmarkConfig,
    records: Mapping[Run, Mapping[str, Any]],
    sources: Mapping[tuple[str, str], HyperparamsSource],
) -> Path:
    """
    Write ``results.md``, the learning-curve plots (against steps, wall-clock time and, with a CPU-time budget,
    training CPU time) and the performance profile.

    :return: The path of ``results.md``
    """
    config.log_folder.mkdir(parents=True, exist_ok=True)
    curves = collect_curves(config, records)
    plots = []
    if curves:
        axes = [(STEPS_PLOT, "steps"), (WALLCLOCK_PLOT, "seconds")] + (
            [(CPU_PLOT, "cpu")] if config.has_cpu_budget else []
        )
        for name, x_key in axes:
            if plot_curves(config, curves, x_key, config.log_folder / name):
                plots.append(name)
    tasks, scores = normalised_scores(config, records)
    profile = None
    if tasks and plot_performance_profile(scores, tasks, config.log_folder / PROFILE_PLOT):
        profile = PROFILE_PLOT
    path = config.log_folder / "results.md"
    path.write_text(make_report(config, records, sources, plots, curves, profile))
    return path


def plan(
    config: BenchmarkConfig, runs: Sequence[Run], record_adopted: bool = True
) -> tuple[list[Run], dict[Run, dict[str, Any]]]:
    """
    :param config: The benchmark
    :param runs: Its runs
    :param record_adopted: Whether to write the records of adopted zoo runs (not with ``--dry-run``)
    :return: The runs still to train, and the records of those that are done
    """
    pending, done = [], {}
    for run in runs:
        record = read_record(config.log_folder, run)
        if is_done(record, run, config):
            done[run] = record
            continue
        adopted = adopt_zoo_run(run, config)
        if adopted is not None and adopted["status"] == "done":
            if record_adopted:
                write_record(config.log_folder, run, adopted)
            done[run] = adopted
        else:
            pending.append(run)
    return pending, done


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """:return: The command-line arguments"""
    parser = argparse.ArgumentParser(
        prog="python -m sb3_bierl.benchmarks.head_to_head",
        description="Train every (algo, env, seed) of a config with rl_zoo3.train, then write results.md and plots.",
    )
    parser.add_argument("config", type=Path, help="benchmark config (YAML), e.g. zoo_configs/small.yml")
    parser.add_argument("--jobs", type=int, default=1, help="trainings run in parallel (default 1)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the commands of the runs still to do, run nothing"
    )
    parser.add_argument("--report-only", action="store_true", help="only rebuild results.md and the plots")
    parser.add_argument("--log-folder", type=Path, help="overrides the config's log_folder")
    parser.add_argument(
        "--no-progress-bar", action="store_true", help="one line per finished run instead of a progress bar (logs, CI)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """
    :return: Exit status: 0 if every run is done, 1 if one failed (or, with ``--report-only``, is not
        done), 2 for an unusable config, 130 if interrupted
    """
    args = parse_args(argv)
    try:
        config = load_config(args.config, args.log_folder)
        runs = expand_runs(config)
        sources = resolve_hyperparameters(config)
    except (OSError, ConfigError, RuntimeError, yaml.YAMLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.report_only:
        records = collect_records(config, runs)
        print(f"Wrote {write_outputs(config, records, sources)}")
        return 0 if all(records.get(run, {}).get("status") == "done" for run in runs) else 1
    pending, done = plan(config, runs, record_adopted=not args.dry_run)
    commands = {run: train_command(run, config, sources.get((run.algo, run.env_id))) for run in runs}
    print(f"{config.name}: {len(runs)} runs, {len(done)} done (skipped), {len(pending)} to train", end="")
    print(f", log folder {config.log_folder}")
    for run in runs:
        if run not in pending:
            how = "adopted a finished zoo run" if done[run].get("adopted") else "done"
            print(f"  skip {run.describe()}: {how} ({config.log_folder / done[run]['run_folder']})")
    if args.dry_run:
        for run in pending:
            print(shlex.join(commands[run]))
        return 0
    trained, interrupted = run_all(pending, commands, config, args.jobs, progress_bar=not args.no_progress_bar)
    records = {**collect_records(config, runs), **done, **trained}
    report = write_outputs(config, records, sources)
    failed = [run for run in runs if records.get(run, {}).get("status") != "done"]
    print(f"Wrote {report}")
    if interrupted:
        return 130
    if failed:
        print(f"{len(failed)} run(s) failed: " + ", ".join(run.describe() for run in failed), file=sys.stderr)
        return 1
    return 0
