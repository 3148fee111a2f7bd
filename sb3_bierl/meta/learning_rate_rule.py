"""What the meta levels that are rules on the inner learning rate share: one hyperparameter, its bounds, no meta ES."""

import numpy as np

from sb3_bierl.meta.controller import DEFAULT_MAX_LR_TO_SIGMA, BaseMetaController
from sb3_bierl.meta.space import HyperparameterSpace


class LearningRateRule(BaseMetaController):
    """
    A meta level that sets the inner learning rate each generation by a rule (no meta network, no meta candidates,
    no meta update): :class:`~sb3_bierl.meta.BoldDriverController`, :class:`~sb3_bierl.meta.TwoPointController`. The
    rate stays within ``space``'s bounds and the step radius (``max_lr_to_sigma`` times sigma; the step radius wins
    over the lower bound). Sigma is not adapted.

    :param space: The adapted hyperparameters: ``learning_rate`` alone
    :param max_change: The largest factor the rule moves the rate by per generation (> 1)
    :param history_length: Generations kept in the fitness history
    :param seed: Seed of the meta level's generator (a rule draws nothing)
    :param verbose: Verbosity level
    :param max_lr_to_sigma: Largest ``learning_rate / sigma`` set (None: no cap; see
        :meth:`~sb3_bierl.meta.BaseMetaController.within_step_radius`)
    :raises ValueError: if ``space`` adapts anything but ``learning_rate``
    """

    #: The rule sets the learning rate each generation; it has no meta candidates to evaluate
    learns_online = False

    def __init__(
        self,
        space: HyperparameterSpace,
        max_change: float,
        history_length: int = 10,
        seed: int | None = None,
        verbose: int = 0,
        max_lr_to_sigma: float | None = DEFAULT_MAX_LR_TO_SIGMA,
    ):
        if space.names != ["learning_rate"]:
            raise ValueError(
                f"{type(self).__name__} adapts the learning rate alone, got hyperparameter_bounds for {space.names}: "
                "give bounds for 'learning_rate' only (or none: the default)"
            )
        super().__init__(
            space, 1, 1, 0, max_change, history_length, seed=seed, verbose=verbose, max_lr_to_sigma=max_lr_to_sigma
        )

    def propose(self) -> dict[str, float]:
        return dict(self.current)

    def meta_update(self, hyperparameters: dict[str, float]) -> None:  # pragma: no cover - learns_online is False
        raise RuntimeError(f"{type(self).__name__} is a rule: it has no meta update")

    def next_sigma(self) -> float:
        """:return: the sigma of the next generation (the model's: a rule on the learning rate leaves it)"""
        return float(self.model.hyperparameters["sigma"])

    def within_bounds(self, learning_rate: float) -> float:
        """:return: ``learning_rate`` within the space's bounds and the step radius (the step radius wins)"""
        (parameter,) = self.space.parameters
        high = parameter.high
        if self.max_lr_to_sigma is not None:
            high = min(high, self.max_lr_to_sigma * self.next_sigma())
        return float(np.clip(learning_rate, parameter.low, high))

    def move_learning_rate(self, learning_rate: float) -> None:
        """The rule's new learning rate (for the next generation): a change counts as a meta update."""
        if learning_rate != self.current["learning_rate"]:
            self.n_meta_updates += 1
            if self.first_update_generation is None:
                self.first_update_generation = self.n_generations
        self.current["learning_rate"] = learning_rate
