"""
The head-to-head runner at equal CPU time (issue 13's campaign): the ``cpu_budget_s`` and ``eval_freq``
settings, the merged hyperparameter file that carries the ``CPUTimeBudget`` callback, the CPU log -> record ->
report path (steps reached, CPU times, returns at equal steps, the aggregate across tasks), the progress bar, and
one real run of the runner with a tiny budget (PPO, ES and ARS on Pendulum-v1).

As in ``test_benchmark_runner.py``, rl_zoo3 is never imported in the test process.
"""

import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from runner_helpers import _rl_zoo3_stays_out_of_this_process, write_config  # noqa: F401 (an autouse fixture)

if importlib.util.find_spec("rl_zoo3") is None:  # same as pytest.importorskip("rl_zoo3"), without importing it
    pytest.skip('rl_zoo3 is not installed (pip install -e ".[zoo]")', allow_module_level=True)
pytest.importorskip("psutil")

from sb3_bierl.benchmarks import aggregates
from sb3_bierl.benchmarks.cpu_budget import CPU_LOG_NAME
from sb3_bierl.benchmarks.head_to_head import (
    ConfigError,
    RunProgress,
    expand_runs,
    finish_evaluations,
    is_done,
    load_config,
    new_record,
    read_record,
    resolve_hyperparameters,
    run_all,
    train_command,
    wall_clock,
    write_outputs,
)
from sb3_bierl.benchmarks.head_to_head import scores as scores_module
from sb3_bierl.benchmarks.head_to_head.equal_steps import overlap_step
from sb3_bierl.benchmarks.head_to_head.hyperparams import CPU_BUDGET_CALLBACK
from sb3_bierl.benchmarks.head_to_head.scores import normalise

TIMEOUT = 300
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- config
def test_cpu_budget_and_eval_freq_most_specific_first(tmp_path):
    config = load_config(
        write_config(
            tmp_path,
            "budgets",
            algos=["ppo", {"es": {"cpu_budget_s": 70, "eval_freq": "5e4", "eval_at_steps": [20_000, "1e4"]}}, "sac"],
            envs=[
                "Pendulum-v1",
                {"id": "Hopper-v5", "cpu_budget_s": 500},
                {"id": "Ant-v5", "cpu_budget_s": {"default": "1_000", "sac": 20.5}, "eval_freq": {"sac": 2000}},
            ],
            n_timesteps=1_000_000,
            cpu_budget_s=100,
            eval_freq=10_000,
        )
    )
    runs = {(run.algo, run.env_id): (run.cpu_budget_s, run.eval_freq) for run in expand_runs(config)}
    assert runs == {
        ("ppo", "Pendulum-v1"): (100.0, 10_000), ("es", "Pendulum-v1"): (70.0, 50_000), ("sac", "Pendulum-v1"): (100.0, 10_000),
        ("ppo", "Hopper-v5"): (500.0, 10_000), ("es", "Hopper-v5"): (70.0, 50_000), ("sac", "Hopper-v5"): (500.0, 10_000),
        ("ppo", "Ant-v5"): (1000.0, 10_000), ("es", "Ant-v5"): (70.0, 50_000), ("sac", "Ant-v5"): (20.5, 2000),
    }  # fmt: skip
    assert config.has_cpu_budget
    assert {run.eval_at_steps for run in expand_runs(config)} == {(), (10_000, 20_000)}  # es's, sorted
    plain = load_config(
        write_config(tmp_path, "plain", algos=["ppo"], envs=["Pendulum-v1"], n_timesteps=1000, eval_freq=500)
    )
    assert not plain.has_cpu_budget and expand_runs(plain)[0].cpu_budget_s is None


@pytest.mark.parametrize(
    "budget, where",
    [
        ({"cpu_budget_s": 0}, "config.cpu_budget_s"),
        ({"cpu_budget_s": -5}, "config.cpu_budget_s"),
        ({"cpu_budget_s": "ten"}, "config.cpu_budget_s"),
        ({"cpu_budget_s": True}, "config.cpu_budget_s"),
        ({"cpu_budget_s": ".inf"}, "config.cpu_budget_s"),
        ({"envs": [{"id": "Pendulum-v1", "cpu_budget_s": {"ppo": -1}}]}, "envs.Pendulum-v1.cpu_budget_s.ppo"),
        ({"algos": {"ppo": {"cpu_budget_s": "nan"}}}, "algos.ppo.cpu_budget_s"),
    ],
)
def test_bad_cpu_budgets_are_refused_with_where_they_are(tmp_path, budget, where):
    config = {"algos": ["ppo"], "envs": ["Pendulum-v1"], "n_timesteps": 1000, "eval_freq": 500, **budget}
    with pytest.raises(ConfigError, match=rf"{where}: a CPU-time budget must be a positive number of CPU seconds"):
        load_config(write_config(tmp_path, "bad", **config))


