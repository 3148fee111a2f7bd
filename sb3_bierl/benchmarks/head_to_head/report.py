"""
The report, ``results.md``: final return (IQM across seeds with its 95% stratified-bootstrap interval),
probability of improvement of this package's algorithms against the others, wall-clock time per run, every
run's status, the failed runs' output and the hyperparameter entry each (algo, env) used.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sb3_bierl.benchmarks.aggregates import improvement_probability, iqm_interval
from sb3_bierl.benchmarks.compare import format_duration, markdown_table
from sb3_bierl.benchmarks.head_to_head.config import WALLCLOCK_CAPTION, BenchmarkConfig, Run, expand_runs
from sb3_bierl.benchmarks.head_to_head.hyperparams import HyperparamsSource


def format_steps(steps: float) -> str:
    """:return: ``50k``, ``1M``, ``1.25M``..."""
    for divider, suffix in ((1e6, "M"), (1e3, "k")):
        if steps >= divider:
            return f"{steps / divider:.3g}{suffix}"
    return f"{steps:.0f}"


def iqm_cell(values: Sequence[float], fmt: Any = "{:.1f}".format) -> str:
    """:return: ``"IQM [low, high]"`` across seeds (rliable, 95% stratified-bootstrap interval)"""
    iqm, low, high = iqm_interval(values)
    return f"{fmt(iqm)} [{fmt(low)}, {fmt(high)}]"


def done_records(records: Mapping[Run, Mapping[str, Any]], algo: str, env_id: str) -> list[Mapping[str, Any]]:
    """:return: The ``done`` records of one (algo, env)"""
    return [
        record for run, record in records.items()
        if run.algo == algo and run.env_id == env_id and record.get("status") == "done"
    ]  # fmt: skip


def results_table(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]) -> list[str]:
    """:return: Final return per env (rows) and algo (columns), IQM across seeds and its interval"""
    rows = []
    for env in config.envs:
        budgets = {config.budget(algo.name, env.env_id) for algo in config.algos}
        label = f"{env.env_id} ({format_steps(min(budgets))} steps)" if len(budgets) == 1 else env.env_id
        cells = [label]
        for algo in config.algos:
            group = done_records(records, algo.name, env.env_id)
            cell = "–"
            if group:
                cell = f"{iqm_cell([record['final_return'] for record in group])} ({len(group)}/{len(config.seeds)})"
                if len(budgets) > 1:
                    cell += f" @ {format_steps(config.budget(algo.name, env.env_id))}"
            cells.append(cell)
        rows.append(cells)
    return markdown_table(["env (budget)", *(algo.name for algo in config.algos)], rows)


def wall_time_table(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]) -> list[str]:
    """:return: Wall-clock time per run, IQM across seeds and its interval"""
    rows = []
    for env in config.envs:
        cells = [env.env_id]
        for algo in config.algos:
            times = [record["wall_time_s"] for record in done_records(records, algo.name, env.env_id)]
            if times:
                cells.append(iqm_cell(times, format_duration))
            else:
                cells.append("–")
        rows.append(cells)
    return markdown_table(["env", *(algo.name for algo in config.algos)], rows)


#: The algorithms of this package, compared with each of the others by probability of improvement
OWN_ALGOS = ("bierl", "es")


def improvement_table(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]) -> list[str]:
    """:return: P(A > B) of this package's algorithms A against each other algorithm B, on the envs where both
    have every seed done (rliable; final returns, no normalisation needed)"""
    complete = {
        (algo.name, env.env_id): [record["final_return"] for record in done_records(records, algo.name, env.env_id)]
        for algo in config.algos
        for env in config.envs
    }
    n_seeds = len(config.seeds)
    rows = []
    for own in [algo.name for algo in config.algos if algo.name in OWN_ALGOS]:
        for other in [algo.name for algo in config.algos if algo.name != own]:
            envs = [e.env_id for e in config.envs if len(complete[own, e.env_id]) == len(complete[other, e.env_id]) == n_seeds]
            if not envs:
                continue
            x = np.array([complete[own, env] for env in envs]).T
            y = np.array([complete[other, env] for env in envs]).T
            probability, low, high = improvement_probability(x, y)
            rows.append([f"P({own} > {other})", f"{probability:.2f} [{low:.2f}, {high:.2f}]", str(len(envs))])
    return markdown_table(["", "probability [95% interval]", "envs"], rows) if rows else ["No pair with every seed done yet."]


def runs_table(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]) -> list[str]:
    """:return: One row per run"""
    rows = []
    for run in expand_runs(config):
        record = records.get(run) or {}
        final = record.get("final_return")
        wall = record.get("wall_time_s")
        rows.append([
            run.algo, run.env_id, str(run.seed), record.get("status", "not run"), format_steps(run.n_timesteps),
            "–" if record.get("last_eval_timestep") is None else str(record["last_eval_timestep"]),
            "–" if final is None else f"{final:.1f}",
            "–" if wall is None else format_duration(wall) + (" (adopted: training only)" if record.get("adopted") else ""),
            f"`{record['run_folder']}`" if record.get("run_folder") else "–",
        ])  # fmt: skip
    return markdown_table(
        ["algo", "env", "seed", "status", "budget", "last eval at", "final return", "wall time", "run folder"], rows
    )


def failures(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]) -> list[str]:
    """:return: The failed runs and the end of their output"""
    lines = []
    for run in expand_runs(config):
        record = records.get(run)
        if record is not None and record.get("status") in ("failed", "interrupted"):
            lines += [f"- **{run.describe()}**: {record['status']} (output: `{record.get('log_file')}`)", "", "```"]
            lines += [str(record.get("error") or "").replace("```", "'''"), "```", ""]
    return lines


def make_report(
    config: BenchmarkConfig,
    records: Mapping[Run, Mapping[str, Any]],
    sources: Mapping[tuple[str, str], HyperparamsSource],
    plots: Sequence[str],
) -> str:
    """:return: The text of ``results.md``"""
    lines = [
        f"# Benchmark `{config.name}`",
        "",
        (
            f"Algorithms {', '.join(algo.name for algo in config.algos)}; seeds {', '.join(map(str, config.seeds))}; "
            f"evaluation every {format_steps(config.eval_freq)} environment steps on {config.eval_episodes} episodes "
            "(the zoo's `EvalCallback`, deterministic policy, one evaluation env). Every algorithm counts every "
            "environment step it takes (ES and BiERL: every candidate's, the meta level's included; they end "
            "their last generation, so may go a little over the budget: see `last eval at`)."
        ),
        "",
        "## Final return",
        "",
        (
            "Interquartile mean across seeds of each run's last evaluation (mean return of its episodes), with its "
            "95% stratified-bootstrap interval (rliable, Agarwal et al. 2021); (done/seeds) runs. A cell with `@` has "
            "its own budget."
        ),
        "",
        *results_table(config, records),
        "",
        "## Probability of improvement",
        "",
        (
            "P(A > B): the probability that a run of A ends above a run of B on an env drawn at random (rliable: "
            "Mann-Whitney per env, averaged over the envs where both have every seed done; 95% stratified-bootstrap "
            "interval)."
        ),
        "",
        *improvement_table(config, records),
        "",
        "## Wall-clock time per run",
        "",
        "Whole process (start-up, set-up, training, evaluations), IQM across seeds [95% bootstrap interval].",
        "",
        *wall_time_table(config, records),
        "",
    ]
    if plots:
        lines += ["## Learning curves", "", "Evaluation return, IQM across seeds with its 95% bootstrap band.", ""]
        lines += [f"![{plot}]({plot})" for plot in plots] + ["", WALLCLOCK_CAPTION, ""]
    lines += ["## Runs", "", *runs_table(config, records), ""]
    failed = failures(config, records)
    if failed:
        lines += ["## Failed runs", "", *failed]
    lines += ["## Hyperparameters", "", "The entry of the zoo-format hyperparameter file each (algo, env) used.", ""]
    rows = [
        [algo.name, env.env_id, sources[algo.name, env.env_id].describe(env.env_id)]
        for algo in config.algos
        for env in config.envs
        if (algo.name, env.env_id) in sources
    ]
    lines += markdown_table(["algo", "env", "entry"], rows)
    return "\n".join(lines) + "\n"
