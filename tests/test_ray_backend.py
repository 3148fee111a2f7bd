import functools
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from faulty_envs import FAULT_SEED, FaultyEnv, UnevenEnv  # noqa: E402
from test_process_backend import NOISE, assert_same, assert_uneven_generations_match, record_dispatch  # noqa: E402

from sb3_bierl import ES  # noqa: E402
from sb3_bierl.evaluation import (  # noqa: E402
    InProcessEvaluator,
    make_env_factory,
    ray_backend,  # noqa: E402
)
from sb3_bierl.evaluation.ray_backend import RayEvaluator  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    """One local Ray with 2 CPUs for the module: each test closes its 2 actors before the next."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model():
    return ES("MlpPolicy", "Counting-v0", n_pairs=3, seed=0, policy_kwargs=dict(net_arch=[8]), **NOISE)


def assert_dead(actors, timeout=30.0):
    """Every actor is dead, or dies within ``timeout`` (``ray.kill`` is asynchronous)."""
    deadline = time.monotonic() + timeout
    for actor in actors:
        while True:
            try:
                ray.get(actor.ready.remote(), timeout=timeout)
            except ray.exceptions.RayActorError:
                break
            assert time.monotonic() < deadline, "a killed actor still answers"
            time.sleep(0.1)


@pytest.mark.timeout(120)
def test_evaluate_population_matches_in_process(model):
    env_fn = make_env_factory(model.env)
    reference, workers = InProcessEvaluator(env_fn), RayEvaluator(env_fn, n_workers=2, **NOISE)
    try:
        model.obs_rms.mean[:] = [0.1, -0.2, 0.3]
        model.sync_policy()
        rng = np.random.default_rng(1)
        populations = [model.strategy.ask(model.noise, rng, 3, sigma) for sigma in (0.05, 0.5)]
        centres = [model.strategy.theta, model.strategy.theta + 0.1]
        seeds = np.tile(rng.integers(0, 2**31 - 1, size=(3, 2)), (2, 1))
        args = (model.policy, model.strategy, model.noise, populations, centres, seeds, 0.5)
        expected = reference.evaluate_population(*args)
        results = workers.evaluate_population(*args)
        assert len(results) == len(expected) == 2
        for result, exp in zip(results, expected):
            assert_same(result, exp)
        assert len(np.unique(results[0].returns)) == 6  # distinct candidates
        # Uneven slices, sent as vectors
        params = model.strategy.theta + 0.3 * rng.standard_normal((5, model.strategy.dim))
        seeds = rng.integers(0, 2**31 - 1, size=(5, 3))
        assert_same(workers.evaluate(model.policy, params, seeds), reference.evaluate(model.policy, params, seeds))
    finally:
        reference.close()
        actors = [w.actor for w in workers._workers]
        workers.close()
        workers.close()  # idempotent
    assert_dead(actors)


def test_es_with_ray_matches_in_process():
    kwargs = dict(n_pairs=3, seed=4, policy_kwargs=dict(net_arch=[8]))
    single = ES("MlpPolicy", "Counting-v0", n_workers=1, **kwargs)
    single.learn(600)
    single.learn(300, reset_num_timesteps=False)
    multi = ES("MlpPolicy", "Counting-v0", backend="ray", n_workers=2, **kwargs)
    assert isinstance(multi.evaluator, RayEvaluator)
    try:
        multi.learn(600)  # here while Ray starts in the background
        multi.evaluator.start()
        actors = [w.actor for w in multi.evaluator._workers]
        multi.learn(300, reset_num_timesteps=False)
        assert [w.actor for w in multi.evaluator._workers] == actors  # the actors outlive learn()
    finally:
        multi.close()
    assert_dead(actors)
    assert multi.num_timesteps == single.num_timesteps
    np.testing.assert_array_equal(multi.strategy.theta, single.strategy.theta)  # same result as in-process


def run_faulty(model, mode):
    """Actor 0 fails at its first step while actor 1 is busy for ~50 s."""
    evaluator = RayEvaluator(functools.partial(FaultyEnv, mode=mode), n_workers=2, **NOISE)
    evaluator.start()
    actors = [w.actor for w in evaluator._workers]
    params = np.tile(model.strategy.theta, (2, 1))
    seeds = np.array([[FAULT_SEED], [1]])
    start = time.monotonic()
    try:
        with pytest.raises(RuntimeError) as error:
            evaluator.evaluate(model.policy, params, seeds)
    finally:
        elapsed = time.monotonic() - start
        evaluator.close()
    assert elapsed < 20
    assert evaluator._workers == []
    assert_dead(actors)  # actor 1 was killed, not left busy
    return str(error.value)


@pytest.mark.timeout(120)
def test_actor_exception_raises_with_traceback(model):
    message = run_faulty(model, "raise")
    assert "boom in FaultyEnv.step" in message and "Traceback" in message and "worker 0" in message


@pytest.mark.timeout(120)
def test_dead_actor_raises(model):
    message = run_faulty(model, "exit")
    assert "worker 0" in message and "died" in message


def test_missing_ray_raises_import_error(monkeypatch):
    monkeypatch.setattr(ray_backend, "ray", None)
    with pytest.raises(ImportError, match=r'backend="ray" needs Ray: pip install "\.\[ray\]" in a checkout'):
        RayEvaluator(lambda: None, 2, **NOISE)


@pytest.mark.timeout(120)
def test_user_wrappers_reach_the_ray_actors():
    """Issue 11 on Ray: the actors' copies carry the user's wrapper (its rewards are all <= -100 per step)."""
    import gymnasium as gym
    from test_env_contract import ScaledReward

    model = ES("MlpPolicy", ScaledReward(gym.make("CartPole-v1")), n_pairs=2, backend="ray", n_workers=2, seed=0, **NOISE)
    try:
        model.evaluator.start()  # the actors, not this process (where the first rollouts run while Ray starts)
        model.learn(300)
        assert np.all(model.last_rollout.returns <= -100.0 * model.last_rollout.lengths)
    finally:
        model.close()


@pytest.mark.timeout(120)
def test_dynamic_dispatch_with_one_put_per_call(model, monkeypatch):
    """Chunks go to whichever actor is free; a call's shared data (the centres) goes once to the object store."""
    evaluator = RayEvaluator(UnevenEnv, n_workers=2, **NOISE)
    sent = record_dispatch(evaluator, monkeypatch)
    put, puts = ray.put, []
    monkeypatch.setattr(ray, "put", lambda value, **kwargs: puts.append(type(value).__name__) or put(value, **kwargs))
    assert_uneven_generations_match(model, evaluator)
    assert puts == ["ndarray", "dict", "dict", "dict"]  # the noise table once, then each call's data once
    assert len(sent) > 2 + 2 * 2  # slices for the first call, then more chunks than actors
    assert sum(shared for *_, shared in sent) == 3 * 2  # once per actor and call, not with every chunk
