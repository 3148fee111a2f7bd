"""ES trains on exactly the environment the user gave, and refuses clearly what it cannot (issue 11)."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, StopTrainingOnMaxEpisodes
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack, VecNormalize

from sb3_bierl import ES
from sb3_bierl.es.callbacks import ESProgressBarCallback
from sb3_bierl.evaluation import make_env_factory
from conftest import CountingEnv


class ScaledReward(gym.RewardWrapper):
    """A reward the raw env can never give: every step is worth at most -100."""

    def reward(self, reward):
        return -100.0 * abs(reward) - 100.0


class ShiftedObservation(gym.ObservationWrapper):
    def observation(self, observation):
        return observation + 5.0


class PixelEnv(gym.Env):
    """Image observations (uint8, HWC); the reward is 1 when the action is the brightest quarter."""

    metadata: dict = {}

    def __init__(self, channels: int = 3):
        self.observation_space = spaces.Box(0, 255, (6, 6, channels), np.uint8)
        self.action_space = spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.obs = self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)
        return self.obs, {}

    def step(self, action):
        quarters = [self.obs[:3, :3].mean(), self.obs[:3, 3:].mean(), self.obs[3:, :3].mean(), self.obs[3:, 3:].mean()]
        reward = float(int(action) == int(np.argmax(quarters)))
        self.t += 1
        self.obs = self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)
        return self.obs, reward, False, self.t >= 30, {}


class DictObsEnv(gym.Env):
    metadata: dict = {}
    observation_space = spaces.Dict({"a": spaces.Box(-1, 1, (2,), np.float32), "b": spaces.Box(-1, 1, (3,), np.float32)})
    action_space = spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), float(action[0]), False, False, {}

    def _obs(self):
        return {key: self.np_random.uniform(-1, 1, space.shape).astype(np.float32) for key, space in self.observation_space.items()}


class NoTimeLimitEnv(CountingEnv):
    """Never ends its episodes."""

    def step(self, action):
        obs, reward, terminated, _, info = super().step(action)
        return obs, reward, terminated, False, info


gym.register("DictObs-v0", entry_point=DictObsEnv, max_episode_steps=15)
gym.register("Pixel-v0", entry_point=PixelEnv)


def run_on_user_env(model: ES, env: gym.Env, seed: int) -> float:
    """The centre's return on the user's own env, through ``predict``."""
    model.sync_policy()
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total


def training_return(model: ES, seed: int) -> float:
    """The centre's return in a training rollout (on the population's copy of the env)."""
    result = model.evaluator.evaluate(model.policy, model.strategy.theta[None], np.array([[seed]]))
    return float(result.returns[0])


USER_ENVS = {
    "registered, reward wrapper": lambda: ScaledReward(gym.make("CartPole-v1")),
    "registered, observation and action wrappers": lambda: gym.wrappers.RescaleAction(
        ShiftedObservation(gym.make("Pendulum-v1", g=3.0)), np.float32(-0.5), np.float32(0.5)
    ),
    "unregistered, reward wrapper": lambda: ScaledReward(gym.wrappers.TimeLimit(CountingEnv(horizon=50), 30)),
    "flattened Dict observations": lambda: gym.wrappers.FlattenObservation(gym.make("DictObs-v0")),
    "image observations": lambda: gym.wrappers.TimeLimit(PixelEnv(), 30),
}


@pytest.mark.parametrize("name", list(USER_ENVS))
@pytest.mark.parametrize("backend", ["inprocess", "processes"])
def test_training_rollouts_play_the_users_env(name, backend):
    """A candidate's return in training is the return of the same policy, through predict, on the user's env."""
    make = USER_ENVS[name]
    model = ES("MlpPolicy", make(), n_pairs=2, n_workers=1 if backend == "inprocess" else 2, backend=backend, seed=0)
    try:
        model.learn(300)
        for seed in (3, 11):
            assert training_return(model, seed) == pytest.approx(run_on_user_env(model, make(), seed), rel=1e-4, abs=1e-4)
    finally:
        model.close()


def test_wrappers_of_make_vec_env_are_kept():
    env = make_vec_env("CartPole-v1", n_envs=1, wrapper_class=ScaledReward, seed=0)
    model = ES("MlpPolicy", env, n_pairs=2, n_workers=1, seed=0)
    model.learn(200)
    assert np.all(model.last_rollout.returns <= -100.0 * model.last_rollout.lengths)


def test_copies_leave_out_monitor_and_are_independent():
    env = make_vec_env("CartPole-v1", n_envs=1, wrapper_class=ScaledReward)
    factory = make_env_factory(env)
    first, second = factory(), factory()
    assert first is not second and first.unwrapped is not second.unwrapped
    assert "Monitor" not in repr(first) and "ScaledReward" in repr(first)


def test_subproc_vec_env_with_unpicklable_wrapper_is_refused():
    env = make_vec_env("CartPole-v1", n_envs=1, wrapper_class=ScaledReward, vec_env_cls=SubprocVecEnv)
    try:
        with pytest.raises(ValueError, match="ScaledReward.*DummyVecEnv"):
            ES("MlpPolicy", env)
    finally:
        env.close()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: VecNormalize(make_vec_env("CartPole-v1")), "normalises observations itself"),
        (lambda: VecFrameStack(make_vec_env("CartPole-v1"), 2), "FrameStackObservation"),
        (lambda: make_vec_env("CartPole-v1", n_envs=2), "n_envs=2"),
    ],
)
def test_vec_envs_es_cannot_train_on_are_refused(make, match):
    env = make()
    with pytest.raises(ValueError, match=match):
        ES("MlpPolicy", env)
    model = ES("MlpPolicy", "CartPole-v1")
    with pytest.raises(ValueError, match=match):  # every way in
        model.set_env(env)


def test_image_observations_one_preprocessing():
    """Training and predict both scale the pixels (SB3's preprocess_obs); statistics describe the scaled ones."""
    model = ES("MlpPolicy", gym.wrappers.TimeLimit(PixelEnv(channels=3), 30), n_pairs=2, n_workers=1, seed=0)
    assert model.observation_space.shape == (6, 6, 3)  # no VecTransposeImage: one layout everywhere
    model.learn(500)
    assert 0.2 < float(model.obs_rms.mean.mean()) < 0.8  # pixels in [0, 1], not [0, 255]


def test_discrete_observations_are_one_hot():
    model = ES("MlpPolicy", "FrozenLake-v1", n_pairs=2, n_workers=1, seed=0)
    model.learn(300)
    assert model.obs_rms.mean.shape == (16,) and model.obs_rms.mean.sum() == pytest.approx(1.0)
    model.predict(0, deterministic=True)


def test_cnn_policy_says_what_to_use():
    with pytest.raises(ValueError, match="CnnPolicy unknown.*'MlpPolicy' on the pixels"):
        ES("CnnPolicy", gym.wrappers.TimeLimit(PixelEnv(), 30))


def test_env_without_time_limit_warns_and_is_cut():
    with pytest.warns(UserWarning, match="no TimeLimit"):
        model = ES("MlpPolicy", NoTimeLimitEnv(), n_pairs=2, n_workers=1, max_episode_steps=40, seed=0)
    model.learn(100)
    assert np.all(model.last_rollout.lengths == 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ES("MlpPolicy", "Pendulum-v1")  # a time limit: no warning


def test_cuda_device_warns_once_and_runs_on_cpu():
    with pytest.warns(UserWarning, match="runs on the CPU"):
        model = ES("MlpPolicy", "CartPole-v1", device="cuda")
    assert model.device.type == "cpu"


class EpisodeInfos(BaseCallback):
    def __init__(self):
        super().__init__()
        self.episodes: list[dict] = []
        self.steps = 0

    def _on_step(self) -> bool:
        self.steps += 1
        for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
            if done:
                self.episodes.append(info["episode"])
        return True


def test_callbacks_get_dones_and_infos_at_episode_ends():
    infos = EpisodeInfos()
    model = ES("MlpPolicy", "CartPole-v1", n_pairs=2, n_workers=1, seed=0)
    model.learn(500, callback=infos)
    assert infos.steps == model.num_timesteps
    assert sum(episode["l"] for episode in infos.episodes) == model.num_timesteps
    assert [episode["r"] for episode in infos.episodes][-4:] == list(model.last_rollout.episode_returns.ravel())


def test_stop_training_on_max_episodes():
    stop = StopTrainingOnMaxEpisodes(max_episodes=5)
    model = ES("MlpPolicy", "CartPole-v1", n_pairs=2, n_workers=1, seed=0)
    model.learn(100_000, callback=stop)
    assert stop.n_episodes >= 5 and model.num_timesteps < 100_000
    assert model._n_updates == 2  # the generation in which the fifth episode ended was the last


class RecordingBar(ESProgressBarCallback):
    def __init__(self):
        super().__init__()
        self.shown: list[tuple[int, int]] = []  # (bar position, steps counted by the model)

    def _show(self, done):
        super()._show(done)
        self.shown.append((self.pbar.n, self.model.num_timesteps))


def test_progress_bar_advances_within_a_generation_and_ends_at_the_real_count():
    pytest.importorskip("tqdm")
    pytest.importorskip("rich")
    bar = RecordingBar()
    model = ES("MlpPolicy", "CartPole-v1", n_pairs=4, n_workers=1, seed=0)
    model.learn(1000, callback=bar)
    assert model.num_timesteps > 1000  # the last generation went past the budget
    assert bar.pbar.n == bar.pbar.total == model.num_timesteps
    assert any(shown > 0 for shown, counted in bar.shown if counted == 0)  # moved before the first rollout ended


def test_non_finite_observation_is_an_error_that_names_it():
    class NaNObservation(gym.ObservationWrapper):
        def observation(self, observation):
            observation = observation.copy()
            if self.env.unwrapped.t == 7:
                observation[1] = np.nan
            return observation

    model = ES("MlpPolicy", NaNObservation(gym.wrappers.TimeLimit(CountingEnv(horizon=20), 20)), n_pairs=2, n_workers=1, seed=0)
    with pytest.raises(ValueError, match="Non-finite observation: candidate 0, episode 0 .*step 7, observation index 1 is nan"):
        model.learn(200)
    assert np.all(np.isfinite(model.obs_rms.mean))  # nothing poisoned: the model can still be saved and used
