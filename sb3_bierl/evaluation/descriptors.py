"""Behaviour descriptors for novelty search (NSR-ES): what an episode did, as a small vector."""

import gymnasium as gym
import numpy as np


def default_behaviour_descriptor(env: gym.Env, final_observation: np.ndarray) -> np.ndarray:
    """
    Where the episode ended (Conti et al. 2018):

    - MuJoCo environments: the final (x, y) of the root body (the torso of the locomotion tasks);
    - Box2D environments with a ``hull`` (BipedalWalker) or a ``lander`` (LunarLander): its final (x, y);
    - anything else: the final observation, flattened.

    :param env: The environment that played the episode (not yet reset)
    :param final_observation: The episode's last observation
    :return: (D,) float array
    """
    unwrapped = env.unwrapped
    data = getattr(unwrapped, "data", None)
    if data is not None and hasattr(data, "xpos"):
        return np.array(data.xpos[1, :2], dtype=np.float64)
    for body in ("hull", "lander"):
        position = getattr(getattr(unwrapped, body, None), "position", None)
        if position is not None:
            return np.array([position[0], position[1]], dtype=np.float64)
    return np.asarray(final_observation, dtype=np.float64).ravel()
