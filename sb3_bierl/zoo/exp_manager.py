"""
What ``rl_zoo3.exp_manager.ExperimentManager`` needs to run BiERL and ES, and only for them.

Every change below first checks that the experiment's algorithm is ``bierl`` or ``es`` as registered
by sb3-bierl (:func:`sb3_bierl.zoo.zoo_algorithm`); for any other algorithm the zoo's own code runs
unchanged.

- Default hyperparameter file: the zoo looks for ``<rl_zoo3>/hyperparams/{algo}.yml``; without
  ``-conf`` (and if the zoo has no such file itself) ours is used (``hyperparams/``, installed as ``sb3_bierl.hyperparams``).
- ``--device auto`` (the zoo's default) means the CPU: ES works on flat parameter vectors on the CPU.
  An explicit ``--device`` is passed through.
- ``learning_rate``: the zoo turns every number into a ``ConstantSchedule`` and ``lin_<x>`` into a
  linear schedule. ES accepts both; BiERL adapts its learning rate itself and takes only the initial
  value, so for BiERL the number is kept as it is (a ``lin_`` schedule is refused with a clear error).
- ``n_envs``: the zoo divides ``--eval-freq`` and ``--save-freq`` by ``n_envs``, but these algorithms
  call callbacks once per environment step, whatever the VecEnv: ``n_envs`` is kept at 1 (a warning
  says so); ``n_workers`` / ``backend`` run the population in parallel instead.
"""

import functools
import inspect
import os
import warnings
from typing import Any

from sb3_bierl.bierl import BiERL

_PATCHED = "_sb3_bierl_patched"


def patch_experiment_manager(cls: type) -> None:
    """Patch ``ExperimentManager`` (idempotent)."""
    if cls.__dict__.get(_PATCHED, False):
        return
    original_init = cls.__init__
    original_preprocess = cls._preprocess_hyperparams
    init_signature = inspect.signature(original_init)

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        from sb3_bierl.zoo import hyperparams_path, zoo_algorithm

        if zoo_algorithm(getattr(self, "algo", None)) is None:
            return
        try:
            config = init_signature.bind(self, *args, **kwargs).arguments.get("config")
        except TypeError:
            return
        if not config and not os.path.isfile(str(self.config)):
            self.config = str(hyperparams_path(self.algo))
        if isinstance(self.device, str) and self.device == "auto":
            self.device = "cpu"
        from sb3_bierl.evaluation.quiet_mujoco import silence_mujoco_deprecations_for

        silence_mujoco_deprecations_for(str(getattr(self, "env_name", "")))  # the zoo builds its own envs too

    @functools.wraps(original_preprocess)
    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]):
        from sb3_bierl.zoo import zoo_algorithm

        algorithm = zoo_algorithm(getattr(self, "algo", None))
        if algorithm is None:
            return original_preprocess(self, hyperparams)
        n_envs = hyperparams.get("n_envs", 1)
        if n_envs != 1:
            warnings.warn(
                f"{algorithm.__name__} makes its own population environments and calls callbacks once per "
                f"environment step: n_envs={n_envs} is replaced by 1 (use n_workers for parallel rollouts)",
                stacklevel=2,
            )
            hyperparams["n_envs"] = 1
        learning_rate = None
        if issubclass(algorithm, BiERL) and "learning_rate" in hyperparams:
            learning_rate = hyperparams.pop("learning_rate")
            if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)):
                raise ValueError(
                    f"BiERL adapts the learning rate itself: give its initial value as a number, not {learning_rate!r}"
                )
        result = original_preprocess(self, hyperparams)
        if learning_rate is not None:
            result[0]["learning_rate"] = float(learning_rate)
        return result

    cls.__init__ = __init__
    cls._preprocess_hyperparams = _preprocess_hyperparams
    setattr(cls, _PATCHED, True)
