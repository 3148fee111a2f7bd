"""
Does the meta level pay for itself? (issue 9) Three stages, each at equal environment steps (meta level
included), every run one process with ``n_workers=1``, deterministic evaluation as in
``python -m sb3_bierl.benchmarks.compare``:

1. ``headroom``: plain ES at a small grid of fixed ``(sigma, learning_rate)``: a factor 2 and 4 either side
   of the defaults, one at a time. The best fixed setting in hindsight defines the normalised score of a
   task: 0 = ES at its defaults, 1 = the best fixed setting's mean final return.
2. ``defaults``: ES and BiERL at the shared defaults: BiERL's default meta level (``tpa``) and the paper's
   meta network (``bierl``).
3. ``robustness``: ES and BiERL started 4 times too large or too small in ``sigma`` or ``learning_rate``.

A run's name is ``<algo>[-s<sigma factor>][-lr<learning-rate factor>]_<env>_<seed>``, the factors on
:data:`REFERENCE` (sigma 0.02, learning rate 0.01: ES's defaults), so that a name keeps its meaning if the
defaults ever change: ``es`` is ES at sigma 0.02 and learning rate 0.01, ``es-s1.5-lr3`` ES at 0.03 and 0.03,
``bierl-s4_Hopper-v5_0`` BiERL started at 4 times the default sigma. The stages run around the current
defaults (:func:`at_defaults`: with defaults 0.03 and 0.03, the robustness run above would be
``bierl-s6-lr3``). The runs go through the benchmarks' runner (:mod:`sb3_bierl.benchmarks.run_spec`); each run's
record is written to ``<out>/runs/<name>.json`` when it ends (a run done with the same budget is skipped on a
rerun: the benchmark resumes where it stopped).

The report (``<out>/results.md``) aggregates with rliable (Agarwal et al. 2021): IQM of the normalised score
with 95% stratified-bootstrap intervals, probability of improvement; per-task tables too.

Reproduce ``docs/benchmarks/meta_level.md``::

    python -m sb3_bierl.benchmarks.meta_level --stages headroom defaults robustness --out bench_results/meta_level

Quick check of the pipeline: ``--envs Pendulum-v1 --seeds 0 1 --scale 0.05 --eval-episodes 2 --out /tmp/ml``.
"""

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_bierl.benchmarks.aggregates import interval_estimates
from sb3_bierl.benchmarks.compare import (
    EVAL_SEED_OFFSET,
    es_defaults,
    evaluate_final,
    markdown_table,
    parse_steps,
)
from sb3_bierl.benchmarks.records import load_records
from sb3_bierl.benchmarks.run_spec import RunSpec, run_specs

#: This benchmark's trainer (:func:`sb3_bierl.benchmarks.run_spec.run_specs`)
TRAINER = "sb3_bierl.benchmarks.meta_level:train_and_evaluate"

