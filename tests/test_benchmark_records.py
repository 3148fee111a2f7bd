"""The benchmarks' one runner and one record format: in-process runs, throughput measurements, old records."""

import json
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sb3_bierl.benchmarks import compare, throughput
from sb3_bierl.benchmarks.aggregates import interval_estimates
from sb3_bierl.benchmarks.records import RECORD_FIELDS, load_records, new_record, read_record, record_path
from sb3_bierl.benchmarks.run_spec import RunSpec, is_done, run_specs
from sb3_bierl.benchmarks.runner import Job, execute_job

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def test_published_records_of_the_old_format_load_as_done_records(tmp_path):
    old = DOCS / "compare_runs" / "es_Pendulum-v1_0.json"
    data = json.loads(old.read_text())
    assert "status" not in data and "eval_mean" in data  # written before the common format
    shutil.copy(old, tmp_path / old.name)
    record = read_record(tmp_path / old.name)
    assert set(RECORD_FIELDS) <= set(record)
    assert record["status"] == "done" and record["final_return"] == data["eval_mean"]
    assert (record["steps_reached"], record["n_timesteps"]) == (data["num_timesteps"], data["budget"])
    assert record["train_time_s"] == data["wall_time_s"] and record["wall_time_s"] is None and "eval_mean" not in record
    spec = RunSpec("es", "Pendulum-v1", 0, data["budget"], data["eval_episodes"])
    assert is_done(record, spec) and not is_done(record, RunSpec("es", "Pendulum-v1", 0, data["budget"] + 1, 20))
    assert load_records(tmp_path) == [record]


def test_new_record_keeps_the_common_fields_its_own():
    record = new_record("es", "ALE/Pong-v5", 3, ["python"], 100, 2, run_folder="x")
    assert set(RECORD_FIELDS) <= set(record) and record["status"] == "running" and record["run_folder"] == "x"
    assert record["log_file"] == "runs/es_ALE-Pong-v5_3.log"
    with pytest.raises(ValueError, match="fields of every record"):
        new_record("es", "Pendulum-v1", 0, None, 100, 2, final_return=1.0)


