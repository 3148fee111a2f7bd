import numpy as np
import pytest

from sb3_bierl.strategies import Adam, NoiseTable, OpenAIES, Population, centered_ranks, finite_or_worst


def test_centered_ranks_values():
    ranks = centered_ranks(np.array([3.0, -1.0, 10.0, 0.0, 5.0]))
    np.testing.assert_allclose(ranks, [0.0, -0.5, 0.5, -0.25, 0.25])
    assert ranks.sum() == pytest.approx(0.0)


def test_centered_ranks_ties_and_shape():
    ranks = centered_ranks(np.array([[1.0, 1.0], [2.0, 0.0]]))
    assert ranks.shape == (2, 2)
    assert ranks[0, 0] == ranks[0, 1]
    assert ranks.min() == -0.5 and ranks.max() == 0.5
    # invariant to monotone transforms of the values
    x = np.random.default_rng(0).normal(size=20)
    np.testing.assert_allclose(centered_ranks(x), centered_ranks(np.exp(3 * x) + 7))


def test_finite_or_worst():
    np.testing.assert_allclose(finite_or_worst(np.array([1.0, np.nan, 3.0, np.inf])), [1.0, 1.0, 3.0, 1.0])
    assert finite_or_worst(np.array([np.nan, -np.inf])) is None


def test_noise_table_deterministic_and_checks_size():
    a, b = NoiseTable(1000, seed=3), NoiseTable(1000, seed=3)
    np.testing.assert_array_equal(a.noise, b.noise)
    idx = a.sample_indices(np.random.default_rng(0), 5, 100)
    assert idx.min() >= 0 and idx.max() <= 900
    np.testing.assert_array_equal(a.get_batch(idx, 100)[2], a.noise[idx[2] : idx[2] + 100])
    with pytest.raises(ValueError, match="noise_table_size"):
        a.sample_indices(np.random.default_rng(0), 1, 2000)


def test_antithetic_candidates():
    noise = NoiseTable(10_000, seed=0)
    es = OpenAIES(np.arange(7.0))
    population = es.ask(noise, np.random.default_rng(0), n_pairs=4, sigma=0.1)
    candidates = es.candidates(noise, population)
    assert candidates.shape == (8, 7)
    np.testing.assert_allclose(candidates[:4] + candidates[4:], np.tile(2 * es.theta, (4, 1)), atol=1e-5)
    np.testing.assert_allclose(candidates[:4] - es.theta[None].repeat(4, 0), 0.1 * noise.get_batch(population.noise_indices, 7), atol=1e-5)


def test_gradient_points_uphill():
    """On f(x) = -|x - target|^2 the ES gradient estimate aligns with the true gradient."""
    rng = np.random.default_rng(0)
    noise = NoiseTable(100_000, seed=1)
    target = rng.normal(size=20)
    es = OpenAIES(np.zeros(20))
    population = es.ask(noise, rng, n_pairs=200, sigma=0.05)
    returns = -np.sum((es.candidates(noise, population) - target) ** 2, axis=1)
    estimate = es.gradient(noise, population, returns)
    true_gradient = 2 * (target - es.theta)
    cosine = estimate @ true_gradient / np.linalg.norm(estimate) / np.linalg.norm(true_gradient)
    assert cosine > 0.7


def test_es_optimises_quadratic():
    rng = np.random.default_rng(0)
    noise = NoiseTable(100_000, seed=1)
    target = rng.normal(size=10)
    es = OpenAIES(np.zeros(10))
    start = np.sum(target**2)
    for _ in range(300):
        population = es.ask(noise, rng, n_pairs=16, sigma=0.05)
        es.tell(noise, population, -np.sum((es.candidates(noise, population) - target) ** 2, axis=1), 0.05)
    assert np.sum((es.theta - target) ** 2) < 0.01 * start


def test_weight_decay_pulls_towards_zero():
    noise = NoiseTable(10_000, seed=0)
    es = OpenAIES(np.ones(5), weight_decay=0.5)
    population = es.ask(noise, np.random.default_rng(0), n_pairs=2, sigma=0.1)
    grad = es.gradient(noise, population, np.zeros(4))  # flat fitness: only the decay is left
    np.testing.assert_allclose(grad, -0.5 * np.ones(5))


def test_gradient_rejects_bad_returns():
    noise = NoiseTable(10_000, seed=0)
    es = OpenAIES(np.zeros(3))
    population = es.ask(noise, np.random.default_rng(0), n_pairs=2, sigma=0.1)
    with pytest.raises(ValueError, match="Non-finite"):
        es.gradient(noise, population, np.array([0.0, np.nan, 1.0, 2.0]))
    with pytest.raises(ValueError, match="Expected 4"):
        es.gradient(noise, population, np.zeros(3))


def test_adam_first_step_is_learning_rate_sized():
    adam = Adam(3)
    step = adam.step(np.array([1.0, -2.0, 0.5]), 0.01)
    np.testing.assert_allclose(step, [0.01, -0.01, 0.01], rtol=1e-4)


@pytest.mark.parametrize("sigma", [0.1, np.array([0.05, 0.1, 0.2, 0.4])])
def test_a_worker_slice_is_bit_identical_to_the_update_s_candidates(sigma):
    """One construction of candidates (``antithetic_rows``): a worker's rows equal ``OpenAIES.candidates``' rows."""
    from sb3_bierl.evaluation.workers import population_rows
    from sb3_bierl.strategies.openai_es import antithetic_rows

    noise = NoiseTable(10_000, seed=0)
    es = OpenAIES(np.random.default_rng(0).normal(size=7))
    population = Population(es.ask(noise, np.random.default_rng(1), 4, 1.0).noise_indices, sigma)
    everything = es.candidates(noise, population)
    assert everything.dtype == np.float32
    for start, stop in [(0, 8), (1, 6), (3, 5), (7, 8)]:
        np.testing.assert_array_equal(antithetic_rows(noise, es.theta, population, np.arange(start, stop)), everything[start:stop])
    if np.ndim(sigma) == 0:  # the workers' populations have one sigma each
        spec = [(es.theta, population.noise_indices, sigma)]
        np.testing.assert_array_equal(population_rows(noise, spec + spec, 6, 11), np.concatenate([everything[6:], everything[:3]]))
