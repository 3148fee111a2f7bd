"""ESAC: OpenAI-ES over the actor of an SB3 SAC, with a shared replay buffer (Suri et al. 2020)."""

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from torch import nn

from sb3_bierl.es.es import ES, check_at_least_one, check_positive
from sb3_bierl.es.policies import ESPolicy
from sb3_bierl.evaluation import RolloutResult
from sb3_bierl.evaluation.base import Transitions
from sb3_bierl.strategies.optimizers import Adam

SelfESAC = TypeVar("SelfESAC", bound="ESAC")

DEFAULT_NET_ARCH = [256, 256]
#: SAC arguments that ESAC sets itself, or that would break the actor <-> ES policy mapping or the buffer writes
RESERVED_SAC_KWARGS = (
    "policy",
    "env",
    "buffer_size",
    "learning_starts",
    "batch_size",
    "seed",
    "device",
    "train_freq",
    "gradient_steps",
    "action_noise",
    "replay_buffer_class",
    "replay_buffer_kwargs",
    "optimize_memory_usage",
    "n_steps",
    "use_sde",
    "sde_sample_freq",
    "use_sde_at_warmup",
    "_init_setup_model",
)


class ESAC(ES):
    """
    ESAC, Evolution-based Soft Actor-Critic (Suri et al. 2020, "Maximum Mutation Reinforcement
    Learning for Scalable Control", https://arxiv.org/abs/2007.13690): OpenAI-ES
    (see :class:`~sb3_bierl.ES`) over a policy that is, parameter for parameter, the deterministic
    actor of an SB3 :class:`~stable_baselines3.SAC` (``self.sac``), which learns from every
    environment step the ES takes.

    One generation:

    1. The ES step: ``2 * n_pairs`` antithetic candidates around the centre ``theta``, OpenAI-ES
       update (or, under the BiERL meta level, the meta trial adopted as the generation).
    2. Automatic mutation tuning (AMT, when ``sigma_adaptation``): a success rule on the fraction
       ``p`` of candidates whose return beats the centre's (measured at the end of the previous
       generation): ``sigma <- sigma * exp(rate * (p - target) / (1 - target))``, with
       ``rate = sigma_adaptation_rate`` and ``target = target_success_rate``, clipped to ``sigma_bounds``.
       Mutations grow as long as more than ``target_success_rate``
       of them still improve on the centre (the "maximum mutation" of the paper), and shrink
       otherwise. AMT is off for a generation whose ``sigma`` was set by a callback (the BiERL meta
       level), or whose step was a meta trial, and whenever ``adapt_sigma_automatically`` is False.
    3. SAC trains ``gradient_steps_ratio`` gradient steps per environment step taken since its last
       training (the remainder carries over), once its buffer holds ``learning_starts`` transitions.
    4. The new centre, the ``n_elites`` elites and, every ``injection_interval`` generations (once SAC
       has trained), SAC's deterministic actor are evaluated on ``n_eval_episodes`` common episodes.
       Injection: if SAC's actor beats the centre, it replaces the centre (Adam's moments are reset,
       they estimated the gradient at the old centre). Elitism: the elites become the
       ``n_elites`` best of {the elites, the centre, SAC's actor} on these episodes; they are
       re-evaluated every generation (so a lucky episode does not keep them forever) and their
       rollouts feed SAC's buffer with good behaviour. They do not move the centre.

    Every step (population, meta trials, centre, elites, SAC's actor) counts in ``num_timesteps``
    and goes into ``self.sac.replay_buffer``: actions scaled to [-1, 1], rewards without
    ``alive_bonus_offset``, ``terminated`` as SAC's done, truncations marked as timeouts (as SB3
    does with ``TimeLimit.truncated``); steps with a non-finite reward or observation are not stored.

    ``predict`` and ``save`` use the ES centre, as ES does (the elites are in ``self.elites``).
    ``save`` stores SAC's networks, optimisers and entropy coefficient with the model; like SB3,
    not its replay buffer (``model.sac.save_replay_buffer`` does): after ``load``, SAC trains
    again once the buffer holds ``learning_starts`` new transitions.

    The ES policy is an :class:`~sb3_bierl.es.policies.ESPolicy` with SAC's activation, tanh
    squashing and no observation normalisation (SAC has none), so that
    ``tanh(mu(latent_pi(obs)))`` rescaled to the action space is exactly its action
    (:meth:`sac_actor_vector`, :meth:`load_centre_into_sac_actor`).

    Defaults: SAC's ``[256, 256]`` ReLU networks (``[64, 64]`` learnt clearly less on Pendulum-v1 at equal
    steps and gradient steps). ``gradient_steps_ratio=0.1``: on one CPU thread SAC does about 80 such
    updates a second, while the ES rollouts of Pendulum-v1 run at over 10,000 steps a second, so SAC's
    usual ratio of 1 would make a run about 100 times slower than ES; at 0.1 a 30k-step Pendulum-v1 run takes
    under a minute on one core. Raise it when environment steps are expensive or a GPU trains SAC: on
    Pendulum-v1 (30k steps, seed 0, deterministic return over 10 episodes) plain ES reached -1119,
    ESAC -847 with 0.1 (2,780 SAC updates) and -118 with 0.5 (13,900 updates, about 3.5 times the time).

    Same seed -> same result: SAC samples its minibatches and actions from the global ``numpy`` and
    ``torch`` generators, so each training call runs with them seeded from this model's generator
    (and restored afterwards); SAC's networks are initialised with ``seed + 1``.

    :param policy: ``"MlpPolicy"`` (or an :class:`~sb3_bierl.es.policies.ESPolicy` subclass with the same layers)
    :param env: The environment to learn from (an id, a gymnasium env or a VecEnv); continuous (Box) actions only
    :param n_elites: Best parameter vectors kept and re-evaluated every generation (0: none)
    :param injection_interval: Generations between two evaluations of SAC's actor against the centre
    :param gradient_steps_ratio: SAC gradient steps per environment step
    :param buffer_size: Size of SAC's replay buffer
    :param learning_starts: Transitions in the buffer before SAC trains
    :param batch_size: SAC's minibatch size
    :param sigma_adaptation: Automatic mutation tuning of ``sigma`` (above)
    :param target_success_rate: Fraction of candidates beating the centre at which ``sigma`` is kept
    :param sigma_adaptation_rate: Log-step of the ``sigma`` adaptation
    :param sigma_bounds: ``(low, high)`` of the adapted ``sigma`` (default: ``sigma / 10, sigma * 10``)
    :param critic_net_arch: Hidden layers of SAC's critics (default: the policy's ``net_arch``)
    :param sac_kwargs: Other arguments of :class:`~stable_baselines3.SAC` (``learning_rate``, ``tau``,
        ``gamma``, ``ent_coef``, ``target_update_interval``, ``target_entropy``, ``policy_kwargs``...)
    :param policy_kwargs: Arguments of the ES policy: ``net_arch`` (default ``[256, 256]``, SAC's) and
        ``activation_fn`` (default ReLU, SAC's), shared with SAC's actor
    :param kwargs: Other arguments of :class:`~sb3_bierl.ES` (``n_pairs``, ``sigma``, ``learning_rate``...)
    """

    #: Its generation has its own protocol (elites, SAC's actor moves the centre between ES steps)
    supports_last_step_pair: ClassVar[bool] = False

    def __init__(
        self,
        policy: str | type[ESPolicy],
        env: GymEnv | str | None,
        n_elites: int = 2,
        injection_interval: int = 1,
        gradient_steps_ratio: float = 0.1,
        buffer_size: int = 1_000_000,
        learning_starts: int = 10_000,
        batch_size: int = 256,
        sigma_adaptation: bool = True,
        target_success_rate: float = 0.2,
        sigma_adaptation_rate: float = 0.5,
        sigma_bounds: tuple[float, float] | None = None,
        critic_net_arch: list[int] | None = None,
        sac_kwargs: dict[str, Any] | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        if env is not None:
            env = maybe_make_env(env, kwargs.get("verbose", 0))
            check_continuous_actions(env.action_space)
        if not isinstance(n_elites, (int, np.integer)) or n_elites < 0:
            raise ValueError(f"n_elites must be an integer >= 0, got {n_elites!r}")
        check_at_least_one(injection_interval=injection_interval, buffer_size=buffer_size, batch_size=batch_size)
        if not np.isfinite(gradient_steps_ratio) or gradient_steps_ratio < 0:
            raise ValueError(f"gradient_steps_ratio must be >= 0, got {gradient_steps_ratio!r}")
        if learning_starts < 0:
            raise ValueError(f"learning_starts must be >= 0, got {learning_starts!r}")
        check_positive(sigma_adaptation_rate=sigma_adaptation_rate)
        if not 0.0 < target_success_rate < 1.0:
            raise ValueError(f"target_success_rate must be in (0, 1), got {target_success_rate!r}")
        if sigma_bounds is not None and not 0.0 < sigma_bounds[0] <= sigma_bounds[1]:
            raise ValueError(f"sigma_bounds must be (low, high) with 0 < low <= high, got {sigma_bounds!r}")
        sac_kwargs = dict(sac_kwargs or {})
        reserved = sorted(set(sac_kwargs) & set(RESERVED_SAC_KWARGS))
        if reserved:
            raise ValueError(
                f"sac_kwargs may not set {reserved}: ESAC sets them "
                "(buffer_size, learning_starts and batch_size are ESAC arguments)"
            )
        sac_policy_kwargs = sac_kwargs.get("policy_kwargs") or {}
        if {"net_arch", "activation_fn", "use_sde"} & set(sac_policy_kwargs):
            raise ValueError(
                "Set SAC's actor with ESAC's policy_kwargs (net_arch, activation_fn) "
                "and its critics with critic_net_arch"
            )
        policy_kwargs = {
            "net_arch": list(DEFAULT_NET_ARCH),
            "activation_fn": nn.ReLU,
            "squash_output": True,
            "normalize_observations": False,
            **(policy_kwargs or {}),
        }
        if (
            not policy_kwargs["squash_output"]
            or policy_kwargs["normalize_observations"]
            or not policy_kwargs.get("with_bias", True)
        ):
            raise ValueError(
                "ESAC's policy is SAC's actor: it needs squash_output=True, normalize_observations=False "
                "and with_bias=True"
            )
        self.n_elites = n_elites
        self.injection_interval = injection_interval
        self.gradient_steps_ratio = gradient_steps_ratio
        self.buffer_size = buffer_size
        self.learning_starts = learning_starts
        self.batch_size = batch_size
        self.sigma_adaptation = sigma_adaptation
        self.target_success_rate = target_success_rate
        self.sigma_adaptation_rate = sigma_adaptation_rate
        self.critic_net_arch = critic_net_arch
        self.sac_kwargs = sac_kwargs
        #: Set to False (e.g. by a meta level that sets sigma) to switch AMT off
        self.adapt_sigma_automatically = True
        # Training state, saved with the model
        self.elites = np.zeros((0, 0))
        self.elite_returns = np.zeros(0)
        self.centre_return: float | None = None
        self.n_injections = 0
        self._pending_gradient_steps = 0.0
        # Rebuilt on load
        self.sac: SAC | None = None
        super().__init__(policy, env, policy_kwargs=policy_kwargs, _init_setup_model=False, **kwargs)
        self.sigma_bounds = (self.sigma / 10, self.sigma * 10) if sigma_bounds is None else tuple(sigma_bounds)
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ set-up
    def _setup_model(self) -> None:
        check_continuous_actions(self.action_space)
        super()._setup_model()
        actor_layer_pairs(self.policy, None)  # checks the policy's layout
        self._build_sac()
        if self.elites.size == 0:
            self.elites = np.zeros((0, self.n_params))

    def _build_sac(self) -> None:
        """SAC without an environment (ESAC steps the environments); its actor has the ES policy's layers."""
        sac_kwargs = dict(self.sac_kwargs)
        net_arch = list(self.policy.net_arch)
        critic = net_arch if self.critic_net_arch is None else list(self.critic_net_arch)
        sac_kwargs["policy_kwargs"] = {
            **(sac_kwargs.get("policy_kwargs") or {}),
            "net_arch": {"pi": net_arch, "qf": critic},
            "activation_fn": self.policy.activation_fn,
        }
        if sac_kwargs.get("target_entropy", "auto") == "auto":  # SAC reads it from its env, which it has not
            sac_kwargs["target_entropy"] = -float(np.prod(self.action_space.shape))
        self.sac = SAC(
            "MlpPolicy",
            None,
            buffer_size=self.buffer_size,
            learning_starts=self.learning_starts,
            batch_size=self.batch_size,
            seed=None if self.seed is None else self.seed + 1,
            device=self.device,
            _init_setup_model=False,
            **sac_kwargs,
        )
        self.sac.observation_space, self.sac.action_space, self.sac.n_envs = (
            self.observation_space,
            self.action_space,
            1,
        )
        self.sac._setup_model()
        assert type(self.sac.replay_buffer) is ReplayBuffer
        self._sac_layers = actor_layer_pairs(self.policy, self.sac.actor)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "sac", "_sac_layers"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        sac_state_dicts, sac_variables = self.sac._get_torch_save_params()
        return [*state_dicts, *(f"sac.{name}" for name in sac_state_dicts)], [
            *variables,
            *(f"sac.{name}" for name in sac_variables),
        ]

    # ------------------------------------------------------------------ SAC actor <-> ES vector
    def sac_actor_vector(self) -> np.ndarray:
        """:return: SAC's deterministic actor as an ES parameter vector (float64)"""
        return th.cat([sac.detach().reshape(-1) for _, sac in self._sac_layers]).cpu().numpy().astype(np.float64)

    @th.no_grad()
    def load_vector_into_sac_actor(self, vector: np.ndarray) -> None:
        """Copy an ES parameter vector into SAC's actor (``latent_pi`` and ``mu``; ``log_std`` is kept)."""
        start = 0
        for es, sac in self._sac_layers:
            sac.copy_(th.as_tensor(vector[start : start + es.numel()], dtype=sac.dtype).reshape(sac.shape))
            start += es.numel()

    def load_centre_into_sac_actor(self) -> None:
        """Copy the ES centre into SAC's actor."""
        self.load_vector_into_sac_actor(self.strategy.theta)

    # ------------------------------------------------------------------ rollouts -> replay buffer
    def rollout_options(self) -> dict[str, Any]:
        return {**super().rollout_options(), "record_transitions": True}

    def _record_rollout(self, result: RolloutResult) -> None:
        """Store the rollout's transitions in SAC's replay buffer, then count the steps (ES)."""
        if result.transitions is not None and len(result.transitions) > 0:
            self._add_to_replay_buffer(result.transitions)
        if self.sac.replay_buffer.size() >= self.learning_starts:
            self._pending_gradient_steps += self.gradient_steps_ratio * result.n_steps
        super()._record_rollout(result)

    def _add_to_replay_buffer(self, transitions: Transitions) -> None:
        buffer = self.sac.replay_buffer
        n = len(transitions)
        obs = transitions.observations.reshape((n, *buffer.obs_shape))
        next_obs = transitions.next_observations.reshape((n, *buffer.obs_shape))
        actions = np.clip(self.sac.policy.scale_action(transitions.actions.reshape((n, buffer.action_dim))), -1.0, 1.0)
        rewards = transitions.rewards
        finite = (
            np.isfinite(rewards) & np.isfinite(obs.reshape(n, -1)).all(1) & np.isfinite(next_obs.reshape(n, -1)).all(1)
        )
        if not finite.all():
            obs, next_obs, actions, rewards = obs[finite], next_obs[finite], actions[finite], rewards[finite]
            transitions = transitions.select(finite)
        terminated, truncated = transitions.terminated.astype(bool), transitions.truncated.astype(bool)
        n = min(len(rewards), buffer.buffer_size)  # only the newest fit
        rows = (buffer.pos + np.arange(n)) % buffer.buffer_size
        buffer.observations[rows, 0] = obs[-n:]
        buffer.next_observations[rows, 0] = next_obs[-n:]
        buffer.actions[rows, 0] = actions[-n:]
        buffer.rewards[rows, 0] = rewards[-n:]
        # as SB3: done = terminated or truncated, timeout = truncated and not terminated;
        # the TD target uses done * (1 - timeout), i.e. terminated
        buffer.dones[rows, 0] = (terminated | truncated)[-n:]
        buffer.timeouts[rows, 0] = (truncated & ~terminated)[-n:]
        if buffer.pos + n >= buffer.buffer_size:
            buffer.full = True
        buffer.pos = (buffer.pos + n) % buffer.buffer_size

    # ------------------------------------------------------------------ one generation
    def _do_generation(self) -> None:
        """The ES step (or the adopted meta trial), then AMT, SAC training, injection and elitism,
        which run whether or not a callback took the ES step."""
        n_updates = self._n_updates
        super()._do_generation()
        if self._n_updates == n_updates:
            return  # stopped before the generation's step; a stop asked during it lets the generation end whole
        self._adapt_sigma()
        self._train_sac()
        self._evaluate_centre_elites_and_sac()
        self.sync_policy()

    def _adapt_sigma(self) -> None:
        if not (self.sigma_adaptation and self.adapt_sigma_automatically):
            return
        if self.generation_done or self.hyperparameters.get("sigma") != float(self.sigma):
            return  # the meta level chose sigma, or took the step itself
        if self.centre_return is None or self.last_rollout is None:
            return
        returns = self.last_rollout.returns
        success = float(np.mean(np.isfinite(returns) & (returns > self.centre_return)))
        step = self.sigma_adaptation_rate * (success - self.target_success_rate) / (1.0 - self.target_success_rate)
        self.sigma = float(np.clip(self.sigma * np.exp(step), *self.sigma_bounds))
        self.logger.record("esac/success_rate", success)

    def _train_sac(self) -> None:
        if self.sac.replay_buffer.size() < self.learning_starts:
            return
        gradient_steps = int(self._pending_gradient_steps)
        if gradient_steps < 1:
            return
        self._pending_gradient_steps -= gradient_steps
        self.sac._logger = _PrefixedLogger(self.logger, "sac/")  # SAC's train logs "train/..."
        self.sac._current_progress_remaining = self._current_progress_remaining
        # SAC draws minibatches and actions from the global numpy / torch generators: seed them from this
        # model's generator for the call (and restore them), so that the same seed gives the same result
        seed = int(self.rng.integers(0, 2**31 - 1))
        numpy_state = np.random.get_state()
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with th.random.fork_rng(devices=devices):
                th.manual_seed(seed)
                np.random.seed(seed)
                self.sac.train(gradient_steps, self.batch_size)
        finally:
            np.random.set_state(numpy_state)

    def _evaluate_centre_elites_and_sac(self) -> None:
        inject = self.sac._n_updates > 0 and self._n_updates % self.injection_interval == 0
        vectors = [self.strategy.theta, *self.elites]
        if inject:
            vectors.append(self.sac_actor_vector())
        returns = finite_or_minus_inf(self.evaluate_centres(np.stack(vectors), self.n_eval_episodes))
        self.centre_return = float(returns[0])
        if inject:
            self.logger.record("esac/sac_actor_return", float(returns[-1]))
            if returns[-1] > returns[0]:  # SAC's actor beats the centre: it becomes the centre
                self.strategy.theta = vectors[-1].copy()
                self.strategy.optimizer = Adam(self.strategy.dim)
                self.strategy.last_step = None  # the centre did not come from the last ES step
                self.centre_return = float(returns[-1])
                self.n_injections += 1
        # Elites: the best distinct vectors among the old elites, the centre and SAC's actor
        order = np.argsort(-returns, kind="stable")
        elites: list[np.ndarray] = []
        elite_returns: list[float] = []
        for i in order:
            if len(elites) == self.n_elites:
                break
            if np.isfinite(returns[i]) and not any(np.array_equal(vectors[i], e) for e in elites):
                elites.append(np.asarray(vectors[i], dtype=np.float64))
                elite_returns.append(float(returns[i]))
        self.elites = np.array(elites).reshape(len(elites), self.n_params)
        self.elite_returns = np.array(elite_returns)
        self.logger.record("esac/centre_return", self.centre_return)
        self.logger.record("esac/n_injections", self.n_injections)
        if len(elite_returns) > 0:
            self.logger.record("esac/elite_return_max", elite_returns[0])
        self.logger.record("esac/buffer_size", self.sac.replay_buffer.size())

    # ------------------------------------------------------------------ learn
    def learn(
        self: SelfESAC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "ESAC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfESAC:
        """
        Train for ``total_timesteps`` environment steps (every step of every rollout counts).

        :param total_timesteps: The total number of environment steps to train on
        :param callback: Callback(s) called at every environment step
        :param log_interval: Generations between two log dumps
        :param tb_log_name: Name of the run for TensorBoard logging
        :param reset_num_timesteps: Whether to reset the step counter (False to continue training)
        :param progress_bar: Display a progress bar using tqdm and rich
        :return: the trained model
        """
        return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar)


class _PrefixedLogger:
    """Forwards SAC's ``logger.record("train/...")`` to ESAC's logger under another prefix."""

    def __init__(self, logger: Any, prefix: str):
        self._target = logger
        self._prefix = prefix

    def record(self, key: str, value: Any, exclude: Any = None) -> None:
        self._target.record(self._prefix + key.split("/", 1)[-1], value, exclude)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def check_continuous_actions(action_space: spaces.Space) -> None:
    if not isinstance(action_space, spaces.Box):
        raise ValueError(
            f"ESAC needs a continuous (Box) action space: SAC does not support {type(action_space).__name__} "
            "action spaces; use ES or BiERL instead"
        )


def finite_or_minus_inf(returns: np.ndarray) -> np.ndarray:
    returns = np.asarray(returns, dtype=np.float64)
    return np.where(np.isfinite(returns), returns, -np.inf)


def actor_layer_pairs(policy: ESPolicy, actor: nn.Module | None) -> list[tuple[th.Tensor, th.Tensor]]:
    """
    Pair the parameters of the ES policy's ``action_net`` (``[Linear, act] * L + [Linear, Tanh]``)
    with those of SAC's actor (``latent_pi = [Linear, act] * L``, then ``mu``), in the ES vector's order.

    :param policy: The ES policy
    :param actor: SAC's actor, or None to only check the ES policy's layout
    :raises ValueError: if the ES policy is not laid out as SAC's actor
    """
    es_linear = [m for m in policy.action_net if isinstance(m, nn.Linear)]
    layout_ok = (
        isinstance(policy.action_net[-1], nn.Tanh)
        and all(m.bias is not None for m in es_linear)
        and [name for name, _ in policy.named_parameters()]
        == [
            f"action_net.{i}.{p}"
            for i, m in enumerate(policy.action_net)
            if isinstance(m, nn.Linear)
            for p in ("weight", "bias")
        ]
    )
    if not layout_ok:
        raise ValueError(
            "ESAC needs an ES policy laid out as SAC's actor: ESPolicy ('MlpPolicy') with squash_output=True and biases"
        )
    if actor is None:
        return []
    sac_linear = [m for m in actor.latent_pi if isinstance(m, nn.Linear)] + [actor.mu]
    if len(sac_linear) != len(es_linear) or any(
        e.weight.shape != s.weight.shape for e, s in zip(es_linear, sac_linear)
    ):
        raise ValueError("SAC's actor and the ES policy have different layers")
    return [
        (getattr(e, p), getattr(s, p)) for e, s in zip(es_linear, sac_linear, strict=True) for p in ("weight", "bias")
    ]
