"""
Is the information a per-task learning rate needs already in the fitness history? (issues 9 and 10, session 14)

ES with one rule on the learning rate between generations, the "bold driver" (Vogl et al. 1988;
Battiti 1989): after a generation whose population mean return rose, the learning rate grows by ``UP``; after one
where it fell, it shrinks by ``DOWN``; within BiERL's default bounds (a factor 8 either side of 0.01) and its step
radius (at most twice sigma). Sigma stays where it starts. The rule reads one feature of the meta level's history
(the sign of feature 0, the improvement of the mean return) and has no learned weight: it is a probe of what a
controller reading that feature could do, not a meta level.

Why: ES fixed at sigma 0.03 and learning rate 0.03 beats the defaults on LunarLander, Swimmer, Hopper and
HalfCheetah, and falls on Ant in every seed; the probe of this session (``es-lr3``, ``es-s1.5``) puts that on the
learning rate. Under the large learning rate Ant's population mean falls in 7 or 8 of its first 8 generations,
every other task in at most 5 of 8. The rule's fixed point is a share of falling generations of
``log UP / (log UP + log DOWN)`` (0.355 with the values below): the learning rate climbs where fewer generations
fall, and comes down where more do.

Runs (``RULES``): ``es-bold``, the sign rule from the defaults; ``es-bold-z``, the same moving only on a change beyond
one standard error (Welch's z of the two generations' means); ``es-s1.5-lr3-bold-z``, that rule from sigma 0.03 and
learning rate 0.03, where the shipped pre-trained controller goes. Session 15: ``es-bdr`` and ``es-s1.5-lr3-bdr``,
the bold driver *with rejection* (:class:`BoldDriverWithRejection`) from the defaults and from 0.03 / 0.03; the
package has it as ``BiERL(meta="bold_driver")`` (``sb3_bierl.meta.BoldDriverController``), which gives the ``es-bdr``
runs bit for bit (same centres, rates and rejections; tested in ``tests/test_bold_driver.py``;
``python -m sb3_bierl.benchmarks.meta_level --algos bold``). From another start it differs where the rate reaches a
bound: the probe keeps the bounds of the defaults (0.00125 to 0.08), BiERL centres them on its start (a factor 8
either side: 0.00375 to 0.24 from 0.03). Session 16: ``es-tpa`` (and its starts ``es-s1.5-lr3-tpa``, ``es-lr0.25-tpa``,
``es-lr4-tpa``), two-point step-size adaptation (:class:`TwoPointAdaptation`); the package has it as
``BiERL(meta="tpa")`` (``sb3_bierl.meta.TwoPointController``), the ``es-tpa`` runs bit for bit (tested in
``tests/test_two_point.py``). Session 20: ``es-tpa-step`` and ``es-tpa-far``, TPA's two points at the inner step's
own length and at twice a perturbation's (not in the package). Session 21: ``es-tpa-floor``, TPA whose learning
rate never goes below its start (not in the package; ``--derive-floor`` copies the ``es-tpa`` runs where that floor
never binds). Same harness, budgets, seeds and evaluation as
``python -m sb3_bierl.benchmarks.meta_level``; run from the repository root, resumable (results and commands of
session 14: ``docs/benchmarks/meta_level.md``, "Session 14")::

    PYTHONPATH=docs/benchmarks/bold_driver_probe python docs/benchmarks/bold_driver_probe/probe.py --rules es-bold \\
        --seeds 0 1 2 --out bench_results/bold_driver
    # the report: against ES at its defaults (the published runs) and at fixed settings, with rliable
    python docs/benchmarks/bold_driver_probe/probe.py --report --out bench_results/bold_driver
"""

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS, final_returns, fit_and_record, return_matrix, rliable_summary
from sb3_bierl.benchmarks.records import load_records
from sb3_bierl.benchmarks.run_spec import RunSpec, run_specs
from sb3_bierl.bierl.bierl import DEFAULT_BOUND_FACTOR
from sb3_bierl.meta.controller import DEFAULT_MAX_LR_TO_SIGMA

