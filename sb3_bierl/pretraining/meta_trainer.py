"""
ES on the meta controller's weights, each candidate scored by whole inner runs (issue 10; Lange et al. 2023,
"Discovering Evolution Strategies via Meta-Black-Box Optimization": meta-training on the normalised fitness of
whole inner runs across a task distribution).

One meta generation: ``tasks_per_generation`` task instances (the next tasks of the suite in turn, each with its
own seed and a random start of the hyperparameters inside the bounds); on each, the ``2 * n_pairs`` antithetic
candidates of the trained weights, the centre and a fixed-hyperparameter baseline each run BiERL for the task's
budget with common random numbers (same seed, same start). A candidate's utility is its centred rank among the
candidates of an instance, averaged over the instances (scores of different tasks never mix); the centre takes
one Adam step of OpenAI-ES on those utilities. With ``gain_spread > 1``, each instance of a continuous-control task
also draws a policy gain (:class:`~sb3_bierl.pretraining.policy_gain.PolicyGain`), so that the step sizes that suit
it differ from instance to instance.
"""

import dataclasses
import inspect
import os
import pathlib
import pickle
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from sb3_bierl.bierl.bierl import DEFAULT_ADAPTED, DEFAULT_BOUND_FACTOR, BiERL
from sb3_bierl.meta.controller import MetaController
from sb3_bierl.meta.space import HyperparameterSpace
from sb3_bierl.meta.two_point_rule import TwoPointRule, read_rule_file, save_rule
from sb3_bierl.meta.warm_start import load_controller, save_controller
from sb3_bierl.pretraining.inner_run import InnerRun
from sb3_bierl.pretraining.policy_gain import has_bounded_box_actions
from sb3_bierl.pretraining.suite import DEFAULT_SUITE, PretrainingTask
from sb3_bierl.strategies import NoiseTable, OpenAIES, centered_ranks, finite_or_worst

CHECKPOINT = "checkpoint.pkl"
CONTROLLER = "controller.pt"
#: How the pre-trained controller is meant to run: it only proposes, no online meta update
#: (``BiERL(meta_warm_start=...)`` reads this from the file)
USE_TRAINABLE = "none"
#: What can be pre-trained: the meta network (``lstm``; ``BiERL(meta_warm_start=...)``) or the two-point rule's
#: constants and start (``tpa``; ``BiERL(meta="tpa", meta_warm_start=...)``)
PRETRAINABLE = ("lstm", "tpa")


class RuleCentre:
    """
    A two-point rule as the meta ES's centre: its ``phi`` (:class:`~sb3_bierl.meta.TwoPointRule`) is all trained,
    nothing frozen (what :class:`MetaTrainer` reads of a controller).

    :param phi: (3,) the rule's unconstrained parameters (0: TPA as published, at the given learning rate)
    """

    def __init__(self, phi: np.ndarray):
        self.frozen = np.zeros(0)
        self.strategy = OpenAIES(np.asarray(phi, dtype=np.float64))

    @property
    def rule(self) -> TwoPointRule:
        """The rule at the centre"""
        return TwoPointRule.from_phi(self.strategy.theta)


def save_centre(
    controller: "MetaController | RuleCentre", path: str | os.PathLike, metadata: dict[str, Any] | None = None
) -> None:
    """
    Write a pre-trained meta level's file: a meta network's (:func:`save_controller`) or a rule's (:func:`save_rule`).

    :param controller: The meta ES's centre
    :param path: Output file (``.pt``)
    :param metadata: What the file records (command, commit, curve)
    """
    if isinstance(controller, RuleCentre):
        save_rule(controller.rule, path, metadata)
    else:
        save_controller(controller, path, metadata)


