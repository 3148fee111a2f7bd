"""Shared by the head-to-head runner's tests (test_benchmark_runner.py, test_campaign_runner.py)."""

import sys
from pathlib import Path

import pytest
import yaml


@pytest.fixture(autouse=True)
def _rl_zoo3_stays_out_of_this_process():
    """Imported by a test module, it checks every test of that module: runs go through rl_zoo3 in subprocesses."""
    yield
    assert "rl_zoo3" not in sys.modules, "a test imported rl_zoo3 (and its gymnasium patches) into the test process"


def write_config(folder: Path, name: str, **config) -> Path:
    """:return: the path of a benchmark config ``<folder>/<name>.yml`` holding ``config``"""
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
