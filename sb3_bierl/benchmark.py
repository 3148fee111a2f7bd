"""
The head-to-head runner's old name, kept so that existing commands and imports work:
``python -m sb3_bierl.benchmark CONFIG ...`` runs ``python -m sb3_bierl.benchmarks.head_to_head CONFIG ...``,
and this module re-exports that package's public names.
"""

import sys

from sb3_bierl.benchmarks import head_to_head
from sb3_bierl.benchmarks.head_to_head import *  # noqa: F403 (the package's public names, listed in __all__)
from sb3_bierl.benchmarks.head_to_head import main

__all__ = list(head_to_head.__all__)

if __name__ == "__main__":
    sys.exit(main())
