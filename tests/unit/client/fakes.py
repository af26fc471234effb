"""Test doubles of the servers a client talks to, over the real queue state machine.

``ServedQueue`` is a ``dqueue.testing.LocalQueue`` (the queue rules a cluster applies: leases
with tokens and expiry, retries, dead letters, idempotency keys) seen as these fakes and their
tests need it: plain task dicts, refusals raised as ``QueueError``, every successful ack
recorded. What is faked is the server around it: ``FakeHttpServer`` serves it over the REST
API of docs/http-api.md on 127.0.0.1 with a free port and scripted faults; ``FakeRaft`` serves
it over the API-to-Raft IPC of docs/internals.md section 3, parking long-poll leases.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import zmq

from dqueue.protocol import wire
from dqueue.queue import QueueConfig
from dqueue.testing import LocalQueue
from tests.unit.router_thread import RouterThread


class ScriptedRequester:
    """A client's request seam (``_request``) that answers each request with the next
    scripted answer, 200 (an exception is raised instead), and records the requests."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, Any]] = []

    def _request(self, method: str, path: str, body: Any = None, *,
                 wait_s: float = 0.0) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return 200, answer


def now_ms() -> int:
    return int(time.time() * 1000)


class QueueError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Tasks(Mapping[str, dict[str, Any]]):
    """The queue's tasks by id, in plain form, read from the state machine as time passes."""

    def __init__(self, queue: ServedQueue) -> None:
        self._queue = queue

    def __getitem__(self, task_id: str) -> dict[str, Any]:
        found = self._queue.get(task_id)
        if found is None:
            raise KeyError(task_id)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._queue.local.state._tasks))

    def __len__(self) -> int:
        return len(self._queue.local.state._tasks)


class ServedQueue:
    """A LocalQueue on the wall clock, with plain-dict methods for the fakes and their tests.

    Reads first apply a ``tick``, as a leader does on its timer, so that leases expire and
    delays end as time passes. ``advance`` moves the queue's clock ahead of the wall clock.

    Args:
        lease_ms: The default lease.
        backoff_ms: The delay before every retry (no jitter, no growth: tests stay short).
    """

    def __init__(self, lease_ms: int = 30_000, backoff_ms: int = 0) -> None:
        self._ahead_ms = 0
        self.local = LocalQueue(QueueConfig(lease_ms=lease_ms, backoff_base_ms=backoff_ms,
                                            backoff_factor=1.0, backoff_jitter=0.0),
                                clock=lambda: now_ms() + self._ahead_ms)
        self.tasks = _Tasks(self)
        self.acks: list[tuple[str, str]] = []  # (task id, worker id), every first ack

    def _value(self, cmd: dict[str, Any], wait_ms: int = 0) -> dict[str, Any]:
        outcome = self.local.command(cmd, wait_ms=wait_ms)
        if not outcome["ok"]:
            raise QueueError(outcome["code"], outcome["message"])
        value: dict[str, Any] = outcome["value"]
        return value

    def enqueue(self, type: str, payload: Any = None, *, priority: int = 0, max_retries: int = 3,
                idempotency_key: str | None = None, delay_ms: int = 0) -> tuple[dict, bool]:
        value = self._value({"op": "enqueue", "tasks": [{
            "id": self.local._new_id(), "type": type, "payload": payload, "priority": priority,
            "max_retries": max_retries, "idempotency_key": idempotency_key,
            "delay_ms": delay_ms}]})
        return value["tasks"][0], value["duplicates"][0]

    def lease(self, worker_id: str, types: list[str] | None = None, max_tasks: int = 1,
              lease_ms: int | None = None, wait_ms: int = 0) -> list[dict[str, Any]]:
        return self._value({"op": "lease", "worker_id": worker_id, "types": types or None,
                            "max_tasks": max_tasks, "lease_ms": lease_ms},
                           wait_ms=wait_ms)["tasks"]

    def ack(self, task_id: str, worker_id: str, token: str | None = None) -> dict[str, Any]:
        outcome = self.command({"op": "ack", "id": task_id, "worker_id": worker_id,
                                "token": token})
        if not outcome["ok"]:
            raise QueueError(outcome["code"], outcome["message"])
        task: dict[str, Any] = outcome["value"]["task"]
        return task

    def nack(self, task_id: str, worker_id: str, token: str | None = None, reason: str = "",
             dead_letter: bool = False) -> dict[str, Any]:
        return self._value({"op": "nack", "id": task_id, "worker_id": worker_id,
                            "token": token, "reason": reason,
                            "dead_letter": dead_letter})["task"]

    def extend(self, task_id: str, worker_id: str, token: str | None = None,
               lease_ms: int | None = None) -> dict[str, Any]:
        return self._value({"op": "extend", "id": task_id, "worker_id": worker_id,
                            "token": token, "lease_ms": lease_ms})["task"]

    def release(self, task_id: str, worker_id: str, token: str | None = None) -> dict[str, Any]:
        return self._value({"op": "release", "id": task_id, "worker_id": worker_id,
                            "token": token})["task"]

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._value({"op": "cancel", "id": task_id})["task"]

    def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Apply a plain command as the Raft process does and return its outcome."""
        items = [cmd] if cmd["op"] == "ack" else cmd["items"] if cmd["op"] == "ack_batch" else []
        done_before = {item["id"]: (self.get(item["id"]) or {}).get("status") == "completed"
                       for item in items}
        outcome = self.local.command(cmd)
        results = ([outcome] if cmd["op"] == "ack" else
                   outcome["value"]["results"] if outcome["ok"] and items else [])
        for item, result in zip(items, results, strict=False):
            if result["ok"] and not done_before[item["id"]]:
                self.acks.append((item["id"], item["worker_id"]))
        return outcome

    def redrive(self, task_id: str | None = None, type: str | None = None) -> int:
        return int(self._value({"op": "redrive", "id": task_id, "type": type})["count"])

    def purge(self, type: str | None = None) -> int:
        return int(self._value({"op": "purge", "type": type})["count"])

    def dead_letter_next(self, task_type: str) -> str:
        """Lease the next visible task of ``task_type`` and dead-letter it; return its id."""
        (task,) = self.lease("dlq-maker", [task_type])
        self.nack(task["id"], "dlq-maker", task["lease"]["token"], "poisoned by the test",
                  dead_letter=True)
        return str(task["id"])

    def advance(self, seconds: float) -> None:
        """Move the queue's clock ``seconds`` ahead (a lease runs out without waiting)."""
        self._ahead_ms += round(seconds * 1000)
        self.local.command({"op": "tick"})

    def get(self, task_id: str) -> dict[str, Any] | None:
        self.local.command({"op": "tick"})
        found: dict[str, Any] | None = self.local.read({"op": "get", "id": task_id})
        return found

    def by_status(self, status: str, type: str | None = None) -> list[dict[str, Any]]:
        self.local.command({"op": "tick"})
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.local.read({"op": "list", "status": status, "type": type,
                                    "limit": 1_000, "cursor": cursor})
            found += page["tasks"]
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    def counts(self) -> dict[str, int]:
        self.local.command({"op": "tick"})
        counts: dict[str, int] = self.local.read({"op": "stats"})["by_status"]
        return counts


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
    """The REST API over a ServedQueue, on 127.0.0.1 and a free port, with scripted faults.

    ``faults`` is a list consumed one per request: ``None`` serves normally, ``"drop"`` closes the
    connection without answering, ``"lost_reply"`` serves the request but closes the connection
    instead of answering, ``"wait_refused"`` answers a long poll the node could not park (204
    with ``Dqueue-Wait: refused``), an int answers that status (503 adds the ``leader_http``
    hint in ``hint``).
    """

    def __init__(self, queue: ServedQueue | None = None, node_id: str = "n1") -> None:
        self.queue = queue or ServedQueue()
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
            if op == "release":
                return 200, render(q.release(task_id, body["worker_id"], token))
            if op == "cancel":
                return 200, render(q.cancel(task_id))
        if method == "GET" and len(segs) == 2 and segs[0] == "tasks":
            task = q.get(segs[1])
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
            return 200, {"redriven": q.redrive(body.get("task_id"), body.get("type"))}
        if method == "DELETE" and segs == ["dlq"]:
            return 200, {"purged": q.purge(query.get("type"))}
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


