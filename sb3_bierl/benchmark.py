"""
Head-to-head benchmark of BiERL and ES against the RL Baselines3 Zoo's algorithms, at equal
environment steps. Every run is one ``rl_zoo3.train`` subprocess, so PPO, SAC (Stable-Baselines3),
TRPO, ARS (sb3-contrib) train with the zoo's own hyperparameters and ES, BiERL with
``hyperparams/{es,bierl}.yml``, and all of them are evaluated by the same ``EvalCallback``::

    python -m sb3_bierl.benchmark zoo_configs/small.yml                # CartPole-v1, ~10 min on 2 cores
    python -m sb3_bierl.benchmark zoo_configs/mujoco.yml --jobs 16     # MuJoCo + Box2D (days: see the file)
    python -m sb3_bierl.benchmark zoo_configs/mujoco.yml --dry-run     # print the commands, train nothing
    python -m sb3_bierl.benchmark zoo_configs/small.yml --report-only  # rebuild results.md and the plots

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
"""

import argparse
import importlib.util
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sb3_bierl.benchmarks.aggregates import improvement_probability, iqm_interval
from sb3_bierl.benchmarks.compare import format_duration, markdown_table
from sb3_bierl.zoo import ZOO_ALGOS, hyperparams_path

CONFIG_KEYS = frozenset(
    {"algos", "envs", "seeds", "n_timesteps", "eval_freq", "eval_episodes", "log_folder", "num_threads",
     "tensorboard", "train_args"}
)
ALGO_KEYS = frozenset({"n_timesteps", "params", "n_workers", "train_args", "conf_file"})
ENV_KEYS = frozenset({"n_timesteps"})
POLL_S = 0.5
ERROR_TAIL_LINES = 15
STEPS_PLOT = "learning_curves_steps.png"
WALLCLOCK_PLOT = "learning_curves_wallclock.png"
ENV_VERSION = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")
LOG_PATH_LINE = re.compile(r"^Log path: (?P<path>.+?)\s*$", re.MULTILINE)
WALLCLOCK_CAPTION = (
    "Wall-clock: time since the run's process started (Python start-up and set-up included), at which the "
    f"runner saw each evaluation appear in evaluations.npz (polled every {POLL_S} s); evaluations it did not "
    "see are placed assuming a constant step rate between the observed points."
)


class ConfigError(ValueError):
    """A benchmark config that cannot be used."""


# ---------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class AlgoConfig:
    """
    One algorithm of the benchmark.

    :param name: The zoo's algorithm name (``--algo``)
    :param n_timesteps: Its budget, if it overrides the common one
    :param params: Hyperparameters passed with ``-params``
    :param train_args: More arguments for ``rl_zoo3.train``
    :param conf_file: Hyperparameter file (``-conf``), None for the one the zoo reads by default
    """

    name: str
    n_timesteps: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    train_args: tuple[str, ...] = ()
    conf_file: str | None = None


@dataclass(frozen=True)
class EnvConfig:
    """
    One environment of the benchmark.

    :param env_id: Gymnasium id
    :param n_timesteps: Its budget for every algorithm, if it overrides the config's
    :param per_algo: Its budget for some algorithms
    """

    env_id: str
    n_timesteps: int | None = None
    per_algo: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchmarkConfig:
    """
    A benchmark: every algorithm on every environment with every seed.

    :param name: The config's name (its file name without extension)
    :param algos: The algorithms
    :param envs: The environments
    :param seeds: The seeds
    :param n_timesteps: The default budget in environment steps
    :param eval_freq: Environment steps between two evaluations
    :param eval_episodes: Episodes per evaluation
    :param log_folder: Where everything goes
    :param num_threads: PyTorch threads of each run
    :param tensorboard: Whether the runs log to ``<log_folder>/tensorboard``
    :param train_args: More arguments for every ``rl_zoo3.train`` command
    """

    name: str
    algos: tuple[AlgoConfig, ...]
    envs: tuple[EnvConfig, ...]
    seeds: tuple[int, ...]
    n_timesteps: int | None
    eval_freq: int
    eval_episodes: int
    log_folder: Path
    num_threads: int = 1
    tensorboard: bool = False
    train_args: tuple[str, ...] = ()

    def algo(self, name: str) -> AlgoConfig:
        """:return: The algorithm called ``name``"""
        return next(algo for algo in self.algos if algo.name == name)

    def budget(self, algo: str, env_id: str) -> int:
        """
        :param algo: Algorithm name
        :param env_id: Environment id
        :return: The budget of the runs of ``algo`` on ``env_id``: the env's per-algo value, else the
            algo's, else the env's common value, else the config's
        """
        env = next(env for env in self.envs if env.env_id == env_id)
        for budget in (env.per_algo.get(algo), self.algo(algo).n_timesteps, env.n_timesteps, self.n_timesteps):
            if budget is not None:
                return budget
        raise ConfigError(f"no budget for {algo} on {env_id}: set n_timesteps")


