"""
Can the controller's trained readout make its proposals depend on the history? (issue 10, session 10)

For a controller file (default: the shipped one) and for a new network with ``standardise_features``: over 200 random
histories (fitness features uniform in [-1, 1], hyperparameters in unit scale uniform in [-2/3, 2/3]), the spread of
the fixed hidden layer's units (the readout's inputs), the spread of the centre's proposals across histories, and the
spread of the proposals of the meta ES's candidates (readout perturbed with sigma 0.1, as in pre-training) for one
history. In unit scale: 1 unit is a factor 8 of a hyperparameter.

    python docs/benchmarks/meta_feature_spread/feature_spread.py [controller file]
"""

import sys

import numpy as np
import torch as th
from torch.nn.utils import vector_to_parameters

from sb3_bierl.meta.controller import MetaController
from sb3_bierl.meta.warm_start import load_controller
from sb3_bierl.pretraining.meta_trainer import default_space


def spread(controller: MetaController, label: str, n: int = 200) -> None:
    rng = np.random.default_rng(0)
    net, theta = controller.network, controller.strategy.theta.copy()

    def history() -> np.ndarray:
        return np.concatenate([rng.uniform(-1, 1, (10, 10)), rng.uniform(-2 / 3, 2 / 3, (10, 2))], axis=1).astype(
            np.float32
        )

    hidden, centre, candidates = [], [], []
    for _ in range(n):
        rows = history()
        vector_to_parameters(th.as_tensor(controller.phi, dtype=th.float32), net.parameters())
        with th.no_grad():
            hidden.append(net.generator[:-1](net.encode(th.as_tensor(rows)[None]))[0].numpy())
        controller.history.rows.clear()
        controller.history.rows.extend(rows)
        centre.append(controller.space.to_unit(controller.propose()))
        perturbed = [
            controller.space.to_unit(controller.propose(theta + 0.1 * rng.standard_normal(theta.size)))
            for _ in range(8)
        ]
        candidates.append(np.std(perturbed, axis=0))
    hidden = np.array(hidden)
    print(
        f"{label}: hidden units |mean| {np.abs(hidden).mean():.3f}, std across histories {hidden.std(0).mean():.3f}; "
        f"centre's proposal std across histories (sigma, lr) {np.round(np.std(centre, axis=0), 3)}; "
        f"candidates' spread for one history {np.round(np.mean(candidates, axis=0), 3)}"
    )


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "pretrained"
    spread(load_controller(path, default_space(), trainable="last_layer", seed=0), path)
    spread(MetaController(default_space(), trainable="last_layer", seed=0), "new network (readout 0)")
    spread(
        MetaController(default_space(), trainable="last_layer", seed=0, standardise_features=True),
        "new network, standardise_features (readout 0)",
    )