HERE = Path(__file__).parent
#: The published ES runs (defaults, fixed settings) the probe is compared with
BASELINES = (
    HERE.parent / "meta_level_runs",
    HERE.parent / "meta_level_screening" / "es_seed1",
    HERE.parent / "new_defaults_runs",
    HERE.parent / "warm_start_control_runs",
    HERE / "runs",
)
#: BiERL from scratch (session 9's design, the current default) and warm-started from the shipped controller
BIERL_RUNS = (
    HERE.parent / "meta_level_session9_runs",
    HERE.parent / "warm_start_runs",
    HERE.parent / "warm_start_runs_session7",
)

#: Factor on the learning rate after a generation whose population mean rose
UP = 1.25
#: Divisor of the learning rate after one where it fell
DOWN = 1.5
#: The learning rate BiERL's default bounds are centred on (ES's default), and those bounds
DEFAULT_LEARNING_RATE = 0.01
LOW, HIGH = DEFAULT_LEARNING_RATE / DEFAULT_BOUND_FACTOR, DEFAULT_LEARNING_RATE * DEFAULT_BOUND_FACTOR
#: The same for sigma (ES's default 0.02): the bounds of the joint two-point rule (session 17)
DEFAULT_SIGMA = 0.02
SIGMA_LOW, SIGMA_HIGH = DEFAULT_SIGMA / DEFAULT_BOUND_FACTOR, DEFAULT_SIGMA * DEFAULT_BOUND_FACTOR


class BoldDriver(BaseCallback):
    """
    Sets ES's learning rate each generation from the last change of the population's mean return.

    :param threshold: 0: the sign rule (``es-bold``: up after a rise, down otherwise); above 0: the change must
        exceed ``threshold`` standard errors to move the learning rate (``es-bold-z``: Welch's z of the two
        generations' means; otherwise it stays)
    """

    def __init__(self, threshold: float = 0.0) -> None:
        super().__init__(0)
        self.threshold = threshold
        self.means: list[float] = []
        self.squared_errors: list[float] = []
        self.learning_rate: float | None = None

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        model = self.model
        if self.learning_rate is None:
            self.learning_rate = float(model.hyperparameters["learning_rate"])
        if len(self.means) >= 2:
            change = self.means[-1] - self.means[-2]
            if self.threshold == 0:
                factor = UP if change > 0 else 1 / DOWN
            else:
                z = change / (np.sqrt(self.squared_errors[-1] + self.squared_errors[-2]) + 1e-12)
                factor = UP if z > self.threshold else 1 / DOWN if z < -self.threshold else 1.0
            high = min(HIGH, DEFAULT_MAX_LR_TO_SIGMA * model.hyperparameters["sigma"])  # BiERL's step radius
            self.learning_rate = float(np.clip(self.learning_rate * factor, LOW, high))
        model.hyperparameters["learning_rate"] = self.learning_rate

    def _on_rollout_end(self) -> None:
        returns = np.asarray(self.model.last_rollout.returns, dtype=np.float64)
        returns = returns[np.isfinite(returns)]
        self.means.append(float(returns.mean()))
        self.squared_errors.append(float(returns.var(ddof=1) / returns.size))


