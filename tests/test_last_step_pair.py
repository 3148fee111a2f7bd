"""``ES(last_step_pair=True)``: one more antithetic pair along the last step, in the gradient (Meier et al. 2019), and
``BiERL(meta="tpa", last_step_pair=True)``, whose two points are that pair (issue 9, session 17)."""

import numpy as np
import pandas as pd
import pytest
from conftest import CountingEnv, assert_chunked_and_resumed_runs_equal
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from sb3_bierl import ES, ESAC, NSRES, BiERL
from sb3_bierl.strategies import DirectedPairs, NoiseTable, OpenAIES, Population

HORIZON = 20  # CountingEnv's episode length
SMALL = dict(n_pairs=4, policy_kwargs=dict(net_arch=[8]))
GENERATION = 2 * 4 * HORIZON  # the population's steps
PAIR = 2 * HORIZON  # the pair's steps


def test_a_directed_pair_counts_as_a_population_pair_along_its_direction():
    """A directed pair along a noise-table row gives the gradient of the population with that row as one more pair."""
    rng = np.random.default_rng(0)
    noise = NoiseTable(100_000, seed=1)
    es = OpenAIES(rng.normal(size=11), weight_decay=0.01)
    full = es.ask(noise, rng, n_pairs=6, sigma=0.05)
    returns = rng.normal(size=12)
    population = Population(full.noise_indices[:5], 0.05)
    rows = np.r_[0:5, 6:11]  # the first five pairs' "+" then "-" returns
    directed = DirectedPairs(noise.get_batch(full.noise_indices[5:], 11), returns[[5, 11]])
    np.testing.assert_allclose(
        es.gradient(noise, population, returns[rows], directed=directed), es.gradient(noise, full, returns), rtol=1e-12
    )
    # and it moves the estimate: a direction the population does not have
    other = DirectedPairs(rng.normal(size=(1, 11)), returns[[5, 11]])
    assert not np.allclose(es.gradient(noise, population, returns[rows], directed=other), es.gradient(noise, full, returns))


def test_directed_pairs_reject_shaped_utilities_per_pair_sigmas_and_bad_shapes():
    noise = NoiseTable(10_000, seed=0)
    es = OpenAIES(np.zeros(5))
    population = es.ask(noise, np.random.default_rng(0), n_pairs=2, sigma=0.1)
    directed = DirectedPairs(np.ones((1, 5)), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="one sigma"):
        es.gradient(noise, population, np.arange(4.0), shaped=True, directed=directed)
    with pytest.raises(ValueError, match="one sigma"):
        es.gradient(noise, Population(population.noise_indices, np.array([0.1, 0.2])), np.arange(4.0), directed=directed)
    with pytest.raises(ValueError, match="directed returns"):
        es.gradient(noise, population, np.arange(4.0), directed=DirectedPairs(np.ones((1, 5)), np.zeros(3)))
    with pytest.raises(ValueError, match="Non-finite"):
        es.gradient(noise, population, np.arange(4.0), directed=DirectedPairs(np.ones((1, 5)), np.array([np.nan, 0.0])))


def make_es(seed=0, **kwargs):
    return ES("MlpPolicy", "Counting-v0", seed=seed, last_step_pair=True, **{**SMALL, **kwargs})


