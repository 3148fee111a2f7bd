"""
The benchmark's configuration: the YAML config (its keys are described in the package docstring) read and
checked into a :class:`BenchmarkConfig` of algorithms, environments and seeds, the settings of every
(algo, env) (step budget, CPU-time budget, evaluation frequency), and its expansion into :class:`Run` s. It also holds the constants that several modules share:
how often a running training is polled (``POLL_S``) and the captions that explain the wall-clock and CPU times
(``WALLCLOCK_CAPTION``, ``CPU_CAPTION``, in the report and on the plots).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sb3_bierl.benchmarks.records import run_key

#: Settings of a run that an algo, an env, or an env for one algo can override (most specific first)
RUN_SETTINGS = ("n_timesteps", "cpu_budget_s", "eval_freq", "eval_at_steps")
CONFIG_KEYS = frozenset(
    {"algos", "envs", "seeds", *RUN_SETTINGS, "eval_episodes", "log_folder", "num_threads", "tensorboard", "train_args"}
)
ALGO_KEYS = frozenset({*RUN_SETTINGS, "params", "n_workers", "train_args", "conf_file"})
ENV_KEYS = frozenset(RUN_SETTINGS)
DEFAULT_EVAL_FREQ = 10_000
POLL_S = 0.5
WALLCLOCK_CAPTION = (
    "Wall-clock: time since the run's process started (Python start-up and set-up included), at which the "
    f"runner saw each evaluation appear in evaluations.npz (polled every {POLL_S} s); evaluations it did not "
    "see are placed assuming a constant step rate between the observed points."
)
CPU_CAPTION = (
    "Training CPU time: CPU seconds of the run's process and its worker processes since training started, "
    "evaluations excluded, before each evaluation (the run's cpu_time.csv, written by CPUTimeBudget)."
)


class ConfigError(ValueError):
    """A benchmark config that cannot be used."""


@dataclass(frozen=True)
class AlgoConfig:
    """
    One algorithm of the benchmark.

    :param name: The zoo's algorithm name (``--algo``)
    :param n_timesteps: Its budget in environment steps, if it overrides the common one
    :param cpu_budget_s: Its CPU-time budget (CPU seconds of training), if it overrides the common one
    :param eval_freq: Its environment steps between evaluations, if it overrides the common one
    :param eval_at_steps: Its extra evaluations (step counts; with a CPU-time budget), if they override the common ones
    :param params: Hyperparameters passed with ``-params``
    :param train_args: More arguments for ``rl_zoo3.train``
    :param conf_file: Hyperparameter file (``-conf``), None for the one the zoo reads by default
    """

    name: str
    n_timesteps: int | None = None
    cpu_budget_s: float | None = None
    eval_freq: int | None = None
    eval_at_steps: tuple[int, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    train_args: tuple[str, ...] = ()
    conf_file: str | None = None


@dataclass(frozen=True)
class EnvConfig:
    """
    One environment of the benchmark.

    :param env_id: Gymnasium id
    :param common: Its settings (``RUN_SETTINGS``) for every algorithm, where they override the config's
    :param per_algo: Its settings for some algorithms: ``{setting: {algo: value}}``
    """

    env_id: str
    common: dict[str, float] = field(default_factory=dict)
    per_algo: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchmarkConfig:
    """
    A benchmark: every algorithm on every environment with every seed.

    :param name: The config's name (its file name without extension)
    :param algos: The algorithms
    :param envs: The environments
    :param seeds: The seeds
    :param n_timesteps: The default budget in environment steps (a step cap when there is a CPU-time budget)
    :param eval_freq: The default number of environment steps between two evaluations
    :param eval_episodes: Episodes per evaluation
    :param log_folder: Where everything goes
    :param num_threads: PyTorch threads of each run
    :param tensorboard: Whether the runs log to ``<log_folder>/tensorboard``
    :param train_args: More arguments for every ``rl_zoo3.train`` command
    :param cpu_budget_s: The default CPU-time budget (CPU seconds of training), None for none
    :param eval_at_steps: The default extra evaluations (step counts at which the runs also evaluate; they need a
        CPU-time budget, whose callback makes them), None for none
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
    cpu_budget_s: float | None = None
    eval_at_steps: tuple[int, ...] | None = None

    def algo(self, name: str) -> AlgoConfig:
        """:return: The algorithm called ``name``"""
        return next(algo for algo in self.algos if algo.name == name)

    def setting(self, key: str, algo: str, env_id: str) -> Any:
        """
        :param key: One of ``RUN_SETTINGS``
        :param algo: Algorithm name
        :param env_id: Environment id
        :return: Its value for the runs of ``algo`` on ``env_id``: the env's per-algo value, else the
            algo's, else the env's common value, else the config's (None if none is set)
        """
        env = next(env for env in self.envs if env.env_id == env_id)
        candidates = (
            env.per_algo.get(key, {}).get(algo),
            getattr(self.algo(algo), key),
            env.common.get(key),
            getattr(self, key),
        )
        return next((value for value in candidates if value is not None), None)

    def budget(self, algo: str, env_id: str) -> int:
        """
        :return: The budget in environment steps of the runs of ``algo`` on ``env_id`` (see :meth:`setting`)
        :raises ConfigError: if none is set
        """
        budget = self.setting("n_timesteps", algo, env_id)
        if budget is None:
            raise ConfigError(f"no budget for {algo} on {env_id}: set n_timesteps")
        return int(budget)

    def cpu_budget(self, algo: str, env_id: str) -> float | None:
        """:return: The CPU-time budget (CPU seconds) of the runs of ``algo`` on ``env_id``, None for none"""
        return self.setting("cpu_budget_s", algo, env_id)

    def eval_frequency(self, algo: str, env_id: str) -> int:
        """:return: The environment steps between two evaluations of the runs of ``algo`` on ``env_id``"""
        return int(self.setting("eval_freq", algo, env_id))

    def extra_evaluations(self, algo: str, env_id: str) -> tuple[int, ...]:
        """:return: The step counts at which the runs of ``algo`` on ``env_id`` also evaluate"""
        return tuple(self.setting("eval_at_steps", algo, env_id) or ())

    @property
    def has_cpu_budget(self) -> bool:
        """Whether some run has a CPU-time budget."""
        return any(self.cpu_budget(algo.name, env.env_id) is not None for algo in self.algos for env in self.envs)


