"""
The report, ``results.md``: final return (IQM across seeds with its 95% stratified-bootstrap interval),
probability of improvement of this package's algorithms against the others, the aggregate across tasks on
normalised scores (IQM, performance profile), wall-clock time per run, every run's status, the failed runs'
output and the hyperparameter entry each (algo, env) used. With a CPU-time budget, also the steps reached and
CPU times of the runs and the returns at equal environment steps (``equal_steps``).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sb3_bierl.benchmarks import aggregates
from sb3_bierl.benchmarks.aggregates import improvement_probability, iqm_interval
from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.head_to_head.config import CPU_CAPTION, WALLCLOCK_CAPTION, BenchmarkConfig, Run, expand_runs
from sb3_bierl.benchmarks.head_to_head.equal_steps import Curves, equal_steps_table
from sb3_bierl.benchmarks.head_to_head.hyperparams import HyperparamsSource
from sb3_bierl.benchmarks.head_to_head.scores import NORMALISATION_CAPTION, aggregate_table, normalised_scores
from sb3_bierl.benchmarks.runner import format_duration


def format_steps(steps: float) -> str:
    """:return: ``50k``, ``1M``, ``1.25M``..."""
    for divider, suffix in ((1e6, "M"), (1e3, "k")):
        if steps >= divider:
            return f"{steps / divider:.3g}{suffix}"
    return f"{steps:.0f}"


def iqm(values: Sequence[float]) -> float:
    """:return: The interquartile mean (rliable's ``aggregate_iqm``: the 25% trimmed mean)"""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(values, dtype=float), 0.25))


def iqm_cell(values: Sequence[float], fmt: Any = "{:.1f}".format) -> str:
    """:return: ``"IQM [low, high]"`` across seeds (rliable, 95% stratified-bootstrap interval)"""
    estimate, low, high = iqm_interval(values, reps=aggregates.BOOTSTRAP_REPS)
    return f"{fmt(estimate)} [{fmt(low)}, {fmt(high)}]"


def done_records(records: Mapping[Run, Mapping[str, Any]], algo: str, env_id: str) -> list[Mapping[str, Any]]:
    """:return: The ``done`` records of one (algo, env)"""
    return [
        record for run, record in records.items()
        if run.algo == algo and run.env_id == env_id and record.get("status") == "done"
    ]  # fmt: skip


def format_budget(config: BenchmarkConfig, algo: str, env_id: str) -> str:
    """:return: The budget of the runs of ``algo`` on ``env_id``: ``1M steps``, or ``600 CPU s`` (the step cap aside)"""
    cpu_budget = config.cpu_budget(algo, env_id)
    if cpu_budget is not None:
        return f"{cpu_budget:g} CPU s"
    return f"{format_steps(config.budget(algo, env_id))} steps"


def results_table(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]) -> list[str]:
    """:return: Final return per env (rows) and algo (columns), IQM across seeds and its interval"""
    rows = []
    for env in config.envs:
        budgets = {format_budget(config, algo.name, env.env_id) for algo in config.algos}
        label = f"{env.env_id} ({min(budgets)})" if len(budgets) == 1 else env.env_id
        cells = [label]
        for algo in config.algos:
            group = done_records(records, algo.name, env.env_id)
            cell = "–"
            if group:
                cell = f"{iqm_cell([record['final_return'] for record in group])} ({len(group)}/{len(config.seeds)})"
                if len(budgets) > 1:
                    cell += f" @ {format_budget(config, algo.name, env.env_id).removesuffix(' steps')}"
            cells.append(cell)
        rows.append(cells)
    return markdown_table(["env (budget)", *(algo.name for algo in config.algos)], rows)


