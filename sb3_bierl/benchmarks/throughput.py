"""
Throughput (environment steps per second) of ES and BiERL against raw environment stepping, ARS and EvoTorch.

For each environment, one row per measurement, each run in a fresh subprocess by the benchmarks' runner
(:mod:`sb3_bierl.benchmarks.runner`; ``python -m sb3_bierl.benchmarks.throughput --_one ...``, one torch thread,
``OMP_NUM_THREADS=1`` in its environment so that worker processes inherit it), one measurement after another:

(a) raw gymnasium stepping: ``--workers`` spawned processes each step their own ``gym.make(env)``
    with a fixed action (zero, or the middle of the bounds where zero is outside them) for
    ``--seconds`` seconds, resetting at the end of each episode. Making the environment and 100
    warm-up steps are not timed. Rate: total steps / wall time. This is the reference: the most
    steps per second ``--workers`` processes can get out of the environment.
(b) sb3-contrib ``ARS("MlpPolicy", env, n_delta=--n-pairs, policy_kwargs=dict(net_arch=[64, 64]))``
    trained for ``--timesteps`` steps with its ``AsyncEval`` on ``--workers`` worker processes (as in
    the ARS documentation and rl_zoo3). Timed: building ``AsyncEval`` (it starts the workers) and
    ``learn`` (it closes them).
(c) ``ES`` and ``BiERL`` (``n_pairs=--n-pairs``, ``"MlpPolicy"`` with ``net_arch=[64, 64]``,
    ``n_workers=--workers``) for each backend of ``--backends``, trained for ``--timesteps`` steps.
    Timed: the whole first ``learn()`` call, because the workers start on its first rollout
    (they then stay up for later ``learn`` calls, until the model is closed or collected); their
    start-up cost amortises with ``--timesteps`` (the column "steps/s after 1st generation" leaves
    it out). Model construction is timed apart ("setup"). ``inprocess`` ignores ``n_workers``: it
    steps the whole population in the measuring process (compare it with (a) for one process,
    i.e. about half of (a) with 2). ``auto`` is the default backend: the first second of rollouts
    runs in the measuring process while the worker processes start in the background. The Ray rows
    are skipped, with a note, if Ray or the Ray backend (``sb3_bierl.evaluation.ray_backend``) cannot
    be imported.
(d) EvoTorch (``pip install evotorch==0.6.1``; it needs Ray), one row per problem class,
    ``VecGymNE`` and ``GymNE``, each with ``PGPE(optimizer="clipup")``, ``popsize=2 * --n-pairs`` (the
    population of ES), ``num_actors=--workers`` (Ray actors; EvoTorch runs a single actor's work in
    the measuring process instead, so ``--workers 1`` means one process), trained generation after
    generation until the problem's ``total_interaction_count`` (status of the searcher) reaches
    ``--timesteps``. The network is ES's ``MlpPolicy``: :data:`EVOTORCH_NETWORK` (tanh hidden layers,
    tanh output; EvoTorch then clips actions to the bounds, where ES rescales them: the same for
    bounds of [-1, 1]), with ``observation_normalization=True`` (running mean and std of the
    observations, as ES; unlike ES, EvoTorch does not clip the normalised observations). Each
    solution runs one episode of its environment (``num_episodes=1``), and the fitness is the plain
    return (no ``decrease_rewards_by``), as in ES. The PGPE + ClipUp hyperparameters
    (:data:`EVOTORCH_PGPE_KWARGS`) are those of EvoTorch's MuJoCo example
    (``examples/scripts/rl_clipup.py``, Walker2d config) with a fixed population (no ``popsize_max``);
    they change the policies, hence the episode lengths, not the machinery. ``VecGymNE`` gives each
    actor one EvoTorch ``SyncVectorEnv`` with an environment per solution of its sub-batch
    (``max_num_envs=None``: ``popsize / --workers`` environments, 16 with the defaults), so the
    policies of a sub-batch run as one batched forward pass per step; ``GymNE`` runs the solutions of
    a sub-batch one after the other, one environment per actor. Model construction
    (problem and searcher) is timed apart ("setup"); the timed part starts a local Ray as the ES Ray
    rows do (no dashboard, ``num_cpus`` at least ``--workers``) and includes the actors' start-up in
    the first generation. The seed goes to torch's, NumPy's and Python's global generators (EvoTorch
    0.6.1 fails with a problem-specific seed, ``problem.manual_seed``, once it has actors). The rows
    are skipped, with a note, if EvoTorch cannot be imported; ``--references`` leaves them out.

Rates of (b), (c) and (d) are ``(num_timesteps at the end - at the start) / wall time`` (for (d),
``total_interaction_count``); ARS rounds its count down to a multiple of the worker count each
generation (less than ``--workers`` steps).

Columns of the table (also written to ``--out`` as Markdown and, next to it, as JSON):

- ``steps/s``, its ratio to (a) and to (b);
- ``outside env stepping``: ``max(0, 1 - (steps / rate_a) / wall_time)``, the share of the wall
  time that an ideal, environment-bound run with ``--workers`` processes would not need;
- ``steps/s after 1st generation``: the rate from the end of the first generation to the end of
  ``learn`` (without the workers' start-up and the first generation);
- ``mean episode length``: steps / finished episodes (episodes end sooner or later depending on
  the policy, and short episodes mean more resets and more overhead per step);
- peak memory: ``all processes`` is the peak, sampled every 0.25 s from ``/proc``, of the summed
  resident set size of the measuring process and all its descendants (workers, forkserver, Ray
  processes; shared pages count once per process, so this is an upper bound);
  ``measuring process`` is its own ``ru_maxrss``; ``largest other process`` is the peak, sampled
  alike, of the largest single descendant: the memory of one worker (or of the forkserver, or of one
  of Ray's own processes, whichever is largest). ``RUSAGE_CHILDREN`` is kept in the JSON only:
  it is the largest single child, and misses workers started by a forkserver.

Reproduce (the defaults; give the machine nothing else to do)::

    python -m sb3_bierl.benchmarks.throughput --envs HalfCheetah-v5 Hopper-v5 Ant-v5 BipedalWalker-v3 \\
        --workers 2 --seconds 20 --timesteps 200000 --n-pairs 16 --backends processes ray auto \\
        --references ars evotorch-vecgymne evotorch-gymne --out bench_results/throughput.md

``--references ars`` leaves out the EvoTorch rows (d), ``--references`` with no name (b) as well.
Try it quickly with, e.g.,
``--envs Hopper-v5 --seconds 3 --timesteps 20000 --backends processes --out /tmp/tp_smoke.md``.
"""

