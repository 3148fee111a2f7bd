"""Same seed, same result: a candidate's return depends on its parameters and episode seeds only, not on
which environment instance played it, what that instance played before, the backend, the worker count or
when the workers took over (BipedalWalker keeps its Box2D world across resets: a used instance drifts)."""

import math
import multiprocessing as mp
import threading
import time
import warnings

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest

from conftest import CountingEnv
from sb3_bierl import ES
from sb3_bierl.es import es as es_module
from sb3_bierl.evaluation import InProcessEvaluator, make_env_factory
from sb3_bierl.evaluation import processes
from sb3_bierl.evaluation.in_process import EnvReuse, check_env_history
from sb3_bierl.evaluation.processes import HistoryCheck

BOX2D, MUJOCO = "BipedalWalker-v3", "Hopper-v5"
MAX_STEPS = 100  # episode cap: a few thousand steps are several generations
STEPS = 1500  # per learn() call; two calls per run


def make_model(env_id, **kwargs):
    env = gym.make(env_id, max_episode_steps=MAX_STEPS)
    return ES("MlpPolicy", env, n_pairs=4, seed=3, noise_table_size=2**20, policy_kwargs=dict(net_arch=[16]), **kwargs)


def train(model, between=None):
    """Two learn() calls (``between`` runs between them); :return: the centre and the last returns."""
    try:
        model.learn(STEPS)
        if between is not None:
            between(model)
        model.learn(STEPS, reset_num_timesteps=False)
        return model.strategy.theta.copy(), model.last_rollout.returns.copy(), model.num_timesteps
    finally:
        model.close()


@pytest.fixture(scope="module")
def reference():
    """In-process runs, once per environment."""
    return {env_id: train(make_model(env_id, backend="inprocess")) for env_id in (BOX2D, MUJOCO)}


def assert_same_run(run, expected):
    np.testing.assert_array_equal(run[0], expected[0])  # bit for bit
    np.testing.assert_array_equal(run[1], expected[1])
    assert run[2] == expected[2]


def start_workers(model):
    model.evaluator.start()  # the workers take over here, between two generations
    assert model.evaluator.workers_running


@pytest.mark.timeout(120)
@pytest.mark.parametrize("env_id", [BOX2D, MUJOCO])
@pytest.mark.parametrize(
    "backend, n_workers, auto_seconds, between",
    [
        ("processes", 2, None, None),
        ("auto", 2, 0.0, None),  # workers start after the first slice: the switch depends on timing
        ("auto", 2, math.inf, start_workers),  # all in this process, then the workers from the 2nd learn()
        ("auto", 3, math.inf, None),  # never leaves this process (the slices share instances); another worker count
    ],
    ids=["processes-2", "auto-2-switch-early", "auto-2-switch-later", "auto-3-local"],
)
def test_same_seed_same_result_on_every_backend(reference, monkeypatch, env_id, backend, n_workers, auto_seconds, between):
    if auto_seconds is not None:
        monkeypatch.setattr(es_module, "AUTO_LOCAL_SECONDS", auto_seconds)
    run = train(make_model(env_id, backend=backend, n_workers=n_workers), between)
    assert_same_run(run, reference[env_id])


@pytest.mark.timeout(180)
def test_same_seed_same_result_with_ray(reference):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        for env_id in (BOX2D, MUJOCO):
            # Ray starts in the background while the first learn() runs here; the actors take over in the second
            assert_same_run(train(make_model(env_id, backend="ray", n_workers=2), start_workers), reference[env_id])
    finally:
        ray.shutdown()


