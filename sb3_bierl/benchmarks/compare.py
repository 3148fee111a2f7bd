"""
Compare BiERL with plain OpenAI-ES, both with their default hyperparameters.

Every (algorithm, environment, seed) run trains in its own process on a per-environment budget of
environment steps (BiERL's meta-level steps included), then is evaluated on a fresh, deterministically
seeded environment with the deterministic policy. The runs go through the benchmarks' runner
(:mod:`sb3_bierl.benchmarks.run_spec`: a progress bar, each run's output in ``<out>/runs/<name>.log``), and each
run's record (:mod:`sb3_bierl.benchmarks.records`) is written to ``<out>/runs/<algo>_<env>_<seed>.json`` when it
starts and when it ends, so an interrupted benchmark resumes where it stopped (runs done with the same budget are skipped unless
``--force``). At the end the script writes:

- ``<out>/results.md``: final return per environment and algorithm (IQM across seeds with its 95% bootstrap
  interval, rliable), P(BiERL > ES), the steps
  and wall-clock time per run, and how often BiERL matches or beats ES (also printed to stdout);
- ``<out>/hyperparameters.png``: BiERL's noise std and learning rate along training, per seed, against
  ES's fixed defaults.

Reproduce the full benchmark (3 environments x 2 algorithms x 3 seeds; needs the ``benchmark`` extra,
``pip install -e ".[benchmark]"``, for the plot)::

    python -m sb3_bierl.benchmarks.compare --envs Pendulum-v1 LunarLanderContinuous-v3 Swimmer-v5 \\
        --algos es bierl --seeds 0 1 2 --eval-episodes 20 --out bench_results/compare

(these are the defaults, so ``python -m sb3_bierl.benchmarks.compare`` is the same command).
Rebuild the report from the saved runs with ``--report-only``; try the pipeline quickly with, e.g.,
``--envs Pendulum-v1 --seeds 0 1 --timesteps-scale 0.05 --eval-episodes 3 --out /tmp/cmp_smoke``.
"""

import argparse
import inspect
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_bierl.benchmarks.records import load_records
from sb3_bierl.benchmarks.run_spec import RunSpec, run_specs
from sb3_bierl.benchmarks.runner import format_duration

DEFAULT_ENVS: tuple[str, ...] = ("Pendulum-v1", "LunarLanderContinuous-v3", "Swimmer-v5")
DEFAULT_BUDGETS: dict[str, int] = {
    "Pendulum-v1": 500_000,
    "LunarLanderContinuous-v3": 1_000_000,
    "Swimmer-v5": 1_000_000,
}
# command-line name -> (class name in sb3_bierl, label in the report, non-default arguments)
ALGOS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "es": ("ES", "ES", {}),
    # the paper's meta network (BiERL's default for OpenAI-ES until session 22, now meta="tpa"): the published runs
    "bierl": ("BiERL", "BiERL", {"meta": "lstm"}),
    # the other inner algorithms, plain and under the meta level (python -m sb3_bierl.benchmarks.family)
    "nsr_es": ("NSRES", "NSR-ES", {}),
    "bierl_nsr_es": ("BiERL", "BiERL(NSR-ES)", {"inner": "nsr_es"}),
    "esac": ("ESAC", "ESAC", {}),
    "bierl_esac": ("BiERL", "BiERL(ESAC)", {"inner": "esac"}),
    # the meta-level variants
    "bierl_mean": ("BiERL", "BiERL, mean-pool encoder", {"meta": "mean"}),
    "bierl_optuna": ("BiERL", "BiERL, Optuna controller", {"meta": "optuna"}),
    "bierl_warm": ("BiERL", "BiERL, warm start (shipped controller)", {"meta": "lstm", "meta_warm_start": "pretrained"}),
}
#: Arguments of every benchmark run: runs go in parallel, one process each, so no worker processes
RUN_KWARGS: dict[str, Any] = {"n_workers": 1}
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)
EVAL_SEED_OFFSET = 10_000  # the evaluation env of seed s is seeded with EVAL_SEED_OFFSET + s
TRACED_HYPERPARAMETERS: tuple[str, ...] = ("sigma", "learning_rate")


