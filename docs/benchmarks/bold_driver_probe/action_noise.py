"""
Sigma in the policy's action space: a step-size signal that does not depend on the returns (issue 9, session 22)

Issue 9's robustness target needs sigma to come back from a start 4 times off; no return-based statistic measured
so far tells sigma 0.08 from 0.02 on HalfCheetah (session 21's centre rank and pair correlation). Adaptive
parameter-space noise (Plappert et al. 2018, "Parameter Space Noise for Exploration", ICLR, section 3 "Adaptive
noise scaling") sets the parameter noise by what it does to the *actions*: the distance

    ``d(sigma) = sqrt(mean_{k, s, a} (pi_{theta + sigma eps_k}(s)_a - pi_theta(s)_a)^2)``

between the perturbed and the unperturbed policy on a batch of states, in the squashed action units of the policy
(``[-1, 1]`` per dimension), is kept near a target ``delta``. It needs no episode: only forward passes.

The states: ES keeps no observations, only their running statistics (SB3's ``RunningMeanStd``, which the policy
normalises with). The batch here is a Gaussian with those statistics, seen through the policy's normalisation:
unit-variance inputs in every dimension that varies, 0 in the constant ones (Ant's contact forces), clipped as the
policy clips. That is an approximation of the visited states (their correlations are lost), the same for every
sigma, so it scales sigma consistently.

``measure`` runs ES at the defaults (seed 0, each task's budget) and records, after every generation, ``d`` at
sigma 0.005 to 0.08 (with the same ``eps``): is ``d(0.02)`` about the same on every task (one ``delta`` for all),
is ``d`` about linear in sigma (one correction step), and how does it drift over a run?

    python docs/benchmarks/bold_driver_probe/action_noise.py measure --out docs/benchmarks/bold_driver_probe/action_noise
    python docs/benchmarks/bold_driver_probe/action_noise.py table --out docs/benchmarks/bold_driver_probe/action_noise

``start`` (session 23) measures what BiERL measures before the first generation, with no training, on seeds 0-15:

    python docs/benchmarks/bold_driver_probe/action_noise.py start --out docs/benchmarks/bold_driver_probe/action_noise
"""

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from torch.nn.utils import vector_to_parameters

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.meta_level import SUITE_BUDGETS

#: Sigmas at which the distance is measured (the robustness stage's starts: the default 0.02, 4 times off)
SIGMAS = (0.005, 0.01, 0.02, 0.04, 0.08)
#: Perturbations and states per measurement
N_PERTURBATIONS, N_STATES = 8, 256


def state_batch(model: Any, rng: np.random.Generator, n_states: int = N_STATES) -> th.Tensor:
    """
    :param model: An ES model (its policy normalises observations with ``model.obs_rms``)
    :param rng: The generator of the batch
    :param n_states: Number of states
    :return: (n_states, features_dim) float32 inputs of the policy's ``action_net``, after its normalisation:
        Gaussian with the running statistics' variance over (variance + 1e-8), clipped to ``clip_obs``
    """
    var = np.asarray(model.obs_rms.var, dtype=np.float64).ravel()
    scale = np.sqrt(var / (var + 1e-8))
    clip = model.policy.clip_obs if model.policy.normalize_observations else np.inf
    z = np.clip(rng.standard_normal((n_states, var.size)) * scale, -clip, clip)
    return th.as_tensor(z, dtype=th.float32)


def action_distance(
    model: Any, sigmas: tuple[float, ...], rng: np.random.Generator, n_perturbations: int = N_PERTURBATIONS
) -> np.ndarray:
    """
    Plappert et al. (2018)'s distance between the policy at ``theta`` and at ``theta + sigma * eps``.

    :param model: An ES model with an MLP policy on a Box action space (``model.strategy.theta``: (n,) weights)
    :param sigmas: The sigmas (one set of ``eps`` for all)
    :param rng: The generator of ``eps`` and the states
    :param n_perturbations: Number of ``eps`` (standard normal, (n,))
    :return: (len(sigmas),) ``d(sigma)``: the RMS over perturbations, states and action dimensions of the change
        of the squashed action (units of the action space's half-range)
    """
    states = state_batch(model, rng)
    net = copy.deepcopy(model.policy.action_net)
    theta = np.asarray(model.strategy.theta, dtype=np.float64)
    eps = rng.standard_normal((n_perturbations, theta.size))
    with th.no_grad():
        vector_to_parameters(th.as_tensor(theta, dtype=th.float32), net.parameters())
        centre = net(states)
        distances = []
        for sigma in sigmas:
            squares = []
            for e in eps:
                vector_to_parameters(th.as_tensor(theta + sigma * e, dtype=th.float32), net.parameters())
                squares.append(float(th.mean((net(states) - centre) ** 2)))
            distances.append(float(np.sqrt(np.mean(squares))))
    return np.array(distances)