import argparse
import dataclasses
import datetime
import importlib.metadata
import itertools
import json
import math
import multiprocessing
import os
import platform
import random
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_bierl.benchmarks.compare import markdown_table
from sb3_bierl.benchmarks.records import new_record
from sb3_bierl.benchmarks.runner import Job, execute_job

PROG = "python -m sb3_bierl.benchmarks.throughput"
DEFAULT_ENVS: tuple[str, ...] = ("HalfCheetah-v5", "Hopper-v5", "Ant-v5", "BipedalWalker-v3")
BACKENDS: tuple[str, ...] = ("inprocess", "processes", "ray", "auto")
DEFAULT_BACKENDS: tuple[str, ...] = ("processes", "ray", "auto")
NET_ARCH: list[int] = [64, 64]
# (d): EvoTorch problem class of each kind; REFERENCES: the rows besides (a) and (c) that --references selects
EVOTORCH_PROBLEMS: dict[str, str] = {"evotorch-vecgymne": "VecGymNE", "evotorch-gymne": "GymNE"}
REFERENCES: tuple[str, ...] = ("ars", *EVOTORCH_PROBLEMS)
RAW_WARMUP_STEPS = 100
MEMORY_POLL_S = 0.25
VERSIONED_PACKAGES: tuple[str, ...] = (
    "sb3-bierl",
    "gymnasium",
    "mujoco",
    "box2d",
    "torch",
    "numpy",
    "stable-baselines3",
    "sb3-contrib",
    "ray",
    "evotorch",
)
MIB = 2**20


def evotorch_network(net_arch: Sequence[int]) -> str:
    """
    :param net_arch: Hidden layer sizes
    :return: EvoTorch's network string of ES's ``MlpPolicy`` with these layers: tanh after every layer
        (``squash_output=True``), e.g. ``Linear(obs_length, 64) >> Tanh() >> ... >> Linear(64, act_length) >> Tanh()``
    """
    sizes = ["obs_length", *map(str, net_arch), "act_length"]
    return " >> ".join(f"Linear({n_in}, {n_out}) >> Tanh()" for n_in, n_out in itertools.pairwise(sizes))


EVOTORCH_NETWORK = evotorch_network(NET_ARCH)
# PGPE + ClipUp as in EvoTorch's MuJoCo example (examples/scripts/rl_clipup.py, "walker"): max_speed 0.015,
# centre step 0.75 * max_speed, initial radius 15 * max_speed; the population stays fixed (no popsize_max)
EVOTORCH_MAX_SPEED = 0.015
EVOTORCH_PGPE_KWARGS: dict[str, Any] = {
    "center_learning_rate": 0.75 * EVOTORCH_MAX_SPEED,
    "stdev_learning_rate": 0.1,
    "stdev_max_change": 0.2,
    "radius_init": 15 * EVOTORCH_MAX_SPEED,
    "optimizer": "clipup",
    "optimizer_config": {"max_speed": EVOTORCH_MAX_SPEED, "momentum": 0.9},
}


