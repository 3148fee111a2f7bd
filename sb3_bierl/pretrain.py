"""
Pre-train the BiERL meta controller on whole runs of a suite of cheap tasks (issue 10), for a warm start on others.

    python -m sb3_bierl.pretrain --out pretrain_runs/default --generations 60 --n-processes 2

ES on the controller's weights: every meta generation, each candidate drives whole BiERL runs (random starts of
sigma and the learning rate, common random numbers across candidates) and is scored by the normalised late
training curve of the run's centre (``sb3_bierl.pretraining``). Resumable: run the same command again to continue
from ``<out>/checkpoint.pkl``. ``<out>/controller.pt`` (the centre, rewritten every meta generation) is the
warm-start file: ``BiERL(..., meta_warm_start="<out>/controller.pt")``; it records this command, the commit and
the meta-training curve (``<out>/curve.png`` plots it). The controller shipped with the package
(``meta_warm_start="pretrained"``) was written by this command.

``--meta tpa`` pre-trains a two-point rule instead (``BiERL(meta="tpa")``'s start factor on the learning rate, its
damping and cumulation: three numbers, :class:`~sb3_bierl.meta.TwoPointRule`), each candidate scored by the late
mean of its population's return over whole runs from random learning-rate starts; ``<out>/controller.pt`` is then
a warm start for ``BiERL(meta="tpa", meta_warm_start=...)``. The rule shipped for ``meta="tpa"`` is the state
after 12 meta generations of this command, stopped there for the session's time (``--generations 12`` should
give the same rule, as every draw is seeded; not checked):

    python -m sb3_bierl.pretrain --meta tpa --out <out> --generations 15 --n-pairs 3 --tasks-per-generation 5 \\
        --sigma 0.3 --learning-rate 0.1 --n-processes 2 --seed 0
"""

import argparse
import pathlib
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch as th

from sb3_bierl.bierl.bierl import DEFAULT_ADAPTED
from sb3_bierl.es.es import BACKENDS
from sb3_bierl.pretraining.meta_trainer import CONTROLLER, MetaTrainer
from sb3_bierl.pretraining.plots import plot_curve
from sb3_bierl.pretraining.suite import DEFAULT_SUITE, EXTRA_TASKS, resolve_suite


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_bierl.pretrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="Folder of the checkpoint, the controller file and the curve")
    parser.add_argument(
        "--generations", type=int, default=60, help="Meta generations in all (a resumed run counts those done)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=None,
        help=f"A pre-training task (repeat; default: {[t.env_id for t in DEFAULT_SUITE]}; "
        f"also known: {[t.env_id for t in EXTRA_TASKS]})",
    )
    parser.add_argument(
        "--n-pairs", type=int, default=4, help="Antithetic pairs of candidate controllers per meta generation"
    )
    parser.add_argument("--sigma", type=float, default=0.1, help="Noise std on the trained weights")
    parser.add_argument("--learning-rate", type=float, default=0.02, help="Adam step size of the meta ES")
    parser.add_argument("--tasks-per-generation", type=int, default=2)
    parser.add_argument(
        "--start-spread", type=float, default=2 / 3, help="Random starts: share of the bounds' unit scale (0: defaults)"
    )
    parser.add_argument("--trainable", default="last_layer", choices=["last_layer", "bias", "all"])
    parser.add_argument(
        "--gain-spread",
        type=float,
        default=1.0,
        help="Policy gains: each continuous-control instance draws one log-uniformly in [1/x, x] (1: none)",
    )
    parser.add_argument(
        "--standardise-features",
        action="store_true",
        help="A new network's hidden units vary with the history with unit variance (not with --init)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="Multiplier of the tasks' budgets (e.g. 0.05: a quick check)"
    )
    parser.add_argument(
        "--adapt",
        nargs="+",
        default=list(DEFAULT_ADAPTED),
        choices=list(DEFAULT_ADAPTED),
        help="Hyperparameters the controller sets (default: %(default)s; 'sigma' alone, as in the authors' code, "
        "keeps the learning rate at BiERL's default)",
    )
    parser.add_argument(
        "--meta",
        default="lstm",
        choices=["lstm", "tpa"],
        help="What is pre-trained: the meta network (lstm, default) or the two-point rule's learning-rate start, "
        "damping and cumulation (tpa: a warm start for BiERL(meta='tpa'); --trainable, --adapt, --gain-spread and "
        "--standardise-features do not apply)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", default=None, help="Controller file to start from")
    parser.add_argument("--n-processes", type=int, default=2, help="Inner runs in parallel")
    parser.add_argument(
        "--n-workers", type=int, default=1, help="Rollout workers of each inner run (BiERL's n_workers)"
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="Rollout backend of each inner run (BiERL's backend: auto, inprocess, processes, ray)",
    )
    parser.add_argument("--output", default=None, help="Also copy the final controller file there")
    parser.add_argument("--no-progress-bar", action="store_true")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.generations < 1 or args.n_processes < 1 or args.n_workers < 1:
        parser.error("--generations, --n-processes and --n-workers must be at least 1")
    try:
        suite = resolve_suite(args.env, args.scale)
        trainer = MetaTrainer(
            args.out,
            suite,
            n_pairs=args.n_pairs,
            sigma=args.sigma,
            learning_rate=args.learning_rate,
            tasks_per_generation=args.tasks_per_generation,
            start_spread=args.start_spread,
            trainable=args.trainable,
            gain_spread=args.gain_spread,
            standardise_features=args.standardise_features,
            adapted=args.adapt,
            meta=args.meta,
            seed=args.seed,
            init=args.init,
            bierl_kwargs={"n_workers": args.n_workers, "backend": args.backend}
            if (args.n_workers, args.backend) != (1, "auto")
            else None,
            metadata={"command": " ".join(["python -m sb3_bierl.pretrain", *argv])},
        )
    except ValueError as error:
        parser.error(str(error))
    th.set_num_threads(1)
    from stable_baselines3.common.logger import configure

    logger = configure(
        str(pathlib.Path(args.out) / "logs" / f"from_generation_{trainer.generation}"), ["stdout", "csv"]
    )
    if args.n_processes == 1:
        trainer.train(args.generations, None, not args.no_progress_bar, logger)
    else:
        with ProcessPoolExecutor(args.n_processes, mp_context=get_context("spawn")) as executor:
            trainer.train(args.generations, executor, not args.no_progress_bar, logger)
    controller = pathlib.Path(args.out) / CONTROLLER
    if plot_curve(trainer.records, pathlib.Path(args.out) / "curve.png"):
        print(f"Meta-training curve: {pathlib.Path(args.out) / 'curve.png'}")
    if args.output:
        shutil.copyfile(controller, args.output)
        controller = pathlib.Path(args.output)
    meta = ", meta='tpa'" if args.meta == "tpa" else ""
    print(f"Saved the meta controller to {controller}: use BiERL(...{meta}, meta_warm_start={str(controller)!r})")


if __name__ == "__main__":
    main()
