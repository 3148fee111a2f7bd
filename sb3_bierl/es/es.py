"""OpenAI-ES as a Stable-Baselines3 algorithm."""

import os
import pathlib
import sys
import time
import warnings
import zipfile
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm, maybe_make_env
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import safe_mean
from stable_baselines3.common.vec_env import VecEnv
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from sb3_bierl.es.callbacks import ESProgressBarCallback, StepLocals, episode_infos, find_callback
from sb3_bierl.es.env_checks import cpu_device, warn_no_time_limit, wrap_env
from sb3_bierl.es.monitor_log import find_monitor, log_episodes
from sb3_bierl.es.policies import ESPolicy, LinearPolicy, MlpPolicy
from sb3_bierl.evaluation import (
    DEFAULT_MAX_EPISODE_STEPS,
    InProcessEvaluator,
    PopulationEvaluator,
    ProcessEvaluator,
    RolloutResult,
    has_time_limit,
    make_env_factory,
    merge_antithetic,
)
from sb3_bierl.evaluation.quiet_mujoco import silence_mujoco_deprecations_for
from sb3_bierl.strategies import DirectedPairs, NoiseTable, OpenAIES, Population, finite_or_worst, merge_populations

SelfES = TypeVar("SelfES", bound="ES")

BACKENDS = ("auto", "inprocess", "processes", "ray")
#: With ``backend="auto"``, seconds of rollouts run in this process before worker processes start
AUTO_LOCAL_SECONDS = 1.0


def usable_cpus() -> int:
    """:return: the number of cores this process may run on"""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@lru_cache(maxsize=4)
def shared_noise_table(size: int, seed: int) -> NoiseTable:
    """One noise table per (size, seed) in this process, shared by all models."""
    return NoiseTable(size, seed)