def test_in_process_runs_go_through_the_runner_and_resume(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["--envs", "Pendulum-v1", "--algos", "es", "--seeds", "0", "--timesteps", "1600", "--eval-episodes", "1"]
    argv += ["--workers", "1", "--out", str(out), "--no-progress-bar"]
    assert compare.main(argv) == 0
    record = read_record(record_path(out, "es_Pendulum-v1_0"))
    assert set(RECORD_FIELDS) <= set(record) and record["status"] == "done" and record["returncode"] == 0
    assert record["steps_reached"] >= 1600 and record["n_timesteps"] == 1600 and record["eval_episodes"] == 1
    assert len(record["eval_returns"]) == 1 and record["final_return"] == record["eval_returns"][0]
    assert record["command"][1:3] == ["-m", "sb3_bierl.benchmarks.run_spec"] and (out / record["log_file"]).is_file()
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["es_Pendulum-v1_0.json", "es_Pendulum-v1_0.log"]
    printed = capsys.readouterr().out
    assert "[1/1] done        es Pendulum-v1 seed 0: return" in printed
    assert compare.main(argv) == 0  # resumes: nothing to train
    assert "1 of 1 runs already done; running 0" in capsys.readouterr().out
    assert read_record(record_path(out, "es_Pendulum-v1_0")) == record


def test_a_crashing_run_is_a_failed_record_and_the_others_go_on(tmp_path, capsys):
    specs = [RunSpec("no_such_algo", "Pendulum-v1", 0, 100, 1), RunSpec("es", "Pendulum-v1", 0, 800, 1)]
    failures, interrupted = run_specs([*specs, specs[0]], tmp_path, n_parallel=2, progress_bar=False)
    assert (failures, interrupted) == (1, False)  # the repeated run ran once
    failed = read_record(record_path(tmp_path, specs[0].name))
    assert failed["status"] == "failed" and failed["returncode"] == 1
    assert "exit status 1" in failed["error"] and "KeyError: 'no_such_algo'" in failed["error"]
    assert read_record(record_path(tmp_path, specs[1].name))["status"] == "done"
    assert [r["algo"] for r in load_records(tmp_path / "runs")] == ["es"]  # only done runs count
    assert len(load_records(tmp_path / "runs", done_only=False)) == 2
    assert "-- see runs/no_such_algo_Pendulum-v1_0.log in the log folder" in capsys.readouterr().out


def sleeper(tmp_path: Path, **kwargs) -> Job:
    # SIGINT raises KeyboardInterrupt even where the test runs with SIGINT ignored (a background job)
    code = "import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); time.sleep(120)"
    command = [sys.executable, "-c", code]
    return Job("sleep", command, new_record("sleep", "none", 0, command, None, None), tmp_path, **kwargs)


def test_a_run_past_its_timeout_is_killed_and_failed(tmp_path):
    start = time.monotonic()
    record = execute_job(sleeper(tmp_path, timeout_s=1.0), threading.Event())
    assert time.monotonic() - start < 30
    assert record["status"] == "failed" and record["error"].startswith("timed out after 1 s")
    assert read_record(record_path(tmp_path, "sleep")) == record


def test_a_stopped_run_is_interrupted(tmp_path):
    stop, started = threading.Event(), threading.Event()
    records = []
    thread = threading.Thread(target=lambda: records.append(execute_job(sleeper(tmp_path), stop, started.set)))
    thread.start()
    assert started.wait(30)
    time.sleep(1.0)
    stop.set()  # the run gets SIGINT: Python raises KeyboardInterrupt in time.sleep
    thread.join(60)
    assert not thread.is_alive() and records[0]["status"] == "interrupted"
    assert execute_job(sleeper(tmp_path), stop) is None  # a job that had not started never starts


def test_a_throughput_measurement_is_a_record_of_the_runner():
    spec = throughput.Measurement("raw", "Pendulum-v1", workers=1, seconds=0.5, timesteps=1, n_pairs=1)
    row = throughput.run_measurement(spec, timeout=300)
    assert set(RECORD_FIELDS) <= set(row) and row["status"] == "done" and row["error"] is None
    assert row["steps"] > 0 and row["peak_tree_mib"] > 0 and row["label"] == spec.label
    row = throughput.run_measurement(spec, timeout=0.5)  # python and gymnasium take longer to import
    assert row["status"] == "failed" and row["error"].startswith("timed out")
    assert throughput.table_row(row)[1] == "FAILED (timed out after 0.5 s:)"


def test_the_same_runs_give_the_same_intervals():
    pytest.importorskip("rliable")
    from rliable import metrics

    scores = {"a": np.random.default_rng(0).normal(size=(5, 3))}
    first = interval_estimates(scores, metrics.aggregate_iqm, reps=200, seed=1)
    np.random.seed(123)  # whatever the global generator did before
    second = interval_estimates(scores, metrics.aggregate_iqm, reps=200, seed=1)
    np.testing.assert_array_equal(first[1]["a"], second[1]["a"])


@pytest.mark.parametrize(
    "module",
    [
        "sb3_bierl.__main__",
        "sb3_bierl.pretrain",
        "sb3_bierl.benchmarks.compare",
        "sb3_bierl.benchmarks.family",
        "sb3_bierl.benchmarks.meta_level",
        "sb3_bierl.benchmarks.warm_start",
        "sb3_bierl.benchmarks.short_horizon",
        "sb3_bierl.benchmarks.throughput",
        "sb3_bierl.benchmarks.run_spec",
        "sb3_bierl.benchmarks.head_to_head.cli",
    ],
)
def test_every_command_names_itself_as_it_is_run(module, capsys):
    """``--help`` says ``usage: python -m <package module>``, not the file name argparse guesses."""
    import importlib

    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(["--help"])
    assert exit_info.value.code == 0
    name = module.removesuffix(".__main__").removesuffix(".cli")
    assert capsys.readouterr().out.startswith(f"usage: python -m {name} ")