#: The suite and its budgets in environment steps: about 30 to 50 generations of the default 16 pairs each,
#: sized so that the whole evidence fits in about 3 hours of a 2-core machine
SUITE_BUDGETS: dict[str, int] = {
    "Pendulum-v1": 300_000,
    "LunarLanderContinuous-v3": 250_000,
    "Swimmer-v5": 600_000,
    "Hopper-v5": 500_000,
    "HalfCheetah-v5": 600_000,
    "Ant-v5": 400_000,
}
#: The headroom grid runs on the cheaper tasks (LunarLander's Box2D steps and Ant cost the most)
HEADROOM_ENVS: tuple[str, ...] = ("Pendulum-v1", "Swimmer-v5", "Hopper-v5", "HalfCheetah-v5")
#: Factors of the defaults in the headroom grid (one hyperparameter at a time)
GRID_FACTORS: tuple[float, ...] = (0.25, 0.5, 2.0, 4.0)
#: Factors of the robustness starts
ROBUSTNESS_FACTORS: tuple[float, ...] = (0.25, 4.0)
#: The robustness starts: ``(sigma factor, learning-rate factor)`` on the current defaults, one off at a time
ROBUSTNESS_STARTS: tuple[tuple[float, float], ...] = (
    *((f, 1.0) for f in ROBUSTNESS_FACTORS),
    *((1.0, f) for f in ROBUSTNESS_FACTORS),
)
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
GRID_SEEDS: tuple[int, ...] = (0, 1)
#: Algorithm bases: ``warm`` is BiERL warm-started from a pre-trained controller (``train_and_evaluate(warm_start=...)``),
#: ``bold`` BiERL with the bold-driver meta level (``BiERL(meta="bold_driver")``), ``tpa`` with two-point adaptation
#: (``BiERL(meta="tpa")``), ``tpa_pair`` the same with its two points in the gradient (``last_step_pair=True``),
#: ``es_pair`` ES with that pair and no meta level (``ES(last_step_pair=True)``: the ablation of ``tpa_pair``),
#: ``warm_tpa`` TPA started from a pre-trained two-point rule (``BiERL(meta="tpa", meta_warm_start=...)``),
#: ``tpa_apn_once`` TPA with sigma set in the action space before the first generation
#: (``BiERL(meta="tpa", meta_desired_action_stddev=0.06)``: the probe's ``es-tpa-apn-once`` rule), ``tpa_apn_first``
#: the same and after every generation (``meta_sigma_every_generation=True``: ``es-tpa-apn-first``'s rule),
#: ``tpa_apn_band`` the first correction only where the distance is more than 2 times off (session 24), ``tpa_wide``
#: TPA with the learning rate's bounds a factor 32, not 8, either side of the start (session 25). The
#: package measures with the meta level's generator (``seed + 1``), the probe with ``seed``: not the probe's runs bit
#: for bit
BASES: dict[str, str] = {
    "es": "ES", "bierl": "BiERL", "warm": "BiERL", "bold": "BiERL", "tpa": "BiERL", "tpa_pair": "BiERL", "es_pair": "ES",
    "warm_tpa": "BiERL", "tpa_apn_once": "BiERL", "tpa_apn_first": "BiERL",
    "tpa_apn_band": "BiERL", "tpa_wide": "BiERL",
}
#: The bases whose runs need a pre-trained file (``train_and_evaluate(warm_start=...)``)
WARM_BASES: tuple[str, ...] = ("warm", "warm_tpa")
#: Constructor arguments a base sets besides the name's. ``bierl`` and ``warm`` are the meta network (``meta="lstm"``),
#: BiERL's default until session 22 (now ``"tpa"``, the ``tpa`` base): a name means the same run whatever the defaults
BASE_KWARGS: dict[str, dict[str, Any]] = {
    "bierl": {"meta": "lstm"},
    "warm": {"meta": "lstm"},
    "bold": {"meta": "bold_driver"},
    "tpa": {"meta": "tpa"},
    "tpa_pair": {"meta": "tpa", "last_step_pair": True},
    "es_pair": {"last_step_pair": True},
    "warm_tpa": {"meta": "tpa"},
    "tpa_apn_once": {"meta": "tpa", "meta_desired_action_stddev": 0.06},
    "tpa_apn_first": {"meta": "tpa", "meta_desired_action_stddev": 0.06, "meta_sigma_every_generation": True},
    "tpa_apn_band": {"meta": "tpa", "meta_desired_action_stddev": 0.06, "meta_action_stddev_tolerance": 2.0},
    "tpa_wide": {"meta": "tpa"},
}
#: Bases that set the learning rate's bounds, as ``(start / factor, start * factor)`` around the run's start (the
#: others keep BiERL's default bounds)
BASE_LEARNING_RATE_BOUND_FACTOR: dict[str, float] = {"tpa_wide": 32.0}
#: The values the factors of a run's name multiply (ES's defaults, fixed here): a name means the same run
#: whatever the package's defaults are
REFERENCE: dict[str, float] = {"sigma": 0.02, "learning_rate": 0.01}
ALGO_PATTERN = re.compile(r"^(?P<base>[a-z_]+)(?:-s(?P<sigma>[0-9.]+))?(?:-lr(?P<lr>[0-9.]+))?(?:-n(?P<pairs>[0-9]+))?$")


# ---------------------------------------------------------------------- algorithm names
def algo_name(base: str, sigma_factor: float = 1.0, lr_factor: float = 1.0) -> str:
    """
    :param base: ``"es"``, ``"bierl"`` or ``"warm"`` (BiERL warm-started from a pre-trained controller)
    :param sigma_factor: Factor of :data:`REFERENCE`'s ``sigma`` at the start
    :param lr_factor: Factor of :data:`REFERENCE`'s ``learning_rate`` at the start
    :return: The algorithm's name, e.g. ``"es-s4"`` or ``"bierl-lr0.25"``
    """
    name = base
    if sigma_factor != 1.0:
        name += f"-s{sigma_factor:g}"
    if lr_factor != 1.0:
        name += f"-lr{lr_factor:g}"
    return name