# ---------------------------------------------------------------------- one run
def make_trace_callback() -> Any:
    """
    :return: A callback recording ``(num_timesteps, hyperparameters)`` after every generation
        (built here so that stable-baselines3 is imported in the worker only)
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class HyperparameterTrace(BaseCallback):
        """Records the hyperparameters each generation used, with the step count after it."""

        def __init__(self, verbose: int = 0):
            super().__init__(verbose)
            self.trace: list[tuple[int, dict[str, float]]] = []

        def _on_step(self) -> bool:
            return True  # called once per environment step: keep it trivial

        def _on_rollout_end(self) -> None:
            self.trace.append((int(self.model.num_timesteps), dict(self.model.hyperparameters)))

    return HyperparameterTrace()


def evaluate_final(model: Any, env_id: str, seed: int, n_episodes: int) -> np.ndarray:
    """
    Evaluate the deterministic policy on a fresh environment seeded with ``EVAL_SEED_OFFSET + seed``.

    :param model: The trained model
    :param env_id: Environment id
    :param seed: Seed of the run
    :param n_episodes: Number of evaluation episodes
    :return: The episode returns, shape ``(n_episodes,)``
    """
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([lambda: Monitor(gym.make(env_id))])
    env.seed(EVAL_SEED_OFFSET + seed)
    try:
        returns, _ = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True)
    finally:
        env.close()
    return np.asarray(returns, dtype=np.float64)


def train_and_evaluate(spec: RunSpec) -> dict[str, Any]:
    """
    Train one model with default hyperparameters and evaluate it (the trainer of
    :func:`sb3_bierl.benchmarks.run_spec.run_specs`, run in the run's subprocess).

    :param spec: The run (``spec.algo`` a key of :data:`ALGOS`)
    :return: The run's fields (JSON-serialisable): ``final_return`` (mean of ``eval_returns``), ``steps_reached``,
        the evaluation's returns, std and seed, ``train_time_s`` (construction and training, seconds) and
        ``eval_time_s``, and the ``sigma`` and ``learning_rate`` at the start and after every generation
    """
    import sb3_bierl

    class_name, _, algo_kwargs = ALGOS[spec.algo]
    algo_class = getattr(sb3_bierl, class_name)
    trace = make_trace_callback()
    start = time.perf_counter()
    model = algo_class("MlpPolicy", spec.env_id, seed=spec.seed, verbose=0, **RUN_KWARGS, **algo_kwargs)
    model.learn(spec.budget, callback=trace)
    train_time = time.perf_counter() - start
    start = time.perf_counter()
    returns = evaluate_final(model, spec.env_id, spec.seed, spec.eval_episodes)
    eval_time = time.perf_counter() - start
    return {
        "final_return": float(np.mean(returns)),
        "steps_reached": int(model.num_timesteps),
        "train_time_s": train_time,
        "eval_time_s": eval_time,
        "eval_std": float(np.std(returns)),
        "eval_seed": EVAL_SEED_OFFSET + spec.seed,
        "eval_returns": returns.tolist(),
        "initial_hyperparameters": {name: float(getattr(model, name)) for name in TRACED_HYPERPARAMETERS},
        "hyperparameter_trace": [[steps, *(float(h[name]) for name in TRACED_HYPERPARAMETERS)] for steps, h in trace.trace],
    }


# ---------------------------------------------------------------------- running the grid
def plan_runs(
    envs: Sequence[str],
    algos: Sequence[str],
    seeds: Sequence[int],
    timesteps: int | None,
    scale: float,
    eval_episodes: int,
) -> list[RunSpec]:
    """
    :param envs: Environment ids
    :param algos: Algorithm names
    :param seeds: Random seeds
    :param timesteps: Budget for every environment, or None for ``DEFAULT_BUDGETS``
    :param scale: Multiplier of the budgets
    :param eval_episodes: Episodes of the final evaluation
    :return: Every run, the largest budgets first (they finish last otherwise)
    """
    specs = []
    for env_id in envs:
        base = timesteps if timesteps is not None else DEFAULT_BUDGETS[env_id]
        budget = max(1, round(base * scale))
        specs += [RunSpec(algo, env_id, seed, budget, eval_episodes) for algo in algos for seed in seeds]
    return sorted(specs, key=lambda spec: -spec.budget)


# ---------------------------------------------------------------------- report
def ordered(values: set[str], preferred: Sequence[str]) -> list[str]:
    """
    :param values: Names to order
    :param preferred: Names that come first, in this order
    :return: ``values`` in the order of ``preferred``, then the others alphabetically
    """
    return [v for v in preferred if v in values] + sorted(values - set(preferred))


def group_records(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """
    :param records: Run records
    :return: The records by ``(env, algo)``, sorted by seed
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["env"], record["algo"]), []).append(record)
    return {key: sorted(group, key=lambda r: r["seed"]) for key, group in groups.items()}


