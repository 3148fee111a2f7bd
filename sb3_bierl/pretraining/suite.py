"""The pre-training tasks: cheap ones, each with a budget and the returns that normalise its score."""

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class PretrainingTask:
    """
    One pre-training task.

    :param env_id: Gymnasium id
    :param budget: Environment steps of one inner run (meta level included): about 25 to 50 generations of the
        default 16 pairs
    :param low: Return of an untrained policy (normalised score 0)
    :param high: Return of a policy that solves the task (normalised score 1)
    """

    env_id: str
    budget: int
    low: float
    high: float

    def normalise(self, value: float) -> float:
        """:return: ``(value - low) / (high - low)``: 0 for an untrained policy, 1 for a solved task"""
        return (value - self.low) / (self.high - self.low)


#: The default suite (about 4 to 15 CPU seconds per inner run on this project's machine; reference returns: an
#: untrained policy's and a solved task's, rounded). None of the tasks of ``HELD_OUT``.
DEFAULT_SUITE: tuple[PretrainingTask, ...] = (
    PretrainingTask("CartPole-v1", 100_000, 10.0, 500.0),
    PretrainingTask("Pendulum-v1", 200_000, -1400.0, -150.0),
    PretrainingTask("Acrobot-v1", 120_000, -500.0, -70.0),
    PretrainingTask("Reacher-v5", 80_000, -45.0, -4.0),
    PretrainingTask("InvertedDoublePendulum-v5", 60_000, 0.0, 9350.0),
)

#: Tasks known to :func:`resolve_suite` beyond the default suite (``--env`` names them). Walker2d-v5 at 300k steps
#: (about 100 CPU seconds per inner run) is the one known task where large steps lose: ES with the learning rate
#: or sigma 4 times the default ends at half the defaults' return or less there (``docs/benchmarks/warm_start.md``,
#: session 13). Its high return is a rounded strong walker's (deep RL agents reach about 4000 in 1M steps); its low
#: one the mean of 5 untrained policies (10.1)
EXTRA_TASKS: tuple[PretrainingTask, ...] = (PretrainingTask("Walker2d-v5", 300_000, 10.0, 4000.0),)

#: Every task pre-training can use (so none of them can be held out)
KNOWN_TASKS: tuple[PretrainingTask, ...] = DEFAULT_SUITE + EXTRA_TASKS

#: Tasks kept out of pre-training: the held-out evaluation (``python -m sb3_bierl.benchmarks.warm_start``) and
#: the meta-level benchmark use them
HELD_OUT: tuple[str, ...] = ("LunarLanderContinuous-v3", "HalfCheetah-v5", "Hopper-v5", "Swimmer-v5", "Ant-v5")


def resolve_suite(env_ids: list[str] | None, scale: float = 1.0) -> tuple[PretrainingTask, ...]:
    """
    :param env_ids: Ids of tasks of :data:`DEFAULT_SUITE` or :data:`EXTRA_TASKS` (None: the default suite)
    :param scale: Multiplier of the budgets (e.g. 0.05 for a quick check of the pipeline)
    :return: those tasks
    :raises ValueError: on an id outside the suite (its budget and normalisation are unknown), a held-out task,
        or ``scale <= 0``
    """
    if not scale > 0:
        raise ValueError(f"The budget scale must be positive, got {scale}")
    if scale != 1.0:
        suite = resolve_suite(env_ids)
        return tuple(dataclasses.replace(task, budget=max(1, round(task.budget * scale))) for task in suite)
    if not env_ids:
        return DEFAULT_SUITE
    known = {task.env_id: task for task in KNOWN_TASKS}
    for env_id in env_ids:
        if env_id in HELD_OUT:
            raise ValueError(f"{env_id} is a held-out task: the held-out evaluation must not see it in pre-training")
        if env_id not in known:
            raise ValueError(f"Unknown pre-training task {env_id!r}: choose among {sorted(known)}")
    return tuple(known[env_id] for env_id in env_ids)
