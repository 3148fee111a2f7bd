"""Sigma measured in the policy's action space: adaptive parameter-space noise (Plappert et al. 2018)."""

import copy

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.running_mean_std import RunningMeanStd
from torch.nn.utils import vector_to_parameters

from sb3_bierl.es.policies import ESPolicy

#: Perturbations and states of one measurement of the distance (the distance jitters by about 15% between
#: generations with 8 perturbations; ``docs/benchmarks/bold_driver_probe/action_noise.py``)
N_PERTURBATIONS, N_STATES = 32, 256


def check_action_distance_supported(policy: ESPolicy) -> None:
    """
    :param policy: The ES policy whose sigma is to be set in its action space
    :raises ValueError: unless the actions are continuous (a ``Box``) and squashed by tanh (``squash_output=True``,
        the default of ``MlpPolicy``): the distance is in units of the action range's half-width, which needs both
    """
    if not isinstance(policy.action_space, spaces.Box):
        raise ValueError(
            f"sigma set in the action space needs continuous actions (a Box), got {policy.action_space}: leave "
            "meta_desired_action_stddev=None with discrete actions"
        )
    if not policy.squash_output:
        raise ValueError(
            "sigma set in the action space needs actions squashed by tanh (the policy's squash_output=True, the "
            "default of MlpPolicy): leave meta_desired_action_stddev=None with an unsquashed policy"
        )


def check_action_stddev_tolerance(tolerance: float, desired_action_stddev: float | None, prefix: str = "") -> None:
    """
    :param prefix: Of the arguments' names in the errors (``"meta_"`` for BiERL's)
    :param tolerance: The factor the action distance may be off ``desired_action_stddev`` before sigma is corrected
    :param desired_action_stddev: The desired distance (None: sigma is not set in the action space)
    :raises ValueError: unless ``tolerance`` is a number >= 1, and 1 when ``desired_action_stddev`` is None (it would
        be ignored)
    """
    if isinstance(tolerance, bool) or not (
        isinstance(tolerance, (int, float, np.integer, np.floating)) and np.isfinite(tolerance) and tolerance >= 1.0
    ):
        raise ValueError(f"{prefix}action_stddev_tolerance must be a factor >= 1, got {tolerance!r}")
    if tolerance != 1.0 and desired_action_stddev is None:
        raise ValueError(
            f"{prefix}action_stddev_tolerance is how far the action distance may be off {prefix}desired_action_stddev: "
            f"give {prefix}desired_action_stddev too"
        )


def state_batch(policy: ESPolicy, obs_rms: RunningMeanStd, rng: np.random.Generator, n_states: int) -> th.Tensor:
    """
    States for the distance. ES keeps no observations, only their running statistics (SB3's ``RunningMeanStd``):
    the batch is a Gaussian with that mean and variance, put through the policy's own normalisation (so unit
    variance in every dimension that varies, 0 in the constant ones, clipped as the policy clips).

    :param policy: The ES policy (its :meth:`~sb3_bierl.es.policies.ESPolicy.normalize_features`)
    :param obs_rms: The running statistics of the preprocessed, flattened observations (``features_dim``)
    :param rng: The generator of the batch
    :param n_states: Number of states
    :return: (n_states, features_dim) float32 inputs of the policy's ``action_net``
    """
    mean = np.asarray(obs_rms.mean, dtype=np.float64).ravel()
    std = np.sqrt(np.asarray(obs_rms.var, dtype=np.float64).ravel())
    features = th.as_tensor(mean + rng.standard_normal((n_states, mean.size)) * std, dtype=th.float32)
    return policy.normalize_features(features)


def action_distance(
    policy: ESPolicy,
    theta: np.ndarray,
    obs_rms: RunningMeanStd,
    sigma: float,
    rng: np.random.Generator,
    n_perturbations: int = N_PERTURBATIONS,
    n_states: int = N_STATES,
) -> float:
    """
    The distance between the policy at ``theta`` and at ``theta + sigma * eps`` in its action space (Plappert et
    al. 2018, "Parameter Space Noise for Exploration", ICLR, section 3, "Adaptive noise scaling", the DDPG case):

        ``d(sigma) = sqrt(mean_{k, s, a} (pi_{theta + sigma eps_k}(s)_a - pi_theta(s)_a)^2)``

    over ``n_perturbations`` standard normal ``eps_k`` and the states of :func:`state_batch`. Forward passes only,
    no episode. ``d`` is close to linear in sigma (x4 in sigma: x3.9 to x4.6 in ``d`` on issue 9's six tasks).

    :param policy: The ES policy (continuous, tanh-squashed actions: :func:`check_action_distance_supported`)
    :param theta: (n_params,) the centre (the policy's parameter vector; the policy itself is not changed)
    :param obs_rms: The running statistics of the observations
    :param sigma: The perturbation's scale (> 0)
    :param rng: The generator of the states and the perturbations
    :param n_perturbations: Number of perturbations ``eps_k``
    :param n_states: Number of states
    :return: ``d(sigma)``, in units of the action range's half-width (tanh's output)
    """
    states = state_batch(policy, obs_rms, rng, n_states)
    net = copy.deepcopy(policy.action_net)
    theta = np.asarray(theta, dtype=np.float64)
    eps = rng.standard_normal((n_perturbations, theta.size))
    squares = []
    with th.no_grad():
        vector_to_parameters(th.as_tensor(theta, dtype=th.float32), net.parameters())
        centre = net(states)
        for e in eps:
            vector_to_parameters(th.as_tensor(theta + sigma * e, dtype=th.float32), net.parameters())
            squares.append(float(th.mean((net(states) - centre) ** 2)))
    return float(np.sqrt(np.mean(squares)))
