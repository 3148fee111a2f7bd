"""
The one record format of every benchmark run: ``<folder>/runs/<algo>_<env>_<seed>.json``, one JSON object per
run, written atomically by :mod:`sb3_bierl.benchmarks.runner` when the run starts and again when it ends.

Every record has these fields (benchmarks add their own beside them):

- ``algo``, ``env``, ``seed``: what was trained;
- ``status``: ``"running"``, ``"done"``, ``"failed"`` or ``"interrupted"``; ``error``: why it is not done (the end
  of the run's output for a crash), else None; ``returncode``: the exit status of its process;
- ``command``: the run's command line; ``log_file``: its output, relative to the folder above ``runs/``;
- ``started_at`` (ISO 8601, UTC) and ``wall_time_s`` (seconds from the start of its process to the end);
- ``n_timesteps``: the step budget; ``eval_episodes``: episodes per evaluation of the deterministic policy;
- ``final_return``: the mean return of the last evaluation; ``steps_reached``: environment steps at the end (None
  where the run does not know them, e.g. a zoo run without a CPU-time budget);
- ``sb3_bierl_version``: the version of this package that ran the benchmark.

Records of the in-process benchmarks written before this format (their ``eval_mean``, ``num_timesteps``,
``budget`` and no ``status``) are read as ``done`` records of it (:func:`upgrade_record`), so published runs still
load, rebuild their reports and count as done on resume.
"""

import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: The fields every record has (see the module docstring)
RECORD_FIELDS: tuple[str, ...] = (
    "algo",
    "env",
    "seed",
    "status",
    "error",
    "returncode",
    "command",
    "log_file",
    "started_at",
    "wall_time_s",
    "n_timesteps",
    "eval_episodes",
    "final_return",
    "steps_reached",
    "sb3_bierl_version",
)
STATUSES: tuple[str, ...] = ("running", "done", "failed", "interrupted")
RUNS_FOLDER = "runs"


def run_key(algo: str, env_id: str, seed: int) -> str:
    """
    :param algo: Algorithm name
    :param env_id: Environment id
    :param seed: Random seed
    :return: The run's file stem, ``<algo>_<env>_<seed>`` (``/`` and ``:`` of the env id become ``-``)
    """
    return f"{algo}_{re.sub(r'[/:]', '-', env_id)}_{seed}"


def record_path(folder: Path, key: str) -> Path:
    """:return: ``<folder>/runs/<key>.json``"""
    return Path(folder) / RUNS_FOLDER / f"{key}.json"


def log_path(key: str) -> str:
    """:return: The run's output file relative to the benchmark folder, ``runs/<key>.log``"""
    return str(Path(RUNS_FOLDER, f"{key}.log"))


def new_record(
    algo: str,
    env_id: str,
    seed: int,
    command: Sequence[str] | None,
    n_timesteps: int | None,
    eval_episodes: int | None,
    **fields: Any,
) -> dict[str, Any]:
    """
    :param algo: Algorithm name
    :param env_id: Environment id
    :param seed: Random seed
    :param command: The run's command line (None for a run that was not started by this runner)
    :param n_timesteps: Budget in environment steps
    :param eval_episodes: Episodes per evaluation
    :param fields: The benchmark's own fields (they may not replace the common ones)
    :return: A fresh record of the run, status ``running``
    :raises ValueError: if ``fields`` holds a common field
    """
    import sb3_bierl

    clash = sorted(set(fields) & set(RECORD_FIELDS))
    if clash:
        raise ValueError(f"{clash} are fields of every record: pass them as arguments of new_record")
    record: dict[str, Any] = {
        "algo": algo,
        "env": env_id,
        "seed": seed,
        "status": "running",
        "error": None,
        "returncode": None,
        "command": list(command) if command is not None else None,
        "log_file": log_path(run_key(algo, env_id, seed)),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 (Python 3.10)
        "wall_time_s": None,
        "n_timesteps": n_timesteps,
        "eval_episodes": eval_episodes,
        "final_return": None,
        "steps_reached": None,
        "sb3_bierl_version": sb3_bierl.__version__,
    }
    return {**record, **fields}


def upgrade_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """
    :param record: A record as read from its file
    :return: It in the current format: a record of the in-process benchmarks written before it (``eval_mean``,
        ``num_timesteps``, ``budget``, no ``status``) becomes a ``done`` record with ``final_return``,
        ``steps_reached``, ``n_timesteps`` and ``train_time_s`` (its ``wall_time_s`` was construction and
        training, evaluation excluded, as ``train_time_s`` is now); any other record is returned as it is (a copy)
    """
    record = dict(record)
    if "status" in record or "eval_mean" not in record:
        return record
    final_return = record.pop("eval_mean")
    steps = record.pop("num_timesteps", None)
    budget = record.pop("budget", None)
    return {
        **{field: None for field in RECORD_FIELDS},
        "status": "done",
        "final_return": final_return,
        "steps_reached": steps,
        "n_timesteps": budget,
        **record,
        "train_time_s": record.get("wall_time_s"),
        "wall_time_s": None,  # not measured: the process's whole time
    }


def read_record(path: Path) -> dict[str, Any] | None:
    """:return: The record in ``path`` (:func:`upgrade_record`), None if there is none or it is unreadable"""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return upgrade_record(data) if isinstance(data, dict) else None


def write_record(path: Path, record: Mapping[str, Any]) -> None:
    """
    Write a record atomically: an interrupted write leaves the previous one, never half a file.

    :param path: Destination
    :param record: A JSON-serialisable record
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, path)


def load_records(runs_dir: Path, done_only: bool = True) -> list[dict[str, Any]]:
    """
    :param runs_dir: A folder of records (``<folder>/runs``)
    :param done_only: Whether to leave out the runs that are not ``done``
    :return: Its records, in file-name order
    """
    records = [read_record(path) for path in sorted(Path(runs_dir).glob("*.json"))]
    return [r for r in records if r is not None and (not done_only or r.get("status") == "done")]
