#!/usr/bin/env python3
"""Screenshots of each page of the dashboard, for docs/ui.md.

    .venv/bin/python scripts/ui_screenshots.py [--out docs/ui] [--seconds 60]

Starts a 3-node cluster of real processes on 127.0.0.1 (in a temporary folder), enqueues,
leases, acks and dead-letters tasks for ``--seconds`` so the charts have a history, then opens
the leader's dashboard in Debian's chromium (Playwright, no browser download) and saves
cluster.png, queues.png, tasks.png, dlq.png, purge-confirm.png, schedules.png, workers.png
and phone.png.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from dqueue.testing.cluster import NodeCluster
from dqueue.testing.http import Http

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TYPES = ("email", "resize-image", "report")
QUEUES = ("default", "emails", "images")
QUEUE_READY = '#overview svg path[data-series="enqueued"]'


def call(api: Http, method: str, path: str, body: object = None) -> object:
    """One request that must succeed."""
    status, _, answer = api.call(method, path, body)
    if not 200 <= status < 300:
        raise SystemExit(f"{method} {path}: {status} {answer}")
    return answer


def work(api: Http, seconds: float, rng: random.Random) -> str:
    """Traffic for ``seconds``: enqueues, acks, some dead letters; returns one task's id."""
    deadline = time.monotonic() + seconds
    shown = ""
    while time.monotonic() < deadline:
        tasks = [{"type": rng.choice(TYPES), "queue": rng.choice(QUEUES),
                  "payload": {"user": rng.randrange(1000), "note": "hello <b>world</b>"}}
                 for _ in range(rng.randrange(5, 30))]
        call(api, "POST", "/tasks/batch", {"tasks": tasks})
        for _ in range(rng.randrange(3, 25)):
            status, _, task = api.call("POST", "/tasks/lease",
                                       {"worker_id": "worker-1", "queues": list(QUEUES)})
            if status != 200:
                break
            body = {"worker_id": "worker-1", "lease_token": task["lease"]["token"]}
            if rng.random() < 0.1:
                call(api, "POST", f"/tasks/{task['id']}/nack",
                     {**body, "reason": "SMTP 550: mailbox unavailable", "dead_letter": True})
            else:
                call(api, "POST", f"/tasks/{task['id']}/ack", body)
        status, _, leased = api.call("POST", "/tasks/lease",
                                     {"worker_id": "worker-2", "queues": list(QUEUES)})
        if status == 200:
            shown = leased["id"]
        time.sleep(0.5)  # a steady trickle for the charts, not a benchmark
    return shown


def heartbeats(api: Http) -> None:
    """Two workers' heartbeats (a long interval: they stay listed while the pages are shot)."""
    for worker_id, host, transport, queues, types, concurrency, in_flight in (
            ("billing-1", "app-3", "zmq", ["default"], ["report"], 8, 5),
            ("emails-7f2a", "app-1", "http", ["emails", "images"], ["email", "resize-image"],
             4, 3)):
        call(api, "POST", "/workers/heartbeat", {
            "worker_id": worker_id, "host": host, "pid": 40_000 + concurrency,
            "transport": transport, "queues": queues, "types": types,
            "concurrency": concurrency, "in_flight": in_flight,
            "started_at": "2026-12-03T15:02:11Z", "heartbeat_seconds": 300})


def shoot(page: Page, url: str, out: Path, name: str, ready: str,
          full_page: bool = True, click: str | None = None) -> None:
    """Open one tab, wait for ``ready`` (a selector of its data), click ``click`` if given,
    save its screenshot."""
    page.goto(url)
    page.wait_for_selector(ready)
    if click:
        page.click(click)
    page.screenshot(path=str(out / f"{name}.png"), full_page=full_page)
    print(f"wrote {out / (name + '.png')}")


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, make traffic, take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(19)
    with tempfile.TemporaryDirectory(prefix="dqueue-ui-") as tmp:
        cluster = NodeCluster(Path(tmp), 3, start=True)
        try:
            leader = cluster.leader()
            base = cluster.url(leader) + "/ui/"
            api = Http(cluster.http_addr[leader])
            call(api, "GET", "/stats/history")  # start the sampler before the traffic
            call(api, "PUT", "/queues/emails", {"max_retries": 5, "lease_seconds": 60})
            call(api, "PUT", "/queues/images", {"max_depth": 10_000})
            call(api, "PUT", "/schedules/heartbeat", {"every_seconds": 5, "task": {
                "type": "ping", "queue": "default"}})
            call(api, "PUT", "/schedules/nightly-report", {
                "cron": "0 3 * * *", "timezone": "Europe/Paris",
                "task": {"type": "report", "queue": "images"}, "catch_up": "latest"})
            call(api, "PUT", "/schedules/weekly-digest", {
                "cron": "30 8 * * 1", "timezone": "America/New_York",
                "task": {"type": "digest", "queue": "emails"}, "paused": True})
            task_id = work(api, args.seconds, rng)
            heartbeats(api)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                shoot(page, base + "#cluster", args.out, "cluster", "#members tbody tr")
                shoot(page, base + "#queues", args.out, "queues", QUEUE_READY,
                      click='[data-queue="emails"] summary')
                page.goto(base + "#tasks")
                page.fill("#t-id", task_id)
                page.click("#t-find")
                page.wait_for_selector("#task-detail:not([hidden])")
                page.select_option("#t-status", "leased")
                page.click("#t-list")
                page.wait_for_selector("#tasks tbody tr")
                page.screenshot(path=str(args.out / "tasks.png"), full_page=True)
                print(f"wrote {args.out / 'tasks.png'}")
                shoot(page, base + "#dlq", args.out, "dlq", "#dead tbody tr", full_page=False)
                page.click("#q-purge")
                page.wait_for_selector("#confirm-dialog[open]")
                page.screenshot(path=str(args.out / "purge-confirm.png"))
                print(f"wrote {args.out / 'purge-confirm.png'}")
                page.click("#confirm-no")
                shoot(page, base + "#schedules", args.out, "schedules", "#schedules tbody tr",
                      full_page=False)
                shoot(page, base + "#workers", args.out, "workers", "#workers tbody tr",
                      full_page=False)
                phone = browser.new_page(viewport={"width": 390, "height": 844},
                                         is_mobile=True, device_scale_factor=2)
                shoot(phone, base + "#queues", args.out, "phone", QUEUE_READY)
                browser.close()
            api.close()
        finally:
            cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
