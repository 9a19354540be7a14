import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CSV = ROOT / "resources" / "mp20_sample" / "train.csv"
sys.path.insert(0, str(ROOT / "src"))


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def sample_csv():
    return SAMPLE_CSV


def venv_python(env: str) -> Path:
    base = Path(os.environ.get("PLATONIC_VENVS", ROOT / ".venvs"))
    return base / env / "bin" / "python"


def require_env(env: str) -> Path:
    """Interpreter of a family env; skip with the reason, or fail when PLATONIC_REQUIRE_ENVS=1."""
    py = venv_python(env)
    if not py.exists():
        msg = f"environment {env!r} not created ({py}); run `make envs`"
        if os.environ.get("PLATONIC_REQUIRE_ENVS") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return py
