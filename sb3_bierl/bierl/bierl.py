"""
BiERL: OpenAI-ES whose hyperparameters a meta level sets as it trains (by default two-point adaptation of the
learning rate; the paper's meta network with ``meta="lstm"``).
"""

import inspect
import pathlib
import warnings
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback

from sb3_bierl.es.es import ES, check_at_least_one, check_positive, check_saved_model
from sb3_bierl.es.policies import ESPolicy
from sb3_bierl.meta import (
    LEARNING_RATE_RULES,
    META_LEVELS,
    BaseMetaController,
    BoldDriverController,
    HyperparameterSpace,
    MetaController,
    OptunaController,
    TwoPointController,
    read_controller_file,
    read_rule_file,
)
from sb3_bierl.meta.action_noise import check_action_distance_supported, check_action_stddev_tolerance
from sb3_bierl.meta.controller import DEFAULT_MAX_LR_TO_SIGMA, TRAINABLE
from sb3_bierl.meta.fitness import FITNESS_KINDS

SelfBiERL = TypeVar("SelfBiERL", bound="BiERL")

#: The hyperparameters adapted by default (the authors' code adapts sigma only; the learning rate is
#: adapted too, on the last inner step, see ``ES.meta_generation``)
DEFAULT_ADAPTED: tuple[str, ...] = ("sigma", "learning_rate")
#: Default bounds: this factor on either side of each adapted hyperparameter's initial value, so that a
#: start 4 times too large or too small can still reach the right value
DEFAULT_BOUND_FACTOR = 8.0

#: Inner algorithms the meta level can wrap (``inner=``)
INNER_ALGORITHMS = ("es", "nsr_es", "nsra_es", "esac")


def check_inside_saved_bounds(path: str | pathlib.Path, bounds: dict[str, tuple[float, float]], initial: dict[str, Any]) -> None:
    """
    :param path: The warm-start controller file
    :param bounds: Its bounds, ``{name: (low, high)}``
    :param initial: The model's initial hyperparameters
    :raises ValueError: if an initial value lies outside the controller's bounds
    """
    for name, (low, high) in bounds.items():
        value = initial.get(name)
        if isinstance(value, (int, float)) and not low <= value <= high:
            raise ValueError(
                f"{name}={value} lies outside the bounds ({low}, {high}) of the warm-start controller {str(path)!r}: "
                "start inside them, or pass hyperparameter_bounds to use the controller on another scale"
            )


def default_meta(inner: str) -> str:
    """
    BiERL's meta level when ``meta`` is not given (issue 9, session 22): two-point step-size adaptation of the
    learning rate (``"tpa"``) for OpenAI-ES, the meta level from scratch measured to beat ES at equal steps on issue
    9's six-task suite (P(> ES) = 0.60 [0.53, 0.68] over 16 seeds, ``docs/benchmarks/meta_level.md``, session 22); the
    paper's LSTM meta network
    (``"lstm"``) for the inner algorithms TPA cannot wrap (NSR-ES and NSRA-ES switch centres, ESAC's SAC moves the
    centre between ES steps).

    :param inner: The inner algorithm (one of ``INNER_ALGORITHMS``)
    :return: ``"tpa"`` for ``"es"``, ``"lstm"`` otherwise
    """
    return "tpa" if inner == "es" else "lstm"


#: The arguments only the meta network reads (``meta="lstm"`` or ``"mean"``; some also Optuna's)
NETWORK_ARGUMENTS: tuple[str, ...] = (
    "meta_hidden_size", "meta_interval", "meta_n_pairs", "meta_sigma", "meta_learning_rate", "meta_centre_episodes",
    "meta_max_change", "meta_trainable", "meta_fitness", "meta_min_significance",
)


