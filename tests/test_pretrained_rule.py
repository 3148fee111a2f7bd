"""A pre-trained two-point rule (issue 10): ``TwoPointRule``, its file, ``BiERL(meta="tpa", meta_warm_start=...)``,
``python -m sb3_bierl.pretrain --meta tpa`` and the held-out evaluation of ``--meta tpa``."""

import json

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from sb3_bierl import BiERL
from sb3_bierl.meta import PRETRAINED_PATH, TwoPointController, TwoPointRule, read_rule_file, save_rule
from sb3_bierl.meta.two_point_rule import VERSION
from sb3_bierl.meta.warm_start import read_controller_file
from sb3_bierl.pretrain import main as pretrain_main
from sb3_bierl.pretraining import InnerRun, MetaTrainer, PretrainingTask, run_inner
from sb3_bierl.pretraining.meta_trainer import CHECKPOINT, CONTROLLER
from sb3_bierl.pretraining.suite import resolve_suite

HORIZON = 20  # CountingEnv's episode length
SMALL = dict(n_pairs=4, policy_kwargs=dict(net_arch=[8]))
GENERATION = 2 * 4 * HORIZON + 2 * HORIZON  # the population's steps and the two points'
TINY = PretrainingTask("CartPole-v1", 1_500, 10.0, 500.0)


def make(seed=0, **kwargs):
    return BiERL("MlpPolicy", "Counting-v0", seed=seed, meta="tpa", **{**SMALL, **kwargs})


def rates(model, generations):
    """:return: the learning rate of each of ``generations`` generations, one ``learn`` call each"""
    out = []
    for _ in range(generations):
        model.learn(GENERATION, reset_num_timesteps=False)
        out.append(model.strategy.last_learning_rate)
    return out


def test_phi_zero_is_tpa_as_published_and_phi_round_trips():
    assert TwoPointRule.from_phi(np.zeros(3)) == TwoPointRule() == TwoPointRule(1.0, 4.0, 0.3)
    phi = np.array([0.7, -0.4, 1.1])
    rule = TwoPointRule.from_phi(phi)
    assert rule.learning_rate_factor == pytest.approx(np.exp(0.7)) and rule.damping == pytest.approx(4 * np.exp(0.4))
    assert rule.cumulation > 0.3  # phi[2] > 0: more weight on the newest test
    np.testing.assert_allclose(rule.to_phi(), phi)
    for bad in (np.zeros(2), np.array([0.0, np.nan, 0.0])):
        with pytest.raises(ValueError, match="3 finite numbers"):
            TwoPointRule.from_phi(bad)
    for kwargs, match in [
        (dict(learning_rate_factor=0.0), "learning_rate_factor"),
        (dict(damping=-1.0), "damping"),
        (dict(cumulation=0.0), "cumulation"),
    ]:
        with pytest.raises(ValueError, match=match):
            TwoPointRule(**kwargs)


def test_file_round_trip_and_clear_errors(tmp_path):
    rule = TwoPointRule(2.0, 3.0, 0.5)
    save_rule(rule, tmp_path / "rule.pt", {"command": "test"})
    assert read_rule_file(tmp_path / "rule.pt") == (rule, {"command": "test"})
    with pytest.raises(FileNotFoundError, match="No two-point rule file"):
        read_rule_file(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="is a meta network"):
        read_rule_file(PRETRAINED_PATH)
    with pytest.raises(ValueError, match="is a pre-trained two-point rule"):
        read_controller_file(tmp_path / "rule.pt")
    th.save({"format": "sb3-bierl-tpa-rule", "version": VERSION + 1, "rule": {}}, tmp_path / "newer.pt")
    with pytest.raises(ValueError, match=f"format version {VERSION + 1}"):
        read_rule_file(tmp_path / "newer.pt")
    th.save({"format": "sb3-bierl-tpa-rule", "version": VERSION, "rule": {}}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="must give"):
        read_rule_file(tmp_path / "empty.pt")
    (tmp_path / "text.pt").write_text("not a file of torch")
    with pytest.raises(ValueError, match="not a saved two-point rule"):
        read_rule_file(tmp_path / "text.pt")
    # a network controller cannot take a rule, and a rule is only for meta="tpa"
    with pytest.raises(ValueError, match="is a pre-trained two-point rule"):
        BiERL("MlpPolicy", "Counting-v0", meta="lstm", meta_warm_start=tmp_path / "rule.pt")
    # OpenAI-ES's default meta level is TPA: the rule's file is its warm start
    assert BiERL("MlpPolicy", "Counting-v0", meta_warm_start=tmp_path / "rule.pt").meta == "tpa"
    with pytest.raises(ValueError, match="two-point rule for meta 'tpa'"):
        BiERL("MlpPolicy", "Counting-v0", meta="bold_driver", meta_warm_start=tmp_path / "rule.pt")


