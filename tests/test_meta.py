import numpy as np
import pytest
import torch as th

from sb3_bierl.meta import FitnessHistory, HyperparameterSpace, MetaController, MetaNetwork, generation_features
from sb3_bierl.meta.history import N_FITNESS_FEATURES, GenerationSummary

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


@pytest.mark.parametrize("encoder", ["lstm", "mean"])
def test_standardised_features_vary_with_the_history(encoder):
    space = HyperparameterSpace(BOUNDS, INITIAL)

    def hidden_spread(standardise):
        th.manual_seed(0)
        net = MetaNetwork(
            7, 2, encoder, initial_unit=space.initial_unit(), history_length=10, standardise_features=standardise
        )
        th.manual_seed(1)  # other random histories than the initialisation's
        with th.no_grad():
            pre = net.generator[0](net.encode(2 * th.rand(512, 10, 7) - 1))
        first = space.from_unit(net(th.zeros(1, 10, 7))[0].detach().numpy())
        return pre.mean(dim=0).abs().max().item(), pre.std(dim=0), first

    mean, std, first = hidden_spread(True)
    assert mean < 0.25 and th.all((std > 0.8) & (std < 1.25))  # every hidden unit: mean ~0, std ~1
    assert first == pytest.approx({"sigma": 0.02, "learning_rate": 0.01}, rel=1e-4)  # still the initial values
    _, default_std, _ = hidden_spread(False)
    assert default_std.mean() < 0.5 * std.mean()  # what it fixes: default units barely vary with the history


def test_unknown_encoder():
    with pytest.raises(ValueError, match="lstm"):
        MetaNetwork(3, 1, encoder="transformer")


def summary(returns, centre=None, agreement=None, scale=1.0):
    return GenerationSummary(scale * np.asarray(returns), None if centre is None else scale * centre, agreement)


def test_generation_features_are_scale_free_and_bounded():
    rng = np.random.default_rng(0)
    previous, current = rng.normal(size=16), rng.normal(size=16) + 0.5
    features = generation_features(summary(current, 0.7, 0.3), summary(previous, 0.1))
    assert features.shape == (N_FITNESS_FEATURES,) and np.all(features[5:] != 0)
    scaled = generation_features(summary(current, 0.7, 0.3, scale=1000), summary(previous, 0.1, scale=1000))
    np.testing.assert_allclose(features, scaled, atol=1e-9)
    for scale in [1e-6, 1.0, 1e6]:
        f = generation_features(
            summary(rng.normal(size=16), 3.0, -2.0, scale), summary(rng.normal(size=16), -3.0, scale=scale)
        )
        assert np.all(np.abs(f) <= 1)
    assert np.all(np.isfinite(generation_features(summary([1.0, np.nan, 2.0, 3.0], np.nan), None)))
    # nothing measured, nothing made up: no centre, no previous generation, no step -> those features are 0
    np.testing.assert_array_equal(generation_features(summary(current), None)[[0, 3, 5, 6, 8, 9]], 0)


def test_centre_rank_feature():
    """The centre's rank among its perturbations: 1 when it beats them all, -1 when all beat it."""
    returns = np.arange(8.0)
    assert generation_features(summary(returns, 100.0), None)[5] == 1
    assert generation_features(summary(returns, -100.0), None)[5] == -1
    assert generation_features(summary(returns, 3.5), None)[5] == 0


def test_history_window():
    history = FitnessHistory(length=3, n_features=N_FITNESS_FEATURES + 2)
    assert history.as_array().shape == (3, N_FITNESS_FEATURES + 2) and not history.as_array().any()
    for k in range(5):
        history.append(summary(np.arange(4.0) + k), np.array([0.1 * k, -0.1 * k]))
    window = history.as_array()
    assert len(history) == 3
    np.testing.assert_allclose(window[:, -2], [0.2, 0.3, 0.4], rtol=1e-6)


def test_controller_proposals_are_deterministic_and_within_bounds():
    def make():
        return MetaController(HyperparameterSpace(BOUNDS, INITIAL), seed=3)

    a, b = make(), make()
    for controller in (a, b):
        for k in range(4):
            controller.history.append(summary(np.random.default_rng(k).normal(size=8), 0.5), np.array([0.1, -0.2]))
    assert a.propose() == b.propose()
    noise = np.random.default_rng(0).normal(size=(20, a.strategy.dim)) * 10
    for phi in a.strategy.theta + noise:
        proposal = a.propose(phi)
        assert 0.002 <= proposal["sigma"] <= 0.2 and 0.001 <= proposal["learning_rate"] <= 0.1


def test_meta_es_trains_only_the_last_layer_by_default():
    space = HyperparameterSpace(BOUNDS, INITIAL)
    controller = MetaController(space, seed=0, generator_size=32)
    assert controller.strategy.dim == 2 * (32 + 1)  # the generator's last layer: weights and biases
    full = MetaController(space, seed=0, trainable="all")
    assert full.strategy.dim == full.phi.size > 1000
    np.testing.assert_array_equal(controller.phi, full.phi)  # the same network, seen whole
    with pytest.raises(ValueError, match="trainable"):
        MetaController(space, trainable="encoder")


def test_trust_region_bounds_each_move():
    space = HyperparameterSpace(BOUNDS, INITIAL)
    controller = MetaController(space, seed=0, max_change=1.25)
    moved = controller.within_trust_region({"sigma": 0.2, "learning_rate": 0.001})
    assert moved == pytest.approx({"sigma": 0.025, "learning_rate": 0.008})
    with pytest.raises(ValueError, match="max_change"):
        MetaController(space, max_change=1.0)
