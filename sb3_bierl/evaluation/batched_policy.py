"""One forward pass for a whole population of parameter vectors."""

from dataclasses import dataclass

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from torch import nn
from torch.func import functional_call, vmap


@dataclass
class BatchedMlpSpec:
    """
    What a policy declares so that the fast batched paths apply to it, through a method
    ``batched_mlp_spec() -> BatchedMlpSpec | None`` (:meth:`sb3_bierl.es.policies.ESPolicy.batched_mlp_spec`):
    the rollout layer knows no policy class. Without it, the generic ``vmap`` path runs any SB3 policy.

    :param layers: ``(name, module)`` of the layers that map the (normalised) features to the raw action, in
        order; their parameters must be all of the policy's
    :param numpy_ready: Whether the features are the observations flattened (no other preprocessing), so that
        the numpy path may run the whole forward pass
    :param obs_mean: (features,) buffer the features are normalised with, or None (no normalisation)
    :param obs_std: (features,) buffer, with ``obs_mean``
    :param clip_obs: Clip of the normalised features, with ``obs_mean``
    """

    layers: list[tuple[str, nn.Module]]
    numpy_ready: bool = False
    obs_mean: th.Tensor | None = None
    obs_std: th.Tensor | None = None
    clip_obs: float = np.inf


class BatchedPolicy:
    """
    Runs ``P`` copies of an SB3 policy, each with its own flat parameter vector, as one
    vectorised call (``torch.func.vmap`` over ``functional_call``). Buffers (observation
    statistics) are shared by all copies.

    :param policy: Template policy; its parameter order defines the flat vector layout
    """

    def __init__(self, policy: BasePolicy):
        self.policy = policy
        self.names = [name for name, _ in policy.named_parameters()]
        self.shapes = [p.shape for _, p in policy.named_parameters()]
        self.sizes = [p.numel() for _, p in policy.named_parameters()]
        self.dim = sum(self.sizes)
        self.action_space = policy.action_space

        def single(params: dict[str, th.Tensor], obs: th.Tensor) -> th.Tensor:
            return functional_call(policy, params, (obs.unsqueeze(0),)).squeeze(0)

        self._vmap_forward = vmap(single)
        declare = getattr(policy, "batched_mlp_spec", None)
        self._spec: BatchedMlpSpec | None = declare() if callable(declare) else None
        self._mlp = _mlp_layers(policy, self._spec)
        self._forward = self._mlp_forward if self._mlp is not None else self._vmap_forward
        # numpy fast path: a few small ops per step cost a third of torch's per-op overhead
        self._numpy_mlp = _numpy_layers(self._spec, self._mlp)
        # observations as the policy's statistics see them: a plain flatten unless SB3's preprocessing changes them
        self._plain_features = not hasattr(policy, "obs_features") or policy.preprocessing_is_identity
        self._cached_params: th.Tensor | None = None
        self._cached_split: dict[str, th.Tensor] = {}

    def _mlp_forward(self, params: dict[str, th.Tensor], obs: th.Tensor) -> th.Tensor:
        """Fast path for ``extract_features`` + an ``action_net`` of Linear and elementwise layers:
        one batched matrix product per layer (same maths as the vmap path)."""
        x = self.policy.extract_features(obs, self.policy.features_extractor).unsqueeze(1)
        for name, module in self._mlp:
            if isinstance(module, nn.Linear):
                weight_t = params[f"{name}.weight_t"]
                bias = params.get(f"{name}.bias")
                x = th.bmm(x, weight_t) if bias is None else th.baddbmm(bias.unsqueeze(1), x, weight_t)
            else:
                x = module(x)
        x = x.squeeze(1)
        if isinstance(self.action_space, spaces.Discrete):
            return th.argmax(x, dim=1)
        return x

    def _prepare(self, params: th.Tensor) -> dict[str, th.Tensor]:
        """Per-layer views of the flat vectors (and transposed weights for the fast path), cached
        while the same parameter tensor is passed, i.e. for every step of a rollout."""
        if params is not self._cached_params:
            split = self._split(params)
            if self._mlp is not None:
                for name in [n for n in split if n.endswith(".weight")]:
                    split[name[: -len("weight")] + "weight_t"] = split[name].transpose(1, 2).contiguous()
            if self._numpy_mlp is not None:  # numpy views of the same memory
                self._numpy_split = {
                    name: tensor.unsqueeze(1).numpy() if name.endswith(".bias") else tensor.numpy()
                    for name, tensor in split.items()
                    if name.endswith((".weight_t", ".bias"))
                }
                if self._spec.obs_mean is not None:
                    self._numpy_split["obs_mean"] = self._spec.obs_mean.numpy()
                    self._numpy_split["obs_std"] = self._spec.obs_std.numpy()
            self._cached_params, self._cached_split = params, split
        return self._cached_split

    def _numpy_forward(self, obs: np.ndarray) -> np.ndarray:  # obs: raw or features (the same here)
        """The MLP fast path in numpy: one batched ``matmul`` per layer (each candidate's product is
        computed on its own, so its actions do not depend on its batch)."""
        spec, weights = self._spec, self._numpy_split
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), 1, -1)
        if spec.obs_mean is not None:
            x = np.clip((x - weights["obs_mean"]) / weights["obs_std"], -spec.clip_obs, spec.clip_obs)
        for kind, name in self._numpy_mlp:
            if kind == "linear":
                x = np.matmul(x, weights[f"{name}.weight_t"])
                bias = weights.get(f"{name}.bias")
                if bias is not None:
                    x += bias
            elif kind == "tanh":
                np.tanh(x, out=x)
            elif kind == "relu":
                np.maximum(x, 0.0, out=x)
        x = x[:, 0]
        if isinstance(self.action_space, spaces.Discrete):
            return np.argmax(x, axis=1)
        return x

    def features(self, obs: np.ndarray) -> np.ndarray:
        """
        :param obs: (P, *obs_shape) observations as the environments return them
        :return: (P, D) what the policy's observation statistics describe: SB3's preprocessing, flattened
            (:meth:`~sb3_bierl.es.policies.ESPolicy.obs_features`; a plain flatten for other policies)
        """
        if self._plain_features:
            return obs.reshape(len(obs), -1)
        return self.policy.obs_features(obs)

    def _split(self, flat: th.Tensor) -> dict[str, th.Tensor]:
        chunks = th.split(flat, self.sizes, dim=1)
        return {
            name: chunk.reshape(flat.shape[0], *shape)
            for name, chunk, shape in zip(self.names, chunks, self.shapes, strict=True)
        }

    @th.no_grad()
    def __call__(self, params: th.Tensor, obs: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """
        :param params: (P, dim) float32 tensor of parameter vectors
        :param obs: (P, *obs_shape) observations, one per candidate
        :param features: :meth:`features` of ``obs`` if already computed (spares the numpy path a copy)
        :return: (P, *action_shape) actions ready for ``env.step``
        """
        prepared = self._prepare(params)
        if self._numpy_mlp is not None:
            return postprocess_actions(self.policy, self._numpy_forward(obs if features is None else features))
        actions = self._forward(prepared, th.as_tensor(obs, dtype=th.float32)).numpy()
        return postprocess_actions(self.policy, actions)


ELEMENTWISE = (nn.Tanh, nn.ReLU, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.SiLU, nn.GELU, nn.Identity)


def _mlp_layers(policy: BasePolicy, spec: BatchedMlpSpec | None) -> list[tuple[str, nn.Module]] | None:
    """:return: the declared MLP layers when they are Linear and elementwise layers holding all the policy's
    parameters, or None when the generic vmap path is needed"""
    if spec is None:
        return None
    layers = list(spec.layers)
    if not all(isinstance(module, (nn.Linear, *ELEMENTWISE)) for _, module in layers):
        return None
    mlp_params = {f"{name}.{p}" for name, module in layers for p, _ in module.named_parameters()}
    if mlp_params != {name for name, _ in policy.named_parameters()}:
        return None
    return layers


NUMPY_ACTIVATIONS: dict[type[nn.Module], str] = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.Identity: "identity"}


def _numpy_layers(spec: BatchedMlpSpec | None, mlp: list[tuple[str, nn.Module]] | None) -> list[tuple[str, str]] | None:
    """:return: ``(kind, name)`` of each layer for the numpy path, or None when it does not apply: the policy
    declares flat observation features (``numpy_ready``: its own normalisation, no image scaling), and its MLP
    uses Linear, Tanh, ReLU and Identity layers"""
    if mlp is None or spec is None or not spec.numpy_ready:
        return None
    layers = []
    for name, module in mlp:
        if isinstance(module, nn.Linear):
            layers.append(("linear", name))
        elif type(module) in NUMPY_ACTIVATIONS:
            layers.append((NUMPY_ACTIVATIONS[type(module)], name))
        else:
            return None
    return layers


def postprocess_actions(policy: BasePolicy, actions: np.ndarray) -> np.ndarray:
    """Map raw network outputs to the action space, as ``BasePolicy.predict`` does."""
    space = policy.action_space
    if isinstance(space, spaces.Box):
        actions = actions.reshape((-1, *space.shape))
        if policy.squash_output:
            return space.low + 0.5 * (actions + 1.0) * (space.high - space.low)
        return np.clip(actions, space.low, space.high)
    return actions.astype(np.int64)