def test_es_rolls_out_the_pair_along_the_last_step_from_the_second_generation_and_steps_on_it():
    model = make_es(seed=1)
    seen = []
    evaluate, apply_update = model.evaluate_centres, model.apply_update

    def evaluate_centres(centres, n_episodes):
        seen.append((centres.copy(), model.strategy.theta.copy(), model.strategy.last_step.copy()))
        return evaluate(centres, n_episodes)

    updates = []

    def record_update(strategy, population, returns, hyperparameters, directed=None):
        updates.append(directed)
        return apply_update(strategy, population, returns, hyperparameters, directed)

    model.evaluate_centres, model.apply_update = evaluate_centres, record_update
    CountingEnv.total_steps = 0
    model.learn(GENERATION + 3 * (GENERATION + PAIR))
    assert model._n_updates == 4 and model.num_timesteps == CountingEnv.total_steps == GENERATION + 3 * (GENERATION + PAIR)
    assert updates[0] is None and all(isinstance(d, DirectedPairs) for d in updates[1:])  # no step to follow yet
    assert len(seen) == 3
    for (centres, theta, step), directed in zip(seen, updates[1:]):
        along = step / np.linalg.norm(step) * np.sqrt(step.size)
        np.testing.assert_allclose(centres, np.stack([theta + 0.02 * along, theta - 0.02 * along]), atol=1e-6)
        np.testing.assert_allclose(directed.directions, along[None], rtol=1e-12)
        assert directed.returns.shape == (2,) and np.all(np.isfinite(directed.returns))


def test_es_with_the_pair_is_deterministic_resumes_in_chunks_and_after_save(tmp_path):
    a, b = make_es(seed=3), make_es(seed=3)
    a.learn(12 * (GENERATION + PAIR))
    b.learn(12 * (GENERATION + PAIR))
    np.testing.assert_array_equal(a.strategy.theta, b.strategy.theta)
    ignored = make_es(seed=3)  # the same rollouts, the pair left out of the update
    apply_update = ignored.apply_update
    ignored.apply_update = lambda strategy, population, returns, hyperparameters, directed=None: apply_update(
        strategy, population, returns, hyperparameters
    )
    ignored.learn(a.num_timesteps)
    assert ignored.num_timesteps == a.num_timesteps
    assert not np.array_equal(ignored.strategy.theta, a.strategy.theta)  # the pair's returns move the steps
    resumed = assert_chunked_and_resumed_runs_equal(lambda: make_es(seed=3), a, GENERATION, tmp_path, 6 * (GENERATION + PAIR))
    assert resumed.last_step_pair


def test_a_non_finite_return_of_the_pair_ties_with_the_worst_and_a_population_without_finite_return_skips():
    model = make_es()
    model.learn(GENERATION)
    population = model.strategy.ask(model.noise, model.rng, model.n_pairs, 0.02)
    returns = np.arange(8.0)
    direction = np.ones((1, model.strategy.dim))
    steps = []
    for pair_returns in ([np.nan, 3.0], [0.0, 3.0], [3.0, 0.0], None):  # NaN becomes the worst finite return (0.0)
        strategy = model.strategy.copy()
        pair = None if pair_returns is None else DirectedPairs(direction, np.array(pair_returns))
        assert model.apply_update(strategy, population, returns, model.hyperparameters, pair)
        steps.append(strategy.last_step)
    np.testing.assert_array_equal(steps[0], steps[1])
    assert not np.allclose(steps[1], steps[2]) and not np.allclose(steps[1], steps[3])  # the pair's sign counts
    strategy = model.strategy.copy()
    with pytest.warns(UserWarning, match="skipping this update"):  # one finite pair does not make a step
        assert not model.apply_update(
            strategy, population, np.full(8, np.nan), model.hyperparameters, DirectedPairs(direction, np.array([1.0, 0.0]))
        )
    np.testing.assert_array_equal(strategy.theta, model.strategy.theta)
    with pytest.raises(ValueError, match=r"\(k, dim\)"):
        DirectedPairs(np.ones(model.strategy.dim), np.array([1.0, 0.0]))


