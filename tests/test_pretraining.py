"""Long-horizon pre-training of the meta controller (issue 10) and the warm start it feeds."""

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_bierl import BiERL
from sb3_bierl.meta import HyperparameterSpace, MetaController
from sb3_bierl.meta.warm_start import read_controller_file
from sb3_bierl.pretrain import main as pretrain_main
from sb3_bierl.pretraining import DEFAULT_SUITE, HELD_OUT, InnerRun, MetaTrainer, PretrainingTask, run_inner
from sb3_bierl.pretraining.inner_run import late_mean
from sb3_bierl.pretraining.meta_trainer import CHECKPOINT, CONTROLLER, default_space
from sb3_bierl.pretraining.policy_gain import PolicyGain
from sb3_bierl.pretraining.suite import EXTRA_TASKS, resolve_suite

TINY = PretrainingTask("CartPole-v1", 1_500, 10.0, 500.0)
TINY_CONTINUOUS = PretrainingTask("Pendulum-v1", 2_000, -1400.0, -150.0)


def tiny_trainer(out_dir, **kwargs):
    kwargs = {"suite": (TINY,), "n_pairs": 1, "tasks_per_generation": 1, "bierl_kwargs": {"n_pairs": 4}, **kwargs}
    return MetaTrainer(out_dir, **kwargs)


def test_trainable_none_only_proposes():
    space = HyperparameterSpace({"sigma": (0.005, 0.08)}, {"sigma": 0.02})
    controller = MetaController(space, trainable="none", seed=0)
    assert not controller.learns_online
    assert controller.n_frozen == controller.phi.size and controller.strategy.dim == 0
    model = BiERL("MlpPolicy", "CartPole-v1", meta="lstm", n_pairs=2, meta_trainable="none", n_workers=1, seed=0)
    model.learn(3_000)
    summary = model.meta_controller.summary()
    assert summary["n_generations"] > 2 and summary["n_meta_updates"] == 0
    # a new readout starts at zero: the proposals stay at the initial values
    assert model.hyperparameters["sigma"] == pytest.approx(0.02) and model.hyperparameters[
        "learning_rate"
    ] == pytest.approx(0.01)


def test_suite_and_held_out_are_disjoint():
    assert not {task.env_id for task in DEFAULT_SUITE + EXTRA_TASKS} & set(HELD_OUT)
    # an extra task is chosen by name, never by default
    assert [t.env_id for t in resolve_suite(["CartPole-v1", "Walker2d-v5"])] == ["CartPole-v1", "Walker2d-v5"]
    assert "Walker2d-v5" not in [t.env_id for t in resolve_suite(None)]
    with pytest.raises(ValueError, match="held-out"):
        resolve_suite(["HalfCheetah-v5"])
    with pytest.raises(ValueError, match="Unknown pre-training task"):
        resolve_suite(["NoSuchEnv-v0"])
    assert [t.budget for t in resolve_suite(["Pendulum-v1"], scale=0.5)] == [100_000]
    assert TINY.normalise(10.0) == 0.0 and TINY.normalise(500.0) == 1.0


def test_late_mean():
    assert late_mean([0.0, 0.0, 1.0, 3.0], 0.5) == 2.0
    assert late_mean([5.0], 0.1) == 5.0
    assert np.isnan(late_mean([], 0.5))


def test_fixed_inner_run_keeps_its_start(tmp_path):
    trainer = tiny_trainer(tmp_path)
    trainer.save()
    start = {"sigma": 0.05, "learning_rate": 0.004}
    run = InnerRun(
        TINY, seed=3, start=start, controller_file=str(tmp_path / CONTROLLER), fixed=True, bierl_kwargs={"n_pairs": 4}
    )
    result = run_inner(run)
    assert result["final_hyperparameters"] == pytest.approx(start)
    assert result["num_timesteps"] >= TINY.budget and len(result["centre_returns"]) > 1
    assert result["score"] == late_mean(result["centre_returns"], 0.5)
    # the inner run may use rollout workers: the same run, the same score
    workers = run_inner(dataclasses.replace(run, bierl_kwargs={"n_pairs": 4, "n_workers": 2, "backend": "processes"}))
    assert workers["centre_returns"] == result["centre_returns"]


