from sb3_bierl.strategies.noise import NoiseTable
from sb3_bierl.strategies.openai_es import OpenAIES, Population
from sb3_bierl.strategies.optimizers import Adam
from sb3_bierl.strategies.ranks import centered_ranks, finite_or_worst

__all__ = ["Adam", "NoiseTable", "OpenAIES", "Population", "centered_ranks", "finite_or_worst"]
