"""Table of the session-5 screening runs (run from this folder): per variant and start, final return per seed and the mean."""
import collections
import glob
import json

import numpy as np

rows = collections.defaultdict(dict)
for path in glob.glob("runs/*.json"):
    r = json.load(open(path))
    start = ("default" if (r["sf"], r["lf"]) == (1.0, 1.0) else f"s{r['sf']:g}-lr{r['lf']:g}")
    rows[(r["env"], start, r["tag"])][r["seed"]] = (float(np.mean(r["final"])), r["trace"][-1][1], r["trace"][-1][2])
for key in sorted(rows):
    seeds = rows[key]
    finals = [seeds[s][0] for s in sorted(seeds)]
    sigmas = [seeds[s][1] for s in sorted(seeds)]
    print(f"{key[0]:15s} {key[1]:12s} {key[2]:6s} n={len(finals):2d} mean {np.mean(finals):8.1f} | final sigma median {np.median(sigmas):.4f} | "
          + " ".join(f"{v:7.1f}" for v in finals))
