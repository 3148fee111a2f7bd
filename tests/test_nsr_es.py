"""NSR-ES / NSRA-ES: novelty maths, the SB3 algorithm, its meta-level protocol."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from conftest import CountingEnv
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_bierl import NSRAES, NSRES
from sb3_bierl.strategies import (
    AdaptiveNoveltyWeight,
    NoiseTable,
    NoveltyArchive,
    OpenAIES,
    centered_ranks,
    combined_fitness,
    select_by_novelty,
)

SMALL = {"n_pairs": 3, "n_members": 3, "policy_kwargs": {"net_arch": [8]}}


def make(algo=NSRES, env="Counting-v0", seed=0, **kwargs):
    return algo("MlpPolicy", env, seed=seed, **{**SMALL, **kwargs})


# ---------------------------------------------------------------------- novelty maths
def test_knn_novelty_on_a_known_archive():
    archive = NoveltyArchive(k_nearest=2)
    archive.add(np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]))
    archive.add(np.array([0.0, 1.0]))
    assert len(archive) == 4 and archive.dim == 2
    # distances from (0, 0): 0, 5, 10, 1 -> two nearest 0 and 1
    assert archive.novelty(np.array([0.0, 0.0])) == pytest.approx(0.5)
    # from (3, 0): 3, 4, sqrt(9 + 64), sqrt(9 + 1) -> 3 and sqrt(10)
    np.testing.assert_allclose(archive.novelty(np.array([[3.0, 0.0], [0.0, 0.0]])), [(3 + np.sqrt(10)) / 2, 0.5])
    # k larger than the archive: the mean distance to all of it
    wide = NoveltyArchive(k_nearest=10)
    wide.add(np.array([[0.0], [2.0]]))
    assert wide.novelty(np.array([1.0])) == pytest.approx(1.0)
    # it grows past its initial capacity and pickles only what it holds
    big = NoveltyArchive(k_nearest=3)
    for i in range(100):
        big.add(np.array([float(i), 0.0]))
    copy = pickle.loads(pickle.dumps(big))
    assert len(copy) == 100 and copy._data.shape == (100, 2)
    np.testing.assert_allclose(copy.novelty(np.array([[50.2, 0.0]])), big.novelty(np.array([[50.2, 0.0]])))
    assert copy.novelty(np.array([50.0, 0.0])) == pytest.approx(2 / 3)


def test_archive_rejects_bad_descriptors():
    archive = NoveltyArchive(k_nearest=2)
    with pytest.raises(ValueError, match="empty"):
        archive.novelty(np.zeros(2))
    archive.add(np.zeros(2))
    with pytest.raises(ValueError, match="dimension"):
        archive.add(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        archive.add(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="k_nearest"):
        NoveltyArchive(k_nearest=0)


def test_combined_fitness_mixes_centred_ranks():
    returns = np.array([3.0, -1.0, 10.0, 0.0])
    novelty = np.array([0.1, 0.4, 0.2, 0.3])
    np.testing.assert_allclose(combined_fitness(returns, novelty, 0.0), centered_ranks(returns))
    np.testing.assert_allclose(combined_fitness(returns, novelty, 1.0), centered_ranks(novelty))
    mixed = combined_fitness(returns, novelty, 0.25)
    np.testing.assert_allclose(mixed, 0.75 * centered_ranks(returns) + 0.25 * centered_ranks(novelty))
    assert mixed.sum() == pytest.approx(0.0) and np.abs(mixed).max() <= 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        combined_fitness(returns, novelty, 1.5)


def test_openai_es_uses_shaped_utilities_as_they_are():
    noise = NoiseTable(10_000, seed=0)
    rng = np.random.default_rng(0)
    strategy = OpenAIES(np.ones(5), weight_decay=0.0)
    population = strategy.ask(noise, rng, 4, sigma=0.1)
    returns = rng.normal(size=8)
    ranked = strategy.gradient(noise, population, returns)
    # shaped=True with the centred ranks is the default path; with other utilities, they are not re-ranked
    np.testing.assert_allclose(strategy.gradient(noise, population, centered_ranks(returns), shaped=True), ranked)
    assert not np.allclose(strategy.gradient(noise, population, returns, shaped=True), ranked)
    doubled = strategy.gradient(noise, population, 2 * centered_ranks(returns), shaped=True)
    np.testing.assert_allclose(doubled, 2 * ranked)
    before = strategy.theta.copy()
    strategy.tell(noise, population, centered_ranks(returns), 0.01, shaped=True)
    assert not np.array_equal(strategy.theta, before)


def test_adaptive_novelty_weight():
    schedule = AdaptiveNoveltyWeight(weight=0.1, delta=0.05, patience=3)
    assert schedule.update(1.0) == pytest.approx(0.05)  # new best: towards reward
    assert schedule.update(2.0) == pytest.approx(0.0)
    assert schedule.update(3.0) == 0.0  # clipped at 0
    assert [schedule.update(0.0) for _ in range(6)] == [0.0, 0.0, 0.05, 0.05, 0.05, 0.1]  # stagnation: novelty
    assert schedule.update(float("nan")) == 0.1 and schedule.stagnant_generations == 1
    assert schedule.update(3.5) == pytest.approx(0.05) and schedule.stagnant_generations == 0
    top = AdaptiveNoveltyWeight(weight=1.0, delta=0.5, patience=1)
    top.best_reward = 10.0
    assert top.update(0.0) == 1.0  # clipped at 1
    for bad in ({"weight": 1.2}, {"delta": 0.0}, {"patience": 0}):
        with pytest.raises(ValueError):
            AdaptiveNoveltyWeight(**bad)


def test_selection_is_proportional_to_novelty():
    rng = np.random.default_rng(0)
    picks = np.bincount([select_by_novelty(np.array([0.0, 1.0, 3.0]), rng) for _ in range(4000)], minlength=3)
    np.testing.assert_allclose(picks / 4000, [0.0, 0.25, 0.75], atol=0.03)
    uniform = np.bincount([select_by_novelty(np.zeros(4), rng) for _ in range(4000)], minlength=4)
    np.testing.assert_allclose(uniform / 4000, 0.25, atol=0.03)


# ---------------------------------------------------------------------- the algorithm
@pytest.mark.parametrize("algo", [NSRES, NSRAES])
def test_learn_counts_every_step_and_archives_each_generation(algo):
    model = make(algo)
    assert len({member.theta.tobytes() for member in model.members}) == 3  # different initialisations
    model.learn(1500)
    assert model.num_timesteps == CountingEnv.total_steps >= 1500
    # seeded with every member, then one descriptor per generation (the updated member's new centre)
    assert len(model.archive) == model.n_members + model._n_updates
    assert model.archive.dim == 3  # default descriptor: the final observation
    assert model.strategy is model.members[model.best_member]
    assert model.best_member == int(np.argmax(model.member_returns))
    np.testing.assert_array_equal(model._policy_vector(), model.strategy.theta.astype(np.float32))
    assert model.hyperparameters["novelty_weight"] == model.current_novelty_weight
    if algo is NSRAES:
        assert model.novelty_weight_schedule is not None and 0.0 <= model.current_novelty_weight <= 1.0
    actions, _ = model.predict(np.zeros((4, 3), np.float32), deterministic=True)
    assert actions.shape == (4, 2)


def test_same_seed_same_result():
    a, b, c = make(seed=5), make(seed=5), make(seed=6)
    for model in (a, b, c):
        model.learn(1500)
    for member_a, member_b in zip(a.members, b.members, strict=True):
        np.testing.assert_array_equal(member_a.theta, member_b.theta)
    np.testing.assert_array_equal(a.archive.descriptors, b.archive.descriptors)
    assert not np.array_equal(a.strategy.theta, c.strategy.theta)


@pytest.mark.parametrize("algo", [NSRES, NSRAES])
def test_save_load_round_trip(algo, tmp_path):
    model = make(algo, zero_policy=True)
    model.learn(1500)
    obs = np.random.default_rng(0).uniform(-1, 1, (10, 3)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", env="Counting-v0")
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], expected, atol=1e-6)
    assert loaded.strategy is loaded.members[loaded.best_member]  # not a separate copy
    for saved, restored in zip(model.members, loaded.members, strict=True):
        np.testing.assert_array_equal(saved.theta, restored.theta)
        np.testing.assert_array_equal(saved.optimizer.v, restored.optimizer.v)
    np.testing.assert_array_equal(loaded.archive.descriptors, model.archive.descriptors)
    np.testing.assert_array_equal(loaded.member_returns, model.member_returns)
    assert loaded.current_novelty_weight == model.current_novelty_weight
    assert loaded.num_timesteps == model.num_timesteps
    CountingEnv.total_steps = 0
    loaded.learn(600, reset_num_timesteps=False)
    assert loaded.num_timesteps == model.num_timesteps + CountingEnv.total_steps
    assert len(loaded.archive) == loaded.n_members + loaded._n_updates
    other = NSRAES if algo is NSRES else NSRES
    with pytest.raises(ValueError, match=algo.__name__):
        other.load(tmp_path / "model")
    # prediction only: no environment needed
    np.testing.assert_allclose(algo.load(tmp_path / "model").predict(obs, deterministic=True)[0], expected, atol=1e-6)


def test_user_behaviour_descriptor_and_discrete_actions():
    model = make(env="CartPole-v1", behaviour_descriptor=lambda env, obs: np.array([env.unwrapped.state[0]]))
    model.learn(600)
    assert model.archive.dim == 1
    action, _ = model.predict(np.zeros(4, np.float32))
    assert action in (0, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_members": 0}, "n_members"),
        ({"k_nearest": 0}, "k_nearest"),
        ({"novelty_weight": 1.5}, "novelty_weight"),
        ({"novelty_weight": -0.1}, "novelty_weight"),
        ({"novelty_weight": "high"}, "novelty_weight"),
        ({"adaptive_novelty_weight": True, "novelty_weight_delta": 0.0}, "novelty_weight_delta"),
        ({"adaptive_novelty_weight": True, "stagnation_generations": 0}, "stagnation_generations"),
        ({"behaviour_descriptor": "xy"}, "behaviour_descriptor"),
        ({"behaviour_descriptor": lambda env, obs: np.zeros((2, 2))}, r"1-D.*shape \(2, 2\)"),
        ({"behaviour_descriptor": lambda env, obs: np.zeros(0)}, r"non-empty.*shape \(0,\)"),
        ({"behaviour_descriptor": lambda env, obs: np.array([np.nan, 1.0])}, "NaN or inf"),
        ({"behaviour_descriptor": lambda env, obs: "far"}, "behaviour_descriptor must return"),
    ],
)
def test_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


# ---------------------------------------------------------------------- the meta level's view
class SetNoveltyWeight(BaseCallback):
    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        self.model.hyperparameters["novelty_weight"] = self.weight


def test_a_callback_sets_the_novelty_weight():
    assert "novelty_weight" in NSRES.adaptable_hyperparameters
    fixed, adapted = make(novelty_weight=0.0), make(novelty_weight=0.7)
    fixed.learn(900)
    adapted.learn(900, callback=SetNoveltyWeight(0.0))
    assert adapted.hyperparameters["novelty_weight"] == 0.0
    np.testing.assert_array_equal(fixed.strategy.theta, adapted.strategy.theta)


class SharedGeneration(BaseCallback):
    """What a meta level does: a generation shared between two novelty weights (model.meta_generation)."""

    def __init__(self):
        super().__init__()
        self.n_shared = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        model = self.model
        member = model.current_member
        archive_size = len(model.archive)
        before = model.num_timesteps
        theta = model.members[member].theta.copy()
        proposals = [{**model.hyperparameters, "novelty_weight": w} for w in (0.0, 1.0)]
        returns = model.meta_generation(model.hyperparameters, proposals)
        assert returns.shape == (2, 2 * (model.n_pairs // 2)) and np.all(np.isfinite(returns))
        assert model.generation_done and model.last_rollout.returns.size == 2 * model.n_pairs
        assert not np.array_equal(model.members[member].theta, theta)  # the member took the step
        assert len(model.archive) == archive_size + 1  # its new centre joined the archive (finish_step)
        # one generation and the new centre's episode: no trial generation on top
        assert model.num_timesteps - before == model.last_rollout.n_steps + model.last_centre_rollout.n_steps
        self.n_shared += 1


def test_meta_generation_protocol():
    model = make()
    callback = SharedGeneration()
    model.learn(1000, callback=callback)
    assert callback.n_shared == model._n_updates >= 2
    assert model.num_timesteps == CountingEnv.total_steps
    assert len(model.archive) == model.n_members + model._n_updates
    assert model.strategy is model.members[model.best_member]


def test_cooperative_construction():
    """A subclass that builds the model itself, as BiERL does (BiERL -> NSRES -> ES)."""

    class Wrapper(NSRES):
        def __init__(self, policy, env, extra=1, _init_setup_model=True, **kwargs):
            self.extra = extra
            super().__init__(policy, env, n_pairs=3, sigma=0.03, learning_rate=0.02, _init_setup_model=False, **kwargs)
            self._setup_model()

        def _setup_model(self):
            super()._setup_model()
            self.wrapper_ready = True

    model = Wrapper("MlpPolicy", "Counting-v0", n_members=2, k_nearest=3, seed=0, policy_kwargs={"net_arch": [8]})
    assert model.wrapper_ready and len(model.members) == 2 and model.archive.k_nearest == 3
    assert model.scheduled_hyperparameters()["sigma"] == 0.03
    model.learn(500)
    assert model.num_timesteps == CountingEnv.total_steps


# ---------------------------------------------------------------------- learning
def test_learns_cartpole():
    """NSR-ES solves CartPole within 100k steps (about 4 s); a random policy stays below 100."""
    model = NSRES("MlpPolicy", "CartPole-v1", n_pairs=8, seed=2)
    env = Monitor(gym.make("CartPole-v1"))
    env.reset(seed=100)
    before, _ = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True)
    model.learn(100_000)
    after, _ = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True)
    assert before < 100 and after >= 195


def test_an_interrupted_generation_rolls_back_every_member_and_the_archive():
    """Ctrl-C after the drawn member stepped (its new centre's rollout): that member, the archive and the members'
    records go back to the end of the last completed generation, so the resumed run equals a straight one (the
    roll-back used to restore only the strategy in use before the draw)."""
    straight = make(seed=1)
    while straight._n_updates < 8:
        straight.learn(1, reset_num_timesteps=False)

    class InterruptInTheCentreRollout(BaseCallback):
        def _on_step(self) -> bool:
            model = self.model
            stepped = model.num_timesteps - getattr(self, "start", np.inf) > 2 * 3 * 20  # past the population
            if stepped and model.current_member != model.best_member and not getattr(self, "done", False):
                self.done = True
                raise KeyboardInterrupt
            return True

        def _on_rollout_start(self) -> None:
            self.start = self.model.num_timesteps

    interrupted = make(seed=1)
    callback = InterruptInTheCentreRollout()
    with pytest.raises(KeyboardInterrupt):
        while interrupted._n_updates < 8:
            interrupted.learn(1, reset_num_timesteps=False, callback=callback)
    while interrupted._n_updates < 8:
        interrupted.learn(1, reset_num_timesteps=False)
    for member, other in zip(interrupted.members, straight.members, strict=True):
        np.testing.assert_array_equal(member.theta, other.theta)
    assert len(interrupted.archive) == len(straight.archive)
    np.testing.assert_array_equal(interrupted.member_returns, straight.member_returns)
