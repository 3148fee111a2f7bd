"""The meta-level variants (LSTM, mean-pool, Optuna, none) and warm start."""

import numpy as np
import pytest
import torch as th
from conftest import CountingEnv

from sb3_bierl import BiERL
from sb3_bierl.meta import PRETRAINED_PATH, MetaController, OptunaController, read_controller_file
from sb3_bierl.meta.history import GenerationSummary

SMALL = dict(n_pairs=3, policy_kwargs=dict(net_arch=[8]), meta_interval=2, meta_n_pairs=1, meta_history_length=4)


def make(seed=0, **kwargs):
    """BiERL with the meta network (``meta="lstm"``, not OpenAI-ES's default, ``"tpa"``) unless ``kwargs`` say"""
    return BiERL("MlpPolicy", "Counting-v0", seed=seed, **{"meta": "lstm", **SMALL, **kwargs})


def test_optuna_controller_counts_steps_and_is_deterministic(tmp_path):
    a, b = make(seed=3, meta="optuna"), make(seed=3, meta="optuna")
    assert isinstance(a.meta_controller, OptunaController)
    a.learn(2000)
    assert a.num_timesteps == CountingEnv.total_steps
    assert a.meta_controller.n_meta_updates >= 2
    assert len(a.meta_controller.study.trials) == 2 * a.meta_controller.n_meta_updates
    b.learn(2000)
    np.testing.assert_array_equal(a.strategy.theta, b.strategy.theta)
    assert a.meta_controller.incumbent == b.meta_controller.incumbent
    # the study's proposals stay inside the bounds
    for trial in a.meta_controller.study.trials:
        for name, (low, high) in a.hyperparameter_bounds.items():
            assert low <= trial.params[name] <= high
    # saves and loads with its study, and trains on
    a.save(tmp_path / "optuna")
    loaded = BiERL.load(tmp_path / "optuna", env="Counting-v0")
    assert len(loaded.meta_controller.study.trials) == len(a.meta_controller.study.trials)
    loaded.learn(1000, reset_num_timesteps=False)


def test_no_meta_level_is_the_plain_algorithm():
    from sb3_bierl import ES

    plain = make(seed=4, meta="none")
    assert plain.meta_controller is None
    plain.learn(1500)
    es = ES("MlpPolicy", "Counting-v0", seed=4, n_pairs=3, policy_kwargs=dict(net_arch=[8]))
    es.learn(1500)
    np.testing.assert_array_equal(plain.strategy.theta, es.strategy.theta)
    assert plain.hyperparameters == es.hyperparameters


def test_controller_saves_alone_and_warm_starts_another_model(tmp_path):
    source = make(seed=1)
    source.learn(2000)
    assert source.meta_controller.n_meta_updates >= 1
    path = tmp_path / "controller.pt"
    source.meta_controller.save(path)
    warm = make(seed=2, meta_warm_start=path)
    np.testing.assert_array_equal(warm.meta_controller.phi, source.meta_controller.phi)
    # same history -> same proposal
    for controller in (warm.meta_controller, source.meta_controller):
        controller.history.rows.clear()
        controller.history.previous = None
        for k in range(3):
            summary = GenerationSummary(np.arange(6.0) + k, centre_return=2.5 + k, step_agreement=0.5)
            controller.history.append(summary, controller.space.to_unit({"sigma": 0.02, "learning_rate": 0.01}))
    assert warm.meta_controller.propose() == source.meta_controller.propose()
    warm.learn(1000)
    # the warm-start file is recorded and the model saves and loads
    warm.save(tmp_path / "warm")
    assert BiERL.load(tmp_path / "warm").meta_warm_start == str(path)


def test_warm_start_keeps_the_file_network_sizes(tmp_path):
    source = make(seed=1, meta="mean", meta_hidden_size=5)
    source.meta_controller.save(tmp_path / "c.pt")
    warm = make(meta_warm_start=tmp_path / "c.pt")  # asks for lstm/16 by default: the file wins
    assert warm.meta_controller.network.encoder_type == "mean"
    assert warm.meta_controller.network.hidden_size == 5


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(hyperparameter_bounds={"sigma": (0.005, 0.08)}), ValueError, "sets \\['sigma', 'learning_rate'\\]"),
        (dict(meta="optuna"), ValueError, "meta 'lstm' or 'mean'"),
    ],
)
def test_warm_start_errors(tmp_path, kwargs, error, match):
    make(seed=1).meta_controller.save(tmp_path / "c.pt")
    with pytest.raises(error, match=match):
        make(meta_warm_start=tmp_path / "c.pt", **kwargs)