def test_per_algo_settings_of_an_env_name_known_algos(tmp_path):
    config = {"algos": ["ppo"], "envs": [{"id": "Pendulum-v1", "cpu_budget_s": {"sac": 10}}], "n_timesteps": 1000}
    with pytest.raises(ConfigError, match=r"envs.Pendulum-v1.cpu_budget_s: \['sac'\] are not among the algos"):
        load_config(write_config(tmp_path, "bad", **config))


# ---------------------------------------------------------------------- merged hyperparameter files
def test_the_merged_file_carries_the_budget_and_keeps_other_callbacks(tmp_path):
    own = tmp_path / "mine.yml"  # an algo's own file, whose entry already has a callback
    own.write_text(
        "Pendulum-v1:\n  policy: MlpPolicy\n  callback:\n    - my.module.Callback:\n        every: 3\n"
        "CartPole-v1:\n  policy: MlpPolicy\n  callback: other.Callback\nHalfCheetah-v5:\n  policy: MlpPolicy\n"
    )
    path = write_config(
        tmp_path, "campaign",
        algos={"ppo": None, "es": {"conf_file": str(own)}},
        envs=[{"id": "HalfCheetah-v5", "cpu_budget_s": 600}, {"id": "Pendulum-v1", "cpu_budget_s": {"default": 120, "ppo": 90}, "eval_at_steps": {"es": [5000]}},
              "CartPole-v1"],
        n_timesteps=10_000_000, log_folder=str(tmp_path / "logs"),
    )  # fmt: skip
    config = load_config(path)
    sources = resolve_hyperparameters(config)
    budget = {CPU_BUDGET_CALLBACK: {"budget_s": 120.0, "verbose": 1, "eval_at_steps": [5000]}}
    es = yaml.safe_load((tmp_path / "logs" / "hyperparams" / "es.yml").read_text())
    assert es["Pendulum-v1"]["callback"] == [budget, {"my.module.Callback": {"every": 3}}]  # ours first, theirs kept
    assert es["CartPole-v1"] == {"policy": "MlpPolicy", "callback": "other.Callback"}  # no budget: unchanged
    ppo = yaml.safe_load((tmp_path / "logs" / "hyperparams" / "ppo.yml").read_text())
    with open(sources["ppo", "CartPole-v1"].base_file) as file:
        zoo = yaml.safe_load(file)
    assert ppo["HalfCheetah-v5"] == {
        **zoo["HalfCheetah-v4"],
        "callback": [{CPU_BUDGET_CALLBACK: {"budget_s": 600.0, "verbose": 1}}],
    }
    assert ppo["Pendulum-v1"]["callback"] == [{CPU_BUDGET_CALLBACK: {"budget_s": 90.0, "verbose": 1}}]
    assert ppo["CartPole-v1"] == zoo["CartPole-v1"] and "callback" not in ppo["HalfCheetah-v4"]
    source = sources["ppo", "Pendulum-v1"]
    assert source.cpu_budget_s == 90.0 and source.conf_file == tmp_path / "logs" / "hyperparams" / "ppo.yml"
    assert "with `CPUTimeBudget` (90 CPU s)" in source.describe("Pendulum-v1")
    assert sources["ppo", "CartPole-v1"].conf_file is None
    run = next(run for run in expand_runs(config) if (run.algo, run.env_id) == ("ppo", "Pendulum-v1"))
    command = train_command(run, config, source)
    assert command[command.index("-conf") + 1] == str(source.conf_file) and "-n" in command


def test_a_budget_needs_an_entry_to_carry_it(tmp_path):
    own = tmp_path / "mine.yml"
    own.write_text("CartPole-v1:\n  policy: MlpPolicy\n")  # no Pendulum-v1 entry and no default
    path = write_config(tmp_path, "bad", algos={"es": {"conf_file": str(own)}}, envs=["Pendulum-v1"], n_timesteps=100_000,
                        cpu_budget_s=10, log_folder=str(tmp_path / "logs"))  # fmt: skip
    with pytest.raises(ConfigError, match="no entry in .* to add the CPU-time budget to"):
        resolve_hyperparameters(load_config(path))


