"""The evidence benchmark's plan and report (the training itself is what the other tests check)."""

from sb3_bierl.benchmarks import aggregates
from sb3_bierl.benchmarks.compare import ALGOS
from sb3_bierl.benchmarks.family import EXPERIMENTS, Experiment, main, plan, report


def test_every_algorithm_is_known_and_shared_runs_are_planned_once():
    for experiment in EXPERIMENTS:
        assert set(experiment.algos) <= set(ALGOS)
        for plain, wrapped in experiment.pairs:
            assert {plain, wrapped} <= set(experiment.algos)
    shared = Experiment("a", "A", {"Pendulum-v1": 100}, ("es", "bierl"))
    again = Experiment("b", "B", {"Pendulum-v1": 100}, ("bierl", "bierl_mean"))
    specs = plan([shared, again], seeds=[0, 1], scale=1.0, eval_episodes=2)
    assert len(specs) == 6  # bierl on Pendulum-v1 is shared
    assert len({spec.name for spec in specs}) == 6


def record(algo, env, seed, value, budget=100):
    return {"algo": algo, "env": env, "seed": seed, "status": "done", "n_timesteps": budget, "final_return": value,
            "steps_reached": budget, "train_time_s": 1.0, "eval_episodes": 2}


def test_report_compares_plain_and_wrapped_at_the_same_budget(monkeypatch):
    monkeypatch.setattr(aggregates, "BOOTSTRAP_REPS", 100)  # the report's intervals: fast
    experiment = Experiment("a", "Plain vs wrapped", {"Pendulum-v1": 100}, ("es", "bierl"), (("es", "bierl"),))
    records = [record("es", "Pendulum-v1", s, -100.0 - s) for s in range(3)]
    records += [record("bierl", "Pendulum-v1", s, -200.0) for s in range(3)]
    records += [record("bierl", "Pendulum-v1", 9, 1000.0, budget=5)]  # another budget: left out
    text = report([experiment], records)
    assert "-101.0 [-102.0, -100.0] (3)" in text and "-200.0 [-200.0, -200.0] (3)" in text  # IQM [interval]
    assert "- Pendulum-v1: P(BiERL > ES) = 0.00 [0.00, 0.00]" in text


def test_report_only_without_runs(tmp_path, capsys):
    assert main(["--report-only", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "results.md").exists()
    assert "The ES family under BiERL" in capsys.readouterr().out
