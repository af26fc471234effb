"""dqueue-worker's argument handling and app loading."""

from __future__ import annotations

import pytest

from dqueue.keys import create_cluster_keys
from dqueue.worker import main as worker_main
from dqueue.worker.app import Worker
from dqueue.worker.http_runtime import HttpRuntime
from dqueue.worker.zmq_runtime import ZmqRuntime


@pytest.fixture(autouse=True)
def _no_logging_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() sets up logging on the test's captured stderr, which is closed after the test:
    # every later log line of the session would fail to write ("Logging error").
    monkeypatch.setattr(worker_main, "configure_logging", lambda *args, **kwargs: None)


def parse(*argv: str):
    parser = worker_main.build_parser()
    return parser.parse_args(worker_main.normalize_argv(list(argv), parser))


def test_load_app_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "myapp_tasks.py").write_text(
        "from dqueue.worker import Worker\n"
        "worker = Worker()\n"
        "@worker.task('email')\n"
        "def email(payload, ctx):\n"
        "    pass\n"
        "def factory():\n"
        "    return worker\n"
        "not_a_worker = 3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert worker_main.load_app("myapp_tasks:worker").types == ["email"]
    assert worker_main.load_app("myapp_tasks:factory").types == ["email"]
    with pytest.raises(ValueError, match=r"not a dqueue\.worker\.Worker"):
        worker_main.load_app("myapp_tasks:not_a_worker")
    with pytest.raises(ValueError, match="module:attribute"):
        worker_main.load_app("myapp_tasks")


def test_seed_syntax_gives_an_http_runtime(monkeypatch):
    monkeypatch.delenv("DQUEUE_SERVER", raising=False)
    args = parse("-server", "http://localhost:8081", "--concurrency", "3", "-types", "email",
                 "--lease-timeout", "10s", "--grace", "2s")
    runtime = worker_main.make_runtime(args, _demo())
    assert isinstance(runtime, HttpRuntime)
    assert runtime.client.servers == ["http://localhost:8081"]
    assert runtime.types == ["email"]
    assert (runtime.config.concurrency, runtime.config.lease_ms, runtime.config.grace_ms) == (
        3, 10_000, 2_000)


def test_dqueue_server_variable_and_lists(monkeypatch):
    monkeypatch.setenv("DQUEUE_SERVER", "http://127.0.0.1:8082,http://127.0.0.1:8083")
    runtime = worker_main.make_runtime(parse(), _demo())
    assert runtime.client.servers == ["http://127.0.0.1:8082", "http://127.0.0.1:8083"]


def test_an_empty_dqueue_server_is_the_default_and_only_commas_are_refused(monkeypatch):
    monkeypatch.setenv("DQUEUE_SERVER", "")
    assert worker_main.make_runtime(parse(), _demo()).client.servers == [
        "http://localhost:8080"]
    monkeypatch.setenv("DQUEUE_SERVER", " , ")
    with pytest.raises(ValueError, match="at least one server URL"):
        worker_main.make_runtime(parse(), _demo())
    assert worker_main.main([]) == 2  # a usage error, before anything starts


def test_dqueue_token_reaches_the_http_client(monkeypatch):
    monkeypatch.setenv("DQUEUE_TOKEN", "s3cret")
    assert worker_main.make_runtime(parse("--server", "http://127.0.0.1:1"),
                                    _demo()).client.token == "s3cret"
    assert worker_main.make_runtime(parse("--server", "http://127.0.0.1:1", "--token", "mine"),
                                    _demo()).client.token == "mine"


def test_zmq_flag_gives_a_zmq_runtime():
    runtime = worker_main.make_runtime(parse("--zmq", "tcp://127.0.0.1:9191"), _demo())
    assert isinstance(runtime, ZmqRuntime) and runtime.endpoints == ["tcp://127.0.0.1:9191"]
    runtime = worker_main.make_runtime(parse("-zmq", "127.0.0.1:1,127.0.0.1:2"), _demo())
    assert isinstance(runtime, ZmqRuntime) and runtime.endpoints == ["127.0.0.1:1", "127.0.0.1:2"]


def test_with_worker_keys_the_worker_id_is_the_keys_name(tmp_path):
    create_cluster_keys(str(tmp_path), ["n1"], ["w7"])
    folder = str(tmp_path / "w7")
    runtime = worker_main.make_runtime(parse("--zmq", "tcp://127.0.0.1:9191", "--secure-dir",
                                             folder), _demo())
    assert runtime.config.worker_id == "w7"
    secret, server = str(tmp_path / "w7" / "w7.key_secret"), str(tmp_path / "n1" / "n1.key")
    runtime = worker_main.make_runtime(parse("--zmq", "tcp://127.0.0.1:9191", "--curve-key",
                                             secret, "--server-key", server,
                                             "--worker-id", "w7"), _demo())
    assert runtime.config.worker_id == "w7"
    with pytest.raises(ValueError, match="key's name, 'w7'"):
        worker_main.make_runtime(parse("--zmq", "tcp://127.0.0.1:9191", "--secure-dir", folder,
                                       "--worker-id", "w8"), _demo())
    # Without keys, any id (and a random one by default).
    assert worker_main.make_runtime(parse("--zmq", "tcp://127.0.0.1:9191", "--worker-id",
                                          "w8"), _demo()).config.worker_id == "w8"
    assert worker_main.key_worker_id(None, {}) == ""


@pytest.mark.parametrize("argv", [["--app", "nope_no_such_module:w"],
                                  ["--concurrency", "0"],
                                  ["--types", "not-registered"],
                                  ["--lease-timeout", "soon"]])
def test_bad_arguments_exit_2(argv, capsys):
    assert worker_main.main(argv) == 2
    assert "dqueue-worker:" in capsys.readouterr().err


def _demo() -> Worker:
    return worker_main.demo.build()


def test_heartbeat_flag_takes_0_or_an_interval_within_the_table_s_bound() -> None:
    assert worker_main.heartbeat_ms("0") == 0 and worker_main.heartbeat_ms("5s") == 5_000
    for bad in ("50ms", "10m", "soon"):
        with pytest.raises(ValueError):
            worker_main.heartbeat_ms(bad)
