"""The meta level's schedule and cost (issue 9): updates from the first generation, at no extra step
beyond the centre's episode, and never lost between ``learn`` calls."""

import numpy as np
import pandas as pd
import pytest
from conftest import CountingEnv
from stable_baselines3.common.logger import configure

from sb3_bierl import BiERL
from sb3_bierl.evaluation import RolloutResult, merge_antithetic
from sb3_bierl.strategies import NoiseTable, OpenAIES, Population, merge_populations

HORIZON = 20  # CountingEnv's episode length
SMALL = dict(n_pairs=4, policy_kwargs=dict(net_arch=[8]), meta_history_length=4)


def make(seed=0, **kwargs):
    """BiERL with the meta network (``meta="lstm"``, not OpenAI-ES's default, ``"tpa"``) unless ``kwargs`` say"""
    return BiERL("MlpPolicy", "Counting-v0", seed=seed, **{"meta": "lstm", **SMALL, **kwargs})


def test_meta_updates_from_the_first_generation_at_the_cost_of_the_centre_episode_only(tmp_path):
    model = make()
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(5 * (2 * 4 + 1) * HORIZON)
    meta = model.meta_controller.summary()
    assert meta["first_update_generation"] == 0
    assert meta["n_meta_updates"] == meta["n_generations"] == model._n_updates == 5  # every generation
    # a generation is its 2n candidates' episodes plus the centre's: nothing else
    assert model.num_timesteps == CountingEnv.total_steps == 5 * (2 * 4 + 1) * HORIZON
    assert meta["meta_steps"] == 5 * HORIZON
    assert meta["step_overhead"] == pytest.approx(1 / 9)
    log = pd.read_csv(tmp_path / "progress.csv")
    np.testing.assert_allclose(log["meta/step_overhead"], 1 / 9)


@pytest.mark.parametrize("meta", [None, "lstm"])
def test_defaults_spend_at_most_ten_percent_of_the_steps_on_the_meta_level(meta):
    kwargs = {} if meta is None else {"meta": meta}
    model = BiERL("MlpPolicy", "Counting-v0", seed=0, policy_kwargs=dict(net_arch=[8]), **kwargs)
    model.learn(3000)
    overhead = model.meta_controller.summary()["step_overhead"]
    generations = model.meta_controller.summary()["n_generations"]
    if meta is None:  # the default, two-point adaptation: 2 episodes a generation, from the second one on
        assert model.meta == "tpa"
        assert overhead == pytest.approx(2 * (generations - 1) / (2 * model.n_pairs * generations + 2 * (generations - 1)))
    else:  # the meta network: the centre's episode
        assert overhead == pytest.approx(1 / (2 * model.n_pairs + 1))
    assert overhead <= 0.1


def test_without_centre_episodes_the_meta_level_costs_no_step():
    model = make(meta_centre_episodes=0)
    model.learn(2000)
    assert model.meta_controller.summary()["step_overhead"] == 0
    assert model.num_timesteps == model._n_updates * 2 * 4 * HORIZON


