"""
Makes ``bierl`` and ``es`` algorithms of the RL Baselines3 Zoo (``rl_zoo3``) without editing it.

``sb3_bierl_zoo.pth``, installed next to this module in site-packages, imports it when Python
starts. It imports nothing but ``sys`` and ``os`` (both already loaded by then) and only puts a
finder at the front of ``sys.meta_path``: no torch, no Stable-Baselines3, a few microseconds.

The finder answers for three module names only: ``rl_zoo3.utils``, ``rl_zoo3.hyperparams_opt`` and
``rl_zoo3.exp_manager``. It finds them with the other finders, as Python would, and lets them load
unchanged; right after one of them has run, ``sb3_bierl.zoo.patch_module`` adds BiERL and ES to it
(``ALGOS``, the Optuna samplers and converters, where ``ExperimentManager`` finds their
hyperparameter files). rl_zoo3's own algorithms are left as they are. Any error there becomes a
warning: the zoo keeps working without BiERL, and Python start-up never fails because of this module.

Set ``SB3_BIERL_ZOO_HOOK=0`` to turn the hook off (``python -m sb3_bierl.zoo train ...`` still
registers explicitly).
"""

import os
import sys

HOOKED_MODULES = ("rl_zoo3.utils", "rl_zoo3.hyperparams_opt", "rl_zoo3.exp_manager")
DISABLE_VARIABLE = "SB3_BIERL_ZOO_HOOK"


class _PatchingLoader:
    """Runs the real loader, then patches the module. Only seen by the import system while loading."""

    def __init__(self, loader, name):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module):
        # The module sees its real loader, as if this wrapper had never been there
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        self._loader.exec_module(module)
        _patch(self._name, module)

    def __getattr__(self, name):  # get_source, get_resource_reader, ... of the real loader
        if name == "_loader":  # not initialised (copied without __init__)
            raise AttributeError(name)
        return getattr(self._loader, name)


class ZooFinder:
    """``sys.meta_path`` finder that patches rl_zoo3's registries once they are loaded."""

    def __init__(self):
        self._searching = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in HOOKED_MODULES or fullname in self._searching:
            return None
        self._searching.add(fullname)
        try:
            spec = None
            for finder in list(sys.meta_path):
                if isinstance(finder, ZooFinder):
                    continue
                find_spec = getattr(finder, "find_spec", None)
                if find_spec is None:
                    continue
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
        except Exception:  # noqa: BLE001 - let the import system find it (or fail) as usual
            return None
        finally:
            self._searching.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader, fullname)
        return spec

    def invalidate_caches(self):
        pass


def _patch(name, module):
    try:
        from sb3_bierl.zoo import patch_module

        patch_module(name, module)
    except Exception as error:  # noqa: BLE001 - never break rl_zoo3 for its own algorithms
        import warnings

        warnings.warn(
            f"sb3-bierl could not register its algorithms with rl_zoo3 ({name}: {type(error).__name__}: {error}); "
            "`--algo bierl` and `--algo es` are unavailable",
            RuntimeWarning,
            stacklevel=2,
        )


def install():
    """Put the finder on ``sys.meta_path`` (once), unless ``SB3_BIERL_ZOO_HOOK`` is 0/false/off/no."""
    if os.environ.get(DISABLE_VARIABLE, "1").strip().lower() in ("0", "false", "off", "no"):
        return
    if not any(isinstance(finder, ZooFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, ZooFinder())


try:
    install()
except Exception:  # noqa: BLE001, S110 - start-up must never fail because of this module
    pass
