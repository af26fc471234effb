"""The dashboard at /ui in a real browser: Debian's chromium driven by Playwright.

A real node (``NodeCluster``, processes on 127.0.0.1) serves the page; the tests read the
page as a user sees it and check it against the node's JSON API, and the API after each
action taken in the page. The system chromium is used (``CHROMIUM``); no browser is
downloaded. ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster
from dqueue.testing.http import Http
from dqueue.tokens import add_token

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("DQUEUE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
UI_TIMEOUT_MS = 15_000
expect.set_options(timeout=UI_TIMEOUT_MS)
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def launch(playwright: Any) -> Browser:
    """The system chromium, headless (a clear failure, not a skip, when it is missing)."""
    assert Path(CHROMIUM).exists(), (
        f"no chromium at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    cluster = NodeCluster(tmp_path_factory.mktemp("ui"), 1, start=True)
    try:
        cluster.leader()
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def api(node: NodeCluster) -> Iterator[Http]:
    http = Http(node.http_addr["n1"])
    yield http
    http.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors  # no script error in any test


def call(api: Http, method: str, path: str, body: Any = None) -> Any:
    status, _, answer = api.call(method, path, body)
    assert 200 <= status < 300, (method, path, status, answer)
    return answer


def make_dead(api: Http, task_type: str, count: int, reason: str = "boom") -> list[str]:
    """Enqueue ``count`` tasks of ``task_type`` and dead-letter each through a lease."""
    ids = []
    for i in range(count):
        call(api, "POST", "/tasks", {"type": task_type, "payload": {"n": i}})
        leased = call(api, "POST", "/tasks/lease", {"worker_id": "w1", "types": [task_type]})
        call(api, "POST", f"/tasks/{leased['id']}/nack",
             {"worker_id": "w1", "lease_token": leased["lease"]["token"], "reason": reason,
              "dead_letter": True})
        ids.append(leased["id"])
    return ids


def dead_ids(api: Http, task_type: str) -> set[str]:
    page = call(api, "GET", f"/tasks?status=dead&type={task_type}&limit=1000")
    return {t["id"] for t in page["tasks"]}


def test_the_cluster_page_shows_what_the_api_says(node: NodeCluster, api: Http, page: Page):
    page.goto(node.url("n1") + "/ui")  # redirects to /ui/
    assert page.url.endswith("/ui/")
    cluster = call(api, "GET", "/cluster")
    expect(page.locator("#c-term")).to_have_text(str(cluster["term"]))
    expect(page.locator("#c-leader")).to_have_text(cluster["leader_id"])
    expect(page.locator("#c-node")).to_have_text("n1")
    leader_row = page.locator(f'#members tr[data-member="{cluster["leader_id"]}"]')
    expect(leader_row).to_have_class("leader")
    expect(leader_row).to_contain_text("leader")
    assert page.locator("#members tbody tr").count() == len(cluster["members"])
    commit = int(page.locator("#c-commit").inner_text())
    applied = int(page.locator("#c-applied").inner_text())
    assert commit >= cluster["commit_index"] and applied >= cluster["applied_index"]


def test_the_queues_page_shows_the_counts_of_the_api_and_charts(node: NodeCluster, api: Http,
                                                                 page: Page):
    call(api, "PUT", "/queues/emails", {"max_retries": 7})
    call(api, "POST", "/tasks/batch", {"tasks": [{"type": "report"}] * 3})
    call(api, "POST", "/tasks", {"type": "welcome", "queue": "emails"})
    page.goto(node.url("n1") + "/ui/#queues")
    overview = page.locator("#overview")
    expect(overview).to_be_visible()

    def shown(panel: Any, counts: dict[str, int]) -> bool:
        texts = {s: panel.locator(f'[data-depth="{s}"]').inner_text() for s in counts}
        return all(texts[s] == str(n) for s, n in counts.items())

    def shown_equals_api() -> bool:  # the page polls; the queue moves on between reads
        if not shown(overview, call(api, "GET", "/stats")["tasks"]):
            return False
        return all(shown(page.locator(f'[data-queue="{q["name"]}"]'), q["counts"])
                   for q in call(api, "GET", "/queues")["queues"])

    wait_for(shown_equals_api, 20, "the counts shown to equal GET /stats and GET /queues",
             ignore=(AssertionError,))
    emails = page.locator('[data-queue="emails"]')
    emails.locator("summary").click()
    expect(emails.locator('[data-setting="max_retries"] td')).to_have_text("7")
    expect(emails.locator('[data-setting="lease_seconds"] td')).to_have_text("node default")
    def an_enqueue_rate() -> bool:  # two samples around enqueues: the counters are read
        call(api, "POST", "/tasks", {"type": "report"})
        rates = [s["rates"]["enqueued"] for s in call(api, "GET", "/stats/history")["samples"]]
        return any(rate for rate in rates)

    wait_for(an_enqueue_rate, 30, "a nonzero enqueue rate in GET /stats/history",
             interval_s=0.5)
    expect(overview.locator('svg path[data-series="pending"]')).to_have_count(1)
    expect(overview.locator('[data-type="report"]')).to_be_visible()


def test_a_task_found_by_id_shows_its_payload_as_text(node: NodeCluster, api: Http,
                                                     page: Page):
    task = call(api, "POST", "/tasks", {"type": "render", "payload": {"html": XSS}})
    page.goto(node.url("n1") + "/ui/#tasks")
    page.fill("#t-id", task["id"])
    page.click("#t-find")
    expect(page.locator("#d-id")).to_have_text(task["id"])
    expect(page.locator("#d-payload")).to_contain_text(json.dumps(XSS))  # as JSON text
    expect(page.locator('#d-fields tr[data-field="attempts"] td')).to_have_text("0 (max_retries 3)")
    assert page.locator("#task-detail img, #task-detail script").count() == 0
    assert page.evaluate("window.__pwned") is None  # the payload never ran

    page.select_option("#t-status", "pending")
    page.fill("#t-type", "render")
    page.click("#t-list")
    expect(page.locator(f'#tasks tr[data-task-id="{task["id"]}"]')).to_be_visible()
    page.fill("#t-id", "no-such-task")
    page.click("#t-find")
    expect(page.locator("#banner")).to_contain_text("No task no-such-task")


def test_a_redrive_from_the_page_redrives(node: NodeCluster, api: Http, page: Page):
    [task_id] = make_dead(api, "redrive-me", 1, reason=XSS)
    page.goto(node.url("n1") + "/ui/#dlq")
    row = page.locator(f'#dead tr[data-task-id="{task_id}"]')
    expect(row).to_contain_text(XSS)  # the error text, shown as text
    row.locator("button.redrive").click()
    expect(page.locator("#banner")).to_contain_text("Redriven: 1")
    assert call(api, "GET", f"/tasks/{task_id}")["status"] == "pending"
    expect(row).to_have_count(0)
    assert page.evaluate("window.__pwned") is None


def test_a_purge_asks_first(node: NodeCluster, api: Http, page: Page):
    ids = set(make_dead(api, "purge-me", 2))
    keep = set(make_dead(api, "keep-me", 1))
    page.goto(node.url("n1") + "/ui/#dlq")
    page.fill("#q-type", "purge-me")
    page.click("#q-refresh")
    expect(page.locator("#dead tbody tr")).to_have_count(2)

    page.click("#q-purge")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("purge-me")
    page.click("#confirm-no")
    expect(dialog).to_be_hidden()
    expect(page.locator("#banner")).to_contain_text("Nothing purged")
    assert dead_ids(api, "purge-me") == ids  # dismissed: nothing purged

    page.click("#q-purge")
    page.click("#confirm-yes")
    expect(page.locator("#banner")).to_contain_text("Purged: 2")
    assert dead_ids(api, "purge-me") == set()
    assert dead_ids(api, "keep-me") == keep  # only the type asked for
    expect(page.locator("#dead tbody tr")).to_have_count(0)


def test_the_schedules_page_shows_the_api_and_pauses_and_resumes(node: NodeCluster, api: Http,
                                                                  page: Page):
    call(api, "PUT", "/schedules/ui-beat", {"every_seconds": 1, "task": {"type": "beat"}})
    call(api, "PUT", "/schedules/ui-nightly", {"cron": "0 3 * * *", "timezone": "Europe/Paris",
                                               "task": {"type": "report"}})
    page.goto(node.url("n1") + "/ui/#schedules")
    beat = page.locator('#schedules tr[data-schedule="ui-beat"]')
    expect(beat).to_contain_text("every 1 s")
    expect(page.locator('#schedules tr[data-schedule="ui-nightly"]')).to_contain_text(
        "cron 0 3 * * * (Europe/Paris)")

    def fired_shown_equals_api() -> bool:  # it fires every second; the page polls
        fired = call(api, "GET", "/schedules/ui-beat")["fired"]
        return fired > 0 and beat.locator('[data-field="fired"]').inner_text() == str(fired)

    wait_for(fired_shown_equals_api, 20, "the fired count of GET /schedules/ui-beat")
    beat.locator("button.pause").click()
    expect(page.locator("#banner")).to_contain_text("Paused: ui-beat")
    assert call(api, "GET", "/schedules/ui-beat")["paused"] is True
    expect(beat.locator('[data-field="next_slot"]')).to_have_text("paused")
    beat.locator("button.resume").click()
    expect(page.locator("#banner")).to_contain_text("Resumed: ui-beat")
    assert call(api, "GET", "/schedules/ui-beat")["paused"] is False
    for name in ("ui-beat", "ui-nightly"):
        call(api, "DELETE", f"/schedules/{name}")


def test_a_phone_sized_screen_needs_no_sideways_scrolling(node: NodeCluster, browser: Browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT_MS)
        for tab in ("cluster", "queues", "tasks", "dlq", "schedules"):
            page.goto(node.url("n1") + f"/ui/#{tab}")
            expect(page.locator(f"#view-{tab}")).to_be_visible()
            page.wait_for_function("document.getElementById('refreshed').textContent !== ''")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (tab, width)
    finally:
        context.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeCluster, dict]]:
    cluster = NodeCluster(tmp_path_factory.mktemp("ui-auth"), 1, secure=True)
    folder = str(cluster.secure_dir("n1"))
    tokens = {"read": add_token(folder, "viewer", frozenset({"read"}))[0],
              "admin": add_token(folder, "operator", frozenset({"read", "admin"}))[0]}
    try:
        cluster.start()
        cluster.leader()
        yield cluster, tokens
    finally:
        cluster.close()


def test_with_tokens_the_page_asks_for_one_and_sends_it(secured, page: Page):
    cluster, tokens = secured
    page.goto(cluster.url("n1") + "/ui/")
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()  # /cluster answered 401
    page.fill("#token-input", tokens["read"])
    page.click("#token-save")
    expect(dialog).to_be_hidden()
    expect(page.locator("#c-leader")).to_have_text("n1")
    assert page.evaluate("sessionStorage.getItem('dqueue.token')") == tokens["read"]

    page.goto(cluster.url("n1") + "/ui/#dlq")  # the token outlives a reload of the tab
    expect(page.locator("#q-count")).to_contain_text("0 dead task(s)")
    page.click("#q-purge")
    page.click("#confirm-yes")
    expect(page.locator("#banner")).to_contain_text("'viewer' lacks the role admin")

    page.click("#token-button")
    page.fill("#token-input", tokens["admin"] + "x")
    page.click("#token-save")  # the next call is refused 401: the page asks again
    expect(dialog).to_be_visible()
    expect(page.locator("#token-reason")).to_contain_text("not one this node knows")
    page.fill("#token-input", tokens["admin"])
    page.click("#token-save")
    expect(dialog).to_be_hidden()
    page.click("#q-purge")
    page.click("#confirm-yes")
    expect(page.locator("#banner")).to_contain_text("Purged: 0")


def test_the_workers_page_lists_what_get_workers_says(node: NodeCluster, api: Http,
                                                      page: Page):
    beat = {"worker_id": "ui-worker", "host": "box-9", "pid": 321, "concurrency": 6,
            "in_flight": 2, "queues": ["default"], "types": ["email", "sms"],
            "started_at": "2026-12-03T16:00:00Z", "heartbeat_seconds": 300}
    call(api, "POST", "/workers/heartbeat", beat)
    try:
        page.goto(node.url("n1") + "/ui/#workers")
        row = page.locator('#workers tr[data-worker="ui-worker"]')
        expect(row).to_contain_text("box-9")
        listed = {w["worker_id"]: w for w in call(api, "GET", "/workers")["workers"]}
        cells = row.locator("td").all_inner_texts()
        assert cells[:8] == ["ui-worker", "box-9", "321", "http", "default", "email, sms",
                             "6", "2"]
        assert cells[9] == listed["ui-worker"]["last_heartbeat_at"]
        assert page.locator("#workers tbody tr").count() == len(listed)
    finally:
        call(api, "POST", "/workers/heartbeat", {**beat, "leaving": True})
    page.reload()
    expect(page.locator('#workers tr[data-worker="ui-worker"]')).to_have_count(0)


def test_the_real_server_serves_the_files_and_nothing_beside_them(api: Http):
    status, headers, _ = api.call("GET", "/ui/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    status, _, _ = api.call("GET", "/ui/app.js", headers={"If-None-Match": headers["etag"]})
    assert status == 304
    for path in ("/ui/../app.py", "/ui/%2e%2e/ui_routes.py", "/ui/..%2fui_routes.py",
                 "/ui/static/index.html", "/ui//etc/passwd"):
        status, _, body = api.call("GET", path)
        assert status == 404, (path, status)
        assert "import" not in str(body)