class BoldDriverWithRejection(BaseCallback):
    """
    The bold driver as Vogl et al. (1988) stated it: a step that made things worse is taken back. Sets ES's learning
    rate each generation from Welch's z of the population's mean return against the last accepted generation's:

    - ``z > THRESHOLD``: accepted, the learning rate grows by ``SYMMETRIC``;
    - ``z < -THRESHOLD``: accepted, it shrinks by ``SYMMETRIC`` (the same factor: no drift under noise);
    - ``z < -REJECT``: rejected: the centre, the optimiser and the last step go back to the start of the generation
      just rolled out, and that last step (measured before the fall, at the previous centre) is redone at half the
      learning rate; the rejected generation's own step is dropped. At most one rejection in a row (the reference
      mean is one noisy estimate: a lucky one must not reject forever).

    A session-14 diagnosis: a one-step rule is greedy both ways, Ant's standing policy is damaged before the rule
    cuts the rate. Rejection undoes the damage; it costs the rejected generation's steps (counted).
    """

    def __init__(self) -> None:
        super().__init__(0)
        self.reference: np.ndarray | None = None  # the finite returns of the last accepted generation
        self.last: np.ndarray | None = None  # and of the last generation
        self.before: Any = None  # the strategy at the start of the last generation
        self.learning_rate: float | None = None
        self.rejections: list[int] = []  # generations rejected
        self.rejected_last = False

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        model = self.model
        sigma = float(model.hyperparameters["sigma"])
        if self.learning_rate is None:
            self.learning_rate = float(model.hyperparameters["learning_rate"])
        high = min(HIGH, DEFAULT_MAX_LR_TO_SIGMA * sigma)  # BiERL's step radius
        if self.last is not None:
            if self.reference is None:
                self.reference = self.last
            else:
                z = self.z()
                if z < -REJECT and not self.rejected_last:
                    strategy = model.strategy
                    strategy.__dict__.update(self.before.__dict__)  # in place, as ES's own roll-back
                    self.learning_rate = float(np.clip(self.learning_rate / 2, LOW, high))
                    strategy.rescale_last_step(self.learning_rate)
                    self.rejections.append(model._n_updates - 1)
                    self.rejected_last = True
                else:
                    if z > THRESHOLD:
                        self.learning_rate *= SYMMETRIC
                    elif z < -THRESHOLD:
                        self.learning_rate /= SYMMETRIC
                    self.learning_rate = float(np.clip(self.learning_rate, LOW, high))
                    self.reference, self.rejected_last = self.last, False
            self.last = None
        self.before = model.strategy.copy()
        model.hyperparameters["learning_rate"] = self.learning_rate

    def z(self) -> float:
        """:return: Welch's z of the last generation's mean return against the last accepted generation's"""
        (mean, squared_error), (reference, reference_error) = (
            (float(r.mean()), float(r.var(ddof=1) / r.size)) for r in (self.last, self.reference)
        )
        return (mean - reference) / (np.sqrt(squared_error + reference_error) + 1e-12)

    def _on_rollout_end(self) -> None:
        returns = np.asarray(self.model.last_rollout.returns, dtype=np.float64)
        self.last = returns[np.isfinite(returns)]


class RankBoldDriverWithRejection(BoldDriverWithRejection):
    """
    :class:`BoldDriverWithRejection` with a rank test in place of Welch's z: the z of the Mann-Whitney U of the
    generation's returns against the last accepted generation's (no ties correction). Why (session 15): from the
    defaults, LunarLander (4 to 13 rejections per run) and Pendulum (2 to 4) lose their learning rate to falls of the
    mean; a rank test is not moved by how far a few episodes fall.
    """

    def z(self) -> float:
        """:return: the z of the Mann-Whitney U of the last generation's returns against the last accepted one's"""
        return rank_z(self.last, self.reference)


def rank_z(a: np.ndarray, b: np.ndarray) -> float:
    """:return: the z of the Mann-Whitney U of ``a`` against ``b`` (above 0: ``a`` tends to be larger; mid-ranks)"""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([a, b]))
    u = ranks[: a.size].sum() - a.size * (a.size + 1) / 2
    return float((u - a.size * b.size / 2) / np.sqrt(a.size * b.size * (a.size + b.size + 1) / 12))


