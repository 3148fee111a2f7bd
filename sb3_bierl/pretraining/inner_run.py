"""One whole inner run of pre-training: BiERL driven by a candidate controller, scored by its late training curve."""

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_bierl.meta.two_point_rule import TwoPointRule
from sb3_bierl.meta.warm_start import read_controller_file
from sb3_bierl.pretraining.suite import PretrainingTask


@dataclass
class InnerRun:
    """
    :param task: The task and its budget
    :param seed: Seed of the run (candidates of one meta generation share it: common random numbers)
    :param start: Initial values of the adapted hyperparameters, ``{name: value}``, inside the controller's bounds
    :param controller_file: A controller file (``save_controller``): its network's sizes and bounds; with
        ``meta="tpa"``, a two-point rule's file (``save_rule``)
    :param phi: (n_parameters,) all the network's parameters for this run (with ``meta="tpa"``: the rule's
        ``phi``, :class:`~sb3_bierl.meta.TwoPointRule`); None: those of the file. Ignored by a ``fixed`` run
    :param fixed: Keep the hyperparameters at ``start`` for the whole run (the baseline of the curve: no
        controller), with the same centre rollouts and score
    :param late_fraction: Share of the last generations whose centre returns make the score
    :param policy_gain: Factor on the policy's pre-squash output (:class:`~sb3_bierl.pretraining.policy_gain.PolicyGain`;
        1: the task as it is)
    :param bierl_kwargs: Other BiERL arguments (default ``n_workers=1``: pre-training runs inner runs in parallel
        instead; ``n_workers`` and ``backend`` here give each inner run its own workers)
    :param meta: ``"lstm"``: the file is a meta network, the run's score is its centre's late returns; ``"tpa"``: a
        two-point rule (``BiERL(meta="tpa")``, which rolls out no centre), scored by its population's late mean
        returns (all candidates of an instance share sigma, so that mean ranks them as their centres would);
        ``fixed`` is then ES at ``start``
    """

    task: PretrainingTask
    seed: int
    start: dict[str, float]
    controller_file: str
    phi: np.ndarray | None = None
    fixed: bool = False
    late_fraction: float = 0.5
    policy_gain: float = 1.0
    bierl_kwargs: dict[str, Any] = field(default_factory=dict)
    meta: str = "lstm"


class CentreReturns(BaseCallback):
    """Records the return of the unperturbed centre the meta level rolls out every generation."""

    def __init__(self) -> None:
        super().__init__(0)
        self.returns: list[float] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        summary = self.model.meta_controller.history.previous  # the meta controller runs first (BiERL.learn)
        if summary is not None and summary.centre_return is not None:
            self.returns.append(float(summary.centre_return))


class PopulationMeans(CentreReturns):
    """Records the mean finite return of each generation's population (a meta level that rolls out no centre)."""

    def _on_rollout_end(self) -> None:
        returns = np.asarray(self.model.last_rollout.returns, dtype=np.float64)
        finite = returns[np.isfinite(returns)]
        self.returns.append(float(np.mean(finite)) if finite.size else float("nan"))


def late_mean(returns: list[float], late_fraction: float) -> float:
    """
    :param returns: The centre's return per generation, oldest first
    :param late_fraction: Share of the last generations to average (at least one)
    :return: the mean of those returns: the area under the end of the training curve, a low-noise proxy of the
        final return; nan without returns
    """
    if not returns:
        return float("nan")
    n = max(1, int(np.ceil(late_fraction * len(returns))))
    return float(np.mean(returns[-n:]))


def run_inner(run: InnerRun) -> dict[str, Any]:
    """
    Train BiERL for ``run.task.budget`` steps with the controller given, meta updates off (the controller only
    proposes, ``meta_trainable="none"``), and score the run.

    :param run: The run
    :return: ``score`` (the late mean of the centre's returns; with ``meta="tpa"``, of the population's mean),
        ``normalised`` (``task.normalise(score)``), ``centre_returns`` (those returns), ``num_timesteps``,
        ``final_hyperparameters``, ``cpu_time_s``
    """
    import torch as th

    from sb3_bierl.bierl.bierl import BiERL

    th.set_num_threads(1)
    start_cpu = time.process_time()
    if run.meta == "tpa":
        names = ["learning_rate"]  # the rule's bounds are BiERL's, around the start
    else:
        saved = read_controller_file(run.controller_file)
        bounds = {name: tuple(saved["bounds"][name]) for name in saved["hyperparameters"]}
        names = list(bounds)
    common: dict[str, Any] = {
        "n_workers": 1,
        "verbose": 0,
        **run.bierl_kwargs,
        "seed": run.seed,
        **run.start,
    }
    if run.meta != "tpa":  # the network only proposes; a two-point rule has no network (and refuses the argument)
        common["meta_trainable"] = "none"
    env: Any = run.task.env_id
    if run.policy_gain != 1.0:
        import gymnasium as gym

        from sb3_bierl.pretraining.policy_gain import PolicyGain

        env = PolicyGain(gym.make(run.task.env_id), run.policy_gain)
    if run.meta == "tpa" and run.fixed:
        model = BiERL("MlpPolicy", env, meta="none", **common)
    elif run.meta == "tpa":
        model = BiERL("MlpPolicy", env, meta="tpa", meta_warm_start=run.controller_file, **common)
        if run.phi is not None:
            model.meta_controller.set_rule(TwoPointRule.from_phi(run.phi))
    elif run.fixed:
        # a new network's readout starts at zero: it proposes the initial values whatever the history
        model = BiERL("MlpPolicy", env, meta="lstm", hyperparameter_bounds=bounds, **common)
    else:
        model = BiERL("MlpPolicy", env, meta="lstm", meta_warm_start=run.controller_file, **common)
        if run.phi is not None:
            model.meta_controller.set_phi(run.phi)
    centre = PopulationMeans() if run.meta == "tpa" else CentreReturns()
    try:
        model.learn(run.task.budget, callback=centre)
    finally:
        model.close()
    score = late_mean(centre.returns, run.late_fraction)
    return {
        "env": run.task.env_id,
        "seed": run.seed,
        "start": dict(run.start),
        "fixed": run.fixed,
        "policy_gain": run.policy_gain,
        "score": score,
        "normalised": run.task.normalise(score),
        "centre_returns": centre.returns,
        "num_timesteps": int(model.num_timesteps),
        "final_hyperparameters": {name: float(model.hyperparameters[name]) for name in names},
        "cpu_time_s": time.process_time() - start_cpu,
    }
