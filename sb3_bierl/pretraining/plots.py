"""The meta-training curve: normalised score per meta generation."""

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np


def plot_curve(records: Sequence[dict[str, Any]], path: str | pathlib.Path, window: int = 5) -> bool:
    """
    Plot the centre's and the fixed baseline's mean normalised score per meta generation (and their running
    mean over ``window`` generations: each generation sees other tasks and starts), their difference, and the
    hyperparameters the centre's inner runs end with (geometric mean over the generation's tasks).

    :param records: ``MetaTrainer.records``
    :param path: The image to write
    :param window: Generations of the running mean
    :return: False if matplotlib is not installed or there is nothing to plot
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    if not records:
        return False
    generations = np.array([r["generation"] for r in records])
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    for key, label in (
        ("centre", "controller (centre)"),
        ("fixed", "fixed start (no controller)"),
        ("candidates", "candidates (mean)"),
    ):
        values = np.array([r[key] for r in records], dtype=np.float64)
        smooth = np.convolve(values, np.ones(window) / window, mode="valid") if len(values) >= window else values
        axes[0].plot(generations[len(generations) - len(smooth) :], smooth, label=label)
    axes[0].set_xlabel("meta generation")
    axes[0].set_ylabel(f"normalised score (running mean of {window})")
    axes[0].legend()
    advantage = np.array([r["centre"] - r["fixed"] for r in records])
    axes[1].plot(generations, advantage, ".", alpha=0.5)
    if len(advantage) >= window:
        axes[1].plot(generations[window - 1 :], np.convolve(advantage, np.ones(window) / window, mode="valid"))
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set_xlabel("meta generation")
    axes[1].set_ylabel("controller - fixed (normalised)")
    # what the controller learned: where the centre's runs end, whatever their start
    for name in records[0]["tasks"][0]["centre_final_hyperparameters"]:
        values = [
            np.exp(np.mean([np.log(t["centre_final_hyperparameters"][name]) for t in r["tasks"]])) for r in records
        ]
        axes[2].plot(generations, values, label=name)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("meta generation")
    axes[2].set_ylabel("value at the end of the centre's runs")
    axes[2].legend()
    fig.suptitle("Meta-training curve (python -m sb3_bierl.pretrain)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
