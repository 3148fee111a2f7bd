"""A meta level without learned weights: the bold driver on the learning rate, with rejection of a step that fell."""

from typing import Any

import numpy as np

from sb3_bierl.meta.controller import DEFAULT_MAX_LR_TO_SIGMA
from sb3_bierl.meta.learning_rate_rule import LearningRateRule
from sb3_bierl.meta.space import HyperparameterSpace


class BoldDriverController(LearningRateRule):
    """
    The "bold driver" (Vogl et al. 1988, "Accelerating the convergence of the back-propagation method"; Battiti
    1989) as a meta level: it sets the inner learning rate every generation from Welch's z of the population's mean
    return against that of the last accepted generation (``z = (m - m_ref) / sqrt(se^2 + se_ref^2)``):

    - ``z > threshold``: the generation is accepted and the learning rate grows by ``factor``;
    - ``z < -threshold``: accepted, it shrinks by ``factor`` (the same factor: no drift under noise);
    - ``z < -reject``: rejected (Vogl's rule: a step that made things worse is taken back): the centre, the
      optimiser state and the last step go back to the start of the generation just rolled out, and that last step
      (measured at the previous centre, before the fall) is redone at half the learning rate the rejected
      generation ran with (the new learning rate); the rejected generation's own step is dropped. Never twice in a
      row: the reference is one noisy estimate, a lucky one must not reject forever.

    The learning rate stays within ``space``'s bounds and the step radius (``max_lr_to_sigma`` times sigma); sigma is
    not adapted. No meta candidate and no centre is rolled out, no network trained: the meta level costs no
    environment step. A rejected generation's steps count, as every step does.

    Why (``docs/benchmarks/meta_level.md``, sessions 14 and 15): the learning rate carries both the headroom over the
    defaults and Ant-v5's fall; a one-step rule reads a per-task rate from the fitness history, but reacts only after
    a fall, and rejection undoes that damage.

    Works with OpenAI-ES as the inner algorithm (one centre; NSR-ES switches between several, ESAC's SAC learns from
    the rolled-out episodes).

    :param space: The adapted hyperparameters: ``learning_rate`` alone
    :param threshold: Welch's z beyond which the learning rate moves
    :param factor: The factor it moves by (> 1)
    :param reject: Welch's z below which a generation is rejected (>= ``threshold``)
    :param history_length: Generations kept in the fitness history
    :param seed: Seed of the meta level's generator (the rule draws nothing)
    :param verbose: Verbosity level
    :param max_lr_to_sigma: Largest ``learning_rate / sigma`` set (None: no cap; see
        :meth:`~sb3_bierl.meta.BaseMetaController.within_step_radius`)
    :raises ValueError: if ``space`` adapts anything but ``learning_rate``, ``factor <= 1``, ``threshold < 0`` or
        ``reject < threshold``
    """

    _shared_in_snapshot = ("before",)

    def __init__(
        self,
        space: HyperparameterSpace,
        threshold: float = 1.0,
        factor: float = 1.25,
        reject: float = 2.0,
        history_length: int = 10,
        seed: int | None = None,
        verbose: int = 0,
        max_lr_to_sigma: float | None = DEFAULT_MAX_LR_TO_SIGMA,
    ):
        if not (np.isfinite(factor) and factor > 1.0):
            raise ValueError(f"factor must be > 1 (the learning rate's change per generation), got {factor!r}")
        if not (np.isfinite(threshold) and threshold >= 0.0):
            raise ValueError(f"threshold must be a z statistic >= 0, got {threshold!r}")
        if not (np.isfinite(reject) and reject >= threshold):
            raise ValueError(f"reject must be a z statistic >= threshold ({threshold}), got {reject!r}")
        super().__init__(space, factor, history_length, seed=seed, verbose=verbose, max_lr_to_sigma=max_lr_to_sigma)
        self.threshold, self.factor, self.reject = float(threshold), float(factor), float(reject)
        #: (mean, squared standard error) of the population's return: the last generation's, the last accepted one's
        self.last: tuple[float, float] | None = None
        self.reference: tuple[float, float] | None = None
        #: The inner strategy at the start of the last generation (what a rejection goes back to)
        self.before: Any = None  # kept by reference in the roll-back snapshot: it is replaced, never written
        self.rejected_last = False
        #: Generations rejected (their index among this controller's generations)
        self.rejections: list[int] = []

    def welch_z(self) -> float:
        """:return: Welch's z of the last generation's mean return against the last accepted generation's"""
        (mean, squared_error), (reference, reference_error) = self.last, self.reference
        return (mean - reference) / (np.sqrt(squared_error + reference_error) + 1e-12)

    def _on_rollout_start(self) -> None:
        model = self.model
        self.roll_back_if_interrupted()  # so the next generation makes the same decision again
        if model.generation_done:
            return
        learning_rate = self.current["learning_rate"]
        if self.last is not None and self.reference is None:
            self.reference = self.last  # the first generation is the first reference
        elif self.last is not None:
            z = self.welch_z()
            if z < -self.reject and not self.rejected_last:
                strategy = model.strategy
                strategy.__dict__.update(self.before.copy().__dict__)  # in place, as ES's own roll-back
                learning_rate = self.within_bounds(learning_rate / 2.0)
                strategy.rescale_last_step(learning_rate)
                self.rejections.append(self.n_generations - 1)
                self.rejected_last = True
            else:
                if z > self.threshold:
                    learning_rate *= self.factor
                elif z < -self.threshold:
                    learning_rate /= self.factor
                self.reference, self.rejected_last = self.last, False
        self.move_learning_rate(self.within_bounds(learning_rate))  # a start beyond them too, from the first one
        self.last = None
        self.before = model.strategy.copy()
        model.hyperparameters["learning_rate"] = self.current["learning_rate"]

    def _on_rollout_end(self) -> None:
        returns = np.asarray(self.model.last_rollout.returns, dtype=np.float64)
        returns = returns[np.isfinite(returns)]
        if returns.size >= 2:
            self.last = (float(returns.mean()), float(returns.var(ddof=1) / returns.size))
        self.logger.record("meta/rejections", len(self.rejections))
        super()._on_rollout_end()

    def summary(self) -> dict[str, Any]:
        """:return: :meth:`BaseMetaController.summary`, and the generations rejected"""
        return {**super().summary(), "rejections": list(self.rejections)}