@dataclass(frozen=True)
class Run:
    """
    One training run.

    :param algo: Algorithm name
    :param env_id: Environment id
    :param seed: Seed
    :param n_timesteps: Budget in environment steps
    """

    algo: str
    env_id: str
    seed: int
    n_timesteps: int

    @property
    def key(self) -> str:
        """The run's file stem, ``<algo>_<env>_<seed>`` (``/`` and ``:`` of the env id become ``-``)."""
        return f"{self.algo}_{re.sub(r'[/:]', '-', self.env_id)}_{self.seed}"

    def describe(self) -> str:
        """:return: ``algo env seed S``"""
        return f"{self.algo} {self.env_id} seed {self.seed}"


def parse_steps(value: Any, where: str) -> int:
    """
    :param value: A number of steps from the YAML file: ``50000``, ``50_000``, ``5e4`` or ``"5e4"``
    :param where: Where it was found, for the error message
    :return: It as a positive int
    """
    try:
        number = float(str(value).replace("_", ""))
    except ValueError:
        raise ConfigError(f"{where}: not a number of steps: {value!r}") from None
    if not math.isfinite(number) or number < 1 or number != int(number):
        raise ConfigError(f"{where}: a number of steps must be a positive integer, got {value!r}")
    return int(number)


def named_entries(entries: Any, what: str) -> list[tuple[str, dict[str, Any]]]:
    """
    :param entries: ``algos`` or ``envs`` of the config: a list of names, of one-key mappings
        ``{name: options}`` or of mappings with an ``id``; or a mapping ``{name: options}``
    :param what: ``"algos"`` or ``"envs"``, for error messages
    :return: ``(name, options)`` pairs, in order
    """
    if isinstance(entries, Mapping):
        pairs = list(entries.items())
    elif isinstance(entries, list):
        pairs = []
        for entry in entries:
            if isinstance(entry, str):
                pairs.append((entry, {}))
            elif isinstance(entry, Mapping) and "id" in entry:
                pairs.append((entry["id"], {key: value for key, value in entry.items() if key != "id"}))
            elif isinstance(entry, Mapping) and len(entry) == 1:
                pairs.append(next(iter(entry.items())))
            else:
                raise ConfigError(f"{what}: cannot read the entry {entry!r}")
    else:
        raise ConfigError(f"{what} must be a list or a mapping, got {entries!r}")
    pairs = [(str(name), dict(options or {})) for name, options in pairs]
    names = [name for name, _ in pairs]
    if not names:
        raise ConfigError(f"{what} is empty")
    if len(set(names)) != len(names):
        raise ConfigError(f"{what}: duplicated entries in {names}")
    return pairs


def check_keys(options: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    """Refuse unknown keys (typos would otherwise be silently ignored)."""
    unknown = set(options) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(allowed)})")


def parse_algo(name: str, options: dict[str, Any]) -> AlgoConfig:
    """
    :param name: Algorithm name
    :param options: Its options in the config
    :return: The algorithm
    """
    check_keys(options, ALGO_KEYS, f"algos.{name}")
    params = dict(options.get("params") or {})
    if "n_workers" in options:
        params["n_workers"] = options["n_workers"]
    budget = options.get("n_timesteps")
    return AlgoConfig(
        name=name,
        n_timesteps=None if budget is None else parse_steps(budget, f"algos.{name}.n_timesteps"),
        params=params,
        train_args=tuple(str(argument) for argument in options.get("train_args") or ()),
        conf_file=options.get("conf_file"),
    )


def parse_env(env_id: str, options: dict[str, Any], algo_names: Sequence[str]) -> EnvConfig:
    """
    :param env_id: Environment id
    :param options: Its options in the config
    :param algo_names: The config's algorithms, to check per-algo budgets
    :return: The environment
    """
    check_keys(options, ENV_KEYS, f"envs.{env_id}")
    budget = options.get("n_timesteps")
    if not isinstance(budget, Mapping):
        where = f"envs.{env_id}.n_timesteps"
        return EnvConfig(env_id, None if budget is None else parse_steps(budget, where))
    unknown = set(budget) - {"default", *algo_names}
    if unknown:
        raise ConfigError(f"envs.{env_id}.n_timesteps: {sorted(unknown)} are not among the algos {list(algo_names)}")
    per_algo = {algo: parse_steps(steps, f"envs.{env_id}.n_timesteps.{algo}") for algo, steps in budget.items()}
    common = per_algo.pop("default", None)
    return EnvConfig(env_id, common, per_algo)