def check_network_arguments_unused(meta: str, given: dict[str, Any], defaulted: bool) -> None:
    """
    A rule on the learning rate (``"tpa"``, BiERL's default for OpenAI-ES since session 22, or ``"bold_driver"``) has
    no network and no meta candidates: the meta network's arguments would be silently ignored, so they are refused.
    A value equal to the default is accepted (it changes nothing).

    :param meta: The meta level
    :param given: The meta network's arguments as given, ``{name: value}`` (keys of :data:`NETWORK_ARGUMENT_DEFAULTS`)
    :param defaulted: Whether ``meta`` is the default (:func:`default_meta`), not the user's choice (the message
        says so)
    :raises ValueError: if ``meta`` is a learning-rate rule and one of ``given`` differs from its default
    """
    if meta not in LEARNING_RATE_RULES:
        return
    changed = sorted(name for name, value in given.items() if value != NETWORK_ARGUMENT_DEFAULTS[name])
    if changed:
        which = f"BiERL's default meta level for OpenAI-ES is {meta!r}" if defaulted else f"meta={meta!r}"
        raise ValueError(
            f"{', '.join(changed)} {'sets' if len(changed) == 1 else 'set'} the meta network (meta='lstm' or 'mean'; "
            f"some also Optuna's, meta='optuna'), but {which}, a rule on the learning rate with no network: pass "
            "meta='lstm' (the paper's meta network) to use them, or leave them out"
        )