# ---------------------------------------------------------------------- what to measure
@dataclass(frozen=True)
class Measurement:
    """
    One row of the table.

    :param kind: ``"raw"`` (a), ``"ars"`` (b), ``"es"`` or ``"bierl"`` (c), a key of ``EVOTORCH_PROBLEMS`` (d)
    :param env_id: Gymnasium environment id
    :param workers: Number of processes (a), workers (b, c) or Ray actors (d)
    :param seconds: Duration of the raw stepping (a)
    :param timesteps: Training budget in environment steps (b, c, d)
    :param n_pairs: Antithetic pairs per generation (ARS's ``n_delta``; half of EvoTorch's ``popsize``)
    :param backend: Evaluation backend of ES and BiERL (c), else None
    :param seed: Random seed
    """

    kind: str
    env_id: str
    workers: int
    seconds: float
    timesteps: int
    n_pairs: int
    backend: str | None = None
    seed: int = 0

    @property
    def label(self) -> str:
        """:return: The row's name in the table"""
        if self.kind == "raw":
            return f"(a) raw gymnasium, {self.workers} processes"
        if self.kind == "ars":
            return f"(b) ARS + AsyncEval, {self.workers} workers"
        if self.kind in EVOTORCH_PROBLEMS:
            name = f"(d) EvoTorch {EVOTORCH_PROBLEMS[self.kind]} + PGPE/ClipUp"
            # EvoTorch drops a single actor: everything then runs in the measuring process
            return f"{name}, {self.workers} Ray actors" if self.workers > 1 else f"{name}, 1 process"
        name = {"es": "ES", "bierl": "BiERL"}[self.kind]
        if self.backend == "inprocess":  # n_workers is not used: everything runs in the measuring process
            return f"(c) {name}, inprocess, 1 process"
        return f"(c) {name}, {self.backend}, {self.workers} workers"


def plan_measurements(args: argparse.Namespace, env_id: str) -> list[Measurement]:
    """
    :param args: Parsed command line
    :param env_id: Environment id
    :return: The measurements of one environment, in the order they run: (a), (b), (c) by backend, then
        (d), each of (b) and (d) only if in ``args.references`` (whether EvoTorch is installed is found out
        when the measurement runs: it is then skipped with a note)
    """
    common = {
        "env_id": env_id,
        "workers": args.workers,
        "seconds": args.seconds,
        "timesteps": args.timesteps,
        "n_pairs": args.n_pairs,
        "seed": args.seed,
    }
    plan = [Measurement("raw", **common)]
    if "ars" in args.references:
        plan.append(Measurement("ars", **common))
    for backend in args.backends:
        plan += [Measurement("es", backend=backend, **common), Measurement("bierl", backend=backend, **common)]
    plan += [Measurement(kind, **common) for kind in EVOTORCH_PROBLEMS if kind in args.references]
    return plan


# ---------------------------------------------------------------------- (a) raw stepping
def fixed_action(space: gym.Space) -> Any:
    """
    :param space: An action space
    :return: Zero where it is inside the bounds, else the middle of the bounds (clipped into them)
    """
    if isinstance(space, gym.spaces.Box):
        low, high = space.low.astype(np.float64), space.high.astype(np.float64)
        middle = np.where(np.isfinite(low) & np.isfinite(high), (low + high) / 2, 0.0)
        action = np.where((low <= 0) & (high >= 0), 0.0, np.clip(middle, low, high))
        return action.astype(space.dtype)
    if isinstance(space, gym.spaces.Discrete):
        return int(space.start)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.asarray(space.start, dtype=space.dtype)
    return space.sample()


def raw_worker(env_id: str, seed: int, seconds: float, conn: Connection, start: Any) -> None:
    """
    Process of (a): make the env and warm it up, say ready, wait for ``start``, then step it with a
    fixed action for ``seconds`` and send ``(steps, finished episodes)``.

    :param env_id: Environment id
    :param seed: Seed of the first reset
    :param seconds: How long to step
    :param conn: Pipe to the measuring process
    :param start: ``multiprocessing.Event`` set when every process is ready
    """
    env = gym.make(env_id)
    action = fixed_action(env.action_space)
    env.reset(seed=seed)
    for _ in range(RAW_WARMUP_STEPS):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    conn.send("ready")
    start.wait()
    steps = episodes = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        _, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated:
            episodes += 1
            env.reset()
    env.close()
    conn.send((steps, episodes))
    conn.close()