def test_a_zero_rule_runs_as_tpa_and_a_learned_one_starts_and_moves_as_it_says(tmp_path):
    save_rule(TwoPointRule(), tmp_path / "zero.pt")
    plain, zero = make(seed=4), make(seed=4, meta_warm_start=tmp_path / "zero.pt")
    assert rates(plain, 6) == rates(zero, 6)
    np.testing.assert_array_equal(plain.strategy.theta, zero.strategy.theta)
    # a start factor and a faster rule: the first rate is 0.01 * 2.5 (within the bounds: 0.01 / 8 to 0.04, the step
    # radius), and each later one moves by exp(s / 2) from the same tests the controller records
    save_rule(TwoPointRule(2.5, 2.0, 0.3), tmp_path / "fast.pt", {"command": "made here", "commit": "abc"})
    fast = make(seed=4, meta_warm_start=tmp_path / "fast.pt")
    controller = fast.meta_controller
    assert isinstance(controller, TwoPointController) and controller.rule == TwoPointRule(2.5, 2.0, 0.3)
    seen = rates(fast, 6)
    assert seen[0] == pytest.approx(0.025)
    s_values = []  # the cumulated test after each call, from the same run again
    replay = make(seed=4, meta_warm_start=tmp_path / "fast.pt")
    for _ in range(5):
        replay.learn(GENERATION, reset_num_timesteps=False)
        s_values.append(replay.meta_controller.s)
    expected = [0.025]
    for s in s_values:
        expected.append(float(np.clip(expected[-1] * np.exp(s / 2.0), 0.01 / 8, 0.04)))
    np.testing.assert_allclose(seen, expected)
    origin = fast.meta_controller.summary()["warm_start"]
    assert origin == {"command": "made here", "commit": "abc", "meta_generations": None}
    with pytest.raises(RuntimeError, match="before the first generation"):
        controller.set_rule(TwoPointRule())


def test_a_warm_started_model_saves_loads_and_continues_without_its_file(tmp_path):
    save_rule(TwoPointRule(3.0, 2.0, 0.5), tmp_path / "rule.pt")
    straight = make(seed=5, meta_warm_start=tmp_path / "rule.pt")
    straight.learn(8 * GENERATION)
    half = make(seed=5, meta_warm_start=tmp_path / "rule.pt")
    half.learn(4 * GENERATION)
    half.save(tmp_path / "model")
    (tmp_path / "rule.pt").unlink()  # the rule travels with the model
    resumed = BiERL.load(tmp_path / "model", env="Counting-v0")
    resumed.learn(straight.num_timesteps - half.num_timesteps, reset_num_timesteps=False)
    np.testing.assert_array_equal(resumed.strategy.theta, straight.strategy.theta)
    assert resumed.meta_controller.rule == TwoPointRule(3.0, 2.0, 0.5)
    assert resumed.hyperparameters == straight.hyperparameters


def test_inner_runs_of_a_rule(tmp_path):
    save_rule(TwoPointRule(), tmp_path / "rule.pt")
    common = dict(task=TINY, seed=3, start={"learning_rate": 0.004}, controller_file=str(tmp_path / "rule.pt"))
    common["bierl_kwargs"] = {"n_pairs": 4}
    fixed = run_inner(InnerRun(fixed=True, meta="tpa", **common))
    assert fixed["final_hyperparameters"] == {"learning_rate": pytest.approx(0.004)}  # ES at the start
    centre = run_inner(InnerRun(meta="tpa", **common))
    faster = run_inner(InnerRun(meta="tpa", phi=np.array([np.log(4.0), 0.0, 0.0]), **common))
    assert centre["final_hyperparameters"] != faster["final_hyperparameters"]
    for result in (fixed, centre, faster):  # the population's late mean return, normalised
        returns = result["centre_returns"]
        late = returns[-int(np.ceil(len(returns) / 2)) :]
        assert len(returns) > 2 and result["score"] == pytest.approx(np.mean(late))
        assert result["normalised"] == pytest.approx(TINY.normalise(result["score"]))


