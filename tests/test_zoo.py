"""
BiERL and ES in the RL Baselines3 Zoo, tested as a user runs them: the zoo's own commands
(``python -m rl_zoo3.train``, ``rl_zoo3.enjoy``, ``python -m sb3_bierl.zoo``) in fresh interpreters,
which only know ``--algo bierl`` through the installed ``sb3_bierl_zoo.pth`` hook.

rl_zoo3 is never imported in the test process itself: importing it replaces gymnasium's
``TimeLimit`` for the whole process (``rl_zoo3.gym_patches``), which would leak into the other test
modules. So the module is skipped with ``find_spec`` rather than ``pytest.importorskip("rl_zoo3")``.
"""

import importlib.metadata
import importlib.util
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

if importlib.util.find_spec("rl_zoo3") is None:  # same as pytest.importorskip("rl_zoo3"), without importing it
    pytest.skip('rl_zoo3 is not installed (pip install -e ".[zoo]")', allow_module_level=True)

import gymnasium as gym
import optuna

import sb3_bierl_zoo_hook
from sb3_bierl import ES, BiERL
from sb3_bierl.zoo import (
    CONVERTERS,
    SAMPLERS,
    ZOO_ALGOS,
    convert_bierl_params,
    hyperparams_path,
)

SUBPROCESS_TIMEOUT = 240
TASKS = (
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Swimmer-v5",
    "Humanoid-v5",
    "BipedalWalker-v3",
    "LunarLanderContinuous-v3",
    "Pendulum-v1",
    "default",
)


@pytest.fixture(autouse=True)
def _rl_zoo3_stays_out_of_this_process():
    yield
    assert "rl_zoo3" not in sys.modules, "a test imported rl_zoo3 (and its gymnasium patches) into the test process"


#: rl_zoo3.plots.plot_train, headless, printing how many curves it drew instead of showing them
PLOT_TRAIN = (
    "import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
    "plt.show = lambda: print('curves:', len(plt.gca().lines)); "
    "from rl_zoo3.plots.plot_train import plot_train; sys.argv[0] = 'plot_train'; plot_train()"
)


