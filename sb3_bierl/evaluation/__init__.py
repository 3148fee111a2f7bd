from sb3_bierl.evaluation.base import DescriptorFn, PopulationEvaluator, RolloutResult, Transitions, merge_antithetic
from sb3_bierl.evaluation.batched_policy import BatchedMlpSpec, BatchedPolicy
from sb3_bierl.evaluation.descriptors import default_behaviour_descriptor
from sb3_bierl.evaluation.env_factory import DEFAULT_MAX_EPISODE_STEPS, EnvCopier, has_time_limit, make_env_factory
from sb3_bierl.evaluation.in_process import InProcessEvaluator
from sb3_bierl.evaluation.processes import ProcessEvaluator

__all__ = [
    "DEFAULT_MAX_EPISODE_STEPS",
    "EnvCopier",
    "BatchedMlpSpec",
    "BatchedPolicy",
    "DescriptorFn",
    "InProcessEvaluator",
    "PopulationEvaluator",
    "ProcessEvaluator",
    "RolloutResult",
    "Transitions",
    "default_behaviour_descriptor",
    "has_time_limit",
    "make_env_factory",
    "merge_antithetic",
]
