"""Sigma set in the policy's action space (``BiERL(meta="tpa", meta_desired_action_stddev=...)``; issue 9, session 23)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_chunked_and_resumed_runs_equal
from stable_baselines3.common.callbacks import BaseCallback

from sb3_bierl import ES, BiERL
from sb3_bierl.benchmarks.meta_level import algo_kwargs
from sb3_bierl.meta import TwoPointController
from sb3_bierl.meta.action_noise import action_distance

HORIZON = 20  # CountingEnv's episode length
SMALL = dict(n_pairs=4, policy_kwargs=dict(net_arch=[8]))
GENERATION = 2 * 4 * HORIZON  # the population's steps
PAIR = 2 * HORIZON  # the two points' steps
DESIRED = 0.06
PROBE = Path(__file__).parents[1] / "docs" / "benchmarks" / "bold_driver_probe"


def make(seed=0, env="Counting-v0", **kwargs):
    kwargs = {"meta": "tpa", "meta_desired_action_stddev": DESIRED, **SMALL, **kwargs}
    return BiERL("MlpPolicy", env, seed=seed, **kwargs)


def distance(model, sigma, seed=0):
    return action_distance(model.policy, model.strategy.theta, model.obs_rms, sigma, np.random.default_rng(seed))


def test_the_distance_is_zero_without_noise_and_about_linear_in_sigma():
    model = make()
    assert distance(model, 0.0) == 0.0
    small, double = distance(model, 0.01), distance(model, 0.02)
    assert 0 < small < double
    assert double / small == pytest.approx(2.0, rel=0.05)  # tanh is close to linear at these distances
    assert distance(model, 0.02, seed=1) != double  # other states and perturbations


@pytest.mark.parametrize("start", [0.005, 0.02, 0.08])
def test_sigma_starts_at_the_desired_distance_from_a_start_4_times_off(start):
    initial = make(sigma=start)  # the same initial weights and statistics as the trained model below
    model = make(sigma=start)
    model.learn(GENERATION)
    controller = model.meta_controller
    sigma = controller.sigma
    assert model.hyperparameters["sigma"] == sigma
    assert controller.action_stddev == distance(initial, start, seed=1)  # measured at the start (the meta seed 0 + 1)
    # the sigma set moves the initial policy's actions by about the desired distance (other states and perturbations)
    assert distance(initial, sigma, seed=7) == pytest.approx(DESIRED, rel=0.15)
    assert sigma == pytest.approx(start * DESIRED / controller.action_stddev)
    summary = model.meta_controller.summary()
    assert summary["meta_steps"] == 0  # no episode: forward passes only


def test_the_starts_land_on_about_the_same_sigma():
    sigmas = []
    for start in (0.005, 0.02, 0.08):
        model = make(sigma=start)
        model.learn(GENERATION)
        sigmas.append(model.meta_controller.sigma)
    assert max(sigmas) / min(sigmas) < 1.15


def test_sigma_stays_within_a_factor_8_of_the_start():
    for desired, factor in ((10.0, 8.0), (1e-6, 1 / 8)):
        model = make(sigma=0.02, meta_desired_action_stddev=desired)
        model.learn(GENERATION)
        assert model.meta_controller.sigma == pytest.approx(0.02 * factor)


def test_the_step_radius_is_the_new_sigmas():
    model = make(sigma=0.08, learning_rate=0.1)  # sigma set to about 0.02 or less: the rate to twice it
    model.learn(GENERATION)
    assert model.hyperparameters["learning_rate"] == pytest.approx(2 * model.meta_controller.sigma)


@pytest.mark.parametrize("every_generation", [False, True])
def test_is_deterministic_resumes_in_chunks_and_after_save(tmp_path, every_generation):
    kwargs = dict(seed=3, sigma=0.08, meta_sigma_every_generation=every_generation)
    a, b = make(**kwargs), make(**kwargs)
    a.learn(12 * (GENERATION + PAIR))
    b.learn(12 * (GENERATION + PAIR))
    np.testing.assert_array_equal(a.strategy.theta, b.strategy.theta)
    assert a.hyperparameters == b.hyperparameters and a.hyperparameters["sigma"] != 0.08
    resumed = assert_chunked_and_resumed_runs_equal(
        lambda: make(**kwargs), a, GENERATION, tmp_path, 6 * (GENERATION + PAIR)
    )
    assert resumed.meta_controller.sigma == a.meta_controller.sigma
    assert resumed.hyperparameters == a.hyperparameters
    # load cannot change them: an error, not a setting silently ignored
    a.save(tmp_path / "a")
    with pytest.raises(ValueError, match="keeps the meta level it was saved with"):
        BiERL.load(tmp_path / "a", env="Counting-v0", meta_desired_action_stddev=0.1)
    assert BiERL.load(tmp_path / "a", env="Counting-v0", meta_desired_action_stddev=DESIRED).meta == "tpa"


def test_an_interrupted_first_generation_sets_the_same_sigma_again():
    straight = make(seed=4, sigma=0.08)
    straight.learn(4 * GENERATION)

    class InterruptOnce(BaseCallback):
        def _on_step(self) -> bool:
            if not getattr(self, "done", False) and self.model.num_timesteps > GENERATION // 2:
                self.done = True
                raise KeyboardInterrupt
            return True

    interrupted = make(seed=4, sigma=0.08)
    with pytest.raises(KeyboardInterrupt):
        interrupted.learn(4 * GENERATION, callback=InterruptOnce())
    assert interrupted._n_updates == 0 and interrupted.meta_controller.sigma is None  # rolled back
    while interrupted._n_updates < straight._n_updates:
        interrupted.learn(GENERATION, reset_num_timesteps=False)
    assert interrupted.meta_controller.sigma == straight.meta_controller.sigma
    np.testing.assert_array_equal(interrupted.strategy.theta, straight.strategy.theta)


def test_an_error_after_the_generations_end_takes_back_the_sigma_it_set():
    """With every generation: a callback's error after the controller's end of generation 3 rolls the generation back,
    and the sigma (and generator) the controller moved with it; resumed, the run goes on as if never interrupted."""
    kwargs = dict(seed=4, sigma=0.08, meta_sigma_every_generation=True)
    straight = make(**kwargs)
    straight.learn(6 * (GENERATION + PAIR) - PAIR)  # no two points in the first generation

    class InterruptOnce(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            if self.model._n_updates == 3 and not getattr(self, "done", False):
                self.done = True
                raise KeyboardInterrupt

    interrupted = make(**kwargs)
    with pytest.raises(KeyboardInterrupt):
        interrupted.learn(6 * (GENERATION + PAIR), callback=InterruptOnce())
    assert interrupted._n_updates == 2
    while interrupted._n_updates < straight._n_updates:
        interrupted.learn(GENERATION, reset_num_timesteps=False)
    assert interrupted.meta_controller.sigma == straight.meta_controller.sigma
    assert interrupted.hyperparameters == straight.hyperparameters
    np.testing.assert_array_equal(interrupted.strategy.theta, straight.strategy.theta)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(env="CartPole-v1"), "continuous actions"),
        (dict(policy_kwargs=dict(net_arch=[8], squash_output=False)), "squashed"),
        (dict(meta="lstm"), "meta='tpa'"),
        (dict(meta="bold_driver"), "meta='tpa'"),
        (dict(meta_desired_action_stddev=0.0), "distance > 0"),
        (dict(meta_desired_action_stddev=float("nan")), "distance > 0"),
        (dict(inner="nsr_es", meta=None), "meta='tpa' with inner='es'"),
        (dict(meta_desired_action_stddev="0.06"), "distance > 0"),
        (dict(meta_desired_action_stddev=True), "distance > 0"),
        (dict(meta_desired_action_stddev=None, meta_sigma_every_generation=True), "give meta_desired_action_stddev"),
        (dict(meta_desired_action_stddev=None, meta_action_stddev_tolerance=2.0), "give meta_desired_action_stddev"),
        (dict(meta_action_stddev_tolerance=0.5), "factor >= 1"),
        (dict(meta_action_stddev_tolerance=float("nan")), "factor >= 1"),
        (dict(meta_action_stddev_tolerance=True), "factor >= 1"),
        (dict(meta_action_stddev_tolerance="2"), "factor >= 1"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_controller_argument_errors():
    space = BiERL("MlpPolicy", "Counting-v0", meta="tpa", **SMALL).meta_controller.space
    with pytest.raises(ValueError, match="desired_action_stddev"):
        TwoPointController(space, desired_action_stddev=-1.0, sigma_bounds=(0.01, 0.1))
    for bounds in (None, (0.0, 0.1), (0.1, 0.01)):
        with pytest.raises(ValueError, match="sigma_bounds"):
            TwoPointController(space, desired_action_stddev=DESIRED, sigma_bounds=bounds)
    for tolerance in (0.9, "2", None, float("inf"), True):
        with pytest.raises(ValueError, match="action_stddev_tolerance"):
            TwoPointController(
                space, desired_action_stddev=DESIRED, sigma_bounds=(0.01, 0.1), action_stddev_tolerance=tolerance
            )
    with pytest.raises(ValueError, match="action_stddev_tolerance"):
        TwoPointController(space, action_stddev_tolerance=2.0)


def test_within_the_tolerance_sigma_is_left_and_the_run_is_tpas_bit_for_bit(tmp_path):
    at_start = distance(make(seed=2), 0.02, seed=3)  # the distance the model measures (meta seed 2 + 1)
    tpa = BiERL("MlpPolicy", "Counting-v0", seed=2, meta="tpa", **SMALL)
    tpa.learn(6 * (GENERATION + PAIR))
    for off in (1.9, 1 / 1.9):  # the distance is 1.9 times off the desired one, either way: left as it is
        band = make(seed=2, meta_desired_action_stddev=at_start * off, meta_action_stddev_tolerance=2.0)
        band.learn(6 * (GENERATION + PAIR))
        assert band.meta_controller.action_stddev == at_start
        assert band.meta_controller.sigma == 0.02 and band.hyperparameters == tpa.hyperparameters
        np.testing.assert_array_equal(band.strategy.theta, tpa.strategy.theta)
        assert band.num_timesteps == tpa.num_timesteps
    band.save(tmp_path / "band")  # load cannot change the tolerance
    desired = band.meta_desired_action_stddev
    with pytest.raises(ValueError, match="keeps the meta level it was saved with"):
        BiERL.load(tmp_path / "band", env="Counting-v0", meta_action_stddev_tolerance=1.0)
    loaded = BiERL.load(
        tmp_path / "band", env="Counting-v0", meta_desired_action_stddev=desired, meta_action_stddev_tolerance=2
    )
    assert loaded.meta_controller.action_stddev_tolerance == 2.0


@pytest.mark.parametrize("off", [2.1, 1 / 2.1])
def test_beyond_the_tolerance_sigma_is_set_as_without_it(off):
    at_start = distance(make(seed=2), 0.02, seed=3)
    always = make(seed=2, meta_desired_action_stddev=at_start * off)
    band = make(seed=2, meta_desired_action_stddev=at_start * off, meta_action_stddev_tolerance=2.0)
    for model in (always, band):
        model.learn(3 * GENERATION)
    assert band.meta_controller.sigma == always.meta_controller.sigma == pytest.approx(0.02 * off)
    np.testing.assert_array_equal(band.strategy.theta, always.strategy.theta)


def test_without_it_sigma_is_the_models():
    model = BiERL("MlpPolicy", "Counting-v0", seed=0, meta="tpa", sigma=0.08, **SMALL)
    model.learn(3 * GENERATION)
    assert model.meta_controller.sigma is None and model.hyperparameters["sigma"] == 0.08


@pytest.mark.parametrize("every_generation", [False, True])
def test_sets_the_sigmas_of_the_probe_that_measured_it(every_generation):
    """The probe's ``TwoPointWithActionNoise`` (``es-tpa-apn-once``; with every generation, ``es-tpa-apn-first``)
    and the package's controller, from the same generator: the same sigmas (float32 rounding of the states aside)."""
    sys.path.insert(0, str(PROBE))
    try:
        spec = importlib.util.spec_from_file_location("bold_driver_probe", PROBE / "probe.py")
        probe = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(probe)
        rule = probe.TwoPointWithActionNoise(DESIRED, 5, from_first_generation=True, every_generation=every_generation)
        es = ES("MlpPolicy", "Counting-v0", seed=0, sigma=0.08, **SMALL)
        sigmas = []

        class Record(BaseCallback):
            """The generation's sigma, after the meta level's start of generation."""

            def _on_step(self) -> bool:
                return True

            def _on_rollout_start(self) -> None:
                sigmas.append(self.model.hyperparameters["sigma"])

        es.learn(3 * (GENERATION + PAIR), callback=[rule, Record()])
    finally:
        sys.path.remove(str(PROBE))
    model = make(sigma=0.08, meta_sigma_every_generation=every_generation)
    assert model.meta_controller.sigma_every_generation == every_generation
    model.meta_controller.rng = np.random.default_rng(5)
    model.learn(3 * (GENERATION + PAIR), callback=Record())
    probe_sigmas, package = sigmas[: len(sigmas) // 2], sigmas[len(sigmas) // 2 :]
    assert len(package) == len(probe_sigmas) >= 3
    np.testing.assert_allclose(package, probe_sigmas, rtol=1e-4)
    assert (len(set(probe_sigmas)) > 1) == every_generation


def test_the_benchmarks_names_for_it():
    kwargs = algo_kwargs("tpa_apn_once-s4")
    assert kwargs == {"meta": "tpa", "meta_desired_action_stddev": DESIRED, "sigma": 0.08, "learning_rate": 0.01}
    assert algo_kwargs("tpa_apn_first")["meta_sigma_every_generation"] is True
    assert algo_kwargs("tpa_apn_band-s0.25") == {
        "meta": "tpa", "meta_desired_action_stddev": DESIRED, "meta_action_stddev_tolerance": 2.0, "sigma": 0.005,
        "learning_rate": 0.01,
    }
