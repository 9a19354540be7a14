import http.server
import os
import sys
import threading
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


class _FlakyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; answers 503 to the first ``failures_left`` requests (retry tests)."""

    failures_left = 0
    requests = 0

    def do_GET(self):  # noqa: N802 (http.server API)
        type(self).requests += 1
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_error(503, "try again")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(tmp_path):
    """(served directory, base URL, handler class, stop()) of a local HTTP server on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    handler = type("Handler", (_FlakyHandler,), {})

    def make(*args, **kwargs):
        return handler(*args, directory=str(served), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    stopped = []

    def stop():
        if not stopped:
            httpd.shutdown()
            httpd.server_close()
            stopped.append(True)

    yield served, f"http://127.0.0.1:{httpd.server_address[1]}", handler, stop
    stop()
