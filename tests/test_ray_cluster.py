"""
The Ray backend joining an existing cluster through ``ray_address`` (``init_ray`` with an address), on a
simulated two-node cluster (``ray.cluster_utils.Cluster``: a head and a worker node, one CPU each, as local
processes), not on a Ray that ``ES`` starts itself.
"""

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402
from test_process_backend import NOISE  # noqa: E402

from sb3_bierl import ES  # noqa: E402
from sb3_bierl.evaluation.ray_backend import RayEvaluator  # noqa: E402


@pytest.fixture
def two_nodes():
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.timeout(240)
def test_es_joins_a_two_node_cluster_with_one_actor_per_node(two_nodes):
    kwargs = dict(n_pairs=3, seed=5, policy_kwargs=dict(net_arch=[8]), **NOISE)
    single = ES("MlpPolicy", "Pendulum-v1", n_workers=1, **kwargs)
    single.learn(2 * (2 * 3) * 200)
    single.learn(2 * (2 * 3) * 200, reset_num_timesteps=False)
    model = ES("MlpPolicy", "Pendulum-v1", backend="ray", n_workers=2, ray_address=two_nodes.address, **kwargs)
    assert isinstance(model.evaluator, RayEvaluator)
    try:
        model.learn(2 * (2 * 3) * 200)  # here while ES joins the cluster and starts the actors in the background
        model.evaluator.start()
        model.learn(2 * (2 * 3) * 200, reset_num_timesteps=False)
        assert ray.get_runtime_context().gcs_address == two_nodes.address  # ES joined this cluster
        assert len([node for node in ray.nodes() if node["Alive"]]) == 2
        # each actor holds one CPU and each node has one: both nodes run an actor
        assert ray.cluster_resources()["CPU"] == 2 and ray.available_resources().get("CPU", 0) == 0
    finally:
        model.close()
    assert model.num_timesteps == single.num_timesteps
    np.testing.assert_array_equal(model.strategy.theta, single.strategy.theta)  # same result as in-process