class TwoPointAdaptation(BaseCallback):
    """
    Two-point step-size adaptation (TPA; Hansen 2008, "CMA-ES with Two-Point Step-Size Adaptation"; as pycma's
    ``CMAAdaptSigmaTPA``) of ES's learning rate. Session 15's diagnosis: a fall of the mean does not tell "the step
    was too large" from "the landscape is rough here"; telling them apart needs a counterfactual at the same centre.
    TPA is the standard one: at the start of each generation, two extra candidates at the new centre, one along the
    last step and one against it, at a typical perturbation's length (``sigma * sqrt(n)``), on the same episode
    seed. If the one along the step is better, the slope still rises along the step: the step was too short; if the
    one against it is, the step overshot. On a rough landscape the two win about equally often, so the rate does not
    drift (where the bold driver halved it to the floor).

    At the generation's end: ``z = (#population returns above f- - #above f+) / (2 n_pairs + 1)`` in [-1, 1] (ranks
    among the generation's returns at that centre), ``s <- (1 - c) s + c sign(z) |z|^0.5``, learning rate
    ``*= exp(s / damping)`` for the next generation, within the bounds and step radius of the other rules. The two
    extra episodes per generation (``2 / (2 n_pairs + 2)`` = 5.9% of the episodes at ``n_pairs=16``) are counted and
    move nothing: ``tpa_steps`` in the record.

    ``at_step_length`` (session 20): the points at ``theta +- last_step``, the inner step as taken: TPA's two points
    on the line of the last mean shift without pycma's rescaling of the shift to a sample's length (``ask`` in pycma
    4.5.0: ``_random_rescaling_factor_to_mahalanobis_size``; here the step is 0.13 to 0.5 of ``sigma * sqrt(n)`` at
    the defaults). On a quadratic along the line both lengths give the same answer (is the centre short of the
    return's peak along the step?); they differ in what lies beyond the quadratic and in how far the two returns
    stand above the episode's noise: the step's own length asks about the step as taken, a perturbation's length
    about one 2 to 7 times longer. ``length_factor`` (session 20): the points at that factor times a perturbation's
    length (2: ``es-tpa-far``; ignored with ``at_step_length``).

    ``floor_at_start`` (session 21, ``es-tpa-floor``): the learning rate never goes below the one it started from
    (the upper bounds unchanged). A post-hoc probe: ``es-tpa`` loses to ES where it lowers the rate (Ant, every seed).

    ``joint`` (session 17): the factor moves sigma as well as the learning rate, as CMA-ES's TPA moves its one step
    size, which is both the sampling radius and the length of the mean's step; sigma within BiERL's default bounds (a
    factor 8 around 0.02), the rate within its own and the step radius.
    """

    def __init__(
        self,
        damping: float = 4.0,
        cumulation: float = 0.3,
        joint: bool = False,
        at_step_length: bool = False,
        length_factor: float = 1.0,
        floor_at_start: bool = False,
    ) -> None:
        super().__init__(0)
        self.damping, self.cumulation, self.joint = damping, cumulation, joint
        self.at_step_length, self.length_factor = at_step_length, length_factor
        self.floor_at_start = floor_at_start
        self.s = 0.0
        self.sigma: float | None = None
        self.learning_rate: float | None = None
        self.start_learning_rate: float | None = None
        self.pair: np.ndarray | None = None  # (f+, f-) at the current centre, this generation
        self.z_trace: list[float] = []
        self.tpa_steps = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        model = self.model
        if self.learning_rate is None:
            self.learning_rate = float(model.hyperparameters["learning_rate"])
            self.start_learning_rate = self.learning_rate
            self.sigma = float(model.hyperparameters["sigma"])
        if self.joint:  # the points at this generation's sigma
            model.hyperparameters["sigma"] = self.sigma
        strategy = model.strategy
        step = getattr(strategy, "last_step", None)
        if step is not None and np.linalg.norm(step) > 0:
            if self.at_step_length:  # the points at the new centre +- the last step as taken
                u = np.asarray(step, dtype=np.float64)
            else:
                length = self.length_factor * float(model.hyperparameters["sigma"]) * np.sqrt(strategy.dim)
                u = step / np.linalg.norm(step) * length
            before = model.num_timesteps
            self.pair = model.evaluate_centres(np.stack([strategy.theta + u, strategy.theta - u]), n_episodes=1)
            self.tpa_steps += model.num_timesteps - before
        model.hyperparameters["learning_rate"] = self.learning_rate

    def _on_rollout_end(self) -> None:
        if self.pair is None:
            return
        returns = np.asarray(self.model.last_rollout.returns, dtype=np.float64)
        returns = returns[np.isfinite(returns)]
        plus, minus = (r if np.isfinite(r) else -np.inf for r in self.pair)
        pooled = np.concatenate([returns, [plus, minus]])
        z = (np.sum(pooled > minus) - np.sum(pooled > plus)) / (pooled.size - 1)
        self.s = (1 - self.cumulation) * self.s + self.cumulation * np.sign(z) * np.abs(z) ** 0.5
        if self.joint:
            self.sigma = float(np.clip(self.sigma * np.exp(self.s / self.damping), SIGMA_LOW, SIGMA_HIGH))
        high = min(
            HIGH, DEFAULT_MAX_LR_TO_SIGMA * (self.sigma if self.joint else float(self.model.hyperparameters["sigma"]))
        )
        low = self.start_learning_rate if self.floor_at_start else LOW
        self.learning_rate = float(np.clip(self.learning_rate * np.exp(self.s / self.damping), low, high))
        self.z_trace.append(float(z))
        self.pair = None


