import copy
import zipfile

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from conftest import CountingEnv
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor

from sb3_bierl import ES, BiERL

SMALL = dict(n_pairs=3, policy_kwargs=dict(net_arch=[8]))
# the SB3 contract of BiERL with the paper's meta network; its default for OpenAI-ES, TPA, in test_two_point.py and
# test_default_meta.py
SMALL_META = dict(meta="lstm", meta_interval=2, meta_n_pairs=1, meta_history_length=4)


def make(algo, env="Counting-v0", seed=0, **kwargs):
    extra = SMALL_META if algo is BiERL else {}
    return algo("MlpPolicy", env, seed=seed, **{**SMALL, **extra, **kwargs})


ALGOS = [ES, BiERL]


@pytest.mark.parametrize("algo", ALGOS)
def test_predict_shapes_box_and_discrete(algo):
    model = make(algo)
    obs = np.zeros((5, 3), np.float32)
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (5, 2) and np.all(np.abs(actions) <= 1)
    model = make(algo, "CartPole-v1")
    model.learn(300)
    action, _ = model.predict(np.zeros(4, np.float32))
    assert action in (0, 1)


@pytest.mark.parametrize("algo", ALGOS)
def test_num_timesteps_counts_every_environment_step(algo):
    model = make(algo)
    model.learn(1000)
    assert model.num_timesteps == CountingEnv.total_steps
    assert model.num_timesteps >= 1000
    if algo is BiERL:
        assert model.meta_controller.n_meta_updates >= 1


@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_same_result(algo):
    a, b = make(algo, seed=5), make(algo, seed=5)
    a.learn(1500)
    b.learn(1500)
    np.testing.assert_array_equal(a.strategy.theta, b.strategy.theta)
    c = make(algo, seed=6)
    c.learn(1500)
    assert not np.array_equal(a.strategy.theta, c.strategy.theta)


@pytest.mark.parametrize("algo", ALGOS)
def test_save_load_round_trip(algo, tmp_path):
    model = make(algo)
    model.learn(1200)
    obs = np.random.default_rng(0).uniform(-1, 1, (10, 3)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model")
    loaded = algo.load(tmp_path / "model", env="Counting-v0")
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], expected, atol=1e-6)
    np.testing.assert_allclose(loaded.obs_rms.mean, model.obs_rms.mean)
    np.testing.assert_allclose(loaded.strategy.optimizer.v, model.strategy.optimizer.v)
    assert loaded.num_timesteps == model.num_timesteps
    if algo is BiERL:
        assert loaded.meta_controller.propose() == model.meta_controller.propose()
        assert len(loaded.meta_controller.history) == len(model.meta_controller.history)
    # prediction only: no environment needed
    no_env = algo.load(tmp_path / "model")
    np.testing.assert_allclose(no_env.predict(obs, deterministic=True)[0], expected, atol=1e-6)
    with pytest.raises(ValueError, match="set_env"):
        no_env.learn(100)


@pytest.mark.parametrize("algo", ALGOS)
def test_resume_is_equivalent_to_one_run(algo, tmp_path):
    """learn(2N) == learn(N), save, load, learn(N, reset_num_timesteps=False): episodes have a fixed length."""
    # 6 candidates x 20 steps a generation; BiERL's first meta update (2 trial generations and 2 evaluation
    # episodes, 280 steps) is the third generation: n ends a generation and cuts no meta update
    n = 640 if algo is BiERL else 720
    straight = make(algo, seed=1)
    straight.learn(2 * n)
    first = make(algo, seed=1)
    first.learn(n)
    first.save(tmp_path / "half")
    resumed = algo.load(tmp_path / "half", env="Counting-v0")
    resumed.learn(n, reset_num_timesteps=False)
    assert resumed.num_timesteps == straight.num_timesteps
    np.testing.assert_allclose(resumed.strategy.theta, straight.strategy.theta, rtol=0, atol=1e-12)


@pytest.mark.parametrize("algo", ALGOS)
def test_get_set_parameters(algo):
    model = make(algo)
    params = model.get_parameters()
    assert "obs_mean" in params["policy"]
    params["policy"]["action_net.0.weight"] *= 0
    model.set_parameters(params)
    assert np.allclose(model.get_parameters()["policy"]["action_net.0.weight"].numpy(), 0)
    n_first = params["policy"]["action_net.0.weight"].numel()
    assert np.allclose(model.strategy.theta[:n_first], 0)


def test_set_env_and_evaluate_policy():
    model = make(ES)
    model.set_env(gym.make("Counting-v0"))
    model.learn(300)
    mean, std = evaluate_policy(model, model.get_env(), n_eval_episodes=3)
    assert np.isfinite(mean) and std >= 0
    with pytest.raises(ValueError):
        model.set_env(gym.make("CartPole-v1"))