def measure_raw(spec: Measurement) -> dict[str, Any]:
    """
    (a): ``spec.workers`` spawned processes step their own environment at once.

    :param spec: The measurement
    :return: Steps, finished episodes and wall time (from the start signal to the last answer)
    """
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    pipes, processes = [], []
    for rank in range(spec.workers):
        parent_conn, child_conn = ctx.Pipe()
        process = ctx.Process(
            target=raw_worker, args=(spec.env_id, spec.seed + rank, spec.seconds, child_conn, start), daemon=True
        )
        process.start()
        child_conn.close()
        pipes.append(parent_conn)
        processes.append(process)
    try:
        for conn in pipes:
            if conn.recv() != "ready":
                raise RuntimeError("a raw-stepping process did not start")
        t0 = time.perf_counter()
        start.set()
        answers = [conn.recv() for conn in pipes]
        wall = time.perf_counter() - t0
    finally:
        for process in processes:
            process.join(5.0)
            if process.is_alive():
                process.terminate()
    steps = sum(s for s, _ in answers)
    episodes = sum(e for _, e in answers)
    return {"steps": steps, "episodes": episodes, "wall_s": wall, "setup_s": 0.0, "generation_clock": []}


# ---------------------------------------------------------------------- (b), (c) training
class RunProbe:
    """
    Records, without a per-step callback, the time and step count at the end of each generation
    (by wrapping ``model.dump_logs``, which ES, BiERL and ARS call once per generation with
    ``log_interval=1``) and the number of finished episodes (by wrapping ``model._update_info_buffer``).

    :param model: The ES, BiERL or ARS model to watch
    """

    def __init__(self, model: Any):
        self.generations: list[tuple[float, int]] = []
        self.episodes = 0
        dump_logs, update_info_buffer = model.dump_logs, model._update_info_buffer

        def timed_dump_logs() -> None:
            self.generations.append((time.perf_counter(), int(model.num_timesteps)))
            dump_logs()

        def counting_update_info_buffer(infos: list[dict[str, Any]], *args: Any, **kwargs: Any) -> None:
            self.episodes += sum(1 for info in infos if "episode" in info)
            update_info_buffer(infos, *args, **kwargs)

        model.dump_logs = timed_dump_logs
        model._update_info_buffer = counting_update_info_buffer


def timed_learn(model: Any, learn: Callable[[], Any], t0: float | None = None) -> dict[str, Any]:
    """
    :param model: The model (its ``num_timesteps`` is read before and after)
    :param learn: Starts the workers if needed and trains (the timed part)
    :param t0: Start of the timed part, if it began before this call
    :return: Steps, episodes, wall time and the time/steps at the end of each generation (relative to ``t0``)
    """
    probe = RunProbe(model)
    steps_before = int(model.num_timesteps)
    t0 = time.perf_counter() if t0 is None else t0
    learn()
    wall = time.perf_counter() - t0
    return {
        "steps": int(model.num_timesteps) - steps_before,
        "episodes": probe.episodes,
        "wall_s": wall,
        "generation_clock": [[t - t0, n - steps_before] for t, n in probe.generations],
    }


def measure_ars(spec: Measurement) -> dict[str, Any]:
    """
    (b): sb3-contrib's ARS with ``AsyncEval`` on ``spec.workers`` workers.

    :param spec: The measurement
    :return: Steps, episodes, wall time (``AsyncEval`` and ``learn``), set-up time (model construction)
    """
    from functools import partial

    from sb3_contrib import ARS
    from sb3_contrib.common.vec_env import AsyncEval
    from stable_baselines3.common.env_util import make_vec_env

    t_setup = time.perf_counter()
    env = make_vec_env(spec.env_id, n_envs=1, seed=spec.seed)
    model = ARS("MlpPolicy", env, n_delta=spec.n_pairs, policy_kwargs={"net_arch": NET_ARCH}, seed=spec.seed, verbose=0)
    setup = time.perf_counter() - t_setup

    t0 = time.perf_counter()
    async_eval = AsyncEval([partial(make_vec_env, spec.env_id, n_envs=1)] * spec.workers, model.policy)
    async_eval.seed(spec.seed)
    result = timed_learn(model, lambda: model.learn(spec.timesteps, async_eval=async_eval), t0=t0)
    return {**result, "setup_s": setup}


def measure_es(spec: Measurement) -> dict[str, Any]:
    """
    (c): ``ES`` or ``BiERL`` with ``spec.backend`` on ``spec.workers`` workers.

    :param spec: The measurement
    :return: Steps, episodes, wall time (``learn``), set-up time (model construction), or
        ``{"skipped": reason}`` if the Ray backend cannot be imported
    """
    from sb3_bierl import ES, BiERL

    algo_class = {"es": ES, "bierl": BiERL}[spec.kind]
    if spec.backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError as error:
            return {"skipped": f"Ray is not installed ({error})"}
    t_setup = time.perf_counter()
    try:
        model = algo_class(
            "MlpPolicy",
            spec.env_id,
            n_pairs=spec.n_pairs,
            n_workers=spec.workers,
            backend=spec.backend,
            policy_kwargs={"net_arch": NET_ARCH},
            seed=spec.seed,
            verbose=0,
            # BiERL with the meta network, as in the published figures (its default for OpenAI-ES before session 22)
            **({"meta": "lstm"} if spec.kind == "bierl" else {}),
        )
    except ImportError as error:  # e.g. no sb3_bierl.evaluation.ray_backend yet
        return {"skipped": f"the {spec.backend} backend cannot be imported ({type(error).__name__}: {error})"}
    setup = time.perf_counter() - t_setup
    result = timed_learn(model, lambda: model.learn(spec.timesteps))
    return {**result, "setup_s": setup}


