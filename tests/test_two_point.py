"""``BiERL(meta="tpa")``: two-point step-size adaptation of the learning rate (issue 9, session 16)."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import CountingEnv, assert_chunked_and_resumed_runs_equal
from stable_baselines3.common.logger import configure

from sb3_bierl import ES, BiERL
from sb3_bierl.meta import PRETRAINED_PATH, TwoPointController

HORIZON = 20  # CountingEnv's episode length
SMALL = dict(n_pairs=4, policy_kwargs=dict(net_arch=[8]))
GENERATION = 2 * 4 * HORIZON  # the population's steps
PAIR = 2 * HORIZON  # the two points' steps


def make(seed=0, **kwargs):
    return BiERL("MlpPolicy", "Counting-v0", seed=seed, meta="tpa", **{**SMALL, **kwargs})


def drive(model, controller, plus, minus, population):
    """One generation by hand: the two points return ``plus`` and ``minus``, the population ``population``."""
    model.generation_done = False
    model.evaluate_centres = lambda centres, n_episodes: np.array([plus, minus], dtype=float)
    controller.on_rollout_start()
    rate = model.hyperparameters["learning_rate"]
    strategy = model.strategy
    strategy.last_step, strategy.last_learning_rate = np.full(strategy.dim, rate), rate
    strategy.theta = strategy.theta + strategy.last_step
    model.last_rollout = SimpleNamespace(returns=np.asarray(population, dtype=float))
    model._n_updates += 1
    controller.on_rollout_end()
    return rate


@pytest.mark.parametrize("along, sign", [(True, 1.0), (False, -1.0)])
def test_the_rate_grows_when_further_along_the_step_is_better_and_shrinks_when_it_overshot(along, sign):
    model = make(seed=1)
    model.learn(GENERATION)  # the logger, and a first step to test along
    controller = TwoPointController(model.meta_controller.space)
    controller.init_callback(model)
    population = np.arange(8.0)  # 8 returns: the two points rank among them
    good, bad = 10.0, -1.0  # above all of them, below all of them
    rates = [drive(model, controller, *((good, bad) if along else (bad, good)), population) for _ in range(4)]
    # z = +-(9 - 0) / 9 = +-1 each generation: s = +-0.3, +-0.51, +-0.657, ...; the rate moves by exp(s / 4)
    s = [sign * (1 - 0.7**k) for k in range(1, 4)]
    expected = 0.01 * np.exp(np.cumsum(s) / 4.0)
    np.testing.assert_allclose(rates[1:], expected)
    assert controller.last_z == sign and controller.s == pytest.approx(sign * (1 - 0.7**4))


def test_z_ranks_the_two_points_among_the_population_and_a_tie_moves_nothing():
    model = make()
    model.learn(GENERATION)
    controller = model.meta_controller
    controller.pair = np.array([3.5, 1.5])
    # above x-: 2, 3, 4, 5 and x+ (5); above x+: 4, 5 (2): z = (5 - 2) / 7
    assert controller.two_point_z(np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])) == pytest.approx(3 / 7)
    controller.pair = np.array([2.5, 2.5])
    assert controller.two_point_z(np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])) == 0.0
    controller.pair = np.array([np.nan, 2.5])  # a point whose return is not finite ranks last
    assert controller.two_point_z(np.array([0.0, np.inf * 0, 5.0])) < 0


def test_counts_the_two_points_steps_logs_and_updates_from_the_second_generation(tmp_path):
    model = make(seed=2)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(GENERATION + 5 * (GENERATION + PAIR))
    meta = model.meta_controller.summary()
    assert model._n_updates == 6
    assert model.num_timesteps == CountingEnv.total_steps == GENERATION + 5 * (GENERATION + PAIR)
    assert meta["meta_steps"] == 5 * PAIR  # every generation but the first rolls out the two points
    assert meta["step_overhead"] == pytest.approx(5 * PAIR / model.num_timesteps)
    assert meta["first_update_generation"] == 1  # the rate set for generation 2 is the first it moved
    log = pd.read_csv(tmp_path / "progress.csv")
    assert {"meta/two_point_z", "meta/two_point_s", "meta/step_overhead"} <= set(log.columns)
    assert "meta/fitness" not in log.columns  # a rule has no meta candidates to score
    assert log["meta/two_point_z"].notna().sum() == 5


def test_rate_stays_within_the_bounds_and_the_step_radius():
    model = make(learning_rate=0.05, sigma=0.02)  # above twice sigma: brought onto it from the first generation
    model.learn(GENERATION)
    assert model.hyperparameters["learning_rate"] == pytest.approx(0.04)
    controller = model.meta_controller
    assert controller.within_bounds(1e-9) == pytest.approx(0.05 / 8)  # the lower bound
    assert controller.within_bounds(1.0) == pytest.approx(0.04)  # the step radius wins over the upper bound


def test_is_deterministic_resumes_in_chunks_and_after_save(tmp_path):
    a, b = make(seed=3), make(seed=3)
    a.learn(20 * (GENERATION + PAIR))
    b.learn(20 * (GENERATION + PAIR))
    assert a.meta_controller.n_meta_updates >= 1
    np.testing.assert_array_equal(a.strategy.theta, b.strategy.theta)
    assert a.hyperparameters == b.hyperparameters
    resumed = assert_chunked_and_resumed_runs_equal(
        lambda: make(seed=3), a, GENERATION, tmp_path, 10 * (GENERATION + PAIR)
    )
    assert isinstance(resumed.meta_controller, TwoPointController)
    assert resumed.meta_controller.s == a.meta_controller.s


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(inner="nsr_es"), "wraps OpenAI-ES"),
        (dict(inner="esac"), "wraps OpenAI-ES"),
        (dict(hyperparameter_bounds={"sigma": (0.005, 0.08), "learning_rate": (0.001, 0.1)}), "learning rate alone"),
        (dict(meta_warm_start=str(PRETRAINED_PATH)), "is a meta network"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_controller_argument_errors():
    space = make().meta_controller.space
    cases = [(dict(damping=0.0), "damping"), (dict(cumulation=0.0), "cumulation"), (dict(cumulation=1.5), "cumulation")]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            TwoPointController(space, **kwargs)


@pytest.mark.parametrize("seed", [0, 2])
def test_same_runs_as_the_probe_that_measured_it(seed):
    """``BiERL(meta="tpa")`` is the rule whose runs are published (``docs/benchmarks/bold_driver_probe``, ``es-tpa``):
    ES with the probe's callback, at the defaults, gives the same centres, rates and steps."""
    rule = load_probe().TwoPointAdaptation()
    es = ES("MlpPolicy", "Counting-v0", seed=seed, **SMALL)
    es.learn(30 * (GENERATION + PAIR), callback=rule)
    model = make(seed=seed)
    model.learn(30 * (GENERATION + PAIR))
    assert es.num_timesteps == model.num_timesteps and rule.tpa_steps == model.meta_controller.meta_steps
    assert es.hyperparameters == model.hyperparameters and len(set(rule.z_trace)) > 1
    np.testing.assert_array_equal(es.strategy.theta, model.strategy.theta)


