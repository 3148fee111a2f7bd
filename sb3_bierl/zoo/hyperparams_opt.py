"""
Optuna samplers for ``python -m rl_zoo3.train --algo bierl|es -optimize``, in rl_zoo3's format.

A sampler ``(trial, n_actions, n_envs, additional_args) -> dict`` suggests raw values and returns
the model's keyword arguments; its converter turns the raw values of a finished trial
(``trial.params``) into the same keyword arguments, which is how the zoo loads a trial back
(``--storage ... --study-name ... --trial-id N``).

BiERL: the search is over the meta level, which is what BiERL adds: how often it updates
(``meta_interval``), how many meta candidates (``meta_n_pairs``), its own ES step (``meta_sigma``,
``meta_learning_rate``), what it reads (``meta_history_length``, ``meta``), how far it may move
the inner hyperparameters per generation (``meta_max_change``), the largest inner step it may set
(``meta_max_lr_to_sigma``) and where (``hyperparameter_bounds``). Bounds are sampled as ratios to the
sampled initial ``sigma`` and ``learning_rate``, so the initial values always lie inside them and
every trial builds a valid model. ``n_pairs`` (population size) is searched for both algorithms.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # optuna is imported by rl_zoo3 when it calls these
    import optuna

N_PAIRS = (4, 8, 16, 32, 64)

# ratio of a bound to the initial value: low = initial * low_ratio, high = initial * high_ratio
# (BiERL's default bounds are 1/8 and 8 times the initial sigma and learning rate: DEFAULT_BOUND_FACTOR in bierl.py)
LOW_RATIO = (0.03, 0.5)
HIGH_RATIO = (2.0, 30.0)


def sample_es_params(trial: "optuna.Trial", n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for ES: noise std, Adam step size, population size, weight decay."""
    return convert_es_params(
        {
            "n_pairs": trial.suggest_categorical("n_pairs", N_PAIRS),
            "sigma": trial.suggest_float("sigma", 0.002, 0.2, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.0005, 0.1, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-5, 0.05, log=True),
        }
    )


def convert_es_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Raw trial values to ES keyword arguments."""
    hyperparams = dict(sampled_params)
    if "n_pairs" in hyperparams:
        hyperparams["n_pairs"] = int(hyperparams["n_pairs"])
    return hyperparams


def sample_bierl_params(trial: "optuna.Trial", n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for BiERL: the meta level's settings, the bounds it works in, and the population size."""
    return convert_bierl_params(
        {
            "n_pairs": trial.suggest_categorical("n_pairs", N_PAIRS),
            # initial values of the adapted hyperparameters, and their bounds around them
            "sigma": trial.suggest_float("sigma", 0.005, 0.1, log=True),
            "sigma_low_ratio": trial.suggest_float("sigma_low_ratio", *LOW_RATIO, log=True),
            "sigma_high_ratio": trial.suggest_float("sigma_high_ratio", *HIGH_RATIO, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.001, 0.05, log=True),
            "learning_rate_low_ratio": trial.suggest_float("learning_rate_low_ratio", *LOW_RATIO, log=True),
            "learning_rate_high_ratio": trial.suggest_float("learning_rate_high_ratio", *HIGH_RATIO, log=True),
            # the meta level
            "meta_interval": trial.suggest_int("meta_interval", 1, 5),
            "meta_n_pairs": trial.suggest_int("meta_n_pairs", 1, 2),  # 2 * meta_n_pairs candidates share n_pairs
            "meta_sigma": trial.suggest_float("meta_sigma", 0.02, 0.5, log=True),
            "meta_learning_rate": trial.suggest_float("meta_learning_rate", 0.003, 0.1, log=True),
            "meta_max_change": trial.suggest_float("meta_max_change", 1.05, 2.0, log=True),
            "meta_max_lr_to_sigma": trial.suggest_float("meta_max_lr_to_sigma", 0.5, 8.0, log=True),
            "meta_history_length": trial.suggest_categorical("meta_history_length", (5, 10, 20)),
            "meta": trial.suggest_categorical("meta", ("lstm", "mean")),
        }
    )


def convert_bierl_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Raw trial values to BiERL keyword arguments: the ``*_low_ratio`` / ``*_high_ratio`` values
    become ``hyperparameter_bounds`` around the initial ``sigma`` and ``learning_rate``.
    """
    hyperparams = dict(sampled_params)
    if "meta_encoder" in hyperparams:  # a trial of a study made before meta_encoder was renamed meta
        hyperparams["meta"] = hyperparams.pop("meta_encoder")
    bounds: dict[str, list[float]] = {}  # lists, not tuples: the zoo saves them with yaml.dump
    for name in ("sigma", "learning_rate"):
        low_ratio = hyperparams.pop(f"{name}_low_ratio", None)
        high_ratio = hyperparams.pop(f"{name}_high_ratio", None)
        if low_ratio is None or high_ratio is None:
            continue
        if name not in hyperparams:
            raise ValueError(f"{name}_low_ratio and {name}_high_ratio need the initial {name}")
        initial = float(hyperparams[name])
        bounds[name] = [initial * min(float(low_ratio), 1.0), initial * max(float(high_ratio), 1.0)]
    if bounds:
        hyperparams["hyperparameter_bounds"] = bounds
    for name in ("n_pairs", "meta_interval", "meta_n_pairs", "meta_history_length"):
        if name in hyperparams:
            hyperparams[name] = int(hyperparams[name])
    return hyperparams


def sample_nsres_params(trial: "optuna.Trial", n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for NSR-ES and NSRA-ES: ES's, plus the meta-population and the novelty search."""
    params = sample_es_params(trial, n_actions, n_envs, additional_args)
    params.update(
        n_members=trial.suggest_int("n_members", 2, 10),
        k_nearest=trial.suggest_int("k_nearest", 3, 20),
        novelty_weight=trial.suggest_float("novelty_weight", 0.0, 1.0),
    )
    return convert_nsres_params(params)


def convert_nsres_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Raw trial values to NSR-ES keyword arguments."""
    hyperparams = convert_es_params(sampled_params)
    for name in ("n_members", "k_nearest"):
        if name in hyperparams:
            hyperparams[name] = int(hyperparams[name])
    return hyperparams


def sample_esac_params(trial: "optuna.Trial", n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """Sampler for ESAC: the ES part, SAC's share of the work and its learning rate, elites."""
    params = sample_es_params(trial, n_actions, n_envs, additional_args)
    params.update(
        n_elites=trial.suggest_int("n_elites", 0, 4),
        gradient_steps_ratio=trial.suggest_float("gradient_steps_ratio", 0.02, 1.0, log=True),
        sac_learning_rate=trial.suggest_float("sac_learning_rate", 1e-4, 3e-3, log=True),
    )
    return convert_esac_params(params)


def convert_esac_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Raw trial values to ESAC keyword arguments (``sac_learning_rate`` goes into ``sac_kwargs``)."""
    hyperparams = convert_es_params(sampled_params)
    if "n_elites" in hyperparams:
        hyperparams["n_elites"] = int(hyperparams["n_elites"])
    sac_learning_rate = hyperparams.pop("sac_learning_rate", None)
    if sac_learning_rate is not None:
        hyperparams["sac_kwargs"] = {**hyperparams.get("sac_kwargs", {}), "learning_rate": float(sac_learning_rate)}
    return hyperparams
