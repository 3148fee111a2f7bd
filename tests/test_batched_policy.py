import numpy as np
import pytest
import torch as th
from torch import nn

from sb3_bierl import ES
from sb3_bierl.evaluation import BatchedPolicy


@pytest.mark.parametrize("env_id, policy", [("Counting-v0", "MlpPolicy"), ("CartPole-v1", "MlpPolicy"), ("Counting-v0", "LinearPolicy")])
def test_batched_forward_matches_each_policy_alone(env_id, policy):
    model = ES(policy, env_id, seed=0, policy_kwargs=None if policy == "LinearPolicy" else dict(activation_fn=nn.ReLU))
    runner = BatchedPolicy(model.policy)
    rng = np.random.default_rng(0)
    params = th.as_tensor(rng.normal(size=(7, runner.dim)).astype(np.float32))
    obs = rng.normal(size=(7, *model.observation_space.shape)).astype(np.float32)
    fast = runner(params, obs)
    generic = runner._vmap_forward(runner._split(params), th.as_tensor(obs)).numpy()
    for i in range(7):
        th.nn.utils.vector_to_parameters(params[i], model.policy.parameters())
        alone, _ = model.policy.predict(obs[i], deterministic=True)
        np.testing.assert_allclose(fast[i], alone, atol=1e-5)
        np.testing.assert_allclose(runner._mlp_forward(runner._prepare(params), th.as_tensor(obs)).numpy()[i], generic[i], atol=1e-5)
    # a candidate's action does not depend on its batch: backends that slice the population agree
    np.testing.assert_array_equal(BatchedPolicy(model.policy)(params[2:5].clone(), obs[2:5]), fast[2:5])


def test_the_rollout_layer_imports_no_policy_class():
    """``sb3_bierl.evaluation`` sits below the SB3 glue: a policy declares its fast path (``batched_mlp_spec``)."""
    import ast
    from pathlib import Path

    import sb3_bierl.evaluation

    for path in Path(sb3_bierl.evaluation.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            for name in names:
                assert not name.startswith(("sb3_bierl.es", "sb3_bierl.bierl", "sb3_bierl.meta", "sb3_contrib")), (path.name, name)