def seed_statistics(group: Sequence[dict[str, Any]]) -> tuple[float, float, float, int]:
    """
    :param group: The records of one (env, algo)
    :return: The IQM of the final returns across seeds with the low and high ends of its 95% stratified-bootstrap
        interval (rliable), and the number of seeds
    """
    from sb3_bierl.benchmarks.aggregates import iqm_interval

    returns = [r["final_return"] for r in group]
    return (*iqm_interval(returns), len(returns))


def improvement_line(groups: dict[tuple[str, str], list[dict[str, Any]]], envs: Sequence[str], a: str, b: str) -> str | None:
    """:return: ``P(a > b)`` with its interval (rliable) over the envs where both have the same number of seeds, or None"""
    from sb3_bierl.benchmarks.aggregates import improvement_probability

    both = [e for e in envs if groups.get((e, a)) and len(groups[(e, a)]) == len(groups.get((e, b), []))]
    if not both:
        return None
    x = np.array([[r["final_return"] for r in groups[(e, a)]] for e in both]).T
    y = np.array([[r["final_return"] for r in groups[(e, b)]] for e in both]).T
    probability, low, high = improvement_probability(x, y)
    return f"P({label(a)} > {label(b)}) = {probability:.2f} [{low:.2f}, {high:.2f}] over {len(both)} task{'s' if len(both) > 1 else ''}"