class TwoPointWithActionNoise(TwoPointAdaptation):
    """
    TPA on the learning rate (as ``es-tpa``) and sigma set in the policy's action space (session 22, ``es-tpa-apn``):
    adaptive parameter-space noise (Plappert et al. 2018, "Parameter Space Noise for Exploration", section 3). After
    every generation, the distance ``d(sigma)`` between the policy at ``theta`` and at ``theta + sigma eps``
    (:func:`action_noise.action_distance`: RMS change of the squashed action on a Gaussian batch of states with the
    observations' running statistics; forward passes, no episode) is brought to ``delta``:
    ``sigma <- sigma * delta / d(sigma)`` (``d`` is close to linear in sigma: one step), within BiERL's default bounds
    for sigma (a factor 8 around 0.02); then TPA's step radius caps the learning rate at twice the new sigma.

    ``from_first_generation`` (``es-tpa-apn-first``): the first correction before the first generation, on the
    initial policy and the observation statistics' initial values (unit variance everywhere), so that a sigma
    started off is not used for a whole generation (``es-tpa-apn`` corrects it after the first one).

    ``every_generation=False`` (``es-tpa-apn-once``, session 23): that first correction only, sigma fixed after it.
    A test of session 22's diagnosis of ``es-tpa-apn-first`` at the defaults: the policy's sensitivity grows over a
    run, so holding ``d`` at ``delta`` lowers sigma, and TPA's step radius (twice sigma) with it.

    :param delta: The target distance (units of the action space's half-range)
    :param seed: Seed of the generator of ``eps`` and the states (the run's seed: reproducible)
    :param from_first_generation: Correct sigma before the first generation too
    :param every_generation: Correct sigma after every generation (False: before the first one only)
    """

    def __init__(
        self, delta: float, seed: int, from_first_generation: bool = False, every_generation: bool = True
    ) -> None:
        super().__init__()
        self.delta = delta
        self.rng = np.random.default_rng(seed)
        self.from_first_generation = from_first_generation or not every_generation
        self.every_generation = every_generation
        self.distance_trace: list[float] = []

    def correct_sigma(self) -> None:
        """Measure ``d(sigma)`` and bring sigma to ``delta`` (within the bounds); the model's sigma follows."""
        from action_noise import action_distance

        if self.sigma is None:
            self.sigma = float(self.model.hyperparameters["sigma"])
        (distance,) = action_distance(self.model, (self.sigma,), self.rng, ACTION_NOISE_PERTURBATIONS)
        self.distance_trace.append(float(distance))
        if distance > 0:
            self.sigma = float(np.clip(self.sigma * self.delta / distance, SIGMA_LOW, SIGMA_HIGH))
        self.model.hyperparameters["sigma"] = self.sigma

    def _on_rollout_start(self) -> None:
        if self.sigma is None and self.from_first_generation:
            self.correct_sigma()
        if self.sigma is not None:
            self.model.hyperparameters["sigma"] = self.sigma
        super()._on_rollout_start()

    def _on_rollout_end(self) -> None:
        if self.every_generation:
            self.correct_sigma()  # TPA's step radius below is the new sigma's
        super()._on_rollout_end()


#: ``es-tpa-apn``'s target action distance: ``d(0.02)`` at ES's first generation, 0.056 to 0.066 on the six tasks
#: (seed 0; ``action_noise.py measure``): sigma in the action space where the default puts it at the start
ACTION_NOISE_DELTA = 0.06
#: Perturbations per distance the rule measures (``action_noise.py``'s 8 jitter by about 15% between generations)
ACTION_NOISE_PERTURBATIONS = 32

#: Welch's z beyond which the rejection rule moves the learning rate, and the factor it moves it by
THRESHOLD, SYMMETRIC = 1.0, 1.25
#: Welch's z below which it rejects the generation's centre
REJECT = 2.0

