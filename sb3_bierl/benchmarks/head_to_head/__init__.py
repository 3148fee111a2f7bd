"""
Head-to-head benchmark of BiERL and ES against the RL Baselines3 Zoo's algorithms, at equal environment steps
or at equal CPU time. Every run is one ``rl_zoo3.train`` subprocess, so PPO, SAC (Stable-Baselines3), TRPO, ARS
(sb3-contrib) train with the zoo's own hyperparameters and ES, BiERL with ``hyperparams/{es,bierl}.yml``, and all
of them are evaluated by the same ``EvalCallback``::

    python -m sb3_bierl.benchmarks.head_to_head zoo_configs/small.yml                # CartPole-v1, ~10 min, 2 cores
    python -m sb3_bierl.benchmarks.head_to_head zoo_configs/campaign.yml --jobs 2    # equal CPU time, ~6 h, 2 cores
    python -m sb3_bierl.benchmarks.head_to_head zoo_configs/mujoco.yml --jobs 16     # MuJoCo + Box2D (days)
    python -m sb3_bierl.benchmarks.head_to_head zoo_configs/mujoco.yml --dry-run     # print the commands only
    python -m sb3_bierl.benchmarks.head_to_head zoo_configs/small.yml --report-only  # rebuild report, plots

Config (YAML)::

    algos: [ppo, trpo, ars, es, bierl]     # or a mapping, each algo with options:
    #  es: {n_timesteps: 2_000_000,         #   its own settings (n_timesteps, cpu_budget_s, eval_freq,
    #       cpu_budget_s: 600, eval_freq: 100_000,         eval_at_steps)
    #       eval_at_steps: [10_000, 50_000],  #   extra evaluations at these steps (needs cpu_budget_s)
    #       params: {n_pairs: 32},          #   passed as `-params n_pairs:32` (strings verbatim: the zoo
    #       n_workers: 2,                   #   evals them as Python); n_workers is -params n_workers:2
    #       train_args: [--device, cpu],    #   more arguments for rl_zoo3.train
    #       conf_file: my_es.yml}           #   hyperparameter file (-conf) instead of the default one
    envs:                                  # ids, or mappings with settings (common or per algo):
      - CartPole-v1
      - {id: Hopper-v5, n_timesteps: 2_000_000}
      - {id: Swimmer-v5, n_timesteps: {default: 1_000_000, ars: 2_000_000}, cpu_budget_s: 400}
    seeds: [0, 1, 2]
    n_timesteps: 1_000_000                 # the budget in steps of every run (a step cap with cpu_budget_s)
    cpu_budget_s: 600                      # CPU seconds of training of every run (default: none)
    eval_freq: 10_000                      # environment steps between evaluations
    eval_episodes: 10                      # episodes per evaluation (deterministic policy)
    log_folder: logs/benchmark/mujoco      # default: logs/benchmark/<config file name>
    num_threads: 1                         # --num-threads of every run (and OMP/MKL threads, unless set)
    tensorboard: false                     # true: -tb <log_folder>/tensorboard
    train_args: []                         # more arguments for every rl_zoo3.train command

The settings ``n_timesteps``, ``cpu_budget_s``, ``eval_freq`` and ``eval_at_steps`` of a run are, most specific
first: the env's per-algo value, the algo's, the env's common value (``default:`` in a per-algo mapping), the
config's. Steps may be written ``1_000_000`` or ``1e6``; a CPU budget is a positive number of seconds.
``eval_at_steps`` (a list of steps) adds evaluations at the first step at or past each: early points of the
learning curve of an algorithm that evaluates rarely because it takes many steps (ES), so that it can be
compared at equal steps with one that takes few; the budget's callback makes them, so they need ``cpu_budget_s``.

CPU-time budget (``cpu_budget_s``): the run's entry in its hyperparameter file gets the callback
:class:`~sb3_bierl.benchmarks.cpu_budget.CPUTimeBudget` (first in its ``callback:`` list, the entry's own callbacks
kept), in the merged file ``hyperparams/A.yml`` (below); it stops training once the run's process and its worker
processes have used that many CPU seconds of training (evaluations excluded: their CPU time is measured and left
out), then has the run evaluated once more, so that the last evaluation is the return at equal CPU time.
``n_timesteps`` is then a step cap. The callback writes ``cpu_time.csv`` in the run folder (training and
evaluation CPU seconds and wall-clock time at each evaluation and at the end, and whether the budget stopped the
run). CPU time rather than wall-clock: a busy machine stretches the latter, not the former. Give every run one core
(``num_threads: 1``, ES/BiERL ``n_workers: 1``, ``--jobs`` at most the cores).

Each run is ``python -m rl_zoo3.train`` (``python -m sb3_bierl.zoo train`` for ``es``/``bierl``,
which registers them explicitly) with ``--algo A --env E --seed S -n STEPS --eval-freq F
--eval-episodes K --n-eval-envs 1 -f LOG --num-threads T``. Outputs, in the log folder:

- ``A/E_N/``: the zoo's run folder (``evaluations.npz``, the model, ``E/config.yml``, ``E/args.yml``; with a
  CPU-time budget ``cpu_time.csv``);
- ``runs/A_E_S.json``: the run's record, in the format of every benchmark's (:mod:`sb3_bierl.benchmarks.records`:
  status, command, wall time, final return, ...) with the zoo run's fields (run folder, when each evaluation was seen; with a CPU-time budget: steps reached, training and evaluation CPU seconds,
  ``stopped_by`` ``cpu_budget`` or ``n_timesteps``, the training CPU seconds before each evaluation) and
  ``runs/A_E_S.log``, the run's output. A run whose record says ``done`` (with the same step budget, CPU-time
  budget and evaluation settings, and its ``evaluations.npz`` still there) is skipped; a finished zoo run folder
  with the same seed, budgets and evaluation settings but no record (e.g. trained by hand with the same command)
  is adopted. Failed and interrupted runs are trained again: to resume a campaign, run the same command again;
- ``results.md``: final return (the last evaluation of each run) as the IQM across seeds with its 95%
  stratified-bootstrap interval, the probability that ES and BiERL beat each other algorithm (rliable), the IQM
  of min-max normalised scores across tasks, the wall-clock time per run, every run's status, the hyperparameter
  entry each (algo, env) used; with a CPU-time budget also the steps reached and CPU times per (algo, env) and
  the returns at equal environment steps (``equal_steps``: each pair compared at the largest step count all
  of their seeds reached);
- ``learning_curves_steps.png``, ``learning_curves_wallclock.png`` and, with a CPU-time budget,
  ``learning_curves_cpu.png``: evaluation return, IQM across seeds with its 95% bootstrap band, against
  environment steps, wall-clock time and training CPU time;
- ``performance_profile.png``: rliable's performance profile of the normalised scores (``scores``), on the
  tasks where every algorithm has every seed done;
- ``hyperparams/A.yml``: only when needed, see below.

Hyperparameters of the zoo's algorithms on -v5 MuJoCo tasks: rl_zoo3's files have ``-v4`` entries
(``HalfCheetah-v4``, ...) and no ``-v5`` ones, so the zoo would silently use the untuned ``default``
entry. When the file an algorithm reads has no entry for an env id but has one for another version
of the same env (the newest version below the requested one, else the newest), the runner writes
``hyperparams/A.yml`` -- the zoo's file, unchanged, plus that entry copied under the requested id (with the
CPU-time budget's callback, if any; an env with a budget gets its entry copied there too) -- and passes it with
``-conf`` (only for the (algo, env) that need it). v5 is the same task as v4
with bug fixes and a few new defaults (same action spaces; same observations except Ant-v5, which
adds contact forces: 105 values instead of 27), which the zoo has not retuned, so the tuned v4 values
are the closest thing it has -- and untuned ``default`` entries would handicap PPO, SAC, TRPO, ARS
(e.g. PPO without observation normalisation). Without any entry, the zoo's ``default`` is used.
``results.md`` lists which entry every (algo, env) used.

Wall-clock: time since the run's process started. The zoo's ``evaluations.npz`` has no times, so
while a run trains the runner polls it every 0.5 s and notes when each new evaluation appears;
evaluations it did not see appear (adopted runs, several evaluations between two polls) are placed
assuming a constant step rate between the observed points, the training start and the process end
(for an adopted run: a constant step rate over its whole training). ``python -m
rl_zoo3.plots.all_plots -a ppo es -e CartPole-v1 -f <log_folder>`` plots the same run folders with the
zoo's own script (which takes every run folder of an env, failed or repeated ones included).

Parallel runs (``--jobs N``): each run uses ``num_threads`` threads, plus its own processes where
its hyperparameters ask for them (ARS with ``n_envs > 1``, ES/BiERL with ``n_workers``), so keep
``N x threads`` within the cores. The zoo numbers run folders when a run starts, so two runs of the
same (algo, env) are never started together (the second waits until the first announced its folder).
A progress bar (tqdm) shows the runs finished, with the counts done, running and failed and an ETA; a failed
run's line is printed above it (``--no-progress-bar``: one line per finished run, for logs and CI).
Ctrl-C stops the benchmark: running trainings get SIGINT (the zoo saves their model), are recorded as
``interrupted`` and are trained again by the next invocation; the exit status is then 130. Otherwise
it is 0 when every run is done and 1 when one failed (its output's end is in ``results.md``).

The old command, ``python -m sb3_bierl.benchmark``, still works (``sb3_bierl/benchmark.py`` re-exports
this package). The modules, one step each: ``config`` (the YAML config, the runs), ``hyperparams`` (which
hyperparameter entry each (algo, env) uses, the merged files), ``commands`` (the ``rl_zoo3.train`` commands),
``records`` (``runs/*.json``, adopting zoo runs), ``evaluations`` (``evaluations.npz``, the CPU log, wall-clock
and CPU times), ``running`` (the zoo runs as jobs of the benchmarks' runner, :mod:`sb3_bierl.benchmarks.runner`:
subprocesses, progress bar, records), ``equal_steps`` (returns at equal steps),
``scores`` (normalised scores, performance profile), ``report`` (``results.md``), ``plots`` (the learning
curves), ``cli`` (the command line).
"""

