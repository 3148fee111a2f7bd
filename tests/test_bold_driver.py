"""The bold-driver meta level (``BiERL(meta="bold_driver")``): its rule, its rejection, and its contract."""

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import CountingEnv

from sb3_bierl import ES, BiERL
from sb3_bierl.meta import BoldDriverController

HORIZON = 20  # CountingEnv's episode length
SMALL = dict(n_pairs=4, policy_kwargs=dict(net_arch=[8]))


def make(seed=0, **kwargs):
    return BiERL("MlpPolicy", "Counting-v0", seed=seed, meta="bold_driver", **{**SMALL, **kwargs})


def generation(model, controller, mean, learning_rate_seen=None):
    """One generation driven by hand: the rule sets the rate, a fake inner step of that rate, returns of ``mean``."""
    model.generation_done = False
    controller.on_rollout_start()
    if learning_rate_seen is not None:
        assert model.hyperparameters["learning_rate"] == pytest.approx(learning_rate_seen)
    strategy, rate = model.strategy, model.hyperparameters["learning_rate"]
    strategy.last_step, strategy.last_learning_rate = np.full(strategy.dim, rate), rate
    strategy.theta = strategy.theta + strategy.last_step
    model.last_rollout = SimpleNamespace(returns=mean + np.array([-1.0, 1.0, -1.0, 1.0, 0.0, 0.0, 0.5, -0.5]))
    model._n_updates += 1  # a completed generation, as ES counts it before the callbacks' end of generation
    controller.on_rollout_end()


def test_rule_moves_the_learning_rate_on_significant_changes_and_rejects_a_fall():
    model = make()
    model.learn(8 * HORIZON)  # sets up the logger; the rule's first generation
    controller = BoldDriverController(model.meta_controller.space)
    controller.init_callback(model)
    model.hyperparameters["learning_rate"] = 0.01
    generation(model, controller, 0.0, 0.01)  # no reference yet
    generation(model, controller, 0.1, 0.01)  # the first generation becomes the reference
    generation(model, controller, 5.0, 0.01)  # z(0.1 vs 0) < 1: no move
    start = model.strategy.copy()  # the centre before the step into the generation that will fall
    generation(model, controller, 10.0, 0.0125)  # z(5 vs 0.1) > 1: up by 1.25; its step leads to the fall
    generation(model, controller, -10.0, 0.015625)  # z(10 vs 5) > 1: up again; this generation falls
    assert controller.rejections == []
    generation(model, controller, -30.0, 0.015625 / 2)
    # rejected: back to the start of the generation that fell, the step into it redone at half the rate (plus
    # this generation's own fake step at that rate)
    np.testing.assert_allclose(model.strategy.theta, start.theta + 0.015625 / 2 + 0.015625 / 2)
    assert controller.rejections == [4]
    # never twice in a row: the next fall is accepted, and the rate only shrinks by the factor
    generation(model, controller, -30.0, 0.015625 / 2 / 1.25)
    assert controller.rejections == [4]
    summary = controller.summary()
    assert summary["rejections"] == [4] and summary["step_overhead"] == 0
    assert summary["first_update_generation"] == 3 and summary["n_meta_updates"] == 4


def test_rate_stays_within_the_bounds_and_the_step_radius():
    model = make(learning_rate=0.05, sigma=0.02)  # above twice sigma: brought onto it in the first generation
    model.learn(8 * HORIZON)
    assert model.hyperparameters["learning_rate"] == pytest.approx(0.04)
    controller = model.meta_controller
    controller.current["learning_rate"] = 1e-9
    assert controller.within_bounds(1e-9) == pytest.approx(0.05 / 8)  # the lower bound wins


def test_learns_counts_every_step_is_deterministic_and_resumes(tmp_path):
    a, b = make(seed=3), make(seed=3)
    a.learn(40 * 8 * HORIZON)
    assert a.num_timesteps == CountingEnv.total_steps == 40 * 8 * HORIZON
    assert a.meta_controller.summary()["meta_steps"] == 0  # no centre, no candidate: no extra step
    assert a.meta_controller.n_meta_updates >= 1
    b.learn(40 * 8 * HORIZON)
    np.testing.assert_array_equal(a.strategy.theta, b.strategy.theta)
    assert a.hyperparameters == b.hyperparameters
    # chunked learn() == one learn(): the rule's state lives in the controller
    chunked = make(seed=3)
    for _ in range(40):
        chunked.learn(4 * HORIZON, reset_num_timesteps=False)  # half a generation: each call runs one
    np.testing.assert_array_equal(chunked.strategy.theta, a.strategy.theta)
    assert chunked.meta_controller.rejections == a.meta_controller.rejections
    # saves, loads and trains on
    a.save(tmp_path / "bold")
    loaded = BiERL.load(tmp_path / "bold", env="Counting-v0")
    assert isinstance(loaded.meta_controller, BoldDriverController)
    assert loaded.meta_controller.current == a.meta_controller.current
    loaded.learn(8 * HORIZON, reset_num_timesteps=False)
    # saved halfway and loaded, the run goes on as one straight run
    half = make(seed=3)
    half.learn(20 * 8 * HORIZON)
    half.save(tmp_path / "half")
    resumed = BiERL.load(tmp_path / "half", env="Counting-v0")
    resumed.learn(20 * 8 * HORIZON, reset_num_timesteps=False)
    assert resumed.meta_controller.rejections == a.meta_controller.rejections
    np.testing.assert_array_equal(resumed.strategy.theta, a.strategy.theta)


