"""
The benchmark's configuration: the YAML config (its keys are described in the package docstring) read and
checked into a :class:`BenchmarkConfig` of algorithms, environments and seeds, the budget of every
(algo, env), and its expansion into :class:`Run` s. It also holds the constants that several modules share:
how often a running training is polled (``POLL_S``) and the caption that explains the wall-clock times
(``WALLCLOCK_CAPTION``, in the report and on the plot).
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_KEYS = frozenset(
    {"algos", "envs", "seeds", "n_timesteps", "eval_freq", "eval_episodes", "log_folder", "num_threads",
     "tensorboard", "train_args"}
)
ALGO_KEYS = frozenset({"n_timesteps", "params", "n_workers", "train_args", "conf_file"})
ENV_KEYS = frozenset({"n_timesteps"})
POLL_S = 0.5
WALLCLOCK_CAPTION = (
    "Wall-clock: time since the run's process started (Python start-up and set-up included), at which the "
    f"runner saw each evaluation appear in evaluations.npz (polled every {POLL_S} s); evaluations it did not "
    "see are placed assuming a constant step rate between the observed points."
)


class ConfigError(ValueError):
    """A benchmark config that cannot be used."""


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