from sb3_bierl.benchmarks.head_to_head.cli import (
    CPU_PLOT,
    PROFILE_PLOT,
    STEPS_PLOT,
    WALLCLOCK_PLOT,
    collect_records,
    main,
    parse_args,
    plan,
    write_outputs,
)
from sb3_bierl.benchmarks.head_to_head.commands import (
    format_param,
    train_command,
)
from sb3_bierl.benchmarks.head_to_head.config import (
    ALGO_KEYS,
    CONFIG_KEYS,
    CPU_CAPTION,
    DEFAULT_EVAL_FREQ,
    ENV_KEYS,
    POLL_S,
    RUN_SETTINGS,
    SETTING_PARSERS,
    WALLCLOCK_CAPTION,
    AlgoConfig,
    BenchmarkConfig,
    ConfigError,
    EnvConfig,
    Run,
    check_keys,
    expand_runs,
    load_config,
    named_entries,
    parse_algo,
    parse_env,
    parse_seconds,
    parse_settings,
    parse_steps,
)
from sb3_bierl.benchmarks.head_to_head.equal_steps import (
    comparison_pairs,
    equal_steps_table,
    overlap_step,
    returns_at,
)
from sb3_bierl.benchmarks.head_to_head.evaluations import (
    EvaluationWatcher,
    cpu_fields,
    finish_evaluations,
    load_evaluations,
    train_cpu_time,
    wall_clock,
)
from sb3_bierl.benchmarks.head_to_head.hyperparams import (
    CPU_BUDGET_CALLBACK,
    ENV_VERSION,
    HyperparamsSource,
    default_hyperparams_file,
    other_version_entry,
    resolve_hyperparameters,
    with_cpu_budget,
    write_merged_hyperparams,
)
from sb3_bierl.benchmarks.head_to_head.plots import (
    CURVE_BOOTSTRAP_REPS,
    X_AXES,
    aggregate,
    collect_curves,
    iqm_band,
    plot_curves,
    time_unit,
)
from sb3_bierl.benchmarks.head_to_head.records import (
    adopt_zoo_run,
    is_done,
    new_record,
    read_record,
    read_zoo_args,
    record_path,
    settings_match,
    write_record,
)
from sb3_bierl.benchmarks.head_to_head.report import (
    OWN_ALGOS,
    aggregate_section,
    budget_text,
    cpu_sections,
    cpu_table,
    done_records,
    evaluation_frequencies,
    failures,
    format_budget,
    format_steps,
    improvement_table,
    iqm,
    iqm_cell,
    make_report,
    results_table,
    runs_table,
    wall_time_table,
)
from sb3_bierl.benchmarks.head_to_head.running import (
    LOG_PATH_LINE,
    ZooJob,
    find_run_folder,
    run_all,
)
from sb3_bierl.benchmarks.head_to_head.scores import (
    NORMALISATION_CAPTION,
    PROFILE_BOOTSTRAP_REPS,
    TAUS,
    aggregate_table,
    normalise,
    normalised_scores,
    plot_performance_profile,
)
from sb3_bierl.benchmarks.runner import (
    ERROR_TAIL_LINES,
    REFRESH_S,
    RunProgress,
    child_environment,
    error_tail,
    execute_job,
    progress_line,
    result_or_failure,
)

