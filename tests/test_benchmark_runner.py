"""
The head-to-head runner ``python -m sb3_bierl.benchmarks.head_to_head CONFIG``, run as a user runs it:
real ``rl_zoo3.train`` trainings (tiny: CartPole-v1, 1000 steps) in subprocesses, then its records,
``results.md`` and plots; a second run that skips what is done; a failing run; ``--dry-run``; the old
name ``python -m sb3_bierl.benchmark``.

As in ``test_zoo.py``, rl_zoo3 is never imported in the test process (it patches gymnasium's
``TimeLimit`` for the whole process), so the module is skipped with ``find_spec``.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from runner_helpers import _rl_zoo3_stays_out_of_this_process, write_config  # noqa: F401 (an autouse fixture)

if importlib.util.find_spec("rl_zoo3") is None:  # same as pytest.importorskip("rl_zoo3"), without importing it
    pytest.skip('rl_zoo3 is not installed (pip install -e ".[zoo]")', allow_module_level=True)

from sb3_bierl.benchmarks.head_to_head import (
    ConfigError,
    aggregate,
    expand_runs,
    load_config,
    other_version_entry,
    resolve_hyperparameters,
    wall_clock,
)

TIMEOUT = 240
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = {
    "algos": ["es", "ppo"],
    "envs": ["CartPole-v1"],
    "seeds": [0],
    "n_timesteps": 1000,
    "eval_freq": 500,
    "eval_episodes": 2,
}


def run_benchmark(config: Path, cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
    """``python -m sb3_bierl.benchmarks.head_to_head CONFIG ARGUMENTS`` in a fresh interpreter, output captured."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sb3_bierl.benchmarks.head_to_head", str(config), *arguments],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip


def describe(process: subprocess.CompletedProcess) -> str:
    return f"exit {process.returncode}\n--- stdout\n{process.stdout[-4000:]}\n--- stderr\n{process.stderr[-4000:]}"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    """The 2-run benchmark (ES and PPO on CartPole-v1), two at a time, in its default log folder."""
    workdir = tmp_path_factory.mktemp("benchmark")
    config = write_config(workdir, "tiny", **TINY)
    process = run_benchmark(config, workdir, "--jobs", "2")
    return workdir, workdir / "logs" / "benchmark" / "tiny", process


def test_runs_records_report_and_plots(benchmark):
    _, log_folder, process = benchmark
    assert process.returncode == 0, describe(process)
    report = (log_folder / "results.md").read_text()
    for algo, entry in (("es", ["-m", "sb3_bierl.zoo", "train"]), ("ppo", ["-m", "rl_zoo3.train"])):
        record = read_json(log_folder / "runs" / f"{algo}_CartPole-v1_0.json")
        assert record["status"] == "done" and record["returncode"] == 0 and not record["adopted"]
        assert record["run_folder"] == f"{algo}/CartPole-v1_1"
        assert record["command"][1 : 1 + len(entry)] == entry
        command = " ".join(record["command"])
        assert f"--algo {algo} --env CartPole-v1 --seed 0 -n 1000 --eval-freq 500 --eval-episodes 2" in command
        assert "--n-eval-envs 1" in command and "-conf" not in command  # CartPole-v1 has its own entries
        assert 0 < record["training_start_s"] < record["wall_time_s"]
        evaluations = np.load(log_folder / record["run_folder"] / "evaluations.npz")
        assert record["last_eval_timestep"] == evaluations["timesteps"][-1] >= 500
        assert record["final_return"] == pytest.approx(evaluations["results"][-1].mean())
        assert (log_folder / record["log_file"]).is_file()
        assert f"| {algo} | CartPole-v1 | 0 | done |" in report
        value = f"{record['final_return']:.1f}"
        assert f"{value} [{value}, {value}] (1/1)" in report  # IQM [interval] across the (one) seed
    assert "| CartPole-v1 (1k steps) |" in report and "## Wall-clock time per run" in report
    assert "`ppo.yml`: `CartPole-v1`" in report
    for plot in ("learning_curves_steps.png", "learning_curves_wallclock.png"):
        assert (log_folder / plot).read_bytes()[:8] == PNG_MAGIC
        assert f"![{plot}]({plot})" in report
    assert "done" in process.stdout and "Wrote" in process.stdout