#: The probe's runs: name -> (the rule's threshold, initial sigma, initial learning rate). ``es-s1.5-lr3-bold-z``
#: starts where the shipped pre-trained controller goes (sigma 0.03, learning rate 0.03): does the rule keep what
#: that start gains and take back the learning rate where it hurts (Ant)?
RULES = {
    "es-bold": (0.0, 0.02, 0.01),
    "es-bold-z": (1.0, 0.02, 0.01),
    "es-s1.5-lr3-bold-z": (1.0, 0.03, 0.03),
    # session 15: with rejection (threshold None: BoldDriverWithRejection), from the defaults and from 0.03 / 0.03
    "es-bdr": (None, 0.02, 0.01),
    "es-s1.5-lr3-bdr": (None, 0.03, 0.03),
    # the same with a rank test (threshold "rank": RankBoldDriverWithRejection), from the defaults
    "es-bdr-rank": ("rank", 0.02, 0.01),
    # session 16: two-point step-size adaptation (threshold "tpa": TwoPointAdaptation), from the defaults, from
    # 0.03 / 0.03, and from a learning rate 4 times too small or too large
    "es-tpa": ("tpa", 0.02, 0.01),
    "es-s1.5-lr3-tpa": ("tpa", 0.03, 0.03),
    "es-lr0.25-tpa": ("tpa", 0.02, 0.0025),
    "es-lr4-tpa": ("tpa", 0.02, 0.04),
    # session 17: the same factor on sigma and the learning rate (TwoPointAdaptation(joint=True)), from the defaults
    "es-tpa-joint": ("tpa_joint", 0.02, 0.01),
    # session 20: the two points at the inner step's own length (TwoPointAdaptation(at_step_length=True))
    "es-tpa-step": ("tpa_step", 0.02, 0.01),
    # and at twice a perturbation's length (TwoPointAdaptation(length_factor=2)): a test further ahead
    "es-tpa-far": ("tpa_far", 0.02, 0.01),
    # session 21: never below the learning rate it starts from (TwoPointAdaptation(floor_at_start=True))
    "es-tpa-floor": ("tpa_floor", 0.02, 0.01),
    # session 22: and sigma set in the action space (TwoPointWithActionNoise), from the defaults and 4 times off
    "es-tpa-apn": ("tpa_apn", 0.02, 0.01),
    "es-s0.25-tpa-apn": ("tpa_apn", 0.005, 0.01),
    "es-s4-tpa-apn": ("tpa_apn", 0.08, 0.01),
    "es-lr0.25-tpa-apn": ("tpa_apn", 0.02, 0.0025),
    "es-lr4-tpa-apn": ("tpa_apn", 0.02, 0.04),
    # and with the first correction before the first generation (from_first_generation=True)
    "es-tpa-apn-first": ("tpa_apn_first", 0.02, 0.01),
    "es-s0.25-tpa-apn-first": ("tpa_apn_first", 0.005, 0.01),
    "es-s4-tpa-apn-first": ("tpa_apn_first", 0.08, 0.01),
    "es-lr0.25-tpa-apn-first": ("tpa_apn_first", 0.02, 0.0025),
    "es-lr4-tpa-apn-first": ("tpa_apn_first", 0.02, 0.04),
    # session 23: the correction before the first generation only (every_generation=False)
    "es-tpa-apn-once": ("tpa_apn_once", 0.02, 0.01),
    "es-s0.25-tpa-apn-once": ("tpa_apn_once", 0.005, 0.01),
    "es-s4-tpa-apn-once": ("tpa_apn_once", 0.08, 0.01),
}


def train(spec: RunSpec) -> dict[str, Any]:
    """Train ES with the rule and evaluate it as ``meta_level.train_and_evaluate`` does (the same record)."""
    import torch

    from sb3_bierl import ES

    torch.set_num_threads(1)
    threshold, sigma, learning_rate = RULES[spec.algo]
    model = ES(
        "MlpPolicy", spec.env_id, seed=spec.seed, n_workers=1, verbose=0, sigma=sigma, learning_rate=learning_rate
    )
    if threshold == "rank":
        rule = RankBoldDriverWithRejection()
    elif threshold in ("tpa_apn", "tpa_apn_first", "tpa_apn_once"):
        rule = TwoPointWithActionNoise(
            ACTION_NOISE_DELTA,
            spec.seed,
            from_first_generation=threshold == "tpa_apn_first",
            every_generation=threshold != "tpa_apn_once",
        )
    elif threshold in ("tpa", "tpa_joint", "tpa_step", "tpa_far", "tpa_floor"):
        rule = TwoPointAdaptation(
            joint=threshold == "tpa_joint",
            at_step_length=threshold == "tpa_step",
            length_factor=2.0 if threshold == "tpa_far" else 1.0,
            floor_at_start=threshold == "tpa_floor",
        )
    else:
        rule = BoldDriverWithRejection() if threshold is None else BoldDriver(threshold)
    record = fit_and_record(model, spec, [rule])  # the trace records the rate the rule set
    if isinstance(rule, BoldDriverWithRejection):
        record["rejected_generations"] = rule.rejections
    if isinstance(rule, TwoPointAdaptation):
        record["tpa_z"], record["tpa_steps"] = rule.z_trace, rule.tpa_steps
    if isinstance(rule, TwoPointWithActionNoise):
        record["action_distance"] = rule.distance_trace
    return record


