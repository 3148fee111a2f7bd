"""
Hyperparameter files: which entry of the zoo-format file each (algo, env) uses, and, for an env that has an
entry only under another version (e.g. the zoo's ``-v4`` MuJoCo entries for a ``-v5`` env), the merged copy
``<log_folder>/hyperparams/<algo>.yml`` passed with ``-conf``.
"""

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sb3_bierl.benchmarks.head_to_head.config import BenchmarkConfig
from sb3_bierl.zoo import ZOO_ALGOS, hyperparams_path

ENV_VERSION = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")


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
    header = [
        f"# Written by sb3_bierl.benchmarks.head_to_head: {base}, unchanged, plus copies of entries under new ids:"
    ]
    header += [f"#   {env_id} <- {source}" for env_id, source in copies.items()]
    text = "\n".join(header) + "\n" + yaml.safe_dump(merged, sort_keys=False, default_flow_style=False)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path