# ---------------------------------------------------------------------- CPU log -> record -> report
def write_run(
    log_folder: Path, folder: str, steps: list[int], returns: list[float], cpu: list[float], end: tuple, budget=10.0
):
    """A fake zoo run folder: evaluations.npz and the CPU log (training CPU seconds before each evaluation)."""
    path = log_folder / folder
    path.mkdir(parents=True)
    np.savez(
        path / "evaluations.npz",
        timesteps=np.array(steps),
        results=np.array(returns)[:, None],
        ep_lengths=np.ones((len(steps), 1)),
    )
    rows = [f"eval,{s},{c},{0.1 * (i + 1):.3f},{2 * c:.3f},0" for i, (s, c) in enumerate(zip(steps, cpu, strict=True))]
    rows.append(f"end,{end[0]},{end[1]},{0.1 * len(steps):.3f},{2 * end[1]:.3f},{int(end[2])}")
    header = f"# sb3_bierl CPUTimeBudget budget_s={budget!r}\nevent,timesteps,train_cpu_s,eval_cpu_s,wall_s,exhausted\n"
    (path / CPU_LOG_NAME).write_text(header + "\n".join(rows) + "\n")


def test_cpu_log_to_record_to_report(tmp_path, monkeypatch):
    monkeypatch.setattr(aggregates, "BOOTSTRAP_REPS", 50)  # the report's intervals: fast
    monkeypatch.setattr(scores_module, "PROFILE_BOOTSTRAP_REPS", 50)
    log_folder = tmp_path / "logs"
    path = write_config(
        tmp_path, "synthetic", algos={"es": {"eval_freq": 2000}, "ppo": {"eval_freq": 1000, "n_timesteps": 5000}},
        envs=["Pendulum-v1", "Swimmer-v5"],
        seeds=[0, 1], n_timesteps=100_000, cpu_budget_s=10, log_folder=str(log_folder),
    )  # fmt: skip
    config = load_config(path)
    records = {}
    for run in expand_runs(config):
        folder = f"{run.algo}/{run.env_id}_{run.seed + 1}"
        scale = 1000.0 if run.algo == "es" else 100.0  # returns: steps / scale (ES learns slower per step)
        last = {("ppo", 0): 4000, ("ppo", 1): 5000, ("es", 0): 20_000, ("es", 1): 30_000}[run.algo, run.seed]
        steps = list(
            range(config.eval_frequency(run.algo, run.env_id), last + 1, config.eval_frequency(run.algo, run.env_id))
        )
        returns = [s / scale + (50 if run.env_id == "Swimmer-v5" else 0) for s in steps]
        cpu = [10.0 * s / last for s in steps]
        write_run(log_folder, folder, steps, returns, cpu, (last + 7, 10.2, run.seed == 0 or run.algo == "es"))
        record = {**new_record(run, config, None), "status": "done", "run_folder": folder}
        records[run] = finish_evaluations(record, config)
    ppo_0 = records[next(run for run in records if (run.algo, run.env_id, run.seed) == ("ppo", "Pendulum-v1", 0))]
    assert ppo_0["status"] == "done" and ppo_0["stopped_by"] == "cpu_budget" and ppo_0["cpu_budget_s"] == 10.0
    assert ppo_0["steps_reached"] == 4007 and ppo_0["train_cpu_s"] == 10.2 and ppo_0["eval_cpu_s"] == pytest.approx(0.4)
    assert [row[:2] for row in ppo_0["cpu_evaluations"]] == [[1000, 2.5], [2000, 5.0], [3000, 7.5], [4000, 10.0]]
    ppo_1 = records[next(run for run in records if (run.algo, run.env_id, run.seed) == ("ppo", "Pendulum-v1", 1))]
    assert ppo_1["status"] == "done" and ppo_1["stopped_by"] == "n_timesteps"  # its step cap stopped it
    other = expand_runs(
        load_config(write_config(tmp_path, "other", **{**yaml.safe_load(path.read_text()), "cpu_budget_s": 20}))
    )
    for run, record in records.items():
        assert is_done(record, run, config)
        assert not is_done(record, next(o for o in other if o.key == run.key), config)  # another budget: not done

    report = write_outputs(config, records, resolve_hyperparameters(config)).read_text()
    assert "## Final return at equal CPU time" in report and "| Pendulum-v1 (10 CPU s) |" in report
    assert "## Steps reached and CPU time" in report
    assert "| Pendulum-v1: steps reached | 25k | 4.51k (1 at the step cap) |" in report  # IQM of 2 seeds: the mean
    assert "| Pendulum-v1: CPU s, training (evaluations) | 10 (1) | 10 (0) |" in report
    # equal steps: es vs ppo at the smallest last evaluation, 4000 steps (ES's curve interpolated there)
    assert "| Pendulum-v1 | es vs ppo | 4000 | 4.0 [4.0, 4.0] (2) | 40.0 [40.0, 40.0] (2) |" in report
    assert "| Swimmer-v5 | es vs ppo | 4000 | 54.0 [54.0, 54.0] (2) | 90.0 [90.0, 90.0] (2) |" in report
    assert "| ppo | Pendulum-v1 | 0 | done | 10 CPU s (cap 5k) | 4000 | 40.0 | 4007 | 10 (0) | cpu_budget |" in report
    assert "## Aggregate across tasks" in report and "![performance_profile.png](performance_profile.png)" in report
    for plot in (
        "learning_curves_steps.png",
        "learning_curves_wallclock.png",
        "learning_curves_cpu.png",
        "performance_profile.png",
    ):
        assert (log_folder / plot).read_bytes()[:8] == PNG_MAGIC


