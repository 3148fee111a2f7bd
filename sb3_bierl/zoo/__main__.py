"""
Run an RL Baselines3 Zoo script with BiERL and ES registered explicitly::

    python -m sb3_bierl.zoo train --algo bierl --env Pendulum-v1 --eval-freq 20000
    python -m sb3_bierl.zoo enjoy --algo bierl --env Pendulum-v1 -f logs/
    python -m sb3_bierl.zoo record_video --algo es --env Pendulum-v1 -f logs/

The arguments after the script name are the zoo's own (``python -m rl_zoo3.train --help``). With
sb3-bierl installed, ``python -m rl_zoo3.train --algo bierl ...`` works as well: this entry point is
for interpreters started without site-packages' ``.pth`` files (``python -S``) or with the hook
turned off (``SB3_BIERL_ZOO_HOOK=0``).
"""

import runpy
import sys

SCRIPTS = {
    "train": "rl_zoo3.train",
    "enjoy": "rl_zoo3.enjoy",
    "record_video": "rl_zoo3.record_video",
    "record_training": "rl_zoo3.record_training",
    "push_to_hub": "rl_zoo3.push_to_hub",
    "load_from_hub": "rl_zoo3.load_from_hub",
    "plot_train": "rl_zoo3.plots.plot_train",
    "plot_from_file": "rl_zoo3.plots.plot_from_file",
    "all_plots": "rl_zoo3.plots.all_plots",
}

USAGE = f"usage: python -m sb3_bierl.zoo {{{','.join(SCRIPTS)}}} [zoo arguments]"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        print(__doc__)
        return
    script, arguments = argv[0], argv[1:]
    if script not in SCRIPTS:
        sys.exit(f"unknown script {script!r}\n{USAGE}")
    try:
        from sb3_bierl.zoo import register

        register()
    except ImportError as error:
        sys.exit(f'{error}\nThe RL Baselines3 Zoo is needed: pip install ".[zoo]" in a checkout of sb3-bierl')
    sys.argv = [sys.argv[0], *arguments]
    runpy.run_module(SCRIPTS[script], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
