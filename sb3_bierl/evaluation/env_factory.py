"""Build fresh copies of the user's environment for population rollouts."""

import copy
import dataclasses
from collections.abc import Callable

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv


def make_env_factory(env: gym.Env | VecEnv | str) -> Callable[[], gym.Env]:
    """
    :param env: An environment id, a gymnasium env or an SB3 ``VecEnv``
    :return: a function that returns a new, independent copy of that environment.
        Registered environments are re-made with ``gym.make`` from their spec (kwargs and time
        limit); wrappers added around it (Monitor, ...) are
        not copied. Unregistered environments are deep-copied.
    """
    if isinstance(env, str):
        return lambda: gym.make(env)
    spec = None
    if isinstance(env, DummyVecEnv):
        template = env.envs[0]
        spec = template.spec
        if spec is None:
            return lambda: copy.deepcopy(template)
    elif isinstance(env, VecEnv):
        spec = env.get_attr("spec", indices=[0])[0]
    elif isinstance(env, gym.Env):
        spec = env.spec
        if spec is None:
            return lambda: copy.deepcopy(env)
    if spec is None:
        raise ValueError(
            "Cannot make copies of this environment for population rollouts: pass an environment id "
            "or an environment registered with gymnasium (gym.register)."
        )
    # re-make the registered env (kwargs, time limit), without the wrappers added around it
    spec = dataclasses.replace(spec, additional_wrappers=())
    if isinstance(spec.entry_point, str) and spec.entry_point.startswith("__main__:"):
        # defined in the user's script: send the class itself (workers do not import the script)
        spec = dataclasses.replace(spec, entry_point=load_env_creator(spec.entry_point))
    return lambda: gym.make(spec)
