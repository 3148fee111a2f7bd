"""A random "policy gain" per pre-training instance, so that the right step sizes differ between instances."""

import gymnasium as gym
import numpy as np


def is_bounded_box(space: gym.Space) -> bool:
    """:return: whether ``space`` is a ``Box`` with finite bounds (the action spaces :class:`PolicyGain` applies to)"""
    return isinstance(space, gym.spaces.Box) and space.is_bounded()


class PolicyGain(gym.ActionWrapper):
    """
    Multiplies the policy's pre-squash output by ``gain``: the action ``a`` in ``[low, high]`` is mapped to
    ``u = 2 (a - low) / (high - low) - 1`` in ``[-1, 1]``, then to ``tanh(gain * atanh(u))`` and back. For a
    tanh-squashed policy (``ESPolicy``'s default) this is the policy with its output layer scaled by ``gain``:
    the same task, the same reachable actions, but the return is ``gain`` times more (or less) sensitive to the
    policy's weights near the origin, so the sigma and learning rate that suit it move by about ``1 / gain``.

    Pre-training draws one gain per task instance (``MetaTrainer(gain_spread=...)``): a controller that could
    always move the step sizes to the same place (the shipped one of session 6 did) must instead read in the
    fitness history whether the steps are too large or too small (issue 10, ``docs/benchmarks/warm_start.md``).

    :param env: An environment with a bounded ``Box`` action space
    :param gain: The factor (> 0; 1 leaves every action unchanged)
    :raises ValueError: if the action space is not a bounded ``Box`` or ``gain`` is not positive
    """

    #: Keeps ``atanh`` finite at the bounds
    EDGE = 1e-6

    def __init__(self, env: gym.Env, gain: float):
        super().__init__(env)
        space = env.action_space
        if not is_bounded_box(space):
            raise ValueError(f"PolicyGain needs a bounded Box action space, got {space}")
        if not (np.isfinite(gain) and gain > 0):
            raise ValueError(f"The policy gain must be a positive factor, got {gain!r}")
        self.gain = float(gain)
        self.low = space.low.astype(np.float64)
        self.span = (space.high - space.low).astype(np.float64)

    def action(self, action: np.ndarray) -> np.ndarray:
        """:param action: (action_dim,) in the action space :return: (action_dim,) the action with the gain applied"""
        unit = np.clip(
            2 * (np.asarray(action, dtype=np.float64) - self.low) / self.span - 1, -1 + self.EDGE, 1 - self.EDGE
        )
        moved = np.tanh(self.gain * np.arctanh(unit))
        return (self.low + (moved + 1) / 2 * self.span).astype(self.action_space.dtype)


def has_bounded_box_actions(env_id: str) -> bool:
    """:return: whether ``env_id``'s action space is a bounded ``Box`` (the tasks :class:`PolicyGain` applies to)"""
    env = gym.make(env_id)
    try:
        return is_bounded_box(env.action_space)
    finally:
        env.close()
