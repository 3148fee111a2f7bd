"""The meta network: encoder over the fitness history, MLP generator of hyperparameters."""

import numpy as np
import torch as th
from torch import nn

ENCODERS = ("lstm", "mean")


class MetaNetwork(nn.Module):
    """
    ``history (B, H, F) -> encoder -> MLP -> tanh -> (B, n_outputs)`` in (-1, 1).

    :param n_features: Size of one history row
    :param n_outputs: Number of hyperparameters proposed
    :param encoder: ``"lstm"`` (the paper's) or ``"mean"`` (mean-pool ablation: a per-row
        layer averaged over time)
    :param hidden_size: Size of the encoding
    :param generator_size: Hidden size of the MLP generator
    :param initial_unit: Outputs proposed at initialisation (the last layer's bias is set to
        reach them from an empty history of ``history_length`` rows, and its weights are scaled
        by ``readout_gain``, so the first proposals are the initial values)
    :param history_length: Length of the history windows the network reads
    :param readout_gain: Scale of the last layer's initial weights (PyTorch's default initialisation times
        this); 0: the initial outputs do not depend on the history at all
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        encoder: str = "lstm",
        hidden_size: int = 16,
        generator_size: int = 32,
        initial_unit: np.ndarray | None = None,
        history_length: int = 1,
        readout_gain: float = 0.1,
    ):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"Unknown meta encoder {encoder!r}: choose one of {ENCODERS}")
        self.encoder_type = encoder
        self.n_features = n_features
        self.hidden_size = hidden_size
        self.generator_size = generator_size
        if encoder == "lstm":
            self.encoder: nn.Module = nn.LSTM(n_features, hidden_size, batch_first=True)
        else:
            self.encoder = nn.Sequential(nn.Linear(n_features, hidden_size), nn.Tanh())
        self.generator = nn.Sequential(
            nn.Linear(hidden_size, generator_size), nn.Tanh(), nn.Linear(generator_size, n_outputs)
        )
        with th.no_grad():
            last = self.generator[-1]
            last.weight.mul_(readout_gain)
            if initial_unit is not None:
                # an empty (zero) history must map exactly to the initial values
                target = th.as_tensor(np.arctanh(np.clip(initial_unit, -0.99, 0.99)), dtype=th.float32)
                hidden = self.generator[:-1](self.encode(th.zeros(1, history_length, n_features)))[0]
                last.bias.copy_(target - last.weight @ hidden)

    def encode(self, history: th.Tensor) -> th.Tensor:
        if self.encoder_type == "lstm":
            _, (hidden, _) = self.encoder(history)
            return hidden[-1]
        return self.encoder(history).mean(dim=1)

    def forward(self, history: th.Tensor) -> th.Tensor:
        return th.tanh(self.generator(self.encode(history)))