class FakeRaft(RouterThread):
    """The Raft process's IPC ROUTER over a ServedQueue, on its own thread.

    Lease commands with ``wait_ms`` park until a task is visible or the wait ends. ``script``, when
    set, may answer a request itself: it returns a list of ``(kind, body)`` replies, or None to
    serve normally, or ``[]`` to never answer.
    """

    def __init__(self, endpoint: str, queue: ServedQueue | None = None) -> None:
        super().__init__(endpoint)
        self.queue = queue or ServedQueue()
        self.commands: list[dict[str, Any]] = []
        self.script: Callable[[dict[str, Any]], list[tuple[bytes, Any]] | None] | None = None
        self._parked: list[tuple[bytes, dict[str, Any], float]] = []

    def _outcome(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if cmd["op"] == "lease" and not self.queue.local.has_visible(cmd.get("types")):
            return {"ok": True, "value": {"tasks": []}}  # a node proposes no empty lease
        return self.queue.command(cmd)

    def on_request(self, sock: zmq.Socket, identity: bytes, kind: bytes, body: Any) -> None:
        self.commands.append(body["cmd"])
        replies = self.script(body) if self.script else None
        if replies is not None:
            for reply_kind, reply in replies:
                self.send(sock, identity, wire.encode(reply_kind, reply))
            return
        self._parked.append((identity, body, time.monotonic() + body["wait_ms"] / 1000))

    def on_turn(self, sock: zmq.Socket) -> None:
        still: list[tuple[bytes, dict[str, Any], float]] = []
        for identity, body, deadline in self._parked:
            outcome = self._outcome(body["cmd"])
            empty = body["cmd"]["op"] == "lease" and not outcome["value"]["tasks"]
            if empty and time.monotonic() < deadline:
                still.append((identity, body, deadline))
                continue
            self.send(sock, identity, wire.encode(
                b"res", {"rid": body["rid"], "outcome": outcome}))
        self._parked = still
