from sb3_bierl.meta.controller import MetaController
from sb3_bierl.meta.history import FitnessHistory, generation_features
from sb3_bierl.meta.network import ENCODERS, MetaNetwork
from sb3_bierl.meta.space import ADAPTABLE, Hyperparameter, HyperparameterSpace

__all__ = [
    "ADAPTABLE",
    "ENCODERS",
    "FitnessHistory",
    "Hyperparameter",
    "HyperparameterSpace",
    "MetaController",
    "MetaNetwork",
    "generation_features",
]
