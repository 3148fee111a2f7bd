"""
``backend="ray"`` in a fresh process: Ray is started by a background thread of the pool while the first
rollouts run in this process. A local Ray's processes die with the *thread* that started them
(``PR_SET_PDEATHSIG``), so the start must outlive that thread (``ray_backend._init_in_kept_thread``).
Run in a subprocess: a Ray that the test process started already would hide the fault.
"""

import subprocess
import sys

import pytest

pytest.importorskip("ray")

SCRIPT = """
import numpy as np
import ray
from sb3_bierl import ES

kwargs = dict(n_pairs=2, seed=3, policy_kwargs=dict(net_arch=[8]), noise_table_size=2**16, noise_seed=7)
model = ES("MlpPolicy", "Pendulum-v1", backend="ray", n_workers=2, **kwargs)
model.learn(800)  # in this process while Ray starts in the background
model.evaluator.start()  # the thread that started Ray has ended here
model.learn(800, reset_num_timesteps=False)
assert model.evaluator.workers_running
assert ray.get(ray.put(1)) == 1  # the driver still reaches its local Ray
single = ES("MlpPolicy", "Pendulum-v1", n_workers=1, **kwargs)
single.learn(800)
single.learn(800, reset_num_timesteps=False)
np.testing.assert_array_equal(model.strategy.theta, single.strategy.theta)
model.close()
print("background start ok")
"""


@pytest.mark.timeout(240)
def test_ray_started_by_a_background_thread_outlives_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=220, check=False
    )
    assert result.returncode == 0 and "background start ok" in result.stdout, result.stderr[-3000:]
