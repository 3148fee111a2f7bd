"""
BiERL, ES, NSR-ES, NSRA-ES and ESAC in the RL Baselines3 Zoo (``pip install ".[zoo]" in a checkout of sb3-bierl``).

rl_zoo3 has no plugin mechanism: its algorithms are a dict, ``rl_zoo3.utils.ALGOS``, read when a
script builds its command line. sb3-bierl installs ``sb3_bierl_zoo.pth``, whose hook
(``sb3_bierl_zoo_hook``, standard library only) calls :func:`patch_module` right after
``rl_zoo3.utils``, ``rl_zoo3.hyperparams_opt`` or ``rl_zoo3.exp_manager`` is first imported. So the
zoo's own commands know ``--algo bierl``, ``es``, ``nsres``, ``nsraes`` and ``esac``::

    python -m rl_zoo3.train --algo bierl --env Pendulum-v1 --eval-freq 20000 --save-freq 100000
    python -m rl_zoo3.enjoy --algo bierl --env Pendulum-v1 -f logs/
    python -m rl_zoo3.train --algo bierl --env Pendulum-v1 -optimize --n-trials 50 --sampler tpe

``python -m sb3_bierl.zoo train ...`` (or ``enjoy``, ``record_video``, ...) registers explicitly, then
runs the zoo's script: it works without the hook too (``python -S``, ``SB3_BIERL_ZOO_HOOK=0``).

What registration adds, and nothing else:

- ``rl_zoo3.utils.ALGOS["bierl"] = BiERL``, ``ALGOS["es"] = ES``, ``["nsres"] = NSRES``,
  ``["nsraes"] = NSRAES`` and ``["esac"] = ESAC`` (the dict that ``train.py``,
  ``enjoy.py``, ``exp_manager.py`` and ``record_video.py`` imported; names the zoo already has are
  not replaced);
- the Optuna samplers and converters of :mod:`sb3_bierl.zoo.hyperparams_opt` in
  ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER``;
- for these algorithms only, in ``ExperimentManager`` (:mod:`sb3_bierl.zoo.exp_manager`):
  the default hyperparameter file is ``hyperparams/{algo}.yml`` (the package ``sb3_bierl.hyperparams``) (``-conf`` still wins),
  ``--device auto`` means the CPU, BiERL's ``learning_rate`` stays a number (the zoo turns numbers
  into schedules; BiERL adapts it itself) and ``n_envs`` is 1.
"""

import importlib
import importlib.resources
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from sb3_bierl import ALGORITHMS
from sb3_bierl.es import ES
from sb3_bierl.zoo.hyperparams_opt import (
    convert_bierl_params,
    convert_es_params,
    convert_esac_params,
    convert_nsres_params,
    sample_bierl_params,
    sample_es_params,
    sample_esac_params,
    sample_nsres_params,
)

#: The hyperparameter files: the repository's top-level ``hyperparams/``, installed as ``sb3_bierl.hyperparams``
HYPERPARAMS_DIR = Path(str(importlib.resources.files("sb3_bierl.hyperparams")))

ZOO_ALGOS: dict[str, type[ES]] = ALGORITHMS
SAMPLERS = {
    "bierl": sample_bierl_params,
    "es": sample_es_params,
    "nsres": sample_nsres_params,
    "nsraes": sample_nsres_params,
    "esac": sample_esac_params,
}
CONVERTERS = {
    "bierl": convert_bierl_params,
    "es": convert_es_params,
    "nsres": convert_nsres_params,
    "nsraes": convert_nsres_params,
    "esac": convert_esac_params,
}
PATCHED_MODULES = ("rl_zoo3.utils", "rl_zoo3.hyperparams_opt", "rl_zoo3.exp_manager")

__all__ = [
    "HYPERPARAMS_DIR",
    "ZOO_ALGOS",
    "convert_bierl_params",
    "convert_es_params",
    "hyperparams_path",
    "patch_module",
    "register",
    "sample_bierl_params",
    "sample_es_params",
]


def hyperparams_path(algo: str) -> Path:
    """The hyperparameter file shipped for ``algo`` (a key of ``ZOO_ALGOS``), in rl_zoo3's format."""
    return HYPERPARAMS_DIR / f"{algo}.yml"


def zoo_algorithm(algo: str) -> type[ES] | None:
    """Our class if ``algo`` is one of ours in the zoo's ``ALGOS`` (not a zoo algorithm of that name)."""
    ours = ZOO_ALGOS.get(algo)
    utils = sys.modules.get("rl_zoo3.utils")
    if ours is None or utils is None or utils.ALGOS.get(algo) is not ours:
        return None
    return ours


def _add(registry: dict[str, Any], entries: dict[str, Any]) -> None:
    for name, value in entries.items():
        registry.setdefault(name, value)  # never replace what the zoo itself defines


def patch_module(name: str, module: ModuleType) -> None:
    """Add BiERL and ES to one of rl_zoo3's modules, just loaded (idempotent)."""
    if name == "rl_zoo3.utils":
        _add(module.ALGOS, ZOO_ALGOS)
    elif name == "rl_zoo3.hyperparams_opt":
        _add(module.HYPERPARAMS_SAMPLER, SAMPLERS)
        _add(module.HYPERPARAMS_CONVERTER, CONVERTERS)
    elif name == "rl_zoo3.exp_manager":
        from sb3_bierl.zoo.exp_manager import patch_experiment_manager

        patch_experiment_manager(module.ExperimentManager)


def register() -> dict[str, type]:
    """
    Register BiERL and ES with rl_zoo3 explicitly (the import hook does it by itself).

    :return: ``rl_zoo3.utils.ALGOS``
    :raises ImportError: if rl_zoo3 is not installed (``pip install ".[zoo]" in a checkout of sb3-bierl``)
    """
    for name in PATCHED_MODULES:
        patch_module(name, importlib.import_module(name))
    return sys.modules["rl_zoo3.utils"].ALGOS
