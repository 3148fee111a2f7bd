"""
Does a policy gain move the step sizes a task wants? (issue 10, session 10)

ES (BiERL's machinery with the hyperparameters fixed: a pre-training "fixed" run) on one pre-training task, for
policy gains 0.25, 1 and 4 (``sb3_bierl.pretraining.policy_gain.PolicyGain``) and sigma and learning rate both
scaled by 0.25, 1 and 4 from the defaults (0.02, 0.01), seeds 0 and 1, the task's pre-training budget. Prints one
line per run: gain, step scale, seed, normalised score (the late mean of the centre's returns), CPU seconds.

    python docs/benchmarks/pretraining_gain_probe/probe.py Reacher-v5 > Reacher-v5.txt
"""

import itertools
import sys
from concurrent.futures import ProcessPoolExecutor

from sb3_bierl.pretraining.inner_run import InnerRun, run_inner
from sb3_bierl.pretraining.suite import DEFAULT_SUITE

TASK = {t.env_id: t for t in DEFAULT_SUITE}[sys.argv[1]]


def one(args: tuple[float, float, int]) -> tuple[float, float, int, float, float]:
    gain, scale, seed = args
    start = {"sigma": 0.02 * scale, "learning_rate": 0.01 * scale}
    result = run_inner(InnerRun(TASK, seed, start, "pretrained", fixed=True, policy_gain=gain))
    return gain, scale, seed, result["normalised"], result["cpu_time_s"]


if __name__ == "__main__":
    grid = list(itertools.product([0.25, 1.0, 4.0], [0.25, 1.0, 4.0], [0, 1]))
    with ProcessPoolExecutor(1) as executor:
        for row in executor.map(one, grid):
            print(*[f"{x:.3f}" if isinstance(x, float) else x for x in row], flush=True)
