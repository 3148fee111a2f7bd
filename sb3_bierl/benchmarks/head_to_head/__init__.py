"""
Head-to-head benchmark of BiERL and ES against the RL Baselines3 Zoo's algorithms, at equal
environment steps. Every run is one ``rl_zoo3.train`` subprocess, so PPO, SAC (Stable-Baselines3),
TRPO, ARS (sb3-contrib) train with the zoo's own hyperparameters and ES, BiERL with
``hyperparams/{es,bierl}.yml``, and all of them are evaluated by the same ``EvalCallback``::

    python -m sb3_bierl.benchmarks.head_to_head zoo_configs/small.yml                # CartPole-v1, ~10 min, 2 cores
    python -m sb3_bierl.benchmarks.head_to_head zoo_configs/mujoco.yml --jobs 16     # MuJoCo + Box2D (days)
    python -m sb3_bierl.benchmarks.head_to_head zoo_configs/mujoco.yml --dry-run     # print the commands only
    python -m sb3_bierl.benchmarks.head_to_head zoo_configs/small.yml --report-only  # rebuild report, plots

Config (YAML)::

    algos: [ppo, trpo, ars, es, bierl]     # or a mapping, each algo with options:
    #  es: {n_timesteps: 2_000_000,         #   its own budget (explicit override of the common one)
    #       params: {n_pairs: 32},          #   passed as `-params n_pairs:32` (strings verbatim: the zoo
    #       n_workers: 2,                   #   evals them as Python); n_workers is -params n_workers:2
    #       train_args: [--device, cpu],    #   more arguments for rl_zoo3.train
    #       conf_file: my_es.yml}           #   hyperparameter file (-conf) instead of the default one
    envs:                                  # ids, or mappings with a budget (common or per algo):
      - CartPole-v1
      - {id: Hopper-v5, n_timesteps: 2_000_000}
      - {id: Swimmer-v5, n_timesteps: {default: 1_000_000, ars: 2_000_000}}
    seeds: [0, 1, 2]
    n_timesteps: 1_000_000                 # the budget of every run, unless overridden
    eval_freq: 10_000                      # environment steps between evaluations
    eval_episodes: 10                      # episodes per evaluation (deterministic policy)
    log_folder: logs/benchmark/mujoco      # default: logs/benchmark/<config file name>
    num_threads: 1                         # --num-threads of every run (and OMP/MKL threads, unless set)
    tensorboard: false                     # true: -tb <log_folder>/tensorboard
    train_args: []                         # more arguments for every rl_zoo3.train command

A run's budget is, most specific first: the env's per-algo value, the algo's ``n_timesteps``, the
env's common value, the config's ``n_timesteps``. Numbers may be written ``1_000_000`` or ``1e6``.

Each run is ``python -m rl_zoo3.train`` (``python -m sb3_bierl.zoo train`` for ``es``/``bierl``,
which registers them explicitly) with ``--algo A --env E --seed S -n BUDGET --eval-freq F
--eval-episodes K --n-eval-envs 1 -f LOG --num-threads T``. Outputs, in the log folder:

- ``A/E_N/``: the zoo's run folder (``evaluations.npz``, the model, ``E/config.yml``, ``E/args.yml``);
- ``runs/A_E_S.json``: this runner's record of the run (status, run folder, wall time, final return,
  when each evaluation was seen) and ``runs/A_E_S.log``, the run's output. A run whose record says
  ``done`` (with the same budget and evaluation settings, and its ``evaluations.npz`` still there)
  is skipped; a finished zoo run folder with the same seed, budget and evaluation settings but no
  record (e.g. trained by hand with the same command) is adopted. Failed runs are retried;
- ``results.md``: final return (the last evaluation of each run) as the IQM across seeds with its 95%
  stratified-bootstrap interval, the probability that ES and BiERL beat each other algorithm (rliable), the
  wall-clock time per run, every run's status, the hyperparameter entry each (algo, env) used;
- ``learning_curves_steps.png``, ``learning_curves_wallclock.png``: evaluation return, IQM across seeds with
  its 95% bootstrap band, against environment steps and against wall-clock time;
- ``hyperparams/A.yml``: only when needed, see below.

Hyperparameters of the zoo's algorithms on -v5 MuJoCo tasks: rl_zoo3's files have ``-v4`` entries
(``HalfCheetah-v4``, ...) and no ``-v5`` ones, so the zoo would silently use the untuned ``default``
entry. When the file an algorithm reads has no entry for an env id but has one for another version
of the same env (the newest version below the requested one, else the newest), the runner writes
``hyperparams/A.yml`` -- the zoo's file, unchanged, plus that entry copied under the requested id --
and passes it with ``-conf`` (only for the (algo, env) that need it). v5 is the same task as v4
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
Ctrl-C stops the benchmark: running trainings get SIGINT (the zoo saves their model), are recorded as
``interrupted`` and are trained again by the next invocation; the exit status is then 130. Otherwise
it is 0 when every run is done and 1 when one failed (its output's end is in ``results.md``).

The old command, ``python -m sb3_bierl.benchmark``, still works (``sb3_bierl/benchmark.py`` re-exports
this package). The modules, one step each: ``config`` (the YAML config, the runs), ``hyperparams`` (which
hyperparameter entry each (algo, env) uses), ``commands`` (the ``rl_zoo3.train`` commands), ``records``
(``runs/*.json``, adopting zoo runs), ``evaluations`` (``evaluations.npz``, wall-clock times), ``running``
(the subprocesses), ``report`` (``results.md``), ``plots`` (the learning curves), ``cli`` (the command line).
"""

