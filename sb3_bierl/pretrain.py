"""
Pre-train the BiERL meta controller on simple tasks, for a warm start on harder ones.

    python -m sb3_bierl.pretrain --env Pendulum-v1 --env Swimmer-v5 --timesteps 300000 --output controller.pt

The controller trains on each task in turn (``--rounds`` times over the list), carried from one
BiERL run to the next; the file it writes is then used with
``BiERL(..., meta_warm_start="controller.pt")``. The controller shipped with the package
(``meta_warm_start="pretrained"``) was written by this command; its file records the command's arguments.
"""

import argparse
import pathlib
import sys
import tempfile
import time
from typing import Any

import torch as th

from sb3_bierl.bierl.bierl import BiERL
from sb3_bierl.meta.warm_start import save_controller


def pretrain(
    env_ids: list[str],
    timesteps: int,
    output: str | pathlib.Path,
    rounds: int = 1,
    seed: int = 0,
    meta_interval: int = 1,
    init: str | None = None,
    bierl_kwargs: dict[str, Any] | None = None,
    verbose: int = 1,
    command: str | None = None,
) -> pathlib.Path:
    """
    Train one meta controller on ``env_ids`` in turn and save it to ``output``.

    :param env_ids: The pre-training tasks
    :param timesteps: Environment steps per task and round (meta level included)
    :param output: The controller file to write
    :param rounds: Passes over the list of tasks
    :param seed: Seed of the first run (each run adds one)
    :param meta_interval: Inner generations between meta updates (1: as much meta training as possible)
    :param init: A controller file to start from (default: a new network)
    :param bierl_kwargs: Other BiERL arguments (the same ones must be used when warm-starting)
    :param verbose: 1 prints a line per run
    :param command: The command line that asked for it, recorded in the file
    :return: the path of the written file
    """
    output = pathlib.Path(output)
    kwargs = dict(bierl_kwargs or {})
    history = []
    with tempfile.TemporaryDirectory() as tmp:
        current = init
        for round_ in range(rounds):
            for k, env_id in enumerate(env_ids):
                run_seed = seed + round_ * len(env_ids) + k
                start = time.time()
                model = BiERL("MlpPolicy", env_id, meta_interval=meta_interval, meta_warm_start=current, seed=run_seed, **kwargs)
                model.learn(timesteps)
                current = str(pathlib.Path(tmp) / f"controller_{round_}_{k}.pt")
                record = {"env": env_id, "timesteps": timesteps, "seed": run_seed, "meta_updates": model.meta_controller.n_meta_updates}
                history.append(record)
                save_controller(model.meta_controller, current, {"pretrained_on": list(history)})
                if verbose:
                    final = model.last_rollout.returns.mean()
                    print(
                        f"round {round_ + 1}/{rounds}  {env_id:<28s} {model.meta_controller.n_meta_updates:4d} meta updates  "
                        f"final population mean return {final:9.1f}  ({time.time() - start:.0f} s)",
                        flush=True,
                    )
        metadata = {"pretrained_on": history, "command": command or ""}
        save_controller(model.meta_controller, output, metadata)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", action="append", required=True, help="A pre-training task (repeat the option)")
    parser.add_argument("--timesteps", type=int, default=200_000, help="Environment steps per task and round")
    parser.add_argument("--rounds", type=int, default=1, help="Passes over the tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--meta-interval", type=int, default=1, help="Inner generations between meta updates")
    parser.add_argument("--init", default=None, help="Controller file to start from")
    parser.add_argument("--n-workers", type=int, default=None, help="Rollout workers per run (default: BiERL's, the usable cores)")
    parser.add_argument("--output", required=True, help="Controller file to write (.pt)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.timesteps < 1 or args.rounds < 1 or (args.n_workers is not None and args.n_workers < 1):
        parser.error("--timesteps, --rounds and --n-workers must be at least 1")
    th.set_num_threads(1)
    command = " ".join(["python -m sb3_bierl.pretrain", *argv])
    bierl_kwargs = {} if args.n_workers is None else {"n_workers": args.n_workers}
    path = pretrain(
        args.env, args.timesteps, args.output, args.rounds, args.seed, args.meta_interval, args.init, bierl_kwargs, command=command
    )
    print(f"Saved the meta controller to {path}: use BiERL(..., meta_warm_start={str(path)!r})")


if __name__ == "__main__":
    main()
