"""The BiERL meta level as an SB3 callback: the shared schedule, and the meta-network controller."""

import copy
import os
import pathlib
import warnings
from abc import abstractmethod
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from sb3_bierl.meta.fitness import FITNESS_KINDS, candidate_fitness, pair_fitness, paired_t
from sb3_bierl.meta.history import N_FITNESS_FEATURES, FitnessHistory, GenerationSummary
from sb3_bierl.meta.network import MetaNetwork
from sb3_bierl.meta.space import HyperparameterSpace
from sb3_bierl.strategies import OpenAIES, finite_or_worst

#: Default cap on ``learning_rate / sigma`` (``BaseMetaController(max_lr_to_sigma=...)``): the largest ratio among
#: the best fixed settings of issue 9's headroom grid (HalfCheetah-v5: learning rate x4; Hopper-v5: sigma / 4)
DEFAULT_MAX_LR_TO_SIGMA = 2.0

#: What the meta ES trains online (``MetaController(trainable=...)``); ``"none"``: nothing, the network only proposes
TRAINABLE = ("last_layer", "bias", "all", "none")


class BaseMetaController(BaseCallback):
    """
    Sets the inner algorithm's hyperparameters every generation, and improves its proposals with the
    truncated fitness, at no extra environment step (README, "How the code maps onto the paper"; issue 9):

    - ``on_rollout_start``: the proposal of the controller (:meth:`propose`, kept within a factor
      ``max_change`` of the last generation's values: a trust region) becomes the generation's
      hyperparameters. Every ``interval`` generations, from the first one, that generation is a meta
      update (:meth:`meta_update`): its population is shared among ``n_trials`` proposals
      (``model.meta_generation``), each proposal's truncated fitness comes from its share of the
      rollouts, and every rollout still makes the inner step. Between meta updates the learning rate
      proposed also rescales the last inner step, so each step's learning rate is the one the meta
      level evaluates. The schedule lives in this object, which is saved with the model: an update due
      when a ``learn`` call ends runs first in the next call.
    - ``on_rollout_end``: the generation's summary (returns, the centre's return, agreement of consecutive
      steps) is appended to the fitness history.

    The only steps that do not move the inner level are the centre's rollouts (``centre_episodes`` per
    generation, for the features): ``meta/step_overhead`` is their share of all steps so far.

    The state pickles with the model; the link to the model does not.

    :param space: Hyperparameters to adapt and their bounds
    :param interval: Inner generations between two meta updates (1: every generation)
    :param n_trials: Proposals evaluated per meta update (each gets ``n_pairs // n_trials`` of the pairs)
    :param centre_episodes: Episodes of the unperturbed centre rolled out every generation (0: none; the
        centre's features are then 0)
    :param max_change: Trust region: each hyperparameter moves by at most this factor per generation
    :param history_length: Generations kept in the fitness history
    :param fitness: How a candidate's pairs are scored (:func:`~sb3_bierl.meta.fitness.pair_fitness`): ``"mean"``
        (the return around its stepped centre at its sigma) or ``"best"`` (the better return of each pair)
    :param seed: Seed of the meta level's generator
    :param verbose: Verbosity level
    :param max_lr_to_sigma: Largest ``learning_rate / sigma`` the controller sets or evaluates (None: no cap;
        see :meth:`within_step_radius`)
    :raises ValueError: if ``max_change <= 1``, ``max_lr_to_sigma`` is not positive, or ``fitness`` is unknown
    """

    def __init__(
        self,
        space: HyperparameterSpace,
        interval: int = 1,
        n_trials: int = 2,
        centre_episodes: int = 1,
        max_change: float = 1.25,
        history_length: int = 10,
        fitness: str = "mean",
        seed: int | None = None,
        verbose: int = 0,
        max_lr_to_sigma: float | None = DEFAULT_MAX_LR_TO_SIGMA,
    ):
        super().__init__(verbose)
        if max_change <= 1.0:
            raise ValueError(f"max_change must be > 1 (a factor per generation), got {max_change}")
        if max_lr_to_sigma is not None and not (np.isfinite(max_lr_to_sigma) and max_lr_to_sigma > 0):
            raise ValueError(f"max_lr_to_sigma must be a positive ratio (or None: no cap), got {max_lr_to_sigma!r}")
        self.max_lr_to_sigma = max_lr_to_sigma
        if fitness not in FITNESS_KINDS:
            raise ValueError(f"fitness must be one of {FITNESS_KINDS}, got {fitness!r}")
        self.fitness = fitness
        #: Whether antithetic meta candidates share their inner noise (``ES.meta_generation``): only for "best",
        #: whose noise is first-order in the perturbation; sharing halves the inner step's distinct directions
        self.share_noise = fitness == "best"
        #: (n_trials, pairs per trial) fitness of each pair at the last meta update
        self.last_pair_fitness: np.ndarray | None = None
        self.space = space
        self.interval = interval
        self.n_trials = n_trials
        self.centre_episodes = centre_episodes
        self.max_change = max_change
        self.history = FitnessHistory(history_length, N_FITNESS_FEATURES + len(space))
        self.rng = np.random.default_rng(seed)
        self.n_generations = 0
        self.n_meta_updates = 0
        self.first_update_generation: int | None = None
        self.n_skipped = 0
        self.meta_steps = 0
        self.last_fitness = float("nan")
        self.current: dict[str, float] = {p.name: p.initial for p in space.parameters}
        self._previous_step: np.ndarray | None = None
        #: The model's update count when the last generation started, and this controller's state then
        self._started_at: int | None = None
        self._state_at_start: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # the roll-back snapshot is not saved: a rolled-back generation has rolled the controller back already
        for key in ("model", "locals", "globals", "parent", "_started_at", "_state_at_start"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "meta_steps" not in state:  # pickled by a release before the meta level of issue 9
            raise RuntimeError(
                "This meta controller was saved by an earlier sb3-bierl, whose meta level differs: it cannot be "
                "restored. The model loads with a new meta controller that starts from the initial hyperparameters."
            )
        state.setdefault("fitness", "best")  # what a controller saved before session 5 used
        state.setdefault("last_pair_fitness", None)
        state.setdefault("share_noise", True)
        state.setdefault("max_lr_to_sigma", None)  # saved before session 9: no cap
        state.setdefault("_started_at", None)  # never saved (see __getstate__)
        state.setdefault("_state_at_start", None)
        self.__dict__.update(state)
        self.locals, self.globals, self.parent = {}, {}, None

    #: Whether the controller runs meta updates during training (False: it only proposes, e.g. a pre-trained
    #: network used as it is)
    learns_online: bool = True

    @abstractmethod
    def propose(self) -> dict[str, float]:
        """:return: the hyperparameters the controller would use next (before the trust region)"""

    @abstractmethod
    def meta_update(self, hyperparameters: dict[str, float]) -> None:
        """Make this generation a meta update (with :meth:`evaluate_proposals`) and learn from it."""

    def within_trust_region(self, proposal: dict[str, float]) -> dict[str, float]:
        """
        :return: ``proposal`` with each value within a factor ``max_change`` of the current one, then within the
            step radius (:meth:`within_step_radius`)
        """
        moved = {
            name: float(np.clip(value, self.current[name] / self.max_change, self.current[name] * self.max_change))
            for name, value in proposal.items()
        }
        return self.within_step_radius(moved)

    def within_step_radius(self, proposal: dict[str, float]) -> dict[str, float]:
        """
        Keep the inner step within ``max_lr_to_sigma`` times sigma. Adam moves each weight by about the learning
        rate per step, and the ES gradient is measured from perturbations of size about sigma: a step several
        times sigma extrapolates the gradient past where it was measured (a trust region around the Gaussian
        smoothing radius). Without this bound the greedy truncated fitness drives sigma down and the learning
        rate up until training collapses (issue 9: HalfCheetah-v5 at sigma 0.008, learning rate 0.029).

        A proposal above the cap is projected onto it in log space (sigma up and the learning rate down by the
        same factor: the closest point); where a bound stops one of them, the other goes the rest of the way, and
        where only one is adapted, it goes the whole way (the other is the model's current value). From a
        feasible current point, a move within the per-generation trust region stays within it.

        :param proposal: ``{name: value}`` of the adapted hyperparameters
        :return: the proposal with ``learning_rate <= max_lr_to_sigma * sigma`` where the bounds allow it
        """
        if self.max_lr_to_sigma is None or not {"sigma", "learning_rate"} & proposal.keys():
            return proposal
        fixed = getattr(getattr(self, "model", None), "hyperparameters", {})
        values = {**{name: fixed[name] for name in ("sigma", "learning_rate") if name in fixed}, **proposal}
        if not {"sigma", "learning_rate"} <= values.keys():
            return proposal
        excess = values["learning_rate"] / (self.max_lr_to_sigma * values["sigma"])
        if excess <= 1.0:
            return proposal
        bounds = {p.name: (p.low, p.high) for p in self.space.parameters}
        capped = dict(proposal)
        learning_rate = values["learning_rate"]
        if {"sigma", "learning_rate"} <= proposal.keys():  # both move: half the way down, not below its bound
            learning_rate = max(learning_rate / np.sqrt(excess), bounds["learning_rate"][0])
        if "sigma" in proposal:  # the rest of the way up
            capped["sigma"] = float(np.clip(learning_rate / self.max_lr_to_sigma, *bounds["sigma"]))
        if "learning_rate" in proposal:  # down to the cap where sigma's bound stopped it
            step_radius = self.max_lr_to_sigma * capped.get("sigma", values["sigma"])
            capped["learning_rate"] = float(max(min(learning_rate, step_radius), bounds["learning_rate"][0]))
        return capped

    def evaluate_proposals(self, hyperparameters: dict[str, float], proposals: list[dict[str, float]]) -> np.ndarray | None:
        """
        This generation, shared among the proposals (``model.meta_generation``): each one's truncated fitness.

        :param hyperparameters: The generation's own values of the adapted hyperparameters
        :param proposals: Values of the adapted hyperparameters, one dict per trial (pairs ``2k``, ``2k + 1``
            share their noise)
        :return: (n_trials,) the fitnesses (each the mean of :attr:`last_pair_fitness`'s row; non-finite ones
            replaced by the worst), or None if none was finite
        """
        model = self.model
        full = [{**model.hyperparameters, **self.within_step_radius(proposal)} for proposal in proposals]
        returns = model.meta_generation({**model.hyperparameters, **hyperparameters}, full, share_noise=self.share_noise)
        self.last_pair_fitness = pair_fitness(returns, self.fitness)
        clean = finite_or_worst(candidate_fitness(self.last_pair_fitness))
        if clean is not None:
            self.last_fitness = float(np.mean(clean))
        self.n_meta_updates += 1
        if self.first_update_generation is None:
            self.first_update_generation = self.n_generations
        return clean

    def evaluate_meta_points(self, points: np.ndarray, n_episodes: int) -> np.ndarray:
        """
        Roll out parameter vectors for the meta level alone (they move no inner step): their steps count in
        ``num_timesteps`` and in ``meta_steps`` (``meta/step_overhead``).

        :param points: (k, n_params) the parameter vectors
        :param n_episodes: Episodes of each, on common seeds
        :return: (k,) the mean return of each
        """
        before = self.model.num_timesteps
        returns = self.model.evaluate_centres(points, n_episodes)
        self.meta_steps += self.model.num_timesteps - before
        return returns

    def summary(self) -> dict[str, Any]:
        """
        :return: the meta level's counters (JSON-serialisable): updates, first update, step overhead; for a
            pre-trained meta level (a network's or a rule's file), where it comes from (``warm_start``: the command
            and commit recorded in the file)
        """
        model = getattr(self, "model", None)  # None until the controller is attached to a model
        total = model.num_timesteps if model is not None else 0
        summary = {
            "n_meta_updates": self.n_meta_updates,
            "first_update_generation": self.first_update_generation,
            "n_generations": self.n_generations,
            "meta_steps": self.meta_steps,
            "step_overhead": self.meta_steps / total if total else 0.0,
            "n_skipped": self.n_skipped,
        }
        origin = getattr(self, "warm_start_metadata", None)
        if origin is not None:
            summary["warm_start"] = {key: origin.get(key) for key in ("command", "commit", "meta_generations")}
        return summary

    # ------------------------------------------------------------------ callback hooks
    def _on_step(self) -> bool:
        return True

    #: State kept by reference in the snapshot of :meth:`roll_back_if_interrupted` (never written in place)
    _shared_in_snapshot: tuple[str, ...] = ()

    def roll_back_if_interrupted(self) -> None:
        """
        Called at the start of every generation, and by the model when it rolls a generation back: if the last
        generation started here did not complete (Ctrl-C, a worker's error, an error in a callback, even after this
        controller's end of generation), ES rolled it back (``ES._do_generation_or_roll_back``), and so does this
        controller: its state goes back to what it was at that generation's start (history, counters, generator,
        network or study; not ``meta_steps``, the steps its evaluations really took, as ``num_timesteps`` keeps
        them), so the run goes on as if never interrupted. Then it keeps a copy of its state for this generation.
        """
        n_updates = self.model._n_updates
        if self._started_at == n_updates and self._state_at_start is not None:
            self._restore(self._state_at_start)
        self._started_at, self._state_at_start = n_updates, self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        """:return: a copy of this controller's state (as pickled with the model)"""
        state = self.__getstate__()
        return {k: v if k in self._shared_in_snapshot else copy.deepcopy(v) for k, v in state.items()}

    def _restore(self, snapshot: dict[str, Any]) -> None:
        """Go back to the state of a :meth:`_snapshot`, with the steps spent so far (``meta_steps``)."""
        meta_steps = self.meta_steps
        self.__dict__.update(snapshot)
        self.meta_steps = meta_steps

    def _on_rollout_start(self) -> None:
        model = self.model
        self.roll_back_if_interrupted()
        if model.generation_done:
            return
        proposal = self.within_trust_region(self.propose())
        due = self.learns_online and self.n_generations % self.interval == 0
        if due and self.n_trials > model.n_pairs:
            if self.n_skipped == 0:
                warnings.warn(
                    f"The meta level needs at least {self.n_trials} pairs per generation (n_pairs={model.n_pairs}): "
                    "no meta update will run; raise n_pairs or lower meta_n_pairs"
                )
            self.n_skipped += 1
            due = False
        if due:
            self.meta_update(proposal)
        else:
            if "learning_rate" in proposal:
                model.strategy.rescale_last_step(proposal["learning_rate"])
            model.hyperparameters.update(proposal)
        self.current.update(proposal)

    def _on_rollout_end(self) -> None:
        model = self.model
        centre = None
        if self.centre_episodes > 0:
            # the centre the generation's population was drawn around, before its step: rolled out now
            last_step = getattr(model.strategy, "last_step", None)
            theta = model.strategy.theta if last_step is None else model.strategy.theta - last_step
            centre = float(np.mean(self.evaluate_meta_points(theta[None], self.centre_episodes)))
            model.sync_policy()  # the new observation statistics, as at the end of every generation
        step = getattr(model.strategy, "last_step", None)
        agreement = None
        if step is not None and self._previous_step is not None and self._previous_step.shape == step.shape:
            norms = np.linalg.norm(step) * np.linalg.norm(self._previous_step)
            agreement = float(step @ self._previous_step / norms) if norms > 0 else None
        self._previous_step = step  # OpenAIES replaces last_step, never writes into it
        summary = GenerationSummary(model.last_rollout.returns, centre, agreement)
        self.history.append(summary, self.space.to_unit(model.hyperparameters))
        self.n_generations += 1
        if self.learns_online:  # a rule or a frozen network has no meta candidates to score
            self.logger.record("meta/fitness", self.last_fitness)
        self.logger.record("meta/n_updates", self.n_meta_updates)
        if model.num_timesteps > 0:
            self.logger.record("meta/step_overhead", self.meta_steps / model.num_timesteps)


class MetaController(BaseMetaController):
    """
    The paper's meta level: a :class:`~sb3_bierl.meta.MetaNetwork` (LSTM or mean-pool encoder over
    the fitness history, MLP generator) proposes the hyperparameters; it is trained by ES.

    Meta update (README, "How the code maps onto the paper"): ``n_pairs`` antithetic perturbations ``phi +- sigma * delta`` of the
    trained part of the network each propose ``h_j``; the generation is shared among them
    (:meth:`BaseMetaController.evaluate_proposals`: the truncated fitness of ``h_j`` comes from its share of
    the generation's rollouts, around the centre its learning rate gives the last inner step, at its sigma);
    ``phi`` takes an OpenAI-ES step on the centred ranks when the twins differ significantly (``min_significance``).

    Online, ES trains only the generator's last layer (``trainable="last_layer"``, about 70 weights for two
    hyperparameters): with a few candidates per generation, ES on the whole network (about 2k weights) learns
    nothing in one run (issue 9). The encoder and the first generator layer keep their initial (or
    pre-trained) weights: random features of the history, read out by the trained layer.

    :param space: Hyperparameters to adapt and their bounds
    :param encoder: ``"lstm"`` or ``"mean"``
    :param history_length: Generations the encoder reads
    :param hidden_size: Encoder size
    :param generator_size: Generator hidden size
    :param interval: Inner generations between two meta updates
    :param n_pairs: Antithetic pairs of meta candidates per meta update
    :param sigma: Noise std on the trained meta parameters
    :param learning_rate: Adam step size of the meta ES
    :param centre_episodes: Episodes of the unperturbed centre per generation (for the features)
    :param max_change: Trust region: factor by which a hyperparameter may move per generation
    :param trainable: The part of the network the meta ES trains: ``"last_layer"`` (default), ``"bias"`` (the
        last layer's bias: one offset per hyperparameter, on top of what the fixed network reads in the history),
        ``"all"``, or ``"none"``: no meta update runs, the network only proposes (a controller pre-trained on whole
        runs by ``python -m sb3_bierl.pretrain``, used as it was trained; issue 10)
    :param fitness: How a candidate's pairs are scored: ``"mean"`` or ``"best"`` (see :class:`BaseMetaController`)
    :param min_significance: The meta ES steps only when an antithetic meta pair's fitness difference has a
        paired t statistic (:func:`~sb3_bierl.meta.fitness.paired_t`, over the inner pairs the two candidates
        share) of at least this in absolute value; 0 steps at every update. With two candidates and centred
        ranks every step has the same length, signal or not: without the test, updates whose difference is
        noise make the proposals a random walk (issue 9)
    :param readout_gain: Scale of the initial readout (the generator's last layer) weights; 0 (default): the
        proposals are the initial values whatever the history until the meta ES trains the readout
    :param seed: Seed of the meta level's generator
    :param verbose: Verbosity level
    :param max_lr_to_sigma: Largest ``learning_rate / sigma`` set or evaluated (None: no cap; see
        :meth:`~BaseMetaController.within_step_radius`)
    :raises ValueError: on an unknown ``trainable`` or ``fitness``, ``min_significance < 0`` or a
        ``max_lr_to_sigma`` that is not positive
    """

    def __init__(
        self,
        space: HyperparameterSpace,
        encoder: str = "lstm",
        history_length: int = 10,
        hidden_size: int = 16,
        generator_size: int = 32,
        interval: int = 1,
        n_pairs: int = 1,
        sigma: float = 0.1,
        learning_rate: float = 0.03,
        centre_episodes: int = 1,
        max_change: float = 1.25,
        trainable: str = "last_layer",
        fitness: str = "mean",
        min_significance: float = 1.0,
        readout_gain: float = 0.0,
        seed: int | None = None,
        verbose: int = 0,
        max_lr_to_sigma: float | None = DEFAULT_MAX_LR_TO_SIGMA,
        standardise_features: bool = False,
    ):
        super().__init__(
            space, interval, 2 * n_pairs, centre_episodes, max_change, history_length, fitness, seed, verbose,
            max_lr_to_sigma=max_lr_to_sigma,
        )
        if trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {TRAINABLE}, got {trainable!r}")
        if not np.isfinite(min_significance) or min_significance < 0:
            raise ValueError(f"min_significance must be a t statistic >= 0, got {min_significance!r}")
        self.min_significance = float(min_significance)
        self.n_meta_steps = 0
        self.n_pairs = n_pairs
        self.sigma = sigma
        self.learning_rate = learning_rate
        self.trainable = trainable
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
                readout_gain=readout_gain,
                standardise_features=standardise_features,
            )
        self.set_phi(parameters_to_vector(self.network.parameters()).detach().numpy())

    @property
    def learns_online(self) -> bool:  # type: ignore[override]
        """Whether meta updates run (``trainable`` is not ``"none"``)"""
        return self.trainable != "none"

    @property
    def n_frozen(self) -> int:
        """Number of leading network parameters the meta ES does not train"""
        if self.trainable == "all":
            return 0
        if self.trainable == "none":
            return sum(p.numel() for p in self.network.parameters())
        last = self.network.generator[-1]
        trained = last.bias.numel() + (last.weight.numel() if self.trainable == "last_layer" else 0)
        return sum(p.numel() for p in self.network.parameters()) - trained

    @property
    def phi(self) -> np.ndarray:
        """All the network's parameters (the fixed ones, then the trained centre)"""
        return np.concatenate([self.frozen, self.strategy.theta])

    def set_phi(self, phi: np.ndarray) -> None:
        """Set all the network's parameters (a fresh meta optimiser for the trained part)."""
        phi = np.asarray(phi, dtype=np.float64)
        self.frozen = phi[: self.n_frozen].copy()
        self.strategy = OpenAIES(phi[self.n_frozen :])

    @th.no_grad()
    def propose(self, trained: np.ndarray | None = None) -> dict[str, float]:
        """Hyperparameters proposed from the current history by the trained parameters ``trained`` (default: the centre)."""
        trained = self.strategy.theta if trained is None else trained
        threads = th.get_num_threads()
        th.set_num_threads(1)  # a tiny network: extra threads cost ~50x (4 ms instead of 0.09 ms a call)
        try:
            phi = np.concatenate([self.frozen, trained])
            vector_to_parameters(th.as_tensor(phi, dtype=th.float32), self.network.parameters())
            history = th.as_tensor(self.history.as_array()).unsqueeze(0)
            unit = self.network(history).squeeze(0).numpy()
        finally:
            th.set_num_threads(threads)
        return self.space.from_unit(unit)

    def meta_update(self, hyperparameters: dict[str, float]) -> None:
        """One ES step on the trained part of the meta network, from this generation's shared rollouts."""
        noise = self.model.noise
        meta_population = self.strategy.ask(noise, self.rng, self.n_pairs, self.sigma)
        candidates = self.strategy.candidates(noise, meta_population)
        proposals = [self.within_trust_region(self.propose(c)) for c in candidates]
        fitness = self.evaluate_proposals(hyperparameters, proposals)
        if fitness is not None and self.is_significant():
            self.strategy.tell(noise, meta_population, fitness, self.learning_rate)
            self.n_meta_steps += 1

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("min_significance", 0.0)  # saved before session 5: it stepped at every update
        state.setdefault("n_meta_steps", state.get("n_meta_updates", 0))
        super().__setstate__(state)

    def _on_rollout_end(self) -> None:
        super()._on_rollout_end()
        self.logger.record("meta/n_steps", self.n_meta_steps)

    def is_significant(self) -> bool:
        """:return: whether some antithetic meta pair of the last meta update differs by at least ``min_significance`` (t)"""
        if self.min_significance == 0.0:
            return True
        rows = self.last_pair_fitness
        return any(abs(paired_t(rows[k], rows[k + 1])) >= self.min_significance for k in range(0, len(rows) - 1, 2))

    def summary(self) -> dict[str, Any]:
        """:return: the base counters and the meta ES steps taken (updates that passed ``min_significance``)"""
        return {**super().summary(), "n_meta_steps": self.n_meta_steps}

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