def cpu_table(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]) -> list[str]:
    """
    :return: Per env and algo, for the done runs with a CPU log: environment steps reached, and CPU seconds of
        training and of evaluations (IQM across seeds: descriptive, no interval); runs stopped by the step cap
        rather than the budget are counted
    """
    rows = []
    for env in config.envs:
        steps_cells, cpu_cells = [f"{env.env_id}: steps reached"], [f"{env.env_id}: CPU s, training (evaluations)"]
        for algo in config.algos:
            group = [
                record
                for record in done_records(records, algo.name, env.env_id)
                if record.get("steps_reached") is not None
            ]
            if not group:
                steps_cells.append("–")
                cpu_cells.append("–")
                continue
            capped = sum(record.get("stopped_by") != "cpu_budget" for record in group)
            steps = format_steps(iqm([record["steps_reached"] for record in group]))
            steps_cells.append(steps + (f" ({capped} at the step cap)" if capped else ""))
            train, evaluations = (iqm([record[key] for record in group]) for key in ("train_cpu_s", "eval_cpu_s"))
            cpu_cells.append(f"{train:.0f} ({evaluations:.0f})")
        rows += [steps_cells, cpu_cells]
    return markdown_table(["env", *(algo.name for algo in config.algos)], rows)


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
            envs = [
                e.env_id
                for e in config.envs
                if len(complete[own, e.env_id]) == len(complete[other, e.env_id]) == n_seeds
            ]
            if not envs:
                continue
            x = np.array([complete[own, env] for env in envs]).T
            y = np.array([complete[other, env] for env in envs]).T
            probability, low, high = improvement_probability(x, y, reps=aggregates.BOOTSTRAP_REPS)
            rows.append([f"P({own} > {other})", f"{probability:.2f} [{low:.2f}, {high:.2f}]", str(len(envs))])
    return (
        markdown_table(["", "probability [95% interval]", "envs"], rows)
        if rows
        else ["No pair with every seed done yet."]
    )


def runs_table(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]) -> list[str]:
    """:return: One row per run (with a CPU-time budget: its steps reached, CPU times and what stopped it)"""
    with_cpu = config.has_cpu_budget
    rows = []
    for run in expand_runs(config):
        record = records.get(run) or {}
        final = record.get("final_return")
        wall = record.get("wall_time_s")
        budget = format_steps(run.n_timesteps)
        if run.cpu_budget_s is not None:
            budget = f"{run.cpu_budget_s:g} CPU s (cap {budget})"
        row = [
            run.algo, run.env_id, str(run.seed), record.get("status", "not run"), budget,
            "–" if record.get("last_eval_timestep") is None else str(record["last_eval_timestep"]),
            "–" if final is None else f"{final:.1f}",
        ]  # fmt: skip
        if with_cpu:
            steps, train, evaluation = (record.get(key) for key in ("steps_reached", "train_cpu_s", "eval_cpu_s"))
            row += [
                "–" if steps is None else str(steps),
                "–" if train is None else f"{train:.0f} ({evaluation:.0f})",
                record.get("stopped_by") or "–",
            ]
        row += [
            "–"
            if wall is None
            else format_duration(wall) + (" (adopted: training only)" if record.get("adopted") else ""),
            f"`{record['run_folder']}`" if record.get("run_folder") else "–",
        ]
        rows.append(row)
    headers = ["algo", "env", "seed", "status", "budget", "last eval at", "final return"]
    if with_cpu:
        headers += ["steps reached", "CPU s: training (evaluations)", "stopped by"]
    return markdown_table([*headers, "wall time", "run folder"], rows)


def aggregate_section(
    config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]], profile: str | None
) -> list[str]:
    """:return: The aggregate across tasks: IQM of normalised scores, the performance profile"""
    tasks, scores = normalised_scores(config, records)
    lines = ["## Aggregate across tasks", ""]
    if not tasks:
        return [*lines, "No task with every algorithm's every seed done yet.", ""]
    lines += [
        (
            f"{NORMALISATION_CAPTION} Tasks where every algorithm has every seed done: {', '.join(tasks)}. IQM across "
            "runs and tasks with its 95% stratified-bootstrap interval (rliable)."
        ),
        "",
        *aggregate_table(scores),
        "",
    ]
    if profile:
        lines += [
            (
                "Performance profile: the fraction of runs (seeds x tasks) whose normalised score exceeds tau "
                "(rliable, 95% bootstrap band)."
            ),
            "",
            f"![{profile}]({profile})",
            "",
        ]
    return lines


def cpu_sections(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]], curves: Curves | None) -> list[str]:
    """:return: With a CPU-time budget: steps reached and CPU times, returns at equal steps; else nothing"""
    if not config.has_cpu_budget:
        return []
    lines = [
        "## Steps reached and CPU time",
        "",
        (
            "Environment steps each run reached within its budget, and its CPU seconds of training (of evaluations, "
            "excluded from the budget, in brackets): IQM across the done seeds."
        ),
        "",
        *cpu_table(config, records),
        "",
        "## Return at equal environment steps",
        "",
        (
            "Each pair (A, B) on an env is compared at the largest step count every done seed of both reached (the "
            "smallest of their last evaluations' steps); each run's return there is interpolated linearly between "
            "its evaluations. A pair is not compared where that step is below a run's first evaluation. IQM "
            "across seeds [95% interval] (seeds)."
        ),
        "",
    ]
    own = [algo for algo in OWN_ALGOS if algo in {a.name for a in config.algos}]
    lines += equal_steps_table(config, curves or {}, own, iqm_cell) if own else ["No algorithm of this package."]
    return [*lines, ""]


