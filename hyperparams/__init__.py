"""
The RL Baselines3 Zoo hyperparameter files of sb3-bierl (``{algo}.yml``), at the top of the repository as in
the Zoo. This folder is installed as the package ``sb3_bierl.hyperparams`` (``setup.py``: ``package_dir``),
in regular and editable installs alike, so the Zoo finds them with no second copy;
``sb3_bierl.zoo.hyperparams_path`` gives a file's path.
"""