def default_factors() -> tuple[float, float]:
    """:return: ES's default ``(sigma, learning_rate)`` as factors of :data:`REFERENCE` (``(1.0, 1.0)`` today)"""
    defaults = es_defaults([])
    return tuple(round(defaults[name] / REFERENCE[name], 9) for name in ("sigma", "learning_rate"))  # type: ignore[return-value]


def at_defaults(base: str, sigma_factor: float = 1.0, lr_factor: float = 1.0) -> str:
    """
    :param base: ``"es"``, ``"bierl"`` or ``"warm"``
    :param sigma_factor: Factor of ES's *current* default ``sigma`` at the start
    :param lr_factor: Factor of ES's current default ``learning_rate`` at the start
    :return: The run name (factors on :data:`REFERENCE`), e.g. ``at_defaults("bierl", 4.0) == "bierl-s4"`` with
        today's defaults, ``"bierl-s6-lr3"`` if the defaults were sigma 0.03 and learning rate 0.03
    """
    sigma, lr = default_factors()
    return algo_name(base, round(sigma * sigma_factor, 9), round(lr * lr_factor, 9))


def parse_algo(name: str) -> tuple[str, float, float]:
    """
    :param name: An algorithm name (see :func:`algo_name`; a ``-n<pairs>`` suffix sets ``n_pairs``, see :func:`algo_kwargs`)
    :return: ``(base, sigma factor, learning-rate factor)``
    :raises ValueError: if the name does not follow the pattern
    """
    match = ALGO_PATTERN.match(name)
    if match is None or match["base"] not in BASES:
        raise ValueError(f"Unknown algorithm {name!r}: expected <{'|'.join(BASES)}>[-s<factor>][-lr<factor>][-n<pairs>]")
    return match["base"], float(match["sigma"] or 1.0), float(match["lr"] or 1.0)


def algo_kwargs(name: str) -> dict[str, Any]:
    """
    :param name: An algorithm name, e.g. ``"es-s4"`` or ``"es-n8"`` (ES with 8 pairs: a diagnosis run)
    :return: The constructor arguments it sets: ``sigma`` and ``learning_rate`` always (:data:`REFERENCE` times
        the name's factors), ``n_pairs`` if the name gives it, the base's :data:`BASE_KWARGS` and
        ``hyperparameter_bounds`` if the base is in :data:`BASE_LEARNING_RATE_BOUND_FACTOR` (the others keep the
        defaults)
    """
    base, sigma_factor, lr_factor = parse_algo(name)
    kwargs: dict[str, Any] = {
        **BASE_KWARGS.get(base, {}),
        "sigma": REFERENCE["sigma"] * sigma_factor,
        "learning_rate": REFERENCE["learning_rate"] * lr_factor,
    }
    pairs = ALGO_PATTERN.match(name)["pairs"]
    if pairs is not None:
        kwargs["n_pairs"] = int(pairs)
    if base in BASE_LEARNING_RATE_BOUND_FACTOR:
        factor, learning_rate = BASE_LEARNING_RATE_BOUND_FACTOR[base], kwargs["learning_rate"]
        kwargs["hyperparameter_bounds"] = {"learning_rate": (learning_rate / factor, learning_rate * factor)}
    return kwargs


def is_grid_setting(name: str) -> bool:
    """:return: whether ``name`` is ES at a fixed (sigma, learning rate) other than the current defaults, with the default n_pairs"""
    return parse_algo(name)[0] == "es" and name != at_defaults("es") and "n_pairs" not in algo_kwargs(name)


#: The meta levels the ``defaults`` and ``robustness`` stages run: BiERL's default for OpenAI-ES (``tpa``, since
#: session 22) and the paper's meta network (``bierl``, the default before)
META_STAGE_BASES: tuple[str, ...] = ("tpa", "bierl")


