"""How fast a CPU second of this host was when each campaign run trained: environment steps per training CPU
second of every finished run, by seed, on the tasks whose episodes all last as long (Pendulum-v1 200 steps,
Swimmer-v5 and HalfCheetah-v5 1,000): there, an algorithm's cost per step does not depend on what its policy
learnt, so the spread between seeds of one (algorithm, task) is the host's.

Usage (from the repository root): python docs/benchmarks/campaign_host_speed.py [docs/benchmarks/campaign_runs]
"""

import json
import sys
from pathlib import Path

FIXED_LENGTH_TASKS = ("Pendulum-v1", "Swimmer-v5", "HalfCheetah-v5")
ALGOS = ("bierl", "es", "ars", "ppo", "trpo", "sac")

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmarks/campaign_runs")
rates: dict[tuple[str, str], dict[int, float]] = {}
for path in sorted((folder / "runs").glob("*.json")):
    record = json.loads(path.read_text())
    if record.get("status") == "done" and record.get("train_cpu_s"):
        key = (record["env"], record["algo"])
        rates.setdefault(key, {})[record["seed"]] = record["steps_reached"] / record["train_cpu_s"]
seeds = sorted({seed for by_seed in rates.values() for seed in by_seed})
print("| task | algorithm | " + " | ".join(f"seed {s}" for s in seeds) + " | fastest / slowest |")
print("|---|---|" + "---|" * (len(seeds) + 1))
spreads = []
for env_id in FIXED_LENGTH_TASKS:
    for algo in ALGOS:
        by_seed = rates.get((env_id, algo), {})
        if not by_seed:
            continue
        cells = [f"{by_seed[s]:,.0f}" if s in by_seed else "–" for s in seeds]
        spread = max(by_seed.values()) / min(by_seed.values())
        spreads.append(spread)
        print(f"| {env_id} | {algo} | " + " | ".join(cells) + f" | {spread:.2f} |")
spreads.sort()
median, largest = spreads[len(spreads) // 2], spreads[-1]
print(f"\nfastest / slowest seed of one (algorithm, task): median {median:.2f}, max {largest:.2f}")