class ES(BaseAlgorithm):
    """
    OpenAI-ES (Salimans et al. 2017, https://arxiv.org/abs/1703.03864): antithetic Gaussian
    perturbations from a shared noise table, centred ranks, Adam, weight decay, running
    observation normalisation. The whole population is rolled out together, with one batched
    forward pass per environment step.

    :param policy: ``"MlpPolicy"``, ``"LinearPolicy"`` or an :class:`~sb3_bierl.es.policies.ESPolicy` subclass
    :param env: The environment to learn from (an id, a gymnasium env or a VecEnv)
    :param n_pairs: Antithetic pairs per generation (population size ``2 * n_pairs``)
    :param sigma: Standard deviation of the parameter noise
    :param learning_rate: Adam step size (float or schedule of the remaining progress)
    :param weight_decay: L2 coefficient on the parameters
    :param n_eval_episodes: Episodes per candidate; its fitness is their mean return
    :param max_episode_steps: Episode length (steps) at which the population's rollouts are cut, for an
        environment with no ``TimeLimit`` of its own (a warning says so at construction); an environment's
        own time limit always applies
    :param alive_bonus_offset: Added to every reward during training, to cancel alive bonuses (as ARS)
    :param zero_policy: Start from all-zero weights (as ARS) instead of PyTorch's initialisation
    :param noise_table_size: Number of float32 values in the shared noise table
    :param noise_seed: Seed of the shared noise table
    :param n_workers: Workers that run the rollouts, each stepping a slice of the population;
        ``None``: the number of usable cores (``os.sched_getaffinity``). Workers start on the
        first rollout and stay up until :meth:`close`, an error in ``learn``, or garbage
        collection (same results for the same seed and worker count, on every backend)
    :param backend: ``"auto"`` (in this process if ``n_workers == 1``, else worker processes,
        started only once the rollouts have taken ``AUTO_LOCAL_SECONDS`` in this process, so that
        short runs do not pay for them), ``"inprocess"``, ``"processes"`` or ``"ray"`` (Ray actors;
        ``pip install ".[ray]" in a checkout of sb3-bierl``; Ray and the actors start in the background
        while the first rollouts run in this process)
    :param ray_address: Address of the Ray cluster to join (default: ``RAY_ADDRESS``, else a local Ray)
    :param policy_kwargs: Keyword arguments for the policy
    :param stats_window_size: Episodes averaged for ``rollout/ep_rew_mean``
    :param tensorboard_log: Tensorboard log directory
    :param seed: Random seed
    :param verbose: 0 no output, 1 info, 2 debug
    :param device: ES runs on the CPU: another device gives one warning and is ignored
    :param last_step_pair: Each generation whose centre has a last step (all but a new model's first), roll out one
        more antithetic pair along that step's direction (``theta +- sigma * sqrt(n) * last_step / ||last_step||``,
        at the generation's sigma, on one shared set of episode seeds) and rank it with the population's pairs in the
        gradient estimate (a rank-based version of Meier et al. 2019, "Improving Gradient Estimation in Evolutionary
        Strategies With Past Descent Directions"; :meth:`roll_out_last_step_pair`). Its ``2 * n_eval_episodes``
        episodes per generation count in ``num_timesteps``; a meta level may read its returns (``BiERL(meta="tpa")``
        takes them as its two points, at no extra step). A generation a meta level takes itself (BiERL's meta update
        of ``meta="lstm"``, ``"mean"``, ``"optuna"``) has none. OpenAI-ES only (not NSR-ES, ESAC)
    :param _init_setup_model: Whether to build the network at creation
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": MlpPolicy, "LinearPolicy": LinearPolicy}
    policy: ESPolicy
    #: Hyperparameters a meta level may set each generation (keys of ``self.hyperparameters``)
    adaptable_hyperparameters: ClassVar[tuple[str, ...]] = ("sigma", "learning_rate", "weight_decay")
    #: Whether the generation can take ``last_step_pair`` (one centre whose last step is the generation's own)
    supports_last_step_pair: ClassVar[bool] = True

    def __init__(
        self,
        policy: str | type[ESPolicy],
        env: GymEnv | str | None,
        n_pairs: int = 16,
        sigma: float = 0.02,
        learning_rate: float | Schedule = 0.01,
        weight_decay: float = 0.005,
        n_eval_episodes: int = 1,
        max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
        alive_bonus_offset: float = 0.0,
        zero_policy: bool = False,
        noise_table_size: int = 2**24,
        noise_seed: int = 123,
        n_workers: int | None = None,
        backend: str = "auto",
        ray_address: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        seed: int | None = None,
        verbose: int = 0,
        device: th.device | str = "cpu",
        last_step_pair: bool = False,
        _init_setup_model: bool = True,
    ):
        check_at_least_one(n_pairs=n_pairs, n_eval_episodes=n_eval_episodes, max_episode_steps=max_episode_steps)
        if n_workers is not None:
            check_at_least_one(n_workers=n_workers)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        check_positive(sigma=sigma, noise_table_size=noise_table_size)
        if not callable(learning_rate):
            check_positive(learning_rate=learning_rate)
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if env is not None:
            if isinstance(env, str):
                silence_mujoco_deprecations_for(env)
            env = maybe_make_env(env, verbose)
            check_observation_space(env.observation_space)
            if not has_time_limit(env):
                warn_no_time_limit(max_episode_steps)
        device = cpu_device(device)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
            supported_action_spaces=(spaces.Box, spaces.Discrete),
        )
        self.n_pairs = n_pairs
        self.sigma = sigma
        self.weight_decay = weight_decay
        self.n_eval_episodes = n_eval_episodes
        self.max_episode_steps = max_episode_steps
        self.alive_bonus_offset = alive_bonus_offset
        self.last_step_pair = bool(last_step_pair)
        self.check_last_step_pair()
        self.zero_policy = zero_policy
        self.noise_table_size = noise_table_size
        self.noise_seed = noise_seed
        self.n_workers = n_workers
        self.backend = backend
        self.ray_address = ray_address
        self.algorithm_name = self._saved_algorithm_name()
        # Training state, saved with the model
        self.strategy: OpenAIES | None = None
        self.obs_rms: RunningMeanStd | None = None
        self.rng: np.random.Generator | None = None
        self.hyperparameters: dict[str, float] = {}
        self.last_rollout: RolloutResult | None = None
        self.last_centre_rollout: RolloutResult | None = None
        #: This generation's pair along the last step (``last_step_pair``), None before it is rolled out or without one
        self.last_pair: DirectedPairs | None = None
        self.generation_done = False
        # Runtime objects, rebuilt on load
        self.evaluator: PopulationEvaluator | None = None
        self._callback: BaseCallback | None = None
        self._stop_training = False
        if _init_setup_model:
            self._setup_model()

    @classmethod
    def _saved_algorithm_name(cls) -> str:
        """The name saved with the model, which ``load`` checks."""
        return cls.__name__

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        # every way in (constructor, set_env, load): ES's checks, and no VecTransposeImage
        return wrap_env(env, verbose, monitor_wrapper)

    def _get_policy_from_name(self, policy_name: str) -> type[BasePolicy]:
        if policy_name in self.policy_aliases:
            return self.policy_aliases[policy_name]
        raise ValueError(
            f"Policy {policy_name} unknown: {type(self).__name__} trains {' or '.join(self.policy_aliases)} (a population "
            "of small networks batched on the CPU; no CnnPolicy or MultiInputPolicy). For image observations use "
            "'MlpPolicy' on the pixels (SB3's preprocessing scales them to [0, 1]) or an ObservationWrapper that "
            "extracts features; flatten Dict observations with gymnasium.wrappers.FlattenObservation."
        )

    def _setup_model(self) -> None:
        check_observation_space(self.observation_space)
        self.check_last_step_pair()
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self.policy = self.policy_class(self.observation_space, self.action_space, **self.policy_kwargs)
        self.policy = self.policy.to(self.device)
        if not isinstance(self.policy, ESPolicy):
            raise TypeError(f"ES needs an ESPolicy (got {type(self.policy).__name__}): use 'MlpPolicy' or 'LinearPolicy'")
        self.noise = shared_noise_table(self.noise_table_size, self.noise_seed)
        if self.strategy is None:  # a new model, not one being loaded
            if self.zero_policy:
                vector_to_parameters(th.zeros(self.n_params), self.policy.parameters())
            self.strategy = OpenAIES(self._policy_vector(), weight_decay=self.weight_decay)
            self.obs_rms = RunningMeanStd(shape=(self.policy.features_dim,))  # preprocessed, flattened observations
            self.rng = np.random.default_rng(self.seed)
        self.sync_policy()
        self._make_evaluator()

    def check_last_step_pair(self) -> None:
        """:raises ValueError: if ``last_step_pair`` is asked of an algorithm whose generation cannot take it (also
        checked when a model is loaded with ``last_step_pair=True``)"""
        if getattr(self, "last_step_pair", False) and not self.supports_last_step_pair:
            raise ValueError(
                f"last_step_pair works with OpenAI-ES only (ES, BiERL with inner='es'), not {type(self).__name__}: "
                "leave it False"
            )

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.policy.parameters())

    def _policy_vector(self) -> np.ndarray:
        return parameters_to_vector(self.policy.parameters()).detach().cpu().numpy().astype(np.float64)

    def sync_policy(self) -> None:
        """Copy the ES centre and the observation statistics into the policy."""
        assert self.strategy is not None and self.obs_rms is not None
        vector_to_parameters(th.as_tensor(self.strategy.theta, dtype=th.float32), self.policy.parameters())
        self.policy.set_obs_statistics(self.obs_rms)

    def _make_evaluator(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()
        if self.env is None:
            self.evaluator = None
            return
        # envs with no time limit of their own: cut the population's episodes (old saves lack the attribute)
        cap = None if has_time_limit(self.env) else getattr(self, "max_episode_steps", DEFAULT_MAX_EPISODE_STEPS)
        env_fn = make_env_factory(self.env, cap)
        n_workers = usable_cpus() if self.n_workers is None else self.n_workers
        backend = self.backend
        if backend == "auto":
            backend = "processes" if n_workers > 1 else "inprocess"
        if backend == "inprocess":
            self.evaluator = InProcessEvaluator(env_fn)
        elif backend == "processes":
            local_until_s = AUTO_LOCAL_SECONDS if self.backend == "auto" else None
            self.evaluator = ProcessEvaluator(
                env_fn, n_workers, self.noise_table_size, self.noise_seed, local_until_s=local_until_s
            )
        else:
            from sb3_bierl.evaluation.ray_backend import RayEvaluator  # optional dependency

            # Ray and its actors start in the background (seconds) while the first chunks run here
            self.evaluator = RayEvaluator(
                env_fn, n_workers, self.noise_table_size, self.noise_seed, address=self.ray_address, local_until_s=0.0
            )

    def close(self) -> None:
        """Stop the rollout workers now (they restart on the next ``learn``); also done at garbage collection."""
        if self.evaluator is not None:
            self.evaluator.close()

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            *("evaluator", "noise", "_callback", "_step_locals", "last_rollout", "last_centre_rollout", "last_pair"),
        ]

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        self._make_evaluator()

    def set_parameters(self, load_path_or_dict: str | dict[str, Any], exact_match: bool = True, device: th.device | str = "auto") -> None:
        super().set_parameters(load_path_or_dict, exact_match, device)
        # New weights: re-centre the ES on them (unless they are the float32 copy of the centre)
        weights = self._policy_vector()
        if not np.array_equal(weights, self.strategy.theta.astype(np.float32)):
            self.strategy.theta = weights
            self.strategy.last_step = None  # a meta level must not rescale a step these weights did not take

    # ------------------------------------------------------------------ one generation
    def scheduled_hyperparameters(self) -> dict[str, float]:
        """The inner hyperparameters as configured (the meta level may override them)."""
        return {
            "sigma": float(self.sigma),
            "learning_rate": float(self.lr_schedule(self._current_progress_remaining)),
            "weight_decay": float(self.weight_decay),
        }

    def episode_seeds(self, n_candidates: int, n_episodes: int | None = None) -> np.ndarray:
        """Reset seeds: (n_candidates, n_episodes), shared by the two members of an antithetic pair."""
        n_episodes = self.n_eval_episodes if n_episodes is None else n_episodes
        return self.rng.integers(0, 2**31 - 1, size=(n_candidates, n_episodes))

    def evaluate_populations(
        self, populations: list[Population], centres: list[np.ndarray]
    ) -> list[RolloutResult]:
        """Roll out antithetic populations around the given centres (common random numbers)."""
        assert self.evaluator is not None
        n_pairs = populations[0].n_pairs
        seeds = np.tile(self.episode_seeds(n_pairs), (2, 1))
        results = self.evaluator.evaluate_population(
            self.policy, self.strategy, self.noise, populations, centres, seeds, self.alive_bonus_offset, **self.rollout_options()
        )
        for result in results:
            self._record_rollout(result)
        return results

    def evaluate_centres(self, centres: np.ndarray, n_episodes: int) -> np.ndarray:
        """Mean return of each parameter vector on the same episodes: :return: (len(centres),)"""
        assert self.evaluator is not None
        seeds = np.tile(self.episode_seeds(1, n_episodes), (len(centres), 1))
        result = self.evaluator.evaluate(self.policy, centres, seeds, self.alive_bonus_offset, **self.rollout_options())
        self._record_rollout(result)
        self.last_centre_rollout = result
        return result.returns

    def rollout_options(self) -> dict[str, Any]:
        """Extra outputs asked of every rollout (``descriptor_fn``, ``record_transitions``): none for ES."""
        return {}

    def _record_rollout(self, result: RolloutResult) -> None:
        """Merge observation statistics, log episodes and count steps (callbacks' ``on_step``)."""
        self.obs_rms.combine(result.obs_rms)
        lengths = result.episode_lengths.ravel()
        episodes = episode_infos(result.episode_returns.ravel() - self.alive_bonus_offset * lengths, lengths, self.start_time / 1e9)
        self._update_info_buffer([{"episode": episode} for episode in episodes])
        monitor = find_monitor(self.env)
        if monitor is not None:  # the user's Monitor file gets the training episodes, as with any SB3 algorithm
            log_episodes(monitor, [episode["r"] for episode in episodes], lengths)
        self.count_timesteps(result.n_steps, episodes)

    def count_timesteps(self, n_steps: int, episodes: list[dict] | None = None) -> None:
        """
        Add environment steps, calling the callbacks once per step so frequencies are in steps.

        :param n_steps: Steps taken
        :param episodes: The Monitor info (``"r"``, ``"l"``, ...) of the episodes those steps made, in order
            (their lengths add up to ``n_steps``): the last step of each is reported to the callbacks with
            ``locals["dones"] = [True]`` and ``locals["infos"] = [{"episode": ...}]``, as SB3 does
        """
        if self._callback is None or self._stop_training:
            self.num_timesteps += n_steps
            return
        ends = np.cumsum([episode["l"] for episode in episodes or []]).tolist()
        k = 0
        for done in range(1, n_steps + 1):
            self.num_timesteps += 1
            at_end = k < len(ends) and ends[k] == done
            if at_end:
                self._step_locals.episode_end(episodes[k])
                k += 1
            keep_going = self._callback.on_step()
            if at_end:
                self._step_locals.episode_end(None)
            if not keep_going:
                self._stop_training = True  # a callback asked to stop: count the rest silently
                self.num_timesteps += n_steps - done
                return

    def apply_update(
        self,
        strategy: OpenAIES,
        population: Population,
        returns: np.ndarray,
        hyperparameters: dict[str, float],
        directed: DirectedPairs | None = None,
    ) -> bool:
        """
        One ES step of ``strategy`` on the given returns, with the ``directed`` pairs' ranked among them (see
        :meth:`~sb3_bierl.strategies.OpenAIES.gradient`); a non-finite return ties with the worst finite one.

        :param strategy: The ES state to step
        :param population: The population the returns are of
        :param returns: (population.size,) its returns, "+" half first
        :param hyperparameters: The generation's ``learning_rate`` and ``weight_decay``
        :param directed: Pairs along given directions, rolled out at the same centre and sigma (``last_step_pair``)
        :return: False if no return of the population was finite (no step, with a warning)
        """
        returns = np.asarray(returns, dtype=np.float64)
        if not np.isfinite(returns).any():
            warnings.warn("Every candidate returned NaN or inf: skipping this update")
            return False
        extra = np.zeros(0) if directed is None else np.asarray(directed.returns, dtype=np.float64)
        clean = finite_or_worst(np.concatenate([returns, extra]))
        if directed is not None:
            clean, directed = clean[: returns.size], DirectedPairs(directed.directions, clean[returns.size :])
        strategy.weight_decay = hyperparameters["weight_decay"]
        strategy.tell(self.noise, population, clean, hyperparameters["learning_rate"], directed=directed)
        return True

    def roll_out_last_step_pair(self) -> DirectedPairs | None:
        """
        ``last_step_pair``'s rollout: the antithetic pair ``theta +- sigma * d``, ``d = sqrt(n) * last_step /
        ||last_step||`` (a perturbation's typical length along the last step), at this generation's sigma, on one
        shared set of ``n_eval_episodes`` episode seeds.

        :return: the pair and its returns, or None when the centre has no last step to follow (a new model, or a
            zero or non-finite step)
        """
        strategy = self.strategy
        unit = strategy.last_step_unit()
        if unit is None:
            return None
        direction = unit * np.sqrt(strategy.dim)
        sigma = float(self.hyperparameters["sigma"])
        returns = self.evaluate_centres(
            np.stack([strategy.theta + sigma * direction, strategy.theta - sigma * direction]), self.n_eval_episodes
        )
        return DirectedPairs(direction[None, :], returns)

    # ------------------------------------------------------------------ the meta level's view
    def meta_generation(
        self, hyperparameters: dict[str, float], candidates: list[dict[str, float]], share_noise: bool = False
    ) -> np.ndarray:
        """
        One inner generation whose population is shared among meta candidates, so that their truncated
        fitness costs no extra step (the meta level's view of the inner algorithm; README, "How the code maps onto the paper"):

        1. the last inner step is redone with ``hyperparameters["learning_rate"]`` (the meta level's
           own choice): the centre is ``theta``;
        2. candidate ``j`` rolls out ``n_pairs // len(candidates)`` antithetic pairs at its own sigma,
           around the centre its learning rate gives the last step; every candidate shares the episode seeds
           (common random numbers); with ``share_noise``, candidates ``2k`` and ``2k + 1`` (an antithetic meta
           pair) share their noise too, so that the inner step sees half as many distinct directions; pairs
           left over go to ``hyperparameters`` at the centre;
        3. every pair then makes this generation's inner step (each pair's gradient estimate uses its own
           sigma), with ``hyperparameters``.

        The meta level scores each candidate from its returns (``sb3_bierl.meta.fitness``).

        :param hyperparameters: The generation's full hyperparameters (the meta level's own proposal)
        :param candidates: Full hyperparameters of each meta candidate; at most ``n_pairs`` of them
        :param share_noise: Whether an antithetic meta pair shares its inner noise (common random numbers for
            a fitness whose noise is first-order in the perturbation; the pair's mean cancels that term)
        :return: (len(candidates), 2 * (n_pairs // len(candidates))) the returns of each candidate's pairs,
            "+" half first (as rolled out: non-finite returns are left as they are)
        :raises ValueError: if there are more candidates than pairs
        """
        n_candidates = len(candidates)
        if not 1 <= n_candidates <= self.n_pairs:
            raise ValueError(f"{n_candidates} meta candidates for {self.n_pairs} pairs: give at most n_pairs candidates")
        strategy = self.strategy
        self.last_pair = None  # a generation shared among meta candidates has no pair along the last step
        strategy.rescale_last_step(hyperparameters["learning_rate"])
        per_candidate = self.n_pairs // n_candidates
        populations, centres = [], []
        for index, h in enumerate(candidates):
            if index % 2 == 0 or not share_noise:
                directions = strategy.ask(self.noise, self.rng, per_candidate, sigma=1.0)
            populations.append(Population(directions.noise_indices, h["sigma"]))
            centres.append(strategy.stepped_centre(h["learning_rate"]))
        results = self.evaluate_populations(populations, centres)
        leftover = self.n_pairs - per_candidate * n_candidates
        if leftover:
            populations.append(strategy.ask(self.noise, self.rng, leftover, hyperparameters["sigma"]))
            results += self.evaluate_populations(populations[-1:], [strategy.theta])
        candidate_returns = np.stack([result.returns for result in results[:n_candidates]])
        merged = merge_antithetic(results)
        self.hyperparameters = dict(hyperparameters)
        self.update_step(strategy, merge_populations(populations), merged, self.hyperparameters)
        self.last_rollout = merged
        self.generation_done = True
        self.finish_step()
        return candidate_returns

    # ------------------------------------------------------------------ steps of a generation (subclass hooks)
    def start_generation(self) -> None:
        """Before the hyperparameters are set (NSR-ES picks its member here); may stop training."""

    def update_step(
        self, strategy: OpenAIES, population: Population, rollout: RolloutResult, hyperparameters: dict[str, float]
    ) -> None:
        """The ES step of ``strategy`` on a rolled-out population (a generation's, or a meta trial's), with the
        generation's pair along the last step (:attr:`last_pair`) if it has one."""
        self.apply_update(strategy, population, rollout.returns, hyperparameters, self.last_pair)

    def finish_step(self) -> None:
        """After this generation's own step, not after an adopted meta trial (NSR-ES archives the new centre)."""

    def _do_generation(self) -> None:
        callback = self._callback
        self.start_generation()
        if self._stop_training:
            return
        self.hyperparameters = self.scheduled_hyperparameters()
        self.generation_done = False
        self.last_pair = None
        # A callback may set self.hyperparameters here, or take the generation itself: then it sets
        # self.strategy, self.last_rollout, self.hyperparameters and self.generation_done = True
        steps = self.num_timesteps
        callback.on_rollout_start()
        if self._stop_training and self.num_timesteps == steps:
            return  # stopped before any of the generation's steps
        # a stop asked during steps the generation's start took (a meta update, a meta level's own episodes) lets the
        # generation end as one asked during its population does: whole, the rest of its steps counted silently
        if not self.generation_done:
            if self.last_step_pair:
                self.last_pair = self.roll_out_last_step_pair()
            population = self.strategy.ask(self.noise, self.rng, self.n_pairs, self.hyperparameters["sigma"])
            (result,) = self.evaluate_populations([population], [self.strategy.theta])
            self.update_step(self.strategy, population, result, self.hyperparameters)
            self.last_rollout = result
            self.finish_step()
        self.sync_policy()
        self._n_updates += 1
        callback.on_rollout_end()

    def _do_generation_or_roll_back(self) -> None:
        """
        One generation, as a whole or not at all: if it raises (Ctrl-C, a worker's error, a callback), the ES
        state (centre, optimiser, last step; NSR-ES: every member and the archive), the generator of episode seeds and
        the update count are those of the end of the last completed generation (a meta level may have moved the centre
        at the generation's start), and so are the observation statistics the policy normalises with (the rolled-back
        generation's observations are not in them), and BiERL's meta level (:meth:`roll_back_meta_level`): resumed
        with ``learn(..., reset_num_timesteps=False)``, the run goes on as if never interrupted. Steps taken are still
        counted; ESAC's SAC keeps what it learned.
        """
        saved = self._generation_state()
        rng_state, n_updates = self.rng.bit_generator.state, self._n_updates
        obs_rms = self.obs_rms.copy()
        try:
            self._do_generation()
        except BaseException:
            self._restore_generation_state(saved)
            self.rng.bit_generator.state = rng_state
            self._n_updates = n_updates
            self.obs_rms = obs_rms
            self.roll_back_meta_level()
            raise

    def _generation_state(self) -> dict[str, Any]:
        """:return: what a generation changes of the inner state (what :meth:`_restore_generation_state` reads)"""
        return {"strategy": (self.strategy, self.strategy.copy())}

    def _restore_generation_state(self, state: dict[str, Any]) -> None:
        """Go back to a :meth:`_generation_state`: strategies are restored in place (other references see it)."""
        strategy, saved = state["strategy"]
        strategy.__dict__.update(saved.__dict__)
        self.strategy = strategy

    def roll_back_meta_level(self) -> None:
        """After a rolled-back generation: a meta level goes back to its state at that generation's start (none)."""

    # ------------------------------------------------------------------ learn
    def learn(
        self: SelfES,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "ES",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfES:
        """
        Train for ``total_timesteps`` environment steps (every step of every candidate counts).

        :param total_timesteps: The total number of environment steps to train on
        :param callback: Callback(s) called at every environment step
        :param log_interval: Generations between two log dumps
        :param tb_log_name: Name of the run for TensorBoard logging
        :param reset_num_timesteps: Whether to reset the step counter (False to continue training)
        :param progress_bar: Display a progress bar using tqdm and rich
        :return: the trained model
        """
        if self.env is None:
            raise ValueError("This model has no environment: pass env= to load() or call set_env() before learn()")
        total_steps, callback = self._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        self._callback, self._stop_training = callback, False
        callback.on_training_start(locals(), globals())
        self._step_locals = StepLocals()
        self._step_locals.attach(callback)
        bar = find_callback(callback, ESProgressBarCallback)
        if bar is not None and isinstance(self.evaluator, InProcessEvaluator):
            self.evaluator.progress = bar.advance  # the bar follows each rollout while it runs
        try:
            while self.num_timesteps < total_steps and not self._stop_training:
                self._update_current_progress_remaining(self.num_timesteps, total_steps)
                self._do_generation_or_roll_back()
                if log_interval is not None and self._n_updates % log_interval == 0:
                    self.dump_logs()
        except BaseException:
            self.close()  # a failed or interrupted learn() leaves no workers behind (the next one restarts them)
            raise
        finally:
            self.sync_policy()
            self._callback = None
            if isinstance(self.evaluator, InProcessEvaluator):
                self.evaluator.progress = None
        callback.on_training_end()
        return self

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        # SB3's, with a progress bar that follows a rollout while it runs and ends at the real step count
        if isinstance(callback, list):
            callback = CallbackList(callback)
        if not isinstance(callback, BaseCallback):
            callback = ConvertCallback(callback)
        if progress_bar:
            callback = CallbackList([callback, ESProgressBarCallback()])
        callback.init_callback(self)
        return callback

    def dump_logs(self) -> None:
        """Write the generation's statistics to the logger."""
        time_elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / time_elapsed)
        if len(self.ep_info_buffer) > 0:
            self.logger.record("rollout/ep_rew_mean", safe_mean([ep["r"] for ep in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([ep["l"] for ep in self.ep_info_buffer]))
        if self.last_rollout is not None:
            finite = self.last_rollout.returns[np.isfinite(self.last_rollout.returns)]  # NaN returns are handled, not logged
            if finite.size:
                self.logger.record("rollout/population_return_mean", float(finite.mean()))
                self.logger.record("rollout/population_return_max", float(finite.max()))
        for name, value in self.hyperparameters.items():
            self.logger.record(f"train/{name}", value)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(time_elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    # ------------------------------------------------------------------ save / load
    @classmethod
    def load(cls, path: str | pathlib.Path | Any, env: GymEnv | str | None = None, device: th.device | str = "cpu", **kwargs: Any) -> Any:  # type: ignore[override]
        """
        Load a model saved with ``save``. ``env`` may be an environment id.

        :raises ValueError: if ``path`` is not a model saved by this class
        """
        check_saved_model(path, cls._saved_algorithm_name())
        if isinstance(env, str):
            env = maybe_make_env(env, verbose=0)
        return super().load(path, env=env, device=device, **kwargs)


# ---------------------------------------------------------------------- input checks
def check_at_least_one(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_positive(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def check_observation_space(space: spaces.Space) -> None:
    if isinstance(space, (spaces.Dict, spaces.Tuple)):
        raise ValueError(
            f"{type(space).__name__} observation spaces are not supported: flatten them first, "
            "e.g. with gymnasium.wrappers.FlattenObservation."
        )


def check_saved_model(path: str | pathlib.Path | Any, algorithm_name: str) -> dict[str, Any] | None:
    """
    Raise a clear error unless ``path`` is a zip file written by ``<algorithm_name>.save``.

    :return: the saved data (None for a file-like object, left for SB3 to read)
    """
    if not isinstance(path, (str, pathlib.Path)):
        return None  # file-like objects: let SB3 read them
    path = resolve_zip_path(path)
    if not path.exists():
        raise FileNotFoundError(f"No saved model at {os.fspath(path)!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{os.fspath(path)!r} is not a saved sb3-bierl model: expected the .zip written by model.save()")
    try:
        data, _, _ = load_from_zip_file(path, load_data=True, device="cpu")
    except Exception as error:
        raise ValueError(f"{os.fspath(path)!r} is not a readable saved model: {error}") from error
    saved = (data or {}).get("algorithm_name")
    if saved is None:
        raise ValueError(f"{os.fspath(path)!r} was not saved by sb3-bierl (no algorithm name): load it with the class that saved it")
    if saved != algorithm_name:
        raise ValueError(f"{os.fspath(path)!r} holds a {saved} model: load it with {saved}.load()")
    return data


def resolve_zip_path(path: str | pathlib.Path) -> pathlib.Path:
    """``path``, or ``path.zip`` if only that exists (as SB3's ``load`` does)."""
    path = pathlib.Path(path)
    if not path.exists() and path.with_suffix(".zip").exists():
        return path.with_suffix(".zip")
    return path