def run_python(args: list[str], cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """``python <args>`` in a fresh interpreter, one thread, output captured."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **env}
    process = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    if check:
        assert process.returncode == 0, (
            f"python {' '.join(args)} exited with {process.returncode}\n"
            f"--- stdout\n{process.stdout[-4000:]}\n--- stderr\n{process.stderr[-4000:]}"
        )
    return process


def load_config(run_dir: Path, env_id: str) -> dict:
    with open(run_dir / env_id / "config.yml") as file:
        return dict(yaml.load(file, Loader=yaml.UnsafeLoader))  # the zoo dumps an OrderedDict


# ---------------------------------------------------------------------- installation
REPOSITORY = Path(__file__).resolve().parent.parent


def test_hyperparameter_files_have_one_source_the_top_level_folder():
    """The Zoo's layout: ``hyperparams/`` at the top of the repository, installed as ``sb3_bierl.hyperparams``."""
    assert (REPOSITORY / "hyperparams" / "bierl.yml").is_file()
    assert not (REPOSITORY / "sb3_bierl" / "hyperparams").exists(), "a second copy of the hyperparameter files"
    for algo in ZOO_ALGOS:
        path = hyperparams_path(algo)
        assert path.is_file(), f"no hyperparameter file for {algo!r}"
        if (REPOSITORY / "setup.py").is_file() and Path(sb3_bierl_zoo_hook.__file__).parent == REPOSITORY:  # editable
            assert path == REPOSITORY / "hyperparams" / f"{algo}.yml"


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="building a wheel needs setuptools")
def test_a_regular_install_ships_the_hyperparameter_files(tmp_path):
    """``pip install .`` installs the wheel built here: it has every file of ``hyperparams/`` and the zoo hook."""
    import shutil
    import zipfile

    # built from a copy: setuptools builds in the source tree (build/, *.egg-info), which must stay clean
    source = tmp_path / "source"
    junk = shutil.ignore_patterns(".git", ".ci-venv", "bench_results", "build", "*.egg-info", "docs", "logs", "__pycache__")
    shutil.copytree(REPOSITORY, source, ignore=junk)
    process = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert process.returncode == 0, process.stderr
    (wheel,) = tmp_path.glob("sb3_bierl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for file in (REPOSITORY / "hyperparams").glob("*.yml"):
        assert f"sb3_bierl/hyperparams/{file.name}" in names
    assert {"sb3_bierl/hyperparams/__init__.py", "sb3_bierl_zoo.pth", "sb3_bierl/meta/pretrained/meta_controller.pt"} <= names


def test_pth_is_installed_and_start_up_stays_cheap(tmp_path):
    site_dirs = {*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    if site.ENABLE_USER_SITE:
        site_dirs.add(site.getusersitepackages())
    found = [Path(folder, "sb3_bierl_zoo.pth") for folder in site_dirs if Path(folder, "sb3_bierl_zoo.pth").is_file()]
    assert found, f"sb3_bierl_zoo.pth is in none of {sorted(site_dirs)}: install the package (pip install -e .)"
    assert "import sb3_bierl_zoo_hook" in found[0].read_text()
    # pip recorded it, so that uninstalling removes it
    records = [
        distribution
        for distribution in importlib.metadata.distributions(name="sb3-bierl")
        if any(str(file) == "sb3_bierl_zoo.pth" for file in distribution.files or [])
    ]
    assert records, "no installed sb3-bierl lists sb3_bierl_zoo.pth in its RECORD"
    # start-up imports the hook, and nothing heavy
    process = run_python(
        [
            "-c",
            (
                "import sys; print('torch' in sys.modules, 'stable_baselines3' in sys.modules, "
                "'sb3_bierl' in sys.modules, any(type(f).__name__ == 'ZooFinder' for f in sys.meta_path))"
            ),
        ],
        tmp_path,
    )
    assert process.stdout.split() == ["False", "False", "False", "True"]
    # and it costs little: generous bound for a busy machine (importing torch alone takes ~1 s)
    timing = run_python(["-X", "importtime", "-c", "pass"], tmp_path).stderr
    hook_lines = [line for line in timing.splitlines() if line.split("|")[-1].strip() == "sb3_bierl_zoo_hook"]
    assert hook_lines, timing[-2000:]
    cumulative_us = int(hook_lines[0].split("|")[1])
    assert cumulative_us < 100_000, hook_lines[0]


def test_importing_rl_zoo3_registers_and_leaves_the_zoo_alone(tmp_path):
    script = """
import argparse, sys
import stable_baselines3
import rl_zoo3
from rl_zoo3.utils import ALGOS
from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER, HYPERPARAMS_CONVERTER
from rl_zoo3.exp_manager import ExperimentManager
from sb3_bierl import BiERL, ES
from sb3_bierl.zoo import hyperparams_path
assert ALGOS["bierl"] is BiERL and ALGOS["es"] is ES
from sb3_bierl import ESAC, NSRAES, NSRES
assert ALGOS["nsres"] is NSRES and ALGOS["nsraes"] is NSRAES and ALGOS["esac"] is ESAC
assert ALGOS["ppo"] is stable_baselines3.PPO
assert HYPERPARAMS_SAMPLER["bierl"].__module__ == "sb3_bierl.zoo.hyperparams_opt"
assert HYPERPARAMS_CONVERTER["es"].__module__ == "sb3_bierl.zoo.hyperparams_opt"
assert type(sys.modules["rl_zoo3.utils"].__loader__).__name__ == "SourceFileLoader"
ppo = ExperimentManager(argparse.Namespace(), "ppo", "CartPole-v1", "logs")
assert ppo.config.endswith("rl_zoo3/hyperparams/ppo.yml") and ppo.device == "auto", (ppo.config, ppo.device)
bierl = ExperimentManager(argparse.Namespace(), "bierl", "Pendulum-v1", "logs")
assert bierl.config == str(hyperparams_path("bierl")) and bierl.device == "cpu", (bierl.config, bierl.device)
custom = ExperimentManager(argparse.Namespace(), "es", "Pendulum-v1", "logs", config="mine.yml", device="cuda")
assert custom.config == "mine.yml" and custom.device == "cuda"
print("ok")
"""
    assert run_python(["-c", script], tmp_path).stdout.strip().endswith("ok")


def test_hook_answers_only_for_rl_zoo3_registries():
    finder = sb3_bierl_zoo_hook.ZooFinder()
    assert finder.find_spec("json") is None
    assert finder.find_spec("rl_zoo3") is None
    package = importlib.util.find_spec("rl_zoo3")  # found, not imported
    spec = finder.find_spec("rl_zoo3.utils", package.submodule_search_locations)
    assert type(spec.loader).__name__ == "_PatchingLoader"
    assert spec.loader.get_filename("rl_zoo3.utils").endswith("utils.py")  # the real loader's methods


# ---------------------------------------------------------------------- the zoo's commands
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``rl_zoo3.train --algo bierl`` with evaluation, checkpoints, a seed and tensorboard."""
    workdir = tmp_path_factory.mktemp("zoo")
    process = run_python(
        ["-m", "rl_zoo3.train", "--algo", "bierl", "--env", "Pendulum-v1", "-n", "2000", "--seed", "3",
         "--eval-freq", "1000", "--eval-episodes", "2", "--save-freq", "1000", "--tensorboard-log", "tb",
         "-f", "logs", "--num-threads", "1", "-params", "n_pairs:2", "learning_rate:0.02"],
        workdir,
    )
    return workdir, process


def test_train(trained):
    workdir, process = trained
    run_dir = workdir / "logs" / "bierl" / "Pendulum-v1_1"
    assert f"Loading hyperparameters from: {hyperparams_path('bierl')}" in process.stdout
    assert "Seed: 3" in process.stdout
    for name in ("Pendulum-v1.zip", "best_model.zip", "evaluations.npz", "rl_model_1000_steps.zip", "rl_model_2000_steps.zip"):
        assert (run_dir / name).is_file(), name
    assert list((workdir / "tb" / "Pendulum-v1").glob("BiERL_1/events.out.tfevents.*"))
    config = load_config(run_dir, "Pendulum-v1")
    assert config["n_pairs"] == 2 and config["learning_rate"] == 0.02
    model = BiERL.load(run_dir / "Pendulum-v1.zip")
    assert model.n_pairs == 2 and model.seed == 3 and model.num_timesteps >= 2000
    assert model.meta_controller is not None


def test_enjoy(trained):
    workdir, _ = trained
    process = run_python(
        ["-m", "rl_zoo3.enjoy", "--algo", "bierl", "--env", "Pendulum-v1", "-f", "logs", "--exp-id", "1",
         "--no-render", "-n", "50", "--num-threads", "1"],
        workdir,
    )
    assert "Pendulum-v1_1/Pendulum-v1.zip" in process.stdout


def test_continue_training(trained):
    workdir, _ = trained
    agent = workdir / "logs" / "bierl" / "Pendulum-v1_1" / "Pendulum-v1.zip"
    process = run_python(
        ["-m", "rl_zoo3.train", "--algo", "bierl", "--env", "Pendulum-v1", "-n", "1000", "-i", str(agent),
         "--eval-freq", "-1", "-f", "logs", "--seed", "4", "--num-threads", "1"],
        workdir,
    )
    assert "Loading pretrained agent" in process.stdout
    continued = sorted((workdir / "logs" / "bierl").glob("Pendulum-v1_*/Pendulum-v1.zip"))
    assert len(continued) >= 2
    before, after = BiERL.load(agent), BiERL.load(continued[-1])
    assert after.n_pairs == before.n_pairs == 2
    assert not (after.get_parameters()["policy"]["action_net.0.weight"] == before.get_parameters()["policy"]["action_net.0.weight"]).all()


def test_optimize_and_load_a_trial(tmp_path):
    common = ["-m", "rl_zoo3.train", "--algo", "bierl", "--env", "Pendulum-v1", "-f", "logs", "-n", "1000",
              "--storage", "study.log", "--study-name", "bierl-test", "--num-threads", "1"]
    run_python(
        [*common, "-optimize", "--n-trials", "2", "--n-jobs", "1", "--sampler", "random", "--pruner", "none",
         "--eval-episodes", "1", "--no-optim-plots", "--seed", "0"],
        tmp_path,
    )
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log")))
    study = optuna.load_study(storage=storage, study_name="bierl-test")
    assert len(study.trials) == 2
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
    # load trial 1 back (the zoo ignores --trial-id 0: it tests `if trial_id`)
    process = run_python([*common, "--trial-id", "1", "--eval-freq", "-1"], tmp_path)
    assert "Loading from Optuna study" in process.stdout
    expected = convert_bierl_params(study.trials[1].params)
    run_dir = next(path for path in (tmp_path / "logs" / "bierl").glob("Pendulum-v1_*") if (path / "Pendulum-v1.zip").exists())
    config = load_config(run_dir, "Pendulum-v1")
    for name in ("n_pairs", "sigma", "learning_rate", "meta_interval", "meta_n_pairs", "meta_sigma",
                 "meta_learning_rate", "meta_history_length", "meta", "hyperparameter_bounds"):
        assert config[name] == expected[name], name
    model = BiERL.load(run_dir / "Pendulum-v1.zip")
    assert model.meta == expected["meta"] and model.meta_interval == expected["meta_interval"]


def test_explicit_entry_point_without_the_hook(tmp_path):
    process = run_python(
        ["-m", "sb3_bierl.zoo", "train", "--algo", "es", "--env", "CartPole-v1", "-n", "2000", "--eval-freq", "1000",
         "--eval-episodes", "2", "-f", "logs", "--seed", "1", "--num-threads", "1", "-params", "n_pairs:2"],
        tmp_path,
        SB3_BIERL_ZOO_HOOK="0",  # registration comes from the entry point alone
    )
    assert f"Loading hyperparameters from: {hyperparams_path('es')}" in process.stdout
    model = ES.load(tmp_path / "logs" / "es" / "CartPole-v1_1" / "CartPole-v1.zip")
    assert model.n_pairs == 2 and model.num_timesteps >= 2000
    # the training episodes are in the run's Monitor file, so the zoo's training plot has a curve
    rows = (tmp_path / "logs" / "es" / "CartPole-v1_1" / "0.monitor.csv").read_text().splitlines()[2:]
    assert sum(int(row.split(",")[1]) for row in rows) == model.num_timesteps
    plot = run_python(["-c", PLOT_TRAIN, "--algo", "es", "--env", "CartPole-v1", "-f", "logs", "-w", "10"], tmp_path)
    assert "curves: 1" in plot.stdout
    # and without the hook or the entry point, the zoo is the zoo
    plain = run_python(["-m", "rl_zoo3.train", "--algo", "es", "--help"], tmp_path, check=False, SB3_BIERL_ZOO_HOOK="0")
    assert plain.returncode != 0 and "invalid choice: 'es'" in plain.stderr


@pytest.mark.skipif(importlib.util.find_spec("psutil") is None, reason="the CPU-time budget needs psutil")
@pytest.mark.parametrize("algo", ["ppo", "bierl"])
def test_the_zoo_loads_the_cpu_time_budget_from_a_hyperparameter_file(tmp_path, algo):
    """The campaign's budget (issue 13) is an SB3 callback the zoo reads from the ``callback:`` key."""
    conf = tmp_path / "budget.yml"
    conf.write_text(
        "CartPole-v1:\n"
        "  policy: MlpPolicy\n"
        "  n_timesteps: !!float 1e8\n"
        "  callback:\n"
        "    - sb3_bierl.benchmarks.cpu_budget.CPUTimeBudget:\n"
        "        budget_s: 3\n"
        "        verbose: 1\n"
    )
    process = run_python(
        ["-m", "rl_zoo3.train", "--algo", algo, "--env", "CartPole-v1", "-conf", str(conf), "-f", "logs",
         "--seed", "0", "--num-threads", "1", "--eval-freq", "-1"],
        tmp_path,
    )
    assert "CPU-time budget of 3 s reached" in process.stdout


@pytest.mark.parametrize(
    "algo, env_id, params",
    [
        ("nsres", "CartPole-v1", ["n_pairs:2", "n_members:2", "k_nearest:2"]),
        ("esac", "Pendulum-v1", ["n_pairs:2", "learning_starts:200", "policy_kwargs:dict(net_arch=[16])"]),
        ("bierl", "Pendulum-v1", ["n_pairs:2", "inner:'nsr_es'", "n_members:2", "meta_interval:1", "meta_n_pairs:1"]),
    ],
)
def test_train_the_other_inner_algorithms(tmp_path, algo, env_id, params):
    process = run_python(
        ["-m", "rl_zoo3.train", "--algo", algo, "--env", env_id, "-n", "3000", "--eval-freq", "1500",
         "--eval-episodes", "2", "-f", "logs", "--seed", "1", "--num-threads", "1", "-params", "n_workers:1", *params],
        tmp_path,
    )
    assert f"Loading hyperparameters from: {hyperparams_path(algo)}" in process.stdout
    model = ZOO_ALGOS[algo].load(tmp_path / "logs" / algo / f"{env_id}_1" / f"{env_id}.zip")
    assert model.num_timesteps >= 3000 and model.n_pairs == 2
    if algo == "bierl":
        assert model.inner == "nsr_es" and type(model).__name__ == "BiERLNSRES"


def test_env_wrapper_reaches_the_population_and_normalize_is_refused(tmp_path):
    """The zoo's env_wrapper is in every population copy (TimeFeatureWrapper adds an observation); normalize fails."""
    common = ["-m", "rl_zoo3.train", "--algo", "es", "--env", "Pendulum-v1", "-n", "600", "--eval-freq", "-1",
              "-f", "logs", "--seed", "1", "--num-threads", "1"]
    run_python([*common, "-params", "n_pairs:2", "env_wrapper:'sb3_contrib.common.wrappers.TimeFeatureWrapper'"], tmp_path)
    model = ES.load(tmp_path / "logs" / "es" / "Pendulum-v1_1" / "Pendulum-v1.zip")
    assert model.observation_space.shape == (4,) and model.num_timesteps >= 600
    refused = run_python([*common, "-params", "n_pairs:2", "normalize:True"], tmp_path, check=False)
    assert refused.returncode != 0 and "remove 'normalize'" in refused.stderr


def egl_available() -> bool:
    """Whether MuJoCo can render off-screen here (EGL), in a fresh interpreter."""
    probe = (
        "import gymnasium as gym; env = gym.make('InvertedPendulum-v5', render_mode='rgb_array'); "
        "env.reset(seed=0); assert env.render().shape[-1] == 3"
    )
    environment = {**os.environ, "MUJOCO_GL": "egl"}
    return subprocess.run([sys.executable, "-c", probe], env=environment, capture_output=True, timeout=120).returncode == 0


def test_record_video_headless_with_egl(tmp_path):
    """The README's headless recipe: rl_zoo3.record_video for bierl on a MuJoCo env with MUJOCO_GL=egl."""
    if importlib.util.find_spec("moviepy") is None:
        pytest.skip("rl_zoo3.record_video needs moviepy (in the test and zoo extras)")
    if not egl_available():
        pytest.skip("MuJoCo cannot render with EGL on this machine (no GPU driver or libEGL)")
    common = ["--algo", "bierl", "--env", "InvertedPendulum-v5", "-f", "logs"]
    train = ["-n", "600", "--eval-freq", "-1", "--seed", "0", "--num-threads", "1", "-params", "n_pairs:2"]
    run_python(["-m", "rl_zoo3.train", *common, *train], tmp_path)
    run_python(["-m", "rl_zoo3.record_video", *common, "-n", "60", "--exp-id", "1", "-o", "videos"], tmp_path, MUJOCO_GL="egl")
    assert list((tmp_path / "videos").glob("*.mp4"))


def test_mujoco_training_is_quiet_and_leaves_no_log_file(tmp_path):
    """MuJoCo 4's settotalmass deprecation (HalfCheetah) is filtered in the zoo's envs and every population copy."""
    process = run_python(
        ["-m", "rl_zoo3.train", "--algo", "es", "--env", "HalfCheetah-v5", "-n", "300", "--eval-freq", "-1",
         "-f", "logs", "--seed", "1", "--num-threads", "1", "-params", "n_pairs:2", "n_workers:2", "backend:'processes'"],
        tmp_path,
    )
    assert "settotalmass" not in process.stdout + process.stderr
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


# ---------------------------------------------------------------------- hyperparameters
@pytest.mark.parametrize("algo", ["bierl", "es", "nsres", "nsraes", "esac"])
def test_hyperparameter_files(algo):
    path = hyperparams_path(algo)
    text = path.read_text()
    entries = yaml.safe_load(text)
    assert set(TASKS) <= set(entries)
    allowed = {"n_envs", "n_timesteps", "policy", "policy_kwargs"} | ({"hyperparameter_bounds"} if algo == "bierl" else set())
    algorithm = ZOO_ALGOS[algo]
    for env_id, entry in entries.items():
        assert set(entry) <= allowed, (env_id, set(entry) - allowed)
        assert entry["n_envs"] == 1 and entry["n_timesteps"] > 0
        if env_id != "default":
            gym.spec(env_id)  # a real id
        kwargs = {key: value for key, value in entry.items() if key not in ("n_envs", "n_timesteps", "policy")}
        if "policy_kwargs" in kwargs:
            kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"])  # as the zoo does
        algorithm(entry["policy"], "Pendulum-v1", _init_setup_model=False, **kwargs)  # bounds hold the initial values
    if algo == "bierl":
        assert "not to need per-task tuning" in text.split("\n\n")[0]


@pytest.mark.parametrize("algo", ["bierl", "es", "nsres", "nsraes", "esac"])
def test_samplers_give_valid_models_and_convert_back(algo):
    sampler, converter, algorithm = SAMPLERS[algo], CONVERTERS[algo], ZOO_ALGOS[algo]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    for _ in range(25):
        trial = study.ask()
        hyperparams = sampler(trial, 1, 1, {})
        assert converter(trial.params) == hyperparams  # how the zoo loads a trial back
        model = algorithm("MlpPolicy", "Pendulum-v1", _init_setup_model=False, **hyperparams)
        if algo == "bierl":
            bounds = hyperparams["hyperparameter_bounds"]
            assert bounds["sigma"][0] <= model.sigma <= bounds["sigma"][1]
            assert bounds["learning_rate"][0] <= model.learning_rate <= bounds["learning_rate"][1]
            assert model.meta in ("lstm", "mean")
        study.tell(trial, 0.0)
    names = set(study.trials[0].params)
    if algo == "bierl":
        assert {"meta_interval", "meta_n_pairs", "meta_sigma", "meta_learning_rate", "meta_history_length",
                "meta", "n_pairs"} <= names
    else:
        assert {"sigma", "learning_rate", "n_pairs", "weight_decay"} <= names