def stage_algos(stage: str) -> list[str]:
    """
    :param stage: ``"headroom"``, ``"defaults"`` or ``"robustness"``
    :return: The algorithms the stage runs
    """
    if stage == "headroom":
        return [at_defaults("es", f) for f in GRID_FACTORS] + [at_defaults("es", 1.0, f) for f in GRID_FACTORS]
    if stage == "defaults":
        return [at_defaults("es"), *(at_defaults(base) for base in META_STAGE_BASES)]
    if stage == "robustness":
        return [at_defaults(base, s, lr) for s, lr in ROBUSTNESS_STARTS for base in (*META_STAGE_BASES, "es")]
    raise ValueError(f"Unknown stage {stage!r}: choose among headroom, defaults, robustness")


# ---------------------------------------------------------------------- one run
def make_generation_trace() -> Any:
    """:return: A callback recording, after every generation, the step count, hyperparameters and meta level's state"""
    from stable_baselines3.common.callbacks import BaseCallback

    class GenerationTrace(BaseCallback):
        def __init__(self) -> None:
            super().__init__(0)
            self.rows: list[list[float]] = []

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            model = self.model
            meta = getattr(model, "meta_controller", None)
            rollout = model.last_rollout
            self.rows.append(
                [
                    int(model.num_timesteps),
                    float(model.hyperparameters["sigma"]),
                    float(model.hyperparameters["learning_rate"]),
                    float(np.nanmean(rollout.returns)) if rollout is not None else float("nan"),
                    0 if meta is None else int(meta.n_meta_updates),
                ]
            )

    return GenerationTrace()


