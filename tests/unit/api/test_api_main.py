"""The API process's entry point: a thread that dies ends the process (exit 70) and says so; a
start that a restart would repeat exits 78 (``ApiExit.CANNOT_START``)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from dqueue.api.__main__ import raise_fd_limit
from dqueue.config import NodeConfig
from dqueue.exit_status import ApiExit

DYING_THREAD = """
import threading, time
from dqueue.api import __main__ as api_main
from dqueue.logs import configure_logging
configure_logging("n1", "api", "info", "json")
threading.excepthook = api_main._die_with_thread
threading.Thread(target=lambda: 1 / 0, name="worker-gateway").start()
time.sleep(30)  # the hook ends the process long before
"""


def test_a_thread_that_dies_takes_the_process_down_and_logs_it():
    done = subprocess.run([sys.executable, "-c", DYING_THREAD], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == ApiExit.THREAD_DIED
    assert "thread_died" in done.stderr + done.stdout
    assert "worker-gateway" in done.stderr + done.stdout


def test_raise_fd_limit_reaches_the_hard_limit():
    import resource

    soft = raise_fd_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard == resource.RLIM_INFINITY or soft == hard


def _run_api(config: NodeConfig) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dqueue.api", "--config-json", config.to_json()],
                          capture_output=True, text=True, timeout=60)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def taken_port():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder.getsockname()[1]
    holder.close()


def test_a_taken_http_port_exits_cannot_start(tmp_path, taken_port):
    config = NodeConfig(id="n1", data_dir=str(tmp_path), http_addr=f"127.0.0.1:{taken_port}",
                        worker_addr=f"127.0.0.1:{_free_port()}")
    done = _run_api(config)
    assert done.returncode == ApiExit.CANNOT_START == 78
    assert f"cannot bind the HTTP address 127.0.0.1:{taken_port}" in done.stderr


def test_a_taken_worker_port_exits_cannot_start(tmp_path, taken_port):
    config = NodeConfig(id="n1", data_dir=str(tmp_path), http_addr=f"127.0.0.1:{_free_port()}",
                        worker_addr=f"127.0.0.1:{taken_port}")
    done = _run_api(config)
    assert done.returncode == ApiExit.CANNOT_START
    assert f"cannot bind the worker address 127.0.0.1:{taken_port}" in done.stderr


def test_a_malformed_tokens_file_exits_cannot_start(tmp_path):
    secure_dir = tmp_path / "keys"
    secure_dir.mkdir(mode=0o700)
    (secure_dir / "tokens.json").write_text("{not json")
    config = NodeConfig(id="n1", data_dir=str(tmp_path / "data"),
                        http_addr=f"127.0.0.1:{_free_port()}",
                        worker_addr=f"127.0.0.1:{_free_port()}", secure_dir=str(secure_dir))
    done = _run_api(config)
    assert done.returncode == ApiExit.CANNOT_START
    assert "tokens.json" in done.stderr