def measure_evotorch(spec: Measurement) -> dict[str, Any]:
    """
    (d): EvoTorch's ``VecGymNE`` or ``GymNE`` with PGPE + ClipUp on ``spec.workers`` Ray actors.

    :param spec: The measurement
    :return: Steps, episodes, wall time (Ray start-up and the generations), set-up time (problem and
        searcher), or ``{"skipped": reason}`` if EvoTorch cannot be imported
    """
    try:
        from evotorch.algorithms import PGPE
        from evotorch.neuroevolution import GymNE, VecGymNE
    except ImportError as error:
        why = f"EvoTorch cannot be imported ({type(error).__name__}: {error}); pip install evotorch==0.6.1"
        return {"skipped": why}
    import torch as th

    from sb3_bierl.evaluation.ray_backend import init_ray

    problem_class = {"VecGymNE": VecGymNE, "GymNE": GymNE}[EVOTORCH_PROBLEMS[spec.kind]]
    # global generators: a problem-specific seed (problem.manual_seed) makes EvoTorch 0.6.1's actors fail
    random.seed(spec.seed)
    np.random.seed(spec.seed)
    th.manual_seed(spec.seed)
    t_setup = time.perf_counter()
    problem = problem_class(spec.env_id, EVOTORCH_NETWORK, observation_normalization=True, num_actors=spec.workers)
    searcher = PGPE(problem, popsize=2 * spec.n_pairs, **EVOTORCH_PGPE_KWARGS)
    setup = time.perf_counter() - t_setup

    t0 = time.perf_counter()
    if spec.workers > 1:  # the local Ray of the ES rows (EvoTorch would call a bare ray.init())
        init_ray(None, spec.workers)
    steps = episodes = 0
    clock = []
    while steps < spec.timesteps:
        searcher.step()
        steps, episodes = int(searcher.status["total_interaction_count"]), int(searcher.status["total_episode_count"])
        clock.append([time.perf_counter() - t0, steps])
    wall = time.perf_counter() - t0
    return {"steps": steps, "episodes": episodes, "wall_s": wall, "setup_s": setup, "generation_clock": clock}


def shutdown_ray() -> None:
    """Stop the local Ray instance, if this process started one (so that its processes end with the measurement)."""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


def run_one(spec: Measurement) -> dict[str, Any]:
    """
    Entry point of a measuring subprocess: one torch thread, then one measurement.

    :param spec: The measurement
    :return: Its raw result plus this process's peak RSS (``ru_maxrss``) and its children's
    """
    import torch as th

    th.set_num_threads(1)
    try:
        if spec.kind == "raw":
            result = measure_raw(spec)
        elif spec.kind == "ars":
            result = measure_ars(spec)
        elif spec.kind in EVOTORCH_PROBLEMS:
            result = measure_evotorch(spec)
        else:
            result = measure_es(spec)
    finally:
        shutdown_ray()
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    unit = 1 if sys.platform == "darwin" else 1024
    result["rss_self_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / MIB
    result["rss_children_max_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit / MIB
    return result


# ---------------------------------------------------------------------- running a measurement
def process_tree_rss(root: int) -> tuple[int, int] | None:
    """
    :param root: A process id
    :return: The summed resident set size, in bytes, of ``root`` and all its descendants, and the largest
        resident set size of one descendant (0 without any: a worker, the forkserver or one of Ray's processes);
        None without ``/proc``
    """
    if not os.path.isdir("/proc"):
        return None
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as file:
                stat = file.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])  # "pid (comm) state ppid ..."
        children.setdefault(ppid, []).append(int(name))
    total, largest, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as file:
                rss = int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
        total += rss
        if pid != root:
            largest = max(largest, rss)
    return total, largest