@pytest.mark.parametrize("algo", ALGOS)
def test_callbacks_frequencies_in_environment_steps(algo, tmp_path):
    model = make(algo)
    eval_callback = EvalCallback(
        Monitor(gym.make("Counting-v0")), eval_freq=500, n_eval_episodes=2, log_path=str(tmp_path), verbose=0
    )
    checkpoint = CheckpointCallback(save_freq=400, save_path=str(tmp_path), name_prefix="ckpt")
    model.learn(2000, callback=[eval_callback, checkpoint])
    assert len(eval_callback.evaluations_timesteps) == model.num_timesteps // 500
    assert eval_callback.evaluations_timesteps[0] == 500
    saved = sorted(tmp_path.glob("ckpt_*_steps.zip"), key=lambda path: int(path.stem.split("_")[1]))
    assert len(saved) == model.num_timesteps // 400
    assert algo.load(saved[0]).num_timesteps == 400


@pytest.mark.parametrize("algo", ALGOS)
def test_stop_training_on_reward_threshold(algo):
    model = make(algo)
    stop = StopTrainingOnRewardThreshold(reward_threshold=-1e9)
    eval_callback = EvalCallback(Monitor(gym.make("Counting-v0")), callback_on_new_best=stop, eval_freq=200, n_eval_episodes=1)
    model.learn(100_000, callback=eval_callback)
    assert model.num_timesteps < 2000


@pytest.mark.parametrize("algo", ALGOS)
def test_logger_keys(algo, tmp_path):
    model = make(algo)
    model.set_logger(configure(str(tmp_path), ["csv", "tensorboard"]))
    model.learn(1500)
    log = pd.read_csv(tmp_path / "progress.csv")
    for key in ["rollout/ep_rew_mean", "train/sigma", "train/learning_rate", "time/fps"]:
        assert key in log.columns and log[key].notna().all()
    if algo is BiERL:
        assert "meta/fitness" in log.columns and log["meta/fitness"].notna().any()
    # tensorboard has the same scalars, at the same steps
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path)).Reload()
    for key in ["rollout/ep_rew_mean", "train/sigma", "train/learning_rate"]:
        scalars = events.Scalars(key)
        assert [s.step for s in scalars] == log["time/total_timesteps"].tolist()
        np.testing.assert_allclose([s.value for s in scalars], log[key].to_numpy(), rtol=1e-5)


def test_bierl_adapts_hyperparameters_within_bounds():
    bounds = {"sigma": (0.01, 0.05), "learning_rate": (0.005, 0.02)}
    model = make(BiERL, hyperparameter_bounds=bounds, meta_min_significance=0.0)  # a meta ES step at every update
    seen = []

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            seen.append(dict(self.model.hyperparameters))

    model.learn(3000, callback=Record())
    sigmas = {h["sigma"] for h in seen}
    assert len(sigmas) > 1, "the meta level never changed sigma"
    for h in seen:
        assert 0.01 <= h["sigma"] <= 0.05 and 0.005 <= h["learning_rate"] <= 0.02


def test_mean_pool_encoder_runs():
    model = make(BiERL, meta="mean")
    model.learn(600)
    assert model.meta_controller.network.encoder_type == "mean"


@pytest.mark.parametrize("algo", ALGOS)
def test_nan_returns_never_reach_the_parameters(algo):
    gym.register("CountingNaN-v0", entry_point=CountingEnv, kwargs=dict(nan_every=7))
    model = make(algo, "CountingNaN-v0")
    with pytest.warns(UserWarning, match="NaN or inf"):
        gym.register("AllNaN-v0", entry_point=CountingEnv, kwargs=dict(nan_every=1))
        make(algo, "AllNaN-v0").learn(200)
    model.learn(2000)
    assert np.all(np.isfinite(model.strategy.theta))
    assert np.all(np.isfinite(model.predict(np.zeros(3, np.float32))[0]))