def fit_and_record(model: Any, spec: RunSpec, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """
    Train a model built for ``spec`` and evaluate its deterministic policy; the model is closed after.

    :param model: The model (an :class:`~sb3_bierl.ES` or one of its family, ``n_workers=1``)
    :param spec: The run
    :param callbacks: Other SB3 callbacks of ``learn`` (they run before the trace, which records what they set)
    :return: The run's fields (JSON-serialisable): ``final_return``, ``steps_reached``, ``train_time_s`` and
        ``cpu_time_s`` (training), the evaluation, the hyperparameters and meta level's state after every
        generation (``trace``), the meta level's summary if it has one
    """
    trace = make_generation_trace()
    start = time.perf_counter()
    cpu_start = time.process_time()
    model.learn(spec.budget, callback=[*callbacks, trace])
    wall_time, cpu_time = time.perf_counter() - start, time.process_time() - cpu_start
    returns = evaluate_final(model, spec.env_id, spec.seed, spec.eval_episodes)
    meta = getattr(model, "meta_controller", None)
    record: dict[str, Any] = {
        "final_return": float(np.mean(returns)),
        "steps_reached": int(model.num_timesteps),
        "train_time_s": wall_time,
        "cpu_time_s": cpu_time,
        "eval_std": float(np.std(returns)),
        "eval_seed": EVAL_SEED_OFFSET + spec.seed,
        "eval_returns": returns.tolist(),
        "initial_hyperparameters": {"sigma": float(model.sigma), "learning_rate": float(model.learning_rate)},
        "trace_columns": ["num_timesteps", "sigma", "learning_rate", "population_return_mean", "n_meta_updates"],
        "trace": trace.rows,
    }
    if meta is not None:
        record["meta"] = meta.summary()
    model.close()
    return record


def train_and_evaluate(spec: RunSpec, warm_start: str | None = None) -> dict[str, Any]:
    """
    Train one model and evaluate its deterministic policy (:func:`fit_and_record`).

    :param spec: The run
    :param warm_start: The pre-trained file of the ``warm`` and ``warm_tpa`` runs (``BiERL(meta_warm_start=...)``)
    :return: The run's fields (the trainer of :data:`TRAINER`; see :func:`fit_and_record`), and for a warm-started
        run the file and what it records
    :raises ValueError: for a warm-started run without ``warm_start``
    """
    import torch

    import sb3_bierl

    torch.set_num_threads(1)
    algo_class = getattr(sb3_bierl, BASES[parse_algo(spec.algo)[0]])
    kwargs = algo_kwargs(spec.algo)
    if parse_algo(spec.algo)[0] in WARM_BASES:
        if warm_start is None:
            raise ValueError(f"{spec.name} is a warm-started run: give the controller file (warm_start)")
        kwargs["meta_warm_start"] = warm_start
    start, cpu_start = time.perf_counter(), time.process_time()
    model = algo_class("MlpPolicy", spec.env_id, seed=spec.seed, n_workers=1, verbose=0, **kwargs)
    build_time, build_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    record = fit_and_record(model, spec)
    record["train_time_s"] += build_time  # construction and training, as before
    record["cpu_time_s"] += build_cpu
    if "meta_warm_start" in kwargs:
        record["warm_start"] = {"file": str(warm_start), **record["meta"]["warm_start"]}
    return record


def plan_runs(stages: Sequence[str], envs: Sequence[str] | None, seeds: Sequence[int] | None, scale: float, eval_episodes: int) -> list[RunSpec]:
    """
    :param stages: Stages to run
    :param envs: Environment ids (default: each stage's)
    :param seeds: Seeds (default: each stage's)
    :param scale: Multiplier of the budgets
    :param eval_episodes: Episodes of the final evaluation
    :return: The runs, stage by stage in the order given, seed by seed within a stage (the most expensive
        first within a seed), without duplicates
    """
    cost = {"LunarLanderContinuous-v3": 4.0, "Ant-v5": 5.0, "Hopper-v5": 1.3, "Pendulum-v1": 0.2}
    specs: dict[str, RunSpec] = {}
    for stage in stages:
        stage_specs: list[RunSpec] = []
        stage_envs = envs or (HEADROOM_ENVS if stage in ("headroom", "robustness") else tuple(SUITE_BUDGETS))
        stage_seeds = seeds or (DEFAULT_SEEDS if stage == "defaults" else GRID_SEEDS)
        for env_id in stage_envs:
            budget = max(1, round(SUITE_BUDGETS.get(env_id, 300_000) * scale))
            for algo in stage_algos(stage):
                for seed in stage_seeds:
                    stage_specs.append(RunSpec(algo, env_id, seed, budget, eval_episodes))
        # seed by seed (a partial run still covers every task and setting), the most expensive first
        for spec in sorted(stage_specs, key=lambda s: (stage_seeds.index(s.seed), -s.budget * cost.get(s.env_id, 1.0))):
            specs.setdefault(spec.name, spec)
    return list(specs.values())


# ---------------------------------------------------------------------- report
def final_returns(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[int, float]]:
    """:return: ``{(env, algo): {seed: final return}}``"""
    table: dict[tuple[str, str], dict[int, float]] = {}
    for record in records:
        table.setdefault((record["env"], record["algo"]), {})[record["seed"]] = record["final_return"]
    return table


def normalisation(table: dict[tuple[str, str], dict[int, float]], env_id: str) -> tuple[float, float, str] | None:
    """
    The task's normalisation: 0 = ES at its current defaults (mean over seeds), 1 = the best fixed ES setting in
    hindsight (the best mean over seeds among the other fixed settings run: the headroom grid's).

    :return: ``(zero, one, best setting)``, or None without ES at its defaults, without a grid on this task, or
        when no grid setting beats the defaults (no headroom: the task has no scale to be normalised by)
    """
    default = table.get((env_id, at_defaults("es")))
    grid = {algo: runs for (env, algo), runs in table.items() if env == env_id and is_grid_setting(algo)}
    if not default or not grid:
        return None
    zero = float(np.mean(list(default.values())))
    best_algo = max(grid, key=lambda algo: np.mean(list(grid[algo].values())))
    best = float(np.mean(list(grid[best_algo].values())))
    return (zero, best, best_algo) if best > zero else None


def return_matrix(table: dict[tuple[str, str], dict[int, float]], algo: str, envs: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
    """:return: (n_seeds, n_tasks) final returns of ``algo``"""
    return np.array([[table[(env_id, algo)][seed] for env_id in envs] for seed in seeds], dtype=np.float64)


def score_matrix(table: dict[tuple[str, str], dict[int, float]], algo: str, envs: Sequence[str], seeds: Sequence[int]) -> np.ndarray:
    """:return: (n_seeds, n_tasks) normalised scores of ``algo`` (every task must have a :func:`normalisation`)"""
    returns = return_matrix(table, algo, envs, seeds)
    norms = [normalisation(table, env_id) for env_id in envs]
    zero = np.array([norm[0] for norm in norms])
    one = np.array([norm[1] for norm in norms])
    return (returns - zero) / (one - zero)


def rliable_summary(
    scores: dict[str, np.ndarray],
    returns: dict[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    reps: int | None = None,
    seed: int = 0,
) -> list[str]:
    """
    With rliable (Agarwal et al. 2021): the IQM and mean of each algorithm's normalised scores with 95%
    stratified-bootstrap intervals, and the probability of improvement of each pair on the final returns
    (a per-task rank statistic: it needs no normalisation, so it covers every task).

    :param scores: Algorithm -> (n_runs, n_tasks) normalised scores (tasks with a headroom grid); may be empty
    :param returns: Algorithm -> (n_runs, n_tasks) final returns (every task)
    :param pairs: ``(x, y)`` pairs: P(x > y)
    :param reps: Bootstrap replicates (None: ``aggregates.BOOTSTRAP_REPS``)
    :param seed: Seed of the bootstrap (the same runs give the same intervals)
    :return: Markdown lines
    """
    from rliable import metrics

    lines: list[str] = []
    if scores:
        estimates, intervals = interval_estimates(
            scores, lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)]), reps, seed
        )
        rows = [
            [name, f"{estimates[name][0]:.2f} [{intervals[name][0, 0]:.2f}, {intervals[name][1, 0]:.2f}]",
             f"{estimates[name][1]:.2f} [{intervals[name][0, 1]:.2f}, {intervals[name][1, 1]:.2f}]", str(scores[name].shape[0])]
            for name in scores
        ]
        lines += markdown_table(["Algorithm", "IQM normalised score [95% CI]", "Mean [95% CI]", "Runs per task"], rows) + [""]
    pair_returns = {f"{x} > {y}": (returns[x], returns[y]) for x, y in pairs if x in returns and y in returns}
    if pair_returns:
        estimates, intervals = interval_estimates(pair_returns, metrics.probability_of_improvement, reps, seed)
        rows = []
        for name in pair_returns:
            low, high = np.ravel(intervals[name])[:2]
            rows.append([name, f"{float(np.ravel(estimates[name])[0]):.2f} [{low:.2f}, {high:.2f}]"])
        lines += markdown_table(["Comparison", "P(improvement) [95% CI]"], rows) + [""]
    return lines


