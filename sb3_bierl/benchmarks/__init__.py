"""Benchmark scripts for sb3-bierl (run them with ``python -m sb3_bierl.benchmarks.<name>``)."""
