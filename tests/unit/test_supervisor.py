"""The supervisor with stand-in children: restart of the API process, death of the Raft
process, and the stop order (API first, then Raft)."""

from __future__ import annotations

import pathlib
import sys
import threading

import pytest

from dqueue.config import NodeConfig
from dqueue.exit_status import ApiExit, NodeExit, RaftExit
from dqueue.supervisor import API, RAFT, Supervisor, main
from dqueue.testing import wait_for

# A stand-in child: records its start and its SIGTERM in a journal file, then waits. With
# `die_first` it exits 3 at its first start (remembered through a marker file); with
# `exit_after` it exits 0 on its own after that many seconds.
CHILD = """
import os, pathlib, signal, sys, time
name, journal, mode = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
def note(text):
    with open(journal, "a") as fh:
        fh.write(f"{name} {text}\\n")
note("start")
if mode == "die_first":
    marker = journal.with_suffix("." + name)
    if not marker.exists():
        marker.write_text("x")
        sys.exit(3)
def on_term(*_):
    note("term")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
life_s = float(mode.partition("=")[2]) if mode.startswith("exit_after=") else 60
deadline = time.monotonic() + life_s
while time.monotonic() < deadline:
    time.sleep(0.01)
note("exit")
"""


def command(name: str, journal: pathlib.Path, mode: str = "run") -> list[str]:
    return [sys.executable, "-c", CHILD, name, str(journal), mode]


def lines(journal: pathlib.Path) -> list[str]:
    return journal.read_text().splitlines() if journal.exists() else []


def run_in_thread(supervisor: Supervisor) -> tuple[threading.Thread, list[int]]:
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run()))
    thread.start()
    return thread, result


def test_api_restarted_and_stop_order(tmp_path):
    journal = tmp_path / "journal.txt"
    supervisor = Supervisor(NodeConfig(id="n1"), {
        RAFT: command("raft", journal), API: command("api", journal, "die_first"),
    })
    thread, result = run_in_thread(supervisor)
    try:
        wait_for(lambda: lines(journal).count("api start") == 2)
        assert supervisor.api_restarts == 1
    finally:
        supervisor.request_stop()
        thread.join(30)
    assert result == [0]
    log = lines(journal)
    assert log.index("api term") < log.index("raft term")


def test_raft_death_stops_api_and_fails(tmp_path):
    journal = tmp_path / "journal.txt"
    supervisor = Supervisor(NodeConfig(id="n1"), {
        RAFT: command("raft", journal, "exit_after=0.5"), API: command("api", journal),
    })
    thread, result = run_in_thread(supervisor)
    thread.join(30)
    assert not thread.is_alive()
    assert result == [1]
    log = lines(journal)
    assert "raft exit" in log
    assert "api term" in log


def test_raft_exit_2_halts_the_node_with_status_2(tmp_path, capfd):
    """Status 2 (a corrupt store, an entry that cannot be applied) is passed on, so that the
    systemd unit (RestartPreventExitStatus=2) does not restart the node into the same error."""
    journal = tmp_path / "journal.txt"
    supervisor = Supervisor(NodeConfig(id="n1"), {
        RAFT: [sys.executable, "-c", f"import sys; sys.exit({int(RaftExit.HALTED)})"],
        API: command("api", journal),
    })
    thread, result = run_in_thread(supervisor)
    thread.join(30)
    assert not thread.is_alive()
    assert result == [NodeExit.OPERATOR_NEEDED] == [2]
    assert "not restarting" in capfd.readouterr().err


def test_an_api_process_that_cannot_start_stops_the_node_with_status_1_and_no_restart(tmp_path):
    """The API process exits 78 when its HTTP or worker port is taken or its tokens file or
    worker keys are bad: a restart would meet the same, so the node stops (it once restarted the
    API process forever)."""
    journal = tmp_path / "journal.txt"
    supervisor = Supervisor(NodeConfig(id="n1"), {
        RAFT: command("raft", journal),
        API: [sys.executable, "-c", f"import sys; sys.exit({int(ApiExit.CANNOT_START)})"],
    })
    thread, result = run_in_thread(supervisor)
    thread.join(30)
    assert not thread.is_alive()
    assert result == [NodeExit.FAILED] == [1]
    assert supervisor.api_restarts == 0
    assert "raft term" in lines(journal)


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["--id", "a", "--lease-timeout", "x"], "queue.lease_timeout"),
        (["--id", "a", "--peers", "b=127.0.0.1:1"], "peers"),
        (["--bootstrap=true"], "id"),
    ],
)
def test_bad_configuration_exits_2_naming_the_key(capsys, argv, key):
    assert main(argv) == 2
    assert f"configuration error: {key}:" in capsys.readouterr().err


def test_non_loopback_peers_without_keys_exit_1_saying_how_to_make_keys(capsys, tmp_path):
    data_dir = tmp_path / "data"
    assert main(["--id", "n1", "--data-dir", str(data_dir), "--peers",
                 "n1=10.0.0.1:9090,n2=10.0.0.2:9090"]) == 1
    err = capsys.readouterr().err
    assert "raft_addr" in err and "dqueue-cli keys init" in err and "--insecure" in err
    assert not data_dir.exists()  # refused before anything was started or created
