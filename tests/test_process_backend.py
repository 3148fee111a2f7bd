import functools
import gc
import multiprocessing as mp
import os
import signal
import time
from multiprocessing import shared_memory

import numpy as np
import pytest
from faulty_envs import FAULT_SEED, FaultyEnv, UnevenEnv

from sb3_bierl import ES
from sb3_bierl.es import es as es_module
from sb3_bierl.evaluation import InProcessEvaluator, make_env_factory
from sb3_bierl.evaluation.pool import dispatch_chunks
from sb3_bierl.evaluation.processes import ProcessEvaluator
from sb3_bierl.evaluation.workers import RolloutWorker
from sb3_bierl.strategies import NoiseTable

NOISE = dict(noise_table_size=2**16, noise_seed=7)


@pytest.fixture(scope="module")
def model():
    return ES("MlpPolicy", "Counting-v0", n_pairs=3, seed=0, policy_kwargs=dict(net_arch=[8]), **NOISE)


@pytest.fixture(scope="module")
def evaluators(model):
    """The reference in-process evaluator and a 2-worker one (started once for the module)."""
    env_fn = make_env_factory(model.env)
    reference, workers = InProcessEvaluator(env_fn), ProcessEvaluator(env_fn, n_workers=2, **NOISE)
    yield reference, workers
    reference.close()
    workers.close()


def assert_same(result, expected):
    np.testing.assert_array_equal(result.returns, expected.returns)
    np.testing.assert_array_equal(result.lengths, expected.lengths)
    np.testing.assert_array_equal(result.episode_returns, expected.episode_returns)
    np.testing.assert_array_equal(result.episode_lengths, expected.episode_lengths)
    # Observation statistics are merged candidate by candidate, in order: the split does not matter
    np.testing.assert_array_equal(result.obs_rms.mean, expected.obs_rms.mean)
    np.testing.assert_array_equal(result.obs_rms.var, expected.obs_rms.var)
    assert result.obs_rms.count == expected.obs_rms.count


@pytest.mark.timeout(120)
def test_evaluate_population_matches_in_process(model, evaluators):
    reference, workers = evaluators
    # Non-trivial observation statistics, so that the buffers sent to the workers matter
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


@pytest.mark.timeout(120)
def test_evaluate_matches_in_process(model, evaluators):
    reference, workers = evaluators
    rng = np.random.default_rng(2)
    # 5 candidates on 2 workers: uneven slices; also more workers than candidates below
    params = model.strategy.theta + 0.3 * rng.standard_normal((5, model.strategy.dim))
    seeds = rng.integers(0, 2**31 - 1, size=(5, 3))
    assert_same(workers.evaluate(model.policy, params, seeds), reference.evaluate(model.policy, params, seeds))
    assert_same(
        workers.evaluate(model.policy, params[:1], seeds[:1]), reference.evaluate(model.policy, params[:1], seeds[:1])
    )


@pytest.mark.timeout(120)
def test_other_noise_table_falls_back_to_vectors(model, evaluators):
    reference, workers = evaluators
    noise = NoiseTable(2**16, seed=8)  # not the table the workers build
    population = model.strategy.ask(noise, np.random.default_rng(3), 3, 0.1)
    seeds = np.tile(np.arange(3)[:, None], (2, 1))
    args = (model.policy, model.strategy, noise, [population], [model.strategy.theta], seeds)
    (result,), (expected,) = workers.evaluate_population(*args), reference.evaluate_population(*args)
    assert_same(result, expected)


def new_children(before):
    return set(mp.active_children()) - before


