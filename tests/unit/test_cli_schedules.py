"""``dqueue-cli schedule``: every action, tables and JSON, against the real API app (the real
queue state machine behind it) served on 127.0.0.1."""

from __future__ import annotations

from tests.unit.test_cli import run, run_json
from tests.unit.test_cli_queues import server  # noqa: F401  (the fixture)


def test_add_list_show_pause_resume_rm(server):  # noqa: F811
    made = run_json("schedule", "add", "nightly", "--cron", "0 3 * * *", "--timezone",
                    "Europe/Paris", "--type", "report", "--payload", '{"kind": "daily"}',
                    "--catch-up", "latest")
    assert made["cron"] == "0 3 * * *" and made["timezone"] == "Europe/Paris"
    assert made["task"]["payload"] == {"kind": "daily"} and made["catch_up"] == "latest"
    beat = run_json("schedule", "add", "beat", "--every", "30s", "--type", "ping")
    assert beat["every_seconds"] == 30
    code, out, _ = run("schedule", "list")
    assert code == 0 and "SCHEDULE" in out and "nightly" in out and "every 30s" in out
    assert [item["name"] for item in run_json("schedule", "list")] == ["nightly", "beat"]
    code, out, _ = run("schedule", "show", "beat")
    assert code == 0 and "every_seconds" in out
    assert run_json("schedule", "pause", "beat")["paused"] is True
    code, out, _ = run("schedule", "resume", "beat")
    assert code == 0 and "active" in out
    assert run_json("schedule", "rm", "beat") == {"deleted": "beat"}
    assert [item["name"] for item in run_json("schedule", "list")] == ["nightly"]


def test_bad_flags_fail_with_a_message(server):  # noqa: F811
    code, _, err = run("schedule", "add", "x", "--type", "t")
    assert code != 0 and "--cron or --every" in err
    code, _, err = run("schedule", "add", "x", "--cron", "61 * * * *", "--type", "t")
    assert code != 0 and "cron" in err
    code, _, err = run("schedule", "add", "x", "--every", "1500ms", "--type", "t")
    assert code != 0 and "whole number" in err
    code, _, err = run("schedule", "show", "missing")
    assert code != 0 and "missing" in err
