"""
Main job: a short training run that shows what it learned and, for BiERL, the hyperparameters its meta level chose.

    python -m sb3_bierl --env LunarLanderContinuous-v3 --timesteps 500000 --seed 0 --save bierl_lander
    python -m sb3_bierl --algo es --env Pendulum-v1 --timesteps 300000
"""

import argparse
import time
from collections.abc import Sequence

import gymnasium as gym
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_bierl import ALGORITHMS, ES, BiERL
from sb3_bierl.meta import META_LEVELS

#: Progress lines printed during training
N_PROGRESS_LINES = 10


class ProgressLines(BaseCallback):
    """
    Prints, every ``every`` environment steps (at the end of the generation that crosses the mark), the population's
    mean return and the generation's hyperparameters; for BiERL also its meta updates so far.

    :param every: Steps between two lines
    """

    def __init__(self, every: int):
        super().__init__()
        self.every = max(1, every)
        self.next_line = self.every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps < self.next_line:
            return
        self.next_line += self.every * ((self.num_timesteps - self.next_line) // self.every + 1)
        h = self.model.hyperparameters
        line = (
            f"steps {self.num_timesteps:>9,d}  population mean return {self.model.last_rollout.returns.mean():9.1f}  "
            f"sigma {h['sigma']:.4f}  learning rate {h['learning_rate']:.4f}"
        )
        meta = getattr(self.model, "meta_controller", None)
        if meta is not None:
            line += f"  meta updates {meta.n_meta_updates}"
        print(line, flush=True)


def evaluate(model: ES, env_id: str, episodes: int, seed: int) -> tuple[float, float]:
    """:return: mean and std of the deterministic return over ``episodes`` episodes of a fresh env"""
    env = Monitor(gym.make(env_id))
    env.reset(seed=seed)
    return evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True)


#: What the quick start says of each meta level before training
META_DESCRIPTIONS: dict[str, str] = {
    "tpa": (
        "Meta level: two-point step-size adaptation of the learning rate. Each generation two extra episodes, along "
        "and against the last step, tell a step too short from one that overshot; the rate moves accordingly (a meta "
        "update), sigma stays fixed. Their steps count in the budget."
    ),
    **dict.fromkeys(("lstm", "mean"), (
        "Every generation is a meta update: its population is shared among the meta network's proposals of sigma "
        "and learning rate, and each proposal is scored by the returns of its share (no extra step); the meta "
        "network takes a step when its proposals' scores differ significantly."
    )),
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_bierl",
        description="Train BiERL (or another algorithm of the package) with its default hyperparameters and report the result.",
    )
    parser.add_argument("--algo", default="bierl", choices=sorted(ALGORITHMS), help="algorithm (default: %(default)s)")
    parser.add_argument("--env", default="CartPole-v1", help="gymnasium environment id (default: %(default)s)")
    parser.add_argument("--timesteps", type=int, default=150_000, help="environment steps, meta level included (default: %(default)s)")
    parser.add_argument(
        "--meta", default=None, choices=META_LEVELS,
        help="BiERL's meta level (default: BiERL's, tpa: two-point adaptation of the learning rate)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="deterministic evaluation episodes (default: %(default)s)")
    parser.add_argument("--save", default=None, help="where to save the trained model (.zip)")
    args = parser.parse_args(argv)
    if args.timesteps < 1 or args.eval_episodes < 1:
        parser.error("--timesteps and --eval-episodes must be at least 1")
    try:
        gym.spec(args.env)
    except gym.error.Error as error:
        parser.error(f"--env {args.env}: {error}")

    algorithm = ALGORITHMS[args.algo]
    if args.meta is not None and not issubclass(algorithm, BiERL):
        parser.error(f"--meta sets BiERL's meta level; --algo {args.algo} has none")
    model = algorithm("MlpPolicy", args.env, seed=args.seed, **({} if args.meta is None else {"meta": args.meta}))
    before, _ = evaluate(model, args.env, args.eval_episodes, seed=10_000 + args.seed)
    print(f"{algorithm.__name__} on {args.env}: {args.timesteps:,d} environment steps, seed {args.seed}")
    if isinstance(model, BiERL) and model.meta in META_DESCRIPTIONS:
        print(META_DESCRIPTIONS[model.meta])
    start = time.time()
    model.learn(args.timesteps, callback=ProgressLines(args.timesteps // N_PROGRESS_LINES))
    elapsed = time.time() - start
    after, after_std = evaluate(model, args.env, args.eval_episodes, seed=10_000 + args.seed)
    print(f"\nmean return over {args.eval_episodes} episodes: {before:.1f} before training, {after:.1f} ± {after_std:.1f} after")
    summary = f"{model.num_timesteps:,d} steps in {elapsed:.0f} s ({model.num_timesteps / elapsed:,.0f} steps/s)"
    if isinstance(model, BiERL) and model.meta_controller is not None:
        meta = model.meta_controller
        summary += f", {meta.n_meta_updates} meta updates"
        if hasattr(meta, "n_meta_steps"):  # the meta network's (not Optuna's)
            summary += f" ({meta.n_meta_steps} of them stepped the meta network)"
    print(summary)
    if args.save:
        model.save(args.save)
        print(f"saved to {args.save}.zip; load it with {algorithm.__name__}.load({args.save!r})")


if __name__ == "__main__":
    main()
