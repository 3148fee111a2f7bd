"""Long-horizon pre-training of the meta controller (issue 10): ES on its weights, scored by whole inner runs."""

from sb3_bierl.pretraining.inner_run import InnerRun, run_inner
from sb3_bierl.pretraining.meta_trainer import MetaTrainer
from sb3_bierl.pretraining.suite import DEFAULT_SUITE, HELD_OUT, PretrainingTask

__all__ = ["DEFAULT_SUITE", "HELD_OUT", "InnerRun", "MetaTrainer", "PretrainingTask", "run_inner"]