class DistanceRecorder(BaseCallback):
    """Records ``d`` at :data:`SIGMAS` after every generation, and the norm of ``theta``."""

    def __init__(self, seed: int) -> None:
        super().__init__(0)
        self.rng = np.random.default_rng(seed)
        self.rows: list[dict[str, Any]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        d = action_distance(self.model, SIGMAS, self.rng)
        self.rows.append({
            "generation": len(self.rows) + 1,
            "num_timesteps": int(self.model.num_timesteps),
            "theta_norm": float(np.linalg.norm(self.model.strategy.theta)),
            "distance": d.tolist(),
        })


def measure(env_id: str, seed: int, fraction: float, out: Path) -> Path:
    """Run ES at the defaults on ``env_id`` for ``fraction`` of its budget with a :class:`DistanceRecorder`."""
    from sb3_bierl import ES

    th.set_num_threads(1)
    path = out / f"{env_id}_{seed}.json"
    if path.exists():
        return path
    model = ES("MlpPolicy", env_id, seed=seed, n_workers=1, verbose=0)
    recorder = DistanceRecorder(seed + 12345)
    model.learn(int(SUITE_BUDGETS[env_id] * fraction), callback=recorder)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"env": env_id, "seed": seed, "sigmas": list(SIGMAS), "rows": recorder.rows}))
    return path


def table(out: Path) -> str:
    """:return: Markdown: ``d(0.02)`` at the first, middle and last generation, and ``d(0.08) / d(0.02)``"""
    rows = []
    for path in sorted(out.glob("*.json")):
        record = json.loads(path.read_text())
        sigmas, runs = record["sigmas"], record["rows"]
        i = sigmas.index(0.02)
        picks = [runs[0], runs[len(runs) // 2], runs[-1]]
        rows.append([
            f"{record['env']} (seed {record['seed']}, {len(runs)} generations)",
            *(f"{r['distance'][i]:.3f}" for r in picks),
            *(f"{r['distance'][sigmas.index(0.08)] / r['distance'][i]:.2f}" for r in picks[:1]),
            *(f"{r['distance'][i] / r['distance'][sigmas.index(0.005)]:.2f}" for r in picks[:1]),
            f"{runs[0]['theta_norm']:.1f} to {runs[-1]['theta_norm']:.1f}",
        ])
    header = [
        "Task", "d(0.02), generation 1", "middle", "last", "d(0.08) / d(0.02), gen. 1", "d(0.02) / d(0.005), gen. 1",
        "norm of theta",
    ]
    return "\n".join(markdown_table(header, rows))


def at_start(env_ids: list[str], seeds: range, sigmas: tuple[float, ...] = (0.005, 0.02, 0.08)) -> str:
    """
    The distance BiERL measures before the first generation (session 23): the package's
    :func:`sb3_bierl.meta.action_noise.action_distance` on the initial policy and observation statistics, with the
    generator ``BiERL(seed=s)``'s meta level uses (``s + 1``), no training.

    :return: Markdown: per task, the range over ``seeds`` of ``d`` at each sigma
    """
    from sb3_bierl import ES
    from sb3_bierl.meta.action_noise import action_distance

    th.set_num_threads(1)
    rows = []
    for env_id in env_ids:
        distances = np.empty((len(seeds), len(sigmas)))
        for i, seed in enumerate(seeds):
            model = ES("MlpPolicy", env_id, seed=seed, n_workers=1)
            for j, sigma in enumerate(sigmas):
                rng = np.random.default_rng(seed + 1)  # the same states and perturbations at every sigma
                distances[i, j] = action_distance(model.policy, model.strategy.theta, model.obs_rms, sigma, rng)
            model.close()
        rows.append([env_id, *(f"{distances[:, j].min():.3f} to {distances[:, j].max():.3f}" for j in range(len(sigmas)))])
    header = ["Task", *(f"d({sigma:g}) before generation 1, seeds {seeds.start}-{seeds.stop - 1}" for sigma in sigmas)]
    return "\n".join(markdown_table(header, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["measure", "table", "start"])
    parser.add_argument("--envs", nargs="+", default=list(SUITE_BUDGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=1.0, help="share of each task's budget")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=16, help="start: seeds 0 to this - 1")
    args = parser.parse_args()
    if args.command == "start":
        text = at_start(args.envs, range(args.seeds))
        (args.out / "at_start.md").write_text(text + "\n")
        print(text)
        return
    if args.command == "measure":
        for env_id in args.envs:
            print(measure(env_id, args.seed, args.fraction, args.out), flush=True)
    print(table(args.out))


if __name__ == "__main__":
    main()
