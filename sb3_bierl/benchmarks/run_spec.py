"""
The in-process training runs of the ES benchmarks (``compare``, ``family``, ``meta_level``, ``warm_start``): one
:class:`RunSpec` per (algorithm, environment, seed), trained and evaluated by a *trainer* function in its own
subprocess by the benchmarks' runner (:mod:`sb3_bierl.benchmarks.runner`), its record in
``<out>/runs/<algo>_<env>_<seed>.json`` (:mod:`sb3_bierl.benchmarks.records`). A run whose record is ``done`` with
the same budget and evaluation episodes is skipped, so a benchmark resumes where it stopped.

The subprocess is ``python -m sb3_bierl.benchmarks.run_spec --trainer MODULE:FUNCTION --spec JSON --kwargs JSON
--result PATH``: one torch thread, then ``FUNCTION(RunSpec(**spec), **kwargs)``, whose dict (``final_return``,
``steps_reached`` and the benchmark's own fields) is written to ``PATH`` and merged into the run's record.
"""

import argparse
import dataclasses
import importlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sb3_bierl.benchmarks.records import RECORD_FIELDS, new_record, read_record, record_path, run_key, write_record
from sb3_bierl.benchmarks.runner import Job, RunProgress, execute_job, run_jobs

#: The trainer of ``python -m sb3_bierl.benchmarks.compare`` and ``family``
DEFAULT_TRAINER = "sb3_bierl.benchmarks.compare:train_and_evaluate"
#: The common record fields a trainer may set (the others are the runner's)
TRAINER_FIELDS = frozenset({"final_return", "steps_reached"})


@dataclass(frozen=True)
class RunSpec:
    """
    One training run of a benchmark.

    :param algo: Algorithm name (its meaning is the trainer's: a key of ``compare.ALGOS``, a ``meta_level`` name)
    :param env_id: Gymnasium environment id
    :param seed: Random seed of the model
    :param budget: Training budget in environment steps (the record's ``n_timesteps``)
    :param eval_episodes: Episodes of the final evaluation
    """

    algo: str
    env_id: str
    seed: int
    budget: int
    eval_episodes: int

    @property
    def name(self) -> str:
        """The run's file stem, ``<algo>_<env>_<seed>`` (:func:`sb3_bierl.benchmarks.records.run_key`)."""
        return run_key(self.algo, self.env_id, self.seed)


def is_done(record: Mapping[str, Any] | None, spec: RunSpec) -> bool:
    """:return: Whether a record says the run finished with the spec's budget and evaluation episodes"""
    return (
        record is not None
        and record.get("status") == "done"
        and record.get("n_timesteps") == spec.budget
        and record.get("eval_episodes") == spec.eval_episodes
    )


def load_trainer(path: str) -> Callable[..., dict[str, Any]]:
    """
    :param path: ``"module:function"``
    :return: The function
    :raises ValueError: if ``path`` is not of that form or names nothing callable
    """
    module_name, _, function_name = path.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"A trainer is 'module:function', got {path!r}")
    trainer = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(trainer):
        raise ValueError(f"{path!r} names nothing callable")
    return trainer


class SpecJob(Job):
    """
    One in-process training run: its subprocess runs the trainer and writes its result next to the record.

    :param spec: The run
    :param out: The benchmark's output folder (records in ``out/runs``)
    :param trainer: ``"module:function"`` of the trainer
    :param trainer_kwargs: Its keyword arguments besides the spec (JSON-serialisable)
    """

    def __init__(self, spec: RunSpec, out: Path, trainer: str, trainer_kwargs: Mapping[str, Any]):
        self.spec = spec
        self.result_path = Path(out) / "runs" / f"{spec.name}.result"  # not *.json: never read as a record
        command = [
            sys.executable, "-m", "sb3_bierl.benchmarks.run_spec", "--trainer", trainer,
            "--spec", json.dumps(dataclasses.asdict(spec)), "--kwargs", json.dumps(dict(trainer_kwargs)),
            "--result", str(self.result_path),
        ]  # fmt: skip
        record = new_record(spec.algo, spec.env_id, spec.seed, command, spec.budget, spec.eval_episodes)
        super().__init__(spec.name, command, record, out)

    def finish(self, record: dict[str, Any]) -> dict[str, Any]:
        if record["status"] != "done":
            self.result_path.unlink(missing_ok=True)
            return record
        try:
            result = json.loads(self.result_path.read_text())
        except (OSError, ValueError) as error:
            return {**record, "status": "failed", "error": f"the run wrote no result: {error}"}
        self.result_path.unlink()
        runner_fields = (set(result) & set(RECORD_FIELDS)) - TRAINER_FIELDS
        if runner_fields:
            error = f"the trainer returned the runner's fields {sorted(runner_fields)}"
            return {**record, "status": "failed", "error": error}
        return {**record, **result}


def run_specs(
    specs: Sequence[RunSpec],
    out: Path,
    n_parallel: int,
    force: bool = False,
    trainer: str = DEFAULT_TRAINER,
    trainer_kwargs: Mapping[str, Any] | None = None,
    progress_bar: bool = True,
    progress: RunProgress | None = None,
) -> tuple[int, bool]:
    """
    Train and evaluate the runs not done yet (all with ``force``), ``n_parallel`` at a time.

    :param specs: The runs (a repeated name runs once, the first spec of that name)
    :param out: The benchmark's output folder (records in ``out/runs``)
    :param n_parallel: Runs at once, one process each
    :param force: Rerun the runs that are done
    :param trainer: ``"module:function"``: ``function(spec, **trainer_kwargs)`` trains and evaluates a run and
        returns its fields (``final_return``, ``steps_reached`` and the benchmark's own)
    :param trainer_kwargs: Its keyword arguments (JSON-serialisable)
    :param progress_bar: Whether to show a progress bar (else one line per finished run)
    :param progress: The live view to use (default: a new one)
    :return: The number of runs that did not finish (failed or interrupted), and whether the benchmark was
        interrupted
    """
    load_trainer(trainer)  # fail now, not in every subprocess
    unique: dict[str, RunSpec] = {}
    for spec in specs:
        unique.setdefault(spec.name, spec)  # a repeated run (the same record file) runs once
    specs = list(unique.values())
    todo = [spec for spec in specs if force or not is_done(read_record(record_path(out, spec.name)), spec)]
    done = len(specs) - len(todo)
    print(f"{done} of {len(specs)} runs already done; running {len(todo)}, {n_parallel} at a time", flush=True)
    if not todo:
        return 0, False
    jobs = [SpecJob(spec, out, trainer, trainer_kwargs or {}) for spec in todo]
    records, interrupted = run_jobs(jobs, n_parallel, progress_bar, progress, execute_job)
    failures = sum(record.get("status") != "done" for record in records.values())
    return failures + len(todo) - len(records), interrupted


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a run's subprocess. :return: 0 once the result is written"""
    parser = argparse.ArgumentParser(prog="python -m sb3_bierl.benchmarks.run_spec", description="Train one RunSpec.")
    parser.add_argument("--trainer", required=True, help="module:function")
    parser.add_argument("--spec", required=True, help="The RunSpec as JSON")
    parser.add_argument("--kwargs", default="{}", help="The trainer's keyword arguments as JSON")
    parser.add_argument("--result", required=True, type=Path, help="Where to write the result (JSON)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    result = load_trainer(args.trainer)(RunSpec(**json.loads(args.spec)), **json.loads(args.kwargs))
    write_record(args.result, result)  # atomic: a half-written result never looks finished
    return 0


if __name__ == "__main__":
    sys.exit(main())
