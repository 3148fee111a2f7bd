import numpy as np
import pytest
import torch as th
from torch import nn

from sb3_bierl import ES
from sb3_bierl.evaluation import BatchedPolicy


@pytest.mark.parametrize("activation", [nn.Tanh, nn.ReLU, nn.ELU])
def test_numpy_path_matches_torch_and_is_batch_independent(activation):
    model = ES("MlpPolicy", "Counting-v0", seed=0, policy_kwargs=dict(net_arch=[16, 8], activation_fn=activation))
    model.obs_rms.mean[:] = [0.5, -0.5, 0.1]
    model.obs_rms.var[:] = [4.0, 0.25, 1.0]
    model.sync_policy()
    runner = BatchedPolicy(model.policy)
    assert (runner._numpy_mlp is not None) == (activation is not nn.ELU)  # ELU: the torch path
    rng = np.random.default_rng(1)
    params = th.as_tensor(rng.normal(size=(6, runner.dim)).astype(np.float32))
    obs = rng.normal(size=(6, 3)).astype(np.float32) * 3
    actions = runner(params, obs)
    torch_actions = runner._mlp_forward(runner._prepare(params), th.as_tensor(obs)).numpy()
    np.testing.assert_allclose(actions, model.action_space.low + 0.5 * (torch_actions + 1) * 2.0, atol=1e-5)
    # the buffers are read at each rollout: new statistics are used
    model.obs_rms.mean[:] = 0.0
    model.sync_policy()
    assert not np.allclose(BatchedPolicy(model.policy)(params, obs), actions)
    np.testing.assert_array_equal(BatchedPolicy(model.policy)(params[1:4].clone(), obs[1:4]), BatchedPolicy(model.policy)(params, obs)[1:4])
