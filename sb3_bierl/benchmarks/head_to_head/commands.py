"""
The command of every run: ``python -m rl_zoo3.train`` (``python -m sb3_bierl.zoo train`` for this package's
algorithms) with the run's seed, budget, evaluation settings, hyperparameter file (which carries the CPU-time
budget, if any) and parameters (the environment it runs with: :func:`sb3_bierl.benchmarks.runner.child_environment`).
"""

import sys
from typing import Any

from sb3_bierl.benchmarks.head_to_head.config import BenchmarkConfig, Run
from sb3_bierl.benchmarks.head_to_head.hyperparams import HyperparamsSource
from sb3_bierl.zoo import ZOO_ALGOS


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
        "--eval-freq", str(run.eval_freq),
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
