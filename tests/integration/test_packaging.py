"""The installable package: a wheel built from this checkout, installed into a new virtual
environment, gives the three console scripts, ``python -m dqueue``, ``--version`` and
``py.typed``, and the installed ``dqueue`` command runs a node that answers ``/health``.

Real pip, a real venv and a real node process on 127.0.0.1; slow (it installs the dependencies
from the package registry into the new venv).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from pathlib import Path

import pytest

import dqueue
from dqueue.testing import free_ports, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd: str | Path, timeout_s: float = 300) -> str:
    """Runs outside the checkout, so that ``import dqueue`` cannot find the source tree."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout_s, check=False, cwd=Path(cmd[0]).parent, env=env)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel of this checkout installed; returns its bin folder."""
    tmp = tmp_path_factory.mktemp("pkg")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--disable-pip-version-check", "-w", tmp / "dist", ROOT)
    wheels = list((tmp / "dist").glob("dqueue-*.whl"))
    assert len(wheels) == 1, wheels
    assert wheels[0].name.startswith(f"dqueue-{dqueue.__version__}-")
    venv.create(tmp / "venv", with_pip=True)
    bin_dir = tmp / "venv" / "bin"
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         wheels[0])
    return bin_dir


def test_console_scripts_and_module_print_the_version(installed: Path) -> None:
    want = dqueue.__version__
    assert _run(installed / "dqueue", "--version").split() == ["dqueue", want]
    assert _run(installed / "dqueue-cli", "--version").split() == ["dqueue-cli", want]
    assert _run(installed / "dqueue-worker", "--version").split() == ["dqueue-worker", want]
    assert _run(installed / "python", "-m", "dqueue", "--version").split()[-1] == want


def test_the_package_is_typed(installed: Path) -> None:
    where = _run(installed / "python", "-c",
                 "import dqueue, pathlib; print(pathlib.Path(dqueue.__file__).parent)").strip()
    assert (Path(where) / "py.typed").is_file()
    assert not Path(where).is_relative_to(ROOT), "the venv must use the installed copy"


def test_the_installed_command_runs_a_node(installed: Path, tmp_path: Path) -> None:
    http_port, raft_port, worker_port = free_ports(3)
    node = subprocess.Popen(
        [str(installed / "dqueue"), "--id=pkg", "--bootstrap=true",
         f"--data-dir={tmp_path / 'data'}", f"--http-addr=127.0.0.1:{http_port}",
         f"--raft-addr=127.0.0.1:{raft_port}", f"--worker-addr=127.0.0.1:{worker_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    try:
        def healthy() -> dict[str, object] | None:
            assert node.poll() is None, node.stderr.read().decode() if node.stderr else ""
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health",
                                        timeout=2) as resp:
                health: dict[str, object] = json.loads(resp.read())
            return health if health.get("status") == "ok" else None

        wait_for(healthy, 60, "the installed node to answer /health with status ok",
                 interval_s=0.05,
                 ignore=(urllib.error.URLError, ConnectionError, TimeoutError))
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        try:
            node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
