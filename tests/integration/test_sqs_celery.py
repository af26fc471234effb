"""Celery through dqueue's SQS API: a real ``celery -A app worker`` process (kombu's SQS
transport) runs tasks sent with ``.delay()``, one of them retried."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import boto3
import pytest

from dqueue.testing import wait_for
from dqueue.testing.cluster import NodeCluster

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))

APP = textwrap.dedent("""
    import os
    from pathlib import Path

    from celery import Celery

    OUT = Path(os.environ["SQS_TEST_OUT"])
    app = Celery("sqsapp", broker=os.environ["SQS_TEST_BROKER"])
    app.conf.broker_transport_options = {
        "region": "us-east-1", "is_secure": False, "wait_time_seconds": 1,
        "polling_interval": 0.1, "visibility_timeout": 30,
    }
    app.conf.task_default_queue = "celery-dq"
    app.conf.worker_enable_remote_control = False
    app.conf.worker_send_task_events = False
    app.conf.broker_connection_retry_on_startup = True


    @app.task
    def add(x, y):
        (OUT / f"add-{x}-{y}").write_text(str(x + y))


    @app.task(bind=True, max_retries=3)
    def flaky(self, name):
        attempts = OUT / f"{name}.attempts"
        count = int(attempts.read_text()) + 1 if attempts.exists() else 1
        attempts.write_text(str(count))
        if count < 3:
            raise self.retry(countdown=0)
        (OUT / f"{name}.done").write_text(str(count))
""")


def load_app(path: Path) -> Any:
    """The Celery app module at ``path``, imported in this process (the producer)."""
    spec = importlib.util.spec_from_file_location("sqsapp", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_celery_worker_runs_tasks_through_dqueue(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "sqsapp.py").write_text(APP)
    (tmp_path / "cluster").mkdir()
    cluster = NodeCluster(tmp_path / "cluster", 1, start=True)
    worker: subprocess.Popen[bytes] | None = None
    try:
        addr = cluster.http_addr[cluster.leader()]
        broker = f"sqs://AKIDDQUEUECELERY1:celery-secret-in-protected-mode@{addr}"
        env = {**os.environ, "SQS_TEST_OUT": str(out), "SQS_TEST_BROKER": broker,
               "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
        monkeypatch.setenv("SQS_TEST_OUT", str(out))
        monkeypatch.setenv("SQS_TEST_BROKER", broker)
        log = open(tmp_path / "celery.log", "wb")  # noqa: SIM115 (closed below)
        try:
            worker = subprocess.Popen(
                [CELERY, "-A", "sqsapp", "worker", "--pool", "solo", "--loglevel", "info",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                cwd=str(tmp_path), env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        app = load_app(tmp_path / "sqsapp.py")
        for i in range(5):
            app.add.delay(i, 10)
        app.flaky.delay("f1")

        def finished() -> bool:
            assert worker is not None and worker.poll() is None, (
                tmp_path / "celery.log").read_text()
            done = all((out / f"add-{i}-10").exists() for i in range(5))
            return done and (out / "f1.done").exists()

        wait_for(finished, 90, "the Celery worker ran every task")
        assert [(out / f"add-{i}-10").read_text() for i in range(5)] == [
            str(i + 10) for i in range(5)]
        assert (out / "f1.done").read_text() == "3"  # two retries, then success
        # The tasks went through dqueue: its queue exists and is empty now.
        sqs = boto3.client("sqs", endpoint_url=f"http://{addr}", region_name="us-east-1",
                           aws_access_key_id="AKIDDQUEUECELERY1", aws_secret_access_key="x")
        url = sqs.get_queue_url(QueueName="celery-dq")["QueueUrl"]
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert counts["ApproximateNumberOfMessages"] == "0"
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(30)
        cluster.close()