def derive_floor_runs(out: Path) -> list[Path]:
    """
    Writes the ``es-tpa-floor`` runs that need no training: ``es-tpa``'s (seeds 0-7) whose learning rate never went
    below its start. The floor never binds in them, so the rule computes the same run bit for bit (checked on
    LunarLander seed 5 and Pendulum seed 2, trained anyway); each copy names its source in ``derived_from``.

    :param out: The probe's output folder (the copies go to ``out/runs``; a run already there is kept)
    :return: the files written
    """
    import json

    written = []
    for folder in (HERE / "runs", HERE / "more_seeds" / "runs"):
        for record in load_records(folder):
            if record["algo"] != "es-tpa" or min(row[2] for row in record["trace"]) < record["trace"][0][2]:
                continue
            path = out / "runs" / f"es-tpa-floor_{record['env']}_{record['seed']}.json"
            if path.exists():
                continue
            source = folder / f"es-tpa_{record['env']}_{record['seed']}.json"
            record |= {"algo": "es-tpa-floor", "derived_from": str(source.relative_to(HERE.parent.parent.parent))}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=2))
            written.append(path)
    return written


def first_move(trace: list[list[float]]) -> int | None:
    """:return: the index of the first generation whose learning rate differs from the first's (None: never)"""
    return next((i for i, row in enumerate(trace) if row[2] != trace[0][2]), None)