class BiERL(ES):
    """
    BiERL (Wang et al. 2023, https://arxiv.org/abs/2308.01207): the inner level is OpenAI-ES
    (see :class:`~sb3_bierl.ES`); the meta level, a callback attached by ``learn``, sets the inner hyperparameters
    every generation.

    By default (``meta=None``) it is two-point step-size adaptation of the learning rate (``"tpa"``,
    :class:`~sb3_bierl.meta.TwoPointController`: two extra episodes per generation, along and against the last
    step, about 5.5% of the steps), the meta level from scratch measured to beat ES at equal steps on issue 9's
    six-task suite (16 seeds); with an
    inner algorithm TPA cannot wrap (NSR-ES, NSRA-ES, ESAC), the paper's meta network (``"lstm"``). See
    :func:`default_meta`.

    The paper's meta network (``meta="lstm"``, or ``"mean"``), a :class:`~sb3_bierl.meta.MetaController`, reads the
    history of the population's fitness with an LSTM and proposes the inner hyperparameters every generation, inside
    ``hyperparameter_bounds`` on a log scale, within a factor ``meta_max_change`` of the last generation's values and
    with a learning rate at most ``meta_max_lr_to_sigma`` times sigma.

    It trains its own weights by ES every ``meta_interval`` generations, from the first one, at no
    extra step: that generation's population is shared among ``2 * meta_n_pairs`` meta candidates, each
    scored by the mean return of its pairs around its stepped centre (the truncated fitness,
    ``ES.meta_generation`` and ``sb3_bierl.meta.fitness``), and every rollout still moves the inner level;
    the meta network steps only when its candidates differ significantly (``meta_min_significance``). The only extra steps are
    ``meta_centre_episodes`` rollouts of the centre per generation, which feed the meta features (about 3%
    of the steps at the defaults; logged as ``meta/step_overhead``). All steps count in ``num_timesteps``.

    ``sigma``, ``learning_rate`` and ``weight_decay`` are the starting values of the adapted
    hyperparameters (and the fixed values of those not adapted).

    :param policy: ``"MlpPolicy"``, ``"LinearPolicy"`` or an ESPolicy subclass
    :param env: The environment to learn from (an id, a gymnasium env or a VecEnv)
    :param n_pairs: Antithetic pairs per generation (population size ``2 * n_pairs``)
    :param sigma: Initial noise std
    :param learning_rate: Initial Adam step size
    :param weight_decay: Initial L2 coefficient
    :param n_eval_episodes: Episodes per candidate
    :param hyperparameter_bounds: ``{name: (low, high)}`` of the adapted hyperparameters, among the inner
        algorithm's ``adaptable_hyperparameters`` (``sigma``, ``learning_rate``, ``weight_decay``; NSR-ES adds
        ``novelty_weight``); default: ``sigma`` and ``learning_rate`` within a factor ``DEFAULT_BOUND_FACTOR``
        (8) of their initial values, plus the inner algorithm's ``default_meta_bounds``
    :param inner: The inner algorithm: ``"es"`` (OpenAI-ES, the default), ``"nsr_es"``, ``"nsra_es"``
        (:class:`~sb3_bierl.NSRES`, :class:`~sb3_bierl.NSRAES`) or ``"esac"`` (:class:`~sb3_bierl.ESAC`);
        their own arguments go in ``kwargs``
    :param meta: The meta level (None: :func:`default_meta`, ``"tpa"`` for OpenAI-ES and ``"lstm"`` for the other
        inner algorithms): ``"lstm"`` (the paper's meta network, LSTM encoder), ``"mean"`` (its
        mean-pool encoder ablation), ``"optuna"`` (non-parametric: an Optuna study proposes the hyperparameters
        against the same truncated fitness, :class:`~sb3_bierl.meta.OptunaController`), ``"bold_driver"`` (a rule
        without learned weights on the learning rate alone, which takes back a generation whose mean return fell:
        :class:`~sb3_bierl.meta.BoldDriverController`; OpenAI-ES only; no extra step, the ``meta_*`` arguments of
        the network do not apply), ``"tpa"`` (two-point step-size adaptation of the learning rate alone: two extra
        episodes per generation along and against the last step tell a step too short from one that overshot;
        :class:`~sb3_bierl.meta.TwoPointController`; OpenAI-ES only, as the bold driver; with ``last_step_pair=True``
        the two points are the inner ES's pair along the last step, also used in its gradient) or ``"none"`` (no meta
        level: the plain inner algorithm at its initial hyperparameters)
    :param meta_warm_start: Start the meta network from a saved controller: a file written by
        ``MetaController.save`` or ``python -m sb3_bierl.pretrain``, or ``"pretrained"`` for the one
        shipped with the package (its encoder and sizes replace ``meta``, ``meta_history_length``
        and ``meta_hidden_size``; without ``hyperparameter_bounds``, its bounds are used: the scale it reads
        and sets the hyperparameters on). The shipped one takes every task to sigma ~0.03 and learning rate ~0.03:
        a gain on LunarLander, Swimmer and Hopper, a loss on Ant (``docs/benchmarks/warm_start.md``). With
        ``meta="tpa"``: a pre-trained two-point rule (its start factor on the learning rate, damping and
        cumulation; :class:`~sb3_bierl.meta.TwoPointRule`), a file written by ``python -m sb3_bierl.pretrain
        --meta tpa`` or ``"pretrained"`` for the one shipped with the package
    :param meta_history_length: Generations the encoder reads
    :param meta_hidden_size: Encoder size
    :param meta_interval: Inner generations between two meta updates (1: every generation)
    :param meta_n_pairs: Antithetic pairs of meta candidates per meta update (each candidate gets
        ``n_pairs // (2 * meta_n_pairs)`` of the generation's pairs)
    :param meta_sigma: Noise std on the meta network's trained weights
    :param meta_learning_rate: Adam step size of the meta ES
    :param meta_centre_episodes: Episodes of the unperturbed centre per generation, for the meta features
        (its return and rank among its perturbations); 0 saves those steps and leaves the features at 0
    :param meta_max_change: Trust region: the factor by which an adapted hyperparameter may move per generation
    :param meta_trainable: What the meta ES trains online: ``"last_layer"`` (the generator's last layer: few
        enough weights to learn within one run), ``"bias"`` (its bias alone: one offset per adapted
        hyperparameter), ``"all"``, or ``"none"``: no meta update, the network only proposes (how a controller
        pre-trained by ``python -m sb3_bierl.pretrain`` is meant to run). Default: ``"last_layer"``, or with
        ``meta_warm_start`` what the controller file records (``"none"`` for a pre-trained one)
    :param meta_fitness: How a meta candidate's share of the generation is scored: ``"mean"`` (the mean return
        of its pairs: the return around its stepped centre at its sigma) or ``"best"`` (the better return of each
        pair, biased towards large sigma); see :func:`sb3_bierl.meta.fitness.pair_fitness`
    :param meta_min_significance: The meta ES steps only when its candidates' fitness difference has a paired
        t statistic of at least this (0: at every meta update); see :class:`~sb3_bierl.meta.MetaController`
    :param meta_max_lr_to_sigma: The largest ``learning_rate / sigma`` the meta level sets or evaluates (a trust
        region: Adam moves each weight by about the learning rate, the ES gradient is measured at about sigma;
        None: no cap). Default 2.0, the largest ratio among the best fixed settings of issue 9's headroom grid;
        a start above it is brought onto it in the first generation
        (:meth:`~sb3_bierl.meta.BaseMetaController.within_step_radius`)
    :param meta_desired_action_stddev: With ``meta="tpa"``: sigma set in the policy's action space (adaptive
        parameter-space noise, Plappert et al. 2018, section 3): before the first generation, sigma becomes the one
        whose perturbations move the tanh-squashed actions by this RMS distance (units of the action range's
        half-width; forward passes on states drawn from the observation statistics, no episode), within a factor
        ``DEFAULT_BOUND_FACTOR`` (8) of ``sigma``. 0.06 is the default sigma's (0.02) distance after the first generation on
        issue 9's six tasks (0.056-0.066; before it 0.055-0.075, Ant 0.077-0.082). None: sigma stays the one given. Needs continuous actions and a squashed policy
        (:class:`~sb3_bierl.meta.TwoPointController`)
    :param meta_sigma_every_generation: With ``meta_desired_action_stddev``: set sigma by the action distance after
        every generation too, on the new centre (as Plappert et al. adapt it; the probe's ``es-tpa-apn-first``), not
        only before the first one (``es-tpa-apn-once``)
    :param meta_action_stddev_tolerance: With ``meta_desired_action_stddev``: correct sigma only when its action
        distance is more than this factor off the desired one (1: always). With 2 and 0.06, the default sigma is
        left as it is on issue 9's six tasks (distances 0.055-0.082 before the first generation) and a sigma 4
        times off is corrected (``docs/benchmarks/meta_level.md``, session 24)
    :param meta_encoder: Deprecated name of ``meta`` (a ``FutureWarning``; it named the choice of meta level,
        not only of an encoder)
    :param kwargs: Other arguments of :class:`~sb3_bierl.ES`
    """

    def __init__(
        self,
        policy: str | type[ESPolicy],
        env: GymEnv | str | None,
        n_pairs: int = 16,
        sigma: float = 0.02,
        learning_rate: float = 0.01,
        weight_decay: float = 0.005,
        n_eval_episodes: int = 1,
        hyperparameter_bounds: dict[str, tuple[float, float]] | None = None,
        inner: str | None = None,
        meta: str | None = None,
        meta_warm_start: str | pathlib.Path | None = None,
        meta_history_length: int = 10,
        meta_hidden_size: int = 16,
        meta_interval: int = 1,
        meta_n_pairs: int = 1,
        meta_sigma: float = 0.1,
        meta_learning_rate: float = 0.03,
        meta_centre_episodes: int = 1,
        meta_max_change: float = 1.25,
        meta_trainable: str | None = None,
        meta_fitness: str = "mean",
        meta_min_significance: float = 1.0,
        meta_max_lr_to_sigma: float | None = DEFAULT_MAX_LR_TO_SIGMA,
        meta_desired_action_stddev: float | None = None,
        meta_sigma_every_generation: bool = False,
        meta_action_stddev_tolerance: float = 1.0,
        meta_encoder: str | None = None,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        if callable(learning_rate):
            raise ValueError("BiERL adapts the learning rate itself: pass its initial value as a float, not a schedule")
        if meta_encoder is not None:
            warnings.warn(
                "BiERL(meta_encoder=...) is deprecated: use meta=... (the choice of meta level: 'lstm', 'mean', 'optuna' or 'none')",
                FutureWarning,
                stacklevel=2,
            )
            meta = meta_encoder
        inner = type(self).inner if inner is None else inner
        if inner != type(self).inner:
            raise ValueError(f"{type(self).__name__} wraps inner={type(self).inner!r}, got inner={inner!r}: use BiERL(..., inner=...)")
        defaulted = meta is None
        if defaulted:
            meta = default_meta(inner)
        check_network_arguments_unused(meta, {
            "meta_hidden_size": meta_hidden_size, "meta_interval": meta_interval, "meta_n_pairs": meta_n_pairs,
            "meta_sigma": meta_sigma, "meta_learning_rate": meta_learning_rate,
            "meta_centre_episodes": meta_centre_episodes, "meta_max_change": meta_max_change,
            "meta_trainable": meta_trainable, "meta_fitness": meta_fitness,
            "meta_min_significance": meta_min_significance,
        }, defaulted)
        if meta not in META_LEVELS:
            raise ValueError(f"meta must be one of {META_LEVELS}, got {meta!r}")
        if meta_warm_start is not None and meta == "tpa":
            read_rule_file(meta_warm_start)  # fail now if it is not a two-point rule's file
        elif meta_warm_start is not None:
            if meta in ("optuna", *LEARNING_RATE_RULES, "none"):
                raise ValueError(
                    f"meta_warm_start loads a pre-trained meta level: a network for meta 'lstm' or 'mean', or a "
                    f"two-point rule for meta 'tpa'; not {meta!r}"
                )
            saved = read_controller_file(meta_warm_start)  # fail now if it is not a controller file
            if meta_trainable is None:
                meta_trainable = saved["metadata"].get("meta_trainable", "last_layer")
            if hyperparameter_bounds is None:
                # the controller reads and sets the hyperparameters on the scale it was trained on
                hyperparameter_bounds = {name: tuple(saved["bounds"][name]) for name in saved["hyperparameters"]}
                # what the inner algorithm adapts besides: a controller that does not set it gives a clear error
                for name, bounds in self.default_meta_bounds.items():
                    hyperparameter_bounds.setdefault(name, bounds)
                initial = {"sigma": sigma, "learning_rate": learning_rate, "weight_decay": weight_decay, **kwargs}
                check_inside_saved_bounds(meta_warm_start, hyperparameter_bounds, initial)
        if meta in LEARNING_RATE_RULES and inner != "es":
            raise ValueError(
                f"meta={meta!r} reads and sets the step of one centre: it wraps OpenAI-ES (inner='es'), "
                f"not inner={inner!r}; use meta='lstm', 'mean' or 'optuna' with {inner!r}"
            )
        if meta_trainable is None:
            meta_trainable = "last_layer"
        check_at_least_one(
            meta_history_length=meta_history_length,
            meta_hidden_size=meta_hidden_size,
            meta_interval=meta_interval,
            meta_n_pairs=meta_n_pairs,
        )
        if not isinstance(meta_centre_episodes, (int, np.integer)) or meta_centre_episodes < 0:
            raise ValueError(f"meta_centre_episodes must be an integer >= 0, got {meta_centre_episodes!r}")
        check_positive(sigma=sigma, learning_rate=learning_rate, meta_sigma=meta_sigma, meta_learning_rate=meta_learning_rate)
        if not np.isfinite(meta_max_change) or meta_max_change <= 1.0:
            raise ValueError(f"meta_max_change must be a factor > 1, got {meta_max_change!r}")
        if meta_trainable not in TRAINABLE:
            raise ValueError(f"meta_trainable must be one of {TRAINABLE}, got {meta_trainable!r}")
        if meta_fitness not in FITNESS_KINDS:
            raise ValueError(f"meta_fitness must be one of {FITNESS_KINDS}, got {meta_fitness!r}")
        if meta_max_lr_to_sigma is not None and not (np.isfinite(meta_max_lr_to_sigma) and meta_max_lr_to_sigma > 0):
            raise ValueError(
                f"meta_max_lr_to_sigma must be a positive ratio (or None: no cap), got {meta_max_lr_to_sigma!r}"
            )
        if meta_desired_action_stddev is not None:
            if meta != "tpa":
                raise ValueError(
                    f"meta_desired_action_stddev sets sigma with two-point adaptation (meta='tpa', OpenAI-ES only), got "
                    f"meta={meta!r}: pass meta='tpa' with inner='es', or leave it None"
                )
            if not (
                isinstance(meta_desired_action_stddev, (int, float, np.integer, np.floating))
                and not isinstance(meta_desired_action_stddev, bool)
                and np.isfinite(meta_desired_action_stddev)
                and meta_desired_action_stddev > 0
            ):
                raise ValueError(
                    f"meta_desired_action_stddev must be a distance > 0 (or None), got {meta_desired_action_stddev!r}"
                )
        if meta_sigma_every_generation and meta_desired_action_stddev is None:
            raise ValueError(
                "meta_sigma_every_generation sets sigma by the action distance: give meta_desired_action_stddev too"
            )
        check_action_stddev_tolerance(meta_action_stddev_tolerance, meta_desired_action_stddev, prefix="meta_")
        if not np.isfinite(meta_min_significance) or meta_min_significance < 0:
            raise ValueError(f"meta_min_significance must be a t statistic >= 0, got {meta_min_significance!r}")
        only_learning_rate = hyperparameter_bounds is None or set(hyperparameter_bounds) == {"learning_rate"}
        if meta in LEARNING_RATE_RULES and not only_learning_rate:
            raise ValueError(
                f"meta={meta!r}{' (the default for OpenAI-ES)' if defaulted else ''} adapts the "
                f"learning rate alone, got hyperparameter_bounds for {sorted(hyperparameter_bounds)}: give bounds for "
                "'learning_rate' only, or choose a meta level that adapts sigma too (meta='lstm', 'mean' or 'optuna')"
            )
        if hyperparameter_bounds is None:
            initial = {"sigma": sigma, "learning_rate": learning_rate}
            adapted = ("learning_rate",) if meta in LEARNING_RATE_RULES else DEFAULT_ADAPTED  # a rule sets it alone
            hyperparameter_bounds = {
                **{name: (initial[name] / DEFAULT_BOUND_FACTOR, initial[name] * DEFAULT_BOUND_FACTOR) for name in adapted},
                **(self.default_meta_bounds if meta not in LEARNING_RATE_RULES else {}),
            }
        self.hyperparameter_bounds = dict(hyperparameter_bounds)
        self.inner = inner  # saved with the model: BiERL.load picks the class from it
        self.meta = meta
        self.meta_warm_start = None if meta_warm_start is None else str(meta_warm_start)
        self.meta_history_length = meta_history_length
        self.meta_hidden_size = meta_hidden_size
        self.meta_interval = meta_interval
        self.meta_n_pairs = meta_n_pairs
        self.meta_sigma = meta_sigma
        self.meta_learning_rate = meta_learning_rate
        self.meta_centre_episodes = meta_centre_episodes
        self.meta_max_change = meta_max_change
        self.meta_trainable = meta_trainable
        self.meta_fitness = meta_fitness
        self.meta_min_significance = meta_min_significance
        self.meta_max_lr_to_sigma = meta_max_lr_to_sigma
        self.meta_desired_action_stddev = meta_desired_action_stddev
        self.meta_sigma_every_generation = meta_sigma_every_generation
        self.meta_action_stddev_tolerance = float(meta_action_stddev_tolerance)
        self.meta_controller: BaseMetaController | None = None
        super().__init__(
            policy,
            env,
            n_pairs=n_pairs,
            sigma=sigma,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            n_eval_episodes=n_eval_episodes,
            _init_setup_model=False,
            **kwargs,
        )
        if _init_setup_model:
            self._setup_model()

    def __new__(cls, *args: Any, inner: str | None = None, **kwargs: Any) -> "BiERL":
        if cls is BiERL and inner not in (None, "es"):
            from sb3_bierl.bierl.variants import bierl_class

            cls = bierl_class(inner)
        return super().__new__(cls)

    #: The inner algorithm of this class (see ``INNER_ALGORITHMS``)
    inner: ClassVar[str] = "es"
    #: Bounds added to ``DEFAULT_BOUNDS`` for this inner algorithm
    default_meta_bounds: ClassVar[dict[str, tuple[float, float]]] = {}

    @classmethod
    def _saved_algorithm_name(cls) -> str:
        return "BiERL"  # whatever the inner algorithm: BiERL.load picks the class from the saved ``inner``

    @property
    def meta_encoder(self) -> str:
        """Deprecated name of :attr:`meta` (kept so that models saved before the rename load)."""
        return self.meta

    @meta_encoder.setter
    def meta_encoder(self, value: str) -> None:
        self.meta = value

    def _setup_model(self) -> None:
        super()._setup_model()
        desired = getattr(self, "meta_desired_action_stddev", None)  # saved before it: None
        if desired is not None:
            check_action_distance_supported(self.policy)
        if self.meta_controller is None:  # a new model, not one being loaded
            self.meta_controller = self._make_meta_controller()
        elif isinstance(self.meta_controller, TwoPointController) and (
            self.meta_controller.desired_action_stddev != desired
            or self.meta_controller.sigma_every_generation != getattr(self, "meta_sigma_every_generation", False)
            or self.meta_controller.action_stddev_tolerance != getattr(self, "meta_action_stddev_tolerance", 1.0)
        ):
            raise ValueError(
                "A loaded model keeps the meta level it was saved with: its meta_desired_action_stddev, "
                "meta_sigma_every_generation and meta_action_stddev_tolerance cannot be changed by load (they would be "
                "ignored). Train a new model with them instead"
            )
        controller = self.meta_controller
        if self.last_step_pair and controller is not None and controller.learns_online and controller.interval == 1:
            raise ValueError(
                f"last_step_pair does nothing with meta={self.meta!r} and meta_interval=1: every generation is a meta "
                "update shared among meta candidates, which has no pair along the last step. Use meta='tpa' (its two "
                "points are the pair), or a meta_interval above 1 (the pair in the generations between meta updates)"
            )

    def roll_back_meta_level(self) -> None:
        """After a rolled-back generation, the meta level goes back to its state at that generation's start now, so
        that what it reports and saves (``summary()``, ``meta_controller.save``) is that of the model as rolled back."""
        controller = self.meta_controller
        if controller is not None and getattr(controller, "model", None) is self:
            controller.roll_back_if_interrupted()

    def _make_meta_controller(self) -> BaseMetaController | None:
        if self.meta == "none":
            return None
        space = HyperparameterSpace(
            self.hyperparameter_bounds, self.scheduled_hyperparameters(), self.adaptable_hyperparameters
        )
        common: dict[str, Any] = dict(
            interval=self.meta_interval,
            centre_episodes=self.meta_centre_episodes,
            max_change=self.meta_max_change,
            fitness=self.meta_fitness,
            max_lr_to_sigma=self.meta_max_lr_to_sigma,
            seed=None if self.seed is None else self.seed + 1,
            verbose=self.verbose,
        )
        if self.meta == "bold_driver":
            return BoldDriverController(
                space,
                history_length=self.meta_history_length,
                max_lr_to_sigma=self.meta_max_lr_to_sigma,
                seed=common["seed"],
                verbose=self.verbose,
            )
        if self.meta == "tpa":
            desired = getattr(self, "meta_desired_action_stddev", None)
            controller = TwoPointController(
                space,
                history_length=self.meta_history_length,
                max_lr_to_sigma=self.meta_max_lr_to_sigma,
                seed=common["seed"],
                verbose=self.verbose,
                desired_action_stddev=desired,
                sigma_bounds=(self.sigma / DEFAULT_BOUND_FACTOR, self.sigma * DEFAULT_BOUND_FACTOR),
                sigma_every_generation=getattr(self, "meta_sigma_every_generation", False),
                action_stddev_tolerance=getattr(self, "meta_action_stddev_tolerance", 1.0),
            )
            if self.meta_warm_start is not None:
                rule, controller.warm_start_metadata = read_rule_file(self.meta_warm_start)
                controller.set_rule(rule)
            return controller
        if self.meta == "optuna":
            return OptunaController(
                space, n_trials=2 * self.meta_n_pairs, history_length=self.meta_history_length, **common
            )
        common.update(
            n_pairs=self.meta_n_pairs,
            sigma=self.meta_sigma,
            learning_rate=self.meta_learning_rate,
            trainable=self.meta_trainable,
            min_significance=self.meta_min_significance,
        )
        if self.meta_warm_start is not None:
            return MetaController.load(self.meta_warm_start, space, **common)
        return MetaController(
            space,
            encoder=self.meta,
            history_length=self.meta_history_length,
            hidden_size=self.meta_hidden_size,
            **common,
        )

    @classmethod
    def load(cls, path: str | pathlib.Path | Any, env: GymEnv | str | None = None, device: th.device | str = "cpu", **kwargs: Any) -> Any:  # type: ignore[override]
        """
        Load a model saved with ``save``, whatever its inner algorithm. ``env`` may be an environment id.

        :raises ValueError: if ``path`` is not a saved BiERL model
        """
        if cls is BiERL and isinstance(path, (str, pathlib.Path)):
            data = check_saved_model(path, "BiERL")
            inner = data.get("inner", "es")
            if inner != "es":
                from sb3_bierl.bierl.variants import bierl_class

                return bierl_class(inner).load(path, env=env, device=device, **kwargs)
        return super().load(path, env=env, device=device, **kwargs)

    def learn(
        self: SelfBiERL,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "BiERL",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfBiERL:
        """
        Train for ``total_timesteps`` environment steps, meta level included; the meta controller
        runs as the first callback, next to the user's.

        :param total_timesteps: The total number of environment steps to train on
        :param callback: Callback(s) called at every environment step
        :param log_interval: Generations between two log dumps
        :param tb_log_name: Name of the run for TensorBoard logging
        :param reset_num_timesteps: Whether to reset the step counter (False to continue training)
        :param progress_bar: Display a progress bar using tqdm and rich
        :return: the trained model
        """
        user_callbacks = callback if isinstance(callback, list) else ([] if callback is None else [callback])
        meta = [] if self.meta_controller is None else [self.meta_controller]
        return super().learn(
            total_timesteps,
            CallbackList([*meta, *user_callbacks]),
            log_interval,
            tb_log_name,
            reset_num_timesteps,
            progress_bar,
        )


#: :data:`NETWORK_ARGUMENTS` at their defaults, read off ``BiERL.__init__`` (one source of truth)
NETWORK_ARGUMENT_DEFAULTS: dict[str, Any] = {
    name: inspect.signature(BiERL.__init__).parameters[name].default for name in NETWORK_ARGUMENTS
}