__all__ = [
    "ALGO_KEYS",
    "CONFIG_KEYS",
    "CPU_BUDGET_CALLBACK",
    "CPU_CAPTION",
    "CPU_PLOT",
    "CURVE_BOOTSTRAP_REPS",
    "DEFAULT_EVAL_FREQ",
    "ENV_KEYS",
    "ENV_VERSION",
    "ERROR_TAIL_LINES",
    "LOG_PATH_LINE",
    "NORMALISATION_CAPTION",
    "OWN_ALGOS",
    "POLL_S",
    "PROFILE_BOOTSTRAP_REPS",
    "PROFILE_PLOT",
    "REFRESH_S",
    "RUN_SETTINGS",
    "SETTING_PARSERS",
    "STEPS_PLOT",
    "TAUS",
    "WALLCLOCK_CAPTION",
    "WALLCLOCK_PLOT",
    "X_AXES",
    "AlgoConfig",
    "BenchmarkConfig",
    "ConfigError",
    "EnvConfig",
    "EvaluationWatcher",
    "HyperparamsSource",
    "Run",
    "RunProgress",
    "ZooJob",
    "adopt_zoo_run",
    "aggregate",
    "aggregate_section",
    "aggregate_table",
    "budget_text",
    "check_keys",
    "child_environment",
    "collect_curves",
    "collect_records",
    "comparison_pairs",
    "cpu_fields",
    "cpu_sections",
    "cpu_table",
    "default_hyperparams_file",
    "done_records",
    "equal_steps_table",
    "error_tail",
    "evaluation_frequencies",
    "execute_job",
    "expand_runs",
    "failures",
    "find_run_folder",
    "finish_evaluations",
    "format_budget",
    "format_param",
    "format_steps",
    "improvement_table",
    "iqm",
    "iqm_band",
    "iqm_cell",
    "is_done",
    "load_config",
    "load_evaluations",
    "main",
    "make_report",
    "named_entries",
    "new_record",
    "normalise",
    "normalised_scores",
    "other_version_entry",
    "overlap_step",
    "parse_algo",
    "parse_args",
    "parse_env",
    "parse_seconds",
    "parse_settings",
    "parse_steps",
    "plan",
    "plot_curves",
    "plot_performance_profile",
    "progress_line",
    "read_record",
    "read_zoo_args",
    "record_path",
    "resolve_hyperparameters",
    "result_or_failure",
    "results_table",
    "returns_at",
    "run_all",
    "runs_table",
    "settings_match",
    "time_unit",
    "train_command",
    "train_cpu_time",
    "wall_clock",
    "wall_time_table",
    "with_cpu_budget",
    "write_merged_hyperparams",
    "write_outputs",
    "write_record",
]