def test_meta_trainer_steps_checkpoints_and_resumes(tmp_path):
    trainer = tiny_trainer(tmp_path, seed=1)
    theta = trainer.controller.strategy.theta.copy()
    record = trainer.step()
    assert record["generation"] == 1 and len(record["tasks"]) == 1 and len(record["tasks"][0]["candidates"]) == 2
    assert not np.array_equal(theta, trainer.controller.strategy.theta)
    saved = read_controller_file(tmp_path / CONTROLLER)
    assert saved["metadata"]["meta_trainable"] == "none" and saved["metadata"]["meta_generations"] == 1
    assert len(saved["metadata"]["curve"]) == 1 and saved["metadata"]["commit"]
    assert np.allclose(saved["phi"].numpy(), trainer.controller.phi)
    # a new trainer on the folder continues where the first stopped, with the same next draws
    resumed = tiny_trainer(tmp_path, seed=1)
    assert resumed.generation == 1 and np.array_equal(
        resumed.controller.strategy.theta, trainer.controller.strategy.theta
    )
    assert resumed.plan() == trainer.plan()
    with pytest.raises(ValueError, match="another configuration"):
        tiny_trainer(tmp_path, seed=1, sigma=0.2)
    # random starts lie inside the bounds, within start_spread of the unit scale
    space = default_space()
    for _, _, start, gain in tiny_trainer(tmp_path / "other", seed=2, start_spread=0.5).plan():
        assert np.all(np.abs(space.to_unit(start)) <= 0.5 + 1e-9) and gain == 1.0


def test_sigma_only_controller(tmp_path):
    """``adapted=("sigma",)`` (the authors' choice): the controller sets sigma, every run keeps BiERL's learning rate."""
    trainer = tiny_trainer(tmp_path, adapted=("sigma",), seed=4, start_spread=0.5)
    assert trainer.space.names == ["sigma"]
    for _, _, start, _ in trainer.plan():
        assert list(start) == ["sigma"] and start["sigma"] != pytest.approx(0.02)
    record = trainer.step()
    assert record["generation"] == 1
    saved = read_controller_file(tmp_path / CONTROLLER)
    assert list(saved["hyperparameters"]) == ["sigma"] and saved["metadata"]["pretraining"]["adapted"] == ["sigma"]
    model = BiERL("MlpPolicy", "CartPole-v1", meta="lstm", n_pairs=4, n_workers=1, seed=0, meta_warm_start=tmp_path / CONTROLLER)
    assert model.meta_controller.space.names == ["sigma"]
    model.learn(1_500)
    assert model.hyperparameters["learning_rate"] == pytest.approx(0.01)  # not adapted: BiERL's default
    # resuming asks for the same hyperparameters; a controller file for others is refused as a start
    with pytest.raises(ValueError, match="another configuration"):
        tiny_trainer(tmp_path, seed=4, start_spread=0.5)
    with pytest.raises(ValueError, match="sets \\['sigma'\\]"):
        tiny_trainer(tmp_path / "other", init=tmp_path / CONTROLLER)
    # the order given does not change the configuration (a resume with the names in another order is the same run)
    assert tiny_trainer(tmp_path / "a", adapted=("learning_rate", "sigma")).config == tiny_trainer(tmp_path / "b").config
    for bad in ((), ("sigma", "sigma"), ("weight_decay",)):
        with pytest.raises(ValueError, match="adapted must name"):
            default_space(bad)


def test_policy_gain_scales_the_pre_squash_output():
    env = PolicyGain(gym.make("Pendulum-v1"), 4.0)  # actions in [-2, 2]
    policy_output = np.tanh(np.array([-0.3, 0.0, 0.1, 0.5]))  # a tanh-squashed policy's output, unit scale
    moved = np.array([env.action(np.array([2 * u], dtype=np.float32))[0] for u in policy_output]) / 2
    assert moved == pytest.approx(np.tanh(4.0 * np.arctanh(policy_output)), abs=1e-5)
    assert env.action(np.array([2.0], dtype=np.float32))[0] == pytest.approx(2.0)  # the bounds stay reachable
    assert PolicyGain(gym.make("Pendulum-v1"), 1.0).action(np.array([0.7], dtype=np.float32))[0] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="bounded Box"):
        PolicyGain(gym.make("CartPole-v1"), 2.0)
    with pytest.raises(ValueError, match="positive"):
        PolicyGain(gym.make("Pendulum-v1"), 0.0)


def test_gains_are_drawn_for_continuous_tasks_only(tmp_path):
    suite = (TINY_CONTINUOUS, TINY)
    trainer = MetaTrainer(tmp_path, suite, n_pairs=1, tasks_per_generation=2, gain_spread=4.0, seed=3)
    gains = [gain for _, _, _, gain in trainer.plan()]
    assert 0.25 <= gains[0] <= 4.0 and gains[0] != 1.0 and gains[1] == 1.0
    # the inner run sees the gain: the same seed and start, another return
    runs = [
        InnerRun(
            TINY_CONTINUOUS,
            3,
            {"sigma": 0.05, "learning_rate": 0.02},
            "pretrained",
            fixed=True,
            policy_gain=gain,
            bierl_kwargs={"n_pairs": 4},
        )
        for gain in (1.0, 4.0)
    ]
    plain, scaled = (run_inner(run) for run in runs)
    assert scaled["policy_gain"] == 4.0 and plain["centre_returns"] != scaled["centre_returns"]
    with pytest.raises(ValueError, match="gain_spread"):
        MetaTrainer(tmp_path / "bad", suite, gain_spread=0.5)


