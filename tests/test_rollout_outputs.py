"""Behaviour descriptors and recorded transitions: the extra outputs NSR-ES and ESAC ask of a rollout."""

import numpy as np
import pytest

from sb3_bierl import ES
from sb3_bierl.evaluation import InProcessEvaluator, default_behaviour_descriptor, make_env_factory
from sb3_bierl.evaluation.processes import ProcessEvaluator

NOISE = dict(noise_table_size=2**16, noise_seed=7)


def final_state(env, final_obs):
    return np.asarray(final_obs)[:2] * 2.0


@pytest.fixture(scope="module")
def model():
    return ES("MlpPolicy", "Counting-v0", n_pairs=2, seed=0, policy_kwargs=dict(net_arch=[8]), **NOISE)


def population_args(model):
    rng = np.random.default_rng(3)
    populations = [model.strategy.ask(model.noise, rng, 2, sigma) for sigma in (0.1, 0.3)]
    seeds = np.tile(rng.integers(0, 2**31 - 1, size=(2, 2)), (2, 1))
    return (model.policy, model.strategy, model.noise, populations, [model.strategy.theta] * 2, seeds, 0.0)


def test_descriptors_and_transitions_in_process(model):
    evaluator = InProcessEvaluator(make_env_factory(model.env))
    results = evaluator.evaluate_population(*population_args(model), final_state, True)
    for result in results:
        assert result.episode_descriptors.shape == (4, 2, 2)
        assert result.descriptors.shape == (4, 2)
        transitions = result.transitions
        assert len(transitions) == result.n_steps
        # per candidate: as many steps as its episodes, and the rewards sum to its returns
        for candidate in range(4):
            mine = transitions.candidates == candidate
            assert mine.sum() == result.lengths[candidate]
            assert np.isclose(transitions.rewards[mine].sum(), result.episode_returns[candidate].sum())
            assert transitions.truncated[mine].sum() == 2  # Counting-v0 ends by truncation
        # the last next_observation of each episode is its final observation (the descriptor's input)
        ends = np.flatnonzero(transitions.truncated)
        first = transitions.candidates[ends] == 0
        np.testing.assert_allclose(transitions.next_observations[ends][first][:, :2] * 2, result.episode_descriptors[0])
    evaluator.close()


@pytest.mark.timeout(120)
def test_worker_processes_return_the_same_outputs(model):
    env_fn = make_env_factory(model.env)
    reference, workers = InProcessEvaluator(env_fn), ProcessEvaluator(env_fn, n_workers=2, **NOISE)
    try:
        args = population_args(model)
        expected = reference.evaluate_population(*args, lambda env, obs: np.asarray(obs)[:1], True)
        results = workers.evaluate_population(*args, lambda env, obs: np.asarray(obs)[:1], True)
        for result, exp in zip(results, expected, strict=True):
            np.testing.assert_array_equal(result.episode_descriptors, exp.episode_descriptors)
            for name in ("candidates", "observations", "actions", "rewards", "terminated", "truncated"):
                got, want = getattr(result.transitions, name), getattr(exp.transitions, name)
                order, ref_order = (
                    np.argsort(result.transitions.candidates, kind="stable"),
                    np.argsort(exp.transitions.candidates, kind="stable"),
                )
                np.testing.assert_array_equal(got[order], want[ref_order])
    finally:
        reference.close()
        workers.close()


@pytest.mark.parametrize(
    "descriptor, message",
    [
        (lambda env, obs: np.zeros((2, 2)), "1-D array"),
        (lambda env, obs: np.array([np.nan]), "non-finite"),
    ],
)
def test_bad_descriptor_is_a_clear_error(model, descriptor, message):
    evaluator = InProcessEvaluator(make_env_factory(model.env))
    with pytest.raises(ValueError, match=message):
        evaluator.evaluate_population(*population_args(model), descriptor)
    evaluator.close()


def test_default_descriptor_falls_back_to_the_final_observation():
    import gymnasium as gym

    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(default_behaviour_descriptor(env, obs), obs.astype(np.float64))
    lander = gym.make("LunarLanderContinuous-v3")
    lander.reset(seed=0)
    assert default_behaviour_descriptor(lander, np.zeros(8)).shape == (2,)
