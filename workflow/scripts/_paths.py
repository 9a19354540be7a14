"""Make the checkout's science package importable when a script runs in any environment.

Scripts import this module first; it puts ``<repository>/src`` at the front of ``sys.path`` so that
a plain venv, a Snakemake conda env or a SLURM job all use the package of this checkout.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
