"""
Main job: a short BiERL training run that shows what it learned and the hyperparameters it chose.

    python -m sb3_bierl --env LunarLanderContinuous-v3 --timesteps 500000 --seed 0 --save bierl_lander
"""

import argparse
import time

import gymnasium as gym
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_bierl import BiERL


class HyperparameterTrace(BaseCallback):
    """Prints the hyperparameters chosen by the meta level every ``every`` generations."""

    def __init__(self, every: int = 5):
        super().__init__()
        self.every = every
        self.generations = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.generations += 1
        if self.generations % self.every == 0:
            h = self.model.hyperparameters
            mean = self.model.last_rollout.returns.mean()
            print(
                f"steps {self.num_timesteps:>9,d}  population mean return {mean:9.1f}  "
                f"sigma {h['sigma']:.4f}  learning rate {h['learning_rate']:.4f}"
            )


def evaluate(model: BiERL, env_id: str, episodes: int, seed: int) -> tuple[float, float]:
    env = Monitor(gym.make(env_id))
    env.reset(seed=seed)
    return evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train BiERL with its default hyperparameters and report the result.")
    parser.add_argument("--env", default="CartPole-v1", help="gymnasium environment id")
    parser.add_argument("--timesteps", type=int, default=150_000, help="environment steps, meta level included")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--save", default=None, help="where to save the trained model (.zip)")
    args = parser.parse_args()

    model = BiERL("MlpPolicy", args.env, seed=args.seed)
    before, _ = evaluate(model, args.env, args.eval_episodes, seed=10_000 + args.seed)
    print(f"BiERL on {args.env}: {args.timesteps:,d} environment steps, seed {args.seed}")
    start = time.time()
    model.learn(args.timesteps, callback=HyperparameterTrace())
    elapsed = time.time() - start
    after, after_std = evaluate(model, args.env, args.eval_episodes, seed=10_000 + args.seed)
    print(f"\nmean return over {args.eval_episodes} episodes: {before:.1f} before training, {after:.1f} ± {after_std:.1f} after")
    print(f"{model.num_timesteps:,d} steps in {elapsed:.0f} s ({model.num_timesteps / elapsed:,.0f} steps/s), "
          f"{model.meta_controller.n_meta_updates} meta updates")
    if args.save:
        model.save(args.save)
        print(f"saved to {args.save}.zip; load it with BiERL.load({args.save!r})")


if __name__ == "__main__":
    main()
