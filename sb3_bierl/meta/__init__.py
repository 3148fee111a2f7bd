from sb3_bierl.meta.controller import BaseMetaController, MetaController
from sb3_bierl.meta.history import N_FITNESS_FEATURES, FitnessHistory, GenerationSummary, generation_features
from sb3_bierl.meta.network import ENCODERS, MetaNetwork
from sb3_bierl.meta.optuna_controller import OptunaController
from sb3_bierl.meta.space import Hyperparameter, HyperparameterSpace
from sb3_bierl.meta.warm_start import PRETRAINED_PATH, load_controller, read_controller_file, save_controller

#: The meta levels BiERL offers (``BiERL(meta=...)``): the paper's LSTM, the mean-pool ablation, Optuna, none
META_LEVELS = ("lstm", "mean", "optuna", "none")

__all__ = [
    "ENCODERS",
    "META_LEVELS",
    "N_FITNESS_FEATURES",
    "PRETRAINED_PATH",
    "BaseMetaController",
    "FitnessHistory",
    "GenerationSummary",
    "Hyperparameter",
    "HyperparameterSpace",
    "MetaController",
    "MetaNetwork",
    "OptunaController",
    "generation_features",
    "load_controller",
    "read_controller_file",
    "save_controller",
]