class MeasurementJob(Job):
    """
    One measurement as a job of the benchmarks' runner: its own subprocess (``--_one``), killed with its process
    group after ``timeout_s``, the memory of its process tree sampled every :data:`MEMORY_POLL_S`; its record is
    kept in memory (the report is the throughput benchmark's file), its output in a temporary folder.

    :param spec: The measurement
    :param folder: A temporary folder for its output and result
    :param timeout_s: Seconds before it is killed
    """

    poll_s = MEMORY_POLL_S

    def __init__(self, spec: Measurement, folder: Path, timeout_s: float):
        self.result_path = Path(folder) / "result.json"
        command = [sys.executable, "-m", "sb3_bierl.benchmarks.throughput", "--_one", json.dumps(dataclasses.asdict(spec))]
        command += ["--_result", str(self.result_path)]
        fields = {"label": spec.label, **{k: v for k, v in dataclasses.asdict(spec).items() if k not in ("seed", "env_id")}}
        record = new_record(spec.kind, spec.env_id, spec.seed, command, spec.timesteps, None, **fields)
        one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # whatever the caller's environment says
        super().__init__(spec.label, command, record, folder, 1, one_thread, timeout_s, save=False)
        self.peak = self.peak_other = 0

    def poll(self, record: dict[str, Any], process: subprocess.Popen, elapsed_s: float) -> None:
        total, other = process_tree_rss(process.pid) or (0, 0)
        self.peak, self.peak_other = max(self.peak, total), max(self.peak_other, other)

    def finish(self, record: dict[str, Any]) -> dict[str, Any]:
        record["peak_tree_mib"] = self.peak / MIB if self.peak else None
        record["peak_other_process_mib"] = self.peak_other / MIB if self.peak_other else None
        if record["status"] != "done":
            return record
        try:
            return {**record, **json.loads(self.result_path.read_text())}
        except (OSError, ValueError) as error:
            return {**record, "status": "failed", "error": f"no result: {error}"}


def run_measurement(spec: Measurement, timeout: float) -> dict[str, Any]:
    """
    Run one measurement in a fresh subprocess (:class:`MeasurementJob`), sampling the memory of its process tree.

    :param spec: The measurement
    :param timeout: Seconds before the subprocess is killed
    :return: Its record (:mod:`sb3_bierl.benchmarks.records`) with its result; ``"error"`` (with the end of its
        output) if it failed
    """
    with tempfile.TemporaryDirectory(prefix="sb3_bierl_throughput_") as tmp:
        record = execute_job(MeasurementJob(spec, Path(tmp), timeout), threading.Event())
    assert record is not None  # only a set stop event skips a job
    record["log_file"] = None  # the temporary folder is gone
    return record


# ---------------------------------------------------------------------- metrics and report
def add_metrics(rows: list[dict[str, Any]]) -> None:
    """
    Add the rate, the ratios to (a) and (b), the share of time outside env stepping, the rate after
    the first generation and the mean episode length to the rows of one environment (in place).

    :param rows: Results of one environment, each with ``kind`` and its raw result
    """
    for row in rows:
        ok = "steps" in row and row.get("wall_s", 0) > 0
        row["rate"] = row["steps"] / row["wall_s"] if ok else None
        row["mean_episode_length"] = row["steps"] / row["episodes"] if ok and row.get("episodes") else None
        clock = row.get("generation_clock") or []
        steady = None
        if ok and len(clock) >= 2 and row["wall_s"] > clock[0][0]:
            steady = (row["steps"] - clock[0][1]) / (row["wall_s"] - clock[0][0])
        row["rate_after_first_generation"] = steady
    rate_a = next((r["rate"] for r in rows if r["kind"] == "raw" and r["rate"]), None)
    rate_b = next((r["rate"] for r in rows if r["kind"] == "ars" and r["rate"]), None)
    for row in rows:
        rate = row["rate"]
        row["ratio_to_a"] = rate / rate_a if rate and rate_a else None
        row["ratio_to_b"] = rate / rate_b if rate and rate_b else None
        outside = None
        if rate and rate_a and row["kind"] != "raw":
            outside = max(0.0, 1.0 - (row["steps"] / rate_a) / row["wall_s"])
        row["outside_env_share"] = outside


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    """
    :param value: A number or None
    :param spec: Its format spec
    :param suffix: Appended to it
    :return: The formatted number, or ``–``
    """
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:{spec}}{suffix}"


TABLE_HEADER: tuple[str, ...] = (
    "Measured",
    "steps",
    "wall s (+ setup)",
    "steps/s",
    "× (a)",
    "× (b)",
    "outside env stepping",
    "steps/s after 1st generation",
    "mean episode length",
    "peak RSS, all processes (MiB)",
    "peak RSS, measuring process (MiB)",
    "peak RSS, largest other process (MiB)",
)