def make_report(records: Sequence[dict[str, Any]]) -> str:
    """:return: The Markdown report of every finished run"""
    if not records:
        return "# Does the meta level pay?\n\nNo finished runs yet.\n"
    table = final_returns(records)
    envs = [e for e in SUITE_BUDGETS if any(r["env"] == e for r in records)]
    envs += sorted({r["env"] for r in records} - set(envs))
    es_name, bierl_name = at_defaults("es"), at_defaults("bierl")
    algos = sorted({r["algo"] for r in records}, key=lambda a: (a not in (es_name, bierl_name), a != es_name, parse_algo(a)[1:], a))
    lines = ["# Does the meta level pay?", "", "Final return of the deterministic policy (mean over seeds of each run's "
             "mean evaluation return; number of seeds in brackets), at equal environment steps, meta level included.", ""]
    header = ["Algorithm", *envs]
    rows = []
    for algo in algos:
        cells = []
        for env_id in envs:
            runs = table.get((env_id, algo))
            cells.append("–" if not runs else f"{np.mean(list(runs.values())):.1f} ({len(runs)})")
        rows.append([algo, *cells])
    lines += markdown_table(header, rows) + [""]
    budgets = {r["env"]: r["n_timesteps"] for r in records}
    lines += ["Budgets: " + ", ".join(f"{e} {budgets[e]:,}" for e in envs) + " steps. A run stops at the end of the "
              "generation that reaches its budget (as SB3's on-policy algorithms stop after a rollout), so the steps "
              "used differ by up to a generation:", ""]
    rows = []
    for algo in (es_name, bierl_name):
        cells = []
        for env_id in envs:
            steps = [r["steps_reached"] for r in records if r["env"] == env_id and r["algo"] == algo and r.get("steps_reached")]
            cells.append(f"{np.mean(steps):,.0f}" if steps else "–")
        rows.append([algo, *cells])
    lines += markdown_table(["Mean steps used", *envs], rows) + [""]

    lines += ["## Headroom: the best fixed setting", ""]
    rows = []
    for env_id in envs:
        norm = normalisation(table, env_id)
        default = table.get((env_id, es_name))
        if norm is not None:
            rows.append([env_id, f"{norm[0]:.1f}", f"{norm[1]:.1f}", norm[2]])
        elif default and any(env == env_id and a != es_name and parse_algo(a)[0] == "es" for env, a in table):
            rows.append([env_id, f"{np.mean(list(default.values())):.1f}", "–", "no grid setting beats the defaults"])
        elif default:
            rows.append([env_id, f"{np.mean(list(default.values())):.1f}", "–", "no headroom grid on this task"])
    lines += markdown_table(["Task", "ES at defaults (score 0)", "Best fixed (score 1)", "Best setting"], rows) + [""]
    lines += ["Tasks without a score 1 are left out of the normalised IQM; the probability of improvement (a rank "
              "statistic per task) covers every task.", ""]

    meta_runs = [r for r in records if "meta" in r]
    if meta_runs:
        lines += ["## The meta level's cost and schedule", ""]
        rows = []
        for algo in sorted({r["algo"] for r in meta_runs}):
            runs = [r for r in meta_runs if r["algo"] == algo]
            overhead = np.mean([r["meta"]["step_overhead"] for r in runs])
            first = max(r["meta"]["first_update_generation"] if r["meta"]["first_update_generation"] is not None else np.inf for r in runs)
            updates = np.mean([r["meta"]["n_meta_updates"] for r in runs])
            rows.append([algo, f"{100 * overhead:.1f}%", f"{first:g}", f"{updates:.0f}"])
        lines += markdown_table(["Algorithm", "meta/step_overhead (mean)", "First meta update (latest generation over runs)", "Meta updates per run (mean)"], rows) + [""]

    meta_bases = ("bierl", "bold", "tpa", "tpa_pair")  # BiERL's default meta level, and the rules where their runs are there
    ablations = [("tpa_pair", "es_pair"), ("tpa_pair", "tpa"), ("es_pair", "es")]  # what the pair and the rule each add
    sections = (
        (
            "At the defaults",
            [
                (bierl_name, es_name),
                *((at_defaults(b), es_name) for b in meta_bases[1:]),
                *((at_defaults(x), at_defaults(y)) for x, y in ablations),
            ],
        ),
        (
            "Started 4 times off",
            [(at_defaults(b, s, lr), at_defaults("es", s, lr)) for s, lr in ROBUSTNESS_STARTS for b in meta_bases],
        ),
    )
    for title, algo_pairs in sections:
        section: list[str] = []
        for pair in algo_pairs:
            task_envs = [e for e in envs if all(table.get((e, a)) for a in pair)]
            seeds = sorted(set.intersection(*(set(table[(e, a)]) for e in task_envs for a in pair))) if task_envs else []
            if not seeds:
                continue
            returns = {a: return_matrix(table, a, task_envs, seeds) for a in pair}
            normalised_envs = [e for e in task_envs if normalisation(table, e) is not None]
            scores = {a: score_matrix(table, a, normalised_envs, seeds) for a in pair} if normalised_envs else {}
            section += [
                f"### {pair[0]} against {pair[1]}",
                "",
                f"Probability of improvement on {', '.join(task_envs)}; normalised scores on "
                f"{', '.join(normalised_envs) or 'no task'}; seeds {seeds}.",
                "",
            ]
            try:
                section += rliable_summary(scores, returns, [pair])
            except ImportError:
                section += ['rliable is not installed: `pip install -e ".[benchmark]"`', ""]
        if section:
            lines += [f"## {title} (rliable)", "", *section]
    return "\n".join(lines)


