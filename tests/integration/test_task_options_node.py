"""Per-type worker options, a producer override and ctx.retry against a real node (issue 17).

One node (supervisor, Raft and API processes, real LMDB, loopback) and one dqueue-worker per
transport; the queue allows 3 retries, so a limit of 1 or 0 can only come from the decorator
or the producer.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from dqueue.client import Client, TaskStatus
from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

APP = textwrap.dedent("""
    import json
    import time
    from dqueue.worker import Worker

    worker = Worker()
    handles = {}

    for transport in ("http", "zmq"):
        @worker.task(f"flaky-{transport}", max_retries=1)
        def flaky(payload, ctx):
            raise RuntimeError("flaky")

        @worker.task(f"poison-{transport}", retry_for=(Exception,),
                     dead_letter_for=(ValueError,))
        def poison(payload, ctx):
            raise ValueError("poison")

        @worker.task(f"later-{transport}")
        def later(payload, ctx):
            if ctx.attempt == 1:
                with open(payload, "w") as out:
                    json.dump(time.time(), out)
                raise ctx.retry(countdown=1)
            return {"second_at": time.time()}

        handles[transport] = {"flaky": flaky, "poison": poison, "later": later}
""")


def _load_app(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("optsapp_test_copy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("transport", ["http", "zmq"])
def test_decorator_options_producer_override_and_countdown(tmp_path: Path,
                                                           transport: str) -> None:
    (tmp_path / "optsapp.py").write_text(APP)
    handles = _load_app(tmp_path / "optsapp.py").handles[transport]
    cluster = NodeCluster(tmp_path, 1, queue={"lease_timeout": "5s", "backoff_base": "100ms",
                                              "max_retries": 3})
    try:
        cluster.start()
        cluster.leader()
        client = Client(cluster.urls())
        decorated = handles["flaky"].enqueue(client).id
        overridden = handles["flaky"].enqueue(client, max_retries=0).id
        poison = handles["poison"].enqueue(client).id
        stamp = tmp_path / "first-attempt.json"
        later = handles["later"].enqueue(client, str(stamp)).id
        assert client.get(decorated).max_retries == 1
        assert client.get(overridden).max_retries == 0
        target = (["--zmq", cluster.zmq("n1")] if transport == "zmq"
                  else ["--server", cluster.url("n1")])
        types = ",".join(f"{name}-{transport}" for name in ("flaky", "poison", "later"))
        proc = cluster.spawn_worker(*target, "--app", "optsapp:worker", "--types", types,
                                    "--worker-id", f"opts-{transport}", "--wait", "1s",
                                    log_name=f"opts-{transport}")
        try:
            wait_for(lambda: all(client.get(i).status is TaskStatus.DEAD
                                 for i in (decorated, overridden, poison))
                     and client.get(later).status is TaskStatus.COMPLETED, 60,
                     "options decided every task")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        assert client.get(decorated).attempts == 2      # the decorator's max_retries=1
        assert client.get(overridden).attempts == 1     # the producer's max_retries=0
        dead = client.get(poison)
        assert dead.attempts == 1 and dead.last_error == "ValueError: poison"
        done = client.get(later)
        assert done.attempts == 2
        first_at = json.loads(stamp.read_text())
        assert done.result["second_at"] - first_at >= 1.0   # ctx.retry(countdown=1)
    finally:
        cluster.close()
