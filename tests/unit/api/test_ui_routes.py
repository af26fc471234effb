"""The dashboard's static files, its sample ring and its history route, on the Falcon app."""

from __future__ import annotations

import dataclasses
from typing import Any

import falcon
import falcon.testing
import pytest
from prometheus_client import CollectorRegistry

from dqueue.api import ui_routes
from dqueue.api.app import create_app
from dqueue.api.errors import handle_http_error
from dqueue.api.ui_samples import Sample, Sampler, SampleRing, depth_of, event_total
from dqueue.tokens import add_token
from tests.unit.api.conftest import FakeRaft


class Reads:
    """A reader of stats and metrics that counts calls and can fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.acked = 0

    def __call__(self, query: dict[str, Any], timeout_ms: int, stale: bool) -> Any:
        assert stale, "the sampler reads this node's own view"
        if self.fail:
            raise TimeoutError("raft process down")
        self.calls += 1
        if query["op"] == "stats":
            return {"by_status": {"pending": 4, "dead": 1, "bogus": "x"}}
        return {"dqueue_queue_tasks_acked_total": {
            "by": ["queue", "type"], "values": {"q": {"a": self.acked}, "r": {"b": 1}}}}


@pytest.fixture
def ui() -> Any:
    app = falcon.App()
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    reads = Reads()
    sampler = ui_routes.register(app, reads)
    yield falcon.testing.TestClient(app), sampler, reads
    sampler.stop()


def test_each_file_has_its_content_type_cache_headers_and_csp(ui):
    client, _, _ = ui
    for path, kind in (("/ui/", "text/html"), ("/ui/index.html", "text/html"),
                       ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")):
        result = client.simulate_get(path)
        assert result.status_code == 200, path
        assert result.headers["Content-Type"].startswith(kind)
        assert result.headers["Cache-Control"] == "no-cache"
        assert result.headers["X-Content-Type-Options"] == "nosniff"
        assert "script-src 'self'" in result.headers["Content-Security-Policy"]
        assert result.content == (ui_routes.STATIC_DIR / (path[4:] or "index.html")).read_bytes()


def test_a_matching_etag_is_answered_304_without_a_body(ui):
    client, _, _ = ui
    etag = client.simulate_get("/ui/app.js").headers["ETag"]
    for header in (etag, "W/" + etag, f'"other", {etag}', "*"):
        result = client.simulate_get("/ui/app.js", headers={"If-None-Match": header})
        assert result.status_code == 304 and not result.content, header
    assert client.simulate_get("/ui/app.js", headers={"If-None-Match": '"x"'}).status_code == 200


def test_bare_ui_redirects_to_the_page(ui):
    client, _, _ = ui
    result = client.simulate_get("/ui")
    assert result.status_code == 302 and result.headers["Location"].endswith("/ui/")
    assert client.simulate_get("/").status_code == 404  # the SQS API's path, not the sink's


@pytest.mark.parametrize("path", ["/ui/../app.py", "/ui/%2e%2e%2fui_routes.py", "/ui/nope.js",
                                  "/ui/ui_routes.py", "/ui/static/app.js", "/ui/app.js/x",
                                  "/uix", "/ui/..", "/ui/%00"])
def test_only_the_named_files_are_served(ui, path):
    client, _, _ = ui
    result = client.simulate_get(path)
    assert result.status_code == 404, path
    assert b"import" not in result.content


def test_only_get_and_head(ui):
    client, _, _ = ui
    assert client.simulate_head("/ui/app.css").status_code == 200
    result = client.simulate_post("/ui/app.css")
    assert result.status_code == 405 and "GET" in result.headers["Allow"]


def test_the_page_view_starts_the_sampler_once(ui):
    client, sampler, reads = ui
    assert reads.calls == 0  # nothing in the background until someone looks
    client.simulate_get("/ui/")
    client.simulate_get("/ui/")
    history = client.simulate_get("/stats/history").json
    assert history["interval_seconds"] == ui_routes.Sampler(reads).ring.interval_s
    assert history["samples"] and history["samples"][0]["depth"] == {"pending": 4, "dead": 1}
    assert sampler._thread is not None


def test_the_ring_is_bounded_and_rates_are_per_second():
    ring = SampleRing(interval_s=5, window_s=60)
    for i in range(100):
        ring.add(Sample(i * 5_000, {"pending": i}, {"enqueued": i * 10, "acked": None,
                                                    "dead_lettered": 0}))
    snap = ring.snapshot()
    assert len(snap["samples"]) == 13  # 60 s of 5 s samples, both ends
    assert snap["samples"][0]["rates"]["enqueued"] is None  # nothing before the first
    assert snap["samples"][-1]["rates"] == {"enqueued": 2.0, "acked": None,
                                            "dead_lettered": 0.0}
    with pytest.raises(ValueError):
        SampleRing(interval_s=0)


def test_no_rate_across_a_counter_reset_or_a_gap():
    ring = SampleRing(interval_s=5, window_s=900)
    totals = {"enqueued": 100, "acked": 5, "dead_lettered": 0}
    ring.add(Sample(0, {}, totals))
    ring.add(Sample(5_000, {}, {**totals, "enqueued": 3}))  # the node restarted
    ring.add(Sample(60_000, {}, {**totals, "enqueued": 50}))  # no samples for 55 s
    ring.add(Sample(65_000, {}, {**totals, "enqueued": 60}))
    rates = [s["rates"]["enqueued"] for s in ring.snapshot()["samples"]]
    assert rates == [None, None, None, 2.0]


def test_sample_once_keeps_nothing_when_the_raft_process_does_not_answer():
    reads = Reads()
    sampler = Sampler(reads, clock_ms=lambda: 1_000)
    assert sampler.sample_once()
    reads.fail = True
    assert not sampler.sample_once()
    assert len(sampler.ring) == 1


def test_figures_of_other_shapes_give_none_not_an_error():
    assert event_total(None, "acked") is None
    assert event_total({"dqueue_queue_tasks_acked_total": 3}, "acked") is None
    assert event_total({"dqueue_queue_tasks_acked_total": {"values": {"a": 2, "b": True}}},
                       "acked") == 2
    nested = {"by": ["queue", "type"], "values": {"q": {"a": 2, "b": "x"}, "r": 3, "s": None}}
    assert event_total({"dqueue_queue_tasks_acked_total": nested}, "acked") == 5
    assert depth_of(["pending"]) == {} and depth_of({"by_status": None}) == {}


def test_with_tokens_the_page_needs_none_and_the_history_needs_read(config, tmp_path):
    folder = tmp_path / "sec"
    reader = add_token(str(folder), "r", frozenset({"read"}))[0]
    producer = add_token(str(folder), "p", frozenset({"produce"}))[0]
    config = dataclasses.replace(config, secure_dir=str(folder))
    client = falcon.testing.TestClient(create_app(lambda: FakeRaft(), config,
                                                  CollectorRegistry()))
    assert client.simulate_get("/ui/app.js").status_code == 200
    assert client.simulate_get("/stats/history").status_code == 401
    assert client.simulate_get("/stats").status_code == 401  # the sink opened nothing else

    def with_token(token: str) -> int:
        return client.simulate_get("/stats/history",
                                   headers={"Authorization": f"Bearer {token}"}).status_code

    assert with_token(reader) == 200 and with_token(producer) == 403