from sb3_bierl.benchmarks.head_to_head.config import (
    ALGO_KEYS,
    CONFIG_KEYS,
    ENV_KEYS,
    POLL_S,
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
    parse_steps,
)
from sb3_bierl.benchmarks.head_to_head.hyperparams import (
    ENV_VERSION,
    HyperparamsSource,
    default_hyperparams_file,
    other_version_entry,
    resolve_hyperparameters,
    write_merged_hyperparams,
)
from sb3_bierl.benchmarks.head_to_head.commands import (
    child_environment,
    format_param,
    train_command,
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
from sb3_bierl.benchmarks.head_to_head.evaluations import (
    EvaluationWatcher,
    finish_evaluations,
    load_evaluations,
    wall_clock,
)
from sb3_bierl.benchmarks.head_to_head.running import (
    ERROR_TAIL_LINES,
    LOG_PATH_LINE,
    error_tail,
    execute_run,
    find_run_folder,
    progress_line,
    result_or_failure,
    run_all,
)
from sb3_bierl.benchmarks.head_to_head.report import (
    OWN_ALGOS,
    done_records,
    failures,
    format_steps,
    improvement_table,
    iqm_cell,
    make_report,
    results_table,
    runs_table,
    wall_time_table,
)
from sb3_bierl.benchmarks.head_to_head.plots import (
    CURVE_BOOTSTRAP_REPS,
    aggregate,
    collect_curves,
    plot_curves,
    time_unit,
)
from sb3_bierl.benchmarks.head_to_head.cli import (
    STEPS_PLOT,
    WALLCLOCK_PLOT,
    collect_records,
    main,
    parse_args,
    plan,
    write_outputs,
)

__all__ = [
    "ALGO_KEYS",
    "CONFIG_KEYS",
    "ENV_KEYS",
    "POLL_S",
    "WALLCLOCK_CAPTION",
    "AlgoConfig",
    "BenchmarkConfig",
    "ConfigError",
    "EnvConfig",
    "Run",
    "check_keys",
    "expand_runs",
    "load_config",
    "named_entries",
    "parse_algo",
    "parse_env",
    "parse_steps",
    "ENV_VERSION",
    "HyperparamsSource",
    "default_hyperparams_file",
    "other_version_entry",
    "resolve_hyperparameters",
    "write_merged_hyperparams",
    "child_environment",
    "format_param",
    "train_command",
    "adopt_zoo_run",
    "is_done",
    "new_record",
    "read_record",
    "read_zoo_args",
    "record_path",
    "settings_match",
    "write_record",
    "EvaluationWatcher",
    "finish_evaluations",
    "load_evaluations",
    "wall_clock",
    "ERROR_TAIL_LINES",
    "LOG_PATH_LINE",
    "error_tail",
    "execute_run",
    "find_run_folder",
    "progress_line",
    "result_or_failure",
    "run_all",
    "OWN_ALGOS",
    "done_records",
    "failures",
    "format_steps",
    "improvement_table",
    "iqm_cell",
    "make_report",
    "results_table",
    "runs_table",
    "wall_time_table",
    "CURVE_BOOTSTRAP_REPS",
    "aggregate",
    "collect_curves",
    "plot_curves",
    "time_unit",
    "STEPS_PLOT",
    "WALLCLOCK_PLOT",
    "collect_records",
    "main",
    "parse_args",
    "plan",
    "write_outputs",
]