def test_without_a_significant_change_it_is_plain_es():
    """A rule that never fires (thresholds out of reach) leaves OpenAI-ES as it is, to the bit."""
    model = make(seed=4)
    model.meta_controller.threshold = model.meta_controller.reject = np.inf
    model.learn(10 * 8 * HORIZON)
    es = ES("MlpPolicy", "Counting-v0", seed=4, **SMALL)
    es.learn(10 * 8 * HORIZON)
    np.testing.assert_array_equal(model.strategy.theta, es.strategy.theta)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(inner="nsr_es"), "wraps OpenAI-ES"),
        (dict(inner="esac"), "wraps OpenAI-ES"),
        (dict(hyperparameter_bounds={"sigma": (0.005, 0.08), "learning_rate": (0.001, 0.1)}), "learning rate alone"),
        (dict(meta_warm_start="pretrained"), "meta 'lstm' or 'mean'"),
    ],
)
def test_bold_driver_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_controller_argument_errors():
    space = make().meta_controller.space
    for kwargs, match in [
        (dict(factor=1.0), "factor"),
        (dict(threshold=-1), "threshold"),
        (dict(reject=0.5), "reject"),
    ]:
        with pytest.raises(ValueError, match=match):
            BoldDriverController(space, **kwargs)


@pytest.mark.parametrize("where", ["rollout", "end"])
def test_an_interrupted_generation_makes_the_same_decision_again(where):
    """Ctrl-C in the generation whose start rejected a step, during its rollout or in a later callback's end of
    generation: ES rolls the centre back, so does the controller, and the run goes on as if never interrupted."""
    from stable_baselines3.common.callbacks import BaseCallback

    rates: list[float] = []

    class Rates(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            rates.append(self.model.hyperparameters["learning_rate"])

    straight = make(seed=3)
    straight.learn(40 * 8 * HORIZON, callback=Rates())
    (rejected, *_) = straight.meta_controller.rejections
    assert rejected >= 1

    class InterruptOnce(BaseCallback):
        """Raises once, in the generation whose start rejected the step into generation ``rejected``."""

        def interrupt(self, completed: int) -> None:
            if completed == rejected + 1 and not getattr(self, "done", False):
                self.done = True
                raise KeyboardInterrupt

        def _on_step(self) -> bool:
            if where == "rollout":
                self.interrupt(self.model._n_updates)
            return True

        def _on_rollout_end(self) -> None:
            if where == "end":
                self.interrupt(self.model._n_updates - 1)  # ES counted this generation before its end

    interrupted = make(seed=3)
    with pytest.raises(KeyboardInterrupt):
        interrupted.learn(40 * 8 * HORIZON, callback=InterruptOnce())
    controller = interrupted.meta_controller
    assert interrupted._n_updates == rejected + 1
    interrupted.learn(8 * HORIZON, reset_num_timesteps=False)  # the same generation again
    assert controller.rejections == [rejected]
    assert controller.current["learning_rate"] == rates[rejected + 1]
    interrupted.learn((40 - rejected - 2) * 8 * HORIZON, reset_num_timesteps=False)
    assert interrupted._n_updates == 40 and controller.rejections == straight.meta_controller.rejections
    assert controller.n_generations == straight.meta_controller.n_generations == 40
    np.testing.assert_array_equal(interrupted.strategy.theta, straight.strategy.theta)


@pytest.mark.parametrize("seed", [0, 2])
def test_same_runs_as_the_probe_that_measured_it(seed):
    """``BiERL(meta="bold_driver")`` is the rule whose runs are published (``docs/benchmarks/bold_driver_probe``):
    ES with the probe's callback, at the defaults, gives the same centres, rates and rejections."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "docs" / "benchmarks" / "bold_driver_probe" / "probe.py"
    spec = importlib.util.spec_from_file_location("bold_driver_probe", path)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    rule = probe.BoldDriverWithRejection()
    es = ES("MlpPolicy", "Counting-v0", seed=seed, **SMALL)
    es.learn(60 * 8 * HORIZON, callback=rule)
    model = make(seed=seed)
    model.learn(60 * 8 * HORIZON)
    assert rule.rejections == model.meta_controller.rejections and rule.rejections
    assert es.hyperparameters == model.hyperparameters
    np.testing.assert_array_equal(es.strategy.theta, model.strategy.theta)