def no_new_children(before, timeout=10.0):
    """Whether the children started since ``before`` are all gone (within ``timeout``: on a loaded
    machine the forkserver may take a moment to report a stopped worker's exit)."""
    deadline = time.monotonic() + timeout
    while new_children(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not new_children(before)


def run_faulty(model, mode):
    """Worker 0 fails at its first step while worker 1 is busy for ~50 s."""
    before = set(mp.active_children())
    evaluator = ProcessEvaluator(functools.partial(FaultyEnv, mode=mode), n_workers=2, **NOISE)
    params = np.tile(model.strategy.theta, (2, 1))
    seeds = np.array([[FAULT_SEED], [1]])
    start = time.monotonic()
    try:
        with pytest.raises(RuntimeError) as error:
            evaluator.evaluate(model.policy, params, seeds)
    finally:
        elapsed = time.monotonic() - start
        evaluator.close()
    assert elapsed < 20  # includes starting the workers
    assert no_new_children(before)
    return str(error.value)


@pytest.mark.timeout(60)
def test_worker_exception_raises_with_traceback(model):
    message = run_faulty(model, "raise")
    assert "boom in FaultyEnv.step" in message and "Traceback" in message and "worker 0" in message


@pytest.mark.timeout(60)
def test_dead_worker_raises(model):
    message = run_faulty(model, "exit")
    assert "worker 0" in message and "exited with code 1" in message


@pytest.mark.timeout(60)
def test_close_is_idempotent_and_workers_ignore_sigint(model):
    before = set(mp.active_children())
    evaluator = ProcessEvaluator(make_env_factory(model.env), n_workers=2, **NOISE)
    evaluator.close()  # before any worker started
    seeds = np.zeros((2, 1), dtype=np.int64)
    evaluator.evaluate(model.policy, np.tile(model.strategy.theta, (2, 1)), seeds)
    children = new_children(before)
    assert len(children) == 2
    for child in children:  # Ctrl-C is for the parent only
        os.kill(child.pid, signal.SIGINT)
    time.sleep(0.2)
    evaluator.evaluate(model.policy, np.tile(model.strategy.theta, (2, 1)), seeds)
    assert new_children(before) == children
    evaluator.close()
    evaluator.close()
    assert no_new_children(before)
    evaluator.__del__()


def worker_pids(evaluator):
    return [w.process.pid for w in evaluator._workers]


@pytest.mark.timeout(120)
def test_es_with_worker_processes_matches_in_process():
    from sb3_bierl import BiERL

    kwargs = dict(n_pairs=3, seed=4, policy_kwargs=dict(net_arch=[8]), meta="lstm", meta_interval=2, meta_n_pairs=1)
    single = BiERL("MlpPolicy", "Counting-v0", n_workers=1, **kwargs)
    single.learn(1000)
    single.learn(500, reset_num_timesteps=False)
    before = set(mp.active_children())
    multi = BiERL("MlpPolicy", "Counting-v0", n_workers=2, backend="processes", **kwargs)
    multi.learn(1000)
    pids = worker_pids(multi.evaluator)
    assert len(pids) == 2
    multi.learn(500, reset_num_timesteps=False)
    assert worker_pids(multi.evaluator) == pids  # the workers outlive learn()
    assert multi.num_timesteps == single.num_timesteps
    # Same rollouts, and observation statistics merged in candidate order: the very same result
    np.testing.assert_array_equal(multi.strategy.theta, single.strategy.theta)
    np.testing.assert_array_equal(multi.obs_rms.var, single.obs_rms.var)
    multi.close()
    assert no_new_children(before)
    multi.learn(300, reset_num_timesteps=False)  # restarts them
    assert len(new_children(before)) == 2
    del multi
    gc.collect()
    assert no_new_children(before)  # garbage collection stops them


@pytest.mark.timeout(120)
def test_error_in_learn_stops_workers():
    before = set(mp.active_children())
    model = ES("MlpPolicy", "Counting-v0", n_pairs=2, seed=0, n_workers=2, backend="processes", **NOISE)
    model.learn(200)
    assert len(new_children(before)) == 2

    def fail(locals_, globals_):
        raise KeyError("callback failure")

    with pytest.raises(KeyError):
        model.learn(200, callback=fail)
    assert no_new_children(before)
    model.learn(200)  # usable again
    model.close()


@pytest.mark.timeout(120)
def test_local_phase_then_workers_give_the_same_results(model):
    """With ``local_until_s``, slices run in this process until the workers are up: same results."""
    before = set(mp.active_children())
    env_fn = make_env_factory(model.env)
    reference = InProcessEvaluator(env_fn)
    lazy = ProcessEvaluator(env_fn, n_workers=2, local_until_s=float("inf"), **NOISE)
    eager = ProcessEvaluator(env_fn, n_workers=2, local_until_s=0.0, **NOISE)
    rng = np.random.default_rng(5)
    try:
        for _ in range(3):
            population = model.strategy.ask(model.noise, rng, 3, 0.1)
            seeds = np.tile(rng.integers(0, 2**31 - 1, size=(3, 1)), (2, 1))
            args = (model.policy, model.strategy, model.noise, [population], [model.strategy.theta], seeds)
            (expected,) = reference.evaluate_population(*args)
            for evaluator in (lazy, eager):
                (result,) = evaluator.evaluate_population(*args)
                assert_same(result, expected)
        assert not lazy.workers_running  # never started: short jobs do not pay for workers
        deadline = time.monotonic() + 30
        while not eager.workers_running and time.monotonic() < deadline:
            eager.evaluate_population(*args)  # the workers started in the background; the slices ran here meanwhile
            time.sleep(0.05)
        assert eager.workers_running
        assert_same(eager.evaluate_population(*args)[0], expected)
    finally:
        reference.close()
        lazy.close()
        eager.close()
    assert no_new_children(before)


@pytest.mark.timeout(120)
def test_workers_take_over_in_the_middle_of_a_call(model, monkeypatch):
    """Workers that come up while a call runs here take its remaining chunks (cut finer meanwhile): same results."""
    before = set(mp.active_children())
    env_fn = make_env_factory(model.env)
    reference = InProcessEvaluator(env_fn)
    evaluator = ProcessEvaluator(env_fn, n_workers=2, local_until_s=0.0, **NOISE)
    real_answer = RolloutWorker.answer

    def answer(worker, command, message):  # a chunk run here: the workers' start ends during it
        result = real_answer(worker, command, message)
        if evaluator._launcher is not None:
            evaluator._launcher.join(timeout=60)
        return result

    on_workers = []
    real_run_on_workers = evaluator._run_on_workers

    def run_on_workers(command, policy, shared, payloads, *args):
        on_workers.append(len(payloads))
        return real_run_on_workers(command, policy, shared, payloads, *args)

    monkeypatch.setattr(RolloutWorker, "answer", answer)  # this process only: workers import the module anew
    monkeypatch.setattr(evaluator, "_run_on_workers", run_on_workers)
    rng = np.random.default_rng(8)
    population = model.strategy.ask(model.noise, rng, 4, 0.1)
    seeds = np.tile(rng.integers(0, 2**31 - 1, size=(4, 1)), (2, 1))
    args = (model.policy, model.strategy, model.noise, [population], [model.strategy.theta], seeds)
    try:
        (expected,) = reference.evaluate_population(*args)
        (result,) = evaluator.evaluate_population(*args)
        assert_same(result, expected)
        # the first call: 8 chunks of 1 (2 workers x 4); the launch starts with it (local_until_s=0), ends during the 1st
        assert on_workers == [7] and evaluator.workers_running
        (result,) = evaluator.evaluate_population(*args)
        assert_same(result, expected)
        assert on_workers == [7, 2]  # then one slice per worker
    finally:
        reference.close()
        evaluator.close()
    assert no_new_children(before)


@pytest.mark.timeout(60)
def test_noise_table_is_shared_and_freed(model, evaluators):
    _, workers = evaluators
    population = model.strategy.ask(model.noise, np.random.default_rng(6), 3, 0.1)
    seeds = np.zeros((6, 1), dtype=np.int64)
    workers.evaluate_population(model.policy, model.strategy, model.noise, [population], [model.strategy.theta], seeds)
    name = workers._noise_source.name
    shared_memory.SharedMemory(name=name).close()  # exists while the workers may need it
    workers.close()
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)


