"""The meta-training curve: normalised score per meta generation."""

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np


def gain_points(records: Sequence[dict[str, Any]], name: str = "sigma") -> tuple[np.ndarray, np.ndarray]:
    """
    :param records: ``MetaTrainer.records``
    :param name: An adapted hyperparameter
    :return: (n,) policy gains and (n,) values of ``name`` at the end of the centre's runs, over the ``n``
        instances with a gain (other than 1)
    """
    tasks = [t for r in records for t in r["tasks"] if t.get("policy_gain", 1.0) != 1.0]
    gains = np.array([t["policy_gain"] for t in tasks], dtype=np.float64)
    values = np.array([t["centre_final_hyperparameters"][name] for t in tasks], dtype=np.float64)
    return gains, values


def gain_response(records: Sequence[dict[str, Any]], name: str = "sigma") -> tuple[float, int]:
    """
    Whether the controller reads the history: the least-squares slope of ``log`` (the value of ``name`` at the end
    of the centre's inner run) on ``log`` (the instance's policy gain, :class:`~sb3_bierl.pretraining.policy_gain.PolicyGain`),
    over the instances with a gain. A controller that moves every run to the same place has slope 0; one that
    finds the step size each instance needs, about -1 (a gain ``g`` scales the right sigma by about ``1 / g``).

    :param records: ``MetaTrainer.records`` (or a slice: e.g. the last 20 meta generations)
    :param name: An adapted hyperparameter
    :return: (slope, number of instances); (nan, n) with fewer than 3 instances or a single gain
    """
    gains, values = gain_points(records, name)
    if gains.size < 3 or np.unique(gains).size < 2:
        return float("nan"), int(gains.size)
    return float(np.polyfit(np.log(gains), np.log(values), 1)[0]), int(gains.size)


def plot_curve(records: Sequence[dict[str, Any]], path: str | pathlib.Path, window: int = 5) -> bool:
    """
    Plot the centre's and the fixed baseline's mean normalised score per meta generation (and their running
    mean over ``window`` generations: each generation sees other tasks and starts), their difference, and the
    hyperparameters the centre's inner runs end with (geometric mean over the generation's tasks); for a
    pre-trained two-point rule, also its constants after each generation's step, relative to TPA's published ones.

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
    with_gains = gain_points(records)[0].size > 0
    fig, axes = plt.subplots(1, 4 if with_gains else 3, figsize=(21 if with_gains else 16, 4))
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
    if "rule" in records[0]:  # a pre-trained two-point rule: its constants after each meta generation's step
        for name, label in (("learning_rate_factor", "rule: start factor"), ("damping", "rule: damping / 4")):
            scale = 4.0 if name == "damping" else 1.0
            axes[2].plot(generations, [r["rule"][name] / scale for r in records], "--", label=label)
        axes[2].plot(generations, [r["rule"]["cumulation"] / 0.3 for r in records], ":", label="rule: cumulation / 0.3")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("meta generation")
    axes[2].set_ylabel("end of the centre's runs" + ("; rule after the step" if "rule" in records[0] else ""))
    axes[2].legend()
    if with_gains:  # does the controller set the step size each instance needs? (gain_response)
        half = len(records) // 2
        for part, label in ((records[:half], "first half"), (records[half:], "second half")):
            gains, sigmas = gain_points(part)
            slope, _ = gain_response(part)
            axes[3].plot(gains, sigmas, ".", alpha=0.6, label=f"{label} of meta-training (slope {slope:.2f})")
        axes[3].set_xscale("log")
        axes[3].set_yscale("log")
        axes[3].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # the minor labels overlap
        axes[3].set_xlabel("policy gain of the instance")
        axes[3].set_ylabel("sigma at the end of the centre's run")
        axes[3].legend()
    fig.suptitle("Meta-training curve (python -m sb3_bierl.pretrain)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
