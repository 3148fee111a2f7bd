from sb3_bierl.evaluation.base import PopulationEvaluator, RolloutResult
from sb3_bierl.evaluation.batched_policy import BatchedPolicy
from sb3_bierl.evaluation.env_factory import make_env_factory
from sb3_bierl.evaluation.in_process import InProcessEvaluator

__all__ = ["BatchedPolicy", "InProcessEvaluator", "PopulationEvaluator", "RolloutResult", "make_env_factory"]
