"""
Packaging is configured in setup.cfg. This file gives the packages, with the top-level ``hyperparams/``
folder (the RL Zoo's layout) installed as ``sb3_bierl.hyperparams``, and adds ``sb3_bierl_zoo.pth`` at the root of
site-packages, for regular (``pip install .``) and editable (``pip install -e .``) installs alike:
its one line imports ``sb3_bierl_zoo_hook`` (standard library only) at start-up, which registers
BiERL and ES with the RL Baselines3 Zoo when, and only when, ``rl_zoo3`` is imported.

- Regular wheel: the file is written into ``build_lib``, whose content is the wheel's root (purelib).
- Editable wheel (PEP 660, setuptools >= 64): ``build_lib`` is a throw-away folder there; setuptools
  packs the wheel from the ``install`` command's ``install_lib`` (the unpacked wheel), so the file is
  written there. Whatever the editable mode (lenient, strict, compat), it lands in site-packages
  next to setuptools' own ``__editable__.*.pth``, which sorts (and so runs) before it.
"""

import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

PTH_NAME = "sb3_bierl_zoo.pth"
# One line, run by site.py at start-up; never fails, even if the hook module has gone missing
PTH_LINE = 'import sys; exec("try:\\n import sb3_bierl_zoo_hook\\nexcept Exception:\\n pass")\n'


class build_py_with_pth(build_py):
    """``build_py`` that also writes ``sb3_bierl_zoo.pth`` at the root of the (editable) wheel."""

    def _pth_dir(self) -> str:
        if getattr(self, "editable_mode", False):
            return self.get_finalized_command("install").install_lib
        return self.build_lib

    def run(self) -> None:
        super().run()
        target = self._pth_dir()
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, PTH_NAME), "w", encoding="utf-8") as file:
            file.write(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs.append(os.path.join(self.build_lib, PTH_NAME))
        return outputs


setup(
    packages=[*find_packages(include=["sb3_bierl*"]), "sb3_bierl.hyperparams"],
    package_dir={"sb3_bierl.hyperparams": "hyperparams"},
    cmdclass={"build_py": build_py_with_pth},
)