def test_pretrained_file_warm_starts_bierl(tmp_path):
    trainer = tiny_trainer(tmp_path)
    trainer.save()
    model = BiERL("MlpPolicy", "CartPole-v1", meta="lstm", n_pairs=2, meta_warm_start=tmp_path / CONTROLLER, n_workers=1, seed=0)
    # the file says how it runs (no online meta update) and on which scale (its bounds)
    assert model.meta_trainable == "none" and model.hyperparameter_bounds == {
        "sigma": (0.0025, 0.16),
        "learning_rate": (0.00125, 0.08),
    }
    assert np.allclose(model.meta_controller.phi, trainer.controller.phi)
    model.learn(1_000)
    assert model.meta_controller.n_meta_updates == 0
    origin = model.meta_controller.summary()["warm_start"]
    assert (
        origin["meta_generations"] == 0
        and origin["commit"] == read_controller_file(tmp_path / CONTROLLER)["metadata"]["commit"]
    )
    online = BiERL("MlpPolicy", "CartPole-v1", meta="lstm", meta_warm_start=tmp_path / CONTROLLER, meta_trainable="last_layer")
    assert online.meta_controller.learns_online
    with pytest.raises(ValueError, match="outside the bounds"):
        BiERL("MlpPolicy", "CartPole-v1", meta="lstm", sigma=0.5, meta_warm_start=tmp_path / CONTROLLER)
    custom = BiERL(
        "MlpPolicy",
        "CartPole-v1",
        meta="lstm",
        sigma=0.5,
        hyperparameter_bounds={"sigma": (0.1, 1.0), "learning_rate": (0.001, 0.1)},
        meta_warm_start=tmp_path / CONTROLLER,
    )
    assert custom.meta_controller.space.parameters[0].initial == 0.5


def test_trainer_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="nothing to pre-train"):
        tiny_trainer(tmp_path, trainable="none")
    with pytest.raises(ValueError, match="start_spread"):
        tiny_trainer(tmp_path, start_spread=1.5)
    with pytest.raises(ValueError, match="at least 1"):
        tiny_trainer(tmp_path, n_pairs=0)


def test_pretrain_command(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "--out",
        str(out),
        "--env",
        "CartPole-v1",
        "--scale",
        "0.015",
        "--n-pairs",
        "1",
        "--tasks-per-generation",
        "1",
        "--n-processes",
        "1",
        "--no-progress-bar",
    ]
    pretrain_main([*argv, "--generations", "1"])
    assert (out / CHECKPOINT).exists() and "meta_warm_start" in capsys.readouterr().out
    saved = read_controller_file(out / CONTROLLER)
    assert saved["metadata"]["command"].startswith("python -m sb3_bierl.pretrain --out")
    assert saved["metadata"]["pretraining"]["budgets"] == {"CartPole-v1": 1500}
    # the same command again resumes: the folder is at its target already, a second generation when asked
    pretrain_main([*argv, "--generations", "2"])
    assert read_controller_file(out / CONTROLLER)["metadata"]["meta_generations"] == 2
    with pytest.raises(SystemExit):
        pretrain_main(["--out", str(tmp_path / "x"), "--env", "Hopper-v5"])
    json.dumps(saved["metadata"])  # the metadata is plain data
    assert isinstance(saved["phi"], th.Tensor)


