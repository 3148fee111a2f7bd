import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_bierl.es import es as es_module


class CountingEnv(gym.Env):
    """A tiny continuous task that counts every step taken by every copy of itself."""

    total_steps = 0
    metadata: dict = {}

    def __init__(self, nan_every: int = 0, horizon: int = 20):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.nan_every = nan_every
        self.horizon = horizon
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.state = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self.state, {}

    def step(self, action):
        CountingEnv.total_steps += 1
        self.t += 1
        reward = -float(np.sum((np.asarray(action) - self.state[:2]) ** 2))
        if self.nan_every and CountingEnv.total_steps % self.nan_every == 0:
            reward = float("nan")
        self.state = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self.state, reward, False, self.t >= self.horizon, {}


gym.register("Counting-v0", entry_point=CountingEnv)


def assert_chunked_and_resumed_runs_equal(make, straight, generation, tmp_path, halfway):
    """
    ``learn`` in calls of half a generation each (one generation per call), and ``learn`` stopped ``halfway``, saved,
    loaded and continued, both end at ``straight``'s centre.

    :param make: () -> a new model, the same as ``straight`` before its ``learn``
    :param straight: The model trained in one ``learn`` call
    :param generation: The population's steps per generation (a call of half of it runs one generation)
    :param tmp_path: Folder for the saved model
    :param halfway: Steps of the first ``learn`` before the save
    :return: the loaded model, after its ``learn``
    """
    chunked = make()
    while chunked.num_timesteps < straight.num_timesteps:
        chunked.learn(generation // 2, reset_num_timesteps=False)
    np.testing.assert_array_equal(chunked.strategy.theta, straight.strategy.theta)
    half = make()
    half.learn(halfway)
    half.save(tmp_path / "half")
    resumed = type(straight).load(tmp_path / "half", env="Counting-v0")
    resumed.learn(straight.num_timesteps - half.num_timesteps, reset_num_timesteps=False)
    np.testing.assert_array_equal(resumed.strategy.theta, straight.strategy.theta)
    return resumed


@pytest.fixture(scope="session", autouse=True)
def _auto_backend_in_test_process():
    """backend="auto" (the default) never starts worker processes here: CountingEnv counts steps in
    this process, and results do not depend on where the slices run. Tests of the worker backends
    ask for them explicitly (test_process_backend.py, test_ray_backend.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(es_module, "AUTO_LOCAL_SECONDS", math.inf)
        yield


@pytest.fixture(autouse=True)
def _single_thread():
    th.set_num_threads(1)
    CountingEnv.total_steps = 0
