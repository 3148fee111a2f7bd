"""The meta level's truncated fitness and the significance test that gates its steps (issue 9)."""

import numpy as np
import pytest
from scipy import stats

from sb3_bierl import BiERL
from sb3_bierl.meta import HyperparameterSpace, MetaController
from sb3_bierl.meta.fitness import candidate_fitness, pair_fitness, paired_t

SMALL = dict(n_pairs=4, policy_kwargs=dict(net_arch=[8]), meta_history_length=4)


def test_pair_fitness_scores_each_antithetic_pair():
    returns = np.array([[1.0, 5.0, 3.0, 2.0], [np.nan, 4.0, 6.0, np.nan]])  # pairs (1, 3), (5, 2) | (nan, 6), (4, nan)
    np.testing.assert_allclose(pair_fitness(returns, "mean"), [[2.0, 3.5], [np.nan, np.nan]])
    np.testing.assert_allclose(pair_fitness(returns, "best"), [[3.0, 5.0], [6.0, 4.0]])  # a NaN beside a number is ignored
    np.testing.assert_allclose(candidate_fitness(pair_fitness(returns, "mean")), [2.75, np.nan])
    np.testing.assert_allclose(candidate_fitness(np.array([[1.0, np.nan, 3.0]])), [2.0])


def test_best_of_a_pair_grows_with_the_spread_and_the_mean_does_not():
    """Why "mean" is the default: on a linear return, "best" prefers the larger sigma whatever the centre's value."""
    rng = np.random.default_rng(0)
    slope, eps = rng.normal(size=5), rng.normal(size=(64, 5))

    def returns(sigma):
        plus, minus = eps @ slope * sigma, -(eps @ slope) * sigma
        return np.concatenate([plus, minus])[None]

    small, large = returns(0.01), returns(0.1)
    assert candidate_fitness(pair_fitness(large, "best"))[0] > candidate_fitness(pair_fitness(small, "best"))[0] > 0
    np.testing.assert_allclose(candidate_fitness(pair_fitness(large, "mean")), 0.0, atol=1e-12)


def test_unknown_fitness_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="Unknown meta fitness"):
        pair_fitness(np.zeros((1, 2)), "median")
    with pytest.raises(ValueError, match="antithetic returns"):
        pair_fitness(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="meta_fitness"):
        BiERL("MlpPolicy", "Pendulum-v1", meta_fitness="median")
    with pytest.raises(ValueError, match="meta_min_significance"):
        BiERL("MlpPolicy", "Pendulum-v1", meta_min_significance=-1.0)


def test_paired_t_is_students_paired_statistic():
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=8), rng.normal(size=8) + 0.3
    assert paired_t(first, second) == pytest.approx(stats.ttest_rel(first, second).statistic)
    assert paired_t(np.array([1.0, np.nan, 3.0]), np.array([0.0, 1.0, 1.5])) == pytest.approx(
        stats.ttest_rel([1.0, 3.0], [0.0, 1.5]).statistic
    )
    assert paired_t(np.array([1.0]), np.array([0.0])) == 0.0  # one pair: no evidence
    assert paired_t(np.ones(3), np.ones(3)) == 0.0
    assert paired_t(np.full(3, 2.0), np.ones(3)) == np.inf


def controller(min_significance):
    space = HyperparameterSpace({"sigma": (0.01, 0.1)}, {"sigma": 0.02})
    return MetaController(space, history_length=2, min_significance=min_significance, seed=0)


def test_a_meta_step_needs_a_significant_difference_between_antithetic_candidates():
    rng = np.random.default_rng(2)
    shared = 100 * rng.normal(size=8)  # common random numbers: most of the variance is shared by the twins
    gate = controller(min_significance=2.0)
    gate.last_pair_fitness = np.stack([shared + 1.0 + 0.1 * rng.normal(size=8), shared])  # better on every pair
    assert gate.is_significant()
    gate.last_pair_fitness = np.stack([shared + rng.normal(size=8), shared + rng.normal(size=8)])  # noise alone
    assert abs(paired_t(*gate.last_pair_fitness)) < 2.0 and not gate.is_significant()
    ungated = controller(min_significance=0.0)
    ungated.last_pair_fitness = np.zeros((2, 8))
    assert ungated.is_significant()


@pytest.mark.parametrize("min_significance, steps", [(0.0, "all"), (1e9, "none")])
def test_the_gate_decides_which_meta_updates_move_the_meta_network(min_significance, steps):
    model = BiERL("MlpPolicy", "Pendulum-v1", seed=0, meta="lstm", meta_min_significance=min_significance, **SMALL)
    phi = model.meta_controller.phi.copy()
    model.learn(6 * (2 * 4 + 1) * 200)
    meta = model.meta_controller.summary()
    assert meta["n_meta_updates"] == 6
    if steps == "all":
        assert meta["n_meta_steps"] == 6 and not np.array_equal(model.meta_controller.phi, phi)
    else:
        assert meta["n_meta_steps"] == 0
        np.testing.assert_array_equal(model.meta_controller.phi, phi)
        # with an untrained readout (gain 0) the proposals are the initial values whatever the history
        assert model.hyperparameters["sigma"] == pytest.approx(0.02)
        assert model.hyperparameters["learning_rate"] == pytest.approx(0.01)
