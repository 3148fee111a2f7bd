"""One forward pass for a whole population of parameter vectors."""

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from torch.func import functional_call, vmap


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

        self._forward = vmap(single)

    def _split(self, flat: th.Tensor) -> dict[str, th.Tensor]:
        chunks = th.split(flat, self.sizes, dim=1)
        return {
            name: chunk.reshape(flat.shape[0], *shape)
            for name, chunk, shape in zip(self.names, chunks, self.shapes, strict=True)
        }

    @th.no_grad()
    def __call__(self, params: th.Tensor, obs: np.ndarray) -> np.ndarray:
        """
        :param params: (P, dim) float32 tensor of parameter vectors
        :param obs: (P, *obs_shape) observations, one per candidate
        :return: (P, *action_shape) actions ready for ``env.step``
        """
        obs_t = th.as_tensor(obs, dtype=th.float32)
        actions = self._forward(self._split(params), obs_t).numpy()
        return postprocess_actions(self.policy, actions)


def postprocess_actions(policy: BasePolicy, actions: np.ndarray) -> np.ndarray:
    """Map raw network outputs to the action space, as ``BasePolicy.predict`` does."""
    space = policy.action_space
    if isinstance(space, spaces.Box):
        actions = actions.reshape((-1, *space.shape))
        if policy.squash_output:
            return space.low + 0.5 * (actions + 1.0) * (space.high - space.low)
        return np.clip(actions, space.low, space.high)
    return actions.astype(np.int64)