def test_wall_clock_of_unseen_evaluations_ends_at_the_steps_reached():
    record = {"n_timesteps": 100_000_000, "steps_reached": 4000, "training_start_s": 2.0, "wall_time_s": 12.0}
    np.testing.assert_allclose(wall_clock(np.array([2000, 4000]), record), [7.0, 12.0])  # not at the step cap


def test_scores_are_normalised_per_task_over_every_run():
    scores = normalise({"a": np.array([[0.0, 10.0], [5.0, 10.0]]), "b": np.array([[10.0, 10.0], [2.5, 10.0]])})
    np.testing.assert_allclose(scores["a"], [[0.0, 0.5], [0.5, 0.5]])  # task 2: every run scored the same
    np.testing.assert_allclose(scores["b"], [[1.0, 0.5], [0.25, 0.5]])


def test_curves_overlap_up_to_the_smallest_last_evaluation():
    curve = lambda *steps: {"steps": np.array(steps, float)}
    assert overlap_step([curve(1000, 2000, 3000), curve(10_000, 20_000)]) is None  # 3000 is before 10k
    assert overlap_step([curve(1000, 2000, 30_000), curve(10_000, 20_000)]) == 20_000
    assert overlap_step([]) is None


# ---------------------------------------------------------------------- progress
def test_the_progress_bar_counts_done_running_and_failed(tmp_path):
    config = load_config(write_config(tmp_path, "fake", algos=["ppo", "sac", "es"], envs=["Pendulum-v1"], n_timesteps=100_000,
                                      eval_freq=500, log_folder=str(tmp_path / "logs")))  # fmt: skip
    runs = expand_runs(config)
    both_started = threading.Barrier(2, timeout=30)
    seen_running = []

    def fake_execute(job, stop, on_start):
        on_start()
        if job.run.algo != "es":  # the first two run together
            both_started.wait()
            seen_running.append(progress.running)
        return {**job.record, "status": "failed" if job.run.algo == "sac" else "done", "error": "boom"}

    output = io.StringIO()
    progress = RunProgress(len(runs), bar=True, file=output)
    records, interrupted = run_all(
        runs, {run: [] for run in runs}, config, jobs=2, progress=progress, execute=fake_execute
    )
    assert not interrupted and len(records) == 3
    assert 2 in seen_running and (progress.done, progress.running, progress.failed) == (2, 0, 1)
    text = output.getvalue()
    assert "failed      sac Pendulum-v1 seed 0 -- see runs/sac_Pendulum-v1_0.log" in text  # failures above the bar
    assert "ppo Pendulum-v1 seed 0" not in text  # no line per finished run
    assert "3/3" in text and "done=2, running=0, failed=1" in text
    lines = io.StringIO()
    run_all(runs, {run: [] for run in runs}, config, jobs=1, progress=RunProgress(3, bar=False, file=lines),
            execute=lambda job, *args: {**job.record, "status": "done"})  # fmt: skip
    printed = lines.getvalue().splitlines()  # one line per finished run, in the order they finished
    assert [line[:6] for line in printed] == ["[1/3] ", "[2/3] ", "[3/3] "]
    assert sorted(line[6:] for line in printed) == sorted(f"{'done':<11} {run.describe()}" for run in runs)


