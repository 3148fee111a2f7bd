"""
The shipped controller as a warm start, then trained online (issue 9 and 10, session 10): the controller file is
copied with ``meta_trainable`` set to ``"bias"`` (or ``"last_layer"``) in its metadata, so that
``BiERL(meta_warm_start=...)`` runs the online meta ES on top of the pre-trained network. Same runs, budgets and
records as ``python -m sb3_bierl.benchmarks.meta_level`` (run name ``warm``).

    python docs/benchmarks/warm_start_online/screen.py bias Ant-v5 0,1 1   # trainable, envs, seeds, workers
"""

import sys
from pathlib import Path

import torch

from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS, TRAINER
from sb3_bierl.benchmarks.run_spec import RunSpec, run_specs
from sb3_bierl.meta.warm_start import PRETRAINED_PATH

OUT = Path("bench_results/warm_start_online")


def controller(trainable: str) -> str:
    """:return: a copy of the shipped controller file that asks for online meta updates of ``trainable``"""
    path = OUT / f"pretrained_{trainable}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = torch.load(PRETRAINED_PATH, weights_only=False)
    data["metadata"]["meta_trainable"] = trainable
    torch.save(data, path)
    return str(path)


if __name__ == "__main__":
    trainable, envs, seeds, workers = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), int(sys.argv[4])
    specs = [RunSpec("warm", env, int(seed), SUITE_BUDGETS[env], 10) for seed in seeds for env in envs]
    run_specs(specs, OUT / trainable, workers, trainer=TRAINER, trainer_kwargs={"warm_start": controller(trainable)})
