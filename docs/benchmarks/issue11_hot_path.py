"""Issue 11 hot-path check: ES in-process evaluation rate / raw env stepping rate in the same process (3 repeats, median).

Usage: PYTHONPATH=<checkout> python docs/benchmarks/issue11_hot_path.py Pendulum-v1 5  (run once per checkout to compare)
"""
import sys, time, numpy as np, gymnasium as gym, torch as th
import sb3_bierl
from sb3_bierl import ES
th.set_num_threads(1)
env_id = sys.argv[1]; reps = int(sys.argv[2])
model = ES("MlpPolicy", env_id, n_pairs=16, n_workers=1, seed=0)
ev = model.evaluator
params = np.tile(model.strategy.theta, (32, 1)) + 0.02 * np.random.default_rng(0).standard_normal((32, model.n_params))
def es_rate():
    t = time.perf_counter(); n = 0
    for r in range(reps):
        res = ev.evaluate(model.policy, params, np.arange(32)[:, None] + 1000 * r)
        n += res.n_steps
    return n / (time.perf_counter() - t)
env = gym.make(env_id); space = env.action_space
acts = [space.sample() for _ in range(1000)]
def raw_rate(n_steps):
    env.reset(seed=0); t = time.perf_counter()
    for i in range(n_steps):
        _, _, te, tr, _ = env.step(acts[i % 1000])
        if te or tr: env.reset()
    return n_steps / (time.perf_counter() - t)
ratios = []
for _ in range(3):
    e = es_rate(); r = raw_rate(20000); ratios.append(e / r)
print(sb3_bierl.__file__, env_id, "ES/raw ratio median", round(float(np.median(ratios)), 4), [round(x, 4) for x in ratios])