@pytest.mark.parametrize("algo", ALGOS)
def test_interrupted_learn_leaves_a_usable_model(algo, tmp_path):
    """Ctrl-C in the middle of a generation: the ES state is the one at the end of the last completed generation."""
    completed: list[tuple[int, np.ndarray]] = []

    class Interrupt(BaseCallback):
        def _on_step(self) -> bool:
            if self.n_calls == 250:
                raise KeyboardInterrupt
            return True

        def _on_rollout_end(self) -> None:
            completed.append((self.model._n_updates, self.model.strategy.theta.copy(), copy.deepcopy(self.model.obs_rms)))

    model = make(algo)
    with pytest.raises(KeyboardInterrupt):
        model.learn(5000, callback=Interrupt())
    assert completed, "the interrupt came before the first generation ended: raise n_calls"
    n_updates, theta, obs_rms = completed[-1]
    assert model._n_updates == n_updates
    np.testing.assert_array_equal(model.strategy.theta, theta)
    np.testing.assert_array_equal(model._policy_vector(), theta.astype(np.float32))
    # the observation statistics too: the interrupted generation's observations are not in them
    np.testing.assert_array_equal(model.obs_rms.mean, obs_rms.mean)
    np.testing.assert_array_equal(model.obs_rms.var, obs_rms.var)
    assert model.obs_rms.count == obs_rms.count
    model.save(tmp_path / "interrupted")
    loaded = algo.load(tmp_path / "interrupted", env="Counting-v0")
    np.testing.assert_allclose(
        loaded.predict(np.zeros(3, np.float32), deterministic=True)[0],
        model.predict(np.zeros(3, np.float32), deterministic=True)[0],
        atol=1e-6,
    )
    loaded.learn(500, reset_num_timesteps=False)
    assert np.all(np.isfinite(loaded.strategy.theta))


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_pairs=0), "n_pairs must be an integer >= 1"),
        (dict(n_eval_episodes=0), "n_eval_episodes must be an integer >= 1"),
        (dict(sigma=-0.1), "sigma must be a positive"),
        (dict(learning_rate=0.0), "learning_rate must be a positive"),
        (dict(weight_decay=-1.0), "weight_decay"),
    ],
)
def test_bad_hyperparameters(algo, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(algo, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(hyperparameter_bounds={"sigma": (0.1, 0.01)}), "low must be below high"),
        (dict(hyperparameter_bounds={"learning_rate": (0.0, 0.1)}), "positive"),
        (dict(hyperparameter_bounds={"sigma": (0.05, 0.1)}), "outside"),
        (dict(meta_n_pairs=0), "meta_n_pairs"),
        (dict(meta_interval=0), "meta_interval"),
        (dict(meta_centre_episodes=-1), "meta_centre_episodes"),
        (dict(meta_max_change=1.0), "meta_max_change"),
        (dict(meta_trainable="encoder"), "meta_trainable"),
        (dict(meta="gru"), "meta must be one of"),
        (dict(learning_rate=lambda progress: 0.01), "schedule"),
    ],
)
def test_bad_meta_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(BiERL, **kwargs)


@pytest.mark.parametrize("algo", ALGOS)
def test_dict_observation_space_is_rejected(algo):
    class DictEnv(CountingEnv):
        def __init__(self):
            super().__init__()
            self.observation_space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (3,))})

    with pytest.raises(ValueError, match="FlattenObservation"):
        algo("MlpPolicy", DictEnv())


@pytest.mark.parametrize("algo", ALGOS)
def test_loading_something_else_fails_clearly(algo, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="not a saved sb3-bierl model"):
        algo.load(text)
    with pytest.raises(FileNotFoundError):
        algo.load(tmp_path / "missing")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("data", "{}")
    with pytest.raises(ValueError, match="sb3-bierl"):
        algo.load(tmp_path / "other.zip")
    other = BiERL if algo is ES else ES
    make(other).save(tmp_path / "other_algo")
    with pytest.raises(ValueError, match=f"load it with {other.__name__}.load"):
        algo.load(tmp_path / "other_algo")


def test_progress_bar_and_verbose_logging(capsys):
    model = make(BiERL, verbose=1)
    model.learn(400, progress_bar=True)
    out = capsys.readouterr().out
    assert "sigma" in out and "learning_rate" in out and "fps" in out


def test_a_resumed_run_goes_on_as_if_never_interrupted():
    """Ctrl-C in the middle of a generation, then ``learn(..., reset_num_timesteps=False)``: the same centre as one
    uninterrupted run of as many generations (the rolled-back generation's observations are not in the statistics)."""
    generation = 2 * 4 * 20  # n_pairs=4 pairs of 20-step episodes

    def make_es():
        return ES("MlpPolicy", "Counting-v0", seed=3, n_pairs=4, policy_kwargs=dict(net_arch=[8]))

    straight = make_es()
    straight.learn(40 * generation)

    class InterruptOnce(BaseCallback):
        def _on_step(self) -> bool:
            if self.model._n_updates == 16 and not getattr(self, "done", False):
                self.done = True
                raise KeyboardInterrupt
            return True

    resumed = make_es()
    with pytest.raises(KeyboardInterrupt):
        resumed.learn(40 * generation, callback=InterruptOnce())
    resumed.learn(24 * generation, reset_num_timesteps=False)
    assert resumed._n_updates == straight._n_updates == 40
    np.testing.assert_array_equal(resumed.strategy.theta, straight.strategy.theta)
