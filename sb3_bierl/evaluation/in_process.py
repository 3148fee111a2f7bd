"""Default backend: every candidate of the population stepped together in this process."""

import copy
import hashlib
import time
import warnings
from collections.abc import Callable
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd

from sb3_bierl.evaluation.base import (
    DescriptorFn,
    PopulationEvaluator,
    RolloutResult,
    Transitions,
)
from sb3_bierl.evaluation.batched_policy import BatchedPolicy


class InProcessEvaluator(PopulationEvaluator):
    """
    Holds one environment per candidate. At every step, the observations of all running
    candidates go through one batched forward pass; then each environment steps.

    A candidate plays its episodes one after another; the rollout ends when all are done.

    A non-finite observation stops the rollout with an error that names the candidate, the step and the
    observation index (as SB3's ``VecCheckNan``): it would poison the observation statistics for good.

    An environment instance plays several episodes only where that cannot change them (see
    ``reuse_envs``): a candidate's result depends on its parameters and episode seeds alone, not on
    which instance played it nor on what that instance played before (e.g. BipedalWalker keeps its
    Box2D world across resets, and its episodes drift with that world's history).

    :param env_fn: Function returning a new environment
    :param reuse_envs: ``None``: decided by :class:`EnvReuse` (a check in a helper process; a new instance
        for every episode until it answers, and for good if the episodes depend on the instance's
        history). ``True``: instances play episode after episode (fastest; an environment that keeps
        state across resets then gives results that depend on what each instance played before).
        ``False``: a new instance for every episode.
    """

    #: Called during a rollout with the steps it has taken so far (a progress bar's feed), or None
    progress: Callable[[int], None] | None = None

    def __init__(self, env_fn: Callable[[], gym.Env], reuse_envs: bool | None = None):
        self.env_fn = env_fn
        self.envs: list[gym.Env] = []
        self._played: list[bool] = []  # whether each instance has started an episode
        self.reuse = EnvReuse(reuse_envs)
        self.reuse.start(self._env_fn_bytes)
        self._batched: BatchedPolicy | None = None

    def _ensure_envs(self, n: int, reuse: bool = True) -> list[gym.Env]:
        """:return: the first ``n`` instances (new ones in place of those that have played, unless ``reuse``)"""
        while len(self.envs) < n:
            self.envs.append(self.env_fn())
            self._played.append(False)
        if not reuse:
            for i in range(n):
                if self._played[i]:
                    self._renew(i)
        self._played[:n] = [True] * n
        return self.envs[:n]

    def _renew(self, i: int) -> gym.Env:
        """Replace instance ``i`` by a new one; :return: the new one"""
        self.envs[i].close()
        self.envs[i] = env = self.env_fn()
        return env

    def _env_fn_bytes(self) -> bytes:
        return cloudpickle.dumps(self.env_fn)

    def _policy_runner(self, policy: BasePolicy) -> BatchedPolicy:
        if self._batched is None or self._batched.policy is not policy:
            self._batched = BatchedPolicy(policy)
        return self._batched

    def evaluate(
        self,
        policy: BasePolicy,
        params: np.ndarray,
        episode_seeds: np.ndarray,
        alive_bonus_offset: float = 0.0,
        descriptor_fn: DescriptorFn | None = None,
        record_transitions: bool = False,
    ) -> RolloutResult:
        # The per-step forward passes are small: extra torch threads only contend with the envs
        threads = th.get_num_threads()
        th.set_num_threads(1)
        try:
            return self._evaluate(
                policy,
                params,
                episode_seeds,
                alive_bonus_offset,
                descriptor_fn,
                record_transitions,
            )
        finally:
            th.set_num_threads(threads)

    def _evaluate(
        self,
        policy: BasePolicy,
        params: np.ndarray,
        episode_seeds: np.ndarray,
        alive_bonus_offset: float,
        descriptor_fn: DescriptorFn | None,
        record_transitions: bool,
    ) -> RolloutResult:
        n_candidates, n_episodes = episode_seeds.shape
        if len(params) != n_candidates:
            raise ValueError(f"{len(params)} parameter vectors but {n_candidates} rows of episode seeds")
        reuse = self.reuse.current(self._env_fn_bytes)
        envs = self._ensure_envs(n_candidates, reuse)
        runner = self._policy_runner(policy)
        steps = [env.step for env in envs]
        all_params = th.as_tensor(np.asarray(params, dtype=np.float32))
        seeds = episode_seeds.tolist()

        episode_returns = np.zeros((n_candidates, n_episodes))
        episode_lengths = np.zeros((n_candidates, n_episodes), dtype=np.int64)
        # Python scalars: cheaper than numpy element access in the per-step loop
        episode = [0] * n_candidates
        current_return = [0.0] * n_candidates
        current_length = [0] * n_candidates
        obs = np.stack([env.reset(seed=seeds[i][0])[0] for i, env in enumerate(envs)])
        moments = ObsMoments(runner.features(obs))
        descriptors = DescriptorRecorder(descriptor_fn, n_candidates, n_episodes) if descriptor_fn else None
        recorder = TransitionRecorder() if record_transitions else None

        active = list(range(n_candidates))
        active_index: np.ndarray | slice = slice(None)  # all candidates: slices avoid fancy-indexing copies
        active_params = all_params
        taken, progress = 0, self.progress
        while active:
            active_obs = obs[active_index]
            features = runner.features(active_obs)  # what the policy's statistics describe
            if not np.isfinite(features.sum()):  # one cheap test per step; the search only after a hit
                raise_non_finite(features, active, current_length, episode, seeds)
            moments.add(active_index, features)
            actions = runner(active_params, active_obs, features)
            if progress is not None:
                progress(taken)
                taken += len(active)
            if recorder is not None:
                recorder.start_step(np.asarray(active), active_obs, actions)
            finished = False
            for k, i in enumerate(active):
                next_obs, reward, terminated, truncated, _ = steps[i](actions[k])
                current_return[i] += float(reward) + alive_bonus_offset
                current_length[i] += 1
                if recorder is not None:
                    recorder.record(k, reward, next_obs, terminated, truncated)
                if terminated or truncated:
                    e = episode[i]
                    if descriptors is not None:
                        descriptors.record(i, e, envs[i], next_obs)
                    episode_returns[i, e] = current_return[i]
                    episode_lengths[i, e] = current_length[i]
                    current_return[i], current_length[i] = 0.0, 0
                    episode[i] = e = e + 1
                    if e == n_episodes:
                        finished = True
                        continue
                    if not reuse:  # a new instance for every episode
                        envs[i] = self._renew(i)
                        steps[i] = envs[i].step
                    next_obs, _ = envs[i].reset(seed=seeds[i][e])
                obs[i] = next_obs
            if finished:
                active = [i for i in active if episode[i] < n_episodes]
                active_index = np.array(active, dtype=np.int64)
                active_params = all_params[active_index]

        lengths = episode_lengths.sum(axis=1)
        return RolloutResult(
            returns=episode_returns.mean(axis=1),
            lengths=lengths,
            episode_returns=episode_returns,
            episode_lengths=episode_lengths,
            obs_rms=CandidateObsStats.from_moments(moments, lengths),
            episode_descriptors=None if descriptors is None else descriptors.values,
            transitions=None if recorder is None else recorder.result(),
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []
        self._played = []
        self._batched = None
        self.reuse.close()


# ---------------------------------------------------------------------- may an instance play several episodes?
#: The history check (:func:`check_env_history`): first reset seed of its episodes
HISTORY_CHECK_SEED = 918_273_645
#: Reference episodes of the check (reset seeds ``HISTORY_CHECK_SEED + k``)
HISTORY_CHECK_REFERENCES = 3
#: Rounds of the check: the used instance plays another episode, then a reference episode again
HISTORY_CHECK_ROUNDS = 12
#: Most steps of a reference episode (fewer if it ends)
HISTORY_CHECK_STEPS = 200
#: Most steps of each other episode the used instance plays in between
HISTORY_CHECK_OTHER_STEPS = 50
#: Wall-clock seconds after which the check gives up (then every episode gets a new instance)
HISTORY_CHECK_SECONDS = 5.0

#: Verdicts of finished checks in this process, by digest of the pickled environment function
_verdicts: dict[bytes, str] = {}


class _OutOfTime(Exception):
    pass


def _same(a: Any, b: Any) -> bool:
    """Bitwise equality of two observations (arrays, scalars, dicts or tuples of them)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _play(env: gym.Env, seed: int, actions: list[Any], deadline: float) -> list[Any]:
    """:return: the reset observation, then (observation, reward, terminated, truncated) of each step"""
    episode: list[Any] = [env.reset(seed=seed)[0]]
    for action in actions:
        if time.monotonic() > deadline:
            raise _OutOfTime
        obs, reward, terminated, truncated, _ = env.step(action)
        episode.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            break
    return episode


def check_env_history(env_fn: Callable[[], gym.Env], max_seconds: float = HISTORY_CHECK_SECONDS) -> str:
    """
    Whether an environment instance plays an episode differently once it has played others: two new
    instances play a reference episode each (a fixed reset seed, fixed random actions); another instance
    then plays, :data:`HISTORY_CHECK_ROUNDS` times, an episode of its own followed by one of the
    references, compared bit for bit (observations, rewards, ends) with the new instance's.

    Deterministic (fixed seeds), bounded by the step counts above and by ``max_seconds``. It takes
    environment steps, that ES does not count: run it in a helper process (:class:`EnvReuse` does).

    :param env_fn: Function returning a new environment
    :param max_seconds: Wall-clock limit
    :return: ``"independent"`` (nothing seen), ``"dependent"`` (a used instance played a reference episode
        differently, and a third new instance as the first), ``"nondeterministic"`` (two new instances
        already differ: reusing instances changes nothing) or ``"timeout"``. Exceptions propagate.
    """
    deadline = time.monotonic() + max_seconds
    made: list[gym.Env] = []

    def new() -> gym.Env:
        made.append(env_fn())
        return made[-1]

    try:
        space = copy.deepcopy(new().action_space)
        space.seed(HISTORY_CHECK_SEED)
        seeds = [HISTORY_CHECK_SEED + k for k in range(HISTORY_CHECK_REFERENCES)]
        actions = [[space.sample() for _ in range(HISTORY_CHECK_STEPS)] for _ in seeds]
        references = [_play(made[0] if k == 0 else new(), seed, actions[k], deadline) for k, seed in enumerate(seeds)]
        used = new()
        for r in range(HISTORY_CHECK_ROUNDS):
            other = [space.sample() for _ in range(HISTORY_CHECK_OTHER_STEPS)]
            _play(used, HISTORY_CHECK_SEED + len(seeds) + r, other, deadline)
            k = r % len(seeds)
            episode = _play(used, seeds[k], actions[k], deadline)
            if not _same(episode, references[k]):
                again = _play(new(), seeds[k], actions[k], deadline)
                return "dependent" if _same(again, references[k]) else "nondeterministic"
        return "independent"
    except _OutOfTime:
        return "timeout"
    finally:
        for env in made:
            try:
                env.close()
            except Exception:  # noqa: S110 (closing is best effort here)
                pass


class EnvReuse:
    """
    Whether the environment instances of a backend may play several episodes each.

    With ``reuse_envs=None``, :func:`check_env_history` runs once, in the background, in a helper process
    (:class:`~sb3_bierl.evaluation.processes.HistoryCheck`: its steps are not taken in this process);
    until it answers, and for good if it finds the episodes depend on the instance's history (or fails),
    every episode gets a new instance. Reusing only after a check that found nothing gives the same results
    as new instances: when the answer comes changes the speed, not the results. Answers are remembered in
    this process for the same (pickled) environment function.

    :param reuse_envs: ``None`` (check), ``True`` (always reuse) or ``False`` (never)
    """

    def __init__(self, reuse_envs: bool | None = None):
        if reuse_envs is not None and not isinstance(reuse_envs, bool):
            raise TypeError(f"reuse_envs must be None, True or False, got {reuse_envs!r}")
        self.setting = reuse_envs
        self.verdict: bool | None = reuse_envs  # None: not known yet
        self._check: Any = None  # HistoryCheck running
        self._key: bytes | None = None

    def current(self, env_fn_bytes: Callable[[], bytes]) -> bool:
        """
        :param env_fn_bytes: Returns the pickled environment function (called once, when the check starts)
        :return: whether instances may be reused now (False while the check runs)
        """
        if self.verdict is not None:
            return self.verdict
        if self._check is None:
            self.start(env_fn_bytes)
        else:
            self._collect(self._check.poll())
        return bool(self.verdict)

    def wait(self, timeout: float = HISTORY_CHECK_SECONDS + 10.0) -> None:
        """Wait (at most ``timeout`` seconds) for a running check to answer; stop it if it does not."""
        if self._check is not None:
            self._collect(self._check.poll(timeout))
            if self._check is not None:
                self._collect(("ok", "timeout"))

    def close(self) -> None:
        """Stop a running check (it starts again on the next :meth:`current`); a verdict is kept."""
        if self._check is not None:
            self._check.stop()
            self._check = None

    def start(self, env_fn_bytes: Callable[[], bytes]) -> None:
        """Start the check now, unless the answer is known or it runs (evaluators start it when built: the
        helper's start-up then overlaps the model's)."""
        if self.verdict is not None or self._check is not None:
            return
        from sb3_bierl.evaluation.processes import HistoryCheck  # processes imports this module

        try:
            data = env_fn_bytes()
        except Exception as error:  # noqa: BLE001
            self._collect(("error", f"the environment function cannot be pickled ({type(error).__name__}: {error})"))
            return
        self._key = hashlib.sha256(data).digest()
        if self._key in _verdicts:
            self._collect(("ok", _verdicts[self._key]))
            return
        try:
            self._check = HistoryCheck(data, HISTORY_CHECK_SECONDS)
        except Exception as error:  # noqa: BLE001
            self._collect(("error", f"the helper process did not start ({type(error).__name__}: {error})"))

    def _collect(self, answer: tuple[str, str] | None) -> None:
        """Take the check's answer, if any (``("ok", verdict)`` or ``("error", text)``)."""
        if answer is None:
            return
        self.close()
        status, value = answer
        if status != "ok":
            self.verdict = False
            reason = value.strip().splitlines()[-1] if value.strip() else "no reason given"
            warnings.warn(
                f"Could not check whether the environment's episodes depend on what an instance played before "
                f"({reason}): every episode gets a new environment instance (the same results, maybe slower); "
                "pass reuse_envs=True to reuse instances.",
                stacklevel=2,
            )
            return
        if value != "timeout" and self._key is not None:
            _verdicts[self._key] = value
        self.verdict = value in ("independent", "nondeterministic")
        if value == "nondeterministic":
            warnings.warn(
                "Two new instances of the environment played the same episode (same reset seed, same actions) "
                "differently: its results are not reproducible from the seed.",
                stacklevel=2,
            )


def raise_non_finite(
    features: np.ndarray, active: list[int], lengths: list[int], episodes: list[int], seeds: list[list[int]]
) -> None:
    """
    :param features: (A, D) the preprocessed observations of the running candidates
    :param active: The running candidates (batch indices)
    :param lengths: Steps taken in the current episode of each candidate
    :param episodes: Current episode of each candidate
    :param seeds: Episode seeds of each candidate
    :raises ValueError: naming the first non-finite value: candidate, episode and its seed, step, index (none
        if all are finite: a sum of huge values may overflow)
    """
    bad = np.argwhere(~np.isfinite(features))
    if len(bad) == 0:
        return
    k, index = bad[0]
    i = active[k]
    raise ValueError(
        f"Non-finite observation: candidate {i}, episode {episodes[i]} (reset seed {seeds[i][episodes[i]]}), step "
        f"{lengths[i]}, observation index {index} is {features[k, index]}. Training stops here: the running observation "
        "statistics would be poisoned for good. Fix the environment (SB3's VecCheckNan helps find the cause), or "
        "replace non-finite values in a gymnasium ObservationWrapper."
    )


class ObsMoments:
    """
    Per-candidate sums of the observations seen, shifted by each candidate's first observation
    (the shifted-data algorithm: accurate even when the mean is far from zero).

    :param first_obs: (P, *obs_shape) first observation of each candidate
    """

    def __init__(self, first_obs: np.ndarray):
        self.shift = first_obs.reshape(len(first_obs), -1).astype(np.float64)
        self.sum = np.zeros_like(self.shift)
        self.sum_sq = np.zeros_like(self.shift)

    def add(self, index: np.ndarray | slice, obs: np.ndarray) -> None:
        """:param index: The candidates that saw ``obs`` (distinct), as an index array or a slice"""
        delta = obs.reshape(len(obs), -1) - self.shift[index]
        self.sum[index] += delta
        self.sum_sq[index] += delta * delta


class CandidateObsStats(RunningMeanStd):
    """
    Observation statistics of a rollout (a ``RunningMeanStd``), which also keep those of each
    candidate. Merging is always done candidate by candidate, in candidate order: the result
    does not depend on how the population was split among workers.

    :param counts: (P,) observations seen by each candidate
    :param means: (P, D) their mean
    :param m2: (P, D) their sum of squared deviations from the mean
    """

    def __init__(self, counts: np.ndarray, means: np.ndarray, m2: np.ndarray):
        super().__init__(epsilon=0.0, shape=means.shape[1:])
        self.counts, self.means, self.m2 = counts, means, m2
        for count, mean, m2_i in zip(counts, means, m2, strict=True):
            if count > 0:
                self.update_from_moments(mean, m2_i / count, int(count))

    @classmethod
    def from_moments(cls, moments: ObsMoments, counts: np.ndarray) -> "CandidateObsStats":
        """:param counts: (P,) number of observations added for each candidate"""
        n = np.maximum(counts, 1)[:, None].astype(np.float64)
        means = moments.shift + moments.sum / n
        m2 = np.maximum(moments.sum_sq - moments.sum * moments.sum / n, 0.0)
        return cls(np.asarray(counts), means, m2)

    @classmethod
    def concatenate(cls, parts: list["CandidateObsStats"]) -> "CandidateObsStats":
        """Statistics of consecutive batches of candidates, merged in candidate order."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("counts", "means", "m2")))


class DescriptorRecorder:
    """
    Calls the behaviour-descriptor function at every episode end and checks what it returns.

    :param descriptor_fn: ``descriptor_fn(env, final_observation) -> (D,)``
    :param n_candidates: Number of candidates
    :param n_episodes: Episodes per candidate
    """

    def __init__(self, descriptor_fn: DescriptorFn, n_candidates: int, n_episodes: int):
        self.descriptor_fn = descriptor_fn
        self.shape = (n_candidates, n_episodes)
        self.values: np.ndarray | None = None

    def record(self, candidate: int, episode: int, env: gym.Env, final_obs: np.ndarray) -> None:
        value = np.asarray(self.descriptor_fn(env, final_obs), dtype=np.float64)
        if value.ndim != 1 or value.size == 0:
            raise ValueError(
                f"The behaviour descriptor function must return a non-empty 1-D array, got shape {value.shape}: "
                "return e.g. np.array([x, y]) (flatten it with np.ravel)"
            )
        if self.values is None:
            self.values = np.zeros((*self.shape, value.size))
        if value.size != self.values.shape[-1]:
            raise ValueError(
                f"The behaviour descriptor function returned {value.size} values, but {self.values.shape[-1]} "
                "before: it must always return the same number"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"The behaviour descriptor function returned non-finite values: {value}")
        self.values[candidate, episode] = value


class TransitionRecorder:
    """Collects every step of a rollout, step by step, for :class:`Transitions`."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def start_step(self, active: np.ndarray, observations: np.ndarray, actions: np.ndarray) -> None:
        n = len(active)
        self.rewards = np.zeros(n)
        self.next_observations = np.array(observations, copy=True)
        self.terminated = np.zeros(n, dtype=bool)
        self.truncated = np.zeros(n, dtype=bool)
        self.parts.append(
            (
                active.copy(),
                observations.copy(),
                np.array(actions, copy=True),
                self.rewards,
                self.next_observations,
                self.terminated,
                self.truncated,
            )
        )

    def record(
        self,
        k: int,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
    ) -> None:
        self.rewards[k] = reward
        self.next_observations[k] = next_obs
        self.terminated[k] = terminated
        self.truncated[k] = truncated

    def result(self) -> Transitions:
        return Transitions(*(np.concatenate(arrays) for arrays in zip(*self.parts, strict=True)))
