"""Environments for the tests of the worker backends: some fail inside workers, one has episodes of uneven
length (imported there by module name)."""

import os
import time

import gymnasium as gym
import numpy as np

FAULT_SEED = 0


class FaultyEnv(gym.Env):
    """
    Episodes reset with ``FAULT_SEED`` fail at their first step (``mode``: "raise" or "exit");
    the others are slow (``step_time`` seconds per step), to keep the other workers busy.
    """

    metadata: dict = {}

    def __init__(self, mode: str = "raise", step_time: float = 0.05, horizon: int = 1000):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.mode = mode
        self.step_time = step_time
        self.horizon = horizon
        self.faulty = False
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.faulty, self.t = seed == FAULT_SEED, 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        if self.faulty and self.mode == "raise":
            raise ValueError("boom in FaultyEnv.step")
        if self.faulty and self.mode == "exit":
            os._exit(1)
        time.sleep(self.step_time)
        self.t += 1
        return np.zeros(3, np.float32), 0.0, False, self.t >= self.horizon, {}


class UnevenEnv(gym.Env):
    """
    Episodes of uneven length (1 to ``max_length`` steps, set by the reset seed), each step taking
    ``step_time`` seconds: candidates' rollouts take very different times, so dynamic dispatch matters.
    Observations and rewards depend on the state and the action, so that results tell candidates apart.
    """

    metadata: dict = {"render_modes": []}

    def __init__(self, max_length: int = 30, step_time: float = 0.001):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.max_length, self.step_time = max_length, step_time
        self.length, self.t = 1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.length, self.t = 1 + int(self.np_random.integers(self.max_length)), 0
        self.state = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self.state, {}

    def step(self, action):
        time.sleep(self.step_time)
        self.t += 1
        reward = -float(np.sum((np.asarray(action) - self.state[:2]) ** 2))
        self.state = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        return self.state, reward, self.t >= self.length, False, {}
