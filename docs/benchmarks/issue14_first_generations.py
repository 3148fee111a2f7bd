"""Issue 14 start-up check: wall time of each of the first 4 generations (32k steps each on HalfCheetah-v5) of ES
with 2 workers, from model construction on (the workers' or Ray's start falls in the first ones).

Usage: PYTHONPATH=<checkout> python docs/benchmarks/issue14_first_generations.py HalfCheetah-v5 auto
(backend: auto, processes or ray; run before and after a change, interleaved, several times: the host is noisy)
"""

import sys
import time

import torch as th

from sb3_bierl import ES

th.set_num_threads(1)
env_id, backend = sys.argv[1], sys.argv[2]
model = ES("MlpPolicy", env_id, n_pairs=16, n_workers=2, seed=0, backend=backend, policy_kwargs={"net_arch": [64, 64]})
times = [time.perf_counter()]
for _ in range(4):
    model.learn(32_000, reset_num_timesteps=False)  # one generation on HalfCheetah-v5 (1,000-step episodes)
    times.append(time.perf_counter())
walls = [round(b - a, 2) for a, b in zip(times, times[1:])]
print(env_id, backend, "generation wall s:", walls, "sum", round(sum(walls), 2), "steps", model.num_timesteps)