def test_held_out_evaluation(tmp_path, monkeypatch):
    from sb3_bierl.benchmarks import aggregates, warm_start

    monkeypatch.setattr(aggregates, "BOOTSTRAP_REPS", 100)  # the report's intervals: fast

    with pytest.raises(ValueError, match="pre-training task"):
        warm_start.plan_runs(["Pendulum-v1"], [0], ["defaults"], 1)
    with pytest.raises(ValueError, match="pre-training task"):  # an extra task of the suite is not held out either
        warm_start.plan_runs(["Walker2d-v5"], [0], ["defaults"], 1)
    specs = warm_start.plan_runs(["Hopper-v5"], [0, 1], ["defaults", "s4"], 1, scale=0.5)
    assert [s.algo for s in specs[:6]] == ["warm", "bierl", "es", "warm-s4", "bierl-s4", "es-s4"] and specs[
        0
    ].budget == 250_000
    # a control (ES at another fixed setting) runs once per task and seed under its own name, whatever the starts
    for starts in (["defaults", "s4"], ["s4", "defaults"]):
        specs = warm_start.plan_runs(["Hopper-v5"], [0, 1], starts, 1, controls=["es-s1.5-lr3", "es-s1.5-lr3"])
        assert sorted((s.algo, s.seed) for s in specs if "1.5" in s.algo) == [("es-s1.5-lr3", 0), ("es-s1.5-lr3", 1)]
    for controls, error in [
        (["bierl-s2"], "ES at a fixed setting"),
        (["es"], "other than its defaults"),
        (["es-n8"], "default n_pairs"),
        (["es-s1.50"], "as 'es-s1.5'"),
    ]:
        with pytest.raises(ValueError, match=error):
            warm_start.plan_runs(["Hopper-v5"], [0], ["defaults"], 1, controls=controls)
    with pytest.raises(ValueError, match="add the start 'defaults'"):
        warm_start.plan_runs(["Hopper-v5"], [0], ["s4"], 1, controls=["es-s2"])
    trainer = tiny_trainer(tmp_path / "pretrain")
    trainer.save()
    out = tmp_path / "eval"
    argv = [
        "--controller",
        str(tmp_path / "pretrain" / CONTROLLER),
        "--envs",
        "LunarLanderContinuous-v3",
        "--seeds",
        "0",
    ]
    assert (
        warm_start.main(
            [*argv, "--scale", "0.004", "--eval-episodes", "1", "--workers", "1", "--out", str(out)]
            + ["--controls", "es-s2"]
        )
        == 0
    )
    records = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    assert sorted(r["algo"] for r in records) == ["bierl", "es", "es-s2", "warm"]
    assert next(r for r in records if r["algo"] == "es-s2")["initial_hyperparameters"]["sigma"] == pytest.approx(0.04)
    warm = next(r for r in records if r["algo"] == "warm")
    assert warm["warm_start"]["file"].endswith(CONTROLLER) and warm["meta"]["n_meta_updates"] == 0
    assert next(r for r in records if r["algo"] == "bierl")["meta"]["n_meta_updates"] > 0
    report = (out / "results.md").read_text()
    assert "warm > bierl" in report and "warm > es-s2" in report and "bierl > es-s2" in report
    # a missing control run narrows only the comparisons with the controls, not warm / bierl / es
    records = [
        {**r, "env": env, "seed": seed} for r in records for env in ("Hopper-v5", "Swimmer-v5") for seed in (0, 1)
    ]
    records = [r for r in records if not (r["algo"] == "es-s2" and r["env"] == "Swimmer-v5")]
    report = warm_start.make_report(records, controls=["es-s2"])
    base, controls = report.split("### Against ES at other fixed settings")
    assert "on Swimmer-v5, Hopper-v5, seeds [0, 1]" in base and "on Hopper-v5, seeds [0, 1]" in controls
    assert "ES fixed at sigma 0.04, learning rate 0.01" in controls


def test_gain_response_measures_whether_the_controller_reads_the_history(tmp_path):
    from sb3_bierl.pretraining.plots import gain_response, plot_curve

    def records(sigma_of_gain):
        tasks = [
            {
                "env": "Pendulum-v1",
                "policy_gain": g,
                "centre_final_hyperparameters": {"sigma": sigma_of_gain(g), "learning_rate": 0.01},
            }
            for g in (0.3, 0.5, 2.0, 3.5)
        ] + [
            {
                "env": "CartPole-v1",
                "policy_gain": 1.0,
                "centre_final_hyperparameters": {"sigma": 5.0, "learning_rate": 0.01},
            }
        ]
        return [{"generation": 1, "centre": 0.5, "fixed": 0.4, "candidates": 0.45, "tasks": tasks}]

    assert gain_response(records(lambda g: 0.02 / g)) == (pytest.approx(-1.0), 4)  # instances without a gain left out
    assert gain_response(records(lambda g: 0.03))[0] == pytest.approx(0.0, abs=1e-9)  # the same place everywhere
    assert np.isnan(gain_response([])[0])
    assert (
        plot_curve(records(lambda g: 0.02 / g) * 2, tmp_path / "curve.png") and (tmp_path / "curve.png").stat().st_size
    )


def test_trainer_can_start_from_standardised_features(tmp_path):
    plain = tiny_trainer(tmp_path / "plain", seed=4).controller.network
    standardised = tiny_trainer(tmp_path / "std", seed=4, standardise_features=True)
    first_layer = standardised.controller.network.generator[0].weight
    assert not th.allclose(plain.generator[0].weight, first_layer)  # rescaled...
    assert th.allclose(plain.encoder.weight_ih_l0, standardised.controller.network.encoder.weight_ih_l0)  # ...only it
    assert standardised.config["standardise_features"] is True
    assert standardised.controller.propose() == pytest.approx({"sigma": 0.02, "learning_rate": 0.01})
    with pytest.raises(ValueError, match="drop one"):
        tiny_trainer(tmp_path / "both", standardise_features=True, init="pretrained")
