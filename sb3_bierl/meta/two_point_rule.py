"""A pre-trained two-point rule: TPA's constants and starting learning rate, learned offline (issue 10), in a file."""

import os
import pathlib
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch as th

from sb3_bierl.meta.files import load_saved

FORMAT = "sb3-bierl-tpa-rule"
VERSION = 1
#: The rule shipped with the package (``python -m sb3_bierl.pretrain --meta tpa`` wrote it)
PRETRAINED_RULE_PATH = pathlib.Path(__file__).parent / "pretrained" / "tpa_rule.pt"
#: pycma's constants (``CMAAdaptSigmaTPA``'s fallback damping and cumulation): the rule at ``phi = 0``
DEFAULT_DAMPING = 4.0
DEFAULT_CUMULATION = 0.3


def _logit(p: float) -> float:
    """:param p: A probability in (0, 1). :return: ``log(p / (1 - p))``"""
    return float(np.log(p / (1.0 - p)))


@dataclass(frozen=True)
class TwoPointRule:
    """
    The constants of :class:`~sb3_bierl.meta.TwoPointController` a pre-training can learn. Pre-training (meta ES)
    moves an unconstrained vector ``phi`` of three numbers; ``phi = 0`` is TPA as published (pycma's constants,
    the given learning rate):

    - ``learning_rate_factor = exp(phi[0])``: the first generation's learning rate is the model's times this
      (within the rule's bounds and step radius);
    - ``damping = 4 exp(-phi[1])``: ``d`` in ``learning_rate *= exp(s / d)`` (phi[1] > 0: a faster rule);
    - ``cumulation = sigmoid(logit(0.3) + phi[2])``: the weight of the newest test in ``s``.

    :param learning_rate_factor: Factor on the model's learning rate at the start (> 0)
    :param damping: ``d`` (> 0)
    :param cumulation: ``c``, in (0, 1]
    :raises ValueError: on a value outside those ranges
    """

    learning_rate_factor: float = 1.0
    damping: float = DEFAULT_DAMPING
    cumulation: float = DEFAULT_CUMULATION

    #: Length of ``phi``
    N_PARAMETERS: ClassVar[int] = 3

    def __post_init__(self) -> None:
        if not (np.isfinite(self.learning_rate_factor) and self.learning_rate_factor > 0):
            raise ValueError(f"learning_rate_factor must be a factor > 0, got {self.learning_rate_factor!r}")
        if not (np.isfinite(self.damping) and self.damping > 0):
            raise ValueError(f"damping must be > 0, got {self.damping!r}")
        if not (np.isfinite(self.cumulation) and 0.0 < self.cumulation <= 1.0):
            raise ValueError(f"cumulation must be in (0, 1], got {self.cumulation!r}")

    @classmethod
    def from_phi(cls, phi: np.ndarray) -> "TwoPointRule":
        """
        :param phi: (3,) the unconstrained parameters the meta ES moves
        :return: the rule they map to
        :raises ValueError: if ``phi`` is not 3 finite numbers
        """
        phi = np.asarray(phi, dtype=np.float64)
        if phi.shape != (cls.N_PARAMETERS,) or not np.all(np.isfinite(phi)):
            raise ValueError(f"phi must be {cls.N_PARAMETERS} finite numbers, got {phi!r}")
        cumulation = DEFAULT_CUMULATION  # exactly pycma's at phi[2] = 0 (sigmoid(logit(0.3)) is not 0.3 in floats)
        if phi[2] != 0.0:
            cumulation = 1.0 / (1.0 + np.exp(-(_logit(DEFAULT_CUMULATION) + phi[2])))
        return cls(float(np.exp(phi[0])), DEFAULT_DAMPING * float(np.exp(-phi[1])), float(min(cumulation, 1.0)))

    def to_phi(self) -> np.ndarray:
        """:return: (3,) the ``phi`` of this rule (:meth:`from_phi`'s inverse, for a cumulation below 1)"""
        cumulation = min(self.cumulation, 1.0 - 1e-12)
        return np.array(
            [
                np.log(self.learning_rate_factor),
                np.log(DEFAULT_DAMPING / self.damping),
                _logit(cumulation) - _logit(DEFAULT_CUMULATION),
            ]
        )


def resolve_rule_path(path: str | os.PathLike) -> pathlib.Path:
    """``"pretrained"`` is the rule shipped with the package; anything else is a file path."""
    return PRETRAINED_RULE_PATH if os.fspath(path) == "pretrained" else pathlib.Path(path)


def save_rule(rule: TwoPointRule, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
    """
    :param rule: The rule's constants
    :param path: Output file (``.pt``)
    :param metadata: Anything else worth recording (the pre-training command, commit and curve)
    """
    data = {"format": FORMAT, "version": VERSION, "rule": asdict(rule), "metadata": dict(metadata or {})}
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    th.save(data, path)


def read_rule_file(path: str | os.PathLike) -> tuple[TwoPointRule, dict[str, Any]]:
    """
    :param path: A file written by :func:`save_rule`, or ``"pretrained"``
    :return: the rule and the file's metadata
    :raises FileNotFoundError: if there is no file
    :raises ValueError: if it is not a saved rule (a meta network's file says so), or of another format version
    """
    from sb3_bierl.meta.warm_start import FORMAT as NETWORK_FORMAT

    resolved = resolve_rule_path(path)
    data = load_saved(
        resolved,
        "two-point rule",
        FORMAT,
        VERSION,
        "pre-train one with python -m sb3_bierl.pretrain --meta tpa",
        {
            NETWORK_FORMAT: "a meta network (a warm start for meta='lstm' or 'mean'), not a two-point rule: use it with "
            "meta='lstm', or give meta='tpa' a file of python -m sb3_bierl.pretrain --meta tpa"
        },
    )
    fields = {"learning_rate_factor", "damping", "cumulation"}
    if not isinstance(data.get("rule"), dict) or set(data["rule"]) != fields:
        raise ValueError(
            f"{os.fspath(resolved)!r} is not a saved two-point rule: its 'rule' must give {sorted(fields)}"
        )
    return TwoPointRule(**data["rule"]), dict(data.get("metadata", {}))
