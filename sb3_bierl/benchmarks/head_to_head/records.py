"""
The record of each zoo run, ``<log_folder>/runs/<algo>_<env>_<seed>.json``: the common fields of every benchmark
record (:mod:`sb3_bierl.benchmarks.records`) and the zoo run's (run folder, when each evaluation was seen; with a
CPU-time budget, the CPU log's CPU times): reading and writing it, whether a run is done with the current settings
(CPU-time budget included), and adopting a finished zoo run folder that has no record (read from the zoo's
``args.yml`` and the CPU log).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sb3_bierl.benchmarks import records
from sb3_bierl.benchmarks.cpu_budget import read_cpu_log
from sb3_bierl.benchmarks.head_to_head.config import BenchmarkConfig, Run
from sb3_bierl.benchmarks.head_to_head.evaluations import finish_evaluations


def record_path(log_folder: Path, run: Run) -> Path:
    """:return: ``<log_folder>/runs/<algo>_<env>_<seed>.json``"""
    return records.record_path(log_folder, run.key)


def read_record(log_folder: Path, run: Run) -> dict[str, Any] | None:
    """:return: The run's record, None if there is none (or it is unreadable)"""
    return records.read_record(record_path(log_folder, run))


def write_record(log_folder: Path, run: Run, record: dict[str, Any]) -> None:
    """Write the run's record atomically (an interrupted write leaves the previous one)."""
    records.write_record(record_path(log_folder, run), record)


def settings_match(record: Mapping[str, Any], run: Run, config: BenchmarkConfig) -> bool:
    """
    :return: Whether a record (or the zoo's saved arguments, with the CPU log's budget) has the run's seed,
        budgets and evaluation settings
    """
    expected = {
        "env": run.env_id,
        "seed": run.seed,
        "n_timesteps": run.n_timesteps,
        "cpu_budget_s": run.cpu_budget_s,
        "eval_freq": run.eval_freq,
        "eval_episodes": config.eval_episodes,
    }
    extra = list(record.get("eval_at_steps") or [])  # records and zoo runs without it have none
    return all(record.get(key) == value for key, value in expected.items()) and extra == list(run.eval_at_steps)


def is_done(record: Mapping[str, Any] | None, run: Run, config: BenchmarkConfig) -> bool:
    """:return: Whether the record says the run finished, with the current settings, and its evaluations exist"""
    return (
        record is not None
        and record.get("status") == "done"
        and settings_match(record, run, config)
        and record.get("run_folder") is not None
        and (config.log_folder / record["run_folder"] / "evaluations.npz").is_file()
    )


class _ZooArgsLoader(yaml.SafeLoader):
    """Reads the zoo's ``args.yml`` (a dumped ``OrderedDict``) without constructing arbitrary Python objects."""


def _construct_python_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if suffix == "object/apply:collections.OrderedDict" and isinstance(node, yaml.SequenceNode):
        arguments = loader.construct_sequence(node, deep=True)
        return dict(arguments[0]) if arguments else {}
    return None  # any other Python object: not needed here


_ZooArgsLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_python_tag)


def read_zoo_args(path: Path) -> dict[str, Any]:
    """:return: The command-line arguments the zoo saved in a run's ``<env>/args.yml``, {} if unreadable"""
    try:
        with open(path) as file:
            arguments = yaml.load(file, Loader=_ZooArgsLoader)  # a SafeLoader subclass
    except (OSError, yaml.YAMLError):
        return {}
    return arguments if isinstance(arguments, dict) else {}


def adopt_zoo_run(run: Run, config: BenchmarkConfig) -> dict[str, Any] | None:
    """
    Look for a finished zoo run folder of this run that has no record (newest first).

    :param run: The run
    :param config: The benchmark
    :return: A ``done`` record for it (wall time from file times: set-up excluded), None if none
    """
    candidates = sorted((config.log_folder / run.algo).glob("*/*/args.yml"), key=lambda p: p.stat().st_mtime)
    for args_file in reversed(candidates):
        folder = args_file.parent.parent
        cpu_log = read_cpu_log(folder)
        arguments = {**read_zoo_args(args_file), "cpu_budget_s": None if cpu_log is None else cpu_log.budget_s}
        model = folder / f"{args_file.parent.name}.zip"
        if not (settings_match(arguments, run, config) and model.is_file() and (folder / "evaluations.npz").is_file()):
            continue
        record = new_record(run, config, command=None)
        record.update(
            status="done",
            adopted=True,
            run_folder=str(folder.relative_to(config.log_folder)),
            wall_time_s=max(model.stat().st_mtime - args_file.stat().st_mtime, 0.0),
        )
        return finish_evaluations(record, config)
    return None


def new_record(run: Run, config: BenchmarkConfig, command: Sequence[str] | None) -> dict[str, Any]:
    """:return: A fresh record of the run, status ``running`` (the common fields, :mod:`sb3_bierl.benchmarks.records`,
    and the zoo run's)"""
    return records.new_record(
        run.algo,
        run.env_id,
        run.seed,
        command,
        run.n_timesteps,
        config.eval_episodes,
        cpu_budget_s=run.cpu_budget_s,
        eval_freq=run.eval_freq,
        eval_at_steps=list(run.eval_at_steps),
        adopted=False,
        run_folder=None,
        training_start_s=None,
        eval_seen_at=[],
        last_eval_timestep=None,
        # from the CPU log, with a CPU-time budget: see evaluations.cpu_fields (steps_reached too)
        train_cpu_s=None,
        eval_cpu_s=None,
        stopped_by=None,
        cpu_evaluations=[],
    )
