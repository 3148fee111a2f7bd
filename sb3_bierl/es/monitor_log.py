"""Training episodes written where SB3's ``Monitor`` would write them (issue 12): the population's rollouts run on
copies of the env, which leave the Monitor out, so ES reports their episodes to the user's Monitor itself."""

import time

from stable_baselines3.common.env_util import unwrap_wrapper
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecMonitor


def find_monitor(env: VecEnv | None) -> Monitor | VecMonitor | None:
    """
    :param env: The algorithm's VecEnv
    :return: the ``VecMonitor`` around it, else the ``Monitor`` around its (first) env if it runs in this process
        (a ``DummyVecEnv``), else None
    """
    layer = env
    while isinstance(layer, VecEnvWrapper):
        if isinstance(layer, VecMonitor):
            return layer
        layer = layer.venv
    if isinstance(layer, DummyVecEnv):
        return unwrap_wrapper(layer.envs[0], Monitor)
    return None


def log_episodes(monitor: Monitor | VecMonitor, returns: list[float], lengths: list[int]) -> None:
    """
    Record finished training episodes in ``monitor`` as if they had been played through it: its CSV file gets one
    row ``r, l, t`` per episode (``t``: seconds since the monitor was created), and a ``Monitor``'s
    ``get_episode_rewards()``, ``get_episode_lengths()``, ``get_total_steps()`` include them.

    :param monitor: A ``Monitor`` or ``VecMonitor``
    :param returns: (E,) episode returns (the env's rewards: without ES's ``alive_bonus_offset``)
    :param lengths: (E,) episode lengths in steps
    """
    now = round(time.time() - monitor.t_start, 6)
    for episode_return, length in zip(returns, lengths, strict=True):
        row = {"r": round(float(episode_return), 6), "l": int(length), "t": now}
        if isinstance(monitor, Monitor):
            monitor.episode_returns.append(float(episode_return))
            monitor.episode_lengths.append(int(length))
            monitor.episode_times.append(now)
            monitor.total_steps += int(length)
        else:
            monitor.episode_count += 1
        if monitor.results_writer is not None:
            monitor.results_writer.write_row(row)
