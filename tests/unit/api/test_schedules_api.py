"""The schedule resources (dqueue/api/schedules.py) over the real queue state machine."""

from __future__ import annotations

from typing import Any

import pytest

SPEC = {"every_seconds": 60, "task": {"type": "report", "payload": {"kind": "daily"}}}


def test_put_show_list_pause_resume_delete(client: Any, fake: Any) -> None:
    made = client.simulate_put("/schedules/nightly", json=SPEC)
    assert made.status_code == 201, made.json
    body = made.json
    assert body["name"] == "nightly" and body["every_seconds"] == 60
    assert body["task"]["type"] == "report" and body["catch_up"] == "skip"
    assert body["next_slot"] is not None and body["created_at"] is not None
    assert fake.commands[-1]["op"] == "put_schedule"
    again = client.simulate_put("/schedules/nightly", json={**SPEC, "catch_up": "latest"})
    assert again.status_code == 200 and again.json["catch_up"] == "latest"
    listed = client.simulate_get("/schedules").json["schedules"]
    assert [item["name"] for item in listed] == ["nightly"]
    assert client.simulate_get("/schedules/nightly").json["every_seconds"] == 60
    paused = client.simulate_post("/schedules/nightly/pause")
    assert paused.status_code == 200 and paused.json["paused"] is True
    assert paused.json["next_slot"] is None
    resumed = client.simulate_post("/schedules/nightly/resume")
    assert resumed.json["paused"] is False and resumed.json["next_slot"] is not None
    deleted = client.simulate_delete("/schedules/nightly")
    assert deleted.status_code == 200 and deleted.json == {"deleted": "nightly"}
    assert client.simulate_get("/schedules").json["schedules"] == []


def test_cron_with_zone(client: Any) -> None:
    made = client.simulate_put("/schedules/morning", json={
        "cron": "30 9 * * mon-fri", "timezone": "Europe/Paris", "task": {"type": "t"}})
    assert made.status_code == 201, made.json
    assert made.json["cron"] == "30 9 * * mon-fri" and made.json["timezone"] == "Europe/Paris"


@pytest.mark.parametrize(("body", "field"), [
    ({"task": {"type": "t"}}, "cron"),
    ({"cron": "* * *", "task": {"type": "t"}}, "cron"),
    ({"cron": "* * * * *", "timezone": "Moon/Base", "task": {"type": "t"}}, "timezone"),
    ({"every_seconds": -1, "task": {"type": "t"}}, "every_seconds"),
    ({"every_seconds": 5}, "task"),
    ({"every_seconds": 5, "task": {"type": ""}}, "task.type"),
    ({"every_seconds": 5, "task": {"type": "t", "queue": "a b"}}, "task.queue"),
    ({"every_seconds": 5, "task": {"type": "t"}, "catch_up": "never"}, "catch_up"),
    ({"every_seconds": 5, "task": {"type": "t"}, "nope": 1}, "nope"),
])
def test_bad_bodies_are_400_naming_the_field(client: Any, body: dict[str, Any],
                                             field: str) -> None:
    resp = client.simulate_put("/schedules/s", json=body)
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["field"] == field


def test_missing_schedule_and_queue(client: Any) -> None:
    for method, path in (("GET", "/schedules/none"), ("DELETE", "/schedules/none"),
                         ("POST", "/schedules/none/pause"), ("POST", "/schedules/none/resume"),
                         ("GET", "/schedules/not%20a%20name")):
        resp = client.simulate_request(method, path)
        assert resp.status_code == 404, (method, path, resp.json)
    resp = client.simulate_put("/schedules/s", json={
        "every_seconds": 5, "task": {"type": "t", "queue": "missing"}})
    assert resp.status_code == 404 and resp.json["error"]["code"] == "queue_not_found"
    assert resp.json["error"]["field"] == "schedule.task.queue"
