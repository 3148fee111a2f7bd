import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import CountingEnv

from sb3_bierl.bierl.variants import BiERLESAC
from sb3_bierl import ESAC, BiERL

SMALL = dict(n_pairs=3, policy_kwargs=dict(net_arch=[16]), learning_starts=200, batch_size=32, buffer_size=10_000)


def make(env="Counting-v0", seed=0, **kwargs):
    return ESAC("MlpPolicy", env, seed=seed, **{**SMALL, **kwargs})


def sac_actions(model, obs):
    return model.sac.predict(obs, deterministic=True)[0]


def test_sac_actor_and_es_policy_give_the_same_actions():
    model = make("Pendulum-v1")  # actions in [-2, 2]: checks the rescaling too
    obs = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    # ES -> SAC
    model.strategy.theta += np.random.default_rng(1).normal(0, 0.3, model.n_params)
    model.sync_policy()
    model.load_centre_into_sac_actor()
    np.testing.assert_allclose(model.predict(obs, deterministic=True)[0], sac_actions(model, obs), atol=1e-6)
    # SAC -> ES
    with th.no_grad():
        for p in model.sac.actor.parameters():
            p.add_(th.randn_like(p) * 0.3)
    model.strategy.theta = model.sac_actor_vector()
    model.sync_policy()
    np.testing.assert_allclose(model.predict(obs, deterministic=True)[0], sac_actions(model, obs), atol=1e-6)
    # ... and the batched population evaluation acts the same way
    result = model.evaluator.evaluate(
        model.policy, model.strategy.theta[None].astype(np.float32), np.array([[3]]), record_transitions=True
    )
    transitions = result.transitions
    np.testing.assert_allclose(transitions.actions, sac_actions(model, transitions.observations), atol=1e-5)


def test_every_step_reaches_the_replay_buffer_and_is_counted():
    model = make(n_elites=2, gradient_steps_ratio=0.5)
    model.learn(1500)
    buffer = model.sac.replay_buffer
    assert model.num_timesteps == CountingEnv.total_steps == buffer.size() >= 1500
    n = buffer.size()
    assert np.all(np.abs(buffer.actions[:n]) <= 1)
    # CountingEnv only truncates (every 20 steps): timeouts, never a true termination
    assert buffer.timeouts[:n].sum() == n // 20
    np.testing.assert_array_equal(buffer.dones[:n], buffer.timeouts[:n])
    # SAC trained gradient_steps_ratio steps per environment step once the buffer was full enough
    assert 0 < model.sac._n_updates <= 0.5 * (n - 200) + 1
    assert len(model.elites) == 2 and model.centre_return is not None


def test_injection_replaces_the_centre_when_sac_is_better():
    model = make(injection_interval=1)
    model.learn(800)
    assert model.sac._n_updates > 0
    # Make SAC's actor the optimal one on CountingEnv (action = first two observation entries): it must win
    with th.no_grad():
        model.sac.actor.latent_pi[0].weight.zero_()
        model.sac.actor.latent_pi[0].bias.zero_()
        model.sac.actor.latent_pi[0].weight[:3, :3] = th.eye(3)  # relu(obs) and relu(-obs) -> identity
        model.sac.actor.latent_pi[0].weight[3:6, :3] = -th.eye(3)
        model.sac.actor.mu.weight.zero_()
        model.sac.actor.mu.bias.zero_()
        for i in range(2):
            model.sac.actor.mu.weight[i, i], model.sac.actor.mu.weight[i, 3 + i] = 1.0, -1.0
    injections = model.n_injections
    model._evaluate_centre_elites_and_sac()  # the end of a generation
    assert model.n_injections == injections + 1
    np.testing.assert_array_equal(model.strategy.theta, model.sac_actor_vector())
    np.testing.assert_array_equal(model.elites[0], model.sac_actor_vector())  # and the best elite
    model.learn(300, reset_num_timesteps=False)  # and ES goes on from there


def test_sigma_adaptation_stays_in_bounds_and_can_be_switched_off():
    model = make(sigma=0.02, sigma_bounds=(0.01, 0.03))
    model.learn(2000)
    assert 0.01 <= model.sigma <= 0.03 and model.sigma != 0.02
    model = make(sigma=0.02, sigma_adaptation=False)
    model.learn(1000)
    assert model.sigma == 0.02


