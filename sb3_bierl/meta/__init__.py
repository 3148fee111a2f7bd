from sb3_bierl.meta.bold_driver import BoldDriverController
from sb3_bierl.meta.controller import BaseMetaController, MetaController
from sb3_bierl.meta.history import N_FITNESS_FEATURES, FitnessHistory, GenerationSummary, generation_features
from sb3_bierl.meta.learning_rate_rule import LearningRateRule
from sb3_bierl.meta.network import ENCODERS, MetaNetwork
from sb3_bierl.meta.optuna_controller import OptunaController
from sb3_bierl.meta.space import Hyperparameter, HyperparameterSpace
from sb3_bierl.meta.two_point import TwoPointController
from sb3_bierl.meta.two_point_rule import PRETRAINED_RULE_PATH, TwoPointRule, read_rule_file, save_rule
from sb3_bierl.meta.warm_start import PRETRAINED_PATH, load_controller, read_controller_file, save_controller

#: The meta levels BiERL offers (``BiERL(meta=...)``): the paper's LSTM, the mean-pool ablation, Optuna, two rules on
#: the learning rate (the bold driver, two-point adaptation), none
META_LEVELS = ("lstm", "mean", "optuna", "bold_driver", "tpa", "none")
#: The meta levels that are rules on the learning rate alone, around OpenAI-ES's one centre (no meta network)
LEARNING_RATE_RULES = ("bold_driver", "tpa")

__all__ = [
    "ENCODERS",
    "LEARNING_RATE_RULES",
    "META_LEVELS",
    "N_FITNESS_FEATURES",
    "PRETRAINED_PATH",
    "PRETRAINED_RULE_PATH",
    "BaseMetaController",
    "BoldDriverController",
    "FitnessHistory",
    "GenerationSummary",
    "Hyperparameter",
    "HyperparameterSpace",
    "LearningRateRule",
    "MetaController",
    "MetaNetwork",
    "OptunaController",
    "TwoPointController",
    "TwoPointRule",
    "generation_features",
    "load_controller",
    "read_controller_file",
    "read_rule_file",
    "save_controller",
    "save_rule",
]
