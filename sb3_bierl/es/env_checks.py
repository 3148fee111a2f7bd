"""What ES accepts as its environment, checked before training, with errors that say what to do (issue 11)."""

import warnings

import torch as th
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import GymEnv
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecEnv, VecEnvWrapper, VecMonitor, VecNormalize
from stable_baselines3.common.vec_env.patch_gym import _patch_env

#: VecEnv wrappers that only observe the episodes: allowed, the population's copies do without them
OBSERVER_VEC_WRAPPERS: tuple[type[VecEnvWrapper], ...] = (VecMonitor, VecCheckNan)


def check_vec_env(env: VecEnv) -> None:
    """
    ES rolls out its own copies of the environment (one per candidate, see
    :func:`~sb3_bierl.evaluation.make_env_factory`): refuse what those copies cannot be.

    :param env: The VecEnv given by the user
    :raises ValueError: for ``VecNormalize`` (the policy normalises observations itself, rank-based ES needs no
        reward normalisation), for any other VecEnv wrapper that changes observations, actions or rewards (use
        the gymnasium wrapper on the env instead), and for ``n_envs > 1`` (ES's parallelism is ``n_workers``)
    """
    layer = env
    while isinstance(layer, VecEnvWrapper):
        if isinstance(layer, VecNormalize):
            raise ValueError(
                "ES does not train through VecNormalize: its policy normalises observations itself (running statistics "
                "saved with the model, policy_kwargs=dict(normalize_observations=...)), and its centred-rank fitness "
                "needs no reward normalisation. Pass the env without VecNormalize (in the RL Zoo: remove 'normalize' "
                "from the hyperparameters)."
            )
        if not isinstance(layer, OBSERVER_VEC_WRAPPERS):
            raise ValueError(
                f"ES cannot train through the VecEnv wrapper {type(layer).__name__}: it rolls out its own copies of the "
                "environment, which VecEnv wrappers do not reach. Apply the equivalent gymnasium wrapper to the env "
                "instead (e.g. gymnasium.wrappers.FrameStackObservation for VecFrameStack)."
            )
        layer = layer.venv
    if env.num_envs != 1:
        raise ValueError(
            f"ES takes one environment (got a VecEnv with n_envs={env.num_envs}): it makes its own copies of it, "
            "one per candidate. Pass a single env (n_envs=1; in the RL Zoo: n_envs: 1) and set n_workers to run "
            "the population in parallel."
        )


def wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
    """
    SB3's ``BaseAlgorithm._wrap_env`` for ES: the same ``Monitor`` and ``DummyVecEnv``, after
    :func:`check_vec_env`, but no ``VecTransposeImage``: training rollouts and ``predict`` then see image
    observations in the env's own layout (the MLP policies flatten them; SB3's ``preprocess_obs`` scales them).

    :param env: A gymnasium env or a VecEnv
    :param verbose: Verbosity level (1: say which wrappers are added)
    :param monitor_wrapper: Wrap a gymnasium env in a ``Monitor`` unless it has one
    :return: the VecEnv
    :raises ValueError: see :func:`check_vec_env`
    """
    if isinstance(env, VecEnv):
        check_vec_env(env)
        return env
    env = _patch_env(env)
    if monitor_wrapper and not is_wrapped(env, Monitor):
        if verbose >= 1:
            print("Wrapping the env with a `Monitor` wrapper")
        env = Monitor(env)
    if verbose >= 1:
        print("Wrapping the env in a DummyVecEnv.")
    return DummyVecEnv([lambda: env])


def cpu_device(device: th.device | str) -> str:
    """
    :param device: The ``device`` argument given to an ES algorithm
    :return: ``"cpu"``: ES rolls out its population on the CPU; one warning if another device was asked for
    """
    if device != "auto" and th.device(device).type != "cpu":
        warnings.warn(f"ES runs on the CPU: device={str(device)!r} is ignored (its rollouts and updates are CPU work)", stacklevel=3)
    return "cpu"


def warn_no_time_limit(max_episode_steps: int) -> None:
    """The warning for an environment with no time limit: its copies are cut at ``max_episode_steps``."""
    warnings.warn(
        f"The environment has no TimeLimit: the population's episodes are cut after max_episode_steps={max_episode_steps} "
        "steps (truncated). Wrap the env in gymnasium.wrappers.TimeLimit, or pass max_episode_steps, to choose the length.",
        stacklevel=3,
    )