def label(algo: str) -> str:
    """
    :param algo: Algorithm name
    :return: Its label in the report
    """
    return ALGOS[algo][1] if algo in ALGOS else algo


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """
    :param header: Column titles
    :param rows: Cells
    :return: The lines of a Markdown table
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def make_report(records: Sequence[dict[str, Any]]) -> str:
    """
    :param records: Run records
    :return: The Markdown report: final returns, cost per run, and BiERL against ES
    """
    if not records:
        return "# BiERL vs ES\n\nNo finished runs yet.\n"
    groups = group_records(records)
    envs = ordered({r["env"] for r in records}, DEFAULT_ENVS)
    algos = ordered({r["algo"] for r in records}, list(ALGOS))
    episodes = sorted({r["eval_episodes"] for r in records})

    score_rows, cost_rows, warnings = [], [], []
    for env_id in envs:
        budgets = sorted({r["n_timesteps"] for a in algos for r in groups.get((env_id, a), [])})
        if len(budgets) > 1:
            warnings.append(f"{env_id}: runs with different budgets ({', '.join(f'{b:,}' for b in budgets)}) are mixed")
        means: dict[str, float] = {}
        scores, costs = [], []
        for algo in algos:
            group = groups.get((env_id, algo))
            if not group:
                scores.append("–")
                costs.append("–")
                continue
            iqm, low, high, n = seed_statistics(group)
            means[algo] = iqm
            scores.append(f"{iqm:.1f} [{low:.1f}, {high:.1f}] ({n} seed{'s' if n > 1 else ''})")
            steps = np.mean([r["steps_reached"] for r in group])
            wall = np.mean([r["train_time_s"] for r in group])
            costs.append(f"{steps:,.0f} steps, {format_duration(wall)}")
        best = max(means.values()) if means else None
        winner = " = ".join(label(a) for a in means if means[a] == best) if means else "–"
        score_rows.append([env_id, " / ".join(f"{b:,}" for b in budgets), *scores, winner])
        cost_rows.append([env_id, *costs])

    lines = [
        "# BiERL vs ES",
        "",
        "Final return of the deterministic policy: IQM across seeds [95% stratified-bootstrap interval] (rliable) of each run's mean return over "
        f"{' / '.join(map(str, episodes))} evaluation episodes (default hyperparameters; budget in environment steps, "
        "meta level included).",
        "",
        *markdown_table(["Environment", "Budget", *map(label, algos), "Higher IQM"], score_rows),
        "",
    ]
    if "es" in algos and "bierl" in algos:
        line = improvement_line(groups, envs, "bierl", "es")
        if line is not None:
            lines += [f"**{line}** (probability of improvement, rliable).", ""]
    lines += ["## Cost per run", "", "Mean environment steps used and wall-clock time of construction and training per run.", ""]
    lines += [*markdown_table(["Environment", *map(label, algos)], cost_rows), ""]
    if warnings:
        lines += ["## Warnings", "", *(f"- {w}" for w in warnings), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- plot
def es_defaults(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """
    :param records: The ES records of one environment (may be empty)
    :return: ES's fixed ``sigma`` and ``learning_rate``: those of a saved ES run, else the defaults of ``ES``
    """
    for record in records:
        if "initial_hyperparameters" in record:
            return record["initial_hyperparameters"]
    from sb3_bierl import ES

    parameters = inspect.signature(ES.__init__).parameters
    return {name: float(parameters[name].default) for name in TRACED_HYPERPARAMETERS}


def plot_hyperparameters(records: Sequence[dict[str, Any]], path: Path) -> bool:
    """
    Plot BiERL's sigma and learning rate along training (one line per seed) against ES's fixed values.

    :param records: Run records
    :param path: Destination of the PNG
    :return: Whether the plot was written (matplotlib may be missing)
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import EngFormatter, LogFormatter
    except ImportError:
        print('matplotlib is not installed: no plot (pip install ".[benchmark]" in a checkout of sb3-bierl)', file=sys.stderr)
        return False
    class PlainLogFormatter(LogFormatter):
        """Matplotlib's choice of labelled log ticks (minor ones on short ranges), written as plain numbers."""

        def __call__(self, x: float, pos: int | None = None) -> str:
            return f"{x:.3g}" if super().__call__(x, pos) else ""

    groups = group_records(records)
    envs = ordered({r["env"] for r in records if r["algo"] in ("bierl", "es")}, DEFAULT_ENVS)
    if not envs:
        return False
    titles = {"sigma": "noise std (sigma)", "learning_rate": "learning rate"}
    fig, axes = plt.subplots(2, len(envs), figsize=(4.5 * len(envs), 6.5), sharex="col", squeeze=False)
    for column, env_id in enumerate(envs):
        bierl_runs = groups.get((env_id, "bierl"), [])
        defaults = es_defaults(groups.get((env_id, "es"), []))
        for row, name in enumerate(TRACED_HYPERPARAMETERS):
            ax = axes[row, column]
            for record in bierl_runs:
                trace = np.asarray(record["hyperparameter_trace"], dtype=np.float64).reshape(-1, 1 + len(TRACED_HYPERPARAMETERS))
                ax.plot(trace[:, 0], trace[:, 1 + row], lw=1.2, label=f"BiERL seed {record['seed']}")
            ax.axhline(defaults[name], color="black", ls="--", lw=1.2, label=f"ES (fixed {defaults[name]:g})")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(PlainLogFormatter())
            ax.yaxis.set_minor_formatter(PlainLogFormatter())
            ax.xaxis.set_major_formatter(EngFormatter())
            ax.grid(True, which="both", alpha=0.3)
            if column == 0:
                ax.set_ylabel(titles[name])
            if row == 0:
                ax.set_title(env_id)
            else:
                ax.set_xlabel("environment steps")
            ax.legend(fontsize="small")
    fig.suptitle("BiERL's hyperparameters along training vs ES's fixed defaults")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------- command line