def test_pretraining_a_rule_resumes_and_records_what_it_learned(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--meta", "tpa", "--out", str(out), "--env", "CartPole-v1", "--scale", "0.015", "--n-pairs", "1"]
    argv += ["--tasks-per-generation", "1", "--n-processes", "1", "--sigma", "0.5", "--learning-rate", "0.2"]
    argv += ["--no-progress-bar"]
    pretrain_main([*argv, "--generations", "1"])
    assert "meta='tpa', meta_warm_start=" in capsys.readouterr().out
    rule, metadata = read_rule_file(out / CONTROLLER)
    assert metadata["pretraining"]["meta"] == "tpa" and metadata["meta_generations"] == 1
    assert metadata["curve"][0]["rule"] == {
        "learning_rate_factor": rule.learning_rate_factor, "damping": rule.damping, "cumulation": rule.cumulation,
    }  # fmt: skip
    assert all(np.abs(rule.to_phi()) > 0)  # one Adam step moved every constant off TPA as published
    json.dumps(metadata)
    pretrain_main([*argv, "--generations", "2"])  # resumes
    assert read_rule_file(out / CONTROLLER)[1]["meta_generations"] == 2
    # the checkpoint knows what it pre-trains: the same folder for a network is refused (nothing else differs)
    same = dict(n_pairs=1, tasks_per_generation=1, sigma=0.5, learning_rate=0.2, trainable="all")
    MetaTrainer(out, resolve_suite(["CartPole-v1"], 0.015), meta="tpa", **same)  # resumes
    with pytest.raises(ValueError, match="another configuration"):
        MetaTrainer(out, resolve_suite(["CartPole-v1"], 0.015), adapted=("learning_rate",), **same)
    assert (out / CHECKPOINT).exists()
    for kwargs, match in [
        (dict(meta="cma"), "meta must be one of"),
        (dict(meta="tpa", gain_spread=2.0), "for a meta network"),
        (dict(meta="tpa", adapted=("sigma",)), "learning rate alone"),
    ]:
        with pytest.raises(ValueError, match=match):
            MetaTrainer(tmp_path / "bad", (TINY,), **kwargs)
    # a rule to start from
    save_rule(TwoPointRule(2.0), tmp_path / "init.pt")
    trainer = MetaTrainer(tmp_path / "init", (TINY,), meta="tpa", init=tmp_path / "init.pt")
    assert trainer.controller.rule == TwoPointRule(2.0)


def test_the_shipped_rule_loads_records_how_it_was_made_and_sets_the_start():
    rule, metadata = read_rule_file("pretrained")
    assert metadata["meta_generations"] == 12 and len(metadata["commit"]) >= 40
    assert metadata["command"].startswith("python -m sb3_bierl.pretrain --meta tpa")
    model = make(meta_warm_start="pretrained")
    assert model.meta_controller.rule == rule
    model.learn(GENERATION)
    assert model.strategy.last_learning_rate == pytest.approx(min(0.01 * rule.learning_rate_factor, 0.04))


def test_set_rule_after_an_interrupted_first_generation_is_refused():
    model = make()

    class Stop(Exception):
        pass

    class StopAtFirstStep(BaseCallback):
        def _on_step(self) -> bool:
            raise Stop

    with pytest.raises(Stop):
        model.learn(GENERATION, callback=StopAtFirstStep())
    assert model.meta_controller.n_generations == 0  # interrupted before its end
    with pytest.raises(RuntimeError, match="before the first generation"):
        model.meta_controller.set_rule(TwoPointRule(3.0))


def test_held_out_evaluation_of_a_rule(tmp_path):
    from sb3_bierl.benchmarks import warm_start

    specs = warm_start.plan_runs(["Hopper-v5"], [0], ["defaults", "lr4"], 1, meta="tpa")
    assert [s.algo for s in specs] == ["warm_tpa", "tpa", "es", "warm_tpa-lr4", "tpa-lr4", "es-lr4"]
    save_rule(TwoPointRule(2.0), tmp_path / "rule.pt", {"commit": "abc"})
    out = tmp_path / "eval"
    argv = ["--meta", "tpa", "--controller", str(tmp_path / "rule.pt"), "--envs", "LunarLanderContinuous-v3"]
    argv += ["--seeds", "0", "--scale", "0.004", "--eval-episodes", "1", "--workers", "1", "--out", str(out)]
    assert warm_start.main([*argv, "--only", "warm", "bierl"]) == 0
    records = {r["algo"]: r for r in (json.loads(p.read_text()) for p in (out / "runs").glob("*.json"))}
    assert sorted(records) == ["tpa", "warm_tpa"]  # --only: the roles asked for
    warm = records["warm_tpa"]
    assert warm["warm_start"]["file"].endswith("rule.pt") and warm["warm_start"]["commit"] == "abc"
    assert warm["trace"][0][warm["trace_columns"].index("learning_rate")] == pytest.approx(0.02)
    assert records["tpa"]["trace"][0][records["tpa"]["trace_columns"].index("learning_rate")] == pytest.approx(0.01)
    with pytest.raises(SystemExit):  # a network file is not a rule
        warm_start.main(["--meta", "tpa", "--controller", str(PRETRAINED_PATH), "--out", str(out)])
