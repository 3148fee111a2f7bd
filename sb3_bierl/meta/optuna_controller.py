"""The non-parametric meta level: Optuna proposes the hyperparameters (ask/tell)."""

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import optuna

from sb3_bierl.meta.controller import DEFAULT_MAX_LR_TO_SIGMA, BaseMetaController
from sb3_bierl.meta.space import HyperparameterSpace
from sb3_bierl.strategies import centered_ranks


class OptunaController(BaseMetaController):
    """
    Bayesian optimisation of the hyperparameters instead of a meta network: every ``interval``
    generations, ``n_trials`` proposals are asked from an Optuna study (TPE by default, log-scale
    ranges from ``space``), scored with the same truncated fitness as :class:`MetaController`
    (each from its share of the generation's rollouts, common noise and episodes), and told back.
    The incumbent (the hyperparameters in use) is always one of the trials.

    The truncated fitness drifts as the policy improves, so what the study is told is the
    trial's centred rank within its meta update (in [-0.5, 0.5]): comparable across updates. Between
    meta updates, the generation uses the best trial of the last update.

    :param space: Hyperparameters to adapt and their bounds
    :param interval: Inner generations between two meta updates
    :param n_trials: Proposals per meta update (``MetaController`` uses ``2 * n_pairs``)
    :param centre_episodes: Episodes of the unperturbed centre per generation (for the features)
    :param max_change: Trust region: factor by which a hyperparameter may move per generation
    :param history_length: Generations kept in the fitness history
    :param sampler: An Optuna sampler (default: ``TPESampler(seed=seed)``)
    :param fitness: How a trial's pairs are scored: ``"mean"`` or ``"best"`` (see :class:`BaseMetaController`)
    :param seed: Seed of the sampler
    :param verbose: Verbosity level
    :param max_lr_to_sigma: Largest ``learning_rate / sigma`` set or evaluated (None: no cap; see
        :meth:`~sb3_bierl.meta.BaseMetaController.within_step_radius`)
    """

    def __init__(
        self,
        space: HyperparameterSpace,
        interval: int = 1,
        n_trials: int = 2,
        centre_episodes: int = 1,
        max_change: float = 1.25,
        history_length: int = 10,
        sampler: optuna.samplers.BaseSampler | None = None,
        fitness: str = "mean",
        seed: int | None = None,
        verbose: int = 0,
        max_lr_to_sigma: float | None = DEFAULT_MAX_LR_TO_SIGMA,
    ):
        super().__init__(
            space, interval, n_trials, centre_episodes, max_change, history_length, fitness, seed, verbose,
            max_lr_to_sigma=max_lr_to_sigma,
        )
        if sampler is None:
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=2 * n_trials)
        with quiet_optuna():
            self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.incumbent = {p.name: p.initial for p in space.parameters}

    #: The study is not copied at each generation's start (that grows with its trials): the roll-back rebuilds it
    _shared_in_snapshot = ("study",)

    def _snapshot(self) -> dict[str, Any]:
        """:return: the state, with the study's size and a copy of its sampler (what a rolled-back generation changed)"""
        study_at_start = (len(self.study.get_trials(deepcopy=False)), copy.deepcopy(self.study.sampler))
        return {**super()._snapshot(), "_study_at_start": study_at_start}

    def _restore(self, snapshot: dict[str, Any]) -> None:
        """Go back to a snapshot: the study keeps the trials it had then, and its sampler's state then."""
        snapshot = dict(snapshot)
        size, sampler = snapshot.pop("_study_at_start")
        super()._restore(snapshot)
        with quiet_optuna():
            study = optuna.create_study(direction="maximize", sampler=sampler)
            study.add_trials(self.study.get_trials(deepcopy=False)[:size])
        self.study = study

    def propose(self) -> dict[str, float]:
        return dict(self.incumbent)

    def _distributions(self) -> dict[str, optuna.distributions.FloatDistribution]:
        return {p.name: optuna.distributions.FloatDistribution(p.low, p.high, log=True) for p in self.space.parameters}

    def meta_update(self, hyperparameters: dict[str, float]) -> None:
        """Ask ``n_trials`` proposals (the incumbent first), score them, tell their ranks."""
        with quiet_optuna():
            distributions = self._distributions()
            self.study.enqueue_trial(self.incumbent, skip_if_exists=False)
            trials = [self.study.ask(distributions) for _ in range(self.n_trials)]
            proposals = [{name: float(trial.params[name]) for name in self.space.names} for trial in trials]
            fitness = self.evaluate_proposals(hyperparameters, proposals)  # as asked: the study learns what it proposed
            if fitness is None:
                for trial in trials:
                    self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return
            for trial, value in zip(trials, centered_ranks(fitness), strict=True):
                self.study.tell(trial, float(value))
            self.incumbent = self.within_trust_region(proposals[int(np.argmax(fitness))])


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's per-trial INFO lines (one meta update tells several trials), then restore."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
