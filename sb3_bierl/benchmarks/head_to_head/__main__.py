"""``python -m sb3_bierl.benchmarks.head_to_head CONFIG ...``: the head-to-head runner (see the package docstring)."""

import sys

from sb3_bierl.benchmarks.head_to_head.cli import main

if __name__ == "__main__":
    sys.exit(main())
