"""The throughput script's plan, its EvoTorch reference rows and their skip note (no measurement is timed)."""

import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from torch import nn

from sb3_bierl.benchmarks import throughput
from sb3_bierl.benchmarks.throughput import EVOTORCH_PROBLEMS, Measurement, parse_args, plan_measurements
from sb3_bierl.es.policies import ESPolicy


def kinds(argv: list[str]) -> list[str]:
    return [spec.kind for spec in plan_measurements(parse_args(["--envs", "Pendulum-v1", *argv]), "Pendulum-v1")]


def block_evotorch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import evotorch`` (and its subpackages, in case they are imported already) fail."""
    for name in ("evotorch", "evotorch.algorithms", "evotorch.neuroevolution"):
        monkeypatch.setitem(sys.modules, name, None)


def fake_result(steps: int) -> dict[str, Any]:
    """:return: what a measurement of ``steps`` steps in one second returns"""
    return {
        "steps": steps,
        "episodes": 5,
        "wall_s": 1.0,
        "setup_s": 0.0,
        "generation_clock": [[0.5, 250], [1.0, steps]],
    }


def test_evotorch_rows_are_planned_by_default_and_references_choose_them():
    es_rows = ["es", "bierl"]
    assert kinds(["--backends", "processes"]) == ["raw", "ars", *es_rows, "evotorch-vecgymne", "evotorch-gymne"]
    assert kinds(["--backends", "processes", "--references", "ars"]) == ["raw", "ars", *es_rows]
    assert kinds(["--backends", "processes", "--references", "evotorch-gymne"]) == ["raw", *es_rows, "evotorch-gymne"]
    assert kinds(["--backends", "processes", "--references"]) == ["raw", *es_rows]


def test_evotorch_labels():
    common = {"env_id": "Hopper-v5", "seconds": 1.0, "timesteps": 10, "n_pairs": 2}
    assert (
        Measurement("evotorch-vecgymne", workers=2, **common).label
        == "(d) EvoTorch VecGymNE + PGPE/ClipUp, 2 Ray actors"
    )
    # EvoTorch runs a single actor's work in the measuring process
    assert Measurement("evotorch-gymne", workers=1, **common).label == "(d) EvoTorch GymNE + PGPE/ClipUp, 1 process"


def test_evotorch_network_is_the_es_policy():
    policy = ESPolicy(spaces.Box(-np.inf, np.inf, (11,)), spaces.Box(-1.0, 1.0, (3,)), net_arch=throughput.NET_ARCH)
    layers = [
        f"Linear({m.in_features}, {m.out_features})" if isinstance(m, nn.Linear) else f"{type(m).__name__}()"
        for m in policy.action_net
    ]
    network = throughput.EVOTORCH_NETWORK.replace("obs_length", "11").replace("act_length", "3")
    assert network == " >> ".join(layers)


def test_evotorch_rows_are_skipped_with_a_note_without_evotorch(monkeypatch, tmp_path):
    block_evotorch(monkeypatch)
    spec = Measurement("evotorch-vecgymne", env_id="Pendulum-v1", workers=2, seconds=1.0, timesteps=10, n_pairs=2)
    assert "EvoTorch cannot be imported" in throughput.measure_evotorch(spec)["skipped"]

    def fake_measurement(spec: Measurement, timeout: float) -> dict[str, Any]:
        if spec.kind in EVOTORCH_PROBLEMS:
            return throughput.measure_evotorch(spec)  # in this process, where the import fails
        return fake_result(1000 if spec.kind == "raw" else 500)

    monkeypatch.setattr(throughput, "run_measurement", fake_measurement)
    out = tmp_path / "tp.md"
    assert (
        throughput.main(["--envs", "Pendulum-v1", "--backends", "processes", "--out", str(out)]) == 0
    )  # skips are no failures
    text = out.read_text()
    for problem in EVOTORCH_PROBLEMS.values():
        assert f"| (d) EvoTorch {problem} + PGPE/ClipUp, 2 Ray actors | skipped: EvoTorch cannot be imported" in text
    assert "references: ars, evotorch-vecgymne, evotorch-gymne" in text


def test_evotorch_rows_get_the_ratios_of_the_other_rows(monkeypatch, tmp_path):
    def fake_measurement(spec: Measurement, timeout: float) -> dict[str, Any]:
        return fake_result({"raw": 1000, "ars": 250}.get(spec.kind, 500))

    monkeypatch.setattr(throughput, "run_measurement", fake_measurement)
    out = tmp_path / "tp.md"
    argv = [
        "--envs",
        "Pendulum-v1",
        "--backends",
        "processes",
        "--references",
        "ars",
        "evotorch-gymne",
        "--out",
        str(out),
    ]
    assert throughput.main(argv) == 0
    row = next(line for line in out.read_text().splitlines() if line.startswith("| (d) EvoTorch GymNE"))
    assert row.split(" | ")[3:6] == ["500", "0.50", "2.00"]  # steps/s, × (a), × (b)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_process_tree_rss_sums_the_tree_and_gives_the_largest_descendant():
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(64 << 20); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while throughput.process_tree_rss(os.getpid())[1] < 64 << 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        total, largest = throughput.process_tree_rss(os.getpid())
        assert largest >= 64 << 20  # the child, with its 64 MiB
        assert total > largest  # and this process
    finally:
        child.kill()
        child.wait()