@dataclass(frozen=True)
class Run:
    """
    One training run.

    :param algo: Algorithm name
    :param env_id: Environment id
    :param seed: Seed
    :param n_timesteps: Budget in environment steps (a step cap when there is a CPU-time budget)
    :param eval_freq: Environment steps between two evaluations
    :param cpu_budget_s: CPU-time budget (CPU seconds of training), None for none
    :param eval_at_steps: Step counts at which it also evaluates (with its CPU-time budget)
    """

    algo: str
    env_id: str
    seed: int
    n_timesteps: int
    eval_freq: int = DEFAULT_EVAL_FREQ
    cpu_budget_s: float | None = None
    eval_at_steps: tuple[int, ...] = ()

    @property
    def key(self) -> str:
        """The run's file stem, ``<algo>_<env>_<seed>`` (``/`` and ``:`` of the env id become ``-``)."""
        return run_key(self.algo, self.env_id, self.seed)

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


def parse_seconds(value: Any, where: str) -> float:
    """
    :param value: A CPU-time budget from the YAML file: ``600``, ``1_200``, ``1.5e3`` or ``"1.5e3"``
    :param where: Where it was found, for the error message
    :return: It as a positive float
    :raises ConfigError: if it is not a positive, finite number
    """
    try:
        seconds = float(str(value).replace("_", ""))
    except ValueError:
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{where}: a CPU-time budget must be a positive number of CPU seconds, got {value!r}")
    return seconds


def parse_step_list(value: Any, where: str) -> tuple[int, ...]:
    """
    :param value: A list of step counts from the YAML file, e.g. ``[10_000, 5e4]``
    :param where: Where it was found, for the error message
    :return: Them as positive ints, sorted, each once
    :raises ConfigError: if it is not a list of numbers of steps
    """
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of step counts, got {value!r}")
    return tuple(sorted({parse_steps(steps, where) for steps in value}))


