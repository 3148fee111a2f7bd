"""sb3-bierl: BiERL (bilevel meta evolutionary RL) for Stable-Baselines3."""

from sb3_bierl.bierl import BiERL
from sb3_bierl.es import ES
from sb3_bierl.esac import ESAC
from sb3_bierl.nsr_es import NSRAES, NSRES
from sb3_bierl.version import __version__

#: The package's algorithms by their command-line and RL Zoo names
ALGORITHMS: dict[str, type[ES]] = {"bierl": BiERL, "es": ES, "nsres": NSRES, "nsraes": NSRAES, "esac": ESAC}

__all__ = ["ALGORITHMS", "ES", "ESAC", "NSRAES", "NSRES", "BiERL", "__version__"]