# ---------------------------------------------------------------------- plot
def plot_hyperparameters(records: Sequence[dict[str, Any]], path: Path, bases: Sequence[str] = ("bierl", "warm")) -> bool:
    """
    BiERL's sigma and learning rate along training, per task (one line per run; colour: the run name), against
    the defaults.

    :param records: Run records with a ``trace``
    :param path: The figure's file
    :param bases: The bases of the runs plotted (e.g. ``("tpa", "warm_tpa")``)
    :return: whether the plot was written (matplotlib may be missing)
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import EngFormatter
    except ImportError:
        return False
    runs = [r for r in records if parse_algo(r["algo"])[0] in bases and r.get("trace")]
    envs = [e for e in SUITE_BUDGETS if any(r["env"] == e for r in runs)]
    if not envs:
        return False
    starts = sorted({r["algo"] for r in runs})
    colours = {algo: plt.get_cmap("tab10")(k) for k, algo in enumerate(starts)}
    fig, axes = plt.subplots(2, len(envs), figsize=(3.6 * len(envs), 6), squeeze=False, sharex="col")
    defaults = es_defaults([])
    for column, env_id in enumerate(envs):
        for row, (index, name, default) in enumerate(((1, "sigma", defaults["sigma"]), (2, "learning rate", defaults["learning_rate"]))):
            ax = axes[row, column]
            for record in (r for r in runs if r["env"] == env_id):
                trace = np.asarray(record["trace"], dtype=np.float64)
                ax.plot(trace[:, 0], trace[:, index], color=colours[record["algo"]], lw=1, alpha=0.8,
                        label=record["algo"] if record["seed"] == min(r["seed"] for r in runs if r["algo"] == record["algo"]) else None)
            ax.axhline(default, color="black", ls="--", lw=1)
            ax.set_yscale("log")
            ax.xaxis.set_major_formatter(EngFormatter())
            ax.grid(True, which="both", alpha=0.3)
            if row == 0:
                ax.set_title(env_id, fontsize="small")
            else:
                ax.set_xlabel("environment steps")
            if column == 0:
                ax.set_ylabel(name)
    axes[0, 0].legend(fontsize="x-small")
    fig.suptitle("BiERL's sigma and learning rate along training (dashed: the defaults, ES's fixed values)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    """Run the stages (or only rebuild the report). :return: 1 if a run failed, 130 if interrupted, else 0"""
    parser = argparse.ArgumentParser(prog="python -m sb3_bierl.benchmarks.meta_level", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", nargs="+", default=["headroom", "defaults", "robustness"], choices=["headroom", "defaults", "robustness"])
    parser.add_argument("--envs", nargs="+", default=None, help="Environment ids (default: each stage's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="Seeds (default: 0-4 for defaults, 0 1 otherwise)")
    parser.add_argument("--only", nargs="+", default=None, help="Run only these bases among the stages' algorithms, e.g. es")
    parser.add_argument(
        "--algos", nargs="+", default=None, help="Run these algorithms instead of the stages' (with --envs and --seeds), e.g. es-n8"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="Multiplier of the budgets (default: %(default)s)")
    parser.add_argument("--timesteps", type=parse_steps, default=None, help="One budget for every task (overrides the suite's)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="Deterministic evaluation episodes per run (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Parallel runs (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("bench_results/meta_level"), help="Output folder (default: %(default)s)")
    parser.add_argument("--report-only", action="store_true", help="Only rebuild results.md from the saved runs")
    parser.add_argument("--no-progress-bar", action="store_true", help="One line per finished run instead of a progress bar")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.eval_episodes < 1 or args.workers < 1:
        parser.error("--scale must be positive; --eval-episodes and --workers at least 1")
    runs_dir = args.out / "runs"
    failures = 0
    if not args.report_only:
        if args.algos:
            for name in args.algos:
                parse_algo(name)  # fail now on a bad name
            specs = [
                RunSpec(algo, env_id, seed, max(1, round(SUITE_BUDGETS.get(env_id, 300_000) * args.scale)), args.eval_episodes)
                for seed in args.seeds or DEFAULT_SEEDS
                for env_id in args.envs or SUITE_BUDGETS
                for algo in args.algos
            ]
        else:
            specs = plan_runs(args.stages, args.envs, args.seeds, args.scale, args.eval_episodes)
        if args.only:
            specs = [s for s in specs if parse_algo(s.algo)[0] in args.only]
        if args.timesteps is not None:
            specs = [RunSpec(s.algo, s.env_id, s.seed, args.timesteps, s.eval_episodes) for s in specs]
        failures, interrupted = run_specs(specs, args.out, args.workers, trainer=TRAINER, progress_bar=not args.no_progress_bar)
        if interrupted:
            return 130
    records = load_records(runs_dir)
    report = make_report(records)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(report)
    print(report)
    if plot_hyperparameters(records, args.out / "hyperparameters.png"):
        print(f"Wrote {args.out / 'hyperparameters.png'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
