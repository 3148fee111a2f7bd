"""The meta level keeps the inner step within a multiple of sigma (``max_lr_to_sigma``, issue 9): whatever it
proposes, sets or evaluates, and whichever meta level proposes it."""

from types import SimpleNamespace

import numpy as np
import pytest

from sb3_bierl import BiERL
from sb3_bierl.meta import HyperparameterSpace, MetaController

BOUNDS = {"sigma": (0.002, 0.2), "learning_rate": (0.001, 0.1)}
INITIAL = {"sigma": 0.02, "learning_rate": 0.01, "weight_decay": 0.005}
SMALL = {"n_pairs": 4, "policy_kwargs": {"net_arch": [8]}, "meta_history_length": 4}


def controller(cap=2.0, bounds=BOUNDS, **kwargs):
    return MetaController(HyperparameterSpace(bounds, INITIAL), seed=0, max_lr_to_sigma=cap, **kwargs)


def test_a_step_beyond_the_radius_is_projected_in_log_space():
    capped = controller().within_step_radius({"sigma": 0.005, "learning_rate": 0.04})  # ratio 8
    # the closest point on the cap in log space: sigma up, learning rate down by the same factor (2)
    assert capped == pytest.approx({"sigma": 0.01, "learning_rate": 0.02})
    feasible = {"sigma": 0.02, "learning_rate": 0.03}
    assert controller().within_step_radius(feasible) == feasible
    assert controller(cap=None).within_step_radius({"sigma": 0.005, "learning_rate": 0.04}) == {
        "sigma": 0.005,
        "learning_rate": 0.04,
    }


def test_the_bounds_win_over_the_cap_and_the_learning_rate_only_goes_down():
    at_top = controller(cap=0.25).within_step_radius({"sigma": 0.2, "learning_rate": 0.1})
    assert at_top == pytest.approx({"sigma": 0.2, "learning_rate": 0.05})  # sigma at its upper bound
    floor = controller(cap=0.001).within_step_radius({"sigma": 0.1, "learning_rate": 0.01})
    assert floor == pytest.approx({"sigma": 0.2, "learning_rate": 0.001})  # the learning rate's lower bound


def test_with_one_of_the_two_adapted_the_other_is_the_models():
    only_sigma = controller(bounds={"sigma": (0.002, 0.2)})
    only_sigma.model = SimpleNamespace(hyperparameters={"sigma": 0.005, "learning_rate": 0.04})
    assert only_sigma.within_step_radius({"sigma": 0.005}) == pytest.approx({"sigma": 0.02})
    only_lr = controller(bounds={"learning_rate": (0.001, 0.1)})
    only_lr.model = SimpleNamespace(hyperparameters={"sigma": 0.005, "learning_rate": 0.04})
    assert only_lr.within_step_radius({"learning_rate": 0.04}) == pytest.approx({"learning_rate": 0.01})


def test_from_a_feasible_point_the_capped_move_stays_within_the_trust_region():
    rng = np.random.default_rng(0)
    for _ in range(200):
        meta = controller(max_change=1.25)
        sigma = float(np.exp(rng.uniform(np.log(0.01), np.log(0.05))))
        meta.current = {"sigma": sigma, "learning_rate": sigma * float(np.exp(rng.uniform(np.log(0.1), np.log(2.0))))}
        proposal = {name: value * float(np.exp(rng.uniform(-1, 1))) for name, value in meta.current.items()}
        moved = meta.within_trust_region(proposal)
        assert moved["learning_rate"] <= 2.0 * moved["sigma"] * (1 + 1e-12)
        for name, value in moved.items():
            assert meta.current[name] / 1.25 * (1 - 1e-12) <= value <= meta.current[name] * 1.25 * (1 + 1e-12)


@pytest.mark.parametrize("meta", ["lstm", "optuna"])
def test_every_generation_and_meta_candidate_respects_the_cap(meta):
    """Started at 8 times the cap's ratio, BiERL sets and evaluates only hyperparameters within it; uncapped it would not."""

    def run(cap):
        model = BiERL(
            "MlpPolicy",
            "Counting-v0",
            seed=0,
            sigma=0.005,
            learning_rate=0.04,
            meta=meta,
            meta_max_lr_to_sigma=cap,
            **SMALL,
        )
        evaluated, used = [], []
        meta_generation = model.meta_generation

        def recording(hyperparameters, candidates, **kwargs):
            used.append(dict(hyperparameters))
            evaluated.extend(dict(c) for c in candidates)
            return meta_generation(hyperparameters, candidates, **kwargs)

        model.meta_generation = recording
        model.learn(6 * (2 * 4 + 1) * 20)  # 6 generations, each a meta update
        return [h["learning_rate"] / h["sigma"] for h in used + evaluated]

    capped = run(2.0)
    assert len(capped) == 6 * 3 and max(capped) <= 2.0 * (1 + 1e-9)
    assert max(run(None)) > 4.0


@pytest.mark.parametrize("cap", [0.0, -1.0, float("nan"), float("inf")])
def test_a_cap_that_is_not_a_positive_ratio_is_refused(cap):
    with pytest.raises(ValueError, match="meta_max_lr_to_sigma"):
        BiERL("MlpPolicy", "Counting-v0", meta_max_lr_to_sigma=cap)


def test_a_controller_saved_before_the_step_radius_loads_without_it():
    saved = controller().__getstate__()
    del saved["max_lr_to_sigma"]  # what a controller pickled before session 9 holds
    restored = MetaController.__new__(MetaController)
    restored.__setstate__(saved)
    assert restored.max_lr_to_sigma is None
    assert restored.within_step_radius({"sigma": 0.005, "learning_rate": 0.04}) == {
        "sigma": 0.005,
        "learning_rate": 0.04,
    }
