"""Screening of meta-level variants (issue 9, session 5). Usage: screen2.py OUT TAG ENV SEED SIGMA_F LR_F [key=value ...]
Variant keys (not BiERL args): gate=T (paired-t threshold), fit=best|mean, zero=1 (last layer weights zeroed)."""
import json, sys, time, os
import numpy as np, torch as th
import sb3_bierl.es.es as es_mod
from sb3_bierl import BiERL, ES
from sb3_bierl.meta.controller import MetaController
from sb3_bierl.benchmarks.compare import evaluate_final
from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS
th.set_num_threads(1)
out, tag, env_id, seed, sf, lf = sys.argv[1:7]
extra = {k: eval(v) for k, v in (a.split("=", 1) for a in sys.argv[7:])}
gate = float(extra.pop("gate", 0)); fit = extra.pop("fit", "best"); zero = int(extra.pop("zero", 0))
path = f"{out}/{tag}-s{sf}-lr{lf}_{env_id}_{seed}.json"
if os.path.exists(path): sys.exit(0)
seed = int(seed)
PAIRS = []
orig = es_mod.best_of_pairs
def per_pair(returns):
    r = np.asarray(returns, float); h = r.size // 2
    v = np.fmax(r[:h], r[h:]) if fit == "best" else (r[:h] + r[h:]) / 2
    PAIRS.append(v)
    return float(np.nanmean(v))
es_mod.best_of_pairs = per_pair
stats = dict(steps=0, skipped=0)
orig_update = MetaController.meta_update
def meta_update(self, hyperparameters):
    noise = self.model.noise
    pop = self.strategy.ask(noise, self.rng, self.n_pairs, self.sigma)
    cands = self.strategy.candidates(noise, pop)
    proposals = [self.within_trust_region(self.propose(c)) for c in cands]
    PAIRS.clear()
    fitness = self.evaluate_proposals(hyperparameters, proposals)
    if fitness is None: return
    if gate > 0:
        ts = []
        for k in range(0, len(PAIRS), 2):
            d = PAIRS[k] - PAIRS[k + 1]; d = d[np.isfinite(d)]
            ts.append(0.0 if d.size < 2 or d.std() == 0 else d.mean() / (d.std(ddof=1) / np.sqrt(d.size)))
        if max(abs(t) for t in ts) < gate:
            stats["skipped"] += 1; return
    stats["steps"] += 1
    self.strategy.tell(noise, pop, fitness, self.learning_rate)
MetaController.meta_update = meta_update
t = time.time()
cls = ES if tag == "es" else BiERL
model = cls("MlpPolicy", env_id, seed=seed, n_workers=1, sigma=0.02 * float(sf), learning_rate=0.01 * float(lf), **extra)
if zero and cls is BiERL:
    mc = model.meta_controller
    net = mc.network
    with th.no_grad():
        last = net.generator[-1]
        hidden = net.generator[:-1](net.encode(th.zeros(1, mc.history.length, mc.history.n_features)))[0]
        b = last.bias + last.weight @ hidden
        last.weight.zero_(); last.bias.copy_(b)
    from torch.nn.utils import parameters_to_vector
    mc.set_phi(parameters_to_vector(net.parameters()).detach().numpy())
trace = []
from stable_baselines3.common.callbacks import BaseCallback
class T(BaseCallback):
    def _on_step(self): return True
    def _on_rollout_end(self):
        trace.append([self.model.num_timesteps, self.model.hyperparameters["sigma"], self.model.hyperparameters["learning_rate"]])
model.learn(SUITE_BUDGETS[env_id], callback=T())
ev = evaluate_final(model, env_id, seed, 10).tolist()
rec = dict(tag=tag, env=env_id, seed=seed, sf=float(sf), lf=float(lf), gate=gate, fit=fit, zero=zero, extra={k: str(v) for k, v in extra.items()}, final=ev, steps=model.num_timesteps, seconds=time.time() - t, meta_steps=stats, trace=trace)
os.makedirs(out, exist_ok=True)
json.dump(rec, open(path, "w"))
print(tag, env_id, seed, sf, lf, round(float(np.mean(ev)), 1), "sigma", round(trace[-1][1], 4), "lr", round(trace[-1][2], 4), stats, round(time.time() - t), "s", flush=True)
