"""Issue 14: where a warm worker's time goes, and two candidates for removal.

Usage (run from a checkout, with PYTHONPATH=<checkout>):
    python docs/benchmarks/issue14_worker_overhead.py profile HalfCheetah-v5   # cProfile of one 32-candidate rollout
    python docs/benchmarks/issue14_worker_overhead.py wrappers                  # gym.make's check wrappers
    python docs/benchmarks/issue14_worker_overhead.py forward                   # batched forward pass: 4 ways
    python docs/benchmarks/issue14_worker_overhead.py gap HalfCheetah-v5        # time between generations, warm
    python docs/benchmarks/issue14_worker_overhead.py actions                   # raw stepping, 3 kinds of actions
"""

import cProfile
import pstats
import sys
import time

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker

from sb3_bierl import ES
from sb3_bierl.evaluation.env_factory import wrapper_chain

th.set_num_threads(1)


def profile(env_id: str) -> None:
    model = ES("MlpPolicy", env_id, n_pairs=16, n_workers=1, seed=0, policy_kwargs={"net_arch": [64, 64]})
    rng = np.random.default_rng(0)
    params = model.strategy.theta + 0.02 * rng.standard_normal((32, model.strategy.dim))
    model.evaluator.evaluate(model.policy, params, np.arange(32)[:, None])  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    model.evaluator.evaluate(model.policy, params, np.arange(32)[:, None] + 1000)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def without_checks(env: gym.Env) -> gym.Env:
    """The same env without the PassiveEnvChecker and OrderEnforcing that gym.make adds."""
    layers = wrapper_chain(env)
    inner = layers[-1]
    for layer in reversed([w for w in layers[:-1] if not isinstance(w, (PassiveEnvChecker, OrderEnforcing))]):
        layer.env, inner = inner, layer
    return inner


def wrappers() -> None:
    # their own cost, on an env whose step does nothing (robust to a noisy host): microseconds per step
    class Idle(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (3,))
        action_space = gym.spaces.Box(-1, 1, (1,))

        def reset(self, *, seed=None, options=None):
            return np.zeros(3, np.float32), {}

        def step(self, action):
            return np.zeros(3, np.float32), 0.0, False, False, {}

    idle = {"with": OrderEnforcing(PassiveEnvChecker(Idle())), "without": Idle()}
    cost = {}
    for name, env in idle.items():
        env.reset(seed=0)
        env.step(np.zeros(1, np.float32))  # the checker checks the first step only
        start = time.process_time()
        for _ in range(200_000):
            env.step(None)
        cost[name] = (time.process_time() - start) / 200_000 * 1e6
    print(f"check wrappers' own cost: {cost['with'] - cost['without']:.2f} us per step")
    for env_id in ("HalfCheetah-v5", "Hopper-v5"):
        envs = {"with": gym.make(env_id), "without": without_checks(gym.make(env_id))}
        actions = [envs["with"].action_space.sample() for _ in range(1000)]
        rates: dict[str, list[float]] = {name: [] for name in envs}
        for _ in range(5):  # interleaved, CPU time
            for name, env in envs.items():
                env.reset(seed=0)
                start = time.process_time()
                for i in range(10_000):
                    _, _, terminated, truncated, _ = env.step(actions[i % 1000])
                    if terminated or truncated:
                        env.reset()
                rates[name].append(10_000 / (time.process_time() - start))
        ratio = np.median(rates["without"]) / np.median(rates["with"])
        print(env_id, {k: int(np.median(v)) for k, v in rates.items()}, "without / with:", round(float(ratio), 3))


def forward() -> None:
    rng = np.random.default_rng(0)
    for n in (16, 32):
        x = rng.standard_normal((n, 1, 17)).astype(np.float32)
        weights = [rng.standard_normal((n, a, b)).astype(np.float32) for a, b in ((17, 64), (64, 64), (64, 6))]
        biases = [rng.standard_normal((n, 1, b)).astype(np.float32) for b in (64, 64, 6)]
        transposed = [np.ascontiguousarray(w.transpose(0, 2, 1)) for w in weights]
        tensors = [th.from_numpy(a) for a in (x, *weights, *biases)]

        def layers(step):  # three layers, tanh between
            h = x
            for k in range(3):
                h = step(h, k)
                if k < 2:
                    np.tanh(h, out=h)
            return h

        ways = {
            "np.matmul (ours)": lambda: layers(lambda h, k: np.matmul(h, weights[k]) + biases[k]),
            "np.einsum": lambda: layers(lambda h, k: np.einsum("bxi,bij->bxj", h, weights[k]) + biases[k]),
            "broadcast-multiply-sum": lambda: layers(
                lambda h, k: (transposed[k] * h).sum(-1, keepdims=True).transpose(0, 2, 1) + biases[k]
            ),
            "torch baddbmm": lambda: th.baddbmm(
                tensors[6],
                th.baddbmm(tensors[5], th.baddbmm(tensors[4], tensors[0], tensors[1]).tanh_(), tensors[2]).tanh_(),
                tensors[3],
            ),
        }
        for name, run in ways.items():
            start = time.process_time()
            for _ in range(2000):
                run()
            per_call = (time.process_time() - start) / 2000 * 1e6
            print(f"{n} candidates, {name}: {per_call / n:.2f} us per candidate and step")


def gap(env_id: str) -> None:
    from sb3_bierl.evaluation.pool import WorkerPoolEvaluator

    spans = []
    dispatch = WorkerPoolEvaluator._dispatch

    def timed(self, request, n_chunks):
        start = time.perf_counter()
        results = dispatch(self, request, n_chunks)
        spans.append((start, time.perf_counter()))
        return results

    WorkerPoolEvaluator._dispatch = timed
    model = ES(
        "MlpPolicy", env_id, n_pairs=16, n_workers=2, seed=0, backend="processes", policy_kwargs={"net_arch": [64, 64]}
    )
    model.learn(64_000)  # warm-up: the workers' start
    spans.clear()
    start = time.perf_counter()
    model.learn(160_000, reset_num_timesteps=False)
    wall = time.perf_counter() - start
    inside = sum(b - a for a, b in spans)
    between = np.mean([spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)])
    print(
        f"{len(spans)} generations, wall {wall:.2f} s, in _dispatch {inside / wall:.0%}, "
        f"between two {between * 1e3:.0f} ms"
    )


def actions() -> None:
    rng = np.random.default_rng(0)
    for env_id in ("HalfCheetah-v5", "Hopper-v5", "Ant-v5"):
        env = gym.make(env_id)
        space = env.action_space
        kinds = {
            "zero": [np.zeros(space.shape, np.float32)] * 1000,
            "random 0.1": list((0.1 * rng.uniform(-1, 1, (1000, *space.shape))).astype(np.float32)),
            "random full": list(rng.uniform(space.low, space.high, (1000, *space.shape)).astype(np.float32)),
        }
        rates: dict[str, list[float]] = {name: [] for name in kinds}
        for _ in range(3):  # interleaved, CPU time
            for name, chosen in kinds.items():
                env.reset(seed=0)
                start = time.process_time()
                for i in range(8000):
                    _, _, terminated, truncated, _ = env.step(chosen[i % 1000])
                    if terminated or truncated:
                        env.reset()
                rates[name].append(8000 / (time.process_time() - start))
        print(env_id, {name: int(np.median(v)) for name, v in rates.items()}, "steps per CPU second")


if __name__ == "__main__":
    commands = {"profile": lambda: profile(sys.argv[2]), "wrappers": wrappers, "forward": forward}
    commands |= {"gap": lambda: gap(sys.argv[2]), "actions": actions}
    commands[sys.argv[1]]()