def test_second_run_skips_done_runs_and_adopts_zoo_runs(benchmark):
    workdir, log_folder, first = benchmark
    assert first.returncode == 0, describe(first)
    es_record = read_json(log_folder / "runs" / "es_CartPole-v1_0.json")
    (log_folder / "runs" / "ppo_CartPole-v1_0.json").unlink()  # its zoo run folder is still there
    process = run_benchmark(workdir / "tiny.yml", workdir)
    assert process.returncode == 0, describe(process)
    assert "2 done (skipped), 0 to train" in process.stdout
    assert "skip ppo CartPole-v1 seed 0: adopted a finished zoo run" in process.stdout
    assert sorted(path.name for path in (log_folder / "es").iterdir()) == ["CartPole-v1_1"]  # nothing trained
    assert sorted(path.name for path in (log_folder / "ppo").iterdir()) == ["CartPole-v1_1"]
    assert read_json(log_folder / "runs" / "es_CartPole-v1_0.json") == es_record
    adopted = read_json(log_folder / "runs" / "ppo_CartPole-v1_0.json")
    assert adopted["adopted"] and adopted["status"] == "done" and adopted["run_folder"] == "ppo/CartPole-v1_1"
    assert "(adopted: training only)" in (log_folder / "results.md").read_text()


def test_a_failing_run_is_reported_and_the_others_go_on(benchmark, tmp_path):
    _, log_folder, first = benchmark
    assert first.returncode == 0, describe(first)
    moved = tmp_path / "moved"
    shutil.copytree(log_folder, moved)  # records keep run folders relative to the log folder
    config = write_config(tmp_path, "failing", **{**TINY, "algos": ["es"], "envs": ["CartPole-v1", "NoSuchEnv-v0"]})
    process = run_benchmark(config, tmp_path, "--log-folder", str(moved))
    assert process.returncode == 1, describe(process)
    assert "1 done (skipped), 1 to train" in process.stdout
    assert "failed" in process.stdout and "1 run(s) failed: es NoSuchEnv-v0 seed 0" in process.stderr
    record = read_json(moved / "runs" / "es_NoSuchEnv-v0_0.json")
    assert record["status"] == "failed" and record["returncode"] != 0
    assert "NoSuchEnv-v0 not found in gym registry" in record["error"]
    report = (moved / "results.md").read_text()
    assert "| es | NoSuchEnv-v0 | 0 | failed |" in report and "| es | CartPole-v1 | 0 | done |" in report
    assert "## Failed runs" in report and "NoSuchEnv-v0 not found in gym registry" in report


def test_dry_run_prints_the_commands_and_trains_nothing(tmp_path):
    config = write_config(
        tmp_path, "mujoco",
        algos={"ppo": None, "es": {"n_workers": 2, "params": {"policy_kwargs": "dict(net_arch=[8])"}}},
        envs=[{"id": "HalfCheetah-v5", "n_timesteps": {"default": 2000, "es": 4000}}],
        seeds=[3], n_timesteps=1000, eval_freq=1000, eval_episodes=1, tensorboard=True,
    )  # fmt: skip
    process = run_benchmark(config, tmp_path, "--dry-run", "--jobs", "3")
    assert process.returncode == 0, describe(process)
    lines = [line for line in process.stdout.splitlines() if " --algo " in line]
    assert len(lines) == 2
    log_folder = Path("logs", "benchmark", "mujoco")
    ppo, es = lines
    assert "-m rl_zoo3.train --algo ppo --env HalfCheetah-v5 --seed 3 -n 2000" in ppo
    assert f"-conf {log_folder / 'hyperparams' / 'ppo.yml'}" in ppo and f"-tb {log_folder / 'tensorboard'}" in ppo
    assert "-m sb3_bierl.zoo train --algo es --env HalfCheetah-v5 --seed 3 -n 4000" in es
    assert "-params 'policy_kwargs:dict(net_arch=[8])' n_workers:2" in es and "-conf" not in es
    # the merged file exists (the printed commands run as they are), nothing else was written
    assert sorted(str(path.relative_to(tmp_path)) for path in (tmp_path / log_folder).rglob("*")) == [
        str(log_folder / "hyperparams"), str(log_folder / "hyperparams" / "ppo.yml"),
    ]  # fmt: skip


def test_the_old_name_still_works():
    """``sb3_bierl.benchmark``, the runner's old name: same command (no warning), same names."""
    from sb3_bierl import benchmark as old_module
    from sb3_bierl.benchmarks import head_to_head

    command = [sys.executable, "-m", "sb3_bierl.benchmark", "--help"]
    process = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert process.returncode == 0 and process.stderr == "", describe(process)
    assert process.stdout.startswith("usage: python -m sb3_bierl.benchmarks.head_to_head ")
    assert old_module.__all__ == head_to_head.__all__ and old_module.load_config is load_config


