"""The CPU-time budget (issue 13): any SB3 algorithm stops once its process tree has used the budget."""

import subprocess
import sys
import time

import pytest

psutil = pytest.importorskip("psutil")

from stable_baselines3 import PPO  # noqa: E402

from sb3_bierl import ES  # noqa: E402
from sb3_bierl.benchmarks.cpu_budget import CPUTimeBudget, process_tree_cpu_seconds  # noqa: E402

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def test_a_live_worker_process_and_a_finished_one_count():
    before = process_tree_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", BURN.format(seconds=60)])
    try:
        worker = psutil.Process(child.pid)
        deadline = time.monotonic() + 60
        while sum(worker.cpu_times()[:2]) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process_tree_cpu_seconds() - before >= 0.5  # a live child counts
    finally:
        child.kill()
        child.wait()
    finished = process_tree_cpu_seconds()
    subprocess.run([sys.executable, "-c", BURN.format(seconds=0.5)], check=True)
    assert process_tree_cpu_seconds() - finished >= 0.5  # and one waited for


@pytest.mark.parametrize("make", [lambda: PPO("MlpPolicy", "CartPole-v1", n_steps=256, seed=0), lambda: ES("MlpPolicy", "CartPole-v1", seed=0, n_workers=1)])
def test_training_stops_at_the_budget_for_sb3_and_es_alike(make):
    model = make()
    budget = CPUTimeBudget(budget_s=1.0, check_interval_s=0.05)
    model.learn(10_000_000, callback=budget)
    assert budget.exhausted and 1.0 <= budget.used_s < 10.0
    assert 0 < model.num_timesteps < 10_000_000
    # the budget spans learn calls: a second call stops at once
    steps = model.num_timesteps
    model.learn(10_000_000, callback=budget, reset_num_timesteps=False)
    assert model.num_timesteps - steps < 50_000


def test_bad_budgets_are_refused():
    with pytest.raises(ValueError, match="positive"):
        CPUTimeBudget(0)
    with pytest.raises(ValueError, match="positive"):
        CPUTimeBudget(10, check_interval_s=-1)