def failures(config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]) -> list[str]:
    """:return: The failed runs and the end of their output"""
    lines = []
    for run in expand_runs(config):
        record = records.get(run)
        if record is not None and record.get("status") in ("failed", "interrupted"):
            lines += [f"- **{run.describe()}**: {record['status']} (output: `{record.get('log_file')}`)", "", "```"]
            lines += [str(record.get("error") or "").replace("```", "'''"), "```", ""]
    return lines


def evaluation_frequencies(config: BenchmarkConfig) -> str:
    """
    :return: ``every 10k environment steps``, or the frequencies of each algo where they differ, and the
        algos with extra evaluations at given steps
    """
    frequencies = {
        algo.name: {config.eval_frequency(algo.name, env.env_id) for env in config.envs} for algo in config.algos
    }
    if len(set().union(*frequencies.values())) == 1:
        text = f"every {format_steps(next(iter(frequencies[config.algos[0].name])))} environment steps"
    else:
        each = ", ".join(
            f"{algo} {'/'.join(format_steps(f) for f in sorted(values))}" for algo, values in frequencies.items()
        )
        text = f"every N environment steps ({each})"
    extra = {
        algo.name: sorted({steps for env in config.envs for steps in config.extra_evaluations(algo.name, env.env_id)})
        for algo in config.algos
    }
    extra = {algo: steps for algo, steps in extra.items() if steps}
    if extra:
        each = "; ".join(
            f"{algo} at {', '.join(format_steps(steps) for steps in values)}" for algo, values in extra.items()
        )
        text += f", and early points of the learning curve ({each} steps)"
    return text


def budget_text(config: BenchmarkConfig) -> str:
    """:return: What the budget of a run is, for the report's introduction"""
    if not config.has_cpu_budget:
        return (
            "Every algorithm counts every environment step it takes (ES and BiERL: every candidate's, the meta level's "
            "included; they end their last generation, so may go a little over the budget: see `last eval at`)."
        )
    return (
        "Each run has a CPU-time budget: CPU seconds of training of its process and worker processes (one core; "
        "evaluations excluded), counted by the `CPUTimeBudget` callback, which stops training when the budget is "
        "used and has the run evaluated at that step, so the last evaluation is the return at equal CPU time. "
        "`n_timesteps` is then a step cap (a run it stops first is counted in `stopped by`). ES and BiERL check "
        "the budget after each generation's rollouts, so may go a little over it: see the CPU times."
    )


def make_report(
    config: BenchmarkConfig,
    records: Mapping[Run, Mapping[str, Any]],
    sources: Mapping[tuple[str, str], HyperparamsSource],
    plots: Sequence[str],
    curves: Curves | None = None,
    profile: str | None = None,
) -> str:
    """
    :param config: The benchmark
    :param records: The records of its runs
    :param sources: The hyperparameter source of every (algo, env)
    :param plots: The learning-curve plots written (file names in the log folder)
    :param curves: The done runs' evaluation curves (``plots.collect_curves``), for the returns at equal steps
    :param profile: The performance profile plot written, None if none
    :return: The text of ``results.md``
    """
    lines = [
        f"# Benchmark `{config.name}`",
        "",
        (
            f"Algorithms {', '.join(algo.name for algo in config.algos)}; seeds {', '.join(map(str, config.seeds))}; "
            f"evaluation {evaluation_frequencies(config)} on {config.eval_episodes} episodes "
            "(the zoo's `EvalCallback`, deterministic policy, one evaluation env). " + budget_text(config)
        ),
        "",
        "## Final return" + (" at equal CPU time" if config.has_cpu_budget else ""),
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
        *aggregate_section(config, records, profile),
        *cpu_sections(config, records, curves),
        "## Wall-clock time per run",
        "",
        "Whole process (start-up, set-up, training, evaluations), IQM across seeds [95% bootstrap interval].",
        "",
        *wall_time_table(config, records),
        "",
    ]
    if plots:
        lines += ["## Learning curves", "", "Evaluation return, IQM across seeds with its 95% bootstrap band.", ""]
        lines += [f"![{plot}]({plot})" for plot in plots] + ["", WALLCLOCK_CAPTION]
        lines += [CPU_CAPTION, ""] if config.has_cpu_budget else [""]
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