@pytest.mark.parametrize("interval", [1, 3])
def test_chunked_learn_keeps_every_meta_update(interval):
    """``for _ in range(k): learn(small, reset_num_timesteps=False)`` == one ``learn``: a due update is never dropped."""
    generation = (2 * 4 + 1) * HORIZON
    straight = make(seed=2, meta_interval=interval, meta_min_significance=0.0)  # a meta ES step at every update
    straight.learn(12 * generation)
    chunked = make(seed=2, meta_interval=interval, meta_min_significance=0.0)
    for _ in range(12):
        chunked.learn(generation // 2, reset_num_timesteps=False)  # chunks smaller than a generation
    assert chunked.num_timesteps == straight.num_timesteps
    assert chunked.meta_controller.n_meta_updates == straight.meta_controller.n_meta_updates == 12 // interval
    np.testing.assert_array_equal(chunked.strategy.theta, straight.strategy.theta)
    np.testing.assert_array_equal(chunked.meta_controller.phi, straight.meta_controller.phi)
    assert chunked.meta_controller.n_meta_steps == 12 // interval
    assert not np.array_equal(chunked.meta_controller.phi, make(seed=2).meta_controller.phi)  # the meta ES moved


def test_too_few_pairs_for_the_meta_candidates_warns_once():
    model = make(n_pairs=1)
    with pytest.warns(UserWarning, match="at least 2 pairs"):
        model.learn(400)
    assert model.meta_controller.n_meta_updates == 0 and model.meta_controller.n_skipped >= 2


def test_merged_population_is_every_plus_half_then_every_minus_half():
    noise = NoiseTable(1000, seed=0)
    strategy = OpenAIES(np.zeros(5))
    a, b = Population(np.array([0, 10]), 0.1), Population(np.array([20]), 0.3)
    merged = merge_populations([a, b])
    np.testing.assert_array_equal(merged.noise_indices, [0, 10, 20])
    np.testing.assert_array_equal(merged.sigma, [0.1, 0.1, 0.3])
    candidates = strategy.candidates(noise, merged)
    np.testing.assert_allclose(candidates[2], 0.3 * noise.get(20, 5), rtol=1e-6)
    np.testing.assert_allclose(candidates[5], -0.3 * noise.get(20, 5), rtol=1e-6)

    def result(returns):
        returns = np.asarray(returns, dtype=float)
        from stable_baselines3.common.running_mean_std import RunningMeanStd

        return RolloutResult(returns, np.ones(returns.size), returns[:, None], np.ones((returns.size, 1)), RunningMeanStd(shape=(3,)))

    joined = merge_antithetic([result([1, 2, 3, 4]), result([5, 6])])
    np.testing.assert_array_equal(joined.returns, [1, 2, 5, 3, 4, 6])


def test_per_pair_sigma_gradient_matches_the_scalar_one():
    noise = NoiseTable(1000, seed=0)
    strategy = OpenAIES(np.zeros(5))
    population = Population(np.array([0, 10, 20]), 0.05)
    returns = np.array([3.0, 1.0, 2.0, 0.0, 5.0, 4.0])
    scalar = strategy.gradient(noise, population, returns)
    per_pair = strategy.gradient(noise, Population(population.noise_indices, np.full(3, 0.05)), returns)
    np.testing.assert_allclose(per_pair, scalar, rtol=1e-12)


def test_rescaling_the_last_step_redoes_it_with_another_learning_rate():
    noise = NoiseTable(1000, seed=0)
    strategy = OpenAIES(np.ones(5))
    assert strategy.stepped_centre(0.5) is strategy.theta  # no step yet: nothing to rescale
    population = Population(np.array([0, 10]), 0.1)
    copy = strategy.copy()
    strategy.tell(noise, population, np.array([1.0, 2.0, 0.0, 3.0]), learning_rate=0.01)
    copy.tell(noise, population, np.array([1.0, 2.0, 0.0, 3.0]), learning_rate=0.03)
    np.testing.assert_allclose(strategy.stepped_centre(0.03), copy.theta, rtol=1e-12)
    strategy.rescale_last_step(0.03)
    np.testing.assert_allclose(strategy.theta, copy.theta, rtol=1e-12)
    assert strategy.last_learning_rate == 0.03


def test_a_meta_controller_of_an_earlier_release_is_refused_clearly():
    """SB3's load turns this error into a warning and the model gets a new controller (_setup_model)."""
    import pickle

    controller = make().meta_controller
    state = controller.__getstate__()
    del state["meta_steps"]
    clone = object.__new__(type(controller))
    with pytest.raises(RuntimeError, match="earlier sb3-bierl"):
        clone.__setstate__(state)
    assert pickle.loads(pickle.dumps(controller)).meta_steps == 0


@pytest.mark.parametrize(
    "meta, where",
    [
        *((meta, where) for meta in ("lstm", "optuna") for where in ("meta rollout", "centre episode", "end")),
        ("tpa", "meta rollout"),  # the two points' episodes
        ("tpa", "end"),
    ],
)
def test_an_interrupted_generation_leaves_the_meta_level_as_it_was(meta, where):
    """Ctrl-C during a meta generation's rollouts (two-point adaptation: its two points') or the centre's episode, or
    an error in a later callback's end of generation: ES rolls the generation back, and the meta level too (its
    history, counters, generator, network or study), so the run resumed with ``reset_num_timesteps=False`` goes on as
    if never interrupted."""
    from stable_baselines3.common.callbacks import BaseCallback

    generation = (2 * 4 + (2 if meta == "tpa" else 1)) * HORIZON
    kwargs = dict(meta=meta, meta_min_significance=0.0) if meta == "lstm" else dict(meta=meta)
    straight = make(seed=4, **kwargs)
    straight.learn(12 * generation - (2 * HORIZON if meta == "tpa" else 0))  # tpa: no two points in the first

    class InterruptOnce(BaseCallback):
        def interrupt(self) -> None:
            if not getattr(self, "done", False):
                self.done = True
                raise KeyboardInterrupt

        def _on_step(self) -> bool:
            model = self.model
            # generation 7's meta generation, in the controller's start of generation (tpa: its population, after
            # the two points)
            started = meta != "tpa" or model.meta_controller.pair is not None
            if model._n_updates == 6 and where == "meta rollout" and not model.generation_done and started:
                self.interrupt()
            if model._n_updates == 6 and where == "centre episode" and model.generation_done:
                self.interrupt()  # the controller's centre episode, at generation 6's end
            return True

        def _on_rollout_end(self) -> None:
            if self.model._n_updates == 6 and where == "end":
                self.interrupt()  # after the controller's end of generation 6

    interrupted = make(seed=4, **kwargs)
    with pytest.raises(KeyboardInterrupt):
        interrupted.learn(12 * generation, callback=InterruptOnce())
    assert interrupted._n_updates == (6 if where == "meta rollout" else 5)
    # the controller is rolled back with the model, before the next learn: what it reports and saves is the model's
    assert interrupted.meta_controller.n_generations == interrupted._n_updates
    while interrupted._n_updates < 12:
        interrupted.learn(generation, reset_num_timesteps=False)
    np.testing.assert_array_equal(interrupted.strategy.theta, straight.strategy.theta)
    assert interrupted.hyperparameters == straight.hyperparameters
    a, b = interrupted.meta_controller.summary(), straight.meta_controller.summary()
    assert (a["n_meta_updates"], a["n_generations"]) == (b["n_meta_updates"], b["n_generations"])
    assert a["n_generations"] == 12
    # the steps the rolled-back generation's meta evaluations took are spent and stay counted, as in num_timesteps:
    # its two points (tpa), its completed centre episode (end), none where the interruption came first
    spent = 2 * HORIZON if meta == "tpa" else HORIZON if where == "end" else 0
    assert a["meta_steps"] - b["meta_steps"] == spent


@pytest.mark.parametrize("meta", ["lstm", "tpa"])
def test_a_stop_asked_during_the_meta_levels_own_steps_completes_the_generation(meta):
    """A callback that returns False during the steps a generation's start takes (``lstm``: the meta generation it
    takes; ``tpa``: its two points, before the population): the generation still ends whole (its step, its count, the
    controller's end of generation), as after a stop during the population, and a later ``learn`` goes on as one
    straight run."""
    from stable_baselines3.common.callbacks import BaseCallback

    generation = (2 * 4 + (2 if meta == "tpa" else 1)) * HORIZON
    kwargs = dict(meta=meta, meta_min_significance=0.0) if meta == "lstm" else dict(meta=meta)
    straight = make(seed=5, **kwargs)
    straight.learn(8 * generation - (2 * HORIZON if meta == "tpa" else 0))

    class StopOnce(BaseCallback):
        def _on_step(self) -> bool:
            model = self.model
            at_start = model.meta_controller.pair is None if meta == "tpa" else True
            if model._n_updates == 3 and not model.generation_done and at_start and not getattr(self, "done", False):
                self.done = True
                return False
            return True

    stopped = make(seed=5, **kwargs)
    stopped.learn(8 * generation, callback=StopOnce())
    assert stopped._n_updates == stopped.meta_controller.n_generations == 4
    while stopped._n_updates < 8:
        stopped.learn(generation, reset_num_timesteps=False)
    np.testing.assert_array_equal(stopped.strategy.theta, straight.strategy.theta)
    assert stopped.num_timesteps == straight.num_timesteps
    assert stopped.meta_controller.summary() == straight.meta_controller.summary()