def default_space(adapted: Sequence[str] = DEFAULT_ADAPTED) -> HyperparameterSpace:
    """
    :param adapted: Names of the hyperparameters the controller sets (among BiERL's ``DEFAULT_ADAPTED``); the
        others stay at BiERL's defaults
    :return: those hyperparameters at BiERL's defaults, within its default bounds (a factor 8 either side)
    :raises ValueError: on an empty ``adapted``, a repeated name, or a name BiERL does not adapt by default
    """
    unknown = [name for name in adapted if name not in DEFAULT_ADAPTED]
    if not adapted or unknown or len(set(adapted)) != len(adapted):
        raise ValueError(
            f"adapted must name each of its hyperparameters once, among {DEFAULT_ADAPTED}; got {list(adapted)}"
        )
    parameters = inspect.signature(BiERL.__init__).parameters
    initial = {name: float(parameters[name].default) for name in DEFAULT_ADAPTED if name in adapted}
    bounds = {name: (value / DEFAULT_BOUND_FACTOR, value * DEFAULT_BOUND_FACTOR) for name, value in initial.items()}
    return HyperparameterSpace(bounds, initial)


def source_commit() -> str:
    """:return: the git commit of the package's checkout (``+dirty`` with uncommitted changes), or ``"unknown"``"""
    root = pathlib.Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "sb3_bierl"], cwd=root, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty.strip() else "")


