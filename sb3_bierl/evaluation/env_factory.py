"""Build fresh copies of the user's environment, wrappers included, for population rollouts (issue 11)."""

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec, load_env_creator
from gymnasium.wrappers import HumanRendering, RecordEpisodeStatistics, RecordVideo, TimeLimit
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from sb3_bierl.evaluation.quiet_mujoco import mujoco_deprecations_silenced

#: Wrappers that only observe or display the episodes: left out of the population's copies (ES logs the
#: episodes itself; a copy must not write the user's Monitor file or open a window)
OBSERVER_WRAPPERS: tuple[type[gym.Wrapper], ...] = (Monitor, RecordEpisodeStatistics, RecordVideo, HumanRendering)
#: Maximum episode length given to copies of an environment that has no time limit of its own
DEFAULT_MAX_EPISODE_STEPS = 1000


def wrapper_chain(env: gym.Env) -> list[gym.Env]:
    """:return: ``env``, the env it wraps, and so on down to the unwrapped env (outermost first)"""
    chain = [env]
    while isinstance(chain[-1], gym.Wrapper):
        chain.append(chain[-1].env)
    return chain


def has_time_limit(env: gym.Env | VecEnv) -> bool:
    """:return: whether the environment (or the first env of a VecEnv) ends its episodes by a ``TimeLimit``"""
    if isinstance(env, DummyVecEnv):
        env = env.envs[0]
    elif isinstance(env, VecEnv):
        spec = env.get_attr("spec", indices=[0])[0]
        return spec is not None and spec.max_episode_steps is not None
    if any(isinstance(layer, TimeLimit) for layer in wrapper_chain(env)):
        return True
    return env.spec is not None and env.spec.max_episode_steps is not None


class _UnwrappedSlot:
    """Stands for the unwrapped env in a template of the wrappers (replaced by a fresh env in each copy)."""


class EnvCopier:
    """
    Makes new, independent copies of a gymnasium environment and of every wrapper around it, the user's
    included (reward, action and observation wrappers, ``make_vec_env(wrapper_class=...)``, the zoo's
    ``env_wrapper``), except the observers in :data:`OBSERVER_WRAPPERS`. Picklable (sent to the workers).

    - A registered environment's unwrapped env is re-made from its spec (entry point and kwargs, without
      ``render_mode``: the copies do not render); the wrappers above it (the time limit and the checks that
      ``gym.make`` adds, then the user's) are deep copies of the user's, each around the new env.
    - An unregistered environment is deep-copied whole.

    :param env: The gymnasium environment (with its wrappers)
    :param max_episode_steps: If not None, each copy is wrapped in a ``TimeLimit`` of this many steps
    :raises ValueError: if a wrapper (or an unregistered env) cannot be copied; the message says what to do
    """

    def __init__(self, env: gym.Env, max_episode_steps: int | None = None):
        chain = wrapper_chain(env)
        base = chain[-1]
        self.max_episode_steps = max_episode_steps
        self.spec: EnvSpec | None = copy.deepcopy(base.spec) if base.spec is not None and base.spec.entry_point else None
        memo: dict[int, Any] = {}
        if self.spec is not None:
            entry_point = self.spec.entry_point
            self.creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
            self.kwargs = {k: v for k, v in self.spec.kwargs.items() if k != "render_mode"}
            self.slot: Any = _UnwrappedSlot()
            memo[id(base)] = top = self.slot
        else:
            top = _deepcopy(base, memo, f"the environment {type(base).__name__} (not registered with gymnasium)")
        for layer in reversed(chain[:-1]):
            if isinstance(layer, OBSERVER_WRAPPERS):
                memo[id(layer)] = top  # left out: the copy of the layer above wraps the copy below
            else:
                top = _deepcopy(layer, memo, f"the wrapper {type(layer).__name__}")
        self.template = top

    def __call__(self) -> gym.Env:
        """:return: a new copy of the environment"""
        if self.spec is None:
            env = copy.deepcopy(self.template)
        else:
            with mujoco_deprecations_silenced():
                base = self.creator(**self.kwargs)
            base.unwrapped.spec = copy.deepcopy(self.spec)
            env = copy.deepcopy(self.template, {id(self.slot): base})
        if self.max_episode_steps is not None:
            env = TimeLimit(env, self.max_episode_steps)
        return env


def _deepcopy(obj: Any, memo: dict[int, Any], what: str) -> Any:
    try:
        return copy.deepcopy(obj, memo)
    except Exception as error:
        raise ValueError(
            f"Cannot copy {what} for the population's rollouts ({type(error).__name__}: {error}). ES rolls out "
            "copies of the environment you give, wrappers included: make it deep-copyable, or register the "
            "environment with its wrappers (gymnasium.register(..., additional_wrappers=...)) and pass its id."
        ) from error


def make_env_factory(env: gym.Env | VecEnv | str, max_episode_steps: int | None = None) -> Callable[[], gym.Env]:
    """
    :param env: An environment id, a gymnasium env or an SB3 ``VecEnv`` (its first env is copied)
    :param max_episode_steps: If not None, each copy is wrapped in a ``TimeLimit`` of this many steps
    :return: a picklable function that returns a new, independent copy of that environment with its
        wrappers (see :class:`EnvCopier`)
    :raises ValueError: if the environment or one of its wrappers cannot be copied faithfully
    """
    if isinstance(env, str):
        with mujoco_deprecations_silenced():
            env = gym.make(env)
    if isinstance(env, DummyVecEnv):
        env = env.envs[0]
    if isinstance(env, gym.Env):
        copier = EnvCopier(env, max_episode_steps)
        copier().close()  # fail now, not in a worker
        return copier
    if isinstance(env, VecEnv):
        return _spec_factory(env.get_attr("spec", indices=[0])[0], max_episode_steps)
    raise TypeError(f"Expected an environment id, a gymnasium env or a VecEnv, got {type(env).__name__}")


def _spec_factory(spec: EnvSpec | None, max_episode_steps: int | None) -> Callable[[], gym.Env]:
    """The factory of a VecEnv whose envs live elsewhere (``SubprocVecEnv``): ``gym.make`` of their spec."""
    advice = "pass the gymnasium env itself, or a DummyVecEnv, so that its wrappers can be copied"
    if spec is None:
        raise ValueError(f"Cannot make copies of this VecEnv's environment for the population's rollouts: {advice}.")
    observers = {f"{cls.__module__}:{cls.__name__}" for cls in OBSERVER_WRAPPERS}
    wrappers = tuple(w for w in spec.additional_wrappers if w.entry_point not in observers)
    for wrapper in wrappers:
        if wrapper.kwargs is None or wrapper.entry_point.startswith("__main__:"):
            raise ValueError(
                f"The wrapper {wrapper.name} of this VecEnv's environment cannot be re-made in another process "
                f"(it is not a gymnasium RecordConstructorArgs wrapper from an importable module): {advice}."
            )
    spec = dataclasses.replace(spec, additional_wrappers=wrappers)
    if isinstance(spec.entry_point, str) and spec.entry_point.startswith("__main__:"):
        spec = dataclasses.replace(spec, entry_point=load_env_creator(spec.entry_point))

    def make() -> gym.Env:
        with mujoco_deprecations_silenced():
            made = gym.make(spec)
        return made if max_episode_steps is None else TimeLimit(made, max_episode_steps)

    return make