# ---------------------------------------------------------------------- the real thing
def test_a_tiny_campaign_stops_on_the_budget(tmp_path):
    """PPO (SB3), ES (this package) and ARS (sb3-contrib, which ignores a callback's stop) on Pendulum-v1, 3 CPU s."""
    config = write_config(
        tmp_path, "tiny_cpu", algos={"ppo": {"eval_freq": 1000}, "es": {"n_workers": 1, "eval_freq": 20_000, "eval_at_steps": [5000]}, "ars": {"eval_freq": 1000}},
        envs=["Pendulum-v1"], seeds=[0], n_timesteps=10_000_000, cpu_budget_s=3, eval_episodes=2, num_threads=1,
    )  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "sb3_bierl.benchmarks.head_to_head",
        str(config),
        "--jobs",
        "2",
        "--no-progress-bar",
    ]
    process = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert process.returncode == 0, f"{process.stdout[-3000:]}\n{process.stderr[-3000:]}"
    log_folder = tmp_path / "logs" / "benchmark" / "tiny_cpu"
    for algo in ("ppo", "es", "ars"):
        record = json.loads((log_folder / "runs" / f"{algo}_Pendulum-v1_0.json").read_text())
        assert record["status"] == "done" and record["cpu_budget_s"] == 3.0 and record["stopped_by"] == "cpu_budget"
        assert record["train_cpu_s"] >= 3.0 and 0 < record["steps_reached"] < 10_000_000 and record["cpu_evaluations"]
        assert record["last_eval_timestep"] <= record["steps_reached"] and "CPU s of training" in process.stdout
        assert "CPU-time budget of 3 s reached" in (log_folder / record["log_file"]).read_text()
        assert record["cpu_evaluations"][-1][0] == record["last_eval_timestep"]  # the final evaluation, at the budget
        assert (algo == "es") == (record["cpu_evaluations"][0][0] == 5000)  # ES's early evaluation
    report = (log_folder / "results.md").read_text()
    assert "| Pendulum-v1 (3 CPU s) |" in report and "## Steps reached and CPU time" in report
    assert "| ppo | Pendulum-v1 | 0 | done | 3 CPU s (cap 10M) |" in report and "| cpu_budget |" in report
    assert (log_folder / "learning_curves_cpu.png").read_bytes()[:8] == PNG_MAGIC


def test_sigterm_stops_the_campaign_as_ctrl_c_does(tmp_path):
    """A campaign runs for hours, often in the background: SIGTERM interrupts it, the next invocation resumes."""
    config = write_config(
        tmp_path, "long", algos={"es": {"n_workers": 1, "eval_freq": 50_000}}, envs=["Pendulum-v1"], seeds=[0],
        n_timesteps=100_000_000, cpu_budget_s=1000, eval_episodes=1,
    )  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "sb3_bierl.benchmarks.head_to_head", str(config), "--no-progress-bar"]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log_folder = tmp_path / "logs" / "benchmark" / "long"
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (log_folder / "es" / "Pendulum-v1_1" / CPU_LOG_NAME).is_file() and time.monotonic() < deadline:
            time.sleep(0.2)  # training started
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 130, output
    assert "Interrupted: stopping the running trainings" in output
    record = json.loads((log_folder / "runs" / "es_Pendulum-v1_0.json").read_text())
    assert record["status"] == "interrupted"
    again = subprocess.run(
        [*command, "--dry-run"], cwd=tmp_path, env=environment, capture_output=True, text=True, check=False
    )
    assert "0 done (skipped), 1 to train" in again.stdout


def test_extra_evaluations_need_a_cpu_budget(tmp_path):
    config = {"algos": {"es": {"eval_at_steps": [1000]}}, "envs": ["Pendulum-v1"], "n_timesteps": 100_000}
    with pytest.raises(ConfigError, match="eval_at_steps needs a CPU-time budget"):
        load_config(write_config(tmp_path, "bad", **config))
    with pytest.raises(ConfigError, match="algos.es.eval_at_steps: expected a list of step counts"):
        load_config(write_config(tmp_path, "bad", **{**config, "algos": {"es": {"eval_at_steps": 1000}}}))


def test_the_published_campaign_resumes_from_a_clean_clone():
    """Every run published in docs/benchmarks/campaign_runs has its record in the repository, and the finished ones
    are runs the runner counts as done: a clone resumes the campaign where it stopped, and can re-plot it."""
    root = Path(__file__).parents[1]
    published = root / "docs" / "benchmarks" / "campaign_runs"
    config = load_config(root / "zoo_configs" / "campaign.yml", log_folder=published)
    folders = {path.parent.relative_to(published).as_posix() for path in published.glob("*/*/evaluations.npz")}
    recorded = set()
    for run in expand_runs(config):
        record = read_record(published, run)
        if record is not None and record.get("run_folder") is not None:
            recorded.add(record["run_folder"])
            assert record["status"] != "done" or is_done(record, run, config), f"{run.key}: done, but not resumable"
    assert folders and folders <= recorded  # no evaluations without the record that says what they are