def load_probe():
    path = Path(__file__).parents[1] / "docs" / "benchmarks" / "bold_driver_probe" / "probe.py"
    spec = importlib.util.spec_from_file_location("bold_driver_probe", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    return probe


def drive_probe(model, rule, plus, minus, population):
    """One generation of the probe's rule by hand, as :func:`drive` for the package's controller."""
    model.evaluate_centres = lambda centres, n_episodes: np.array([plus, minus], dtype=float)
    rule.on_rollout_start()
    rate = model.hyperparameters["learning_rate"]
    model.last_rollout = SimpleNamespace(returns=np.asarray(population, dtype=float))
    rule.on_rollout_end()
    return rate


def test_the_probes_floor_binds_only_below_the_start():
    """``es-tpa-floor`` (session 21): the rate never goes below its start; where the plain rule stays at or above it,
    the two rules set the same rates (``derive_floor_runs`` copies ``es-tpa``'s runs where it never went below)."""
    probe = load_probe()
    model = ES("MlpPolicy", "Counting-v0", seed=0, **SMALL)
    model.learn(GENERATION)  # a first step to test along
    population, good, bad = np.arange(8.0), 10.0, -1.0
    rates = {}
    for floor in (False, True):
        rule = probe.TwoPointAdaptation(floor_at_start=floor)
        rule.init_callback(model)
        model.hyperparameters["learning_rate"] = 0.01
        rising = [drive_probe(model, rule, good, bad, population) for _ in range(3)]  # further along wins: up
        falling = [drive_probe(model, rule, bad, good, population) for _ in range(8)]  # it overshot: down
        rates[floor] = (rising, falling)
    assert rates[False][0] == rates[True][0] and rates[True][0][-1] > 0.01  # not binding: the same rates
    assert min(rates[False][1]) < 0.01 and min(rates[True][1]) == 0.01  # the plain rule goes below, the floor holds
