"""BiERL around the other ES-family algorithms: the same meta level, another inner level.

``BiERL(..., inner="nsr_es")`` builds one of these classes; ``BiERL.load`` finds it from the saved
``inner``. Each is ``BiERL`` first in the method resolution order, so the meta level's arguments and
``learn`` come from :class:`~sb3_bierl.BiERL`, and the generation, rollouts and trial protocol from the
inner algorithm.
"""

from typing import ClassVar

from sb3_bierl.bierl.bierl import INNER_ALGORITHMS, BiERL
from sb3_bierl.esac import ESAC
from sb3_bierl.nsr_es import NSRAES, NSRES


class BiERLNSRES(BiERL, NSRES):
    """BiERL whose inner level is NSR-ES (:class:`~sb3_bierl.NSRES`); the meta level also sets the novelty weight."""

    inner: ClassVar[str] = "nsr_es"
    default_meta_bounds: ClassVar[dict[str, tuple[float, float]]] = {"novelty_weight": (0.05, 0.95)}


class BiERLNSRAES(BiERL, NSRAES):
    """BiERL whose inner level is NSRA-ES (:class:`~sb3_bierl.NSRAES`): NSRA-ES adapts its novelty weight itself."""

    inner: ClassVar[str] = "nsra_es"


class BiERLESAC(BiERL, ESAC):
    """BiERL whose inner level is ESAC (:class:`~sb3_bierl.ESAC`). When the meta level adapts ``sigma``,
    ESAC's automatic mutation tuning is off; otherwise it keeps tuning ``sigma`` itself."""

    inner: ClassVar[str] = "esac"

    def _setup_model(self) -> None:
        super()._setup_model()
        self.adapt_sigma_automatically = self.meta_controller is None or "sigma" not in self.meta_controller.space.names


VARIANTS: dict[str, type[BiERL]] = {"es": BiERL, "nsr_es": BiERLNSRES, "nsra_es": BiERLNSRAES, "esac": BiERLESAC}


def bierl_class(inner: str) -> type[BiERL]:
    """:return: the BiERL class around the inner algorithm ``inner`` (one of ``INNER_ALGORITHMS``)"""
    if inner not in VARIANTS:
        raise ValueError(f"inner must be one of {INNER_ALGORITHMS}, got {inner!r}")
    return VARIANTS[inner]