def test_the_pair_is_rolled_out_at_the_generation_s_sigma_and_not_left_for_a_meta_generation():
    class SetSigma(BaseCallback):
        def _on_rollout_start(self):
            self.model.hyperparameters["sigma"] = 0.05

        def _on_step(self):
            return True

    model = make_es(seed=4)
    model.learn(GENERATION)
    seen = []
    evaluate = model.evaluate_centres

    def evaluate_centres(centres, n_episodes):
        seen.append(np.linalg.norm(centres[0] - model.strategy.theta) / np.sqrt(model.strategy.dim))
        return evaluate(centres, n_episodes)

    model.evaluate_centres = evaluate_centres
    model.learn(GENERATION + PAIR, callback=SetSigma(), reset_num_timesteps=False)
    assert seen == [pytest.approx(0.05, rel=1e-5)]
    assert model.last_pair is not None
    model.meta_generation(dict(model.hyperparameters), [dict(model.hyperparameters)] * 2)  # no stale pair in it
    assert model.last_pair is None


@pytest.mark.parametrize("cls, kwargs", [(NSRES, {}), (ESAC, dict(learning_starts=0))])
def test_the_pair_is_refused_where_the_generation_has_no_single_last_step(cls, kwargs, tmp_path):
    with pytest.raises(ValueError, match="last_step_pair works with OpenAI-ES only"):
        cls("MlpPolicy", "Pendulum-v1", last_step_pair=True, **kwargs)
    with pytest.raises(ValueError, match="last_step_pair works with OpenAI-ES only"):
        BiERL("MlpPolicy", "Pendulum-v1", inner="nsr_es" if cls is NSRES else "esac", last_step_pair=True)
    cls("MlpPolicy", "Pendulum-v1", **kwargs).save(tmp_path / "model")
    with pytest.raises(ValueError, match="last_step_pair works with OpenAI-ES only"):  # nor on load
        cls.load(tmp_path / "model", last_step_pair=True)


def make_tpa(seed=0, **kwargs):
    return BiERL("MlpPolicy", "Counting-v0", seed=seed, meta="tpa", **{**SMALL, **kwargs})


def test_tpa_takes_the_pair_as_its_two_points_at_no_meta_step(tmp_path):
    own, shared = make_tpa(seed=2), make_tpa(seed=2, last_step_pair=True)
    CountingEnv.total_steps = 0
    for name, model in (("own", own), ("shared", shared)):
        model.set_logger(configure(str(tmp_path / name), ["csv"]))
        model.learn(GENERATION + 8 * (GENERATION + PAIR))
    assert CountingEnv.total_steps == 2 * own.num_timesteps and own.num_timesteps == shared.num_timesteps
    meta = shared.meta_controller.summary()
    assert meta["meta_steps"] == 0 and meta["step_overhead"] == 0.0  # the two points move the inner level
    assert own.meta_controller.summary()["meta_steps"] == 8 * PAIR
    assert meta["n_meta_updates"] >= 1 and meta["first_update_generation"] == 1
    z = {name: pd.read_csv(tmp_path / name / "progress.csv")["meta/two_point_z"].dropna().to_numpy() for name in ("own", "shared")}
    assert len(z["own"]) == len(z["shared"]) == 8
    # the same points at the second generation (the first step is the same), the same test; then the centres differ
    assert z["own"][0] == z["shared"][0]
    assert not np.array_equal(own.strategy.theta, shared.strategy.theta)  # the pair is in the gradient


def test_a_meta_level_that_takes_every_generation_refuses_the_pair_and_one_with_an_interval_uses_it_between():
    for meta in ("lstm", "optuna"):
        with pytest.raises(ValueError, match="does nothing with meta"):
            BiERL("MlpPolicy", "Counting-v0", meta=meta, last_step_pair=True, **SMALL)
    model = BiERL("MlpPolicy", "Counting-v0", meta="lstm", meta_interval=3, meta_n_pairs=1, last_step_pair=True, **SMALL)
    used = []
    apply_update = model.apply_update

    def record_update(strategy, population, returns, hyperparameters, directed=None):
        used.append(directed is not None)
        return apply_update(strategy, population, returns, hyperparameters, directed)

    model.apply_update = record_update
    model.learn(12 * GENERATION)
    assert used[:6] == [False, True, True, False, True, True]  # generations 0 and 3 are meta updates
