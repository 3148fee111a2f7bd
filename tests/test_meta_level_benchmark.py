"""The meta-level evidence script (python -m sb3_bierl.benchmarks.meta_level): plan, normalisation, rliable report."""

import numpy as np
import pytest

from sb3_bierl.benchmarks import meta_level
from sb3_bierl.benchmarks.meta_level import algo_name, at_defaults, make_report, normalisation, parse_algo, plan_runs


def test_algorithm_names_round_trip():
    assert algo_name("es") == "es" and algo_name("bierl", 4.0) == "bierl-s4" and algo_name("es", 1.0, 0.25) == "es-lr0.25"
    assert parse_algo("bierl-s0.25-lr4") == ("bierl", 0.25, 4.0)
    with pytest.raises(ValueError, match="Unknown algorithm"):
        parse_algo("ppo")
    assert meta_level.algo_kwargs("es-s2-lr0.5-n8") == {"sigma": 0.04, "learning_rate": 0.005, "n_pairs": 8}
    assert meta_level.algo_kwargs("bierl") == {"meta": "lstm", "sigma": 0.02, "learning_rate": 0.01}
    # the bold driver's base sets its meta level
    assert meta_level.algo_kwargs("bold-s1.5-lr3") == pytest.approx({"meta": "bold_driver", "sigma": 0.03, "learning_rate": 0.03})
    assert meta_level.algo_kwargs("tpa-lr4") == pytest.approx({"meta": "tpa", "sigma": 0.02, "learning_rate": 0.04})
    # tpa_wide sets the learning rate's bounds a factor 32 around the run's start (the others keep BiERL's default)
    wide = meta_level.algo_kwargs("tpa_wide-lr0.25")
    assert wide.pop("hyperparameter_bounds") == {"learning_rate": pytest.approx((0.0025 / 32, 0.0025 * 32))}
    assert wide == pytest.approx({"meta": "tpa", "sigma": 0.02, "learning_rate": 0.0025})
    assert at_defaults("es") == "es" and at_defaults("bierl", 4.0) == "bierl-s4"  # today's defaults are the reference


def test_a_run_name_keeps_its_meaning_when_the_defaults_change(monkeypatch):
    """Saved runs are named by factors on fixed reference values: if ES's defaults moved to sigma 0.03 and learning
    rate 0.03, the stages would run ``es-s1.5-lr3``, and ``es`` would still be the run at 0.02 and 0.01."""
    monkeypatch.setattr(meta_level, "es_defaults", lambda records: {"sigma": 0.03, "learning_rate": 0.03})
    assert at_defaults("es") == "es-s1.5-lr3" and at_defaults("bierl", 4.0) == "bierl-s6-lr3"
    assert at_defaults("es", 1.0, 0.25) == "es-s1.5-lr0.75"
    assert meta_level.algo_kwargs("es-s1.5-lr3") == pytest.approx({"sigma": 0.03, "learning_rate": 0.03})
    assert meta_level.algo_kwargs("es") == meta_level.REFERENCE
    assert meta_level.stage_algos("defaults") == ["es-s1.5-lr3", "tpa-s1.5-lr3", "bierl-s1.5-lr3"]
    assert meta_level.is_grid_setting("es") and not meta_level.is_grid_setting("es-s1.5-lr3")


def test_plan_runs_stage_by_stage_without_duplicates():
    specs = plan_runs(["defaults", "robustness"], ["Pendulum-v1"], [0, 1], 0.1, 2)
    names = [s.name for s in specs]
    # ES and both meta levels (BiERL's default, tpa, and the paper's network), at the defaults and from 4 starts
    assert len(names) == len(set(names)) == 3 * 2 + 12 * 2
    es, tpa, bierl = at_defaults("es"), at_defaults("tpa"), at_defaults("bierl")
    assert names[:6] == [f"{name}_Pendulum-v1_{seed}" for seed in (0, 1) for name in (es, tpa, bierl)]
    assert {s.seed for s in specs[6:18]} == {0}  # robustness, seed 0 first
    assert all(s.budget == 30_000 for s in specs)


#: ES and BiERL at the current defaults (the names are factors on the reference values)
ES_D, BIERL_D = at_defaults("es"), at_defaults("bierl")


def record(algo, env, seed, value):
    return {"algo": algo, "env": env, "seed": seed, "status": "done", "final_return": value, "n_timesteps": 1000,
            "steps_reached": 1024}


def test_normalisation_is_zero_at_es_defaults_and_one_at_the_best_fixed_setting():
    records = [record(ES_D, "A", s, 10.0 + s) for s in range(2)] + [record("es-s4", "A", s, 30.0 + s) for s in range(2)]
    table = meta_level.final_returns(records)
    assert normalisation(table, "A") == (10.5, 30.5, "es-s4")
    # a diagnosis run with another population size is not a grid setting
    table = meta_level.final_returns(records + [record("es-n8", "A", 0, 100.0)])
    assert normalisation(table, "A") == (10.5, 30.5, "es-s4")
    # no setting beats the defaults, or no grid at all: no scale, the task is left out of the normalised IQM
    flat = meta_level.final_returns([record(ES_D, "B", 0, -200.0), record("es-s4", "B", 0, -300.0), record(ES_D, "C", 0, 1.0)])
    assert normalisation(flat, "B") is None and normalisation(flat, "C") is None
    assert "no grid setting beats the defaults" in make_report([record(ES_D, "B", 0, -200.0), record("es-s4", "B", 0, -300.0)])


def test_report_aggregates_with_rliable(monkeypatch):
    pytest.importorskip("rliable")
    from sb3_bierl.benchmarks import aggregates

    # the report's intervals at 2000 resamples take 10-20 s of CPU; on a starved machine that can pass pytest-timeout
    monkeypatch.setattr(aggregates, "BOOTSTRAP_REPS", 100)
    rng = np.random.default_rng(0)
    records = []
    for env in ("Pendulum-v1", "Hopper-v5", "Ant-v5"):
        for seed in range(3):
            records += [record(ES_D, env, seed, rng.normal()), record(BIERL_D, env, seed, 10 + rng.normal())]
            if env != "Ant-v5":  # Ant has no headroom grid: in the probability of improvement, not in the IQM
                records.append(record("es-s4", env, seed, 5 + rng.normal()))
    report = make_report(records)
    assert "IQM normalised score" in report and f"{BIERL_D} > {ES_D}" in report
    assert "Probability of improvement on Pendulum-v1, Hopper-v5, Ant-v5; normalised scores on Pendulum-v1, Hopper-v5" in report
    line = next(line for line in report.splitlines() if line.startswith(f"| {BIERL_D} > {ES_D}"))
    assert float(line.split("|")[2].split()[0]) == 1.0  # BiERL beats ES on every run of every task
