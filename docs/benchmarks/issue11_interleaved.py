"""Issue 11 (item 11) hot-path check: the InProcessEvaluator of two checkouts in one process, calls interleaved
(same load for both). Before: ``$BEFORE/sb3_bierl/evaluation/in_process.py`` (a checkout of ae8fbf9^, the last
commit without the history check); after: the installed tree.

    BEFORE=/path/to/old/checkout python docs/benchmarks/issue11_interleaved.py Hopper-v5 20 before,after
"""
import importlib.util, json, os, sys, time
import numpy as np, torch as th
from sb3_bierl import ES
from sb3_bierl.evaluation import make_env_factory
from sb3_bierl.evaluation.in_process import InProcessEvaluator as After

spec = importlib.util.spec_from_file_location("in_process_before", os.path.join(os.environ["BEFORE"], "sb3_bierl/evaluation/in_process.py"))
before_mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(before_mod)
Before = before_mod.InProcessEvaluator
assert not hasattr(Before(lambda: None), "reuse")

env_id, rounds = sys.argv[1], int(sys.argv[2])
kinds = sys.argv[3].split(",") if len(sys.argv) > 3 else ["before", "after"]  # creation order; A/A: before,before
th.set_num_threads(1)
model = ES("MlpPolicy", env_id, n_pairs=16, seed=0, n_workers=1, policy_kwargs=dict(net_arch=[64, 64]), noise_table_size=2**20)
env_fn = make_env_factory(model.env)
classes = {"before": Before, "after": After}
evs = {}
for name, k in zip(("x", "y"), kinds):
    evs[name] = classes[k](env_fn)
reuse = next((ev.reuse for ev in evs.values() if hasattr(ev, "reuse")), None)
t0 = time.perf_counter()
while reuse is not None and reuse.verdict is None and time.perf_counter() - t0 < 60:
    reuse.current(None); time.sleep(0.05)
check_s = time.perf_counter() - t0
rng = np.random.default_rng(0)
theta = model.strategy.theta
params = theta + 0.02 * rng.standard_normal((32, len(theta)))
for ev in evs.values():
    ev.evaluate(model.policy, params, np.arange(32)[:, None])  # warm-up
tot = {k: [0, 0.0] for k in evs}; ratios = []
for r in range(rounds):
    seeds = rng.integers(0, 2**31 - 1, (32, 1))  # same seeds for both
    order = ["x", "y"] if r % 2 == 0 else ["y", "x"]
    rate = {}
    for k in order:
        t = time.perf_counter(); n = evs[k].evaluate(model.policy, params, seeds).n_steps; dt = time.perf_counter() - t
        tot[k][0] += n; tot[k][1] += dt; rate[k] = n / dt
    ratios.append(rate["y"] / rate["x"])
rb, ra = tot["x"][0] / tot["x"][1], tot["y"][0] / tot["y"][1]
print(json.dumps(dict(env=env_id, pair=f"{kinds[1]}/{kinds[0]}", verdict=None if reuse is None else reuse.verdict, check_s=round(check_s, 2), rounds=rounds,
                      steps_per_version=tot["y"][0], rate_before=round(rb), rate_after=round(ra), ratio_total=round(ra / rb, 4),
                      ratio_median=round(float(np.median(ratios)), 4), ratio_q25_q75=[round(float(x), 4) for x in np.percentile(ratios, [25, 75])])))
