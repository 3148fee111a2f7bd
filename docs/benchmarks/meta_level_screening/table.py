"""Per-task table of the screening runs beside the issue-9 runs (ES, BiERL last_layer): python table.py (from this folder)."""
import json, glob, numpy as np
from sb3_bierl.benchmarks.records import read_record
rows = {}
for f in glob.glob("../meta_level_runs/*.json") + glob.glob("es_seed1/*.json"):
    r = read_record(f); rows[(r["algo"], r["env"], r["seed"])] = r["final_return"]
for f in glob.glob("runs/*.json"):
    r = json.load(open(f))
    def fmt(x): return ("%g" % x)
    a = r["tag"] + ("" if r["sf"] == 1 else f"-s{fmt(r['sf'])}") + ("" if r["lf"] == 1 else f"-lr{fmt(r['lf'])}")
    rows[(a, r["env"], r["seed"])] = float(np.mean(r["final"]))
starts = ["", "-s4", "-s0.25", "-lr4", "-lr0.25"]
for env in ["Pendulum-v1", "HalfCheetah-v5", "Hopper-v5"]:
    print(env)
    for st in starts:
        line = f"  start{st or ' default':10s}"
        for base in ["es", "bierl", "bias", "biasfast"]:
            vals = [rows.get((base + st, env, s)) for s in range(5)]
            line += f" | {base}: " + " ".join("%7.1f" % v if v is not None else "      -" for v in vals)
        print(line)
