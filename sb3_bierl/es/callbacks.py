"""SB3's callback conventions for ES, whose steps are counted a rollout at a time (issue 11)."""

import time

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, ProgressBarCallback


class StepLocals:
    """
    What SB3 callbacks read in ``self.locals`` at every step (``dones``, ``infos``), for ES: a rollout's
    steps are reported to the callbacks after the rollout, one ``on_step`` each, episode after episode; the
    last step of each episode has ``dones = [True]`` and ``infos = [{"episode": {"r", "l", "t"}}]`` (the
    ``Monitor`` convention), every other step ``dones = [False]`` and ``infos = [{}]``.

    The arrays are shared with every callback (set once with ``update_locals``) and changed in place.
    """

    def __init__(self) -> None:
        self.dones = np.zeros(1, dtype=bool)
        self.infos: list[dict] = [{}]

    def attach(self, callback: BaseCallback) -> None:
        """Give ``callback`` (and its children) ``dones`` and ``infos``."""
        callback.update_locals({"dones": self.dones, "infos": self.infos})

    def episode_end(self, episode: dict | None) -> None:
        """The next step ends an episode (``episode``: its Monitor info), or not (None)."""
        self.dones[0] = episode is not None
        self.infos[0] = {} if episode is None else {"episode": episode}


def episode_infos(returns: np.ndarray, lengths: np.ndarray, start_time: float) -> list[dict]:
    """
    :param returns: (E,) episode returns, in the order the steps are reported
    :param lengths: (E,) episode lengths (steps)
    :param start_time: ``time.time()`` when training started
    :return: the Monitor info of each episode: ``{"r": return, "l": length, "t": seconds since start}``
    """
    elapsed = round(time.time() - start_time, 6)
    return [{"r": float(r), "l": int(n), "t": elapsed} for r, n in zip(returns, lengths, strict=True)]


def find_callback(callback: BaseCallback, kind: type[BaseCallback]) -> BaseCallback | None:
    """:return: the first callback of type ``kind`` in ``callback`` (a ``CallbackList`` is searched in order), or None"""
    if isinstance(callback, kind):
        return callback
    for child in getattr(callback, "callbacks", []):
        found = find_callback(child, kind)
        if found is not None:
            return found
    return None


class ESProgressBarCallback(ProgressBarCallback):
    """
    SB3's progress bar in environment steps, for ES: it follows the steps of a rollout while it runs
    (:meth:`advance`, fed by the in-process backend; the worker backends advance it rollout by rollout), and ends at the real count
    (the last generation may end past ``total_timesteps``: the total then becomes the real count).
    """

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self.start = self.model.num_timesteps

    def _on_step(self) -> bool:
        self._show(self.model.num_timesteps - self.start)
        return True

    def advance(self, n_running: int) -> None:
        """:param n_running: Steps taken so far by the rollout in progress (not yet counted)"""
        self._show(self.model.num_timesteps - self.start + n_running)

    def _show(self, done: int) -> None:
        if done > self.pbar.n:
            if done > self.pbar.total:
                self._set_total(done)
            self.pbar.update(done - self.pbar.n)

    def _set_total(self, total: int) -> None:
        self.pbar.total = total
        if hasattr(self.pbar, "_prog"):  # tqdm.rich draws its own copy of the total
            self.pbar._prog.update(self.pbar._task_id, total=total)

    def _on_training_end(self) -> None:
        self._show(self.model.num_timesteps - self.start)
        self._set_total(self.pbar.n)  # the real count, whatever total_timesteps was
        super()._on_training_end()
