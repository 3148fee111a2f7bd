"""
Hyperparameter files: which entry of the zoo-format file each (algo, env) uses, and the merged copy
``<log_folder>/hyperparams/<algo>.yml`` passed with ``-conf`` for an env that has an entry only under another
version (e.g. the zoo's ``-v4`` MuJoCo entries for a ``-v5`` env) or that has a CPU-time budget (its entry gets
the :class:`~sb3_bierl.benchmarks.cpu_budget.CPUTimeBudget` callback, before the callbacks it already had).
"""

import importlib.util
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sb3_bierl.benchmarks.head_to_head.config import BenchmarkConfig, ConfigError
from sb3_bierl.zoo import ZOO_ALGOS, hyperparams_path

ENV_VERSION = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")
#: The callback the zoo loads for a CPU-time budget (``callback:`` key of an entry)
CPU_BUDGET_CALLBACK = "sb3_bierl.benchmarks.cpu_budget.CPUTimeBudget"


@dataclass(frozen=True)
class HyperparamsSource:
    """
    Where the hyperparameters of one (algo, env) come from.

    :param base_file: The file the zoo would read for the algorithm
    :param entry: The entry of ``base_file`` used: the env id, another version of it, ``"default"``,
        or None (none: the zoo will fail; or a non-YAML file that was not inspected)
    :param conf_file: The file passed with ``-conf``, None for the zoo's default file
    :param cpu_budget_s: The CPU-time budget its entry in ``conf_file`` carries, None for none
    """

    base_file: Path
    entry: str | None
    conf_file: Path | None
    cpu_budget_s: float | None = None

    def describe(self, env_id: str) -> str:
        """:return: The entry used, for the report"""
        where = f"`{self.base_file.name}`"
        if self.entry is None:
            return f"{where}: no entry (not inspected, or missing)"
        copied = self.entry not in (env_id, "default")
        if self.entry == env_id:
            text = f"{where}: `{env_id}`"
        elif self.entry == "default":
            text = f"{where}: `default` (no entry for `{env_id}`)"
        else:
            text = f"{where}: `{self.entry}`, copied to `{env_id}`"
        if self.cpu_budget_s is not None:
            text += f", with `CPUTimeBudget` ({self.cpu_budget_s:g} CPU s)"
        if self.conf_file is not None and (copied or self.cpu_budget_s is not None):
            text += f" in `{self.conf_file}`"
        return text


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
    version, or a CPU-time budget, write ``<log_folder>/hyperparams/<algo>.yml`` (the algo's file plus the
    copies, the budgets' callbacks added).

    :param config: The benchmark
    :return: The source of every (algo, env)
    :raises ConfigError: if an (algo, env) with a CPU-time budget has no YAML entry to add the callback to
    """
    sources: dict[tuple[str, str], HyperparamsSource] = {}
    for algo in config.algos:
        base = Path(algo.conf_file) if algo.conf_file else default_hyperparams_file(algo.name)
        given = Path(algo.conf_file) if algo.conf_file else None
        budgets = {env.env_id: config.cpu_budget(algo.name, env.env_id) for env in config.envs}
        if base.suffix not in (".yml", ".yaml") or not base.is_file():
            for env_id, budget in budgets.items():
                if budget is not None:
                    raise ConfigError(
                        f"{algo.name} on {env_id}: a CPU-time budget needs a YAML hyperparameter file, not {base}"
                    )
                sources[algo.name, env_id] = HyperparamsSource(base, None, given)
            continue
        with open(base) as file:
            entries = yaml.safe_load(file) or {}
        copies = {}  # env id -> entry, for the envs that read the merged file
        for env in config.envs:
            if env.env_id in entries:
                entry = env.env_id
            elif (other := other_version_entry(env.env_id, entries)) is not None:
                entry = other
                copies[env.env_id] = other
            else:
                entry = "default" if "default" in entries else None
            if budgets[env.env_id] is not None:
                if entry is None:
                    raise ConfigError(f"{algo.name} on {env.env_id}: no entry in {base} to add the CPU-time budget to")
                copies[env.env_id] = entry
            sources[algo.name, env.env_id] = HyperparamsSource(base, entry, given)
        if copies:  # only the (algo, env) that need a copy read the merged file
            wanted = {env_id: budgets[env_id] for env_id in copies}
            extra = {env_id: config.extra_evaluations(algo.name, env_id) for env_id in copies}
            merged = write_merged_hyperparams(config.log_folder, algo.name, base, entries, copies, wanted, extra)
            for env_id, entry in copies.items():
                sources[algo.name, env_id] = HyperparamsSource(base, entry, merged, budgets[env_id])
    return sources


def with_cpu_budget(entry: Mapping[str, Any], budget_s: float, eval_at_steps: Sequence[int] = ()) -> dict[str, Any]:
    """
    :param entry: A hyperparameter entry
    :param budget_s: CPU seconds of training
    :param eval_at_steps: Step counts at which the run also evaluates
    :return: A copy of it whose ``callback:`` list starts with the budget (the zoo then calls the budget first,
        and its ``on_training_end`` after an interruption), followed by the callbacks it already had (but an
        earlier CPU-time budget, which this one replaces)
    """
    existing = entry.get("callback")
    callbacks = [] if existing is None else list(existing) if isinstance(existing, list) else [existing]
    callbacks = [
        callback for callback in callbacks
        if callback != CPU_BUDGET_CALLBACK and not (isinstance(callback, Mapping) and CPU_BUDGET_CALLBACK in callback)
    ]  # fmt: skip
    arguments: dict[str, Any] = {"budget_s": float(budget_s), "verbose": 1}
    if eval_at_steps:
        arguments["eval_at_steps"] = [int(steps) for steps in eval_at_steps]
    budget = {CPU_BUDGET_CALLBACK: arguments}
    return {**entry, "callback": [budget, *callbacks]}


def write_merged_hyperparams(
    log_folder: Path,
    algo: str,
    base: Path,
    entries: dict[str, Any],
    copies: Mapping[str, str],
    budgets: Mapping[str, float | None] | None = None,
    eval_at_steps: Mapping[str, Sequence[int]] | None = None,
) -> Path:
    """
    :param log_folder: The benchmark's log folder
    :param algo: Algorithm name
    :param base: The hyperparameter file the entries come from
    :param entries: Its entries (anchors and merge keys resolved by the YAML loader)
    :param copies: ``{env id: entry to copy under it}`` (an entry may be copied under its own id)
    :param budgets: ``{env id: CPU-time budget}`` of the copies that get :func:`with_cpu_budget`
    :param eval_at_steps: ``{env id: step counts}`` of their extra evaluations
    :return: The written ``<log_folder>/hyperparams/<algo>.yml``
    """
    budgets, eval_at_steps = budgets or {}, eval_at_steps or {}
    path = log_folder / "hyperparams" / f"{algo}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = dict(entries)
    for env_id, source in copies.items():
        budget = budgets.get(env_id)
        if budget is None:
            merged[env_id] = entries[source]
        else:
            merged[env_id] = with_cpu_budget(entries[source], budget, eval_at_steps.get(env_id, ()))
    header = [
        (
            f"# Written by sb3_bierl.benchmarks.head_to_head: {base}, unchanged, plus copies of entries under new ids"
            " (and CPU-time budgets):"
        )
    ]
    for env_id, source in copies.items():
        budget = budgets.get(env_id)
        header.append(f"#   {env_id} <- {source}" + ("" if budget is None else f" + CPUTimeBudget({budget:g} s)"))
    text = "\n".join(header) + "\n" + yaml.safe_dump(merged, sort_keys=False, default_flow_style=False)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path