def test_dispatch_chunks():
    assert dispatch_chunks(32, 2) == [(0, 16), (16, 32)]  # no previous call: one slice per worker
    assert dispatch_chunks(32, 2, np.full(32, 1000)) == [(0, 16), (16, 32)]  # episodes as long: one batch each
    assert dispatch_chunks(3, 4) == [(0, 1), (1, 2), (2, 3)]
    assert dispatch_chunks(32, 1, np.arange(1, 33)) == [(0, 32)]
    uneven = np.array([20, 1000] * 16)
    chunks = dispatch_chunks(32, 2, uneven)
    assert chunks == [(0, 8), (8, 14), (14, 19), (19, 23), (23, 26), (26, 28), (28, 30), (30, 32)]  # guided
    assert dispatch_chunks(7, 2, uneven, min_size=2)[-1] == (6, 7)  # the last chunk takes what is left


def record_dispatch(evaluator, monkeypatch):
    """:return: a list that gets (worker rank, start, stop, whether the call's shared data came) for each chunk sent"""
    sent, send = [], evaluator._send

    def recording_send(worker, request):
        message = request[1]
        sent.append((worker.rank, message["start"], message["stop"], "call" in message))
        send(worker, request)

    monkeypatch.setattr(evaluator, "_send", recording_send)
    return sent