def table_row(row: dict[str, Any]) -> list[str]:
    """
    :param row: One result, with its metrics
    :return: Its cells
    """
    if "skipped" in row:
        return [row["label"], f"skipped: {row['skipped']}", *["–"] * (len(TABLE_HEADER) - 2)]
    if row.get("error"):
        return [row["label"], f"FAILED ({row['error'].splitlines()[0]})", *["–"] * (len(TABLE_HEADER) - 2)]
    setup = row.get("setup_s") or 0.0
    wall = f"{row['wall_s']:.1f}" + (f" (+{setup:.1f})" if setup >= 0.05 else "")
    return [
        row["label"],
        f"{row['steps']:,}",
        wall,
        fmt(row["rate"], ",.0f"),
        fmt(row["ratio_to_a"], ".2f"),
        fmt(row["ratio_to_b"], ".2f"),
        fmt(None if row["outside_env_share"] is None else 100 * row["outside_env_share"], ".0f", " %"),
        fmt(row["rate_after_first_generation"], ",.0f"),
        fmt(row["mean_episode_length"], ",.0f"),
        fmt(row.get("peak_tree_mib"), ",.0f"),
        fmt(row.get("rss_self_mib"), ",.0f"),
        fmt(row.get("peak_other_process_mib"), ",.0f"),
    ]


def env_section(env_id: str, rows: list[dict[str, Any]]) -> list[str]:
    """
    :param env_id: Environment id
    :param rows: Its results, with their metrics
    :return: The Markdown lines of its table
    """
    return [f"## {env_id}", "", *markdown_table(TABLE_HEADER, [table_row(r) for r in rows]), ""]


def cpu_model() -> str:
    """:return: ``platform.processor()``, or the model name from ``/proc/cpuinfo`` when that is empty or generic"""
    name = platform.processor()
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} (platform.processor(): {name or 'empty'})"
    except OSError:
        pass
    return name or "unknown"


def machine_info() -> dict[str, Any]:
    """:return: CPU count and model, OS, Python, and the load average now"""
    return {
        "cpu_count": os.cpu_count(),
        "processor": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def package_versions() -> dict[str, str]:
    """:return: The installed version of each package of ``VERSIONED_PACKAGES`` (``not installed`` if absent)"""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def make_report(info: dict[str, Any], results: dict[str, list[dict[str, Any]]]) -> str:
    """
    :param info: Command, machine, versions, settings, start time
    :param results: Rows by environment, with their metrics
    :return: The Markdown report
    """
    settings = info["settings"]
    machine = info["machine"]
    lines = [
        "# Throughput: environment steps per second",
        "",
        "```",
        info["command"],
        "```",
        "",
        f"- Machine: {machine['cpu_count']} CPUs, {machine['processor']}; {machine['platform']}; Python {machine['python']}",
        f"- Load average (1, 5, 15 min) at the start: {fmt_load(machine['load_average'])}; at the end: {fmt_load(info.get('load_average_end'))}",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in info["versions"].items()),
        (
            f"- Started {info['started']}; workers {settings['workers']}, raw stepping {settings['seconds']:g} s, "
            f"training {settings['timesteps']:,} steps, n_pairs {settings['n_pairs']} "
            f"(population {2 * settings['n_pairs']}), net_arch {NET_ARCH}, seed {settings['seed']}; "
            f"references: {', '.join(settings.get('references', REFERENCES)) or 'none'}"
        ),
        "",
        (
            "(a) is raw `gym.make` stepping with a fixed action in as many processes; (b) is sb3-contrib's ARS with "
            "`AsyncEval` (timed from building `AsyncEval` to the end of `learn`); (c) is the whole `learn()` of ES / "
            "BiERL, workers' start-up included (they stay up after `learn`); (d) is EvoTorch's `VecGymNE` / `GymNE` "
            "with PGPE + ClipUp, the same population, network (tanh MLP) and observation normalisation as ES, on as "
            "many Ray actors, timed from the local Ray's start to the generation that reaches the steps. *outside env "
            "stepping* = `max(0, 1 - (steps / rate_a) / wall)`. *steps/s after 1st generation* leaves out the start-up "
            "and the first generation. *peak RSS, all processes*: sampled sum over the measuring process and its "
            "descendants (an upper bound: shared pages count once per process); *largest other process*: the "
            "largest single descendant (one worker's memory, or Ray's or the forkserver's if larger). Setup (model construction) is not in "
            "the rate. Every measurement ran in a fresh process with one torch thread. See the module docstring of "
            "`sb3_bierl.benchmarks.throughput`."
        ),
        "",
    ]
    for env_id, rows in results.items():
        lines += env_section(env_id, rows)
    return "\n".join(lines)


def fmt_load(load: Sequence[float] | None) -> str:
    """
    :param load: The 1, 5 and 15 minute load averages
    :return: Them as text
    """
    return "–" if not load else ", ".join(f"{x:.2f}" for x in load)


