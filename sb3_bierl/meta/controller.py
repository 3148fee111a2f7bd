"""The BiERL meta level as an SB3 callback: the shared schedule, and the meta-network controller."""

import os
import pathlib
from abc import abstractmethod
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from sb3_bierl.meta.history import N_FITNESS_FEATURES, FitnessHistory
from sb3_bierl.meta.network import MetaNetwork
from sb3_bierl.meta.space import HyperparameterSpace
from sb3_bierl.strategies import OpenAIES, finite_or_worst


class BaseMetaController(BaseCallback):
    """
    Sets the inner algorithm's hyperparameters every generation, and improves its proposals
    with the truncated fitness.

    - ``on_rollout_start``: every ``interval`` generations, a meta update (:meth:`meta_update`;
      skipped when it would not fit in the rest of the ``learn`` budget); then the
      proposal (:meth:`propose`) becomes the generation's hyperparameters.
    - ``on_rollout_end``: the generation's returns are appended to the fitness history.

    A meta update evaluates ``n_trials`` proposals ``h_j`` with the inner algorithm's trial protocol
    (``trial_steps``: one inner generation from the current state per ``h_j``, common noise and
    episodes, one batch; ``trial_fitness``: the return each reaches), and learns from the fitnesses.
    With ``continue_from_best`` the best trial is the generation's inner step (``adopt_trial``), so
    the trial rollouts are not thrown away. Every step counts in ``num_timesteps``.

    The state pickles with the model; the link to the model does not.

    :param space: Hyperparameters to adapt and their bounds
    :param interval: Inner generations between two meta updates
    :param n_trials: Proposals evaluated per meta update
    :param eval_episodes: Episodes that measure each proposal's truncated fitness
    :param continue_from_best: Continue the inner level from the best trial
    :param history_length: Generations kept in the fitness history
    :param seed: Seed of the meta level's generator
    :param verbose: Verbosity level
    """

    def __init__(
        self,
        space: HyperparameterSpace,
        interval: int = 5,
        n_trials: int = 4,
        eval_episodes: int = 1,
        continue_from_best: bool = True,
        history_length: int = 10,
        seed: int | None = None,
        verbose: int = 0,
    ):
        super().__init__(verbose)
        self.space = space
        self.interval = interval
        self.n_trials = n_trials
        self.eval_episodes = eval_episodes
        self.continue_from_best = continue_from_best
        self.history = FitnessHistory(history_length, N_FITNESS_FEATURES + len(space))
        self.rng = np.random.default_rng(seed)
        self.n_generations = 0
        self.n_meta_updates = 0
        self.last_fitness = float("nan")
        self.last_proposal: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("model", "locals", "globals", "parent"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.locals, self.globals, self.parent = {}, {}, None

    @abstractmethod
    def propose(self) -> dict[str, float]:
        """:return: the hyperparameters for the next generation"""

    @abstractmethod
    def meta_update(self) -> None:
        """Evaluate proposals with :meth:`evaluate_proposals` and learn from them."""

    def evaluate_proposals(self, proposals: list[dict[str, float]]) -> np.ndarray | None:
        """
        One inner step per proposal (common noise and episodes), then the truncated fitness of each;
        with ``continue_from_best``, the best trial becomes the generation.

        :param proposals: Values of the adapted hyperparameters, one dict per trial
        :return: the fitnesses (non-finite ones replaced by the worst), or None if none was finite
        """
        model = self.model
        full = [{**model.hyperparameters, **proposal} for proposal in proposals]
        trials, results = model.trial_steps(full)
        clean = finite_or_worst(model.trial_fitness(trials, self.eval_episodes))
        if clean is not None:
            self.last_fitness = float(np.mean(clean))
            if self.continue_from_best:  # the best trial is this generation's inner step
                best = int(np.argmax(clean))
                model.adopt_trial(trials[best], results[best], full[best])
        self.n_meta_updates += 1
        return clean

    # ------------------------------------------------------------------ callback hooks
    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.n_generations > 0 and self.n_generations % self.interval == 0 and self._meta_update_fits():
            self.meta_update()
        if not self.model.generation_done:
            self.last_proposal = self.propose()
            self.model.hyperparameters.update(self.last_proposal)

    def record(self, returns: np.ndarray, hyperparameters: dict[str, float]) -> None:
        """Append a generation's returns and the hyperparameters it used to the history."""
        self.history.append(returns, self.space.to_unit(hyperparameters))

    def _on_rollout_end(self) -> None:
        self.record(self.model.last_rollout.returns, self.model.hyperparameters)
        self.n_generations += 1
        self.logger.record("meta/fitness", self.last_fitness)
        self.logger.record("meta/n_updates", self.n_meta_updates)

    def _meta_update_fits(self) -> bool:
        """Whether a meta update (and the generation after it, unless the best trial is the generation)
        fits in the rest of the budget, estimated from the last generation, so that BiERL does not
        overshoot ``total_timesteps`` more than the plain algorithm does."""
        rollout = self.model.last_rollout
        if rollout is None:
            return True
        generation = rollout.n_steps
        episode = generation / rollout.episode_lengths.size
        n_generations = self.n_trials + (0 if self.continue_from_best else 1)
        cost = n_generations * generation + self.n_trials * self.eval_episodes * episode
        return self.model.num_timesteps + cost <= self.model._total_timesteps


class MetaController(BaseMetaController):
    """
    The paper's meta level: a :class:`~sb3_bierl.meta.MetaNetwork` (LSTM or mean-pool encoder over
    the fitness history, MLP generator) proposes the hyperparameters; it is trained by ES.

    Meta update (design.md section 4): ``n_pairs`` antithetic perturbations of the network's
    parameters ``phi`` each propose ``h_j``; the truncated fitness of ``phi_j`` is the return
    reached after one inner step with ``h_j`` (:meth:`BaseMetaController.evaluate_proposals`);
    ``phi`` takes an OpenAI-ES step on the centred ranks.

    :param space: Hyperparameters to adapt and their bounds
    :param encoder: ``"lstm"`` or ``"mean"``
    :param history_length: Generations the encoder reads
    :param hidden_size: Encoder size
    :param generator_size: Generator hidden size
    :param interval: Inner generations between two meta updates
    :param n_pairs: Antithetic pairs of meta candidates per meta update
    :param sigma: Noise std on the meta parameters
    :param learning_rate: Adam step size of the meta ES
    :param eval_episodes: Episodes that measure each candidate's truncated fitness
    :param continue_from_best: Continue the inner level from the best trial's parameters
    :param seed: Seed of the meta level's generator
    :param verbose: Verbosity level
    """

    def __init__(
        self,
        space: HyperparameterSpace,
        encoder: str = "lstm",
        history_length: int = 10,
        hidden_size: int = 16,
        generator_size: int = 32,
        interval: int = 5,
        n_pairs: int = 2,
        sigma: float = 0.1,
        learning_rate: float = 0.03,
        eval_episodes: int = 1,
        continue_from_best: bool = True,
        seed: int | None = None,
        verbose: int = 0,
    ):
        super().__init__(space, interval, 2 * n_pairs, eval_episodes, continue_from_best, history_length, seed, verbose)
        self.n_pairs = n_pairs
        self.sigma = sigma
        self.learning_rate = learning_rate
        with th.random.fork_rng():
            if seed is not None:
                th.manual_seed(seed)
            self.network = MetaNetwork(
                N_FITNESS_FEATURES + len(space),
                len(space),
                encoder,
                hidden_size,
                generator_size,
                initial_unit=space.initial_unit(),
                history_length=history_length,
            )
        self.strategy = OpenAIES(parameters_to_vector(self.network.parameters()).detach().numpy())

    @th.no_grad()
    def propose(self, phi: np.ndarray | None = None) -> dict[str, float]:
        """Hyperparameters proposed from the current history by ``phi`` (default: the centre)."""
        phi = self.strategy.theta if phi is None else phi
        threads = th.get_num_threads()
        th.set_num_threads(1)  # a tiny network: extra threads cost ~50x (4 ms instead of 0.09 ms a call)
        try:
            vector_to_parameters(th.as_tensor(phi, dtype=th.float32), self.network.parameters())
            history = th.as_tensor(self.history.as_array()).unsqueeze(0)
            unit = self.network(history).squeeze(0).numpy()
        finally:
            th.set_num_threads(threads)
        return self.space.from_unit(unit)

    def meta_update(self) -> None:
        """One ES step on the meta network with the truncated one-step fitness."""
        noise = self.model.noise
        meta_population = self.strategy.ask(noise, self.rng, self.n_pairs, self.sigma)
        phis = self.strategy.candidates(noise, meta_population)
        fitness = self.evaluate_proposals([self.propose(phi) for phi in phis])
        if fitness is not None:
            self.strategy.tell(noise, meta_population, fitness, self.learning_rate)

    # ------------------------------------------------------------------ warm start
    def save(self, path: str | os.PathLike) -> None:
        """Save the meta network on its own (a warm-start file for another task: see :meth:`load`)."""
        from sb3_bierl.meta.warm_start import save_controller

        save_controller(self, path)

    @classmethod
    def load(cls, path: str | pathlib.Path, space: HyperparameterSpace, **kwargs: Any) -> "MetaController":
        """
        A controller for ``space`` whose network is the one saved at ``path``.

        :param path: A file written by :meth:`save`, or ``"pretrained"`` for the one shipped with the package
        :param space: Hyperparameters to adapt (the same names as the saved controller's; the bounds may differ)
        :param kwargs: Other :class:`MetaController` arguments (the network's sizes come from the file)
        :raises ValueError: if the file is not a saved controller or adapts other hyperparameters
        """
        from sb3_bierl.meta.warm_start import load_controller

        return load_controller(path, space, **kwargs)