def load_config(path: str | Path, log_folder: str | Path | None = None) -> BenchmarkConfig:
    """
    :param path: The config file (YAML)
    :param log_folder: Overrides the config's ``log_folder``
    :return: The benchmark
    :raises ConfigError: if the file cannot be used
    """
    path = Path(path)
    with open(path) as file:
        raw = yaml.safe_load(file) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    check_keys(raw, CONFIG_KEYS, str(path))
    for key in ("algos", "envs"):
        if key not in raw:
            raise ConfigError(f"{path}: '{key}' is required")
    algos = tuple(parse_algo(name, options) for name, options in named_entries(raw["algos"], "algos"))
    algo_names = [algo.name for algo in algos]
    envs = tuple(parse_env(env_id, options, algo_names) for env_id, options in named_entries(raw["envs"], "envs"))
    seeds = raw.get("seeds", [0])
    seeds = tuple(int(seed) for seed in (seeds if isinstance(seeds, list) else [seeds]))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct integers, got {list(seeds)}")
    budget = raw.get("n_timesteps")
    config = BenchmarkConfig(
        name=path.stem,
        algos=algos,
        envs=envs,
        seeds=seeds,
        n_timesteps=None if budget is None else parse_steps(budget, "n_timesteps"),
        eval_freq=parse_steps(raw.get("eval_freq", 10_000), "eval_freq"),
        eval_episodes=parse_steps(raw.get("eval_episodes", 10), "eval_episodes"),
        log_folder=Path(log_folder or raw.get("log_folder") or Path("logs", "benchmark", path.stem)),
        num_threads=int(raw.get("num_threads", 1)),
        tensorboard=bool(raw.get("tensorboard", False)),
        train_args=tuple(str(argument) for argument in raw.get("train_args") or ()),
    )
    for run in expand_runs(config):  # every budget is defined and leaves room for an evaluation
        if run.n_timesteps < config.eval_freq:
            raise ConfigError(f"{run.describe()}: budget {run.n_timesteps} < eval_freq {config.eval_freq}: no evaluation")
    return config


def expand_runs(config: BenchmarkConfig) -> list[Run]:
    """
    :param config: The benchmark
    :return: Its runs, seed by seed (a first seed of everything finishes early), then env, then algo
    """
    return [
        Run(algo.name, env.env_id, seed, config.budget(algo.name, env.env_id))
        for seed in config.seeds
        for env in config.envs
        for algo in config.algos
    ]


# ---------------------------------------------------------------------- hyperparameter files
@dataclass(frozen=True)
class HyperparamsSource:
    """
    Where the hyperparameters of one (algo, env) come from.

    :param base_file: The file the zoo would read for the algorithm
    :param entry: The entry of ``base_file`` used: the env id, another version of it, ``"default"``,
        or None (none: the zoo will fail; or a non-YAML file that was not inspected)
    :param conf_file: The file passed with ``-conf``, None for the zoo's default file
    """

    base_file: Path
    entry: str | None
    conf_file: Path | None

    def describe(self, env_id: str) -> str:
        """:return: The entry used, for the report"""
        where = f"`{self.base_file.name}`"
        if self.entry is None:
            return f"{where}: no entry (not inspected, or missing)"
        if self.entry == env_id:
            return f"{where}: `{env_id}`"
        if self.entry == "default":
            return f"{where}: `default` (no entry for `{env_id}`)"
        return f"{where}: `{self.entry}`, copied to `{env_id}` in `{self.conf_file}`"


def default_hyperparams_file(algo: str) -> Path:
    """
    :param algo: Algorithm name
    :return: The hyperparameter file the zoo reads for ``algo`` without ``-conf`` (rl_zoo3 is located,
        not imported: importing it patches gymnasium's ``TimeLimit`` for the whole process)
    """
    if algo in ZOO_ALGOS:
        return hyperparams_path(algo)
    spec = importlib.util.find_spec("rl_zoo3")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError('The RL Baselines3 Zoo is needed: pip install ".[zoo]" in a checkout of sb3-bierl')
    return Path(next(iter(spec.submodule_search_locations)), "hyperparams", f"{algo}.yml")


def other_version_entry(env_id: str, entries: Mapping[str, Any]) -> str | None:
    """
    :param env_id: An env id such as ``HalfCheetah-v5``
    :param entries: A hyperparameter file's entries
    :return: The entry of the same env with another version (the newest below ``env_id``'s, else the
        newest), None if there is none
    """
    wanted = ENV_VERSION.match(env_id)
    if wanted is None:
        return None
    versions = []
    for key in entries:
        match = ENV_VERSION.match(str(key))
        if match is not None and match["name"] == wanted["name"]:
            versions.append((int(match["version"]), str(key)))
    older = [version for version in versions if version[0] < int(wanted["version"])]
    return max(older or versions)[1] if versions else None


def resolve_hyperparameters(config: BenchmarkConfig) -> dict[tuple[str, str], HyperparamsSource]:
    """
    Find the hyperparameter entry of every (algo, env); for envs that have an entry only under another
    version, write ``<log_folder>/hyperparams/<algo>.yml`` (the algo's file plus the copies).

    :param config: The benchmark
    :return: The source of every (algo, env)
    """
    sources: dict[tuple[str, str], HyperparamsSource] = {}
    for algo in config.algos:
        base = Path(algo.conf_file) if algo.conf_file else default_hyperparams_file(algo.name)
        given = Path(algo.conf_file) if algo.conf_file else None
        if base.suffix not in (".yml", ".yaml") or not base.is_file():
            sources.update({(algo.name, env.env_id): HyperparamsSource(base, None, given) for env in config.envs})
            continue
        with open(base) as file:
            entries = yaml.safe_load(file) or {}
        copies = {}
        for env in config.envs:
            if env.env_id in entries:
                entry = env.env_id
            elif (other := other_version_entry(env.env_id, entries)) is not None:
                entry = other
                copies[env.env_id] = other
            else:
                entry = "default" if "default" in entries else None
            sources[algo.name, env.env_id] = HyperparamsSource(base, entry, given)
        if copies:  # only the (algo, env) that need a copy read the merged file
            merged = write_merged_hyperparams(config.log_folder, algo.name, base, entries, copies)
            for env_id, entry in copies.items():
                sources[algo.name, env_id] = HyperparamsSource(base, entry, merged)
    return sources