def report(
    out: Path, only: list[str] | None = None, extra: tuple[Path, ...] = (), seeds_only: list[int] | None = None
) -> str:
    """
    :param out: The probe's output folder (its runs in ``out/runs``)
    :param only: The rules to report (None: every rule with runs)
    :param extra: More folders of runs (e.g. ``more_seeds/runs``: ES and ``es-tpa`` at seeds 5 to 7)
    :param seeds_only: The seeds each rule's rliable comparison covers (None: every seed the rule ran; e.g. seeds
        decided before any run, apart from those that suggested the rule)
    :return: each rule against ES at its defaults and at fixed settings: per task, and with rliable
    """
    folders = dict.fromkeys(folder.resolve() for folder in (*BASELINES, *extra, out / "runs") if folder.exists())
    records = [r for folder in folders for r in load_records(folder)]  # each folder once (out may be this one)
    bierl = [r for folder in BIERL_RUNS for r in load_records(folder) if r["algo"] in ("bierl", "warm")]
    table = final_returns(records + bierl)
    rules = [rule for rule in RULES if any(name == rule for _, name in table) and (only is None or rule in only)]
    names = ("es", *rules, "es-s1.5-lr3", "es-s1.5", "es-lr3")
    rows = []
    for env_id in SUITE_BUDGETS:
        cells = []
        for name in names:
            runs = table.get((env_id, name), {})
            cells.append(f"{np.mean(list(runs.values())):.1f} ({len(runs)})" if runs else "–")
        for rule in rules:
            finals = [r["trace"][-1][2] for r in records if r["algo"] == rule and r["env"] == env_id and r.get("trace")]
            cells.append(", ".join(f"{lr:.3f}" for lr in finals) or "–")
        rows.append([env_id, *cells])
    header = ["Task", *(f"{n} (runs)" for n in names), *(f"{rule}: final learning rate per seed" for rule in rules)]
    lines = markdown_table(header, rows)
    rejecting = [rule for rule in rules if any("rejected_generations" in r for r in records if r["algo"] == rule)]
    if rejecting:  # the rules with rejection: generations rejected per run, per seed
        rows = []
        for env_id in SUITE_BUDGETS:
            cells = []
            for rule in rejecting:
                runs = sorted(
                    (r["seed"], r) for r in records if r["algo"] == rule and r["env"] == env_id and r.get("trace")
                )
                cells.append(", ".join(f"{len(r['rejected_generations'])}/{len(r['trace'])}" for _, r in runs) or "–")
                firsts = [first_move(r["trace"]) for _, r in runs]
                cells.append(", ".join("never" if f is None else str(f) for f in firsts) or "–")
            rows.append([env_id, *cells])
        lines += [
            "",
            (
                "Generations rejected / generations run, and the first generation that ran at a rate the rule moved, "
                "per seed:"
            ),
            "",
        ]
        lines += markdown_table(
            ["Task", *(f"{rule}: {what}" for rule in rejecting for what in ("rejected", "first move"))], rows
        )
    # which hyperparameter carries the gain of sigma 0.03, learning rate 0.03: sigma alone, on the tasks it ran
    seeds = [0, 1, 2, 3, 4]
    envs = [e for e in SUITE_BUDGETS if all(s in table.get((e, "es-s1.5"), {}) for s in seeds)]
    if envs:
        fixed = {name: return_matrix(table, name, envs, seeds) for name in ("es", "es-s1.5", "es-s1.5-lr3")}
        lines += ["", f"Sigma alone, rliable over {', '.join(envs)}; seeds {seeds}:", ""]
        lines += rliable_summary({}, fixed, [("es-s1.5", "es"), ("es-s1.5-lr3", "es"), ("es-s1.5-lr3", "es-s1.5")])
    for rule in rules:
        seeds = sorted({seed for (_, name), runs in table.items() if name == rule for seed in runs})
        seeds = [seed for seed in seeds if seeds_only is None or seed in seeds_only]
        envs = [e for e in SUITE_BUDGETS if all(s in table.get((e, rule), {}) for s in seeds)]
        if not seeds or not envs:
            continue
        returns = {name: return_matrix(table, name, envs, seeds) for name in (rule, "es")}
        pairs = [(rule, "es")]
        if all(s in table.get((e, "es-s1.5-lr3"), {}) for e in envs for s in seeds):
            returns["es-s1.5-lr3"] = return_matrix(table, "es-s1.5-lr3", envs, seeds)
            pairs += [(rule, "es-s1.5-lr3"), ("es-s1.5-lr3", "es")]
        tpa_variant = rule.startswith("es-tpa-")  # a variant of es-tpa: against it too
        if tpa_variant and all(s in table.get((e, "es-tpa"), {}) for e in envs for s in seeds):
            returns["es-tpa"] = return_matrix(table, "es-tpa", envs, seeds)
            pairs += [(rule, "es-tpa")]
        lines += ["", f"{rule}, rliable over {', '.join(envs)}; seeds {seeds}:", ""]
        lines += rliable_summary({}, returns, pairs)
        for i, env_id in enumerate(envs):
            per_task = rliable_summary({}, {k: v[:, [i]] for k, v in returns.items()}, pairs[:1])
            lines += [f"{env_id}: {per_task[-2]}"]
        held_out = [e for e in envs if all(s in table.get((e, "warm"), {}) for s in seeds)]
        if held_out:
            against = {name: return_matrix(table, name, held_out, seeds) for name in (rule, "bierl", "warm", "es")}
            pairs = [(rule, "bierl"), (rule, "warm"), ("bierl", "es"), ("warm", "es")]
            lines += ["", f"{rule} against BiERL (from scratch, warm start), over {', '.join(held_out)}:", ""]
            lines += rliable_summary({}, against, pairs)
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", nargs="+", choices=list(RULES), help="Rules to run (es-bold) or report (all)")
    parser.add_argument("--extra", nargs="+", type=Path, default=[], help="More folders of runs for the report")
    parser.add_argument("--envs", nargs="+", default=list(SUITE_BUDGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench_results/bold_driver"))
    parser.add_argument("--report", action="store_true", help="Only print the report of the saved runs")
    parser.add_argument("--report-seeds", nargs="+", type=int, help="The seeds of the report's rliable comparisons")
    parser.add_argument(
        "--derive-floor", action="store_true", help="Only copy es-tpa's runs where the floor never binds (es-tpa-floor)"
    )
    args = parser.parse_args()
    if args.derive_floor:
        print(f"{len(derive_floor_runs(args.out))} runs derived")
        raise SystemExit(0)
    if args.report:
        print(report(args.out, args.rules, tuple(args.extra), args.report_seeds))
        raise SystemExit(0)
    specs = [
        RunSpec(rule, env, seed, SUITE_BUDGETS[env], 10)
        for rule in args.rules or ["es-bold"]
        for seed in args.seeds
        for env in args.envs
    ]
    run_specs(specs, args.out, args.workers, trainer="probe:train", progress_bar=False)