def parse_steps(text: str) -> int:
    """
    :param text: A number of steps, e.g. ``500000``, ``500_000`` or ``5e5``
    :return: It as an int
    """
    try:
        value = int(float(text.replace("_", "")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of steps: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"the budget must be >= 1, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    :param argv: Command-line arguments (default ``sys.argv[1:]``)
    :return: The parsed and checked arguments
    """
    budgets = ", ".join(f"{env_id}: {steps:,}" for env_id, steps in DEFAULT_BUDGETS.items())
    parser = argparse.ArgumentParser(
        prog="python -m sb3_bierl.benchmarks.compare",
        description="Compare BiERL and OpenAI-ES (default hyperparameters) on a few environments and seeds.",
    )
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), help=f"Environment ids (default: {' '.join(DEFAULT_ENVS)})")
    parser.add_argument("--algos", nargs="+", default=["es", "bierl"], choices=list(ALGOS), help="Algorithms (default: es bierl)")
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), help=f"Random seeds (default: {' '.join(map(str, DEFAULT_SEEDS))})"
    )
    parser.add_argument(
        "--timesteps",
        type=parse_steps,
        default=None,
        help=f"Training budget in environment steps for every environment (default: per environment, {budgets})",
    )
    parser.add_argument(
        "--timesteps-scale", type=float, default=1.0, help="Multiplier of the budgets, e.g. 0.05 for a quick run (default: %(default)s)"
    )
    parser.add_argument("--eval-episodes", type=int, default=20, help="Deterministic evaluation episodes per run (default: %(default)s)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Parallel runs, one process each (default: os.cpu_count() = %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench_results/compare"), help="Output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="Rerun the runs that are done")
    parser.add_argument("--report-only", action="store_true", help="Only rebuild results.md and the plot from the saved runs")
    parser.add_argument("--no-progress-bar", action="store_true", help="One line per finished run instead of a progress bar")
    args = parser.parse_args(argv)

    if not np.isfinite(args.timesteps_scale) or args.timesteps_scale <= 0:
        parser.error(f"--timesteps-scale must be positive, got {args.timesteps_scale}")
    if args.eval_episodes < 1:
        parser.error(f"--eval-episodes must be >= 1, got {args.eval_episodes}")
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if not args.report_only:
        for env_id in args.envs:
            if env_id not in gym.registry:
                parser.error(f"unknown environment {env_id!r}")
            if args.timesteps is None and env_id not in DEFAULT_BUDGETS:
                parser.error(f"no default budget for {env_id!r}: pass --timesteps")
    args.envs = list(dict.fromkeys(args.envs))
    args.algos = list(dict.fromkeys(args.algos))
    args.seeds = list(dict.fromkeys(args.seeds))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the benchmark (or only rebuild its report) and write the report and the plot.

    :param argv: Command-line arguments (default ``sys.argv[1:]``)
    :return: The exit status: 1 if a run failed, 130 if interrupted, else 0
    """
    args = parse_args(argv)
    runs_dir = args.out / "runs"
    failures = 0
    if not args.report_only:
        specs = plan_runs(args.envs, args.algos, args.seeds, args.timesteps, args.timesteps_scale, args.eval_episodes)
        failures, interrupted = run_specs(specs, args.out, args.workers, args.force, progress_bar=not args.no_progress_bar)
        if interrupted:
            return 130

    records = load_records(runs_dir)
    report = make_report(records)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(report)
    print(report)
    print(f"Wrote {args.out / 'results.md'}")
    if records and plot_hyperparameters(records, args.out / "hyperparameters.png"):
        print(f"Wrote {args.out / 'hyperparameters.png'}")
    if failures:
        print(f"{failures} run(s) failed: rerun the same command to retry them", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