def test_warm_start_file_that_is_not_a_controller(tmp_path):
    with pytest.raises(FileNotFoundError, match="No meta controller"):
        make(meta_warm_start=tmp_path / "missing.pt")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a saved meta controller"):
        make(meta_warm_start=tmp_path / "notes.txt")
    th.save({"weights": th.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved meta controller"):
        make(meta_warm_start=tmp_path / "other.pt")


def test_warm_start_file_of_an_older_release(tmp_path):
    """A version-1 file (five features per generation) gives an error that says to pre-train again."""
    make(seed=1).meta_controller.save(tmp_path / "c.pt")
    data = th.load(tmp_path / "c.pt", weights_only=True)
    data["version"] = 1
    th.save(data, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="format version 1.*python -m sb3_bierl.pretrain"):
        make(meta_warm_start=tmp_path / "old.pt")


def test_unknown_meta_level_and_inner():
    with pytest.raises(ValueError, match="meta must be one of"):
        make(meta="gru")
    with pytest.raises(ValueError, match="inner must be one of"):
        make(inner="cma_es")


def test_shipped_pretrained_controller():
    assert PRETRAINED_PATH.exists(), f"the package must ship its pre-trained controller at {PRETRAINED_PATH}"
    data = read_controller_file("pretrained")
    assert data["hyperparameters"] == ["sigma", "learning_rate"]
    # written by the long-horizon pre-training, which records how, from which code, and how it is meant to run
    metadata = data["metadata"]
    assert metadata["command"].startswith("python -m sb3_bierl.pretrain") and len(metadata["commit"]) >= 40
    assert metadata["meta_trainable"] == "none" and metadata["meta_generations"] == len(metadata["curve"]) > 0
    model = make(meta_warm_start="pretrained")
    assert isinstance(model.meta_controller, MetaController) and model.meta_trainable == "none"
    assert model.hyperparameter_bounds == {name: tuple(data["bounds"][name]) for name in data["hyperparameters"]}
    model.learn(1000)
    assert model.meta_controller.n_meta_updates == 0


def test_bierl_wraps_nsr_es_and_adapts_the_novelty_weight(tmp_path):
    from sb3_bierl import NSRES
    from sb3_bierl.bierl.variants import BiERLNSRES

    model = make(seed=2, inner="nsr_es", n_members=2, k_nearest=2)
    assert isinstance(model, BiERLNSRES) and isinstance(model, BiERL) and isinstance(model, NSRES)
    assert model.meta_controller.space.names == ["sigma", "learning_rate", "novelty_weight"]
    model.learn(3000)
    assert model.num_timesteps == CountingEnv.total_steps
    assert model.meta_controller.n_meta_updates >= 1
    low, high = model.hyperparameter_bounds["novelty_weight"]
    assert low <= model.hyperparameters["novelty_weight"] <= high
    model.save(tmp_path / "bierl_nsr")
    loaded = BiERL.load(tmp_path / "bierl_nsr", env="Counting-v0")  # finds the class from the saved inner
    assert type(loaded) is BiERLNSRES
    obs = np.zeros((4, 3), np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    loaded.learn(1000, reset_num_timesteps=False)


def test_warm_start_file_must_match_the_inner_hyperparameters(tmp_path):
    make(seed=1).meta_controller.save(tmp_path / "es_controller.pt")  # sets sigma and learning_rate
    with pytest.raises(ValueError, match="novelty_weight"):
        make(inner="nsr_es", n_members=2, k_nearest=2, meta_warm_start=tmp_path / "es_controller.pt")


def test_bierl_wraps_esac(tmp_path):
    from sb3_bierl import ESAC
    from sb3_bierl.bierl.variants import BiERLESAC

    model = make(seed=3, inner="esac", learning_starts=100, batch_size=16, buffer_size=10_000)
    assert isinstance(model, BiERLESAC) and isinstance(model, ESAC)
    assert not model.adapt_sigma_automatically  # the meta level sets sigma
    model.learn(3000)
    assert model.num_timesteps == CountingEnv.total_steps == model.sac.replay_buffer.size()
    assert model.meta_controller.n_meta_updates >= 1
    model.save(tmp_path / "bierl_esac")
    loaded = BiERL.load(tmp_path / "bierl_esac", env="Counting-v0")
    assert type(loaded) is BiERLESAC
    obs = np.zeros((4, 3), np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    only_lr = make(seed=3, inner="esac", hyperparameter_bounds={"learning_rate": (0.0025, 0.04)})
    assert only_lr.adapt_sigma_automatically  # ESAC keeps tuning sigma itself


def test_meta_encoder_is_a_deprecated_name_of_meta(tmp_path):
    with pytest.warns(FutureWarning, match="use meta="):
        model = make(seed=0, meta_encoder="mean")
    assert model.meta == model.meta_encoder == "mean"
    model.save(tmp_path / "m")
    assert BiERL.load(tmp_path / "m").meta == "mean"
