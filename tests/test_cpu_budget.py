"""The CPU-time budget (issue 13): any SB3 algorithm stops once its process tree has used the budget, evaluations excluded."""

import subprocess
import sys
import time

import gymnasium as gym
import pytest

psutil = pytest.importorskip("psutil")

from sb3_contrib import ARS
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.monitor import Monitor

from sb3_bierl import ES
from sb3_bierl.benchmarks.cpu_budget import (
    CPUBudgetExhausted,
    CPUTimeBudget,
    process_tree_cpu_seconds,
    read_cpu_log,
)

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


@pytest.mark.parametrize(
    "make, total",
    [
        (lambda: PPO("MlpPolicy", "CartPole-v1", n_steps=256, seed=0), 10_000_000),
        (lambda: ES("MlpPolicy", "CartPole-v1", seed=0, n_workers=1), 10_000_000),
        # a rollout ends at every step (the budget must still be checked); 3000 steps take far more than 1 s
        (lambda: SAC("MlpPolicy", "Pendulum-v1", learning_starts=50, seed=0), 3000),
    ],
    ids=["ppo", "es", "sac"],
)
def test_training_stops_at_the_budget_for_sb3_and_es_alike(make, total):
    model = make()
    budget = CPUTimeBudget(budget_s=1.0, check_interval_s=0.05)
    model.learn(total, callback=budget)
    assert budget.exhausted and 1.0 <= budget.used_s < 10.0
    assert 0 < model.num_timesteps < total
    # the budget spans learn calls: a second call stops at once
    steps = model.num_timesteps
    model.learn(total, callback=budget, reset_num_timesteps=False)
    assert model.num_timesteps - steps < min(50_000, total // 2)


def test_bad_budgets_are_refused():
    with pytest.raises(ValueError, match="positive"):
        CPUTimeBudget(0)
    with pytest.raises(ValueError, match="positive"):
        CPUTimeBudget(10, check_interval_s=-1)


@pytest.fixture(autouse=True)
def idle_descendants():
    """The budget counts this process's descendants: let those earlier tests left busy settle first (a forkserver
    started by an earlier test's ES keeps importing its preload modules for a few CPU seconds in the background)."""
    psutil = pytest.importorskip("psutil")

    def descendants_cpu() -> float:
        total = 0.0
        for child in psutil.Process().children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return total

    deadline, last = time.monotonic() + 30.0, descendants_cpu()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = descendants_cpu()
        if now - last < 0.01:
            break
        last = now
    yield


class SlowEvaluation(gym.Wrapper):
    """An evaluation env whose steps burn CPU: evaluations cost far more than training."""

    def step(self, action):
        end = time.process_time() + 0.004
        while time.process_time() < end:
            pass
        return self.env.step(action)


def test_evaluations_do_not_eat_the_budget_and_are_logged(tmp_path):
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=256, seed=0)
    slow = Monitor(SlowEvaluation(gym.make("CartPole-v1")))
    evaluation = EvalCallback(slow, eval_freq=512, n_eval_episodes=2, log_path=str(tmp_path))
    budget = CPUTimeBudget(budget_s=1.5, check_interval_s=0.05)
    before = time.process_time()
    model.learn(10_000_000, callback=[budget, evaluation])
    spent = time.process_time() - before
    assert budget.exhausted and budget.used_s >= 1.5  # training alone used the budget ...
    eval_steps = sum(sum(lengths) for lengths in evaluation.evaluations_length)
    assert len(evaluation.evaluations_timesteps) >= 2 and budget.eval_used_s >= 0.004 * eval_steps
    # ... evaluations came on top (how many fit depends on the machine's load: PPO's threads spin when it is busy)
    assert spent >= 0.95 * (budget.used_s + budget.eval_used_s)
    # the final evaluation is at the step where the budget stopped training
    assert evaluation.evaluations_timesteps[-1] == model.num_timesteps
    log = read_cpu_log(tmp_path)
    assert log is not None and log.budget_s == 1.5 and log.exhausted
    assert [row[0] for row in log.evaluations] == evaluation.evaluations_timesteps
    train = [row[1] for row in log.evaluations]
    assert train == sorted(train) and train[-1] >= 1.5 and log.end[0] == model.num_timesteps
    assert log.end[1] == pytest.approx(budget.used_s) and log.end[2] == pytest.approx(budget.eval_used_s)
    assert log.evaluations[-1][2] == pytest.approx(budget.eval_used_s)  # evaluation CPU, the last one included
    assert evaluation._on_step.__func__ is EvalCallback._on_step  # put back as it was


def test_an_algorithm_that_ignores_the_stop_is_interrupted():
    """sb3-contrib's ARS ignores a callback's False: the budget raises a KeyboardInterrupt (the zoo saves the model)."""
    model = ARS("LinearPolicy", "Pendulum-v1", n_delta=2, seed=0)
    budget = CPUTimeBudget(budget_s=1.0, check_interval_s=0.05)
    with pytest.raises(CPUBudgetExhausted):
        model.learn(10_000_000, callback=budget)
    assert budget.exhausted and 1.0 <= budget.used_s < 10.0


def test_es_is_evaluated_after_its_last_generation(tmp_path):
    """
    ES reports a generation's steps after its rollouts: the final evaluation waits for the generation's update.
    Evaluations at given step counts come on top of ``eval_freq``.
    """
    model = ES("MlpPolicy", "CartPole-v1", seed=0, n_workers=1)
    evaluation = EvalCallback(
        Monitor(gym.make("CartPole-v1")), eval_freq=10_000_000, n_eval_episodes=1, log_path=str(tmp_path)
    )
    budget = CPUTimeBudget(budget_s=1.0, check_interval_s=0.05, eval_at_steps=[1000, 100, 10_000_000])
    model.learn(10_000_000, callback=[budget, evaluation])
    # evaluations at the first step at or past 100 and 1000 steps, then the one at the end
    assert budget.exhausted and evaluation.evaluations_timesteps == [100, 1000, model.num_timesteps]
    log = read_cpu_log(tmp_path)
    assert log.exhausted and log.end[0] == log.evaluations[-1][0] == model.num_timesteps