def write_merged_hyperparams(
    log_folder: Path, algo: str, base: Path, entries: dict[str, Any], copies: Mapping[str, str]
) -> Path:
    """
    :param log_folder: The benchmark's log folder
    :param algo: Algorithm name
    :param base: The hyperparameter file the entries come from
    :param entries: Its entries (anchors and merge keys resolved by the YAML loader)
    :param copies: ``{env id: entry to copy under it}``
    :return: The written ``<log_folder>/hyperparams/<algo>.yml``
    """
    path = log_folder / "hyperparams" / f"{algo}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = {**entries, **{env_id: entries[source] for env_id, source in copies.items()}}
    header = [f"# Written by sb3_bierl.benchmark: {base}, unchanged, plus copies of entries under new ids:"]
    header += [f"#   {env_id} <- {source}" for env_id, source in copies.items()]
    text = "\n".join(header) + "\n" + yaml.safe_dump(merged, sort_keys=False, default_flow_style=False)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


# ---------------------------------------------------------------------- commands
def format_param(name: str, value: Any) -> str:
    """
    :param name: Hyperparameter name
    :param value: Its value: strings are passed verbatim (the zoo evals them as Python), others as ``repr``
    :return: The ``-params`` token ``name:value``
    """
    return f"{name}:{value if isinstance(value, str) else repr(value)}"


def train_command(run: Run, config: BenchmarkConfig, source: HyperparamsSource | None) -> list[str]:
    """
    :param run: The run
    :param config: The benchmark
    :param source: Its hyperparameter source (``-conf`` when it names a file)
    :return: The ``rl_zoo3.train`` command of the run
    """
    algo = config.algo(run.algo)
    entry = ["-m", "sb3_bierl.zoo", "train"] if run.algo in ZOO_ALGOS else ["-m", "rl_zoo3.train"]
    command = [
        sys.executable, *entry,
        "--algo", run.algo,
        "--env", run.env_id,
        "--seed", str(run.seed),
        "-n", str(run.n_timesteps),
        "--eval-freq", str(config.eval_freq),
        "--eval-episodes", str(config.eval_episodes),
        "--n-eval-envs", "1",
        "-f", str(config.log_folder),
        "--num-threads", str(config.num_threads),
    ]  # fmt: skip
    if config.tensorboard:
        command += ["-tb", str(config.log_folder / "tensorboard")]
    if source is not None and source.conf_file is not None:
        command += ["-conf", str(source.conf_file)]
    if algo.params:
        command += ["-params", *(format_param(name, value) for name, value in algo.params.items())]
    return command + list(config.train_args) + list(algo.train_args)


def child_environment(num_threads: int) -> dict[str, str]:
    """:return: The environment of a run: unbuffered output, ``num_threads`` OpenMP/MKL threads unless set"""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environment.setdefault(name, str(max(num_threads, 1)))
    return environment


# ---------------------------------------------------------------------- records
def record_path(log_folder: Path, run: Run) -> Path:
    """:return: ``<log_folder>/runs/<algo>_<env>_<seed>.json``"""
    return log_folder / "runs" / f"{run.key}.json"


def read_record(log_folder: Path, run: Run) -> dict[str, Any] | None:
    """:return: The run's record, None if there is none (or it is unreadable)"""
    try:
        return json.loads(record_path(log_folder, run).read_text())
    except (OSError, ValueError):
        return None


def write_record(log_folder: Path, run: Run, record: dict[str, Any]) -> None:
    """Write the run's record atomically (an interrupted write leaves the previous one)."""
    path = record_path(log_folder, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(path)


def settings_match(record: Mapping[str, Any], run: Run, config: BenchmarkConfig) -> bool:
    """:return: Whether a record (or the zoo's saved arguments) has the run's seed, budget and evaluation settings"""
    expected = {
        "env": run.env_id,
        "seed": run.seed,
        "n_timesteps": run.n_timesteps,
        "eval_freq": config.eval_freq,
        "eval_episodes": config.eval_episodes,
    }
    return all(record.get(key) == value for key, value in expected.items())


def is_done(record: Mapping[str, Any] | None, run: Run, config: BenchmarkConfig) -> bool:
    """:return: Whether the record says the run finished, with the current settings, and its evaluations exist"""
    return (
        record is not None
        and record.get("status") == "done"
        and settings_match(record, run, config)
        and record.get("run_folder") is not None
        and (config.log_folder / record["run_folder"] / "evaluations.npz").is_file()
    )


class _ZooArgsLoader(yaml.SafeLoader):
    """Reads the zoo's ``args.yml`` (a dumped ``OrderedDict``) without constructing arbitrary Python objects."""


def _construct_python_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if suffix == "object/apply:collections.OrderedDict" and isinstance(node, yaml.SequenceNode):
        arguments = loader.construct_sequence(node, deep=True)
        return dict(arguments[0]) if arguments else {}
    return None  # any other Python object: not needed here


_ZooArgsLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_python_tag)


