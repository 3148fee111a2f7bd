"""
MuJoCo 4.0 prints a deprecation warning, and writes ``MUJOCO_LOG.TXT`` into the working directory, every time a
model with ``settotalmass`` is compiled (HalfCheetah-v5: once per population copy). That one message is about
gymnasium's XML files, not the user's code: it is filtered where environments are built (issue 12); every other
MuJoCo warning goes to the previous handler, or to Python's ``warnings``.
"""

import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gymnasium as gym

#: Parts of the MuJoCo messages that are filtered
SILENCED: tuple[str, ...] = ("compiler attribute 'settotalmass' is deprecated",)


def _filter(previous: Callable[[str], None] | None) -> Callable[[str], None]:
    def handler(message: str) -> None:
        if any(part in message for part in SILENCED):
            return
        if previous is not None:
            previous(message)
        else:
            warnings.warn(f"MuJoCo: {message.strip()}", RuntimeWarning, stacklevel=2)

    return handler


@contextmanager
def mujoco_deprecations_silenced() -> Iterator[None]:
    """Filter :data:`SILENCED` while environments are built (a no-op where MuJoCo is not imported yet: an env
    class that uses it imports it when its module loads, before it is built)."""
    mujoco = sys.modules.get("mujoco")
    if mujoco is None:
        yield
        return
    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(_filter(previous))
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def silence_mujoco_deprecations_for(env_id: str) -> None:
    """
    Filter :data:`SILENCED` for good in this process if ``env_id`` is a MuJoCo environment (for environments built
    by others, e.g. the RL Zoo's training and evaluation envs); nothing is imported otherwise.

    :param env_id: A registered environment id (an unknown one is left alone)
    """
    try:
        entry_point = gym.spec(env_id).entry_point
    except gym.error.Error:
        return
    if not (isinstance(entry_point, str) and "mujoco" in entry_point):
        return
    import mujoco

    mujoco.set_mju_user_warning(_filter(mujoco.get_mju_user_warning()))