def assert_uneven_generations_match(model, evaluator, n_calls=3):
    """Population calls on ``UnevenEnv`` give what an in-process run gives; ``evaluator`` is closed at the end."""
    reference = InProcessEvaluator(UnevenEnv)
    rng = np.random.default_rng(3)
    try:
        for _ in range(n_calls):
            populations = [model.strategy.ask(model.noise, rng, 8, 0.1) for _ in range(2)]
            seeds = np.tile(rng.integers(0, 2**31 - 1, size=(8, 2)), (2, 1))
            centres = [model.strategy.theta, model.strategy.theta + 0.05]
            args = (model.policy, model.strategy, model.noise, populations, centres, seeds)
            results, expected = evaluator.evaluate_population(*args), reference.evaluate_population(*args)
            for result, exp in zip(results, expected, strict=True):
                assert_same(result, exp)
    finally:
        reference.close()
        evaluator.close()


@pytest.mark.timeout(120)
def test_dynamic_dispatch_gives_the_in_process_results(model, monkeypatch):
    """Uneven episodes: after the first call, chunks go to whichever worker is free; the results do not change."""
    evaluator = ProcessEvaluator(UnevenEnv, n_workers=2, **NOISE)
    sent = record_dispatch(evaluator, monkeypatch)
    assert_uneven_generations_match(model, evaluator)
    first, later = sent[:2], sent[2:]
    assert [(start, stop) for _, start, stop, _ in first] == [(0, 16), (16, 32)]  # no lengths known yet: slices
    per_call = len(later) // 2
    assert per_call > 2 and len(later) == 2 * per_call
    for call in (later[:per_call], later[per_call:]):
        assert [start for _, start, _, _ in call] == [0] + [stop for _, _, stop, _ in call[:-1]]  # in order, all
        assert {rank for rank, *_ in call} == {0, 1}
        # each worker gets the call's shared data (the centres) with its first chunk only
        assert sorted(rank for rank, _, _, shared in call if shared) == [0, 1]


def test_default_worker_count_and_backend(monkeypatch):
    monkeypatch.setattr(es_module, "usable_cpus", lambda: 3)
    model = ES("MlpPolicy", "Counting-v0", n_pairs=2, **NOISE)
    assert model.n_workers is None and isinstance(model.evaluator, ProcessEvaluator)
    assert model.evaluator.n_workers == 3 and model.evaluator.local_until_s == es_module.AUTO_LOCAL_SECONDS
    monkeypatch.setattr(es_module, "usable_cpus", lambda: 1)
    assert isinstance(ES("MlpPolicy", "Counting-v0", n_pairs=2, **NOISE).evaluator, InProcessEvaluator)
    explicit = ES("MlpPolicy", "Counting-v0", n_pairs=2, n_workers=2, backend="processes", **NOISE)
    assert explicit.evaluator.local_until_s is None  # an explicit backend runs every rollout in the workers


UNGUARDED_SCRIPT = """
import gymnasium as gym
import numpy as np
from sb3_bierl import ES


class ScriptEnv(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), -float(action[0] ** 2), False, self.t >= 50, {}


print("script body runs")  # once: workers must not re-run the script
gym.register("ScriptEnv-v0", entry_point="__main__:ScriptEnv")
model = ES("MlpPolicy", "ScriptEnv-v0", n_pairs=4, seed=0, backend="processes", n_workers=2)
model.learn(3000)
print("trained", model.num_timesteps)
"""


@pytest.mark.timeout(180)
def test_unguarded_script_with_an_env_defined_in_it(tmp_path):
    """No ``if __name__ == "__main__":`` needed: workers neither re-run the script nor need to import it."""
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(UNGUARDED_SCRIPT)
    process = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=170, cwd=tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.count("script body runs") == 1
    assert "trained 3" in process.stdout
