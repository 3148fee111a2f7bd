"""Warm start: a meta controller's network saved on its own, and loaded onto another task."""

import os
import pathlib
from typing import TYPE_CHECKING, Any

import torch as th

from sb3_bierl.meta.files import load_saved
from sb3_bierl.meta.space import HyperparameterSpace
from sb3_bierl.meta.two_point_rule import FORMAT as RULE_FORMAT

if TYPE_CHECKING:
    from sb3_bierl.meta.controller import MetaController

FORMAT = "sb3-bierl-meta-controller"
#: Version 2: ten fitness features per generation (version 1 had five), so older files cannot be read
VERSION = 2
#: The controller shipped with the package (``python -m sb3_bierl.pretrain`` wrote it)
PRETRAINED_PATH = pathlib.Path(__file__).parent / "pretrained" / "meta_controller.pt"


def resolve_path(path: str | os.PathLike) -> pathlib.Path:
    """``"pretrained"`` is the controller shipped with the package; anything else is a file path."""
    return PRETRAINED_PATH if os.fspath(path) == "pretrained" else pathlib.Path(path)


def save_controller(controller: "MetaController", path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
    """
    Save the network of ``controller`` (its current centre), its sizes and the hyperparameters it sets.

    :param controller: The meta controller
    :param path: Output file (``.pt``)
    :param metadata: Anything else worth recording (e.g. the tasks it was trained on)
    """
    network = controller.network
    data = {
        "format": FORMAT,
        "version": VERSION,
        "n_features": network.n_features,
        "hyperparameters": controller.space.names,
        "bounds": {p.name: [p.low, p.high] for p in controller.space.parameters},
        "encoder": network.encoder_type,
        "history_length": controller.history.length,
        "hidden_size": network.hidden_size,
        "generator_size": network.generator_size,
        "phi": th.as_tensor(controller.phi, dtype=th.float64),
        "metadata": dict(metadata or {}),
    }
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    th.save(data, path)


def read_controller_file(path: str | os.PathLike) -> dict[str, Any]:
    """:return: the contents of a file written by :func:`save_controller`; a clear error otherwise"""
    path = resolve_path(path)
    return load_saved(
        path,
        "meta controller",
        FORMAT,
        VERSION,
        "write one with MetaController.save() or pre-train one with python -m sb3_bierl.pretrain (the meta features "
        "of other format versions differ)",
        {RULE_FORMAT: "a pre-trained two-point rule, not a meta network: use it with meta='tpa'"},
    )


def load_controller(path: str | os.PathLike, space: HyperparameterSpace, **kwargs: Any) -> "MetaController":
    """
    A :class:`MetaController` for ``space`` with the network saved at ``path`` (a fresh meta optimiser).

    :param path: A file written by :func:`save_controller`, or ``"pretrained"``
    :param space: Hyperparameters to adapt; the names (in order) must be those of the saved controller
    :param kwargs: Other :class:`MetaController` arguments
    """
    from sb3_bierl.meta.controller import MetaController

    data = read_controller_file(path)
    if list(data["hyperparameters"]) != space.names:
        raise ValueError(
            f"The warm-start controller {os.fspath(resolve_path(path))!r} sets {list(data['hyperparameters'])}, "
            f"but this model adapts {space.names}: pass hyperparameter_bounds with the same keys, in the same order, "
            "or pre-train a controller for these hyperparameters (python -m sb3_bierl.pretrain)"
        )
    controller = MetaController(
        space,
        encoder=data["encoder"],
        history_length=int(data["history_length"]),
        hidden_size=int(data["hidden_size"]),
        generator_size=int(data["generator_size"]),
        **kwargs,
    )
    phi = data["phi"].numpy()
    if phi.shape != controller.phi.shape:
        raise ValueError(f"{os.fspath(path)!r}: the saved network has {phi.size} parameters, expected {controller.phi.size}")
    controller.set_phi(phi)
    controller.warm_start_metadata = dict(data.get("metadata", {}))
    return controller