def read_zoo_args(path: Path) -> dict[str, Any]:
    """:return: The command-line arguments the zoo saved in a run's ``<env>/args.yml``, {} if unreadable"""
    try:
        with open(path) as file:
            arguments = yaml.load(file, Loader=_ZooArgsLoader)  # a SafeLoader subclass
    except (OSError, yaml.YAMLError):
        return {}
    return arguments if isinstance(arguments, dict) else {}


def adopt_zoo_run(run: Run, config: BenchmarkConfig) -> dict[str, Any] | None:
    """
    Look for a finished zoo run folder of this run that has no record (newest first).

    :param run: The run
    :param config: The benchmark
    :return: A ``done`` record for it (wall time from file times: set-up excluded), None if none
    """
    candidates = sorted((config.log_folder / run.algo).glob("*/*/args.yml"), key=lambda p: p.stat().st_mtime)
    for args_file in reversed(candidates):
        arguments = read_zoo_args(args_file)
        folder = args_file.parent.parent
        model = folder / f"{args_file.parent.name}.zip"
        if not (settings_match(arguments, run, config) and model.is_file() and (folder / "evaluations.npz").is_file()):
            continue
        record = new_record(run, config, command=None)
        record.update(
            status="done",
            adopted=True,
            run_folder=str(folder.relative_to(config.log_folder)),
            wall_time_s=max(model.stat().st_mtime - args_file.stat().st_mtime, 0.0),
        )
        return finish_evaluations(record, config)
    return None


def new_record(run: Run, config: BenchmarkConfig, command: Sequence[str] | None) -> dict[str, Any]:
    """:return: A fresh record of the run, status ``running``"""
    return {
        "algo": run.algo,
        "env": run.env_id,
        "seed": run.seed,
        "n_timesteps": run.n_timesteps,
        "eval_freq": config.eval_freq,
        "eval_episodes": config.eval_episodes,
        "status": "running",
        "adopted": False,
        "command": list(command) if command is not None else None,
        "log_file": str(Path("runs", f"{run.key}.log")),
        "run_folder": None,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 (Python 3.10)
        "wall_time_s": None,
        "training_start_s": None,
        "eval_seen_at": [],
        "returncode": None,
        "error": None,
        "final_return": None,
        "last_eval_timestep": None,
    }


