"""Bounds of the hyperparameters the meta level adapts, on a log scale."""

from dataclasses import dataclass

import numpy as np

from sb3_bierl.es.es import ES


@dataclass(frozen=True)
class Hyperparameter:
    """
    :param name: Name of the inner hyperparameter
    :param low: Lower bound (> 0)
    :param high: Upper bound (> low)
    :param initial: Value proposed before the meta network has learned anything
    """

    name: str
    low: float
    high: float
    initial: float


class HyperparameterSpace:
    """
    Maps the meta network's outputs in (-1, 1) to hyperparameters inside user-given
    bounds, linearly in log space, and back.

    :param bounds: ``{name: (low, high)}``
    :param initial: ``{name: value}``, the starting value of each (must lie inside its bounds)
    :param adaptable: The names the inner algorithm lets a meta level set (default: OpenAI-ES's,
        ``ES.adaptable_hyperparameters``)
    :raises ValueError: on empty bounds, a name not in ``adaptable``, bounds that are not ``0 < low < high``
        and finite, or an initial value outside its bounds
    """

    def __init__(
        self,
        bounds: dict[str, tuple[float, float]],
        initial: dict[str, float],
        adaptable: tuple[str, ...] = ES.adaptable_hyperparameters,
    ):
        if not bounds:
            raise ValueError("hyperparameter_bounds is empty: give at least one of " + ", ".join(adaptable))
        self.parameters: list[Hyperparameter] = []
        for name, value in bounds.items():
            if name not in adaptable:
                raise ValueError(f"Cannot adapt {name!r}: hyperparameter_bounds keys must be among {adaptable}")
            try:
                low, high = (float(v) for v in value)
            except (TypeError, ValueError):
                raise ValueError(f"hyperparameter_bounds[{name!r}] must be a (low, high) pair, got {value!r}") from None
            if not (np.isfinite(low) and np.isfinite(high)) or low <= 0:
                raise ValueError(f"hyperparameter_bounds[{name!r}] = {value!r}: bounds must be positive and finite (log scale)")
            if high <= low:
                raise ValueError(f"hyperparameter_bounds[{name!r}] = {value!r}: low must be below high, e.g. ({min(low, high)}, {max(low, high)})")
            init = float(initial[name])
            if not low <= init <= high:
                raise ValueError(f"The initial {name} = {init} lies outside hyperparameter_bounds[{name!r}] = ({low}, {high}): move it inside")
            self.parameters.append(Hyperparameter(name, low, high, init))
        self._log_low = np.log([p.low for p in self.parameters])
        self._log_high = np.log([p.high for p in self.parameters])

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def __len__(self) -> int:
        return len(self.parameters)

    def from_unit(self, unit: np.ndarray) -> dict[str, float]:
        """:param unit: values in [-1, 1], one per hyperparameter"""
        unit = np.clip(np.asarray(unit, dtype=np.float64), -1.0, 1.0)
        log_values = self._log_low + 0.5 * (unit + 1.0) * (self._log_high - self._log_low)
        return {p.name: float(min(max(v, p.low), p.high)) for p, v in zip(self.parameters, np.exp(log_values), strict=True)}

    def to_unit(self, values: dict[str, float]) -> np.ndarray:
        """Inverse of :meth:`from_unit`."""
        log_values = np.log([values[name] for name in self.names])
        return 2.0 * (log_values - self._log_low) / (self._log_high - self._log_low) - 1.0

    def initial_unit(self) -> np.ndarray:
        return self.to_unit({p.name: p.initial for p in self.parameters})
