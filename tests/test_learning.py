"""One short learning run per algorithm, on tasks each solves within a small budget."""

import gymnasium as gym
import pytest
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_bierl import ES, BiERL


def final_return(model, env_id: str, seed: int = 100) -> float:
    env = Monitor(gym.make(env_id))
    env.reset(seed=seed)
    mean, _ = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True)
    return mean


@pytest.mark.parametrize("algo", [ES, BiERL])
def test_solves_cartpole_discrete_actions(algo):
    model = algo("MlpPolicy", "CartPole-v1", n_pairs=8, seed=2)
    model.learn(100_000)
    assert final_return(model, "CartPole-v1") >= 195


@pytest.mark.parametrize("algo", [ES, BiERL])
def test_solves_tracking_task_continuous_actions(algo):
    """Counting-v0: the best action copies two observation entries; a random linear policy scores about -10 to -20."""
    model = algo("LinearPolicy", "Counting-v0", n_pairs=8, seed=0)
    assert final_return(model, "Counting-v0") < -5
    model.learn(50_000)
    assert final_return(model, "Counting-v0") > -1.0