def walker_rollouts(reuse_envs):
    """The same 2 candidates and seeds, evaluated on a new evaluator and again after 4 other candidates."""
    model = make_model(BOX2D, backend="inprocess")
    evaluator = InProcessEvaluator(make_env_factory(model.env), reuse_envs=reuse_envs)
    rng = np.random.default_rng(0)
    theta = model.strategy.theta
    params = theta + 0.05 * rng.standard_normal((2, len(theta)))
    seeds = np.array([[11, 12], [13, 14]])
    try:
        first = evaluator.evaluate(model.policy, params, seeds)
        others = theta + 0.05 * rng.standard_normal((4, len(theta)))
        evaluator.evaluate(model.policy, others, np.arange(20, 28).reshape(4, 2))
        again = evaluator.evaluate(model.policy, params, seeds)
    finally:
        evaluator.close()
    return first.episode_returns, again.episode_returns


def test_a_used_walker_instance_plays_differently_unless_renewed():
    first, again = walker_rollouts(reuse_envs=True)  # the old behaviour: the mechanism of the bug
    assert not np.array_equal(first, again)
    for reuse_envs in (None, False):  # default: the check finds the walker depends on its history
        first, again = walker_rollouts(reuse_envs)
        np.testing.assert_array_equal(first, again)


def test_history_check_verdicts():
    assert check_env_history(lambda: gym.make(BOX2D)) == "dependent"  # Box2D world kept across resets
    assert check_env_history(lambda: gym.make("LunarLanderContinuous-v3")) == "independent"  # new world per reset
    assert check_env_history(lambda: gym.make("InvertedPendulum-v5")) == "independent"  # mj_resetData
    assert check_env_history(lambda: gym.make("Pendulum-v1")) == "independent"


def wait_for_verdict(reuse, env_fn):
    import cloudpickle

    reuse.current(lambda: cloudpickle.dumps(env_fn))
    deadline = time.monotonic() + 30
    while reuse.verdict is None and time.monotonic() < deadline:
        reuse.current(None)
        time.sleep(0.01)
    return reuse.verdict


def test_the_starting_thread_leaves_the_warnings_of_the_main_thread_alone(monkeypatch):
    """The history check's helper, started from a thread (when other threads run), must not touch the process-wide
    warnings state: a catch_warnings entered there and left later put back the filters and handler of its start,
    so warnings the main thread recorded meanwhile (a user's catch_warnings, pytest.warns) went elsewhere."""
    inside, release = threading.Event(), threading.Event()

    def blocked_start(process):
        inside.set()
        release.wait(10)
        raise OSError("not started in this test")

    monkeypatch.setattr(processes, "history_check_start_method", lambda: "spawn")
    monkeypatch.setattr(mp.context.SpawnProcess, "start", blocked_start)
    check = HistoryCheck(cloudpickle.dumps(make_env_factory(gym.make("Counting-v0"))), 1.0)
    assert inside.wait(10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        release.set()
        check._helper.starter.join(10)
        warnings.warn("seen by the main thread")
    assert [str(w.message) for w in caught] == ["seen by the main thread"]
    assert check.poll()[0] == "error"  # the failed start is reported, not hidden
    check.stop()


def test_check_runs_in_a_helper_process_and_then_instances_are_reused():
    """The check's steps are not taken here (ES counts every step); once it answers, a safe env is reused."""
    assert wait_for_verdict(EnvReuse(None), make_env_factory(gym.make("Counting-v0", horizon=21))) is True
    assert CountingEnv.total_steps == 0
    model = make_model(MUJOCO, backend="inprocess")
    evaluator = InProcessEvaluator(make_env_factory(model.env))
    try:
        assert wait_for_verdict(evaluator.reuse, evaluator.env_fn) is True
        params = np.tile(model.strategy.theta, (2, 1))
        evaluator.evaluate(model.policy, params, np.array([[1, 2], [3, 4]]))
        instances = list(evaluator.envs)
        evaluator.evaluate(model.policy, params, np.array([[5, 6], [7, 8]]))
        assert all(a is b for a, b in zip(instances, evaluator.envs, strict=True))  # reused: no new instance
    finally:
        evaluator.close()
    assert EnvReuse(False).current(None) is False and EnvReuse(True).current(None) is True
    with pytest.raises(TypeError):
        EnvReuse("yes")
