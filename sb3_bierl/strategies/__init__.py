from sb3_bierl.strategies.noise import NoiseTable
from sb3_bierl.strategies.novelty import AdaptiveNoveltyWeight, NoveltyArchive, combined_fitness, select_by_novelty
from sb3_bierl.strategies.openai_es import DirectedPairs, OpenAIES, Population, merge_populations
from sb3_bierl.strategies.optimizers import Adam
from sb3_bierl.strategies.ranks import centered_ranks, finite_or_worst

__all__ = [
    "Adam",
    "AdaptiveNoveltyWeight",
    "DirectedPairs",
    "NoiseTable",
    "NoveltyArchive",
    "OpenAIES",
    "Population",
    "centered_ranks",
    "combined_fitness",
    "finite_or_worst",
    "merge_populations",
    "select_by_novelty",
]
