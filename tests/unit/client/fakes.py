"""Test doubles for the client side: an in-memory queue, a REST server and a fake Raft process.

``FakeQueue`` is a deliberately naive model of the queue rules that clients rely on (leases
with tokens and expiry, ack/nack/extend by the holder, dead letters, idempotency keys).
``FakeHttpServer`` serves it over the REST API of docs/http-api.md on 127.0.0.1 with a free
port; ``FakeRaft`` serves it over the API-to-Raft IPC of docs/internals.md section 3,
parking long-poll leases.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import zmq

from dqueue.protocol import wire


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_for(cond: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    """Poll ``cond`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


class QueueError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FakeQueue:
    """A thread-safe, naive queue: lists and loops, wall-clock time."""

    def __init__(self, lease_ms: int = 30_000, backoff_ms: int = 0) -> None:
        self.lease_ms = lease_ms
        self.backoff_ms = backoff_ms
        self.tasks: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}
        self.acks: list[tuple[str, str]] = []  # (task id, worker id), every successful ack
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self.cond = threading.Condition()

    def enqueue(self, type: str, payload: Any = None, *, priority: int = 0, max_retries: int = 3,
                idempotency_key: str | None = None, delay_ms: int = 0) -> tuple[dict, bool]:
        with self.cond:
            if idempotency_key and idempotency_key in self.keys:
                return dict(self.tasks[self.keys[idempotency_key]]), True
            now = now_ms()
            task_id = f"t{next(self._ids):06d}"
            self.tasks[task_id] = {
                "id": task_id, "type": type, "payload": payload, "priority": priority,
                "max_retries": max_retries, "attempts": 0, "status": "pending",
                "idempotency_key": idempotency_key, "created_at_ms": now, "updated_at_ms": now,
                "visible_at_ms": now + delay_ms, "lease": None, "last_error": None,
            }
            if idempotency_key:
                self.keys[idempotency_key] = task_id
            self.cond.notify_all()
            return dict(self.tasks[task_id]), False

    def _expire(self, now: int) -> None:
        for task in self.tasks.values():
            if task["status"] == "leased" and task["lease"]["expires_at_ms"] <= now:
                task["lease"] = None
                if task["attempts"] >= task["max_retries"] + 1:
                    task["status"] = "dead"
                else:
                    task["status"] = "pending"

    def _visible(self, types: list[str] | None, now: int) -> list[dict[str, Any]]:
        found = [t for t in self.tasks.values() if t["status"] == "pending"
                 and t["visible_at_ms"] <= now and (not types or t["type"] in types)]
        return sorted(found, key=lambda t: (-t["priority"], t["id"]))

    def lease(self, worker_id: str, types: list[str] | None = None, max_tasks: int = 1,
              lease_ms: int | None = None, wait_ms: int = 0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + wait_ms / 1000
        with self.cond:
            while True:
                now = now_ms()
                self._expire(now)
                chosen = self._visible(types, now)[:max_tasks]
                if chosen or time.monotonic() >= deadline:
                    break
                self.cond.wait(min(0.02, max(0.0, deadline - time.monotonic())))
            for task in chosen:
                task["status"] = "leased"
                task["attempts"] += 1
                task["updated_at_ms"] = now
                task["lease"] = {"worker_id": worker_id, "token": f"{next(self._tokens)}.0",
                                 "expires_at_ms": now + (lease_ms or self.lease_ms)}
            return [dict(t) for t in chosen]

    def _held(self, task_id: str, worker_id: str, token: str | None) -> dict[str, Any]:
        self._expire(now_ms())
        task = self.tasks.get(task_id)
        if task is None:
            raise QueueError("not_found", f"no task {task_id}")
        lease = task["lease"]
        if (task["status"] != "leased" or lease["worker_id"] != worker_id
                or (token is not None and lease["token"] != token)):
            raise QueueError("lease_conflict", f"task {task_id} is not leased by {worker_id}")
        return task

    def ack(self, task_id: str, worker_id: str, token: str | None = None) -> dict[str, Any]:
        with self.cond:
            task = self.tasks.get(task_id)
            if (task is not None and task["status"] == "completed"
                    and task.get("_acked_by") == worker_id):
                return dict(task)
            task = self._held(task_id, worker_id, token)
            task.update(status="completed", lease=None, updated_at_ms=now_ms(),
                        _acked_by=worker_id)
            self.acks.append((task_id, worker_id))
            return dict(task)

    def nack(self, task_id: str, worker_id: str, token: str | None = None, reason: str = "",
             dead_letter: bool = False) -> dict[str, Any]:
        with self.cond:
            task = self._held(task_id, worker_id, token)
            task.update(lease=None, last_error=reason, updated_at_ms=now_ms())
            if dead_letter or task["attempts"] >= task["max_retries"] + 1:
                task["status"] = "dead"
            else:
                task.update(status="pending", visible_at_ms=now_ms() + self.backoff_ms)
            self.cond.notify_all()
            return dict(task)

    def extend(self, task_id: str, worker_id: str, token: str | None = None,
               lease_ms: int | None = None) -> dict[str, Any]:
        with self.cond:
            task = self._held(task_id, worker_id, token)
            task["lease"]["expires_at_ms"] = now_ms() + (lease_ms or self.lease_ms)
            return dict(task)

    def cancel(self, task_id: str) -> dict[str, Any]:
        with self.cond:
            task = self.tasks.get(task_id)
            if task is None:
                raise QueueError("not_found", f"no task {task_id}")
            if task["status"] != "pending":
                raise QueueError("invalid_state", f"task {task_id} is {task['status']}")
            task["status"] = "cancelled"
            return dict(task)

    def by_status(self, status: str) -> list[dict[str, Any]]:
        with self.cond:
            self._expire(now_ms())
            return [dict(t) for t in self.tasks.values() if t["status"] == status]

    def counts(self) -> dict[str, int]:
        with self.cond:
            self._expire(now_ms())
            out = dict.fromkeys(("pending", "leased", "completed", "dead", "cancelled"), 0)
            for task in self.tasks.values():
                out[task["status"]] += 1
            return out


def render(task: dict[str, Any], duplicate: bool | None = None) -> dict[str, Any]:
    """The HTTP form of a plain task: ``*_ms`` times as RFC 3339 strings."""
    def rfc(ms: int) -> str:
        moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

    out = {k: v for k, v in task.items() if not k.endswith("_ms") and not k.startswith("_")}
    for name in ("created_at", "updated_at", "visible_at"):
        out[name] = rfc(task[name + "_ms"])
    if task["lease"]:
        out["lease"] = {"worker_id": task["lease"]["worker_id"], "token": task["lease"]["token"],
                        "expires_at": rfc(task["lease"]["expires_at_ms"])}
    if duplicate is not None:
        out["duplicate"] = duplicate
    return out


_STATUS = {"not_found": 404, "lease_conflict": 409, "invalid_state": 409}


class FakeHttpServer:
    """The REST API over a FakeQueue, on 127.0.0.1 and a free port, with scripted faults.

    ``faults`` is a list consumed one per request: ``None`` serves normally, ``"drop"`` closes the
    connection without answering, ``"lost_reply"`` serves the request but closes the connection
    instead of answering, ``"wait_refused"`` answers a long poll the node could not park (204
    with ``Dqueue-Wait: refused``), an int answers that status (503 adds the ``leader_http``
    hint in ``hint``).
    """

    def __init__(self, queue: FakeQueue | None = None, node_id: str = "n1") -> None:
        self.queue = queue or FakeQueue()
        self.node_id = node_id
        self.faults: list[Any] = []
        self.hint: str | None = None
        self.requests: list[tuple[str, str, Any]] = []
        self.client_ports: list[int] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with server.lock:
                    server.requests.append((method, self.path, body))
                    server.client_ports.append(self.client_address[1])
                    fault = server.faults.pop(0) if server.faults else None
                if fault == "drop":
                    self.close_connection = True
                    return
                if fault == "lost_reply":  # done, but the answer never reaches the client
                    server.route(method, self.path, body)
                    self.close_connection = True
                    return
                if fault == "wait_refused":  # the node parks no more long polls
                    return self._reply(204, None, {"Dqueue-Wait": "refused; too many",
                                                   "Retry-After": "1"})
                if isinstance(fault, int):
                    err: dict[str, Any] = {"code": "no_leader" if fault == 503 else "error",
                                           "message": f"scripted {fault}"}
                    if fault == 503 and server.hint:
                        err["leader_http"] = server.hint
                    return self._reply(fault, {"error": err}, {"Retry-After": "0"})
                try:
                    status, obj = server.route(method, self.path, body)
                except QueueError as exc:
                    status = _STATUS.get(exc.code, 400)
                    obj = {"error": {"code": exc.code, "message": exc.message}}
                self._reply(status, obj)

            def _reply(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                data = b"" if obj is None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    def __enter__(self) -> FakeHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        q = self.queue
        parts = urlsplit(path)
        segs = [unquote(s) for s in parts.path.strip("/").split("/")]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = body or {}
        if method == "POST" and segs == ["tasks"]:
            if not isinstance(body.get("type"), str):
                return 400, {"error": {"code": "missing_field", "field": "type",
                                       "message": "type is required"}}
            task, dup = q.enqueue(body["type"], body.get("payload"),
                                  priority=body.get("priority", 0),
                                  max_retries=body.get("max_retries", 3),
                                  idempotency_key=body.get("idempotency_key"),
                                  delay_ms=int(body.get("delay_seconds", 0) * 1000))
            return (200 if dup else 201), render(task, dup)
        if method == "POST" and segs == ["tasks", "batch"]:
            out = []
            for item in body["tasks"]:
                task, dup = q.enqueue(item["type"], item.get("payload"),
                                      idempotency_key=item.get("idempotency_key"))
                out.append(render(task, dup))
            return 201, {"tasks": out}
        if method == "POST" and segs == ["tasks", "lease"]:
            tasks = q.lease(body["worker_id"], body.get("types"), body.get("max_tasks", 1),
                            int(body["lease_seconds"] * 1000) if "lease_seconds" in body else None,
                            int(body.get("wait_seconds", 0) * 1000))
            if not tasks:
                return 204, None
            if "max_tasks" in body:
                return 200, {"tasks": [render(t) for t in tasks]}
            return 200, render(tasks[0])
        if method == "POST" and len(segs) == 3 and segs[0] == "tasks":
            task_id, op = segs[1], segs[2]
            token = body.get("lease_token")
            if op == "ack":
                return 200, render(q.ack(task_id, body["worker_id"], token))
            if op == "nack":
                return 200, render(q.nack(task_id, body["worker_id"], token,
                                          body.get("reason", ""), body.get("dead_letter", False)))
            if op == "extend":
                ms = int(body["lease_seconds"] * 1000) if "lease_seconds" in body else None
                return 200, render(q.extend(task_id, body["worker_id"], token, ms))
            if op == "cancel":
                return 200, render(q.cancel(task_id))
        if method == "GET" and len(segs) == 2 and segs[0] == "tasks":
            with q.cond:
                task = q.tasks.get(segs[1])
            if task is None:
                raise QueueError("not_found", f"no task {segs[1]}")
            return 200, render(task)
        if method == "GET" and segs == ["tasks"]:
            tasks = [render(t) for t in q.by_status(query.get("status", "dead"))
                     if "type" not in query or t["type"] == query["type"]]
            start = int(query.get("cursor", 0))
            limit = int(query.get("limit", 100))
            nxt = str(start + limit) if start + limit < len(tasks) else None
            return 200, {"tasks": tasks[start:start + limit], "next_cursor": nxt}
        if method == "POST" and segs == ["dlq", "redrive"]:
            count = 0
            with q.cond:
                for task in q.tasks.values():
                    if task["status"] == "dead" and body.get("task_id") in (None, task["id"]) \
                            and body.get("type") in (None, task["type"]):
                        task.update(status="pending", attempts=0, visible_at_ms=now_ms())
                        count += 1
                q.cond.notify_all()
            return 200, {"redriven": count}
        if method == "DELETE" and segs == ["dlq"]:
            with q.cond:
                gone = [i for i, t in q.tasks.items() if t["status"] == "dead"
                        and query.get("type") in (None, t["type"])]
                for task_id in gone:
                    del q.tasks[task_id]
            return 200, {"purged": len(gone)}
        if method == "GET" and segs == ["stats"]:
            return 200, {"tasks": q.counts(), "by_type": {}, "raft": {"term": 1}}
        if method == "GET" and segs == ["health"]:
            return 200, {"status": "ok", "node_id": self.node_id, "role": "leader", "term": 1,
                         "leader_id": self.node_id, "leader_http": self.url,
                         "commit_index": 1, "applied_index": 1}
        if method == "GET" and segs == ["cluster"]:
            return 200, {"leader_id": self.node_id, "term": 1, "members": [
                {"id": self.node_id, "raft_addr": "127.0.0.1:1", "http_addr": self.url,
                 "role": "leader", "match_index": 1, "lag": 0}]}
        return 404, {"error": {"code": "not_found", "message": f"no route {method} {path}"}}


class FakeRaft:
    """The Raft process's IPC ROUTER over a FakeQueue, on its own thread.

    Lease commands with ``wait_ms`` park until a task is visible or the wait ends. ``script``, when
    set, may answer a request itself: it returns a list of ``(kind, body)`` replies, or None to
    serve normally, or ``[]`` to never answer.
    """

    def __init__(self, endpoint: str, queue: FakeQueue | None = None) -> None:
        self.endpoint = endpoint
        self.queue = queue or FakeQueue()
        self.commands: list[dict[str, Any]] = []
        self.script: Callable[[dict[str, Any]], list[tuple[bytes, Any]] | None] | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FakeRaft:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _outcome(self, cmd: dict[str, Any]) -> dict[str, Any]:
        q = self.queue
        op = cmd["op"]
        try:
            if op == "lease":
                tasks = q.lease(cmd["worker_id"], cmd.get("types"), cmd.get("max_tasks", 1),
                                cmd.get("lease_ms"))
                return {"ok": True, "value": {"tasks": tasks}}
            if op == "ack_batch":
                return {"ok": True, "value": {"results": [
                    self._outcome({"op": "ack", **item}) for item in cmd["items"]]}}
            args = (cmd["id"], cmd["worker_id"], cmd.get("token"))
            if op == "ack":
                task = q.ack(*args)
            elif op == "nack":
                task = q.nack(*args, cmd.get("reason", ""), cmd.get("dead_letter", False))
            else:
                task = q.extend(*args, cmd.get("lease_ms"))
        except QueueError as exc:
            return {"ok": False, "code": exc.code, "message": exc.message}
        return {"ok": True, "value": {"task": task}}

    def _run(self) -> None:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self._ready.set()
        parked: list[tuple[bytes, dict[str, Any], float]] = []
        try:
            while not self._stop.is_set():
                if sock.poll(10):
                    identity, *frames = sock.recv_multipart()
                    _kind, body = wire.decode(frames)
                    self.commands.append(body["cmd"])
                    replies = self.script(body) if self.script else None
                    if replies is not None:
                        for reply_kind, reply in replies:
                            sock.send_multipart([identity, *wire.encode(reply_kind, reply)])
                        continue
                    parked.append((identity, body, time.monotonic() + body["wait_ms"] / 1000))
                still: list[tuple[bytes, dict[str, Any], float]] = []
                for identity, body, deadline in parked:
                    outcome = self._outcome(body["cmd"])
                    empty = body["cmd"]["op"] == "lease" and not outcome["value"]["tasks"]
                    if empty and time.monotonic() < deadline:
                        still.append((identity, body, deadline))
                        continue
                    sock.send_multipart([identity, *wire.encode(
                        b"res", {"rid": body["rid"], "outcome": outcome})])
                parked = still
        finally:
            sock.close(0)
