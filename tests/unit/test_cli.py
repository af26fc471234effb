"""dqueue-cli: every command in both output formats, and the exit codes, against a fake server."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import pytest

from dqueue import cli
from dqueue.client.task import Task, TaskStatus
from tests.unit.client.fakes import FakeHttpServer


@pytest.fixture
def server(monkeypatch) -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as srv:
        monkeypatch.setenv("DQUEUE_SERVER", srv.url)
        yield srv


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def run_json(*argv: str):
    code, out, err = run("--json", *argv)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("argv", [("--timeout", "soon", "stats"), ("stats", "--timeout", "10"),
                                  ("lease", "--wait", "5"),
                                  ("enqueue", "-type", "t", "-delay", "1.5")])
def test_a_duration_without_a_unit_is_a_usage_error(argv):
    code, out, err = run(*argv)
    assert code == cli.EXIT_USAGE and out == ""
    assert "expected a duration such as '30s'" in err


def test_seed_enqueue_syntax(server):
    code, out, err = run("enqueue", "-type", "email", "-payload", '{"to":"user@example.com"}')
    assert code == 0, err
    task = next(iter(server.queue.tasks.values()))
    assert task["type"] == "email" and task["payload"] == {"to": "user@example.com"}
    assert task["id"] in out and "email" in out and "pending" in out


def test_enqueue_options_single_and_double_dash(server):
    got = run_json("enqueue", "--type", "report", "-priority", "7", "--max-retries=2",
                   "-idempotency-key", "k1", "-delay", "5s", "-payload", "[1,2]")
    assert got["priority"] == 7 and got["max_retries"] == 2 and got["payload"] == [1, 2]
    assert got["idempotency_key"] == "k1" and got["duplicate"] is False
    sent = server.requests[-1][2]
    assert sent["delay_seconds"] == 5.0
    # The same key with the same task: the first one, marked a duplicate.
    again = run_json("enqueue", "--type", "report", "-priority", "7", "--max-retries=2",
                     "-idempotency-key", "k1", "-delay", "5s", "-payload", "[1,2]")
    assert again["id"] == got["id"] and again["duplicate"] is True


def test_status_both_formats(server):
    task_id = run_json("enqueue", "-type", "email")["id"]
    code, out, _ = run("status", task_id)
    assert code == 0 and f"id               {task_id}" in out
    assert run_json("status", task_id)["id"] == task_id


def test_stats_health_cluster(server):
    run("enqueue", "-type", "email")
    code, out, _ = run("stats")
    assert code == 0 and "STATUS" in out and "pending    1" in out
    assert run_json("stats")["tasks"]["pending"] == 1
    code, out, _ = run("health")
    assert code == 0 and "role" in out and "leader" in out
    assert run_json("health")["node_id"] == "n1"
    code, out, _ = run("cluster", "status")
    assert code == 0 and out.startswith("leader: n1") and "ROLE" in out
    assert run_json("cluster", "status")["members"][0]["role"] == "leader"


def test_lease_ack_nack_extend_cancel(server):
    ids = [run_json("enqueue", "-type", "email", "-payload", str(i))["id"] for i in range(4)]
    leased = run_json("lease", "-worker-id", "cli", "-max-tasks", "2", "-lease", "30s")
    assert [t["id"] for t in leased] == ids[:2]
    token = leased[0]["lease"]["token"]
    extended = run_json("extend", ids[0], "-worker-id", "cli", "-lease-token", token,
                        "-lease", "90s")
    assert extended["lease"]["expires_at"] > leased[0]["lease"]["expires_at"]
    code, out, _ = run("ack", ids[0], "-worker-id", "cli", "-lease-token", token)
    assert code == 0 and "completed" in out
    nacked = run_json("nack", ids[1], "-worker-id", "cli", "-lease-token",
                      leased[1]["lease"]["token"], "-reason", "broken", "-dead-letter")
    assert nacked["status"] == "dead" and nacked["last_error"] == "broken"
    code, out, _ = run("lease", "-worker-id", "cli", "-types", "email")
    assert code == 0 and ids[2] in out
    assert run_json("cancel", ids[3])["status"] == "cancelled"
    code, out, _ = run("lease", "-worker-id", "cli")
    assert code == 0 and out == "no task available\n"
    assert run_json("lease") == []


def test_dlq_list_redrive_purge(server):
    for i in range(3):
        task, _ = server.queue.enqueue("t" if i else "u", i)
        assert server.queue.dead_letter_next(task["type"]) == task["id"]
    code, out, _ = run("dlq", "list")
    assert code == 0 and out.count("dead") == 3 and "LAST ERROR" in out
    assert len(run_json("dlq", "list", "-type", "t")) == 2
    assert run_json("dlq", "redrive", "-type", "u") == {"redriven": 1}
    code, out, _ = run("dlq", "purge")
    assert code == 0 and out == "purged: 2\n"
    code, out, _ = run("dlq", "list")
    assert out == "(none)\n"


def test_watch_refreshes(server):
    code, out, _ = run("watch", "-interval", "10ms", "-count", "3")
    assert code == 0 and out.count("dqueue stats") == 3
    code, out, _ = run("--json", "watch", "-interval", "10ms", "-count", "2")
    assert [json.loads(line)["tasks"]["pending"] for line in out.splitlines()] == [0, 0]


def test_global_options_after_the_command(server):
    code, out, _ = run("stats", "--json", "--server", server.url)
    assert code == 0 and json.loads(out)["tasks"]["pending"] == 0


def test_error_exit_codes_carry_the_server_message(server):
    code, out, err = run("status", "missing-id")
    assert code == cli.EXIT_NOT_FOUND and out == "" and "no task missing-id" in err
    task_id = run_json("enqueue", "-type", "email")["id"]
    token = run_json("lease", "-worker-id", "a")[0]["lease"]["token"]
    code, _, err = run("ack", task_id, "-worker-id", "b", "-lease-token", token)
    assert code == cli.EXIT_CONFLICT and "lease_conflict" in err
    code, _, err = run("cancel", task_id)
    assert code == cli.EXIT_CONFLICT and "invalid_state" in err
    code, _, err = run("enqueue", "-type", "x", "-payload", "{not json")
    assert code == cli.EXIT_ERROR and "payload" in err
    assert len(server.queue.tasks) == 1  # nothing was enqueued by the bad call


def test_usage_errors_exit_2(server, capsys):
    assert run("frobnicate")[0] == cli.EXIT_USAGE
    assert run("enqueue")[0] == cli.EXIT_USAGE  # -type is required
    assert run("enqueue", "-type", "x", "-delay", "soon")[0] == cli.EXIT_USAGE
    assert run("--timeout", "never", "stats")[0] == cli.EXIT_USAGE


def test_unreachable_server_exits_3():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = run("--server", f"http://127.0.0.1:{port}", "--timeout", "200ms", "stats")
    assert code == cli.EXIT_UNAVAILABLE and "unavailable" in err


def test_table_alignment():
    text = cli.table([("a", 1), ("long-name", None)], ["K", "V"])
    assert text.splitlines() == ["K          V", "---------  -", "a          1",
                                 "long-name  -"]


def test_keys_init_writes_a_folder_per_member_and_worker(tmp_path, capsys):
    out_dir = str(tmp_path / "keys")
    written = run_json("keys", "init", out_dir, "--members", "n1,n2,n3", "--workers", "w1")
    secrets = sorted(w["path"] for w in written if w["kind"] == "secret")
    assert secrets == [f"{out_dir}/{i}/{i}.key_secret" for i in ("n1", "n2", "n3", "w1")]
    assert len([w for w in written if w["kind"] == "member"]) == 4 * 3
    assert len([w for w in written if w["kind"] == "worker"]) == 3
    code, out, _ = run("keys", "init", out_dir, "--members", "n1,n2,n3")
    assert code == cli.EXIT_ERROR and out == ""
    assert "--force" in capsys.readouterr().err
    code, out, _ = run("keys", "init", out_dir, "--members", "n1,n2,n3", "--force")
    assert code == 0 and "n3/members/n1.key" in out
    assert run("keys", "init", out_dir)[0] == cli.EXIT_USAGE  # --members is required


def test_tokens_add_prints_the_token_once_then_list_and_rm(tmp_path, monkeypatch):
    secure = str(tmp_path / "sec")
    code, out, err = run("tokens", "add", "ci", "--roles", "produce,read", "--secure-dir", secure)
    assert code == 0, err
    token = out.split()[0]
    assert token.startswith("dq_") and "shown once" in out
    added = run_json("tokens", "add", "w1", "--roles", "consume", "--secure-dir", secure)
    assert added["name"] == "w1" and added["roles"] == ["consume"]
    assert added["token"].startswith("dq_") and added["token"] != token
    monkeypatch.setenv("DQUEUE_SECURE_DIR", secure)
    listed = run_json("tokens", "list")
    assert [(t["name"], t["roles"]) for t in listed] == [("ci", ["produce", "read"]),
                                                          ("w1", ["consume"])]
    assert token not in json.dumps(listed) and "sha256" not in listed[0]
    code, out, _ = run("tokens", "list")
    assert "ci" in out and "produce,read" in out
    code, _, err = run("tokens", "add", "ci", "--roles", "read")
    assert code == 1 and "exists already" in err
    code, _, err = run("tokens", "add", "x", "--roles", "root")
    assert code == 2 and "roles" in err
    assert run_json("tokens", "rm", "ci") == {"removed": "ci"}
    assert [t["name"] for t in run_json("tokens", "list")] == ["w1"]


def test_tokens_needs_a_secure_dir(monkeypatch):
    monkeypatch.delenv("DQUEUE_SECURE_DIR", raising=False)
    code, _, err = run("tokens", "list")
    assert code == 2 and "--secure-dir" in err


def test_a_refused_token_says_what_to_do(monkeypatch):
    from dqueue.client.errors import Forbidden, Unauthorized, auth_error

    missing = auth_error("unauthorized", "needs a token", status=401, had_token=False)
    assert isinstance(missing, Unauthorized)
    assert "the server requires a token: pass --token or set DQUEUE_TOKEN" in str(missing)
    bad = auth_error("unauthorized", "unknown", status=401, had_token=True)
    assert "refused the token" in str(bad)
    lacking = auth_error("forbidden", "POST /tasks needs produce", status=403, had_token=True,
                         role="produce")
    assert isinstance(lacking, Forbidden) and lacking.role == "produce"
    assert "the token lacks the role produce" in str(lacking)
    protected = auth_error("protected_mode", "protected mode ...", status=403, had_token=False)
    assert isinstance(protected, Forbidden) and protected.code == "protected_mode"


def test_dqueue_server_may_be_a_comma_list_and_only_commas_are_a_usage_error(monkeypatch):
    with FakeHttpServer() as srv:
        with socket.socket() as sock:  # a port nothing listens on: tried first, then skipped
            sock.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setenv("DQUEUE_SERVER", f"{dead},{srv.url}")
        code, _, err = run("--json", "stats")
        assert code == cli.EXIT_OK, err
    monkeypatch.setenv("DQUEUE_SERVER", ",")
    code, _, err = run("stats")
    assert code == cli.EXIT_USAGE and "at least one server URL" in err


def test_status_view_shows_the_result_and_the_traceback_below_the_table():
    done = cli.task_view(Task(id="t1", type="x", status=TaskStatus.COMPLETED,
                              result={"rows": 3}))
    assert any(line.split() == ["result", '{"rows":', "3}"] for line in done.splitlines())
    failed = cli.task_view(Task(id="t2", type="x", status=TaskStatus.DEAD,
                                last_error="KeyError: 'k'",
                                last_traceback='  File "h.py", line 3\nKeyError: \'k\'\n'))
    table, _, below = failed.partition("\nlast_traceback:\n")
    assert "KeyError: 'k'" in table
    assert below == '    File "h.py", line 3\n  KeyError: \'k\''
    assert "result" not in failed and "last_traceback" not in done
