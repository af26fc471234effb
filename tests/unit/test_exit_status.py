"""The exit statuses are what the supervisor, systemd and the operators' docs expect."""

from __future__ import annotations

import pathlib
import re

from dqueue.exit_status import ApiExit, NodeExit, RaftExit

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_values_kept_from_before_they_had_names():
    assert (NodeExit.STOPPED, NodeExit.FAILED, NodeExit.OPERATOR_NEEDED) == (0, 1, 2)
    assert (RaftExit.STOPPED, RaftExit.REFUSED_TO_START, RaftExit.HALTED) == (0, 1, 2)
    assert (ApiExit.STOPPED, ApiExit.THREAD_DIED, ApiExit.CANNOT_START) == (0, 70, 78)


def test_the_systemd_unit_does_not_restart_a_node_that_needs_its_operator():
    unit = (ROOT / "vagrant" / "dqueue.service").read_text()
    statuses = re.findall(r"^RestartPreventExitStatus=(.*)$", unit, re.MULTILINE)
    assert statuses == [str(int(NodeExit.OPERATOR_NEEDED))]

