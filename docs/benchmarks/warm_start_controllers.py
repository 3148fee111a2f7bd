"""
Two pre-trained controllers on the same held-out runs (issue 10): the probability that BiERL warm-started from the
controller of session 13 (pre-trained with policy gains and standardised features, 60 meta generations,
``pretraining_gain_std_run/``) ends above BiERL warm-started from the shipped one, at the defaults, per task and over
the five held-out tasks, 5 seeds, with rliable. Run from the repository root::

    python docs/benchmarks/warm_start_controllers.py
"""

from pathlib import Path

import numpy as np

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import final_returns, return_matrix, rliable_summary
from sb3_bierl.benchmarks.records import load_records

HERE = Path(__file__).parent
ENVS = ("LunarLanderContinuous-v3", "Swimmer-v5", "Hopper-v5", "HalfCheetah-v5", "Ant-v5")
SEEDS = (0, 1, 2, 3, 4)


def warm_returns(folders: list[Path]) -> np.ndarray:
    """:return: (seeds, tasks) final returns of the ``warm`` runs in ``folders``"""
    records = [r for folder in folders for r in load_records(folder) if r["algo"] == "warm"]
    return return_matrix(final_returns(records), "warm", ENVS, SEEDS)


if __name__ == "__main__":
    shipped = warm_returns([HERE / "warm_start_runs", HERE / "warm_start_runs_session7"])
    session13 = warm_returns([HERE / "warm_start_runs_session13"])
    rows = [[env, f"{shipped[:, i].mean():.1f}", f"{session13[:, i].mean():.1f}"] for i, env in enumerate(ENVS)]
    print("\n".join(markdown_table(["Mean over 5 seeds", "shipped controller", "session 13's controller"], rows)))
    pair = [("session 13's controller", "shipped controller")]
    returns = {"session 13's controller": session13, "shipped controller": shipped}
    print("\n" + "\n".join(rliable_summary({}, returns, pair)))  # 5 tasks x 5 seeds
