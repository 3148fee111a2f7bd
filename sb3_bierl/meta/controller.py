"""The BiERL meta level as an SB3 callback."""

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from sb3_bierl.meta.history import N_FITNESS_FEATURES, FitnessHistory
from sb3_bierl.meta.network import MetaNetwork
from sb3_bierl.meta.space import HyperparameterSpace
from sb3_bierl.strategies import OpenAIES, finite_or_worst


class MetaController(BaseCallback):
    """
    Sets the inner ES hyperparameters every generation and trains itself by ES.

    - ``on_rollout_start``: every ``interval`` generations, a meta update (below; skipped when it
      would not fit in the rest of the ``learn`` budget); then the meta
      network reads the fitness history and its proposal becomes the generation's hyperparameters.
    - ``on_rollout_end``: the generation's returns are appended to the history.

    Meta update (design.md section 4): ``n_pairs`` antithetic perturbations of the meta network's
    parameters ``phi`` each propose hyperparameters ``h_j``; each ``h_j`` takes one inner ES step
    from the current ``theta`` (all trial populations share noise and episode seeds, and are rolled
    out in one batch); the truncated fitness of ``phi_j`` is the mean return of the resulting
    ``theta_j`` on ``eval_episodes`` common episodes; ``phi`` takes an ES step on the centred ranks.
    With ``continue_from_best`` the best trial is the generation's inner step: the inner level continues
    from the best ``theta_j``, so the trial rollouts are not thrown away; otherwise the generation runs
    as usual with the new proposal. Every step counts in ``num_timesteps``.

    The state (network, its ES state, history, RNG) pickles with the model; the link to the model
    does not.

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
        super().__init__(verbose)
        self.space = space
        self.interval = interval
        self.n_pairs = n_pairs
        self.sigma = sigma
        self.learning_rate = learning_rate
        self.eval_episodes = eval_episodes
        self.continue_from_best = continue_from_best
        n_features = N_FITNESS_FEATURES + len(space)
        with th.random.fork_rng():
            if seed is not None:
                th.manual_seed(seed)
            self.network = MetaNetwork(
                n_features,
                len(space),
                encoder,
                hidden_size,
                generator_size,
                initial_unit=space.initial_unit(),
                history_length=history_length,
            )
        self.history = FitnessHistory(history_length, n_features)
        self.strategy = OpenAIES(parameters_to_vector(self.network.parameters()).detach().numpy())
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

    # ------------------------------------------------------------------ proposals
    @th.no_grad()
    def propose(self, phi: np.ndarray | None = None) -> dict[str, float]:
        """Hyperparameters proposed from the current history by ``phi`` (default: the centre)."""
        phi = self.strategy.theta if phi is None else phi
        vector_to_parameters(th.as_tensor(phi, dtype=th.float32), self.network.parameters())
        history = th.as_tensor(self.history.as_array()).unsqueeze(0)
        return self.space.from_unit(self.network(history).squeeze(0).numpy())

    def _record(self, returns: np.ndarray, hyperparameters: dict[str, float]) -> None:
        self.history.append(returns, self.space.to_unit(hyperparameters))

    # ------------------------------------------------------------------ callback hooks
    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.n_generations > 0 and self.n_generations % self.interval == 0 and self._meta_update_fits():
            self.meta_update()
        if not self.model.generation_done:
            self.last_proposal = self.propose()
            self.model.hyperparameters.update(self.last_proposal)

    def _on_rollout_end(self) -> None:
        self._record(self.model.last_rollout.returns, self.model.hyperparameters)
        self.n_generations += 1
        self.logger.record("meta/fitness", self.last_fitness)
        self.logger.record("meta/n_updates", self.n_meta_updates)

    def _meta_update_fits(self) -> bool:
        """Whether a meta update (and the generation after it, unless the best trial is the generation)
        fits in the rest of the budget, estimated from the last generation, so that BiERL does not
        overshoot ``total_timesteps`` more than ES does."""
        rollout = self.model.last_rollout
        if rollout is None:
            return True
        generation = rollout.n_steps
        episode = generation / rollout.episode_lengths.size
        n_generations = 2 * self.n_pairs + (0 if self.continue_from_best else 1)
        cost = n_generations * generation + 2 * self.n_pairs * self.eval_episodes * episode
        return self.model.num_timesteps + cost <= self.model._total_timesteps

    def meta_update(self) -> None:
        """One ES step on the meta network with the truncated one-step fitness."""
        model = self.model
        meta_population = self.strategy.ask(model.noise, self.rng, self.n_pairs, self.sigma)
        phis = self.strategy.candidates(model.noise, meta_population)
        proposals = [{**model.hyperparameters, **self.propose(phi)} for phi in phis]

        trials, results = model.trial_steps(proposals)  # one inner step each, common noise and episodes
        fitness = model.trial_fitness(trials, self.eval_episodes)

        clean = finite_or_worst(fitness)
        if clean is not None:
            self.strategy.tell(model.noise, meta_population, clean, self.learning_rate)
            self.last_fitness = float(np.mean(clean))
            if self.continue_from_best:  # the best trial is this generation's inner step
                best = int(np.argmax(clean))
                model.adopt_trial(trials[best], results[best], proposals[best])
        self.n_meta_updates += 1