def test_save_load_predicts_the_same_and_learns_on(tmp_path):
    model = make(learning_starts=100)
    model.learn(1200)
    model.save(tmp_path / "esac")
    loaded = ESAC.load(tmp_path / "esac", env="Counting-v0")
    obs = np.random.default_rng(0).uniform(-1, 1, (6, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    for name, tensor in model.sac.policy.state_dict().items():
        th.testing.assert_close(tensor, loaded.sac.policy.state_dict()[name])
    th.testing.assert_close(model.sac.log_ent_coef, loaded.sac.log_ent_coef)
    np.testing.assert_array_equal(model.elites, loaded.elites)
    assert loaded.sigma == model.sigma
    steps = loaded.num_timesteps
    loaded.learn(600, reset_num_timesteps=False)
    assert loaded.num_timesteps >= steps + 600 and loaded.sac._n_updates > 0


def test_same_seed_same_result():
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    for model in (a, b, c):
        model.learn(1200)
    np.testing.assert_array_equal(a.strategy.theta, b.strategy.theta)
    np.testing.assert_array_equal(a.sac_actor_vector(), b.sac_actor_vector())
    assert not np.array_equal(a.strategy.theta, c.strategy.theta)


def test_under_the_bierl_meta_level():
    """The shipped ``BiERL(inner="esac")`` (``bierl/variants.py``'s ``BiERLESAC``): meta generations feed the
    buffer, SAC still trains in them, and AMT leaves sigma to the meta level."""
    model = BiERL("MlpPolicy", "Counting-v0", inner="esac", seed=0, meta_interval=2, meta_n_pairs=1, meta_history_length=4, **SMALL)
    assert type(model) is BiERLESAC and isinstance(model, ESAC)
    assert not model.adapt_sigma_automatically
    assert isinstance(model.sac.replay_buffer.size(), int)
    model.learn(2500)
    assert model.meta_controller.n_meta_updates >= 1
    assert model.num_timesteps == CountingEnv.total_steps == model.sac.replay_buffer.size()
    assert model.sac._n_updates > 0
    assert model.sigma == 0.02  # the meta level sets sigma every generation: AMT stays off


def test_discrete_action_space_is_rejected():
    with pytest.raises(ValueError, match=r"continuous \(Box\) action space.*Discrete.*use ES or BiERL"):
        ESAC("MlpPolicy", "CartPole-v1")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sac_kwargs=dict(use_sde=True)), "sac_kwargs may not set"),
        (dict(sac_kwargs=dict(policy_kwargs=dict(net_arch=[8]))), "critic_net_arch"),
        (dict(policy_kwargs=dict(net_arch=[16], normalize_observations=True)), "normalize_observations=False"),
        (dict(n_elites=-1), "n_elites"),
        (dict(gradient_steps_ratio=-1.0), "gradient_steps_ratio"),
        (dict(target_success_rate=1.0), "target_success_rate"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_non_finite_rewards_stay_out_of_the_replay_buffer():
    gym.register("CountingNaN-v0", entry_point=CountingEnv, kwargs=dict(nan_every=7))
    model = make("CountingNaN-v0")
    model.learn(1000)
    n = model.sac.replay_buffer.size()
    assert model.num_timesteps == CountingEnv.total_steps
    assert n == model.num_timesteps - model.num_timesteps // 7
    assert np.all(np.isfinite(model.sac.replay_buffer.rewards[:n]))
    assert np.all(np.isfinite(model.strategy.theta)) and np.all(np.isfinite(model.sac_actor_vector()))


def test_worker_processes_fill_the_replay_buffer():
    model = make(backend="processes", n_workers=2)
    model.learn(800)
    assert model.sac.replay_buffer.size() == model.num_timesteps >= 800
    assert model.sac._n_updates > 0


def test_a_stop_asked_during_the_population_ends_the_generation_whole():
    """A callback that returns False during a generation's population: ESAC's step, SAC's training and the centre's
    and elites' evaluation still run (the generation is counted), so a later ``learn`` goes on as one straight run."""
    from stable_baselines3.common.callbacks import BaseCallback

    def make_esac():
        return ESAC("MlpPolicy", "Counting-v0", seed=5, **{**SMALL, "policy_kwargs": dict(net_arch=[8]), "n_pairs": 4})

    straight = make_esac()
    while straight._n_updates < 6:
        straight.learn(1, reset_num_timesteps=False)

    class StopOnce(BaseCallback):
        def _on_step(self) -> bool:
            in_population = getattr(self, "in_population", False)
            if self.model._n_updates == 3 and in_population and not getattr(self, "done", False):
                self.done = True
                return False
            return True

        def _on_rollout_start(self) -> None:
            self.in_population = True

        def _on_rollout_end(self) -> None:
            self.in_population = False

    stopped = make_esac()
    stopped.learn(10**6, callback=StopOnce())
    assert stopped._n_updates == 4
    while stopped._n_updates < 6:
        stopped.learn(1, reset_num_timesteps=False)
    np.testing.assert_array_equal(stopped.strategy.theta, straight.strategy.theta)
    assert stopped.num_timesteps == straight.num_timesteps
