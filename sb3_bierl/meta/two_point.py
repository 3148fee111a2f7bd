"""A meta level without learned weights: two-point step-size adaptation (TPA) of the inner learning rate."""

from typing import Any

import numpy as np

from sb3_bierl.meta.action_noise import (
    action_distance,
    check_action_distance_supported,
    check_action_stddev_tolerance,
)
from sb3_bierl.meta.controller import DEFAULT_MAX_LR_TO_SIGMA
from sb3_bierl.meta.learning_rate_rule import LearningRateRule
from sb3_bierl.meta.space import HyperparameterSpace
from sb3_bierl.meta.two_point_rule import DEFAULT_CUMULATION, DEFAULT_DAMPING, TwoPointRule


class TwoPointController(LearningRateRule):
    """
    Two-point step-size adaptation (TPA: Hansen 2008, "CMA-ES with Two-Point Step-Size Adaptation", INRIA RR-6527;
    as pycma's ``CMAAdaptSigmaTPA``) of the inner learning rate. At the start of every generation but the first, two
    extra candidates are rolled out at the current centre ``theta``, one along the last inner step and one against
    it, at a typical perturbation's length, on one shared episode seed (common random numbers):

        ``x+- = theta +- sigma * sqrt(n) * last_step / ||last_step||``

    If ``x+`` is better, the return still rises along the step: the step was too short; if ``x-`` is, it overshot.
    At the generation's end the two are ranked among the population's returns (rolled out at the same centre):

        ``z = (#{f_i > f(x-)} - #{f_i > f(x+)}) / (2 n_pairs + 1)`` in [-1, 1],
        ``s <- (1 - cumulation) s + cumulation * sign(z) |z|^0.5``,
        ``learning_rate <- learning_rate * exp(s / damping)`` (for the next generation),

    within ``space``'s bounds and the step radius (``max_lr_to_sigma`` times sigma; the step radius wins). Sigma is
    not adapted. Why (``docs/benchmarks/meta_level.md``, sessions 15 and 16): a fall of the population's mean
    return does not tell "this step was too large" from "the landscape is rough here"; the two-point test is the
    counterfactual that does, and on a rough landscape ``x+`` and ``x-`` win about equally often, so the rate does
    not drift.

    Cost: two episodes per generation (``2 / (2 n_pairs + 2)`` of the episodes: 5.9% at ``n_pairs=16``), counted in
    ``num_timesteps`` and ``meta/step_overhead``; they move nothing. With the inner ES's ``last_step_pair``
    (``BiERL(meta="tpa", last_step_pair=True)``) the two points are that pair, rolled out by the inner ES (same
    points, at its ``n_eval_episodes``) and used in its gradient estimate as well (Meier et al. 2019): no step is
    the meta level's alone, ``meta/step_overhead`` is 0. No network is trained.

    Sigma in the action space (``desired_action_stddev``, optional): adaptive parameter-space noise (Plappert et al.
    2018, section 3). Before the first generation, sigma is set so that a perturbation moves the policy's actions by
    ``desired_action_stddev`` (:func:`~sb3_bierl.meta.action_noise.action_distance`: RMS change of the tanh-squashed
    action, forward passes only, no episode), ``sigma <- sigma * desired / d(sigma)`` (``d`` is close to linear in
    sigma) within ``sigma_bounds``; with ``sigma_every_generation`` again after every generation, on the new centre.
    The two points then lie at that sigma's length and the step radius is twice it. Why: no return statistic tells
    a sigma 4 times too large from the right one (``docs/benchmarks/meta_level.md``, sessions 17, 21 and 22), the
    action distance does. ``d(0.02)`` is 0.056 to 0.066 after the first generation on issue 9's six tasks (0.055 to
    0.075 before it, Ant 0.077 to 0.082): 0.06 is about sigma 0.02's distance there. Measured as an option, not the
    default: it pays from a sigma 4 times too large, and costs at the defaults (``meta_level.md``, session 23).

    Works with OpenAI-ES as the inner algorithm (one centre and its last step; NSR-ES switches between several
    centres, ESAC's SAC moves the centre between ES steps).

    :param space: The adapted hyperparameters: ``learning_rate`` alone
    :param damping: ``d`` in ``exp(s / d)``: a sustained ``s = 1`` multiplies the learning rate by ``exp(1 / d)``
        per generation (pycma's fallback damping, 4, by default; its dimension-based one would barely move the rate
        in the 12 to 110 generations of the benchmark budgets)
    :param cumulation: ``c``, the weight of the newest ``z`` in ``s`` (pycma's 0.3)
    :param history_length: Generations kept in the fitness history
    :param seed: Seed of the meta level's generator (the rule draws nothing)
    :param verbose: Verbosity level
    :param max_lr_to_sigma: Largest ``learning_rate / sigma`` set (None: no cap; see
        :meth:`~sb3_bierl.meta.BaseMetaController.within_step_radius`)
    :param learning_rate_factor: The first generation's learning rate is ``space``'s initial one times this (a
        pre-trained rule's start, :class:`~sb3_bierl.meta.TwoPointRule`; 1: the model's)
    :param desired_action_stddev: The action distance sigma is set to (units of the action range's half-width;
        None: sigma is the model's, not adapted). Needs continuous, tanh-squashed actions
    :param sigma_bounds: ``(low, high)``, the sigmas the action distance may set (needed with
        ``desired_action_stddev``)
    :param sigma_every_generation: Set sigma by the action distance after every generation too (False: before the
        first one only)
    :param action_stddev_tolerance: Correct sigma only when the distance is more than this factor off
        ``desired_action_stddev`` (1: always). With 2, a sigma 4 times off is corrected and the default one
        is left as it is on all 96 (task, seed) pairs of ``docs/benchmarks/bold_driver_probe/action_noise/at_start.md``
    :raises ValueError: if ``space`` adapts anything but ``learning_rate``, ``damping <= 0``, ``cumulation`` is not
        in (0, 1], ``learning_rate_factor <= 0``, ``desired_action_stddev`` is not positive, or ``sigma_bounds`` is
        missing with it or not ``0 < low <= high``, or ``action_stddev_tolerance`` is not a number >= 1 (or not 1
        without ``desired_action_stddev``); at the first generation, if the policy's actions are not
        continuous and tanh-squashed while ``desired_action_stddev`` is set
    """

    def __init__(
        self,
        space: HyperparameterSpace,
        damping: float = DEFAULT_DAMPING,
        cumulation: float = DEFAULT_CUMULATION,
        history_length: int = 10,
        seed: int | None = None,
        verbose: int = 0,
        max_lr_to_sigma: float | None = DEFAULT_MAX_LR_TO_SIGMA,
        learning_rate_factor: float = 1.0,
        desired_action_stddev: float | None = None,
        sigma_bounds: tuple[float, float] | None = None,
        sigma_every_generation: bool = False,
        action_stddev_tolerance: float = 1.0,
    ):
        rule = TwoPointRule(learning_rate_factor, damping, cumulation)  # checks the three
        if desired_action_stddev is not None:
            if not (np.isfinite(desired_action_stddev) and desired_action_stddev > 0):
                raise ValueError(f"desired_action_stddev must be > 0 (or None), got {desired_action_stddev!r}")
            if sigma_bounds is None or not (0 < sigma_bounds[0] <= sigma_bounds[1] < np.inf):
                raise ValueError(f"sigma_bounds must be (low, high) with 0 < low <= high, got {sigma_bounds!r}")
        check_action_stddev_tolerance(action_stddev_tolerance, desired_action_stddev)
        super().__init__(
            space, float(np.exp(1.0 / damping)), history_length, seed=seed, verbose=verbose,
            max_lr_to_sigma=max_lr_to_sigma,
        )
        self.set_rule(rule)
        #: The cumulated test ``s`` (in [-1, 1]) and the last ``z``
        self.s = 0.0
        self.last_z = float("nan")
        #: (f(x+), f(x-)) of this generation's two points (None: none rolled out this generation)
        self.pair: np.ndarray | None = None
        self.desired_action_stddev = desired_action_stddev
        self.sigma_bounds = None if sigma_bounds is None else (float(sigma_bounds[0]), float(sigma_bounds[1]))
        self.sigma_every_generation = sigma_every_generation
        self.action_stddev_tolerance = float(action_stddev_tolerance)
        #: The sigma the action distance set (None: not set yet, or not adapted) and the last distance measured
        self.sigma: float | None = None
        self.action_stddev = float("nan")

    def set_rule(self, rule: TwoPointRule) -> None:
        """
        Use ``rule``'s constants, and its start: the learning rate becomes ``space``'s initial one times
        ``rule.learning_rate_factor`` (within the bounds from the first generation on).

        :param rule: The constants (e.g. a pre-trained rule's: ``BiERL(meta="tpa", meta_warm_start=...)``)
        :raises RuntimeError: once a generation has started (the start is past; an interrupted first generation
            would also restore the rule it started with)
        """
        if self.n_generations > 0 or self._started_at is not None:
            raise RuntimeError("set_rule sets the rule's start: call it before the first generation")
        self.damping, self.cumulation = float(rule.damping), float(rule.cumulation)
        self.learning_rate_factor = float(rule.learning_rate_factor)
        # the largest move per generation (LearningRateRule's max_change), for the record: exp(1 / d)
        self.max_change = float(np.exp(1.0 / self.damping))
        (parameter,) = self.space.parameters
        self.current["learning_rate"] = parameter.initial * self.learning_rate_factor

    @property
    def rule(self) -> TwoPointRule:
        """The rule's constants and start factor"""
        return TwoPointRule(self.learning_rate_factor, self.damping, self.cumulation)

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("learning_rate_factor", 1.0)  # saved before pre-trained rules
        defaults = {  # saved before sigma in the action space (or before its tolerance): not set by it
            "desired_action_stddev": None, "sigma_bounds": None, "sigma": None, "sigma_every_generation": False,
            "action_stddev": float("nan"), "action_stddev_tolerance": 1.0,
        }
        for key, value in defaults.items():
            state.setdefault(key, value)
        super().__setstate__(state)

    def _on_rollout_start(self) -> None:
        model = self.model
        self.roll_back_if_interrupted()
        if model.generation_done:
            return
        if self.desired_action_stddev is not None and self.sigma is None:  # before the first generation
            check_action_distance_supported(model.policy)
            self.set_sigma_by_action_distance(float(model.hyperparameters["sigma"]))
        if self.sigma is not None:
            model.hyperparameters["sigma"] = self.sigma
        strategy = model.strategy
        unit = strategy.last_step_unit()
        if unit is not None and not model.last_step_pair:  # with last_step_pair, the inner ES rolls out the pair itself
            direction = unit * float(model.hyperparameters["sigma"]) * np.sqrt(strategy.dim)
            self.pair = self.evaluate_meta_points(np.stack([strategy.theta + direction, strategy.theta - direction]), 1)
        self.current["learning_rate"] = self.within_bounds(self.current["learning_rate"])  # a start beyond them too
        model.hyperparameters["learning_rate"] = self.current["learning_rate"]

    def set_sigma_by_action_distance(self, sigma: float) -> None:
        """
        Measure the action distance at ``sigma`` on the current centre and set :attr:`sigma` to the one at
        ``desired_action_stddev`` (one step: ``d`` is close to linear in sigma), within ``sigma_bounds``; a distance
        within ``action_stddev_tolerance`` of it (a factor either way) leaves ``sigma`` as it is.

        :param sigma: The sigma measured (the model's at the start, then the last one set)
        """
        model = self.model
        self.action_stddev = action_distance(model.policy, model.strategy.theta, model.obs_rms, sigma, self.rng)
        ratio = self.desired_action_stddev / self.action_stddev if self.action_stddev > 0 else 1.0
        if not 1.0 / self.action_stddev_tolerance <= ratio <= self.action_stddev_tolerance:
            sigma *= ratio
        self.sigma = float(np.clip(sigma, *self.sigma_bounds))

    def next_sigma(self) -> float:
        """:return: the sigma of the next generation: the one the action distance set, if it sets it"""
        return super().next_sigma() if self.sigma is None else self.sigma

    def two_point_z(self, returns: np.ndarray) -> float:
        """
        :param returns: (2 n_pairs,) the population's returns at the centre of the two points (non-finite ones are
            left out; a non-finite ``f(x+-)`` ranks last)
        :return: ``z`` in [-1, 1]: above 0 when ``x+`` (along the last step) ranks above ``x-``
        """
        returns = np.asarray(returns, dtype=np.float64)
        plus, minus = (float(r) if np.isfinite(r) else -np.inf for r in self.pair)
        pooled = np.concatenate([returns[np.isfinite(returns)], [plus, minus]])
        return float((np.sum(pooled > minus) - np.sum(pooled > plus)) / (pooled.size - 1))

    def _on_rollout_end(self) -> None:
        if self.sigma is not None and self.sigma_every_generation:  # the step radius below is the new sigma's
            self.set_sigma_by_action_distance(self.sigma)
        if self.model.last_step_pair and self.model.last_pair is not None:
            self.pair = np.asarray(self.model.last_pair.returns, dtype=np.float64)
        if self.pair is not None:
            z = self.two_point_z(self.model.last_rollout.returns)
            self.s = (1.0 - self.cumulation) * self.s + self.cumulation * float(np.sign(z)) * abs(z) ** 0.5
            self.last_z, self.pair = z, None
            self.move_learning_rate(self.within_bounds(self.current["learning_rate"] * np.exp(self.s / self.damping)))
        self.logger.record("meta/two_point_z", self.last_z)
        self.logger.record("meta/two_point_s", self.s)
        if self.desired_action_stddev is not None:
            self.logger.record("meta/action_stddev", self.action_stddev)
        super()._on_rollout_end()