# ---------------------------------------------------------------------- evaluations
def load_evaluations(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """
    :param folder: A zoo run folder
    :return: The evaluation steps and mean returns of its ``evaluations.npz``, None if missing, unreadable
        (e.g. being written) or empty
    """
    try:
        with np.load(folder / "evaluations.npz") as data:
            timesteps, results = np.asarray(data["timesteps"], dtype=np.int64), np.asarray(data["results"], dtype=float)
    except Exception:  # noqa: BLE001 (missing, or half written: zipfile, EOF, value errors...)
        return None
    if len(timesteps) == 0:
        return None
    return timesteps, results.reshape(len(timesteps), -1).mean(axis=1)


def finish_evaluations(record: dict[str, Any], config: BenchmarkConfig) -> dict[str, Any]:
    """
    Fill in the final return and check that the run is complete (``done`` becomes ``failed`` otherwise).

    :param record: A record whose status is already ``done`` or ``failed``
    :param config: The benchmark
    :return: The record
    """
    folder = config.log_folder / record["run_folder"] if record.get("run_folder") else None
    evaluations = load_evaluations(folder) if folder is not None else None
    if evaluations is not None:
        record["final_return"] = float(evaluations[1][-1])
        record["last_eval_timestep"] = int(evaluations[0][-1])
    if record["status"] != "done":
        return record
    if evaluations is None:
        record.update(status="failed", error="no evaluations.npz in the run folder")
    elif evaluations[0][-1] <= record["n_timesteps"] - config.eval_freq:
        record.update(
            status="failed",
            error=f"incomplete: last evaluation at {evaluations[0][-1]} steps of a budget of {record['n_timesteps']}",
        )
    return record


def wall_clock(timesteps: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """
    :param timesteps: Evaluation steps of a run
    :param record: Its record
    :return: The wall-clock time of each evaluation: seen by the runner where it was, else interpolated
        at a constant step rate between the seen points, the training start and the process end
    """
    points = [(0.0, float(record.get("training_start_s") or 0.0))]
    points += [(float(steps), float(seconds)) for steps, seconds in record.get("eval_seen_at") or []]
    end = (float(max(record["n_timesteps"], timesteps[-1])), float(record.get("wall_time_s") or points[-1][1]))
    if end[0] > points[-1][0]:
        points.append(end)
    steps, seconds = np.array(points).T
    return np.interp(timesteps, steps, np.maximum.accumulate(seconds))


class EvaluationWatcher:
    """
    Notes when new evaluations appear in a run's ``evaluations.npz``.

    :param folder: The zoo run folder
    """

    def __init__(self, folder: Path):
        self.path = folder / "evaluations.npz"
        self.seen: list[list[float]] = []
        self._mtime_ns = 0
        self._count = 0

    def poll(self, elapsed_s: float) -> None:
        """:param elapsed_s: Seconds since the run started"""
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except OSError:
            return
        if mtime_ns == self._mtime_ns:
            return
        evaluations = load_evaluations(self.path.parent)
        if evaluations is None:
            return  # half written: next poll
        self._mtime_ns = mtime_ns
        if len(evaluations[0]) > self._count:
            self._count = len(evaluations[0])
            self.seen.append([int(evaluations[0][-1]), round(elapsed_s, 3)])


# ---------------------------------------------------------------------- running
def find_run_folder(log_file: Path, log_folder: Path) -> str | None:
    """
    :param log_file: A run's output
    :param log_folder: The benchmark's log folder
    :return: The zoo run folder it announced (``Log path: ...``), relative to ``log_folder``; None if not yet
    """
    try:
        match = LOG_PATH_LINE.search(log_file.read_text(errors="replace"))
    except OSError:
        return None
    if match is None:
        return None
    folder = Path(match["path"])
    try:
        return str(folder.resolve().relative_to(log_folder.resolve()))
    except ValueError:
        return str(folder.resolve())


def error_tail(log_file: Path, lines: int = ERROR_TAIL_LINES) -> str:
    """:return: The last lines of a run's output"""
    try:
        return "\n".join(log_file.read_text(errors="replace").rstrip().splitlines()[-lines:])
    except OSError:
        return "(no output)"


def execute_run(
    run: Run,
    command: Sequence[str],
    config: BenchmarkConfig,
    start_lock: threading.Lock,
    stop: threading.Event,
) -> dict[str, Any] | None:
    """
    Train one run in a subprocess and write its record.

    ``start_lock`` is held from the start of the process until the zoo announced its run folder: the zoo
    numbers run folders (``E_N``) when it starts, so two runs of the same (algo, env) starting together
    could pick the same number.

    :param run: The run
    :param command: Its command
    :param config: The benchmark
    :param start_lock: The lock of the run's (algo, env)
    :param stop: Set when the benchmark is interrupted: the run gets SIGINT (the zoo then saves its model)
    :return: The final record, None if the benchmark was stopped before the run started
    """
    watcher: EvaluationWatcher | None = None
    interrupted = False
    with start_lock:
        if stop.is_set():
            return None
        record = new_record(run, config, command)
        log_file = config.log_folder / record["log_file"]
        log_file.parent.mkdir(parents=True, exist_ok=True)
        write_record(config.log_folder, run, record)
        start = time.monotonic()
        try:
            with open(log_file, "w") as output:  # the child keeps its own copy of the descriptor
                process = subprocess.Popen(
                    command, stdout=output, stderr=subprocess.STDOUT, env=child_environment(config.num_threads),
                    start_new_session=True,  # Ctrl-C reaches the runner only, which forwards it once
                )  # fmt: skip
        except OSError as error:
            record.update(status="failed", error=f"could not start: {error}", wall_time_s=0.0)
            write_record(config.log_folder, run, record)
            return record
        while process.poll() is None and watcher is None:
            time.sleep(POLL_S / 5)
            folder = find_run_folder(log_file, config.log_folder)
            if folder is not None:
                record.update(run_folder=folder, training_start_s=round(time.monotonic() - start, 3))
                watcher = EvaluationWatcher(config.log_folder / folder)
    # the lock is released: the run folder exists (or the process has ended)
    while process.poll() is None:
        time.sleep(POLL_S)
        if watcher is not None:
            watcher.poll(time.monotonic() - start)
        if stop.is_set() and not interrupted:
            process.send_signal(signal.SIGINT)
            interrupted = True
    record.update(wall_time_s=round(time.monotonic() - start, 3), returncode=process.returncode)
    record["run_folder"] = record["run_folder"] or find_run_folder(log_file, config.log_folder)
    record["eval_seen_at"] = watcher.seen if watcher is not None else []
    if interrupted:
        record.update(status="interrupted", error="the benchmark was interrupted")
    elif process.returncode != 0:
        record.update(status="failed", error=f"exit status {process.returncode}:\n{error_tail(log_file)}")
    else:
        record["status"] = "done"
    record = finish_evaluations(record, config)
    write_record(config.log_folder, run, record)
    return record


def run_all(
    runs: Sequence[Run], commands: Mapping[Run, list[str]], config: BenchmarkConfig, jobs: int
) -> tuple[dict[Run, dict[str, Any]], bool]:
    """
    Train runs, ``jobs`` at a time.

    :param runs: The runs to train
    :param commands: Their commands
    :param config: The benchmark
    :param jobs: How many run in parallel
    :return: The records of the runs that were trained, and whether the benchmark was interrupted
    """
    locks = {(run.algo, run.env_id): threading.Lock() for run in runs}
    stop = threading.Event()
    records: dict[Run, dict[str, Any]] = {}
    executor = ThreadPoolExecutor(max_workers=max(jobs, 1))
    futures: dict[Future, Run] = {
        executor.submit(execute_run, run, commands[run], config, locks[run.algo, run.env_id], stop): run for run in runs
    }
    interrupted = False
    try:
        for number, future in enumerate(as_completed(futures), start=1):
            run, record = futures[future], result_or_failure(future, futures[future], config)
            if record is not None:
                records[run] = record
                print(f"[{number}/{len(runs)}] {progress_line(run, record)}", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: stopping the running trainings (the zoo saves their models) ...", flush=True)
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
        for future, run in futures.items():
            record = result_or_failure(future, run, config) if future.done() and not future.cancelled() else None
            if record is not None:
                records[run] = record
    finally:
        executor.shutdown(wait=True)
    return records, interrupted


def result_or_failure(future: Future, run: Run, config: BenchmarkConfig) -> dict[str, Any] | None:
    """:return: The record a finished run returned, or a ``failed`` one if the runner itself raised"""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 (a bug or an I/O error in the runner: the other runs go on)
        record = {**(read_record(config.log_folder, run) or new_record(run, config, None)), "status": "failed"}
        record["error"] = f"the runner failed: {error!r}"
        write_record(config.log_folder, run, record)
        return record


def progress_line(run: Run, record: Mapping[str, Any]) -> str:
    """:return: One line about a finished run"""
    line = f"{record['status']:<11} {run.describe()}"
    if record.get("final_return") is not None:
        line += f": return {record['final_return']:.1f} at {record['last_eval_timestep']} steps"
    if record.get("wall_time_s") is not None:
        line += f", {format_duration(record['wall_time_s'])}"
    if record["status"] == "failed":
        line += f" -- see {record.get('log_file')} in the log folder"
    return line


# ---------------------------------------------------------------------- report
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


# ---------------------------------------------------------------------- plots
def aggregate(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """
    :param curves: ``(x, y)`` of each seed, ``x`` increasing
    :return: x, and the IQM of y across seeds with the low and high ends of its 95% bootstrap interval (rliable),
        on the union of the seeds' x within the range that every seed covers (linear interpolation)
    """
    if len(curves) == 1:
        x, y = curves[0]
        y = np.asarray(y, float)
        return np.asarray(x, float), y, y, y
    low, high = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    grid = np.unique(np.concatenate([x for x, _ in curves]))
    grid = grid[(grid >= low) & (grid <= high)]
    if len(grid) == 0:
        grid = np.array([high])
    values = np.array([np.interp(grid, x, y) for x, y in curves])
    iqm, low, high = np.array([iqm_interval(column, reps=CURVE_BOOTSTRAP_REPS) for column in values.T]).T
    return grid, iqm, low, high


#: Bootstrap resamples per point of a learning curve
CURVE_BOOTSTRAP_REPS = 300


def collect_curves(
    config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]]
) -> dict[tuple[str, str], list[dict[str, np.ndarray]]]:
    """:return: ``{(algo, env): [{"steps", "seconds", "returns"} per done seed]}``"""
    curves: dict[tuple[str, str], list[dict[str, np.ndarray]]] = {}
    for run, record in records.items():
        if record.get("status") != "done":
            continue
        evaluations = load_evaluations(config.log_folder / record["run_folder"])
        if evaluations is None:
            continue
        steps, returns = evaluations
        curves.setdefault((run.algo, run.env_id), []).append(
            {"steps": steps.astype(float), "seconds": wall_clock(steps, record), "returns": returns}
        )
    return curves


def time_unit(seconds: float) -> tuple[float, str]:
    """:return: A divider and unit for an axis whose values go up to ``seconds``"""
    if seconds < 120:
        return 1.0, "s"
    if seconds < 7200:
        return 60.0, "min"
    return 3600.0, "h"


def plot_curves(
    config: BenchmarkConfig, curves: Mapping[tuple[str, str], list[dict[str, np.ndarray]]], x_key: str, path: Path
) -> bool:
    """
    :param config: The benchmark
    :param curves: From :func:`collect_curves`
    :param x_key: ``"steps"`` or ``"seconds"``
    :param path: The PNG to write
    :return: Whether it was written (matplotlib may be missing)
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('matplotlib is not installed: no plots (pip install ".[benchmark]" in a checkout of sb3-bierl)', file=sys.stderr)
        return False
    columns = min(3, len(config.envs))
    rows = math.ceil(len(config.envs) / columns)
    caption_inches = 0.6 if x_key == "seconds" else 0.3
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.8 * rows + caption_inches), squeeze=False)
    longest = max((curve[x_key][-1] for group in curves.values() for curve in group), default=1.0)
    divider, unit = (1.0, "environment steps") if x_key == "steps" else time_unit(longest)
    for axis, env in zip(axes.flat, config.envs, strict=False):  # more axes than envs
        for algo in config.algos:
            group = curves.get((algo.name, env.env_id))
            if not group:
                continue
            x, iqm, low, high = aggregate([(curve[x_key], curve["returns"]) for curve in group])
            line = axis.plot(x / divider, iqm, label=f"{algo.name} ({len(group)})", marker="." if len(x) < 30 else None)
            axis.fill_between(x / divider, low, high, alpha=0.2, color=line[0].get_color())
        axis.set_title(env.env_id)
        axis.set_xlabel(unit if x_key == "steps" else f"wall-clock time [{unit}]")
        axis.set_ylabel("evaluation return")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(config.envs) :]:
        axis.set_visible(False)
    caption = "IQM across seeds, 95% bootstrap band (rliable; number of seeds in brackets)."
    if x_key == "seconds":
        caption += " " + WALLCLOCK_CAPTION
    figure.text(0.01, 0.005, caption, fontsize=7, wrap=True, va="bottom")
    figure.tight_layout(rect=(0, caption_inches / (3.8 * rows + caption_inches), 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# ---------------------------------------------------------------------- command line
def collect_records(config: BenchmarkConfig, runs: Sequence[Run]) -> dict[Run, dict[str, Any]]:
    """:return: The current record of every run that has one matching the current settings"""
    records = {}
    for run in runs:
        record = read_record(config.log_folder, run)
        if record is not None and settings_match(record, run, config):
            records[run] = record
    return records


def write_outputs(
    config: BenchmarkConfig, records: Mapping[Run, Mapping[str, Any]], sources: Mapping[tuple[str, str], HyperparamsSource]
) -> Path:
    """
    Write ``results.md`` and the learning-curve plots.

    :return: The path of ``results.md``
    """
    config.log_folder.mkdir(parents=True, exist_ok=True)
    curves = collect_curves(config, records)
    plots = []
    if curves:
        for name, x_key in ((STEPS_PLOT, "steps"), (WALLCLOCK_PLOT, "seconds")):
            if plot_curves(config, curves, x_key, config.log_folder / name):
                plots.append(name)
    path = config.log_folder / "results.md"
    path.write_text(make_report(config, records, sources, plots))
    return path


def plan(
    config: BenchmarkConfig, runs: Sequence[Run], record_adopted: bool = True
) -> tuple[list[Run], dict[Run, dict[str, Any]]]:
    """
    :param config: The benchmark
    :param runs: Its runs
    :param record_adopted: Whether to write the records of adopted zoo runs (not with ``--dry-run``)
    :return: The runs still to train, and the records of those that are done
    """
    pending, done = [], {}
    for run in runs:
        record = read_record(config.log_folder, run)
        if is_done(record, run, config):
            done[run] = record
            continue
        adopted = adopt_zoo_run(run, config)
        if adopted is not None and adopted["status"] == "done":
            if record_adopted:
                write_record(config.log_folder, run, adopted)
            done[run] = adopted
        else:
            pending.append(run)
    return pending, done


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """:return: The command-line arguments"""
    parser = argparse.ArgumentParser(
        prog="python -m sb3_bierl.benchmark",
        description="Train every (algo, env, seed) of a config with rl_zoo3.train, then write results.md and plots.",
    )
    parser.add_argument("config", type=Path, help="benchmark config (YAML), e.g. zoo_configs/small.yml")
    parser.add_argument("--jobs", type=int, default=1, help="trainings run in parallel (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands of the runs still to do, run nothing")
    parser.add_argument("--report-only", action="store_true", help="only rebuild results.md and the plots")
    parser.add_argument("--log-folder", type=Path, help="overrides the config's log_folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """
    :return: Exit status: 0 if every run is done, 1 if one failed (or, with ``--report-only``, is not
        done), 2 for an unusable config, 130 if interrupted
    """
    args = parse_args(argv)
    try:
        config = load_config(args.config, args.log_folder)
        runs = expand_runs(config)
        sources = resolve_hyperparameters(config)
    except (OSError, ConfigError, RuntimeError, yaml.YAMLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.report_only:
        records = collect_records(config, runs)
        print(f"Wrote {write_outputs(config, records, sources)}")
        return 0 if all(records.get(run, {}).get("status") == "done" for run in runs) else 1
    pending, done = plan(config, runs, record_adopted=not args.dry_run)
    commands = {run: train_command(run, config, sources.get((run.algo, run.env_id))) for run in runs}
    print(f"{config.name}: {len(runs)} runs, {len(done)} done (skipped), {len(pending)} to train", end="")
    print(f", log folder {config.log_folder}")
    for run in runs:
        if run not in pending:
            how = "adopted a finished zoo run" if done[run].get("adopted") else "done"
            print(f"  skip {run.describe()}: {how} ({config.log_folder / done[run]['run_folder']})")
    if args.dry_run:
        for run in pending:
            print(shlex.join(commands[run]))
        return 0
    trained, interrupted = run_all(pending, commands, config, args.jobs)
    records = {**collect_records(config, runs), **done, **trained}
    report = write_outputs(config, records, sources)
    failed = [run for run in runs if records.get(run, {}).get("status") != "done"]
    print(f"Wrote {report}")
    if interrupted:
        return 130
    if failed:
        print(f"{len(failed)} run(s) failed: " + ", ".join(run.describe() for run in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
