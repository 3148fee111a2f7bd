"""Policies for ES: sb3-contrib's ARS policies with observation normalisation built in."""

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.ars.policies import ARSPolicy
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space, preprocess_obs
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn

from sb3_bierl.evaluation.batched_policy import BatchedMlpSpec


class ESPolicy(ARSPolicy):
    """
    :class:`sb3_contrib.ars.policies.ARSPolicy` that normalises observations with running
    statistics kept as buffers, so they are saved with the policy, used at ``predict`` time
    and shared by every candidate of a population.

    Observations go through SB3's ``preprocess_obs`` first (images scaled to [0, 1], discrete
    observations one-hot), in training rollouts as in ``predict``: the statistics are those of the
    preprocessed, flattened observations (:meth:`obs_features`).

    Buffers are not parameters: the ES parameter vector is only the network's weights.

    The policy is deterministic (ES explores in parameter space): ``predict`` ignores ``deterministic``.

    :param observation_space: The observation space of the environment
    :param action_space: The action space of the environment
    :param net_arch: Hidden layer sizes (default ``[64, 64]``)
    :param activation_fn: Activation function (default tanh, as in OpenAI-ES)
    :param with_bias: Whether the layers have a bias
    :param squash_output: Squash continuous actions with tanh (otherwise they are clipped)
    :param normalize_observations: Apply the running observation normalisation
    :param clip_obs: Clip normalised observations to ``[-clip_obs, clip_obs]``
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        with_bias: bool = True,
        squash_output: bool = True,
        normalize_observations: bool = True,
        clip_obs: float = 10.0,
    ):
        super().__init__(observation_space, action_space, net_arch, activation_fn, with_bias, squash_output)
        self.with_bias = with_bias
        self.normalize_observations = normalize_observations
        self.clip_obs = clip_obs
        obs_dim = get_flattened_obs_dim(observation_space)
        self.register_buffer("obs_mean", th.zeros(obs_dim))
        self.register_buffer("obs_std", th.ones(obs_dim))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            with_bias=self.with_bias,
            squash_output=self.squash_output,
            normalize_observations=self.normalize_observations,
            clip_obs=self.clip_obs,
        )
        return data

    @property
    def preprocessing_is_identity(self) -> bool:
        """Whether SB3's preprocessing leaves the observations as they are (up to a float cast and a flatten)"""
        space = self.observation_space
        return isinstance(space, spaces.Box) and not (self.normalize_images and is_image_space(space))

    def obs_features(self, obs: np.ndarray) -> np.ndarray:
        """
        What the normalisation sees: SB3's ``preprocess_obs``, flattened.

        :param obs: (P, *obs_shape) a batch of observations as the environment returns them
        :return: (P, features_dim): float32, or the env's own dtype where the preprocessing is a plain flatten
        """
        if self.preprocessing_is_identity:
            return np.asarray(obs).reshape(len(obs), -1)
        with th.no_grad():
            features = preprocess_obs(th.as_tensor(np.asarray(obs)), self.observation_space, self.normalize_images)
        return features.reshape(len(obs), -1).numpy()

    def batched_mlp_spec(self) -> BatchedMlpSpec | None:
        """
        What the rollout layer's fast batched paths need (:class:`~sb3_bierl.evaluation.BatchedPolicy`): the
        ``action_net`` layers, whether the features are the flattened observations, and the normalisation.

        :return: the declaration, or None when a subclass changes the forward pass (the generic path then runs it)
        """
        if type(self).forward is not ARSPolicy.forward:
            return None
        numpy_ready = (
            self.preprocessing_is_identity
            and type(self).extract_features is ESPolicy.extract_features
            and isinstance(self.features_extractor, FlattenExtractor)
        )
        normalised = self.normalize_observations
        return BatchedMlpSpec(
            layers=[(f"action_net.{i}", module) for i, module in enumerate(self.action_net)],
            numpy_ready=numpy_ready,
            obs_mean=self.obs_mean if normalised else None,
            obs_std=self.obs_std if normalised else None,
            clip_obs=self.clip_obs if normalised else np.inf,
        )

    def set_obs_statistics(self, obs_rms: RunningMeanStd, epsilon: float = 1e-8) -> None:
        """Copy running statistics into the buffers used by the forward pass."""
        self.obs_mean.copy_(th.as_tensor(obs_rms.mean.ravel(), dtype=th.float32))
        self.obs_std.copy_(th.as_tensor(np.sqrt(obs_rms.var.ravel() + epsilon), dtype=th.float32))

    def normalize_features(self, features: th.Tensor) -> th.Tensor:
        """
        :param features: (batch, features_dim) preprocessed, flattened observations
        :return: the inputs of ``action_net``: normalised by the running statistics and clipped to ``clip_obs`` (if
            ``normalize_observations``), else ``features``
        """
        if self.normalize_observations:
            features = th.clamp((features - self.obs_mean) / self.obs_std, -self.clip_obs, self.clip_obs)
        return features

    def extract_features(self, obs: PyTorchObs, features_extractor: nn.Module | None = None) -> th.Tensor:  # type: ignore[override]
        return self.normalize_features(super().extract_features(obs, self.features_extractor))


class ESLinearPolicy(ESPolicy):
    """
    Linear :class:`ESPolicy` (no hidden layer), as ARS's ``LinearPolicy``.

    :param observation_space: The observation space of the environment
    :param action_space: The action space of the environment
    :param with_bias: Whether the layer has a bias
    :param squash_output: Squash continuous actions with tanh (otherwise they are clipped)
    :param normalize_observations: Apply the running observation normalisation
    :param clip_obs: Clip normalised observations to ``[-clip_obs, clip_obs]``
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        with_bias: bool = False,
        squash_output: bool = False,
        normalize_observations: bool = True,
        clip_obs: float = 10.0,
    ):
        super().__init__(
            observation_space,
            action_space,
            net_arch=[],
            with_bias=with_bias,
            squash_output=squash_output,
            normalize_observations=normalize_observations,
            clip_obs=clip_obs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        del data["net_arch"], data["activation_fn"]
        return data


MlpPolicy = ESPolicy
LinearPolicy = ESLinearPolicy