def write_outputs(out: Path, info: dict[str, Any], results: dict[str, list[dict[str, Any]]]) -> None:
    """
    Write the Markdown report to ``out`` and everything measured to ``out`` with a ``.json`` suffix.

    :param out: Path of the Markdown report
    :param info: Command, machine, versions, settings
    :param results: Rows by environment, with their metrics
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(make_report(info, results))
    out.with_suffix(".json").write_text(json.dumps({**info, "results": results}, indent=1) + "\n")


# ---------------------------------------------------------------------- command line
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """
    :param argv: Command-line arguments (default ``sys.argv[1:]``)
    :return: The parsed and checked arguments
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Environment steps per second of raw gymnasium stepping, sb3-contrib ARS (AsyncEval), ES, BiERL and EvoTorch.",
    )
    parser.add_argument(
        "--envs", nargs="+", default=list(DEFAULT_ENVS), help=f"Environment ids (default: {' '.join(DEFAULT_ENVS)})"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="Processes of (a), workers of (b) and (c), Ray actors of (d) (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="Duration of the raw stepping (a) (default: %(default)s)"
    )
    parser.add_argument(
        "--timesteps",
        type=lambda s: int(float(s.replace("_", ""))),
        default=200_000,
        help="Training steps of (b), (c) and (d) (default: %(default)s)",
    )
    parser.add_argument(
        "--n-pairs", type=int, default=16, help="Antithetic pairs per generation, ARS's n_delta (default: %(default)s)"
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=list(DEFAULT_BACKENDS),
        choices=BACKENDS,
        help=f"Backends of ES and BiERL (default: {' '.join(DEFAULT_BACKENDS)})",
    )
    parser.add_argument(
        "--references",
        nargs="*",
        default=list(REFERENCES),
        choices=REFERENCES,
        help="Reference rows besides (a): 'ars' (b), EvoTorch's 'evotorch-vecgymne' and 'evotorch-gymne' (d), skipped "
        f"with a note when EvoTorch cannot be imported; none when given without a name (default: {' '.join(REFERENCES)})",
    )
    parser.add_argument("--seed", type=int, default=0, help="Random seed (default: %(default)s)")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="Seconds before a measurement is killed (default: %(default)s)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench_results/throughput.md"),
        help="Markdown report; the JSON goes next to it (default: %(default)s)",
    )
    parser.add_argument("--_one", help=argparse.SUPPRESS)  # internal: run one measurement (JSON spec) ...
    parser.add_argument("--_result", type=Path, help=argparse.SUPPRESS)  # ... and write its result here
    args = parser.parse_args(argv)

    if args._one is not None:
        if args._result is None:
            parser.error("--_one needs --_result")
        return args
    for name in ("workers", "n_pairs", "timesteps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("seconds", "timeout"):
        if not math.isfinite(getattr(args, name)) or getattr(args, name) <= 0:
            parser.error(f"--{name} must be a positive number, got {getattr(args, name)}")
    for env_id in args.envs:
        if env_id not in gym.registry:
            parser.error(f"unknown environment {env_id!r}")
    args.envs = list(dict.fromkeys(args.envs))
    args.backends = list(dict.fromkeys(args.backends))
    args.references = list(dict.fromkeys(args.references))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """
    Measure every row of every environment, one at a time, printing each table and rewriting the
    report after each measurement.

    :param argv: Command-line arguments (default ``sys.argv[1:]``)
    :return: The exit status: 1 if a measurement failed (skipped ones do not count), else 0
    """
    args = parse_args(argv)
    if args._one is not None:
        result = run_one(Measurement(**json.loads(args._one)))
        args._result.write_text(json.dumps(result))
        return 0

    argv = sys.argv[1:] if argv is None else list(argv)
    info: dict[str, Any] = {
        "command": f"{PROG} {shlex.join(argv)}".strip(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": package_versions(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("_")},
    }
    print(info["command"])
    print(
        f"{info['machine']['cpu_count']} CPUs, {info['machine']['processor']}, load average {fmt_load(info['machine']['load_average'])}"
    )
    print(", ".join(f"{name} {version}" for name, version in info["versions"].items()), flush=True)

    results: dict[str, list[dict[str, Any]]] = {}
    failures = 0
    for env_id in args.envs:
        rows = results.setdefault(env_id, [])
        for spec in plan_measurements(args, env_id):
            print(f"{env_id}: {spec.label} ...", flush=True)
            row = {"label": spec.label, **dataclasses.asdict(spec), **run_measurement(spec, args.timeout)}
            if row.get("error"):
                failures += 1
                print("  FAILED: " + row["error"].replace("\n", "\n    "), file=sys.stderr, flush=True)
            elif "skipped" in row:
                print(f"  skipped: {row['skipped']}", flush=True)
            rows.append(row)
            add_metrics(rows)
            info["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
            write_outputs(args.out, info, results)
        print("\n".join(env_section(env_id, rows)), flush=True)
    print(f"Wrote {args.out} and {args.out.with_suffix('.json')}")
    if failures:
        print(f"{failures} measurement(s) failed", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
