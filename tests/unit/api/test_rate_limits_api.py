"""The rate limit resources (dqueue/api/rate_limits.py) and the queue setting ``rate_limit``,
over the real queue state machine."""

from __future__ import annotations

from typing import Any


def test_put_show_list_delete(client: Any, fake: Any) -> None:
    made = client.simulate_put("/rate-limits/email", json={"rate_limit": "100/m"})
    assert made.status_code == 201, made.json
    assert made.json == {"type": "email", "rate_limit": "100/m"}
    assert fake.commands[-1] == {"op": "put_rate_limit", "type": "email",
                                 "rate_limit": "100/m"}
    again = client.simulate_put("/rate-limits/email", json={"rate_limit": "5/s"})
    assert again.status_code == 200 and again.json["rate_limit"] == "5/s"
    client.simulate_put("/rate-limits/a.b", json={"rate_limit": "1/h"})
    listed = client.simulate_get("/rate-limits").json["rate_limits"]
    assert listed == [{"type": "a.b", "rate_limit": "1/h"},
                      {"type": "email", "rate_limit": "5/s"}]
    assert client.simulate_get("/rate-limits/email").json == {"type": "email",
                                                             "rate_limit": "5/s"}
    deleted = client.simulate_delete("/rate-limits/email")
    assert deleted.status_code == 200 and deleted.json == {"deleted": "email"}
    missing = client.simulate_get("/rate-limits/email")
    assert missing.status_code == 404 and missing.json["error"]["field"] == "type"
    assert client.simulate_delete("/rate-limits/email").status_code == 404


def test_bad_values_are_400_naming_the_field(client: Any, fake: Any) -> None:
    for body in ({"rate_limit": "100/d"}, {"rate_limit": 100}, {}, {"rate_limit": "0/s"}):
        refused = client.simulate_put("/rate-limits/email", json=body)
        assert refused.status_code == 400, (body, refused.json)
        assert refused.json["error"]["field"] == "rate_limit"
    unknown = client.simulate_put("/rate-limits/email", json={"rate_limit": "1/s", "x": 1})
    assert unknown.status_code == 400
    assert client.simulate_put("/rate-limits/%20bad", json={"rate_limit": "1/s"}
                               ).status_code == 404
    assert not [c for c in fake.commands if c["op"] == "put_rate_limit"]


def test_queue_setting(client: Any) -> None:
    made = client.simulate_put("/queues/mail", json={"rate_limit": "20/s"})
    assert made.status_code == 201, made.json
    assert made.json["settings"]["rate_limit"] == "20/s"
    bad = client.simulate_patch("/queues/mail", json={"rate_limit": "fast"})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "rate_limit"
    cleared = client.simulate_patch("/queues/mail", json={"rate_limit": None})
    assert cleared.status_code == 200 and cleared.json["settings"]["rate_limit"] is None
