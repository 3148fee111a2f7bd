"""Screening (issue 9, session 5) with the package's own options. Usage: screen3.py OUT TAG ENV SEED SIGMA_F LR_F [key=value ...]
Extra keys: share=0|1 (antithetic meta candidates share inner noise)."""
import json, sys, time, os
import numpy as np, torch as th
from sb3_bierl import BiERL, ES
from sb3_bierl.benchmarks.compare import evaluate_final
from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS, make_generation_trace
th.set_num_threads(1)
out, tag, env_id, seed, sf, lf = sys.argv[1:7]
extra = {k: eval(v) for k, v in (a.split("=", 1) for a in sys.argv[7:])}
share = extra.pop("share", None)
path = f"{out}/{tag}-s{sf}-lr{lf}_{env_id}_{seed}.json"
if os.path.exists(path): sys.exit(0)
seed = int(seed)
t = time.time()
cls = ES if tag == "es" else BiERL
model = cls("MlpPolicy", env_id, seed=seed, n_workers=1, sigma=0.02 * float(sf), learning_rate=0.01 * float(lf), **extra)
if share is not None:
    model.meta_controller.share_noise = bool(share)
trace = make_generation_trace()  # rows: steps, sigma, learning rate, population mean return, meta updates
model.learn(SUITE_BUDGETS[env_id], callback=trace)
trace = trace.rows
ev = evaluate_final(model, env_id, seed, 10).tolist()
meta = model.meta_controller.summary() if getattr(model, "meta_controller", None) else {}
rec = dict(tag=tag, env=env_id, seed=seed, sf=float(sf), lf=float(lf), share=share, extra={k: str(v) for k, v in extra.items()}, final=ev, steps=model.num_timesteps, seconds=time.time() - t, meta=meta, trace=trace)
os.makedirs(out, exist_ok=True)
json.dump(rec, open(path, "w"))
print(tag, env_id, seed, sf, lf, round(float(np.mean(ev)), 1), "sigma", round(trace[-1][1], 4), "lr", round(trace[-1][2], 4), meta.get("n_meta_steps"), round(time.time() - t), "s", flush=True)
