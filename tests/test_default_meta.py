"""BiERL's default meta level (issue 9, session 22): two-point adaptation for OpenAI-ES, the meta network otherwise."""

import inspect

import numpy as np
import pytest

from sb3_bierl import BiERL
from sb3_bierl.bierl.bierl import NETWORK_ARGUMENT_DEFAULTS, default_meta
from sb3_bierl.meta import MetaController, TwoPointController

SMALL = dict(n_pairs=3, policy_kwargs=dict(net_arch=[8]))


def test_openai_es_defaults_to_two_point_adaptation_the_others_to_the_network():
    assert default_meta("es") == "tpa" and all(default_meta(inner) == "lstm" for inner in ("nsr_es", "nsra_es", "esac"))
    model = BiERL("MlpPolicy", "Counting-v0", seed=0, **SMALL)
    assert model.meta == "tpa" and model.hyperparameter_bounds == {"learning_rate": (0.01 / 8, 0.01 * 8)}
    model.learn(600)
    assert isinstance(model.meta_controller, TwoPointController)
    # the same run as asking for it
    explicit = BiERL("MlpPolicy", "Counting-v0", seed=0, meta="tpa", **SMALL)
    explicit.learn(600)
    assert explicit.num_timesteps == model.num_timesteps
    np.testing.assert_array_equal(explicit.strategy.theta, model.strategy.theta)
    assert BiERL("MlpPolicy", "Counting-v0", inner="nsr_es", n_members=2, k_nearest=2, **SMALL).meta == "lstm"


def test_the_default_logs_its_test_and_cost_and_refuses_bounds_it_cannot_set(tmp_path):
    import pandas as pd
    from stable_baselines3.common.logger import configure

    model = BiERL("MlpPolicy", "Counting-v0", seed=0, **SMALL)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(1500)
    log = pd.read_csv(tmp_path / "progress.csv")
    for key in ["meta/two_point_z", "meta/step_overhead", "train/learning_rate"]:
        assert key in log.columns and log[key].notna().any()
    with pytest.raises(ValueError, match=r"meta='tpa' \(the default for OpenAI-ES\) adapts the learning rate alone"):
        BiERL("MlpPolicy", "Counting-v0", hyperparameter_bounds={"sigma": (0.01, 0.1)}, **SMALL)


def test_the_network_arguments_table_is_the_signature():
    parameters = inspect.signature(BiERL.__init__).parameters
    assert {name: parameters[name].default for name in NETWORK_ARGUMENT_DEFAULTS} == NETWORK_ARGUMENT_DEFAULTS


@pytest.mark.parametrize("kwargs", [dict(meta_interval=2), dict(meta_n_pairs=2, meta_sigma=0.2), dict(meta_trainable="all")])
def test_the_network_arguments_without_the_network_are_refused(kwargs):
    with pytest.raises(ValueError, match="BiERL's default meta level for OpenAI-ES is 'tpa'.*pass meta='lstm'"):
        BiERL("MlpPolicy", "Counting-v0", **SMALL, **kwargs)
    for rule in ("tpa", "bold_driver"):  # asked for by name, the rules refuse them too: they would be ignored
        with pytest.raises(ValueError, match=f"but meta='{rule}', a rule on the learning rate with no network"):
            BiERL("MlpPolicy", "Counting-v0", meta=rule, **SMALL, **kwargs)
    assert BiERL("MlpPolicy", "Counting-v0", meta="lstm", **SMALL, **kwargs).meta == "lstm"
    # a value equal to the default changes nothing, and is accepted
    assert BiERL("MlpPolicy", "Counting-v0", meta_interval=1, **SMALL).meta == "tpa"


def test_a_saved_network_model_loads_with_its_meta_level(tmp_path):
    """A model saved with the meta network (BiERL's default until session 22) stays one when loaded and trained on."""
    model = BiERL("MlpPolicy", "Counting-v0", seed=1, meta="lstm", **SMALL)
    model.learn(300)
    model.save(tmp_path / "network")
    loaded = BiERL.load(tmp_path / "network", env="Counting-v0")
    assert loaded.meta == "lstm"
    loaded.learn(300, reset_num_timesteps=False)
    assert isinstance(loaded.meta_controller, MetaController)