# ---------------------------------------------------------------------- in-process pieces (no training)
def test_budgets_most_specific_first(tmp_path):
    config = load_config(
        write_config(
            tmp_path, "budgets",
            algos=["ppo", {"es": {"n_timesteps": "2e6"}}, "bierl"],
            envs=["Pendulum-v1", {"id": "Hopper-v5", "n_timesteps": 3_000_000},
                  {"id": "Swimmer-v5", "n_timesteps": {"default": "5e5", "bierl": 4_000_000}}],
            seeds=[0, 1], n_timesteps=1_000_000,
        )
    )
    budgets = {(run.algo, run.env_id): run.n_timesteps for run in expand_runs(config)}
    assert budgets == {
        ("ppo", "Pendulum-v1"): 1_000_000, ("es", "Pendulum-v1"): 2_000_000, ("bierl", "Pendulum-v1"): 1_000_000,
        ("ppo", "Hopper-v5"): 3_000_000, ("es", "Hopper-v5"): 2_000_000, ("bierl", "Hopper-v5"): 3_000_000,
        ("ppo", "Swimmer-v5"): 500_000, ("es", "Swimmer-v5"): 2_000_000, ("bierl", "Swimmer-v5"): 4_000_000,
    }  # fmt: skip
    assert len(expand_runs(config)) == 18 and config.log_folder == Path("logs/benchmark/budgets")
    assert config.eval_freq == 10_000 and config.eval_episodes == 10


@pytest.mark.parametrize(
    "config, message",
    [
        ({"algos": ["ppo"], "envs": ["CartPole-v1"], "n_timestep": 1000}, "unknown keys"),
        ({"algos": ["ppo"], "envs": ["CartPole-v1"]}, "no budget"),
        ({"algos": ["ppo"], "envs": ["CartPole-v1"], "n_timesteps": 1000, "eval_freq": 2000}, "no evaluation"),
        ({"algos": ["ppo"], "envs": [{"id": "CartPole-v1", "n_timesteps": {"sac": 10}}], "n_timesteps": 10}, "not among"),
        ({"algos": ["ppo", "ppo"], "envs": ["CartPole-v1"], "n_timesteps": 1000}, "duplicated"),
    ],
)
def test_config_errors(tmp_path, config, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, "bad", **config))


def test_v5_envs_use_the_zoos_v4_entries(tmp_path):
    assert other_version_entry("Hopper-v5", {"Hopper-v4": {}, "Hopper-v3": {}, "Hopper-v6": {}}) == "Hopper-v4"
    assert other_version_entry("Hopper-v2", {"Hopper-v4": {}, "Hopper-v6": {}}) == "Hopper-v6"
    assert other_version_entry("Hopper-v5", {"HopperBulletEnv-v0": {}}) is None
    path = write_config(tmp_path, "zoo", algos=["ppo", "es"], envs=["HalfCheetah-v5", "CartPole-v1"], n_timesteps=10_000,
                        log_folder=str(tmp_path / "logs"))  # fmt: skip
    sources = resolve_hyperparameters(load_config(path))
    merged = tmp_path / "logs" / "hyperparams" / "ppo.yml"
    assert sources["ppo", "HalfCheetah-v5"].entry == "HalfCheetah-v4" and sources["ppo", "HalfCheetah-v5"].conf_file == merged
    assert sources["ppo", "CartPole-v1"].entry == "CartPole-v1" and sources["ppo", "CartPole-v1"].conf_file is None
    assert sources["es", "HalfCheetah-v5"].entry == "HalfCheetah-v5" and sources["es", "HalfCheetah-v5"].conf_file is None
    assert sources["es", "CartPole-v1"].entry == "default"
    entries = yaml.safe_load(merged.read_text())
    with open(sources["ppo", "CartPole-v1"].base_file) as file:
        zoo = yaml.safe_load(file)
    assert entries == {**zoo, "HalfCheetah-v5": zoo["HalfCheetah-v4"]}
    assert "HalfCheetah-v5 <- HalfCheetah-v4" in merged.read_text()


def test_wall_clock_uses_what_was_seen_and_interpolates_the_rest():
    record = {"n_timesteps": 4000, "training_start_s": 2.0, "wall_time_s": 12.0, "eval_seen_at": [[2000, 5.0]]}
    seconds = wall_clock(np.array([1000, 2000, 3000, 4000]), record)
    np.testing.assert_allclose(seconds, [3.5, 5.0, 8.5, 12.0])
    adopted = {"n_timesteps": 1000, "wall_time_s": 10.0, "eval_seen_at": []}  # constant step rate
    np.testing.assert_allclose(wall_clock(np.array([500, 1000]), adopted), [5.0, 10.0])


def test_aggregate_across_seeds():
    first = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 1.0, 2.0]))
    second = (np.array([0.0, 20.0]), np.array([2.0, 2.0]))  # seeds evaluated at other steps: interpolated
    x, iqm, low, high = aggregate([first, second])
    np.testing.assert_allclose(x, [0, 10, 20])
    np.testing.assert_allclose(iqm, [1.0, 1.5, 2.0])  # the IQM of two values is their mean
    np.testing.assert_allclose(low, [0.0, 1.0, 2.0])  # bootstrap of two seeds: from both low to both high
    np.testing.assert_allclose(high, [2.0, 2.0, 2.0])