class MetaTrainer:
    """
    Long-horizon meta-training of a :class:`~sb3_bierl.meta.MetaController`'s network, resumable: the state is
    written to ``out_dir`` after every meta generation, and a new trainer on the same folder continues from it.

    :param out_dir: Folder of the checkpoint, the controller file (the centre, rewritten every meta generation)
        and the curve
    :param suite: The pre-training tasks
    :param n_pairs: Antithetic pairs of candidates per meta generation
    :param sigma: Noise std on the trained weights
    :param learning_rate: Adam step size of the meta ES
    :param tasks_per_generation: Task instances per meta generation (consecutive tasks of the suite, cycling)
    :param start_spread: Random starts: each adapted hyperparameter starts at a point drawn uniformly in
        ``[-start_spread, start_spread]`` of the bounds' unit scale (2/3 of the default bounds: up to 4 times
        off the default either way); 0: always the defaults
    :param trainable: The part of the network meta-trained (``MetaController(trainable=...)``)
    :param gain_spread: Policy gains: each instance of a task with bounded continuous actions draws a gain
        log-uniformly in ``[1 / gain_spread, gain_spread]`` (:class:`~sb3_bierl.pretraining.policy_gain.PolicyGain`:
        the right sigma and learning rate move by about its inverse); 1: none. Without it, every task of the suite
        likes the same move and the controller learns that move, not to read the history (session 6)
    :param standardise_features: A new network's fixed hidden layer is initialised so that its units vary with the
        history (``MetaController(standardise_features=...)``); not with ``init``, whose file holds the weights
    :param late_fraction: Share of the last generations of an inner run whose centre returns make its score
    :param adapted: The hyperparameters the controller sets (:func:`default_space`): both (default), or
        ``("sigma",)`` as in the authors' code, the learning rate then fixed at BiERL's default in every inner run
    :param seed: Seed of the meta ES (noise, task seeds, starts) and of the network's initialisation
    :param init: A controller file to start from (default: a new network that proposes the defaults)
    :param bierl_kwargs: Other BiERL arguments of the inner runs
    :param metadata: Recorded in the controller file (e.g. the command line)
    :param meta: What is pre-trained (:data:`PRETRAINABLE`): ``"lstm"``, the meta network; ``"tpa"``, the
        two-point rule's start factor on the learning rate, damping and cumulation (three numbers; ``adapted`` is
        then the learning rate, ``trainable``, ``gain_spread`` and ``standardise_features`` do not apply; a
        candidate's score is the late mean of its population's mean return, as the rule rolls out no centre)
    :raises ValueError: on an unknown ``meta``, ``n_pairs``, ``tasks_per_generation`` < 1, ``sigma``,
        ``learning_rate`` <= 0,
        ``start_spread`` outside [0, 1], ``gain_spread < 1``, ``standardise_features`` with ``init``, an unknown
        ``adapted`` (:func:`default_space`), an ``init`` file for other hyperparameters, or an existing checkpoint
        with another configuration
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        suite: Sequence[PretrainingTask] = DEFAULT_SUITE,
        n_pairs: int = 4,
        sigma: float = 0.1,
        learning_rate: float = 0.02,
        tasks_per_generation: int = 2,
        start_spread: float = 2 / 3,
        trainable: str = "last_layer",
        gain_spread: float = 1.0,
        standardise_features: bool = False,
        late_fraction: float = 0.5,
        adapted: Sequence[str] = DEFAULT_ADAPTED,
        seed: int = 0,
        init: str | os.PathLike | None = None,
        bierl_kwargs: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        meta: str = "lstm",
    ):
        if meta not in PRETRAINABLE:
            raise ValueError(f"meta must be one of {PRETRAINABLE} (what is pre-trained), got {meta!r}")
        if meta == "tpa":
            if set(adapted) not in ({"learning_rate"}, set(DEFAULT_ADAPTED)):  # the default: what the CLI passes
                raise ValueError(f"the two-point rule sets the learning rate alone, got adapted={list(adapted)}")
            if standardise_features or gain_spread != 1.0:
                raise ValueError("standardise_features and gain_spread are for a meta network, not meta='tpa'")
            adapted, trainable = ("learning_rate",), "all"
        if n_pairs < 1 or tasks_per_generation < 1:
            raise ValueError(
                f"n_pairs and tasks_per_generation must be at least 1, got {n_pairs} and {tasks_per_generation}"
            )
        if not (sigma > 0 and learning_rate > 0):
            raise ValueError(f"sigma and learning_rate must be > 0, got {sigma} and {learning_rate}")
        if not 0 <= start_spread <= 1:
            raise ValueError(f"start_spread is a share of the bounds' unit scale, in [0, 1]: got {start_spread}")
        if not (np.isfinite(gain_spread) and gain_spread >= 1):
            raise ValueError(f"gain_spread is a factor >= 1 (1: no policy gain), got {gain_spread}")
        if standardise_features and init is not None:
            raise ValueError(
                "standardise_features initialises a new network, but init loads one from a file: drop one of the two"
            )
        if trainable == "none":
            raise ValueError("trainable='none' leaves nothing to pre-train: choose 'last_layer', 'bias' or 'all'")
        self.out_dir = pathlib.Path(out_dir)
        self.config = {
            "suite": [task.env_id for task in suite],
            "budgets": {task.env_id: task.budget for task in suite},
            "n_pairs": n_pairs,
            "sigma": sigma,
            "learning_rate": learning_rate,
            "tasks_per_generation": tasks_per_generation,
            "start_spread": start_spread,
            "trainable": trainable,
            "gain_spread": float(gain_spread),
            "standardise_features": bool(standardise_features),
            "late_fraction": late_fraction,
            "adapted": [name for name in DEFAULT_ADAPTED if name in adapted],  # the space's order, as given or not
            "seed": seed,
            "init": None if init is None else os.fspath(init),
            "bierl_kwargs": dict(bierl_kwargs or {}),
            "meta": meta,
        }
        self.suite = tuple(suite)
        #: Whether each task's actions are a bounded Box (those a policy gain applies to), by env id
        self.gains_apply = (
            {task.env_id: has_bounded_box_actions(task.env_id) for task in self.suite} if gain_spread > 1 else {}
        )
        self.metadata = dict(metadata or {})
        self.space = default_space(adapted)
        self.controller: MetaController | RuleCentre
        if meta == "tpa":
            phi = np.zeros(TwoPointRule.N_PARAMETERS) if init is None else read_rule_file(init)[0].to_phi()
            self.controller = RuleCentre(phi)
        elif init is None:
            self.controller = MetaController(
                self.space, trainable=trainable, seed=seed, standardise_features=standardise_features
            )
        else:
            self.controller = load_controller(init, self.space, trainable=trainable, seed=seed)
        self.rng = np.random.default_rng(seed)
        self.generation = 0
        #: One dict per finished meta generation (see :meth:`step`)
        self.records: list[dict[str, Any]] = []
        self.noise = NoiseTable(size=2**20, seed=seed)
        if (self.out_dir / CHECKPOINT).exists():
            self._resume()

    # ------------------------------------------------------------------ state
    def _resume(self) -> None:
        with open(self.out_dir / CHECKPOINT, "rb") as file:
            state = pickle.load(file)
        state["config"].setdefault("gain_spread", 1.0)  # written before policy gains: none
        state["config"].setdefault("standardise_features", False)
        state["config"].setdefault("adapted", list(DEFAULT_ADAPTED))  # written before sigma-only controllers
        state["config"].setdefault("meta", "lstm")  # written before pre-trained rules
        if state["config"] != self.config:
            raise ValueError(
                f"{self.out_dir / CHECKPOINT} was written with another configuration ({state['config']}): "
                "resume with the same arguments, or choose another output folder"
            )
        self.controller.frozen = state["frozen"]
        self.controller.strategy = state["strategy"]
        self.rng = state["rng"]
        self.generation = state["generation"]
        self.records = state["records"]

    def save(self) -> None:
        """Write the checkpoint and the controller file (the current centre) into ``out_dir``, atomically."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "config": self.config,
            "frozen": self.controller.frozen,
            "strategy": self.controller.strategy,
            "rng": self.rng,
            "generation": self.generation,
            "records": self.records,
        }
        tmp = self.out_dir / (CHECKPOINT + ".tmp")
        with open(tmp, "wb") as file:
            pickle.dump(state, file)
        os.replace(tmp, self.out_dir / CHECKPOINT)
        self.write_controller(self.out_dir / CONTROLLER)

    def write_controller(self, path: str | os.PathLike) -> None:
        """Save the current centre as a warm-start controller file, with how it was made."""
        metadata = {
            **self.metadata,
            "meta_trainable": USE_TRAINABLE,
            "pretraining": self.config,
            "meta_generations": self.generation,
            "commit": source_commit(),
            "curve": [
                {k: r[k] for k in ("generation", "centre", "fixed", "candidates", "rule") if k in r}
                for r in self.records
            ],
        }
        tmp = pathlib.Path(os.fspath(path) + ".tmp")
        save_centre(self.controller, tmp, metadata)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ one meta generation
    def plan(self) -> list[tuple[PretrainingTask, int, dict[str, float], float]]:
        """:return: this meta generation's task instances: (task, seed, start hyperparameters, policy gain)"""
        instances = []
        for k in range(self.config["tasks_per_generation"]):
            index = self.generation * self.config["tasks_per_generation"] + k
            task = self.suite[index % len(self.suite)]
            spread = self.config["start_spread"]
            start = self.space.from_unit(self.rng.uniform(-spread, spread, size=len(self.space)))
            gain = 1.0
            if self.gains_apply.get(task.env_id, False):  # drawn only then: runs without gains keep their draws
                gain = float(np.exp(self.rng.uniform(-1, 1) * np.log(self.config["gain_spread"])))
            instances.append((task, 1000 * (self.config["seed"] + 1) + index, start, gain))
        return instances

    def step(self, map_fn: Callable[..., Any] = map) -> dict[str, Any]:
        """
        Run one meta generation and take the meta ES step.

        :param map_fn: How the inner runs are mapped (``Executor.map`` to run them in parallel; default: in turn)
        :return: its record: mean normalised score of the ``candidates``, the ``centre`` and the ``fixed``
            baseline, per task too, and the wall-clock time
        """
        start_time = time.perf_counter()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        centre_file = str(self.out_dir / "centre_generation.pt")
        save_centre(self.controller, centre_file)
        strategy, frozen = self.controller.strategy, self.controller.frozen
        population = strategy.ask(self.noise, self.rng, self.config["n_pairs"], self.config["sigma"])
        trained = strategy.candidates(self.noise, population).astype(np.float64)
        phis = [np.concatenate([frozen, row]) for row in trained] + [np.concatenate([frozen, strategy.theta])]
        instances = self.plan()
        runs = []
        for task, seed, start, gain in instances:
            common: dict[str, Any] = {
                "task": task,
                "seed": seed,
                "start": start,
                "policy_gain": gain,
                "controller_file": centre_file,
                "late_fraction": self.config["late_fraction"],
                "bierl_kwargs": self.config["bierl_kwargs"],
                "meta": self.config["meta"],
            }
            runs += [InnerRun(phi=phi, **common) for phi in phis] + [InnerRun(fixed=True, **common)]
        results = list(map_fn(run_inner_entry, runs))
        per_instance = len(phis) + 1
        scores = np.array(
            [[r["normalised"] for r in results[i : i + per_instance]] for i in range(0, len(results), per_instance)]
        )
        utilities = np.zeros(len(trained))
        for row in scores:
            clean = finite_or_worst(row[: len(trained)])
            if clean is not None:
                utilities += centered_ranks(clean) / len(scores)
        strategy.tell(self.noise, population, utilities, self.config["learning_rate"], shaped=True)
        self.generation += 1
        record = {
            "generation": self.generation,
            "candidates": float(np.nanmean(scores[:, : len(trained)])),
            "centre": float(np.nanmean(scores[:, -2])),
            "fixed": float(np.nanmean(scores[:, -1])),
            "tasks": [
                {
                    "env": task.env_id,
                    "seed": seed,
                    "start": start,
                    "policy_gain": gain,
                    "candidates": scores[i, : len(trained)].tolist(),
                    "centre": float(scores[i, -2]),
                    "fixed": float(scores[i, -1]),
                    "centre_final_hyperparameters": results[i * per_instance + len(trained)]["final_hyperparameters"],
                }
                for i, (task, seed, start, gain) in enumerate(instances)
            ],
            "steps": int(sum(r["num_timesteps"] for r in results)),
            "cpu_time_s": float(sum(r["cpu_time_s"] for r in results)),
            "wall_time_s": time.perf_counter() - start_time,
        }
        if isinstance(self.controller, RuleCentre):  # the rule after this generation's step (the next centre)
            record["rule"] = dataclasses.asdict(self.controller.rule)
        self.records.append(record)
        self.save()
        return record

    def train(
        self, n_generations: int, executor: Executor | None = None, progress_bar: bool = True, logger: Any = None
    ) -> None:
        """
        Run meta generations until ``n_generations`` are done (counting those of a resumed checkpoint).

        :param n_generations: Total meta generations
        :param executor: Runs the inner runs in parallel (e.g. a ``ProcessPoolExecutor``); None: in this process
        :param progress_bar: Show a tqdm progress bar over the meta generations
        :param logger: An SB3 logger; every meta generation records ``pretrain/*`` keys and dumps
        """
        from tqdm import tqdm

        bar = tqdm(total=n_generations, initial=self.generation, desc="meta generations", disable=not progress_bar)
        try:
            while self.generation < n_generations:
                record = self.step(map if executor is None else executor.map)
                bar.update(1)
                bar.set_postfix(centre=f"{record['centre']:.3f}", fixed=f"{record['fixed']:.3f}")
                if logger is not None:
                    logger.record("pretrain/generation", record["generation"])
                    logger.record("pretrain/centre_score", record["centre"])
                    logger.record("pretrain/fixed_score", record["fixed"])
                    logger.record("pretrain/candidate_score", record["candidates"])
                    logger.record("pretrain/advantage", record["centre"] - record["fixed"])
                    logger.record("pretrain/tasks", " ".join(t["env"] for t in record["tasks"]))
                    logger.record("time/steps", record["steps"])
                    logger.record("time/wall_time_s", record["wall_time_s"])
                    logger.dump(record["generation"])
        finally:
            bar.close()


def run_inner_entry(run: InnerRun) -> dict[str, Any]:
    """Process-pool entry point of :func:`~sb3_bierl.pretraining.inner_run.run_inner` (imported lazily)."""
    from sb3_bierl.pretraining.inner_run import run_inner

    return run_inner(run)