#: How each run setting is read
SETTING_PARSERS = {
    "n_timesteps": parse_steps,
    "cpu_budget_s": parse_seconds,
    "eval_freq": parse_steps,
    "eval_at_steps": parse_step_list,
}


def parse_settings(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """:return: The run settings (``RUN_SETTINGS``) among ``options``, parsed"""
    return {
        key: SETTING_PARSERS[key](options[key], f"{where}.{key}")
        for key in RUN_SETTINGS
        if options.get(key) is not None
    }


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
    return AlgoConfig(
        name=name,
        **parse_settings(options, f"algos.{name}"),
        params=params,
        train_args=tuple(str(argument) for argument in options.get("train_args") or ()),
        conf_file=options.get("conf_file"),
    )


def parse_env(env_id: str, options: dict[str, Any], algo_names: Sequence[str]) -> EnvConfig:
    """
    :param env_id: Environment id
    :param options: Its options in the config
    :param algo_names: The config's algorithms, to check per-algo settings
    :return: The environment: each setting is a value, or a mapping ``{default: value, algo: value, ...}``
    """
    check_keys(options, ENV_KEYS, f"envs.{env_id}")
    common, per_algo = {}, {}
    for key in RUN_SETTINGS:
        value, where = options.get(key), f"envs.{env_id}.{key}"
        if value is None:
            continue
        if not isinstance(value, Mapping):
            common[key] = SETTING_PARSERS[key](value, where)
            continue
        unknown = set(value) - {"default", *algo_names}
        if unknown:
            raise ConfigError(f"{where}: {sorted(unknown)} are not among the algos {list(algo_names)}")
        values = {algo: SETTING_PARSERS[key](number, f"{where}.{algo}") for algo, number in value.items()}
        if "default" in values:
            common[key] = values.pop("default")
        per_algo[key] = values
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
    settings = {"eval_freq": DEFAULT_EVAL_FREQ, **parse_settings(raw, "config")}
    config = BenchmarkConfig(
        name=path.stem,
        algos=algos,
        envs=envs,
        seeds=seeds,
        n_timesteps=settings.get("n_timesteps"),
        eval_freq=settings["eval_freq"],
        cpu_budget_s=settings.get("cpu_budget_s"),
        eval_at_steps=settings.get("eval_at_steps"),
        eval_episodes=parse_steps(raw.get("eval_episodes", 10), "eval_episodes"),
        log_folder=Path(log_folder or raw.get("log_folder") or Path("logs", "benchmark", path.stem)),
        num_threads=int(raw.get("num_threads", 1)),
        tensorboard=bool(raw.get("tensorboard", False)),
        train_args=tuple(str(argument) for argument in raw.get("train_args") or ()),
    )
    for run in expand_runs(config):  # every budget is defined and leaves room for an evaluation
        if run.n_timesteps < run.eval_freq:
            raise ConfigError(f"{run.describe()}: budget {run.n_timesteps} < eval_freq {run.eval_freq}: no evaluation")
        if run.eval_at_steps and run.cpu_budget_s is None:
            raise ConfigError(
                f"{run.describe()}: eval_at_steps needs a CPU-time budget (cpu_budget_s), which makes them"
            )
    return config


def expand_runs(config: BenchmarkConfig) -> list[Run]:
    """
    :param config: The benchmark
    :return: Its runs, seed by seed (a first seed of everything finishes early), then env, then algo
    """
    return [
        Run(
            algo.name,
            env.env_id,
            seed,
            config.budget(algo.name, env.env_id),
            eval_freq=config.eval_frequency(algo.name, env.env_id),
            cpu_budget_s=config.cpu_budget(algo.name, env.env_id),
            eval_at_steps=config.extra_evaluations(algo.name, env.env_id),
        )
        for seed in config.seeds
        for env in config.envs
        for algo in config.algos
    ]
