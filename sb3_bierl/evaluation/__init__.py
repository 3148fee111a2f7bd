from sb3_bierl.evaluation.base import PopulationEvaluator, RolloutResult
from sb3_bierl.evaluation.batched_policy import BatchedPolicy
from sb3_bierl.evaluation.env_factory import make_env_factory
from sb3_bierl.evaluation.in_process import InProcessEvaluator
from sb3_bierl.evaluation.processes import ProcessEvaluator

__all__ = ["BatchedPolicy", "InProcessEvaluator", "PopulationEvaluator", "ProcessEvaluator", "RolloutResult", "make_env_factory"]
