"""BiERL: OpenAI-ES whose hyperparameters are set by a meta network trained alongside it."""

from typing import Any, TypeVar

from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback

from sb3_bierl.es.es import ES, check_at_least_one, check_positive
from sb3_bierl.es.policies import ESPolicy
from sb3_bierl.meta import ENCODERS, HyperparameterSpace, MetaController

SelfBiERL = TypeVar("SelfBiERL", bound="BiERL")

# A factor 4 on either side of OpenAI-ES's standard values: the one-step (truncated) meta objective is
# greedy and, with wide bounds, drives the learning rate to its upper bound and sigma to its lower one
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {"sigma": (0.005, 0.08), "learning_rate": (0.0025, 0.04)}


class BiERL(ES):
    """
    BiERL (Wang et al. 2023, https://arxiv.org/abs/2308.01207): the inner level is OpenAI-ES
    (see :class:`~sb3_bierl.ES`); the meta level, a :class:`~sb3_bierl.meta.MetaController`
    callback attached by ``learn``, reads the history of the population's fitness with an LSTM
    and proposes the inner hyperparameters every generation, inside ``hyperparameter_bounds``
    on a log scale. It trains its own weights by ES, every ``meta_interval`` generations, on
    the return reached after one inner step with the hyperparameters it proposed. All steps,
    the meta level's included, count in ``num_timesteps``.

    ``sigma``, ``learning_rate`` and ``weight_decay`` are the starting values of the adapted
    hyperparameters (and the fixed values of those not adapted).

    :param policy: ``"MlpPolicy"``, ``"LinearPolicy"`` or an ESPolicy subclass
    :param env: The environment to learn from (an id, a gymnasium env or a VecEnv)
    :param n_pairs: Antithetic pairs per generation (population size ``2 * n_pairs``)
    :param sigma: Initial noise std
    :param learning_rate: Initial Adam step size
    :param weight_decay: Initial L2 coefficient
    :param n_eval_episodes: Episodes per candidate
    :param hyperparameter_bounds: ``{name: (low, high)}`` of the adapted hyperparameters, among
        ``sigma``, ``learning_rate``, ``weight_decay``
    :param meta_encoder: ``"lstm"`` (the paper's) or ``"mean"`` (mean-pool ablation)
    :param meta_history_length: Generations the encoder reads
    :param meta_hidden_size: Encoder size
    :param meta_interval: Inner generations between two meta updates
    :param meta_n_pairs: Antithetic pairs of meta candidates per meta update
    :param meta_sigma: Noise std on the meta network's weights
    :param meta_learning_rate: Adam step size of the meta ES
    :param meta_eval_episodes: Episodes measuring a meta candidate's truncated fitness
    :param continue_from_best: Continue the inner level from the best meta trial's parameters
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
        meta_encoder: str = "lstm",
        meta_history_length: int = 10,
        meta_hidden_size: int = 16,
        meta_interval: int = 5,
        meta_n_pairs: int = 2,
        meta_sigma: float = 0.1,
        meta_learning_rate: float = 0.03,
        meta_eval_episodes: int = 1,
        continue_from_best: bool = True,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        if callable(learning_rate):
            raise ValueError("BiERL adapts the learning rate itself: pass its initial value as a float, not a schedule")
        if meta_encoder not in ENCODERS:
            raise ValueError(f"meta_encoder must be one of {ENCODERS}, got {meta_encoder!r}")
        check_at_least_one(
            meta_history_length=meta_history_length,
            meta_hidden_size=meta_hidden_size,
            meta_interval=meta_interval,
            meta_n_pairs=meta_n_pairs,
            meta_eval_episodes=meta_eval_episodes,
        )
        check_positive(sigma=sigma, learning_rate=learning_rate, meta_sigma=meta_sigma, meta_learning_rate=meta_learning_rate)
        self.hyperparameter_bounds = dict(DEFAULT_BOUNDS if hyperparameter_bounds is None else hyperparameter_bounds)
        # validate now, so that bad bounds fail at construction
        HyperparameterSpace(self.hyperparameter_bounds, {"sigma": sigma, "learning_rate": learning_rate, "weight_decay": weight_decay})
        self.meta_encoder = meta_encoder
        self.meta_history_length = meta_history_length
        self.meta_hidden_size = meta_hidden_size
        self.meta_interval = meta_interval
        self.meta_n_pairs = meta_n_pairs
        self.meta_sigma = meta_sigma
        self.meta_learning_rate = meta_learning_rate
        self.meta_eval_episodes = meta_eval_episodes
        self.continue_from_best = continue_from_best
        self.meta_controller: MetaController | None = None
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

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.meta_controller is None:  # a new model, not one being loaded
            space = HyperparameterSpace(self.hyperparameter_bounds, self.scheduled_hyperparameters())
            self.meta_controller = MetaController(
                space,
                encoder=self.meta_encoder,
                history_length=self.meta_history_length,
                hidden_size=self.meta_hidden_size,
                interval=self.meta_interval,
                n_pairs=self.meta_n_pairs,
                sigma=self.meta_sigma,
                learning_rate=self.meta_learning_rate,
                eval_episodes=self.meta_eval_episodes,
                continue_from_best=self.continue_from_best,
                seed=None if self.seed is None else self.seed + 1,
                verbose=self.verbose,
            )

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
        return super().learn(
            total_timesteps,
            CallbackList([self.meta_controller, *user_callbacks]),
            log_interval,
            tb_log_name,
            reset_num_timesteps,
            progress_bar,
        )
