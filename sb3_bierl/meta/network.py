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
    :param standardise_features: Data-dependent initialisation of the generator's hidden layer (centred
        layer-sequential unit variance, after Mishkin & Matas 2016, "All you need is a good init"): over
        ``N_STANDARDISE`` random histories (every feature uniform in [-1, 1]), each hidden unit's pre-activation is
        shifted to mean 0 and scaled to std 1. With PyTorch's default initialisation the hidden units barely vary
        with the history (std 0.04 against a mean magnitude 0.11 for the shipped controller, issue 10), so a
        readout trained by ES can only offset its proposals, not make them depend on the history. Draws from
        torch's global generator (seed it, as ``MetaController`` does)
    """

    #: Random histories of the data-dependent initialisation (``standardise_features``)
    N_STANDARDISE = 256

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
        standardise_features: bool = False,
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
            if standardise_features:
                histories = 2 * th.rand(self.N_STANDARDISE, history_length, n_features) - 1
                hidden_layer = self.generator[0]
                pre_activations = hidden_layer(self.encode(histories))
                mean, std = pre_activations.mean(dim=0), pre_activations.std(dim=0).clamp_min(1e-6)
                hidden_layer.weight.div_(std[:, None])
                hidden_layer.bias.sub_(mean).div_(std)
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
