"""NSR-ES and NSRA-ES (Conti et al. 2018) as Stable-Baselines3 algorithms."""

import copy
import warnings
from typing import Any, ClassVar

import numpy as np
from stable_baselines3.common.type_aliases import GymEnv
from torch.nn.utils import parameters_to_vector

from sb3_bierl.es.es import ES, check_at_least_one
from sb3_bierl.es.policies import ESPolicy
from sb3_bierl.evaluation import DescriptorFn, RolloutResult, default_behaviour_descriptor, make_env_factory
from sb3_bierl.strategies import (
    AdaptiveNoveltyWeight,
    NoveltyArchive,
    OpenAIES,
    Population,
    combined_fitness,
    finite_or_worst,
    select_by_novelty,
)

#: Episodes that measure a member's new centre each generation (its descriptor and recent return)
CENTRE_EPISODES = 1


class NSRES(ES):
    """
    NSR-ES (Conti et al. 2018, https://arxiv.org/abs/1712.06560): OpenAI-ES (see :class:`~sb3_bierl.ES`)
    on a meta-population of ``n_members`` policies that seek both reward and novelty.

    - Each member is an OpenAI-ES state (its own parameters and Adam); member 0 starts from the
      policy's initialisation, the others from fresh initialisations of the same network (with
      ``zero_policy``: from one noise perturbation of zero each). They share one observation
      normalisation.
    - A behaviour descriptor summarises each episode; an archive holds the descriptor of every
      member centre ever evaluated, seeded with the members' initial ones (at the first generation).
      The novelty of a behaviour is its mean distance to its ``k_nearest`` neighbours in the archive.
    - Each generation, one member is drawn with probability proportional to its novelty, and
      ``self.strategy`` is set to it (so the ES machinery, and a meta level, act on it). Its antithetic
      population is rolled out; each candidate's fitness is
      ``(1 - novelty_weight) * ranks(return) + novelty_weight * ranks(novelty)``, with centred ranks.
      After the member's ES step, its new centre plays one episode: its descriptor joins the archive
      and its return becomes the member's recent return. All these steps count in ``num_timesteps``.
    - ``predict`` and ``save`` use the member with the best recent return; between generations
      ``self.strategy`` is that member.
    - With ``adaptive_novelty_weight`` (NSRA-ES, see :class:`NSRAES`), the weight adapts: it decreases by
      ``novelty_weight_delta`` whenever a member's new centre reaches a new best return and increases by
      as much after ``stagnation_generations`` generations without one.

    ``novelty_weight`` is the share of novelty (Conti et al.'s ``w``, the share of reward, is
    ``1 - novelty_weight``). A meta level may set it each generation (``adaptable_hyperparameters``);
    values outside [0, 1] are clipped.

    :param policy: ``"MlpPolicy"``, ``"LinearPolicy"`` or an ESPolicy subclass
    :param env: The environment to learn from (an id, a gymnasium env or a VecEnv)
    :param n_members: Number of policies in the meta-population (Conti et al.: 5)
    :param k_nearest: Neighbours averaged by the novelty (Conti et al.: 10)
    :param novelty_weight: Share of novelty in the fitness, in [0, 1] (the initial one if adaptive)
    :param adaptive_novelty_weight: Adapt the weight as NSRA-ES does
    :param novelty_weight_delta: Step of the adaptive weight
    :param stagnation_generations: Generations without a new best return before the adaptive weight grows
    :param behaviour_descriptor: ``fn(env, final_observation) -> (D,) array``, called at the end of each
        episode; None for :func:`~sb3_bierl.evaluation.default_behaviour_descriptor` (final x, y of the
        body on MuJoCo and Box2D, the final observation elsewhere)
    :param kwargs: Other arguments of :class:`~sb3_bierl.ES` (``n_pairs``, ``sigma``, ``learning_rate``, ...)
    """

    adaptable_hyperparameters: ClassVar[tuple[str, ...]] = (*ES.adaptable_hyperparameters, "novelty_weight")
    #: Several centres (members), each with its own last step
    supports_last_step_pair: ClassVar[bool] = False

    def __init__(
        self,
        policy: str | type[ESPolicy],
        env: GymEnv | str | None,
        n_members: int = 5,
        k_nearest: int = 10,
        novelty_weight: float = 0.5,
        adaptive_novelty_weight: bool = False,
        novelty_weight_delta: float = 0.05,
        stagnation_generations: int = 10,
        behaviour_descriptor: DescriptorFn | None = None,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        check_at_least_one(n_members=n_members, k_nearest=k_nearest)
        # the adaptation's own checks (delta, patience), and the weight in [0, 1]
        check_novelty_weight(novelty_weight)
        AdaptiveNoveltyWeight(novelty_weight, novelty_weight_delta, stagnation_generations)
        if behaviour_descriptor is not None and not callable(behaviour_descriptor):
            raise ValueError(
                f"behaviour_descriptor must be a function fn(env, final_observation) -> (D,) array, or None, "
                f"got {behaviour_descriptor!r}"
            )
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        self.n_members = n_members
        self.k_nearest = k_nearest
        self.novelty_weight = float(novelty_weight)
        self.adaptive_novelty_weight = adaptive_novelty_weight
        self.novelty_weight_delta = novelty_weight_delta
        self.stagnation_generations = stagnation_generations
        self.behaviour_descriptor = behaviour_descriptor
        if self.env is not None:
            check_behaviour_descriptor(self.descriptor_fn, make_env_factory(self.env))
        # Training state, saved with the model (built by _setup_model for a new model)
        self.members: list[OpenAIES] | None = None
        self.member_returns: np.ndarray | None = None
        self.member_descriptors: np.ndarray | None = None
        self.current_member = 0
        self.archive: NoveltyArchive | None = None
        self.novelty_weight_schedule: AdaptiveNoveltyWeight | None = None
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ set-up
    def _setup_model(self) -> None:
        super()._setup_model()
        if self.members is None:  # a new model, not one being loaded
            self.members = [self.strategy] + [
                OpenAIES(self._initial_member_vector(), weight_decay=self.weight_decay)
                for _ in range(1, self.n_members)
            ]
            self.member_returns = np.full(self.n_members, np.nan)
            self.archive = NoveltyArchive(self.k_nearest)
            if self.adaptive_novelty_weight:
                self.novelty_weight_schedule = AdaptiveNoveltyWeight(
                    self.novelty_weight, self.novelty_weight_delta, self.stagnation_generations
                )
        self.sync_policy()

    def _initial_member_vector(self) -> np.ndarray:
        if self.zero_policy:  # zero networks all behave alike: spread them by one perturbation each
            index = self.noise.sample_indices(self.rng, 1, self.n_params)[0]
            return self.sigma * self.noise.get(index, self.n_params).astype(np.float64)
        network = self.policy_class(self.observation_space, self.action_space, **self.policy_kwargs)
        return parameters_to_vector(network.parameters()).detach().cpu().numpy().astype(np.float64)

    @property
    def descriptor_fn(self) -> DescriptorFn:
        """The behaviour descriptor in use"""
        return default_behaviour_descriptor if self.behaviour_descriptor is None else self.behaviour_descriptor

    def rollout_options(self) -> dict[str, Any]:
        return {**super().rollout_options(), "descriptor_fn": self.descriptor_fn}

    @property
    def best_member(self) -> int:
        """Index of the member with the best recent centre return (0 before any is measured)"""
        returns = self.member_returns
        if returns is None:
            return 0
        return int(np.argmax(np.where(np.isfinite(returns), returns, -np.inf)))

    def sync_policy(self) -> None:
        """Make the best member the model's strategy, and copy it and the observation statistics into the policy."""
        if self.members is not None:
            self.strategy = self.members[self.best_member]
        super().sync_policy()

    # ------------------------------------------------------------------ one generation
    @property
    def current_novelty_weight(self) -> float:
        """The configured novelty weight (NSRA-ES: its adapted value)"""
        schedule = self.novelty_weight_schedule
        return self.novelty_weight if schedule is None else schedule.weight

    def scheduled_hyperparameters(self) -> dict[str, float]:
        return {**super().scheduled_hyperparameters(), "novelty_weight": float(self.current_novelty_weight)}

    def seed_archive(self) -> None:
        """Evaluate every member's centre (one common episode) and archive their descriptors."""
        self.evaluate_centres(np.stack([member.theta for member in self.members]), CENTRE_EPISODES)
        rollout = self.last_centre_rollout
        self.member_returns = rollout.returns.astype(np.float64).copy()
        self.member_descriptors = rollout.descriptors.copy()
        self.archive.add(self.member_descriptors)
        if self.novelty_weight_schedule is not None and np.isfinite(self.member_returns).any():
            self.novelty_weight_schedule.best_reward = float(np.nanmax(self.member_returns))

    def select_member(self) -> int:
        """Draw the member to update, with probability proportional to its novelty."""
        return select_by_novelty(self.archive.novelty(self.member_descriptors), self.rng)

    def novelty_update(
        self, strategy: OpenAIES, population: Population, rollout: RolloutResult, hyperparameters: dict[str, float]
    ) -> bool:
        """One ES step of ``strategy`` on the mix of reward and novelty ranks. :return: False if no return was finite."""
        returns = finite_or_worst(rollout.returns)
        if returns is None:
            warnings.warn("Every candidate returned NaN or inf: skipping this update")
            return False
        novelty = self.archive.novelty(rollout.descriptors)
        weight = float(np.clip(hyperparameters["novelty_weight"], 0.0, 1.0))
        utilities = combined_fitness(returns, novelty, weight)
        strategy.weight_decay = hyperparameters["weight_decay"]
        strategy.tell(self.noise, population, utilities, hyperparameters["learning_rate"], shaped=True)
        return True

    def record_member(self, centre_rollout: RolloutResult, index: int) -> None:
        """The current member's new centre was rolled out as ``centre_rollout[index]``: archive its
        descriptor, keep its return, and adapt the novelty weight (NSRA-ES)."""
        descriptor = centre_rollout.descriptors[index]
        centre_return = float(centre_rollout.returns[index])
        self.member_descriptors[self.current_member] = descriptor
        self.member_returns[self.current_member] = centre_return
        self.archive.add(descriptor)
        if self.novelty_weight_schedule is not None:
            self.novelty_weight_schedule.update(centre_return)

    def _generation_state(self) -> dict[str, Any]:
        """:return: ES's, every member (a generation steps the one it draws), the archive and the members' records"""
        return {
            **super()._generation_state(),
            "members": [(member, member.copy()) for member in self.members],
            "records": copy.deepcopy(self._member_records()),
        }

    def _restore_generation_state(self, state: dict[str, Any]) -> None:
        super()._restore_generation_state(state)
        for member, saved in state["members"]:
            member.__dict__.update(saved.__dict__)  # in place: the strategy is one of them
        records = copy.deepcopy(state["records"])
        self.member_returns, self.member_descriptors, self.current_member, self.archive = records[:4]
        self.novelty_weight_schedule = records[4]

    def _member_records(self) -> tuple[Any, ...]:
        """:return: the members' returns and descriptors, the member drawn, the archive, the novelty weight schedule"""
        members = (self.member_returns, self.member_descriptors, self.current_member)
        return (*members, self.archive, self.novelty_weight_schedule)

    def start_generation(self) -> None:
        """Seed the archive (first generation), then draw the member to update and make it the strategy."""
        if self.member_descriptors is None:
            self.seed_archive()
            if self._stop_training:
                return
        self.current_member = self.select_member()
        self.strategy = self.members[self.current_member]

    def update_step(
        self, strategy: OpenAIES, population: Population, rollout: RolloutResult, hyperparameters: dict[str, float]
    ) -> None:
        """The step on the mix of reward and novelty (a generation's, or a meta trial's, common noise and episodes)."""
        self.novelty_update(strategy, population, rollout, hyperparameters)

    def finish_step(self) -> None:
        """Roll out the member's new centre: its descriptor joins the archive, its return is kept."""
        self.evaluate_centres(self.strategy.theta[None], CENTRE_EPISODES)
        self.record_member(self.last_centre_rollout, 0)

    def dump_logs(self) -> None:
        if self.archive is not None:
            self.logger.record("train/member", self.current_member)
            self.logger.record("train/archive_size", len(self.archive))
        if self.member_returns is not None and np.isfinite(self.member_returns).any():
            self.logger.record("rollout/best_member_return", float(np.nanmax(self.member_returns)))
        super().dump_logs()


class NSRAES(NSRES):
    """
    NSRA-ES (Conti et al. 2018): :class:`NSRES` with the adaptive novelty weight, starting from
    pure reward (``novelty_weight=0``, Conti et al.'s ``w = 1``). See :class:`NSRES` for the parameters.
    """

    def __init__(
        self,
        policy: str | type[ESPolicy],
        env: GymEnv | str | None,
        novelty_weight: float = 0.0,
        adaptive_novelty_weight: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            policy, env, novelty_weight=novelty_weight, adaptive_novelty_weight=adaptive_novelty_weight, **kwargs
        )


# ---------------------------------------------------------------------- input checks
def check_novelty_weight(novelty_weight: float) -> None:
    if not isinstance(novelty_weight, (int, float, np.floating, np.integer)) or not 0.0 <= novelty_weight <= 1.0:
        raise ValueError(
            f"novelty_weight must be a number in [0, 1] (the share of novelty in the fitness), got {novelty_weight!r}"
        )


def check_behaviour_descriptor(descriptor_fn: DescriptorFn, make_env: Any) -> None:
    """Call ``descriptor_fn`` once on a fresh environment and raise a clear error unless it returns a
    non-empty, finite 1-D array."""
    env = make_env()
    try:
        observation, _ = env.reset(seed=0)
        descriptor = descriptor_fn(env, observation)
    finally:
        env.close()
    try:
        array = np.asarray(descriptor, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
        if array is None:
            shape = "no array"
        else:
            shape = f"shape {array.shape}" + ("" if np.all(np.isfinite(array)) else " with NaN or inf")
        raise ValueError(
            f"behaviour_descriptor must return a non-empty 1-D array of finite numbers, e.g. np.array([x, y]); "
            f"it returned {shape} on a fresh environment. Flatten it (np.ravel) or select the components you "
            "need, or pass behaviour_descriptor=None for the default (final x, y or final observation)."
        )
