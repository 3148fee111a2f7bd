import numpy as np
import pytest
import torch as th

from sb3_bierl.meta import FitnessHistory, HyperparameterSpace, MetaController, MetaNetwork, generation_features

BOUNDS = {"sigma": (0.002, 0.2), "learning_rate": (0.001, 0.1)}
INITIAL = {"sigma": 0.02, "learning_rate": 0.01, "weight_decay": 0.005}


def test_space_round_trip_and_bounds():
    space = HyperparameterSpace(BOUNDS, INITIAL)
    assert space.from_unit(np.array([-1.0, 1.0])) == pytest.approx({"sigma": 0.002, "learning_rate": 0.1})
    assert space.from_unit(np.array([-50.0, 50.0])) == pytest.approx({"sigma": 0.002, "learning_rate": 0.1})
    np.testing.assert_allclose(space.to_unit(space.from_unit(np.array([0.3, -0.7]))), [0.3, -0.7])
    # log scale: the middle of the unit range is the geometric mean of the bounds
    assert space.from_unit(np.zeros(2))["sigma"] == pytest.approx(0.02)


@pytest.mark.parametrize(
    "bounds, match",
    [
        ({"sigma": (0.2, 0.002)}, "low must be below high"),
        ({"sigma": (0.0, 0.2)}, "positive"),
        ({"sigma": (-1.0, 0.2)}, "positive"),
        ({"sigma": (0.03, 0.2)}, "outside"),
        ({"momentum": (0.1, 0.9)}, "Cannot adapt"),
        ({"sigma": 0.1}, "pair"),
        ({}, "empty"),
    ],
)
def test_space_rejects_bad_bounds(bounds, match):
    with pytest.raises(ValueError, match=match):
        HyperparameterSpace(bounds, INITIAL)


@pytest.mark.parametrize("encoder", ["lstm", "mean"])
def test_network_shapes_and_initial_proposal(encoder):
    space = HyperparameterSpace(BOUNDS, INITIAL)
    net = MetaNetwork(n_features=7, n_outputs=2, encoder=encoder, initial_unit=space.initial_unit(), history_length=10)
    out = net(th.zeros(5, 10, 7))
    assert out.shape == (5, 2)
    assert th.all(out.abs() < 1)
    # with an empty (all-zero) history the first proposal is the initial values
    assert space.from_unit(out[0].detach().numpy()) == pytest.approx({"sigma": 0.02, "learning_rate": 0.01}, rel=1e-4)


def test_unknown_encoder():
    with pytest.raises(ValueError, match="lstm"):
        MetaNetwork(3, 1, encoder="transformer")


def test_generation_features_are_scale_free_and_bounded():
    rng = np.random.default_rng(0)
    previous, current = rng.normal(size=16), rng.normal(size=16) + 0.5
    features = generation_features(current, previous)
    np.testing.assert_allclose(features, generation_features(1000 * current, 1000 * previous), atol=1e-9)
    for scale in [1e-6, 1.0, 1e6]:
        f = generation_features(scale * rng.normal(size=16), scale * rng.normal(size=16))
        assert np.all(np.abs(f) <= 1)
    assert np.all(np.isfinite(generation_features(np.array([1.0, np.nan, 2.0, 3.0]), None)))


def test_history_window():
    history = FitnessHistory(length=3, n_features=7)
    assert history.as_array().shape == (3, 7) and not history.as_array().any()
    for k in range(5):
        history.append(np.arange(4.0) + k, np.array([0.1 * k, -0.1 * k]))
    window = history.as_array()
    assert len(history) == 3
    np.testing.assert_allclose(window[:, -2], [0.2, 0.3, 0.4], rtol=1e-6)


def test_controller_proposals_are_deterministic_and_within_bounds():
    def make():
        return MetaController(HyperparameterSpace(BOUNDS, INITIAL), seed=3)

    a, b = make(), make()
    for controller in (a, b):
        for k in range(4):
            controller.record(np.random.default_rng(k).normal(size=8), {"sigma": 0.02, "learning_rate": 0.01})
    assert a.propose() == b.propose()
    noise = np.random.default_rng(0).normal(size=(20, a.strategy.dim)) * 10
    for phi in a.strategy.theta + noise:
        proposal = a.propose(phi)
        assert 0.002 <= proposal["sigma"] <= 0.2 and 0.001 <= proposal["learning_rate"] <= 0.1
